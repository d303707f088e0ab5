"""Rater mode on a real viewer: blinding, keys and buttons, votes written at once, resume,
three raters voting through a subject and the consensus file (run under Xvfb)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractButton, QComboBox, QLabel, QLineEdit, QProgressBar

from napari.utils.key_bindings import coerce_keybinding

from napari_qsm_ms._widgets._layers import find_layer, load_subject_into_viewer
from napari_qsm_ms._widgets.consensus import ConsensusWidget
from napari_qsm_ms._widgets.rating import RaterWidget, is_blinded_layer, rater_mode
from napari_qsm_ms.io.layout import SubjectFiles
from napari_qsm_ms.io.nifti import load_volume, save_volume, to_canonical
from napari_qsm_ms.rating.consensus import read_lesion_classes
from napari_qsm_ms.errors import QSMMSError
from napari_qsm_ms.rating.votes import read_votes, record_vote
from napari_qsm_ms.rating.view import outline_outside

from ..rating._helpers import make_phantom_subject

ID_OFFSET = 100  # lesion ids 101..106: easy to spot if they leak into what a rater sees


@pytest.fixture(scope="module")
def phantom_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("rating-gui") / "study"
    subject, ph = make_phantom_subject(root, n_lesions=(3, 2, 1))  # 6 candidates keep the GUI test short
    vol = load_volume(subject.lesions, dtype=None)
    ids = np.where(vol.data > 0, vol.data + ID_OFFSET, 0).astype(np.int32)
    save_volume(subject.lesions, ids, vol.affine)
    return root, dict(zip(ph.lesion_table["lesion_id"] + ID_OFFSET, ph.lesion_table["class"]))


@pytest.fixture
def subject(phantom_study, tmp_path):
    root, _ = phantom_study
    shutil.copytree(root, tmp_path / "study")
    return SubjectFiles(tmp_path / "study", "01")


@pytest.fixture
def classes(phantom_study):
    return phantom_study[1]


@pytest.fixture
def viewer_and_widget(make_napari_viewer, subject):
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, subject)
    widget = RaterWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Rater mode (blinded)")
    yield viewer, widget
    widget.sign_out()


def canonical_ids(subject):
    vol = load_volume(subject.lesions, dtype=None)
    return to_canonical(np.asarray(vol.data), vol.affine)[0]


def current_id(viewer, ids):
    """The test (not the rater) recovers the candidate's id from the binary mask on screen."""
    cand = next(layer for layer in viewer.layers if layer.name.startswith("candidate"))
    ring = np.asarray(cand.data) > 0  # an outline drawn just outside the candidate (issue 12, item 11)
    found = [int(i) for i in np.unique(ids[ids > 0]) if (outline_outside(ids == i) > 0).__eq__(ring).all()]
    assert len(found) == 1
    return found[0]


def widget_texts(widget) -> str:
    parts = []
    for w in widget.findChildren((QLabel, QAbstractButton, QLineEdit, QProgressBar, QComboBox)):
        if isinstance(w, QProgressBar):
            parts.append(w.text())
        elif isinstance(w, QComboBox):
            parts += [w.itemText(i) for i in range(w.count())]
        else:
            parts += [w.text(), w.toolTip()]
    return " ".join(parts)


def sign_in(widget, name, qtbot):
    """Sign in as the rater does (button), then wait for the background sign-in to finish."""
    widget.rater_edit.setText(name)
    widget.sign_in_button.click()
    assert widget.signing_in and not widget.sign_in_button.isEnabled()
    qtbot.waitUntil(lambda: not widget.signing_in, timeout=30000)
    assert widget.signed_in, widget.status_label.text()


def test_sign_in_blinds_the_viewer(viewer_and_widget, subject, classes, qtbot):
    viewer, widget = viewer_and_widget
    before = [(layer.name, layer.visible) for layer in viewer.layers]
    assert any(is_blinded_layer(layer) for layer in viewer.layers)  # QSM was loaded
    widget.rater_edit.setText("dr who")
    widget.sign_in_button.click()
    assert not widget.signed_in
    assert widget.status_label.text() == "error: invalid rater name 'dr who': use letters and digits only"
    assert [(layer.name, layer.visible) for layer in viewer.layers] == before
    sign_in(widget, "ann", qtbot)
    assert rater_mode().active(viewer)
    names = [layer.name for layer in viewer.layers]
    assert not any(is_blinded_layer(layer) for layer in viewer.layers)
    assert not any("QSM" in n or n in ("lesions", "refwm", "refgm", "vessels") for n in names)
    roles = {(layer.metadata or {}).get("role") for layer in viewer.layers}
    assert roles == {"rater_view"}
    assert sum(n in ("T2* magnitude", "WM-nulled MPRAGE", "CSF-nulled MPRAGE", "FLAIR") for n in names) == 4
    assert viewer.canvas.grid.enabled
    # no lesion id anywhere: labels on screen are binary, names and dock texts carry no id
    for layer in viewer.layers:
        if layer._type_string == "labels":
            assert set(np.unique(layer.data)) <= {0, 1}
    shown = " ".join(names) + " " + widget_texts(widget)
    for lid in classes:
        assert str(lid) not in shown
    assert widget.candidate_label.text() == f"candidate 1 of {len(classes)}"
    # the candidate is where a lesion is: its binary mask equals exactly one lesion
    ids = canonical_ids(subject)
    lid = current_id(viewer, ids)
    cand = next(layer for layer in viewer.layers if layer.name.startswith("candidate"))
    assert ((np.asarray(cand.data) > 0) == (outline_outside(ids == lid) > 0)).all()
    assert not (np.asarray(cand.data) > 0)[ids == lid].any()  # the outline never covers the candidate
    # the slice shown contains the candidate
    z = int(round((viewer.dims.point[2] - cand.translate[2]) / cand.scale[2]))
    assert (ids[:, :, z] == lid).any()
    widget.sign_out()
    assert not rater_mode().active(viewer)
    assert [(layer.name, layer.visible) for layer in viewer.layers] == before
    assert not viewer.canvas.grid.enabled


def test_closing_the_dock_signs_out_and_restores_layers(viewer_and_widget, qtbot):
    viewer, widget = viewer_and_widget
    before = [layer.name for layer in viewer.layers]
    sign_in(widget, "eve", qtbot)
    viewer.window.remove_dock_widget(widget)  # the dock's close button
    qtbot.waitUntil(lambda: not widget.signed_in, timeout=5000)
    assert [layer.name for layer in viewer.layers] == before
    assert not rater_mode().active(viewer)
    widget.deleteLater()  # undocked: now a parentless widget of the test
    qtbot.wait(50)


def test_qsm_added_while_signed_in_is_never_shown(viewer_and_widget, subject, qtbot):
    viewer, widget = viewer_and_widget
    sign_in(widget, "ben", qtbot)
    chi = load_volume(subject.chimap).data
    seen_visible = []
    layer = viewer.add_image(chi, name="QSM again", metadata={"role": "qsm"})
    seen_visible.append(layer.visible)
    assert "hidden in rater mode" in widget.status_label.text()
    qtbot.waitUntil(lambda: layer not in viewer.layers, timeout=3000)
    layer.visible = True
    assert layer.visible is False
    assert seen_visible == [False]
    assert "cannot be shown" in widget.status_label.text()
    # through the plugin's own reader (File > Open of the Chimap)
    opened = viewer.open(str(subject.chimap), plugin="napari-qsm-ms")
    assert all(not lyr.visible for lyr in opened)
    qtbot.waitUntil(lambda: not any(lyr in viewer.layers for lyr in opened), timeout=3000)
    derived = viewer.add_labels(np.zeros(chi.shape, np.int32), name="vessels from QSM", metadata={"derived_from_qsm": True})
    assert not derived.visible
    qtbot.waitUntil(lambda: derived not in viewer.layers, timeout=3000)
    assert not any(is_blinded_layer(lyr) for lyr in viewer.layers)
    widget.sign_out()
    # back at sign-out, as they were added (hidden ones stay hidden)
    assert layer in viewer.layers and derived in viewer.layers
    assert find_layer(viewer, "qsm") is not None


def test_keys_and_buttons_vote_at_once(viewer_and_widget, subject, qtbot):
    viewer, widget = viewer_and_widget
    sign_in(widget, "cat", qtbot)
    ids = canonical_ids(subject)
    first = current_id(viewer, ids)
    widget.comment_edit.setText("periventricular")
    qtbot.keyClick(widget, Qt.Key_1)
    votes = read_votes(subject, "cat")
    assert list(zip(votes["lesion_id"], votes["vote"], votes["comment"])) == [(first, "wm", "periventricular")]
    assert widget.progress_bar.value() == 1 and widget.comment_edit.text() == ""
    second = current_id(viewer, ids)
    assert second != first
    widget.vote_buttons["mixed"].click()
    third = current_id(viewer, ids)
    widget.skip_button.click()
    fourth = current_id(viewer, ids)
    qtbot.keyClick(widget, Qt.Key_4)
    votes = read_votes(subject, "cat").set_index("lesion_id")["vote"].to_dict()
    assert votes == {first: "wm", second: "mixed", fourth: "not_lesion"}
    assert third not in votes
    # back to an earlier candidate shows the rater's own vote, a new key press replaces it
    widget.back_button.click()
    widget.back_button.click()
    assert current_id(viewer, ids) == third
    widget.back_button.click()
    assert current_id(viewer, ids) == second and widget.vote_buttons["mixed"].isChecked()
    qtbot.keyClick(widget, Qt.Key_2)
    row = read_votes(subject, "cat").set_index("lesion_id").loc[second]
    assert row["vote"] == "cortical" and row["history"].startswith("mixed@")
    # keys typed into the comment field are text, not votes
    widget.comment_edit.setFocus()
    qtbot.keyClicks(widget.comment_edit, "1 2")
    assert widget.comment_edit.text() == "1 2"
    assert len(read_votes(subject, "cat")) == 3
    # keys on the canvas vote too, even with an image layer active (its own 1/2 shortcuts lose)
    assert viewer.layers.selection.active.name == "T2* magnitude"
    canvas = viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    fifth = current_id(viewer, ids)
    assert widget.session.current.vote is None
    qtbot.keyClick(canvas, Qt.Key_2)
    assert read_votes(subject, "cat").set_index("lesion_id").loc[fifth, "vote"] == "cortical"
    assert viewer.layers.selection.active.mode == "pan_zoom"
    n_rated = widget.progress_bar.value()
    widget.sign_out()
    assert coerce_keybinding("3") not in viewer.keymap
    # resume: signing in again starts at the first candidate without a vote
    sign_in(widget, "cat", qtbot)
    assert widget.progress_bar.value() == n_rated == 4
    assert widget.session.current.vote is None


def test_consensus_dock_is_empty_in_rater_mode(viewer_and_widget, subject, classes, qtbot):
    viewer, widget = viewer_and_widget
    for name in ("ann", "ben"):
        for lid in list(classes)[:3]:
            record_vote(subject, name, lid, "wm")
    dock = ConsensusWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Consensus and agreement")
    dock.run_consensus()
    assert dock.lesion_table.rowCount() == len(classes)
    dock_wrapper = dock.parentWidget()
    while not hasattr(dock_wrapper, "setFloating"):
        dock_wrapper = dock_wrapper.parentWidget()
    assert not dock_wrapper.isHidden()
    sign_in(widget, "cat", qtbot)
    assert dock_wrapper.isHidden()  # other docks are hidden in rater mode
    assert not widget.isHidden()
    assert dock.blinded and dock.lesion_table.rowCount() == 0 and dock.counts_table.rowCount() == 0
    assert dock.kappa_label.text() == "" and dock.dispute_combo.count() == 0
    assert not dock.run_button.isEnabled()
    with pytest.raises(QSMMSError, match="hidden"):
        dock.run_consensus()
    # a dock opened while a rater is signed in starts blinded
    late = ConsensusWidget(viewer)
    viewer.window.add_dock_widget(late, name="Consensus (late)")
    assert late.blinded and not late.run_button.isEnabled()
    widget.sign_out()
    assert not dock.blinded and dock.run_button.isEnabled() and not late.blinded
    assert not dock_wrapper.isHidden()


def test_three_raters_vote_through_a_subject_and_consensus(viewer_and_widget, subject, classes, qtbot):
    """Each rater votes every candidate (keys for some, buttons for others); the dock writes lesions.tsv."""
    viewer, widget = viewer_and_widget
    ids = canonical_ids(subject)
    lids = sorted(classes)
    key_of = {"wm": Qt.Key_1, "cortical": Qt.Key_2, "mixed": Qt.Key_3, "not_lesion": Qt.Key_4}
    # planned votes: agreement on most, a rejection, a 3-way dispute
    plan = {r: {lid: classes[lid] for lid in lids} for r in ("ann", "ben", "cat")}
    rejected, disputed, two_one = lids[0], lids[1], lids[2]
    plan["ann"][rejected] = plan["ben"][rejected] = "not_lesion"
    plan["ann"][disputed], plan["ben"][disputed], plan["cat"][disputed] = "wm", "cortical", "mixed"
    plan["cat"][two_one] = "not_lesion"
    for k, rater in enumerate(plan):
        sign_in(widget, rater, qtbot)
        seen = []
        while not widget.session.finished:
            lid = current_id(viewer, ids)
            seen.append(lid)
            vote = plan[rater][lid]
            if (len(seen) + k) % 2:
                qtbot.keyClick(widget, key_of[vote])
            else:
                widget.vote_buttons[vote].click()
        assert sorted(seen) == lids
        assert widget.progress_bar.value() == len(lids)
        widget.sign_out()
    dock = ConsensusWidget(viewer)
    viewer.window.add_dock_widget(dock, name="Consensus and agreement")
    dock.run_button.click()
    table = read_lesion_classes(subject).set_index("lesion_id")
    expected = {lid: classes[lid] for lid in lids}
    expected[rejected], expected[disputed] = "rejected", "disputed"
    assert table["class"].to_dict() == expected
    assert table.loc[two_one, "votes"] == f"{classes[two_one]}:2;not_lesion:1"
    assert dock.lesion_table.rowCount() == len(lids)
    assert dock.disputed_ids() == [disputed]
    # the dock shows every rater's vote and the kappas (Fleiss over all 11 candidates)
    assert dock.report.fleiss_n_items == len(lids)
    assert "Fleiss' kappa" in dock.kappa_label.text()
    agreement = pd.read_csv(subject.study / "derivatives" / "qsm-ms" / "agreement.tsv", sep="\t")
    assert agreement["measure"].tolist() == ["fleiss_kappa"] + ["cohen_kappa"] * 3
    # resolve the dispute in the meeting box
    dock.select_lesion(disputed)
    dock.resolution_combo.setCurrentText("mixed")
    dock.resolve_button.click()
    assert "reason" in dock.status_label.text()  # a reason is required
    dock.reason_edit.setText("crosses the grey/white boundary on CSF-nulled MPRAGE")
    dock.resolve_button.click()
    row = read_lesion_classes(subject).set_index("lesion_id").loc[disputed]
    assert (row["class"], row["consensus"]) == ("mixed", "resolved")
    dock.run_button.click()  # re-running keeps the meeting's outcome
    assert read_lesion_classes(subject).set_index("lesion_id").loc[disputed, "consensus"] == "resolved"
    # confusion table of the first pair, rows = first rater
    assert dock.confusion_table.rowCount() == 4


def test_view_point_is_on_the_lesion():
    from napari_qsm_ms.rating.view import view_point as _view_point

    mask = np.zeros((20, 20, 10), bool)
    mask[5:15, 5:9, 2] = True  # a lesion curving over slices 2 and 7: nothing on the slices between
    mask[5:10, 5:9, 7] = True
    com = tuple(np.argwhere(mask).mean(axis=0))
    assert not mask[:, :, int(round(com[2]))].any()  # its centre of mass is on an empty slice
    x, y, z = _view_point(mask, com, 2)  # the slice axis comes from the layers' geometry (issue 11)
    assert z == 2 and (x, y) == (9.5, 6.5)
    assert _view_point(None, (1.0, 2.0, 3.0), 2) == (1.0, 2.0, 3.0)
