"""Rater-mode sign-in in the background: the Qt event loop keeps running, the sign-in controls are
disabled meanwhile, and a failure leaves the viewer exactly as it was (real viewer under Xvfb)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from napari_qsm_ms._widgets._layers import load_subject_into_viewer
from napari_qsm_ms._widgets.rating import RaterWidget, is_blinded_layer, rater_mode
from napari_qsm_ms.io.layout import SubjectFiles
from napari_qsm_ms.rating.proposals import proposals_path
from napari_qsm_ms.rating.votes import read_votes

from ..rating._helpers import make_phantom_subject


@pytest.fixture(scope="module")
def big_study(tmp_path_factory):
    """A subject big enough that reading it takes a noticeable time (files only, nothing loaded)."""
    root = tmp_path_factory.mktemp("rating-signin") / "study"
    make_phantom_subject(root, shape=(160, 160, 64), voxel_size_mm=(1.5, 1.5, 3.0), n_lesions=(3, 2, 1))
    return root


@pytest.fixture
def subject(big_study, tmp_path):
    shutil.copytree(big_study, tmp_path / "study")
    return SubjectFiles(tmp_path / "study", "01")


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def add_rater(viewer) -> RaterWidget:
    widget = RaterWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Rater mode (blinded)")
    return widget


def sign_in_controls(widget):
    return (widget.sign_in_button, widget.rater_edit, widget.choose_subject_button)


def layer_state(viewer):
    return [(id(layer), layer.name, bool(layer.visible)) for layer in viewer.layers]


def test_event_loop_runs_and_progress_shows_while_signing_in(viewer, subject, qtbot):
    """The subject is read from its files in a worker: timers fire and the dock's progress moves."""
    widget = add_rater(viewer)
    widget.set_subject(subject)  # nothing loaded: every volume is read from disk by the worker
    ticks = []

    def tick():
        ticks.append((widget.signing_in, widget.signed_in, not widget.panel.isHidden(), widget.panel.bar.value(),
                      widget.panel.status.text()))

    timer = QTimer()
    timer.setInterval(0)
    timer.timeout.connect(tick)
    timer.start()
    try:
        widget.rater_edit.setText("ann")
        widget.sign_in_button.click()
        assert widget.signing_in and not widget.signed_in  # returns at once: the work is in the worker
        assert widget.status_label.text() == "signing in as ann..."
        qtbot.waitUntil(lambda: not widget.signing_in, timeout=60000)
    finally:
        timer.stop()
    assert widget.signed_in, widget.status_label.text()
    during = [t for t in ticks if t[0] and not t[1]]
    assert len(during) >= 3, ticks[:5]  # the Qt event loop ran while the session was being prepared
    assert all(visible for _, _, visible, _, _ in during)  # the progress panel shows meanwhile
    assert any(value > 0 for *_, value, _ in during)  # and its bar moved (reports from the worker)
    assert any(text.startswith("reading") for *_, text in during)
    assert widget.panel.isHidden()
    assert widget.candidate_label.text() == "candidate 1 of 6"
    assert {(layer.metadata or {}).get("role") for layer in viewer.layers} == {"rater_view"}
    widget.sign_out()
    assert list(viewer.layers) == []


def test_controls_disabled_while_signing_in_and_enabled_after(viewer, subject, qtbot):
    load_subject_into_viewer(viewer, subject)
    widget = add_rater(viewer)
    before = layer_state(viewer)
    widget.rater_edit.setText("ben")
    assert all(w.isEnabled() for w in sign_in_controls(widget))
    states = []
    timer = QTimer()
    timer.setInterval(0)
    timer.timeout.connect(lambda: states.append(
        (widget.signing_in, widget.signed_in, [w.isEnabled() for w in sign_in_controls(widget)],
         widget.sign_out_button.isEnabled(), [b.isEnabled() for b in widget.vote_buttons.values()])
    ))
    timer.start()
    try:
        worker = widget.sign_in("ben", start=False)
        assert worker is not None and widget.signing_in
        assert not any(w.isEnabled() for w in sign_in_controls(widget))
        assert not widget.sign_out_button.isEnabled()
        assert not any(b.isEnabled() for b in widget.vote_buttons.values())
        # a second sign-in (Return in the name field, a double click) starts nothing
        assert widget.sign_in("ben") is None
        widget.rater_edit.returnPressed.emit()
        assert widget._sign_in_worker is worker
        # the viewer is untouched until the worker returns
        assert layer_state(viewer) == before and not rater_mode().active(viewer)
        with qtbot.waitSignal(worker.finished, timeout=60000):
            worker.start()
    finally:
        timer.stop()
    assert widget.signed_in and not widget.signing_in
    for signing, signed, controls, sign_out, votes in states:
        if signing and not signed:
            assert controls == [False, False, False] and not sign_out and not any(votes)
    # signed in: sign-in controls stay disabled, sign-out and votes enabled
    assert not any(w.isEnabled() for w in sign_in_controls(widget))
    assert widget.sign_out_button.isEnabled() and all(b.isEnabled() for b in widget.vote_buttons.values())
    assert not any(is_blinded_layer(layer) for layer in viewer.layers)
    widget.sign_out()
    assert all(w.isEnabled() for w in sign_in_controls(widget))
    assert layer_state(viewer) == before


@pytest.mark.parametrize("loaded", [True, False], ids=["layers-loaded", "from-files"])
def test_error_in_sign_in_leaves_the_viewer_as_it_was(viewer, subject, qtbot, loaded):
    """A corrupt candidate file: a one-line error in the dock, every layer as before, not blinded."""
    if loaded:
        load_subject_into_viewer(viewer, subject)
        corrupt = proposals_path(subject)  # read from disk at every sign-in
    else:
        viewer.add_image(np.zeros((8, 8, 8), np.float32), name="unrelated")
        corrupt = subject.lesions
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"\x1f\x8b this is not a gzipped NIfTI file\n" * 10)
    widget = add_rater(viewer)
    if not loaded:
        widget.set_subject(subject)
    before = layer_state(viewer)
    grid = (viewer.canvas.grid.enabled, viewer.canvas.grid.stride)
    widget.rater_edit.setText("cat")
    widget.sign_in_button.click()
    assert widget.signing_in
    qtbot.waitUntil(lambda: not widget.signing_in, timeout=60000)
    assert not widget.signed_in and widget.session is None
    text = widget.status_label.text()
    assert text.startswith("error: ") and "\n" not in text and corrupt.name in text, text
    assert layer_state(viewer) == before  # the same layer objects, in the same order and visibility
    assert (viewer.canvas.grid.enabled, viewer.canvas.grid.stride) == grid
    assert not rater_mode().active(viewer)
    assert all(w.isEnabled() for w in sign_in_controls(widget))
    assert not widget.sign_out_button.isEnabled() and widget.panel.isHidden()
    assert read_votes(subject, "cat").empty
    if loaded:  # nothing was blinded: the QSM layer is still there and can be shown
        qsm = next(layer for layer in viewer.layers if is_blinded_layer(layer))
        qsm.visible = True
        assert qsm.visible
        before = layer_state(viewer)
    if loaded:  # once the bad file is gone, signing in works
        corrupt.unlink()
        widget.sign_in_button.click()
        qtbot.waitUntil(lambda: not widget.signing_in, timeout=60000)
        assert widget.signed_in, widget.status_label.text()
        widget.sign_out()
        assert layer_state(viewer) == before
