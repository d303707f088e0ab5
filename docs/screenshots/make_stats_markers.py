"""Screenshots of the lesion markers in the Statistics dock and the report's rim-profile figure.

Run under Xvfb at 1600x1000 on a study made by (1 mm, two subjects, markers, end-to-end QSM)::

    qsm-ms simulate STUDY --subjects 2 --seed 11 --shape 160 192 96 --voxel-size 1 1 1 \\
        --prl-fraction 0.4 --cvs-fraction 0.4 --eccentric-vein-fraction 0.2
    qsm-ms recon STUDY && qsm-ms rois STUDY && qsm-ms consensus STUDY
    python docs/screenshots/make_stats_markers.py STUDY

Before that, three raters "read" every lesion of sub-01 and the first six of sub-02 in the rim
round with the simulation's truth as their answers (r3 says "uncertain" on the first PRL of
each), so the dock shows rated and measured sources side by side.

Writes stats_markers_dock.png (the viewer with the dock: marker table, lesion table with PRL/CVS,
the "Rim profiles" tab) and stats_markers_rim_profiles.png (the figure of report.html, as
``qsm-ms stats`` writes it).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import napari
from qtpy.QtCore import QTimer

from napari_qsm_ms._widgets._layers import load_subject_into_viewer
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.stats.study import run_study_stats

HERE = Path(__file__).parent


def rate_from_truth(study: StudyFiles, label: str, n: int | None = None) -> None:
    """Rim-round votes of three raters on the first ``n`` lesions (all: None), from the truth."""
    import pandas as pd

    from napari_qsm_ms.rating.markers import record_marker_vote, run_round_consensus
    from napari_qsm_ms.simulate.truth import TruthFiles

    sub = study.subject(label)
    truth = pd.read_csv(TruthFiles(study.root, label).lesions_tsv, sep="\t")
    truth = truth if n is None else truth.head(n)
    first_prl = next((int(r.lesion_id) for r in truth.itertuples() if r.prl), None)
    for rater in ("r1", "r2", "r3"):
        for r in truth.itertuples():
            prl = "yes" if r.prl else "no"
            if rater == "r3" and int(r.lesion_id) == first_prl:
                prl = "uncertain"
            record_marker_vote(sub, rater, int(r.lesion_id), prl=prl,
                               cvs="present" if r.vein == "central" else "absent")
    run_round_consensus(study, [sub], raters=["r1", "r2", "r3"])


def main(root: Path) -> None:
    study = StudyFiles.at(root)
    rate_from_truth(study, "01")
    rate_from_truth(study, "02", 6)
    run_study_stats(root, n_resamples=200)
    shutil.copy(study.stats_dir / "rim_profiles.png", HERE / "stats_markers_rim_profiles.png")

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    load_subject_into_viewer(viewer, study.subject("01"))
    dock, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Statistics")
    viewer.window._qt_window.resizeDocks([dock], [1000], 1)  # Qt.Horizontal: a wide dock
    widget.path_edit.setText(str(root))
    widget.compute(blocking=True)
    widget.figure_tabs.setCurrentIndex(1)  # the rim profiles
    rows = widget.lesions
    prl = rows.index[(rows["subject"] == "01") & rows["prl"].astype("boolean").fillna(False).astype(bool)]
    if len(prl):
        widget.table.cellClicked.emit(int(prl[0]), 0)
        widget.table.selectRow(int(prl[0]))

    def shoot() -> None:
        viewer.screenshot(str(HERE / "stats_markers_dock.png"), canvas_only=False, flash=False)
        viewer.close()

    QTimer.singleShot(3000, shoot)
    napari.run()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
