"""The rim and vein round dock on a real viewer, opened from the Plugins menu path: three raters
answer every lesion (keys and buttons), answers written at once, then ``qsm-ms consensus --round
rim`` (run under Xvfb)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import Qt

from napari_qsm_ms._widgets._layers import load_subject_into_viewer
from napari_qsm_ms.cli import main
from napari_qsm_ms.io.layout import StudyFiles, round_agreement_tsv, round_consensus_tsv, round_votes_tsv
from napari_qsm_ms.rating.markers import read_marker_votes_file

from ..rating._helpers import make_phantom_subject

DOCK = "Rim and vein round (blinded)"


@pytest.fixture
def subject(tmp_path):
    subject, _ = make_phantom_subject(tmp_path / "study", n_lesions=(3, 1, 1))
    return subject


def _sign_in(widget, rater, qtbot):
    widget.rater_edit.setText(rater)
    widget.sign_in_button.click()
    qtbot.waitUntil(lambda: widget.session is not None, timeout=20000)


@pytest.mark.slow
def test_three_raters_answer_through_the_round(make_napari_viewer, subject, qtbot):
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, subject)
    before = [layer.name for layer in viewer.layers if layer.visible]
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", DOCK)
    plans = {
        "ann": ("yes", "present"),
        "ben": ("yes", "absent"),
        "cat": ("no", "excluded"),
    }
    orders = {}
    for k, (rater, (prl, cvs)) in enumerate(plans.items()):
        _sign_in(widget, rater, qtbot)
        session = widget.session
        n = len(session.order)
        assert n == 5 and widget.position_label.text() == f"lesion 1 of {n}"
        # only the round's layers are visible; no lesion id in what the rater sees
        visible = [layer.name for layer in viewer.layers if layer.visible]
        assert all(name.startswith("rim round: ") for name in visible)
        assert set(np.unique(widget._layers[1].data)) <= {0, 1}
        orders[rater] = list(session.order)
        for i in range(n):
            assert widget.position == i
            if (i + k) % 2:
                qtbot.keyClick(widget, {"yes": Qt.Key_Y, "no": Qt.Key_N}[prl])
            else:
                widget.prl_buttons[prl].click()
            if cvs == "excluded":
                widget.reason_combo.setCurrentText("small")
                widget.cvs_buttons["excluded"].click()
            else:
                qtbot.keyClick(widget, {"present": Qt.Key_P, "absent": Qt.Key_B}[cvs])
            # written at once, to this rater's own file only
            own = read_marker_votes_file(round_votes_tsv(subject, rater, "rim"))
            assert len(own) == i + 1
        assert widget.progress_bar.value() == n
        qtbot.keyClick(widget, Qt.Key_C)  # coronal planes in both views
        assert viewer.dims.order[0] != session.slice_axis
        widget.sign_out()
        assert [layer.name for layer in viewer.layers if layer.visible] == before
    assert orders["ann"] != orders["ben"] or orders["ann"] != orders["cat"]  # shuffled per rater
    frame = read_marker_votes_file(round_votes_tsv(subject, "cat", "rim"))
    assert set(frame["cvs_exclusion"]) == {"small"} and set(frame["prl"]) == {"no"}
    # consensus and kappas of the round from the CLI
    assert main(["consensus", str(subject.study), "--round", "rim"]) == 0
    cons = pd.read_csv(round_consensus_tsv(subject, "rim"), sep="\t", keep_default_na=False)
    prl = cons[cons["marker"] == "prl"]
    assert set(prl["value"]) == {"yes"} and set(prl["votes"]) == {"yes:2;no:1"}
    assert set(cons[cons["marker"] == "cvs"]["value"]) == {"disputed"}
    assert round_agreement_tsv(StudyFiles.at(subject.study), "rim").exists()


def test_sign_in_without_qsm_says_why(make_napari_viewer, subject, qtbot):
    subject.chimap.unlink()
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, subject)
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", DOCK)
    widget.rater_edit.setText("ann")
    widget.sign_in_button.click()
    qtbot.waitUntil(lambda: "Cannot sign in" in widget.status.text(), timeout=20000)
    assert "Chimap" in widget.status.text() and widget.session is None
    assert widget.sign_in_button.isEnabled()  # the rater can try again
