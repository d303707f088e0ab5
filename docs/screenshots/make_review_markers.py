"""Screenshots of the rim and vein markers in the docks (docs/markers.md, "In the docks").

Run under Xvfb from the repository root::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_review_markers.py

A simulated 1 mm subject with paramagnetic rims and central veins (``simulate_study(...,
markers=MarkerSpec(...))``; its true susceptibility plus white noise stands for the Chimap), opened
with File > Open, the docks from the Plugins menu. Writes ``review_markers.png`` (viewer with the
rim-sector and vein layers of the PRL with the highest rim score, Review dock beside it),
``review_markers_dock.png`` (the Review dock alone) and ``review_markers_table.png`` (the lesion
table sorted by rim score, highest first). Three raters' rim round (``record_marker_vote``, then
``run_round_consensus`` as ``qsm-ms consensus --round rim`` does) agrees on that lesion (PRL yes,
CVS present) and overrules the measure on the next suggested PRL (PRL no), so the PRL and CVS
columns show what ``qsm-ms stats`` counts.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import napari  # noqa: E402
from qtpy.QtCore import Qt  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402

from napari_qsm_ms._widgets._layers import viewer_camera  # noqa: E402
from napari_qsm_ms._widgets._lesion_table import COLUMNS  # noqa: E402
from napari_qsm_ms.io.layout import StudyFiles  # noqa: E402
from napari_qsm_ms.io.nifti import load_volume, save_volume  # noqa: E402
from napari_qsm_ms.rating.markers import record_marker_vote, run_round_consensus  # noqa: E402
from napari_qsm_ms.simulate.markers import MarkerSpec  # noqa: E402
from napari_qsm_ms.simulate.study import simulate_study  # noqa: E402

OUT = HERE


def build(root: Path):
    study = simulate_study(root, 1, seed=1, shape=(96, 112, 64), voxel_size_mm=(1.0, 1.0, 1.0), n_lesions=(8, 2, 2),
                           markers=MarkerSpec(prl_fraction=0.5, cvs_fraction=0.4, eccentric_fraction=0.2), raters=None)
    sub = study.subject("01")
    truth = load_volume(study.root / "derivatives/simulation/sub-01/anat/sub-01_desc-truth_Chimap.nii.gz")
    noise = np.random.default_rng(0).normal(0.0, 0.004, truth.shape).astype(np.float32)
    save_volume(sub.chimap, truth.data.astype(np.float32) + noise, truth.affine)
    return sub


def wait(condition, timeout_s: float = 120.0) -> None:
    end = time.time() + timeout_s
    while not condition():
        if time.time() > end:
            raise TimeoutError("the docks did not finish in time")
        QApplication.processEvents()
        time.sleep(0.05)


def settle(seconds: float = 0.8) -> None:
    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def close_toasts(viewer) -> None:
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()
    QApplication.processEvents()


def main() -> int:
    sub = build(Path(tempfile.mkdtemp(prefix="qsm-ms-markers-")) / "study")
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.setGeometry(0, 0, 1600, 1000)
    viewer.open(str(sub.study / sub.sub), plugin="napari-qsm-ms")
    for layer in viewer.layers:
        role = (layer.metadata or {}).get("role")
        if role in ("tissue", "magnitude", "phase"):
            layer.visible = False
        elif role == "qsm":
            layer.visible = True
            layer.contrast_limits = (-0.08, 0.12)
    dock_l, lesions = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Lesions and references")
    lesions = getattr(lesions, "__wrapped__", lesions)
    panel = lesions.lesions_panel
    wait(lambda: panel._marker_worker is None and panel.marker_frame is not None)
    frame = panel.marker_frame
    pick = frame[frame["prl_suggested"] & frame["cvs_suggested"]]
    pick = pick if len(pick) else frame[frame["prl_suggested"]]
    lid = int(pick.sort_values("rim_score_ppm", ascending=False)["lesion_id"].iloc[0])
    others = frame[frame["prl_suggested"] & (frame["lesion_id"] != lid)]
    overruled = int(others.sort_values("rim_score_ppm", ascending=False)["lesion_id"].iloc[0])
    for rater in ("ann", "bob", "cy"):  # the rim round: agreed on lid, overrules the measure on the other
        record_marker_vote(sub, rater, lid, prl="yes", cvs="present")
        record_marker_vote(sub, rater, overruled, prl="no")
    run_round_consensus(StudyFiles.at(sub.study), [sub])
    panel.measure_markers()
    wait(lambda: panel._marker_worker is None and (panel.marker_frame["prl_source"] == "rated").any())
    dock_r, review = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Review lesions", tabify=True)
    review = getattr(review, "__wrapped__", review)
    review.go_to(lid)
    wait(lambda: review.markers._worker is None and review.markers.view is not None
         and review.markers.view.lesion_id == lid)
    viewer.layers.selection.active = viewer.layers["lesions"]
    camera = viewer_camera(viewer)
    camera.zoom = camera.zoom * 2.2
    settle()
    close_toasts(viewer)
    viewer.screenshot(str(OUT / "review_markers.png"), canvas_only=False, flash=False)
    review.grab().save(str(OUT / "review_markers_dock.png"))
    # the lesion table sorted by rim score, highest first (as two clicks on its header do)
    dock_l.raise_()
    col = [c for c, _, _ in COLUMNS].index("rim_score_ppm")
    lesions.table.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    settle()
    close_toasts(viewer)
    viewer.screenshot(str(OUT / "review_markers_table.png"), canvas_only=False, flash=False)
    print("PRL shown: lesion", lid, "; rim round overrules the measure on lesion", overruled)
    review.shutdown()
    lesions.shutdown()
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
