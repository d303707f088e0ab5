"""The Drawing tools dock on the user's path: Plugins menu, File > Open, clicks on the canvas."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt

from napari_qsm_ms._widgets._layers import find_layer
from tests.io.test_study import make_study, save

SHAPE = (24, 22, 10)


@pytest.fixture
def loaded(make_napari_viewer, tmp_path):
    """A subject with a bright square in a dark image, opened the way File > Open does it."""
    study = make_study(tmp_path / "study", labels=("01",))
    sub = study.subject("01")
    img = np.full(SHAPE, 10.0, np.float32)
    img[6:16, 5:15, :] = 100.0
    save(sub.magnitude, img, np.eye(4))
    save(sub.lesions, np.zeros(SHAPE, np.uint8), np.eye(4))
    viewer = make_napari_viewer(show=True)
    viewer.open(str(study.root), plugin="napari-qsm-ms")
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Drawing tools")
    return viewer, widget


def _click_canvas_centre(viewer, qtbot, *, drag_by=None):
    canvas = viewer.window._qt_viewer.canvas.native
    centre = QPoint(canvas.width() // 2, canvas.height() // 2)
    qtbot.mousePress(canvas, Qt.LeftButton, pos=centre)
    end = centre
    if drag_by is not None:
        end = centre + QPoint(*drag_by)
        qtbot.mouseMove(canvas, pos=end)
    qtbot.mouseRelease(canvas, Qt.LeftButton, pos=end)


def test_fill_on_click_fills_the_bright_square_in_the_slice_and_undoes(loaded, qtbot):
    viewer, widget = loaded
    lesions = find_layer(viewer, "lesions")
    lesions.selected_label = 3
    widget.source_combo.setCurrentText("T2* magnitude")
    widget.fill_check.setChecked(True)
    z = int(viewer.dims.current_step[2])
    _click_canvas_centre(viewer, qtbot)  # the camera centre: inside the bright square
    filled = np.asarray(lesions.data) == 3
    assert filled.sum() == 10 * 10  # the whole square, in the clicked slice only
    assert filled[6:16, 5:15, z].all()
    assert "filled 100 voxels" in widget.status.text()
    lesions.undo()  # Ctrl-Z: one step
    assert not np.asarray(lesions.data).any()
    # a drag pans and fills nothing
    _click_canvas_centre(viewer, qtbot, drag_by=(60, 0))
    assert not np.asarray(lesions.data).any()
    widget.fill_check.setChecked(False)
    assert widget._fill_callback not in viewer.mouse_drag_callbacks


def test_interpolate_between_drawn_slices_is_one_undo_step(loaded):
    viewer, widget = loaded
    lesions = find_layer(viewer, "lesions")
    lesions.data_setitem(np.nonzero(_square(SHAPE, 2)), 5)
    lesions.data_setitem(np.nonzero(_square(SHAPE, 6)), 5)
    lesions.selected_label = 5
    n = widget.interpolate()
    data = np.asarray(lesions.data)
    assert n == 3 * 16 and all((data[:, :, z] == 5).sum() == 16 for z in range(2, 7))
    lesions.undo()
    assert (np.asarray(lesions.data) == 5).sum() == 2 * 16


def _square(shape, z):
    mask = np.zeros(shape, bool)
    mask[8:12, 8:12, z] = True
    return mask


def test_window_level_presets_and_mouse_drag(loaded, qtbot):
    viewer, widget = loaded
    magnitude = find_layer(viewer, "magnitude")
    viewer.layers.selection.active = magnitude
    assert widget.preset_combo.count() == 3
    widget.apply_preset(widget.preset_combo.itemText(2))
    lo, hi = magnitude.contrast_limits
    assert 10.0 <= lo < hi <= 100.0
    widget.drag_check.setChecked(True)
    before = tuple(magnitude.contrast_limits)
    centre_before = tuple(viewer.scene.camera.center)
    _click_canvas_centre(viewer, qtbot, drag_by=(80, 0))  # right: a wider window, same level
    after = tuple(magnitude.contrast_limits)
    assert after[1] - after[0] > before[1] - before[0]
    assert np.isclose(sum(after) / 2, sum(before) / 2)
    assert tuple(viewer.scene.camera.center) == centre_before  # no panning while dragging W/L
    widget.drag_check.setChecked(False)
    assert viewer.scene.camera.mouse_pan
