"""Rater mode as the user meets it (issue 12 items 1, 2, 7, 11, 12): the dock from the Plugins menu,
the subject from File > Open, keys on the canvas; the 2 x 2 grid measured on screen."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_qsm_ms.rating.votes import read_votes

from ._user_path import (
    add_dock,
    canvas_widget,
    dock_visible,
    phantom_study,
    quadrant_changes,
    sign_in,
    subject_copy,
)

RATER = "Rater mode (blinded)"
GRID = {(0, 0): "T2* magnitude", (0, 1): "WM-nulled MPRAGE", (1, 0): "CSF-nulled MPRAGE", (1, 1): "FLAIR"}


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    return phantom_study(
        tmp_path_factory, "rater-view", shape=(48, 48, 16), voxel_size_mm=(2.0, 2.0, 4.0), n_lesions=(2, 1, 1)
    )


@pytest.fixture
def subject(small_study, tmp_path):
    return subject_copy(small_study, tmp_path)


@pytest.fixture
def viewer(make_napari_viewer, subject):
    viewer = make_napari_viewer(show=True)
    viewer.open(str(subject.study / subject.sub), plugin="napari-qsm-ms")  # TODO(h12b): reader claims folders
    return viewer


def test_signing_in_keeps_the_raters_own_dock_and_hides_the_others(viewer, subject, qtbot):
    other, _ = add_dock(viewer, "Review lesions")
    dock, rater = add_dock(viewer, RATER)
    canvas = canvas_widget(viewer)
    # keys 1-4 do not vote outside rater mode (item 7)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key_1)
    assert not subject.votes_tsv("anna").exists()
    sign_in(rater, "anna", qtbot)
    assert rater.signed_in, rater.status_label.text()
    assert dock_visible(dock), "the rater's own dock was hidden at sign-in"
    assert not dock_visible(other)
    assert rater.vote_buttons["wm"].isEnabled() and rater.sign_out_button.isEnabled()
    # a vote key on the canvas votes, and the canvas says so
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key_1)
    assert len(read_votes(subject, "anna")) == 1
    text = viewer.canvas.overlays["qsm_ms_rater"].text
    assert text.startswith("candidate 1: WM saved") and "candidate 2 of" in text
    rater.sign_out_button.click()
    assert dock_visible(dock) and dock_visible(other)
    assert rater.rater_edit.text() == "", "the next rater must not see the previous name"
    assert not viewer.canvas.overlays["qsm_ms_rater"].visible


def test_the_grid_is_labelled_as_measured_on_screen(viewer, subject, qtbot):
    _, rater = add_dock(viewer, RATER)
    sign_in(rater, "ben", qtbot)
    assert rater.signed_in
    images = {layer.name: layer for layer in viewer.layers if layer._type_string == "image"}
    assert set(images) == set(GRID.values())
    for layer in viewer.layers:
        if layer._type_string == "labels":
            layer.opacity = 0.0  # measure the images alone
    qtbot.wait(100)
    base = viewer.screenshot(canvas_only=True, flash=False)
    for cell, title in GRID.items():
        layer = images[title]
        layer.opacity = 0.0
        blank = viewer.screenshot(canvas_only=True, flash=False)
        layer.opacity = 1.0
        change = quadrant_changes(base, blank)
        assert max(change, key=change.get) == cell, (title, change)
        assert layer.name_overlay.visible  # the panel's title on the canvas
    legend = rater.grid_label.text()
    assert "top left T2* magnitude" in legend and "bottom right FLAIR" in legend
    assert "MISSING" not in legend
    rater.sign_out()


def test_missing_contrasts_are_named(subject, make_napari_viewer, qtbot):
    for series in ("wmn", "csfn", "flair"):
        subject.coreg_series(series).unlink()
    viewer = make_napari_viewer()
    viewer.open(str(subject.study / subject.sub), plugin="napari-qsm-ms")  # TODO(h12b): reader claims folders
    _, rater = add_dock(viewer, RATER)
    sign_in(rater, "cat", qtbot)
    assert rater.signed_in
    for text in (rater.grid_label.text(), rater.status_label.text()):
        assert "MISSING" in text and "WM-nulled MPRAGE, CSF-nulled MPRAGE, FLAIR" in text
        assert "Coregister" in text
    rater.sign_out()


def test_candidate_outline_leaves_a_small_lesion_visible():
    from napari_qsm_ms.rating.view import outline_outside

    mask = np.zeros((10, 10, 3), bool)
    mask[4:6, 4:6, 1] = True  # a 4-voxel lesion: a contour of it would be all of it
    ring = outline_outside(mask) > 0
    assert not ring[mask].any()
    assert ring[3, 3, 1] and ring[6, 6, 1] and not ring[:, :, 0].any()
