"""Linked orthogonal views (napari-orthogonal-views) from the Plugins menu, one crosshair."""

from __future__ import annotations

import numpy as np
import pytest

from tests.io.test_study import make_study

pytest.importorskip("napari_orthogonal_views")


def test_orthogonal_views_follow_the_point(make_napari_viewer, qtbot, tmp_path):
    study = make_study(tmp_path / "study", labels=("01",))
    viewer = make_napari_viewer(show=True)
    viewer.open(str(study.root), plugin="napari-qsm-ms")
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Orthogonal views")
    widget.show_check.setChecked(True)
    manager = widget._manager()
    assert manager.is_shown()
    qtbot.waitUntil(lambda: manager.right_widget.isVisible() and manager.bottom_widget.isVisible(), timeout=3000)
    assert min(manager.h_splitter_top.sizes()) > 100  # the side view really has room
    side = [manager.right_widget, manager.bottom_widget]
    orders = {tuple(w.vm_container.viewer_model.dims.order) for w in side}
    main_order = tuple(viewer.dims.order)
    assert main_order == (2, 1, 0)
    # together the three views slice along all three axes
    assert {main_order[0]} | {o[0] for o in orders} == {0, 1, 2}
    # moving the point in the main viewer moves the side views' slices
    step = list(viewer.dims.current_step)
    step[0], step[1] = 2, 3
    viewer.dims.current_step = step
    for w in side:
        vm = w.vm_container.viewer_model
        sliced = vm.dims.order[0]
        assert vm.dims.current_step[sliced] == step[sliced]
    assert manager.crosshair_overlay.visible
    widget.show_check.setChecked(False)
    assert not manager.is_shown()
    widget.release()
    qtbot.wait(50)  # deleteLater of the side views


def test_crosshair_sits_at_the_world_point_of_translated_layers(make_napari_viewer, qtbot, tmp_path):
    """Our layers sit at their scanner position (translate != 0): the crosshair must follow."""
    study = make_study(tmp_path / "study", labels=("01",))
    viewer = make_napari_viewer(show=True)
    viewer.open(str(study.root), plugin="napari-qsm-ms")
    for layer in viewer.layers:
        layer.translate = (-40.0, 25.0, 10.0)  # a scanner position far from 0
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Orthogonal views")
    widget.show_check.setChecked(True)
    viewer.dims.current_step = (3, 4, 2)
    from napari_orthogonal_views.cross_hair_overlay import VispyCrosshairOverlay

    visuals = []
    for value in viewer.window._qt_viewer.canvas._viewer_overlay_to_visual.values():
        visuals.extend(value if isinstance(value, list | tuple) else [value])
    overlays = [v for v in visuals if isinstance(v, VispyCrosshairOverlay)]
    assert overlays, "no crosshair drawn in the main view"
    for overlay in overlays:
        pos = overlay.node.pos
        centre = (pos[0] + pos[1]) / 2  # the first segment's middle is the crosshair point
        point = np.asarray(viewer.dims.point)
        displayed = list(viewer.dims.displayed[::-1]) + [viewer.dims.not_displayed[0]]
        np.testing.assert_allclose(centre, point[displayed])
    widget.release()
    qtbot.wait(50)
