"""Screenshot of the "Reconstruct QSM" dock (added from the Plugins menu's entry) after a run with the
defaults (inversion auto: MEDI with a magnitude; lambda auto: the magnitude's noise; the prior inside the
mask) on a simulated phantom.

Run: xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_recon.py
"""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
from qtpy.QtCore import QTimer

from napari_qsm_ms.simulate.forward import gre_signal
from napari_qsm_ms.simulate.phantom import make_phantom

OUT = Path(__file__).resolve().parent


def main() -> None:
    ph = make_phantom((160, 160, 48), (1.0, 1.0, 2.0), seed=3)
    sig = gre_signal(ph, seed=3)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 950)
    meta = {"affine": ph.affine}
    viewer.add_image(sig.magnitude, name="T2* magnitude", colormap="gray", scale=ph.voxel_size_mm,
                     metadata={**meta, "role": "magnitude"})
    viewer.add_image(sig.phase_rad, name="T2* phase", colormap="twilight_shifted", scale=ph.voxel_size_mm,
                     visible=False, metadata={**meta, "role": "phase"})
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Reconstruct QSM")
    app = napari.qt.get_qapp()

    def shoot():
        if widget.last_result is None:
            QTimer.singleShot(500, shoot)
            return
        from napari_qsm_ms._widgets._layers import set_axial_view

        viewer.layers["T2* magnitude"].visible = False
        set_axial_view(viewer)
        viewer.reset_view()
        viewer.dims.set_point(2, 26 * ph.voxel_size_mm[2])
        QTimer.singleShot(8000, finish)  # let start-up notifications fade

    def finish():
        widget.grab().save(str(OUT / "recon_widget.png"))
        img = viewer.screenshot(canvas_only=False, flash=False)
        from skimage.io import imsave

        imsave(str(OUT / "recon_viewer.png"), np.asarray(img))
        app.quit()

    worker = widget.run(start=True)
    assert worker is not None
    QTimer.singleShot(1000, shoot)
    napari.run()


if __name__ == "__main__":
    main()
