"""Tissue import/estimate and vessel QC from the lesions and references dock."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from napari_qsm_ms._widgets._layers import find_layer, load_subject_into_viewer
from napari_qsm_ms._widgets.annotation import AnnotationWidget, grid_volume, import_segmentation_on_grid
from napari_qsm_ms.errors import InputFileError
from napari_qsm_ms.io.nifti import to_canonical
from napari_qsm_ms.roi.tissue import estimate_tissue

from .test_annotation_support import AFFINE, SHAPE, ball_indices, make_subject, tissue_array


@pytest.fixture
def dock(make_napari_viewer, tmp_path):
    sub = make_subject(tmp_path, with_tissue=False)
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, sub)
    widget = AnnotationWidget(viewer, recovery="never", autosave_delay_ms=100)
    viewer.window.add_dock_widget(widget, name="Lesions and references")
    yield viewer, widget, sub
    widget.shutdown()


def run(worker, qtbot):
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=30000):
        worker.start()


def aseg_from_tissue(tissue):
    """FreeSurfer codes: 4 ventricle (CSF), 3 left cortex, 2 left WM."""
    return np.choose(tissue, [0, 4, 3, 2, 10]).astype(np.int32)


def test_import_aseg_into_tissue_layer_is_undoable(dock, qtbot, tmp_path):
    viewer, widget, sub = dock
    truth = tissue_array()
    path = tmp_path / "aseg_on_t2star.nii.gz"
    nib.save(nib.Nifti1Image(aseg_from_tissue(truth), AFFINE), str(path))
    tissue = find_layer(viewer, "tissue")
    assert not tissue.data.any()
    run(widget.import_tissue(path, "aseg", start=False), qtbot)
    np.testing.assert_array_equal(tissue.data, to_canonical(truth.astype(np.int32), AFFINE)[0])
    tissue.undo()
    assert not tissue.data.any()


def test_import_refuses_other_grid_with_file_name(dock, qtbot, tmp_path):
    viewer, widget, sub = dock
    shifted = AFFINE.copy()
    shifted[0, 3] += 3.0
    path = tmp_path / "aseg_native.nii.gz"
    nib.save(nib.Nifti1Image(aseg_from_tissue(tissue_array()), shifted), str(path))
    with pytest.raises(InputFileError, match="aseg_native.nii.gz: not on the T2\\* grid"):
        import_segmentation_on_grid(path, "aseg", grid_volume(find_layer(viewer, "magnitude")))
    # (the dock runs the same function in a worker and shows the message; not exercised here
    # because run_with_progress also re-raises worker errors in the Qt loop, see the report)
    assert not find_layer(viewer, "tissue").data.any()


def test_import_refuses_non_label_file(dock, qtbot, tmp_path):
    viewer, widget, sub = dock
    path = tmp_path / "fast_seg.nii.gz"
    nib.save(nib.Nifti1Image(np.full(SHAPE, 7, np.int16), AFFINE), str(path))  # FAST codes are 0-3
    with pytest.raises(InputFileError, match="fast_seg.nii.gz: fast: labels must be 0-3"):
        import_segmentation_on_grid(path, "fast", grid_volume(find_layer(viewer, "magnitude")))


def test_estimate_tissue_applies_the_roi_estimate(dock, qtbot):
    viewer, widget, sub = dock
    run(widget.estimate_tissue(start=False), qtbot)
    tissue = find_layer(viewer, "tissue")
    expected = estimate_tissue(
        np.asarray(find_layer(viewer, "csfn").data, np.float32),
        np.asarray(find_layer(viewer, "magnitude").data, np.float32),
        np.asarray(find_layer(viewer, "mask").data) > 0,
        tuple(find_layer(viewer, "csfn").scale),
    )
    np.testing.assert_array_equal(tissue.data, expected)
    assert tissue.data.any()
    tissue.undo()
    assert not tissue.data.any()


def test_find_and_remove_vessels_undoable(dock, qtbot):
    viewer, widget, sub = dock
    lesions = find_layer(viewer, "lesions")
    lesions.data_setitem(ball_indices((29, 20, 5), 2.5, lesions.data.shape), 1)  # over the vessel line
    widget.vesselness_check.setChecked(False)
    widget.vessel_spin.setValue(0.2)
    run(widget.find_vessels(start=False), qtbot)
    vessels = find_layer(viewer, "vessels")
    assert vessels.metadata["derived_from_qsm"] is True
    chi = np.asarray(find_layer(viewer, "qsm").data)
    on = np.asarray(vessels.data) > 0
    assert on.any() and np.all(chi[on] > 0.2)  # every candidate well above its tissue
    before = np.array(lesions.data, copy=True)
    assert (before.astype(bool) & on).any()
    removed = widget.remove_vessels()
    assert removed["lesions"] == int((before.astype(bool) & on).sum())
    assert not (np.asarray(lesions.data).astype(bool) & on).any()
    lesions.undo()
    np.testing.assert_array_equal(lesions.data, before)
