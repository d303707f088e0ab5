"""Screenshots of the "Coregister onto T2*" dock on a simulated subject.

Run under Xvfb from the repository root::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_coregister.py

Simulates one subject (T2* slab 160 x 160 x 40 at 0.9 x 0.9 x 2 mm, coronal MPRAGEs/FLAIR at 1.2 mm
with a random misalignment), coregisters it, and writes:

* coregister_checkerboard.png: viewer + dock, CSF-nulled MPRAGE / T2* magnitude checkerboard after
  registration (edges continue across the squares);
* coregister_nudged.png: the same with a deliberate 4 mm / 3 degree nudge (edges break at the squares);
* coregister_blend.png: blended overlay (T2* grey, MPRAGE magenta).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import napari
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

from napari._qt.dialogs.qt_notification import NapariQtNotification

from napari_qsm_ms._widgets._layers import set_axial_view
from napari_qsm_ms._widgets.coregister import CoregisterWidget
from napari_qsm_ms.registration.study import coregister_subject
from napari_qsm_ms.simulate.study import simulate_study

OUT = Path(__file__).resolve().parent


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="qsm-ms-coreg-shots-"))
    study = simulate_study(tmp / "study", 1, seed=7, shape=(160, 160, 40), voxel_size_mm=(0.9, 0.9, 2.0),
                           raw_voxel_mm={"wmn": 1.2, "csfn": 1.2, "flair": 1.2}, oblique_deg=8, raters=None)
    subject = study.subjects()[0]
    done = coregister_subject(subject, keys=("csfn", "flair"))
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1560, 960)
    dock = CoregisterWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Coregister onto T2*", area="right")
    dock.folder.setText(str(subject.anat))
    dock.result_label.setText("\n".join(f"{k}: {r.summary()}" for k, r in done.results.items()))
    dock.qc_series.setCurrentText("csfn")
    dock.show_qc("csfn")
    set_axial_view(viewer)
    viewer.reset_view()
    viewer.dims.set_point(viewer.dims.order[0], viewer.dims.range[viewer.dims.order[0]].start
                          + 0.55 * (viewer.dims.range[viewer.dims.order[0]].stop
                                    - viewer.dims.range[viewer.dims.order[0]].start))

    def shoot(name: str) -> None:
        QApplication.processEvents()
        for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
            toast.close()  # the PyQt5 deprecation toast would hide part of the canvas
        QApplication.processEvents()
        viewer.screenshot(str(OUT / name), canvas_only=False, flash=False)
        print("wrote", OUT / name)

    def step1():
        shoot("coregister_checkerboard.png")
        dock.shift[0].setValue(4.0)
        dock.rotation[2].setValue(3.0)
        dock._update_overlay()
        QTimer.singleShot(500, step2)

    def step2():
        shoot("coregister_nudged.png")
        dock._on_reset()
        dock.mode.setCurrentText("blend")
        dock.opacity.setValue(60)
        QTimer.singleShot(500, step3)

    def step3():
        shoot("coregister_blend.png")
        viewer.close()
        QApplication.quit()

    QTimer.singleShot(1500, step1)
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
