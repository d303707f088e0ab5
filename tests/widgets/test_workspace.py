"""One workspace that fits a 1600 x 1000 screen (issue 12 item 5): every dock open at once fits,
the workspace has a page per step and opens on what the loaded subject needs next."""

from __future__ import annotations

import pytest

from napari_qsm_ms.io.workflow import STEPS, next_step

from ._user_path import add_dock, phantom_study, subject_copy

DOCKS = (
    "Workspace (all steps)", "Study", "Reconstruct QSM", "Coregister onto T2*", "Lesions and references",
    "Review lesions", "Rater mode (blinded)", "Consensus and agreement", "Statistics",
)


def test_every_dock_open_fits_a_1600_by_1000_screen(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    for name in DOCKS:
        add_dock(viewer, name)
    qtbot.wait(50)
    hint = viewer.window._qt_window.minimumSizeHint()
    assert hint.width() <= 1600 and hint.height() <= 1000, (hint.width(), hint.height())


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    return phantom_study(tmp_path_factory, "workspace", shape=(40, 40, 16), n_lesions=(1, 1, 0))


def test_next_step_follows_the_files(small_study, tmp_path):
    subject = subject_copy(small_study, tmp_path)
    assert next_step(None) == "Study"
    assert next_step(subject) == "Lesions"  # Chimap and coregistered series there, no references yet
    subject.refwm.write_bytes(b"")
    assert next_step(subject) == "Rate"
    subject.chimap.unlink()
    assert next_step(subject) == "QSM"


def test_workspace_pages_and_rater_lock(make_napari_viewer, small_study, tmp_path, qtbot):
    subject = subject_copy(small_study, tmp_path)
    viewer = make_napari_viewer(show=True)
    dock, workspace = add_dock(viewer, "Workspace (all steps)")
    assert workspace.current_step == "Study"  # nothing loaded yet
    viewer.open(str(subject.study / subject.sub), plugin="napari-qsm-ms")
    assert workspace.current_step == "Lesions"  # what this subject needs next
    items = [workspace.steps.item(k).text() for k in range(workspace.steps.count())]
    assert [text.split(" ", 1)[1] for text in items] == list(STEPS)
    rate = workspace.show_step("Rate")
    review, _ = add_dock(viewer, "Review lesions")
    rate.rater_edit.setText("anna")
    rate.sign_in_button.click()
    qtbot.waitUntil(lambda: not rate.signing_in, timeout=60000)
    assert rate.signed_in, rate.status_label.text()
    assert not dock.isHidden() and review.isHidden()
    from qtpy.QtCore import Qt

    enabled = [bool(workspace.steps.item(k).flags() & Qt.ItemIsEnabled) for k in range(len(STEPS))]
    assert enabled == [s == "Rate" for s in STEPS]
    rate.sign_out()
    assert all(workspace.steps.item(k).flags() & Qt.ItemIsEnabled for k in range(len(STEPS)))
    assert not review.isHidden()


@pytest.mark.parametrize("name", DOCKS)
def test_no_dock_hides_its_right_edge(make_napari_viewer, qtbot, name):
    """A dock added from the Plugins menu is as wide as its contents: no horizontal scroll bar that
    hides a button or the end of a status line (the QSM dock's Cancel button was cut)."""
    from qtpy.QtWidgets import QScrollArea

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    dock, widget = add_dock(viewer, name)
    qtbot.wait(300)
    areas = [a for a in widget.findChildren(QScrollArea)
             if a.isVisible() and a.widget() is not None and a.widget().objectName() == "qsm_ms_scroll_body"]
    assert areas, name  # every dock's contents scroll (_widgets/_scroll)
    for area in areas:
        body = area.widget()
        assert not area.horizontalScrollBar().isVisible(), (name, area.width(), body.minimumSizeHint().width())
        assert body.width() >= body.minimumSizeHint().width(), (name, body.width(), body.minimumSizeHint().width())
