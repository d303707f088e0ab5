"""Screenshot: the viewer with sample subject sub-01 loaded through the Study dock."""

from __future__ import annotations

import tempfile
from pathlib import Path

import napari
from qtpy.QtCore import QTimer

from napari_qsm_ms._sample_data import sample_study_copy
from napari_qsm_ms._widgets._layers import find_layer
from napari_qsm_ms._widgets.study import open_in_viewer

OUT = Path(__file__).resolve().parent / "viewer_sample_subject.png"


def shoot_later(viewer, out: Path, delay_ms: int = 2500, before_close=None) -> None:
    """Save a screenshot of the whole window after ``delay_ms`` (toasts closed), then close."""

    def shoot() -> None:
        from napari._qt.dialogs.qt_notification import NapariQtNotification

        for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
            toast.close()
        viewer.screenshot(str(out), canvas_only=False, flash=False)
        print(f"wrote {out}")
        if before_close is not None:
            before_close()
        viewer.close()

    QTimer.singleShot(delay_ms, shoot)


def main() -> None:
    viewer = napari.Viewer(title="napari-qsm-ms")
    viewer.window.resize(1500, 950)
    # the user copy File > Open Sample makes (here in a temporary folder), never the installed files
    open_in_viewer(viewer, [sample_study_copy(tempfile.mkdtemp(prefix='qsm-ms-sample-'))], docks=False)
    tissue = find_layer(viewer, "tissue")
    if tissue is not None:
        tissue.visible = False
    lesions = find_layer(viewer, "lesions")
    if lesions is not None and lesions.data.any():
        import numpy as np

        # the slice nearest the slab's middle among those showing at least two lesions
        n_ids = [len(np.unique(lesions.data[:, :, k])) - 1 for k in range(lesions.data.shape[2])]
        middle = lesions.data.shape[2] / 2
        z = min((k for k, n in enumerate(n_ids) if n >= 2), key=lambda k: abs(k - middle), default=0)
        viewer.layers.selection.active = lesions
        viewer.dims.set_point(2, z * lesions.scale[2] + lesions.translate[2])

    shoot_later(viewer, OUT)
    napari.run()


if __name__ == "__main__":
    main()
