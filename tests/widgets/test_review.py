"""GUI tests of the review view (lesion by lesion, outlines over every contrast, linked position)."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_qsm_ms._widgets._layers import find_layer, load_subject_into_viewer
from napari_qsm_ms._widgets.annotation import AnnotationWidget
from napari_qsm_ms._widgets.review import PANELS, ReviewWidget, crop_geometry

from .test_annotation_support import ball_indices, make_subject


def test_crop_geometry_centres_and_clips():
    geo = crop_geometry((10, 20, 3), 4, (40, 30, 8), (0.5, 1.0, 2.0), 5.0, slice_axis=2)
    assert geo.index[2] == 4
    assert geo.index[0] == slice(0, 21) and geo.index[1] == slice(15, 26)
    # extents in mm around the centre (pixel edges), x: 10 voxels of 0.5 mm each side
    assert geo.extent_mm[0] == pytest.approx(-5.25) and geo.extent_mm[1] == pytest.approx(5.25)
    assert geo.extent_mm[2] == pytest.approx(-5.5) and geo.extent_mm[3] == pytest.approx(5.5)
    edge = crop_geometry((1, 29, 0), 0, (40, 30, 8), (1.0, 1.0, 2.0), 5.0)
    assert edge.index[0] == slice(0, 7) and edge.index[1] == slice(24, 30)  # clipped to the array
    assert edge.extent_mm[0] == pytest.approx(-1.5) and edge.extent_mm[3] == pytest.approx(0.5)


@pytest.fixture
def review(make_napari_viewer, tmp_path):
    sub = make_subject(tmp_path)
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, sub)
    lesions = find_layer(viewer, "lesions")
    lesions.data_setitem(ball_indices((20, 18, 3), 2.5, lesions.data.shape), 1)
    lesions.data_setitem(ball_indices((33, 18, 8), 1.2, lesions.data.shape), 2)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Review lesions")
    yield viewer, widget
    widget.shutdown()


def slice_of_viewer(viewer, layer):
    return int(round(layer.world_to_data(viewer.dims.point)[2]))


def test_step_through_lesions_moves_viewer_and_draws_outlines(review, qtbot):
    viewer, widget = review
    lesions = find_layer(viewer, "lesions")
    widget.refresh_lesions()
    assert widget.lesion_ids() == [1, 2]
    widget.next_button.click()  # from lesion 1 to 2
    assert widget.current_id == 2
    assert slice_of_viewer(viewer, lesions) == 8
    assert lesions.selected_label == 2
    axes = widget.figure.axes
    assert len(axes) == len(PANELS)
    titles = [ax.get_title() for ax in axes]
    assert titles == [title for _, title in PANELS]  # all contrasts present in the test subject
    assert all(len(ax.collections) >= 1 for ax in axes)  # the lesion outline on every panel
    assert "lesion 2 (2/2) - slice 8" in widget.figure._suptitle.get_text()
    widget.next_button.click()  # wraps around
    assert widget.current_id == 1
    assert slice_of_viewer(viewer, lesions) == 3
    widget.prev_button.click()
    assert widget.current_id == 2


def test_keyboard_steps(review, qtbot):
    viewer, widget = review
    widget.refresh_lesions()
    widget.go_to(1)
    widget.setFocus()
    qtbot.keyClick(widget, Qt.Key.Key_N)
    assert widget.current_id == 2
    qtbot.keyClick(widget, Qt.Key.Key_Left)
    assert widget.current_id == 1
    qtbot.keyClick(widget.canvas, Qt.Key.Key_PageDown)  # from a child: the event reaches the dock
    assert widget.current_id == 2


def test_follows_viewer_slice_and_selected_label(review, qtbot):
    viewer, widget = review
    lesions = find_layer(viewer, "lesions")
    widget.refresh_lesions()
    widget.go_to(1)
    # scrolling the viewer to another slice of lesion 1 redraws the panels at that slice
    viewer.dims.set_point(2, lesions.data_to_world((0, 0, 4))[2])
    qtbot.waitUntil(lambda: "slice 4" in widget.figure._suptitle.get_text(), timeout=3000)
    # selecting a label (as a click in the lesion table does) brings the review to that lesion
    lesions.selected_label = 2
    assert widget.current_id == 2
    assert slice_of_viewer(viewer, lesions) == 8


def test_reference_outlines_and_missing_contrast(review, qtbot):
    viewer, widget = review
    dock = AnnotationWidget(viewer, recovery="never")
    viewer.window.add_dock_widget(dock, name="Lesions and references")
    worker = dock.build_references(start=False)
    with qtbot.waitSignal(worker.finished, timeout=20000):
        worker.start()
    viewer.layers.remove(find_layer(viewer, "flair"))
    qtbot.waitUntil(lambda: widget.lesion_ids() == [1, 2], timeout=3000)
    widget.go_to(1)
    refwm = find_layer(viewer, "refwm")
    assert (refwm.data == 1).any()
    assert "NAWM ref" in widget.info_label.text() and "NAWM ref 0 vox" not in widget.info_label.text()
    qsm_axis = widget.figure.axes[0]
    assert len(qsm_axis.collections) >= 2  # lesion + NAWM ring outlines
    flair_axis = widget.figure.axes[[role for role, _ in PANELS].index("flair")]
    assert "not available" in flair_axis.get_title()
    dock.shutdown()


def test_no_lesions_message(make_napari_viewer, tmp_path):
    sub = make_subject(tmp_path)
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, sub)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Review lesions")
    widget.draw()
    assert "no lesions" in widget.info_label.text()
    widget.next_button.click()  # harmless
    widget.shutdown()
    assert np.all(find_layer(viewer, "lesions").data == 0)


def test_native_grid_series_is_not_drawn(make_napari_viewer, tmp_path):
    import nibabel as nib

    sub = make_subject(tmp_path)
    sub.coreg_series("flair").unlink()
    native = np.eye(4) * 1.2
    native[3, 3] = 1.0
    nib.save(nib.Nifti1Image(np.ones((20, 20, 20), np.float32), native), str(sub.raw_series("flair")))
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, sub)
    # a subject load leaves native-grid series out (issue 12 item 3); the user opens one by hand
    viewer.open(str(sub.raw_series("flair")), plugin="napari-qsm-ms")
    lesions = find_layer(viewer, "lesions")
    lesions.data_setitem(ball_indices((20, 18, 3), 2.5, lesions.data.shape), 1)
    widget = ReviewWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Review lesions")
    widget.refresh_lesions()
    widget.go_to(1)
    titles = {role: ax.get_title() for (role, _), ax in zip(PANELS, widget.figure.axes)}
    assert "not on the T2* grid" in titles["flair"]
    assert titles["qsm"] == "QSM (ppm)"
    widget.shutdown()
