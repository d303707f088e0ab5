"""The rim and vein round dock on a real viewer, opened from the Plugins menu path: three raters sign
in one after another and answer every lesion with keys on the canvas and buttons (answers written at
once, nothing of other raters or of the rim measures visible, three linked planes of QSM, T2* and
FLAIR*), then the consensus of round 2 in the "Consensus and agreement" dock equals the file of
``qsm-ms consensus --round rim`` and statsmodels' kappas (run under Xvfb)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from napari_qsm_ms._widgets._layers import load_subject_into_viewer
from napari_qsm_ms._widgets.rating import rater_mode
from napari_qsm_ms.cli import main
from napari_qsm_ms.io.layout import StudyFiles, round_agreement_tsv, round_consensus_tsv, round_votes_tsv
from napari_qsm_ms.rating.markers import CVS_VOTES, PRL_VOTES, read_marker_votes_file, read_round_votes
from napari_qsm_ms.rating.orthogonal import GAP_PX

from ..rating._helpers import make_phantom_subject
from ._user_path import add_dock, canvas_widget, dock_visible

DOCK = "Rim and vein round (blinded)"
CONSENSUS = "Consensus and agreement"
PANEL = ["ann", "ben", "cat"]
#: Each rater's answers per lesion id (PRL, CVS): varied so that every kappa is defined.
PLANS = {
    "ann": {1: ("yes", "present"), 2: ("yes", "absent"), 3: ("no", "present"), 4: ("uncertain", "excluded"),
            5: ("no", "absent")},
    "ben": {1: ("yes", "present"), 2: ("no", "absent"), 3: ("no", "absent"), 4: ("uncertain", "excluded"),
            5: ("yes", "absent")},
    "cat": {1: ("yes", "present"), 2: ("yes", "present"), 3: ("no", "present"), 4: ("no", "absent"),
            5: ("no", "absent")},
}
PRL_QT = {"yes": Qt.Key_Y, "no": Qt.Key_N, "uncertain": Qt.Key_U}
CVS_QT = {"present": Qt.Key_P, "absent": Qt.Key_B, "excluded": Qt.Key_E}


@pytest.fixture
def subject(tmp_path):
    subject, _ = make_phantom_subject(tmp_path / "study", n_lesions=(3, 1, 1))
    return subject


def _sign_in(widget, rater, qtbot):
    widget.rater_edit.setText(rater)
    widget.sign_in_button.click()
    qtbot.waitUntil(lambda: widget.session is not None, timeout=30000)


def _dock_texts(widget) -> str:
    return " ".join(label.text() for label in widget.findChildren(QLabel))


def _check_blinded(viewer, widget, consensus_dock, consensus):
    names = [layer.name for layer in viewer.layers]
    assert names and all(name.startswith("rim round: ") for name in names)  # everything else taken out
    images = [layer.name for layer in viewer.layers if type(layer).__name__ == "Image"]
    assert images == ["rim round: QSM (ppm)", "rim round: T2* magnitude", "rim round: FLAIR*"]
    outline = viewer.layers["rim round: lesion outline"]
    assert set(np.unique(outline.data)) <= {0, 1}  # a binary outline: no lesion id
    assert not dock_visible(consensus_dock) and consensus.blinded and consensus.lesion_table.rowCount() == 0
    assert rater_mode().active(viewer)
    shown = _dock_texts(widget).lower() + " ".join(names).lower()
    assert "score" not in shown and "suggest" not in shown  # no QSM-based suggestion before voting


def _check_linked_planes(viewer, widget, qtbot):
    """A click on the coronal panel moves the point; the axial panel follows; Up steps a slice."""
    g, point = widget.grid, widget.point
    axial_before = viewer.layers["rim round: QSM (ppm)"].data[:, : g.n].copy()
    col_mm = (g.n + GAP_PX + g.n // 2) * g.pixel_mm  # centre column of the coronal panel ...
    row_mm = (g.n // 2 - 4 * widget.grid.pixels_per_voxel) * g.pixel_mm  # ... a few voxels up
    widget.click_at((row_mm, col_mm))
    assert widget.active_plane == "coronal" and widget.point[2] > point[2]  # superior, same x and y
    assert widget.point[:2] == point[:2]
    assert not np.array_equal(viewer.layers["rim round: QSM (ppm)"].data[:, : g.n], axial_before)
    canvas = canvas_widget(viewer)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key_A)  # step through axial slices
    moved = widget.point
    qtbot.keyClick(canvas, Qt.Key_Up)
    assert widget.point[2] == min(moved[2] + 1, widget.session.lesions.shape[2] - 1)
    widget.go(widget.position)  # back to the lesion's centre


@pytest.mark.slow
def test_three_raters_then_round_two_consensus(make_napari_viewer, subject, qtbot):
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, subject)
    before = [(layer.name, layer.visible) for layer in viewer.layers]
    consensus_dock, consensus = add_dock(viewer, CONSENSUS)
    _, widget = add_dock(viewer, DOCK)
    canvas = canvas_widget(viewer)
    orders = {}
    for k, rater in enumerate(PANEL):
        _sign_in(widget, rater, qtbot)
        session = widget.session
        n = len(session.order)
        assert n == 5 and widget.position_label.text() == f"lesion 1 of {n}"
        _check_blinded(viewer, widget, consensus_dock, consensus)
        if k == 0:
            _check_linked_planes(viewer, widget, qtbot)
        orders[rater] = list(session.order)
        for i in range(n):
            assert widget.position == i
            prl, cvs = PLANS[rater][widget.current_lesion]
            if (i + k) % 2:  # keys on the canvas, as a user reading the images would press them
                canvas.setFocus()
                qtbot.keyClick(canvas, PRL_QT[prl])
            else:
                widget.prl_buttons[prl].click()
            if cvs == "excluded":
                widget.reason_combo.setCurrentText("small")
            if i % 2:
                qtbot.keyClick(widget, CVS_QT[cvs])  # keys with the dock focused work too
            else:
                widget.cvs_buttons[cvs].click()
            own = read_marker_votes_file(round_votes_tsv(subject, rater, "rim"))  # written at once
            assert len(own) == i + 1
        assert widget.progress_bar.value() == n
        widget.sign_out_button.click()
        assert [(layer.name, layer.visible) for layer in viewer.layers] == before
        assert dock_visible(consensus_dock) and not rater_mode().active(viewer)
    assert orders["ann"] != orders["ben"] or orders["ann"] != orders["cat"]  # shuffled per rater
    frame = read_marker_votes_file(round_votes_tsv(subject, "ann", "rim")).set_index("lesion_id")
    assert frame.loc[4, "cvs_exclusion"] == "small" and frame.loc[1, "prl"] == "yes"

    # qsm-ms consensus --round rim writes the files ...
    assert main(["consensus", str(subject.study), "--round", "rim"]) == 0
    path = round_agreement_tsv(StudyFiles.at(subject.study), "rim")
    cli = pd.read_csv(path, sep="\t", keep_default_na=False)
    cli_cons = pd.read_csv(round_consensus_tsv(subject, "rim"), sep="\t", keep_default_na=False)
    # ... and the Consensus dock, on round 2, shows the same values
    consensus.round_combo.setCurrentIndex(consensus.round_combo.findData("rim"))
    consensus.run_button.click()
    assert not consensus.status_label.text().startswith("error"), consensus.status_label.text()
    dock_values = consensus.round_agreement.set_index(["marker", "measure", "raters"])["value"]
    file_values = cli.set_index(["marker", "measure", "raters"])["value"]
    pd.testing.assert_series_equal(dock_values.sort_index(), file_values.sort_index(), check_dtype=False)
    assert consensus.lesion_table.rowCount() == 5
    prl_col = [consensus.lesion_table.horizontalHeaderItem(j).text()
               for j in range(consensus.lesion_table.columnCount())].index("PRL")
    shown = {int(consensus.lesion_table.item(i, 0).text()): consensus.lesion_table.item(i, prl_col).text()
             for i in range(5)}
    expected = cli_cons[cli_cons["marker"] == "prl"].set_index("lesion_id")["value"].to_dict()
    assert shown == expected and shown[2] == "yes" and shown[4] == "uncertain"
    # ... which are statsmodels' kappas of the three raters' files
    votes = read_round_votes(subject, PANEL)
    for marker, vocab in (("prl", PRL_VOTES), ("cvs", CVS_VOTES)):
        wide = votes.pivot(index="lesion_id", columns="rater", values=marker)[PANEL]
        codes = wide.apply(lambda col: col.map({v: i for i, v in enumerate(vocab)})).to_numpy()
        fleiss = sm_fleiss(aggregate_raters(codes, n_cat=len(vocab))[0])
        assert dock_values[(marker, "fleiss_kappa", "ann;ben;cat")] == pytest.approx(fleiss, abs=1e-6)
        assert f"{fleiss:.3f}" in consensus.kappa_label.text()
        for a, b in (("ann", "ben"), ("ann", "cat"), ("ben", "cat")):
            table = pd.crosstab(pd.Categorical(wide[a], vocab), pd.Categorical(wide[b], vocab), dropna=False)
            expected_k = cohens_kappa(table.to_numpy()).kappa
            assert dock_values[(marker, "cohen_kappa", f"{a};{b}")] == pytest.approx(expected_k, abs=1e-6)
    # back to the class round: the dock shows the class round again (nothing of round 2 left)
    consensus.round_combo.setCurrentIndex(consensus.round_combo.findData("class"))
    assert consensus.round_frame is None and consensus.lesion_table.rowCount() == 0


def test_sign_in_without_qsm_says_why(make_napari_viewer, subject, qtbot):
    subject.chimap.unlink()
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, subject)
    before = [layer.name for layer in viewer.layers]
    _, widget = add_dock(viewer, DOCK)
    widget.rater_edit.setText("ann")
    widget.sign_in_button.click()
    qtbot.waitUntil(lambda: "Cannot sign in" in widget.status.text(), timeout=30000)
    assert "Chimap" in widget.status.text() and widget.session is None
    assert widget.sign_in_button.isEnabled()  # the rater can try again
    assert [layer.name for layer in viewer.layers] == before and not rater_mode().active(viewer)


def test_layer_opened_during_the_round_is_kept_out(make_napari_viewer, subject, qtbot):
    """A Chimap opened while signed in (File > Open) is taken out and comes back at sign-out;
    closing the dock signs the rater out."""
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, subject)
    n_before = len(viewer.layers)
    dock, widget = add_dock(viewer, DOCK)
    _sign_in(widget, "ann", qtbot)
    viewer.open(str(subject.chimap), plugin="napari-qsm-ms")
    qtbot.waitUntil(lambda: all(layer.name.startswith("rim round: ") for layer in viewer.layers), timeout=10000)
    viewer.window.remove_dock_widget(dock)  # the dock's close button
    qtbot.waitUntil(lambda: widget.session is None, timeout=10000)
    assert len(viewer.layers) == n_before + 1 and not rater_mode().active(viewer)
    widget.deleteLater()  # undocked: now a parentless widget of the test
    qtbot.wait(50)
