"""Screenshots of the lesions/references dock and the review view on a simulated subject.

Run under Xvfb from the repository root::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_annotation.py

Writes docs/screenshots/annotation_dock.png (viewer + dock), annotation_dock_widget.png (the dock
alone), review_view.png (viewer + review dock) and review_panels.png (the review dock alone).
The QSM layer is the phantom's true susceptibility (no reconstruction needed for a screenshot).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import napari
import nibabel as nib
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

from napari_qsm_ms._widgets._layers import find_layer, load_subject_into_viewer
from napari_qsm_ms._widgets.annotation import AnnotationWidget
from napari_qsm_ms._widgets.review import ReviewWidget
from napari_qsm_ms.io.layout import SubjectFiles
from napari_qsm_ms.simulate.phantom import make_phantom

OUT = Path(__file__).resolve().parent


def write_subject(root: Path) -> SubjectFiles:
    ph = make_phantom(shape=(160, 160, 48), voxel_size_mm=(0.75, 0.75, 2.0), seed=3, n_lesions=(8, 4, 3))
    sub = SubjectFiles(root, "01")

    def save(path, data, dtype):
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(np.asarray(data).astype(dtype), ph.affine), str(path))

    save(sub.magnitude, ph.t2star_magnitude, np.float32)
    save(sub.chimap, ph.chi_ppm * ph.brain_mask, np.float32)
    save(sub.brain_mask, ph.brain_mask, np.uint8)
    save(sub.coreg_series("wmn"), ph.t1_wmn, np.float32)
    save(sub.coreg_series("csfn"), ph.t1_csfn, np.float32)
    save(sub.coreg_series("flair"), ph.flair, np.float32)
    save(sub.tissue, ph.tissue, np.uint8)
    save(sub.lesions, ph.lesion_ids, np.int32)
    return sub


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="qsm-ms-shots-"))
    sub = write_subject(tmp)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1560, 960)
    load_subject_into_viewer(viewer, sub)
    dock = AnnotationWidget(viewer, recovery="never")
    viewer.window.add_dock_widget(dock, name="Lesions and references", area="right")
    find_layer(viewer, "tissue").visible = False
    steps = []

    def build_refs():
        worker = dock.build_references(start=False)
        worker.finished.connect(lambda: QTimer.singleShot(500, after_refs))
        worker.start()

    def after_refs():
        ids = [int(i) for i in dock.lesion_frame.lesion_id]
        mixed = dock.lesion_frame[dock.lesion_frame.suggested_class == "mixed"]
        lid = int(mixed.lesion_id.iloc[0]) if len(mixed) else ids[0]
        dock.table.select_ids([lid])
        dock.go_to_lesion(lid)
        viewer_camera_zoom(viewer, 1.8)
        steps.append(lid)
        QTimer.singleShot(800, shot_dock)

    def close_toasts():
        from napari._qt.dialogs.qt_notification import NapariQtNotification

        for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
            toast.close()
        QApplication.processEvents()

    def shot_dock():
        close_toasts()
        viewer.screenshot(str(OUT / "annotation_dock.png"), canvas_only=False, flash=False)
        dock.grab().save(str(OUT / "annotation_dock_widget.png"))
        review = ReviewWidget(viewer)
        viewer.window.add_dock_widget(review, name="Review lesions", area="right", tabify=True)
        steps.append(review)
        review.refresh_lesions()
        review.go_to(steps[0])
        QTimer.singleShot(1200, shot_review)

    def shot_review():
        review = steps[1]
        review.draw()
        close_toasts()
        viewer.screenshot(str(OUT / "review_view.png"), canvas_only=False, flash=False)
        review.grab().save(str(OUT / "review_panels.png"))
        review.shutdown()
        dock.shutdown()
        QTimer.singleShot(200, viewer.close)

    QTimer.singleShot(1500, build_refs)
    napari.run()
    print("wrote", sorted(p.name for p in OUT.glob("annotation_*.png")), sorted(p.name for p in OUT.glob("review_*.png")))
    return 0


def viewer_camera_zoom(viewer, factor: float) -> None:
    from napari_qsm_ms._widgets.annotation import viewer_camera

    camera = viewer_camera(viewer)
    camera.zoom = camera.zoom * factor


if __name__ == "__main__":
    sys.exit(main())
