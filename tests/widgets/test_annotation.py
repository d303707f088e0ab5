"""GUI tests of the lesions and references dock on a real viewer (run under Xvfb)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_qsm_ms._widgets._autosave import pending_recovery, read_autosave
from napari_qsm_ms._widgets._layers import find_layer, load_subject_into_viewer
from napari_qsm_ms._widgets._layers import viewer_camera
from napari_qsm_ms._widgets.annotation import AnnotationWidget, apply_labels_edit, slice_axis_of
from napari_qsm_ms.io.nifti import to_canonical

from .test_annotation_support import AFFINE, SHAPE, ball_indices, make_subject


@pytest.fixture
def subject(tmp_path):
    return make_subject(tmp_path)


@pytest.fixture
def dock(make_napari_viewer, qtbot, subject):
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, subject)
    widget = AnnotationWidget(viewer, recovery="always", autosave_delay_ms=100)
    viewer.window.add_dock_widget(widget, name="Lesions and references")
    yield viewer, widget
    widget.shutdown()


def canonical_shape():
    return to_canonical(np.zeros(SHAPE), AFFINE)[0].shape


def paint_lesion(layer, lesion_id, center, radius=2.5):
    """Paint like a user: one undoable data_setitem (as a brush stroke would)."""
    idx = ball_indices(center, radius, layer.data.shape)
    layer.data_setitem(idx, lesion_id)
    return idx


def test_lesions_layer_contour_and_new_lesion(dock):
    viewer, widget = dock
    lesions = find_layer(viewer, "lesions")
    assert lesions.contour == 1
    assert slice_axis_of(lesions) == 2
    paint_lesion(lesions, 1, (12, 12, 5))
    assert widget.new_lesion() == 2
    assert lesions.selected_label == 2
    assert lesions.mode == "paint"
    assert viewer.layers.selection.active is lesions


def test_draw_lesion_shows_in_table_and_undo_removes_it(dock, qtbot):
    viewer, widget = dock
    lesions = find_layer(viewer, "lesions")
    paint_lesion(lesions, 1, (12, 12, 5))
    qtbot.waitUntil(lambda: widget.table.table_model.rowCount() == 1, timeout=3000)
    row = widget.table.row_texts()[0]
    assert row[0] == "1"
    n_vox = int((lesions.data == 1).sum())
    assert float(row[1]) == pytest.approx(n_vox * 2.0, abs=0.05)  # 1 x 1 x 2 mm voxels
    assert row[3] == "4-6 [5]"
    lesions.undo()  # Ctrl-Z
    qtbot.waitUntil(lambda: widget.table.table_model.rowCount() == 0, timeout=3000)
    assert not lesions.data.any()
    lesions.redo()
    qtbot.waitUntil(lambda: widget.table.table_model.rowCount() == 1, timeout=3000)
    # the brush (napari's mask-based paint, as a mouse stroke does) is seen too
    lesions.brush_size = 3
    lesions.paint((30, 24, 7), 2)
    qtbot.waitUntil(lambda: widget.table.table_model.rowCount() == 2, timeout=3000)
    lesions.undo()
    qtbot.waitUntil(lambda: widget.table.table_model.rowCount() == 1, timeout=3000)


def test_lesion_flags_are_shown_and_highlighted(dock, qtbot):
    viewer, widget = dock
    lesions = find_layer(viewer, "lesions")
    lesions.data_setitem((np.array([20]), np.array([20]), np.array([5])), 3)  # one 1x1x2 mm voxel
    widget.refresh_table()
    flags = widget.table.row_texts()[0][7]
    # one voxel: drawn on a single slice; its Feret extent sqrt(1+1+4) = 2.45 mm is not "small" (< 2 mm)
    assert flags == "single_slice"
    from qtpy.QtCore import Qt

    assert widget.table.proxy.index(0, 0).data(Qt.ItemDataRole.BackgroundRole) is not None
    assert "1 flagged" in widget.summary_label.text()


def test_merge_split_delete_are_single_undo_steps(dock, qtbot):
    viewer, widget = dock
    lesions = find_layer(viewer, "lesions")
    paint_lesion(lesions, 1, (10, 12, 5), 2)
    paint_lesion(lesions, 2, (26, 22, 5), 2)
    before = np.array(lesions.data, copy=True)
    widget.refresh_table()

    assert widget.merge_lesions([1, 2]) == 1
    assert set(np.unique(lesions.data)) == {0, 1}
    assert widget.table.table_model.rowCount() == 1
    lesions.undo()
    np.testing.assert_array_equal(lesions.data, before)

    widget.merge_lesions([1, 2])
    new_ids = widget.split_lesion(1)
    assert len(new_ids) == 1
    assert set(np.unique(lesions.data)) == {0, 1, new_ids[0]}
    assert widget.table.table_model.rowCount() == 2
    lesions.undo()  # split undone
    assert set(np.unique(lesions.data)) == {0, 1}
    lesions.undo()  # merge undone
    np.testing.assert_array_equal(lesions.data, before)

    widget.table.select_ids([2])
    widget.delete_button.click()
    assert set(np.unique(lesions.data)) == {0, 1}
    lesions.undo()
    np.testing.assert_array_equal(lesions.data, before)


def test_apply_labels_edit_counts_and_noop(dock):
    viewer, _ = dock
    lesions = find_layer(viewer, "lesions")
    new = np.zeros_like(lesions.data)
    new[3:5, 3:5, 2] = 7
    assert apply_labels_edit(lesions, new) == 4
    assert apply_labels_edit(lesions, new) == 0
    lesions.undo()
    assert not lesions.data.any()


def test_click_row_centres_view_on_lesion(dock, qtbot):
    viewer, widget = dock
    lesions = find_layer(viewer, "lesions")
    paint_lesion(lesions, 1, (10, 12, 3), 2)
    paint_lesion(lesions, 2, (28, 24, 8), 2)
    widget.refresh_table()
    model = widget.table.proxy
    row = [r for r in range(model.rowCount()) if model.index(r, 0).data() == "2"][0]
    rect = widget.table.visualRect(model.index(row, 0))
    from qtpy.QtCore import Qt

    qtbot.mouseClick(widget.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert lesions.selected_label == 2
    z_world = viewer.dims.point[2]
    assert lesions.world_to_data((0, 0, z_world))[2] == pytest.approx(8, abs=0.01)
    centre = np.asarray(viewer_camera(viewer).center)[-2:]
    expected = np.asarray(lesions.data_to_world((28, 24, 8)))
    displayed = list(viewer.dims.displayed)
    np.testing.assert_allclose(centre, expected[displayed], atol=0.6)
    assert widget.table.selected_ids() == [2]


def test_save_writes_source_orientation_and_clears_autosave(dock, qtbot, subject):
    viewer, widget = dock
    lesions = find_layer(viewer, "lesions")
    paint_lesion(lesions, 4, (12, 12, 5))
    qtbot.waitUntil(lambda: read_autosave(subject.autosave_dir) is not None, timeout=5000)
    widget.autosaver.wait()
    assert "lesions" in read_autosave(subject.autosave_dir).files
    written = widget.save()
    assert subject.lesions in written
    img = nib.load(str(subject.lesions))
    np.testing.assert_allclose(img.affine, AFFINE)
    on_disk = np.asarray(img.dataobj)
    assert on_disk.shape == SHAPE
    np.testing.assert_array_equal(to_canonical(on_disk, AFFINE)[0], lesions.data)
    assert read_autosave(subject.autosave_dir) is None
    assert pending_recovery(subject) is None


def draw_wm_and_cortical(lesions):
    paint_lesion(lesions, 1, (20, 18, 5), 2.5)  # WM core
    paint_lesion(lesions, 2, (34, 18, 6), 1.2)  # on the cortical ribbon


def build_refs(widget, qtbot):
    worker = widget.build_references(start=False)
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=20000):
        worker.start()


def test_build_references_then_undo(dock, qtbot, subject):
    viewer, widget = dock
    lesions = find_layer(viewer, "lesions")
    draw_wm_and_cortical(lesions)
    widget.refresh_table()
    suggested = dict(zip(widget.lesion_frame.lesion_id, widget.lesion_frame.suggested_class))
    assert suggested == {1: "wm", 2: "cortical"}
    build_refs(widget, qtbot)
    refwm, refgm = find_layer(viewer, "refwm"), find_layer(viewer, "refgm")
    tissue = np.asarray(find_layer(viewer, "tissue").data)
    assert (refwm.data == 1).sum() > 10 and (refgm.data == 2).sum() > 0
    # rings on the right tissue, off every lesion, on the lesion's central slice
    assert np.all(tissue[refwm.data > 0] == 3) and np.all(tissue[refgm.data > 0] == 2)
    assert not np.any((refwm.data > 0) & (lesions.data > 0))
    assert set(np.nonzero(refwm.data == 1)[2]) == {5}
    assert refwm.contour == 1 and refgm.contour == 1
    assert widget.state.parameters["gap_mm"] == widget.gap_spin.value()
    # undo: one step per layer removes the references
    refwm.undo()
    refgm.undo()
    assert not refwm.data.any() and not refgm.data.any()
    refwm.redo()
    assert (refwm.data == 1).sum() > 10


def test_reference_too_small_is_flagged_in_table(dock, qtbot):
    viewer, widget = dock
    lesions = find_layer(viewer, "lesions")
    draw_wm_and_cortical(lesions)
    widget.minvox_spin.setValue(10000)
    build_refs(widget, qtbot)
    flags = {r[0]: r[7] for r in widget.table.row_texts()}
    assert "refwm_too_small" in flags["1"]
    assert "refgm_too_small" in flags["2"]
    assert widget.state.lesion(1).flags  # kept in the annotation state (saved with it)


def test_exclude_lesion_with_reason(dock, qtbot):
    viewer, widget = dock
    lesions = find_layer(viewer, "lesions")
    draw_wm_and_cortical(lesions)
    widget.refresh_table()
    widget.table.select_ids([2])
    widget.reason_combo.setCurrentText("artefact")
    widget.reason_edit.setText("streaks near sinus")
    widget.exclude_button.click()
    assert widget.state.lesion(2).excluded
    assert widget.state.lesion(2).exclusion_reason == "artefact: streaks near sinus"
    assert widget.table.row_texts()[1][7].startswith("excluded (artefact")
    build_refs(widget, qtbot)  # excluded lesions get no reference
    assert not (find_layer(viewer, "refgm").data == 2).any()
    widget.table.select_ids([2])
    widget.include_button.click()
    assert not widget.state.lesion(2).excluded


def test_consensus_class_shown_and_used_for_references(dock, qtbot, subject):
    import pandas as pd

    viewer, widget = dock
    lesions = find_layer(viewer, "lesions")
    draw_wm_and_cortical(lesions)
    subject.lesions_tsv.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {"lesion_id": [1, 2], "class": ["mixed", "rejected"], "consensus": ["agreed", "agreed"],
         "votes": ["mixed:3", "not_lesion:3"], "n_raters": [3, 3], "agreement": [1.0, 1.0],
         "resolution_reason": ["", ""]}
    ).to_csv(subject.lesions_tsv, sep="\t", index=False)
    widget.refresh_table()
    rows = {r[0]: r for r in widget.table.row_texts()}
    assert rows["1"][5] == "wm" and rows["1"][6] == "mixed"  # suggested vs consensus
    assert rows["2"][6] == "rejected"
    build_refs(widget, qtbot)
    refwm, refgm = find_layer(viewer, "refwm"), find_layer(viewer, "refgm")
    assert (refwm.data == 1).any()  # mixed: a WM ring ...
    assert not (refgm.data == 2).any() and not (refwm.data == 2).any()  # rejected: no reference


def test_references_stay_inside_the_qsm_brain_mask(dock, qtbot):
    """The dock follows qsm-ms rois: no reference voxel where chi is undefined."""
    viewer, widget = dock
    lesions = find_layer(viewer, "lesions")
    draw_wm_and_cortical(lesions)
    data = np.zeros(lesions.data.shape, np.int32)
    data[:, :19, :] = 1  # a brain mask that cuts through the first lesion's ring
    mask = find_layer(viewer, "mask")
    if mask is None:
        mask = viewer.add_labels(data, name="brain mask", metadata={"role": "mask", "subject": widget.subject})
    else:
        mask.data = data
    build_refs(widget, qtbot)
    refwm = np.asarray(find_layer(viewer, "refwm").data)
    assert (refwm == 1).sum() > 0
    assert not np.any(refwm[np.asarray(mask.data) == 0])
