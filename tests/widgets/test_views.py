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
