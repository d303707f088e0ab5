"""The "Coregister onto T2*" dock in a real viewer: run, QC layers, live nudge, save."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qsm_ms._widgets.coregister import BLEND_LAYER, CHECKER_LAYER, FIXED_LAYER, CoregisterWidget
from napari_qsm_ms.io.nifti import load_volume, to_canonical
from napari_qsm_ms.registration.qc import (
    apply_nudge,
    checkerboard_mask,
    display_range,
    nudge_matrix,
    scale_intensity,
)
from napari_qsm_ms.registration.resample import load_transform, resample_volume
from napari_qsm_ms.registration.rigid import max_displacement_mm
from napari_qsm_ms.simulate.study import read_transform, simulate_study
from napari_qsm_ms.simulate.truth import TruthFiles


@pytest.fixture
def subject(tmp_path):
    study = simulate_study(tmp_path / "study", 1, seed=3, shape=(64, 64, 32), voxel_size_mm=(2.0, 2.0, 3.0),
                           raw_voxel_mm={"wmn": 2.5, "csfn": 2.5, "flair": 2.5}, oblique_deg=10, raters=None)
    return study.subjects()[0]


@pytest.fixture
def widget(make_napari_viewer):
    viewer = make_napari_viewer()
    w = CoregisterWidget(viewer)
    viewer.window.add_dock_widget(w, name="Coregister onto T2*")
    return w




def test_coregister_in_worker_then_checkerboard_nudge_and_save(widget, subject, qtbot):
    widget.folder.setText(str(subject.anat))
    widget.series_boxes["wmn"].setChecked(False)
    widget.series_boxes["flair"].setChecked(False)
    with qtbot.waitSignal(widget.panel._relay.changed, timeout=5000):
        widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.worker.is_running, timeout=120_000)
    qtbot.waitUntil(lambda: CHECKER_LAYER in widget.viewer.layers, timeout=10_000)
    assert "csfn: MI" in widget.result_label.text()
    assert subject.coreg_series("csfn").exists() and not subject.coreg_series("wmn").exists()
    # the saved transform matches the simulation's truth
    truth = np.linalg.inv(read_transform(TruthFiles(subject.study, subject.label).transform("csfn")))
    mask = load_volume(TruthFiles(subject.study, subject.label).brain_mask)
    pts = np.argwhere(mask.data > 0) @ mask.affine[:3, :3].T + mask.affine[:3, 3]
    saved = load_transform(subject.coreg_transform("csfn", ".json"))
    assert max_displacement_mm(saved, truth, pts) < 0.5

    viewer = widget.viewer
    check = viewer.layers[CHECKER_LAYER]
    fixed = load_volume(subject.magnitude)
    raw = load_volume(subject.raw_series("csfn"))
    moving = resample_volume(raw, fixed.shape, fixed.affine, saved)  # source orientation, then canonical
    moving_range = display_range(moving)
    fixed_display = scale_intensity(fixed.data, display_range(fixed.data))
    mask = checkerboard_mask(fixed.shape, fixed.voxel_size_mm, 16.0)
    expected = np.where(mask, fixed_display, scale_intensity(moving, moving_range))
    np.testing.assert_allclose(check.data, to_canonical(expected, fixed.affine)[0], atol=1e-5)
    assert check.visible and not viewer.layers[BLEND_LAYER].visible
    # display geometry: the QC layers sit where the T2* grid is (scale = voxel size)
    np.testing.assert_allclose(sorted(check.scale), sorted(fixed.voxel_size_mm), atol=1e-4)

    # blended overlay
    widget.mode.setCurrentText("blend")
    assert viewer.layers[BLEND_LAYER].visible and viewer.layers[FIXED_LAYER].visible and not check.visible
    widget.opacity.setValue(30)
    assert viewer.layers[BLEND_LAYER].opacity == pytest.approx(0.3)

    # live nudge: shift 2 mm to the right; the visible slice follows at once, the volume when idle
    axis, index = widget.visible_slice()
    sl = tuple(index if a == axis else slice(None) for a in range(3))
    before = viewer.layers[BLEND_LAYER].data.copy()
    widget.shift[0].setValue(2.0)
    widget._timer.stop()  # hold the whole-volume update to see the slice-only one first
    nudge = nudge_matrix((2.0, 0, 0), (0, 0, 0), widget.qc.center_ras)
    nudged = to_canonical(resample_volume(raw, fixed.shape, fixed.affine, apply_nudge(saved, nudge)), fixed.affine)[0]
    nudged_display = scale_intensity(nudged, moving_range)
    qtbot.waitUntil(lambda: not np.array_equal(viewer.layers[BLEND_LAYER].data[sl], before[sl]), timeout=5000)
    np.testing.assert_allclose(viewer.layers[BLEND_LAYER].data[sl], nudged_display[sl], atol=1e-5)
    assert widget._stale  # only the visible slice is up to date
    widget._timer.start()
    qtbot.waitUntil(lambda: not widget._stale, timeout=5000)
    np.testing.assert_allclose(viewer.layers[BLEND_LAYER].data, nudged_display, atol=1e-5)
    canonical_mask = to_canonical(mask, fixed.affine)[0]
    np.testing.assert_allclose(viewer.layers[CHECKER_LAYER].data[~canonical_mask], nudged_display[~canonical_mask],
                               atol=1e-5)

    # save the nudged transform: files re-written, sidecar records the nudge, spin boxes reset
    with qtbot.waitSignal(widget.panel._relay.changed, timeout=5000):
        widget.save_button.click()
    qtbot.waitUntil(lambda: not widget.worker.is_running, timeout=60_000)
    qtbot.waitUntil(lambda: widget.shift[0].value() == 0.0, timeout=5000)
    np.testing.assert_allclose(load_transform(subject.coreg_transform("csfn", ".json")),
                               apply_nudge(saved, nudge), atol=1e-9)
    assert "1 manual nudge" in widget.qc_label.text()


def test_subject_is_taken_from_layer_metadata_and_bad_folder_is_reported(widget, subject, tmp_path):
    viewer = widget.viewer
    mag = load_volume(subject.magnitude)
    viewer.add_image(mag.data, metadata={"path": subject.magnitude, "affine": mag.affine})
    assert widget.subject() == subject
    widget.folder.setText(str(tmp_path))
    assert widget._on_run() is None
    assert "not a subject folder" in widget.result_label.text()


def test_show_qc_without_saved_transform_reports_it(widget, subject):
    widget.folder.setText(str(subject.anat))
    widget.show_qc("flair")
    assert "no saved coregistration for flair" in widget.result_label.text()
    assert CHECKER_LAYER not in widget.viewer.layers


def test_qc_layers_sit_on_the_readers_magnitude_layer(widget, subject):
    """Opened with the plugin's reader, the subject fills the folder and QC layers overlay exactly."""
    from napari_qsm_ms._widgets._layers import find_layer, load_subject_into_viewer
    from napari_qsm_ms.registration.study import coregister_subject

    coregister_subject(subject, keys=("flair",))
    load_subject_into_viewer(widget.viewer, subject)
    assert widget.subject() == subject
    widget.show_qc("flair")
    mag = find_layer(widget.viewer, "magnitude")
    check = widget.viewer.layers[CHECKER_LAYER]
    assert check.data.shape == mag.data.shape
    np.testing.assert_allclose(check.scale, mag.scale)
    np.testing.assert_allclose(check.translate, mag.translate)
    assert "MI" in widget.qc_label.text()


def test_cancel_stops_the_worker_without_outputs(widget, subject, qtbot):
    widget.folder.setText(str(subject.anat))
    for key in ("wmn", "csfn"):
        widget.series_boxes[key].setChecked(False)
    with qtbot.waitSignal(widget.panel._relay.changed, timeout=5000):
        widget.run_button.click()
    widget.panel.cancel_button.click()
    qtbot.waitUntil(lambda: not widget.worker.is_running, timeout=60_000)
    qtbot.waitUntil(lambda: widget.panel.status.text() == "cancelled", timeout=5000)
    assert not subject.coreg_series("flair").exists()
    assert not subject.coreg_transform("flair", ".json").exists()
    assert widget.run_button.isEnabled()


def test_a_refused_registration_is_reported_in_the_dock(widget, subject, qtbot):
    from napari_qsm_ms.io.nifti import save_volume

    raw = load_volume(subject.raw_series("flair"))
    save_volume(subject.raw_series("flair"), np.zeros_like(raw.data), raw.affine)
    widget.folder.setText(str(subject.anat))
    for key in ("wmn", "csfn"):
        widget.series_boxes[key].setChecked(False)
    with qtbot.waitSignal(widget.panel._relay.changed, timeout=5000):
        widget.run_button.click()
    qtbot.waitUntil(lambda: not widget.worker.is_running, timeout=60_000)
    qtbot.waitUntil(lambda: "empty (all zero)" in widget.result_label.text(), timeout=5000)
    assert "sub-01_FLAIR.nii.gz" in widget.result_label.text()
    assert not subject.coreg_series("flair").exists()
    assert CHECKER_LAYER not in widget.viewer.layers
