"""Consensus dock on a real viewer: four raters (ties), per-rater votes, kappas, confusion tables,
resolution, centring on a lesion, proposals in a worker (run under Xvfb)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from napari_qsm_ms._widgets._layers import find_layer, load_subject_into_viewer
from napari_qsm_ms._widgets.consensus import ConsensusWidget
from napari_qsm_ms.io.layout import SubjectFiles
from napari_qsm_ms.rating.agreement import subject_agreement
from napari_qsm_ms.rating.consensus import read_lesion_classes
from napari_qsm_ms.rating.proposals import proposals_path
from napari_qsm_ms.rating.votes import record_vote

from ..rating._helpers import make_phantom_subject


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("consensus-gui") / "study"
    make_phantom_subject(root, n_lesions=(3, 2, 1))
    return root


@pytest.fixture
def dock(make_napari_viewer, phantom_root, tmp_path):
    shutil.copytree(phantom_root, tmp_path / "study")
    subject = SubjectFiles(tmp_path / "study", "01")
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, subject)
    widget = ConsensusWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Consensus and agreement")
    return viewer, widget, subject


# lesion id -> votes of four raters
PLAN = {
    1: ("wm", "wm", "wm", "mixed"),  # 3 of 4: wm
    2: ("wm", "wm", "mixed", "mixed"),  # 2-2 tie: disputed
    3: ("not_lesion", "not_lesion", "not_lesion", "wm"),  # rejected
    4: ("cortical", "cortical", "not_lesion", "not_lesion"),  # tie with not_lesion: disputed
    5: ("mixed", "mixed", "mixed", None),  # one skip, still 3 of 4
    6: ("cortical", None, None, "cortical"),  # 2 of 4 with two skips: disputed
}
RATERS = ("ann", "ben", "cat", "dan")


def _vote(subject):
    for lid, votes in PLAN.items():
        for rater, vote in zip(RATERS, votes):
            if vote:
                record_vote(subject, rater, lid, vote)


def test_four_raters_table_kappas_and_confusion(dock, qtbot):
    viewer, widget, subject = dock
    _vote(subject)
    widget.run_button.click()
    table = read_lesion_classes(subject).set_index("lesion_id")
    assert table["class"].to_dict() == {1: "wm", 2: "disputed", 3: "rejected", 4: "disputed", 5: "mixed", 6: "disputed"}
    assert set(table["n_raters"]) == {4}
    lt = widget.lesion_table
    headers = [lt.horizontalHeaderItem(j).text() for j in range(lt.columnCount())]
    assert headers == ["source", "lesion", "class", "consensus", *RATERS, "votes", "agreement", "reason"]
    row6 = [lt.item(5, j).text() for j in range(lt.columnCount())]
    assert row6[1] == "6" and row6[4:8] == ["cortical", "-", "-", "cortical"] and row6[8] == "cortical:2"
    assert row6[2:4] == ["disputed", "disputed"] and row6[9] == "0.50"
    assert widget.disputed_ids() == [2, 4, 6]
    assert widget.dispute_combo.count() == 3
    # kappas shown equal the pure computation
    rep = subject_agreement(subject)
    assert f"{rep.fleiss_kappa:.3f}" in widget.kappa_label.text()
    assert rep.fleiss_n_items == 4  # candidates 5 and 6 lack votes of some raters
    # confusion tables: one per pair, switching shows that pair's table
    assert widget.pair_combo.count() == 6
    for k in range(widget.pair_combo.count()):
        widget.pair_combo.setCurrentIndex(k)
        a, b = widget.pair_combo.currentData()
        expected = rep.confusion[(a, b)].to_numpy()
        shown = np.array([[int(widget.confusion_table.item(i, j + 1).text()) for j in range(4)] for i in range(4)])
        assert (shown == expected).all()
    counts_rows = [widget.counts_table.item(i, 0).text() for i in range(widget.counts_table.rowCount())]
    assert counts_rows == [*RATERS, "consensus"]
    # agreement.tsv for the study
    assert (subject.study / "derivatives" / "qsm-ms" / "agreement.tsv").exists()


def test_resolution_and_centring(dock):
    viewer, widget, subject = dock
    _vote(subject)
    widget.run_consensus()
    widget.select_lesion(4)
    assert widget.dispute_combo.currentData() == ("drawn", 4)
    # selecting the row centred the viewer on lesion 4's slice
    lesions = find_layer(viewer, "lesions")
    z = int(round((viewer.dims.point[2] - lesions.translate[2]) / lesions.scale[2]))
    assert (np.asarray(lesions.data)[:, :, z] == 4).any()
    widget.resolution_combo.setCurrentText("rejected")
    widget.resolve_button.click()
    assert widget.status_label.text() == "error: a resolution needs a reason"
    widget.reason_edit.setText("vessel on SWI")
    widget.resolve_button.click()
    row = read_lesion_classes(subject).set_index("lesion_id").loc[4]
    assert (row["class"], row["consensus"], row["resolution_reason"]) == ("rejected", "resolved", "vessel on SWI")
    assert "1 resolved" in widget.summary_label.text()
    assert widget.disputed_ids() == [2, 6]


def test_errors_without_votes(dock):
    viewer, widget, subject = dock
    widget.run_button.click()
    assert widget.status_label.text() == "error: sub-01: consensus needs at least 2 raters with votes, found 0"
    widget.resolve_button.click()
    assert widget.status_label.text() == "error: no disputed candidate selected"


def test_propose_candidates_in_a_worker(dock, qtbot):
    viewer, widget, subject = dock
    with qtbot.waitSignal(widget.panel.bar.valueChanged, timeout=60000, check_params_cb=lambda v: v == 1000):
        widget.propose_button.click()
    qtbot.waitUntil(lambda: "proposals written" in widget.status_label.text() or "error" in widget.status_label.text(), timeout=60000)
    assert widget.status_label.text() == f"proposals written to {proposals_path(subject).name}"
    assert proposals_path(subject).exists()
