"""The Statistics dock shows the same per-subject lesion markers that qsm-ms stats writes to
subjects.tsv (one answer: stats.study.compute_study -> stats.markers.marker_summary), after the
user presses Compute in the dock opened from the Plugins menu."""

from __future__ import annotations

import numpy as np
import pandas as pd
from qtpy.QtCore import Qt

from napari_qsm_ms._widgets.stats import MARKER_SUMMARY_COLUMNS, TABLE_COLUMNS, _fmt
from napari_qsm_ms.cli import main
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.io.nifti import load_volume, save_volume
from napari_qsm_ms.rating.markers import record_marker_vote, run_round_consensus
from napari_qsm_ms.stats.markers import MARKER_SUBJECT_COLUMNS
from napari_qsm_ms.stats.synthetic import write_synthetic_study


def _study(root):
    write_synthetic_study(root, [(1, 3, 1), (0, 2, 0)], shape=(48, 48, 16), voxel_size_mm=(0.8, 0.8, 1.5), seed=3)
    study = StudyFiles.at(root)
    sub = study.subject("01")
    lesions = load_volume(sub.lesions, dtype=None)
    mag = load_volume(sub.magnitude)
    data = np.asarray(mag.data, np.float32).copy()
    lid = int(np.max(lesions.data))
    centre = np.argwhere(lesions.data == lid).mean(axis=0).round().astype(int)
    data[centre[0], centre[1], :] *= 0.3  # a dark vein through one lesion
    save_volume(sub.magnitude, data, mag.affine)
    for rater, prl in (("ann", "yes"), ("bob", "yes")):  # a rim round on one lesion of sub-01
        record_marker_vote(sub, rater, 1, prl=prl, cvs="absent")
    run_round_consensus(study, [sub])


def test_dock_marker_summary_equals_subjects_tsv(make_napari_viewer, qtbot, tmp_path):
    root = tmp_path / "study"
    _study(root)
    assert main(["stats", str(root), "--out", str(tmp_path / "stats")]) == 0
    written = pd.read_csv(tmp_path / "stats" / "subjects.tsv", sep="\t", dtype={"subject": str},
                          keep_default_na=False, na_values=[""])

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Statistics")
    widget.path_edit.setText(str(root))
    qtbot.mouseClick(widget.compute_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not widget.markers.empty and not widget._workers, timeout=60000)

    shown = widget.markers
    assert list(shown.columns) == ["subject", *MARKER_SUBJECT_COLUMNS]
    pd.testing.assert_frame_equal(
        shown.reset_index(drop=True), written[["subject", *MARKER_SUBJECT_COLUMNS]],
        check_dtype=False, check_exact=False, rtol=1e-9,
    )
    # the table the user reads says the same, cell by cell
    assert widget.marker_table.rowCount() == len(written)
    for r, (_, row) in enumerate(written.iterrows()):
        for c, (col, _, _) in enumerate(MARKER_SUMMARY_COLUMNS):
            assert widget.marker_table.item(r, c).text() == _fmt(shown.iloc[r][col], col)
    first = written.set_index("subject").loc["01"]
    assert first["prl_source"].startswith("rated 1")  # the round decided lesion 1
    assert widget.marker_table.item(0, 2).text() == first["prl_source"]
    # per lesion: PRL / CVS columns of the lesion table, the rated lesion says so
    rows = widget.lesions
    r = int(np.flatnonzero((rows["subject"] == "01") & (rows["lesion_id"] == 1))[0])
    prl_col = [c for c, _ in TABLE_COLUMNS].index("prl")
    assert widget.table.item(r, prl_col).text() == "yes"
    assert "rated" in widget.table.item(r, prl_col).toolTip()
    # the rim-profile figure is drawn in its tab
    assert widget.figure_tabs.count() == 2 and len(widget.rim_figure.axes) == 1
    assert len(widget.rim_figure.axes[0].lines) >= 2
