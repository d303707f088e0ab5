"""The "Reconstruct QSM" dock in a real napari viewer (Xvfb): TKD on a phantom, the layers, Cancel,
and a subject loaded by the plugin's reader (geometry from metadata, derivatives written)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_qsm_ms._widgets._layers import find_layer, load_subject_into_viewer
from napari_qsm_ms._widgets.recon import AUTO_MASK, NO_MAGNITUDE, QSM_LAYER_NAME, ReconWidget
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.io.units import wrap_to_pi
from napari_qsm_ms.qsm.dipole import ppm_per_radian
from tests.qsm._spheres import field_ppm, nrmse_percent, sphere_phantom

VS = (1.0, 1.0, 1.5)


def _run_to_result(widget, qtbot):
    """Press Reconstruct (through ``run``) and wait for the worker's result."""
    worker = widget.run(start=False)
    with qtbot.waitSignal(worker.finished, timeout=60000):
        worker.start()
    qtbot.waitUntil(lambda: widget.last_result is not None, timeout=5000)
    return widget.last_result


def _data():
    chi, brain, mag = sphere_phantom()
    f = field_ppm(chi, VS, (0, 0, 1))
    phase = wrap_to_pi((f / ppm_per_radian(0.0177, 7.0) + 0.5).astype(np.float32))
    return chi, brain, np.where(brain, mag, 0.02).astype(np.float32), phase


def test_tkd_through_the_widget_adds_qsm_and_mask_layers(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    chi, brain, mag, phase = _data()
    mag_layer = viewer.add_image(mag, name="mag", scale=VS, translate=(-20, -20, -30))
    viewer.add_image(phase, name="phase", scale=VS, translate=(-20, -20, -30))
    widget = ReconWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Reconstruct QSM")
    widget.magnitude_combo.setCurrentText("mag")
    widget.phase_combo.setCurrentText("phase")
    # this noise-free phantom phase never wraps: 'auto' refuses it (issue 13), so the units are stated
    widget.phase_units_combo.setCurrentIndex(widget.phase_units_combo.findData("rad"))
    assert widget.mask_combo.currentText() == AUTO_MASK
    widget.inversion_combo.setCurrentIndex(widget.inversion_combo.findData("tkd"))
    widget.bfr_combo.setCurrentIndex(widget.bfr_combo.findData("vsharp"))
    widget.erode_spin.setValue(1.0)
    worker = widget.run(start=False)
    with qtbot.waitSignal(worker.finished, timeout=60000):
        worker.start()
    qtbot.waitUntil(lambda: QSM_LAYER_NAME in viewer.layers, timeout=5000)
    qsm = viewer.layers[QSM_LAYER_NAME]
    assert tuple(qsm.contrast_limits) == pytest.approx((-0.15, 0.15))
    assert qsm.colormap.name == "gray" and qsm.visible
    np.testing.assert_allclose(qsm.scale, mag_layer.scale)
    np.testing.assert_allclose(qsm.translate, mag_layer.translate)
    assert qsm.data.dtype == np.float32 and qsm.data.shape == mag.shape
    mask_layer = viewer.layers["QSM mask"]
    assert mask_layer._type_string == "labels" and mask_layer.data.any()
    # 60 % was written for the clamped TKD; the literature's TKD (issue 13, h13a) gives 64 % on these spheres
    assert nrmse_percent(np.asarray(qsm.data), chi, np.asarray(mask_layer.data) > 0) < 70
    assert widget.run_button.isEnabled()
    assert "done" in widget.status.text().lower()
    assert widget.last_result.parameters["unwrap"] == "region"  # the default


def test_cancel_stops_the_reconstruction_without_layers(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    chi, brain, mag, phase = _data()
    viewer.add_image(mag, name="mag", scale=VS)
    viewer.add_image(phase, name="phase", scale=VS)
    widget = ReconWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Reconstruct QSM")
    widget.magnitude_combo.setCurrentText("mag")
    widget.phase_combo.setCurrentText("phase")
    widget.phase_units_combo.setCurrentIndex(widget.phase_units_combo.findData("rad"))
    widget.inversion_combo.setCurrentIndex(widget.inversion_combo.findData("medi"))
    worker = widget.run(start=False)
    assert widget.progress.cancel_button.isEnabled()
    widget.progress.cancel_button.click()  # cancel before the first progress report
    with qtbot.waitSignal(worker.finished, timeout=60000):
        worker.start()
    qtbot.waitUntil(lambda: widget.progress.status.text() == "cancelled", timeout=5000)
    assert QSM_LAYER_NAME not in viewer.layers
    assert widget.last_result is None
    assert widget.run_button.isEnabled()


def test_bad_layers_give_a_message_not_a_crash(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(np.ones((10, 10, 10), np.float32), name="a")
    viewer.add_image(np.ones((10, 10, 12), np.float32), name="b")
    widget = ReconWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Reconstruct QSM")
    widget.magnitude_combo.setCurrentText("a")
    widget.phase_combo.setCurrentText("b")
    assert widget.run() is None
    assert "not on the grid" in widget.status.text()


def test_subject_from_reader_writes_derivatives(make_napari_viewer, qtbot, tmp_path):
    chi, brain, mag, phase = _data()
    root = tmp_path / "study"
    anat = root / "sub-01" / "anat"
    anat.mkdir(parents=True)
    aff = np.diag([-VS[0], VS[1], VS[2], 1.0])  # LPS-like x flip: the reader shows it canonically
    nib.save(nib.Nifti1Image(mag, aff), anat / "sub-01_part-mag_T2starw.nii.gz")
    raw = np.clip(np.round(phase / np.pi * 2048), -2048, 2047).astype(np.int16)
    nib.save(nib.Nifti1Image(raw, aff), anat / "sub-01_part-phase_T2starw.nii.gz")
    (anat / "sub-01_part-phase_T2starw.json").write_text(json.dumps({"EchoTime": 0.0177, "MagneticFieldStrength": 7}))
    viewer = make_napari_viewer()
    sub = StudyFiles.at(root).subject("01")
    load_subject_into_viewer(viewer, sub)
    widget = ReconWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Reconstruct QSM")
    assert widget.magnitude_combo.currentText() == find_layer(viewer, "magnitude").name
    assert widget.phase_combo.currentText() == find_layer(viewer, "phase").name
    assert widget.te_spin.value() == pytest.approx(17.7) and widget.b0_spin.value() == pytest.approx(7.0)
    assert widget.save_check.isEnabled()
    widget.save_check.setChecked(True)
    # raw levels of a noise-free phase that never wraps fill only part of the 12-bit range: stated as raw
    widget.phase_units_combo.setCurrentIndex(widget.phase_units_combo.findData("raw"))
    widget.inversion_combo.setCurrentIndex(widget.inversion_combo.findData("tkd"))
    widget.unwrap_combo.setCurrentIndex(widget.unwrap_combo.findData("laplacian"))
    _run_to_result(widget, qtbot)
    assert sub.chimap.exists() and sub.brain_mask.exists()
    side = json.loads((sub.chimap.parent / "sub-01_Chimap.json").read_text())
    assert side["Parameters"]["unwrap"] == "laplacian" and side["Parameters"]["inversion"] == "tkd"
    saved = nib.load(sub.chimap)
    np.testing.assert_allclose(saved.affine, aff)
    qsm = find_layer(viewer, "qsm")
    assert qsm is not None and qsm.visible and qsm.metadata["path"] == sub.chimap
    # the layer is shown canonically (x flipped back), the file keeps the source orientation
    np.testing.assert_allclose(np.asarray(qsm.data)[::-1], np.asarray(saved.dataobj), atol=1e-6)


def test_plugin_menu_dock_puts_qsm_below_the_outlines_and_keeps_the_active_layer(make_napari_viewer, qtbot,
                                                                                 tmp_path):
    from tests.qsm.test_pipeline import _acquire, _affine

    aff = _affine()
    chi, brain, mag, phase = _acquire(aff, noise=0.02)  # a phase that wraps: 'auto' takes it
    sub = StudyFiles.at(tmp_path / "study").subject("01")
    sub.magnitude.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(mag, aff), sub.magnitude)
    nib.save(nib.Nifti1Image(phase, aff), sub.phase)
    sub.phase_json.write_text(json.dumps({"EchoTime": 0.0177, "MagneticFieldStrength": 7}))
    lesions = np.zeros(brain.shape, np.uint8)
    lesions[chi > 0.09] = 1
    sub.lesions.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(lesions, aff), sub.lesions)
    viewer = make_napari_viewer()
    for path in (sub.magnitude, sub.phase, sub.lesions):
        viewer.open(str(path), plugin="napari-qsm-ms")
    outline = find_layer(viewer, "lesions")
    assert outline.metadata.get("contour")  # drawn as outlines (the Study dock sets layer.contour from it)
    viewer.layers.selection.active = outline  # the user was drawing lesions
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Reconstruct QSM")
    widget.inversion_combo.setCurrentIndex(widget.inversion_combo.findData("tkd"))
    worker = widget.run(start=False)
    with qtbot.waitSignal(worker.finished, timeout=60000):
        worker.start()
    qtbot.waitUntil(lambda: find_layer(viewer, "qsm") is not None, timeout=5000)
    names = [layer.name for layer in viewer.layers]
    qsm, mask = find_layer(viewer, "qsm"), find_layer(viewer, "mask")
    assert names.index(qsm.name) < names.index(outline.name), names
    assert names.index(mask.name) < names.index(outline.name), names
    assert viewer.layers.selection.active is outline
    assert viewer.layers.selection.active is not mask


def test_dock_starts_from_a_field_map_with_a_mask_and_no_magnitude(make_napari_viewer, qtbot):
    chi, brain, mag, _ = _data()
    f_hz = field_ppm(chi, VS, (0, 0, 1)) * np.float32(42.577478 * 7.0)
    viewer = make_napari_viewer()
    viewer.add_image(f_hz.astype(np.float32), name="fieldmap", scale=VS)
    viewer.add_labels(brain.astype(np.int32), name="brain", scale=VS)
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Reconstruct QSM")
    widget.entry_combo.setCurrentIndex(widget.entry_combo.findData("field"))
    widget.magnitude_combo.setCurrentText(NO_MAGNITUDE)
    widget.phase_combo.setCurrentText("fieldmap")
    widget.field_units_combo.setCurrentIndex(widget.field_units_combo.findData("hz"))
    assert not widget.phase_units_combo.isEnabled() and not widget.unwrap_combo.isEnabled()
    widget.inversion_combo.setCurrentIndex(widget.inversion_combo.findData("tkd"))
    assert widget.run() is None and "brain mask layer" in widget.status.text()  # no magnitude, no mask
    widget.mask_combo.setCurrentText("brain")
    worker = widget.run(start=False)
    with qtbot.waitSignal(worker.finished, timeout=60000):
        worker.start()
    qtbot.waitUntil(lambda: QSM_LAYER_NAME in viewer.layers, timeout=5000)
    r = widget.last_result
    assert r.parameters["entry"] == "field" and r.parameters["field_units"] == "hz"
    assert nrmse_percent(r.chi_ppm, chi, r.mask) < 60


def test_dock_reconstructs_a_multi_echo_phase_opened_with_the_reader(make_napari_viewer, qtbot, tmp_path):
    from tests.qsm.test_entry_stages import MULTI_ECHO_TES as tes
    from tests.qsm.test_entry_stages import multi_echo_acquisition
    from tests.qsm.test_pipeline import B0T, _affine

    aff = _affine()
    chi, brain, mags, phases = multi_echo_acquisition(aff)
    nib.save(nib.Nifti1Image(mags, aff), tmp_path / "mag_4d.nii.gz")
    nib.save(nib.Nifti1Image(phases, aff), tmp_path / "phase_4d.nii.gz")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "mag_4d.nii.gz"), plugin="napari-qsm-ms")
    viewer.open(str(tmp_path / "phase_4d.nii.gz"), plugin="napari-qsm-ms")
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Reconstruct QSM")
    widget.magnitude_combo.setCurrentText("mag_4d")
    widget.phase_combo.setCurrentText("phase_4d")
    widget.b0_spin.setValue(B0T)
    widget.inversion_combo.setCurrentIndex(widget.inversion_combo.findData("tkd"))
    assert widget.run() is None and "needs its echo times" in widget.status.text()
    widget.echo_times_edit.setText("4, 8, 12")
    _run_to_result(widget, qtbot)
    r = widget.last_result
    assert r.parameters["te_s"] == pytest.approx(list(tes)) and r.chi_ppm.shape == chi.shape
    assert nrmse_percent(r.chi_ppm, chi, r.mask) < 70


def test_dock_lambda_rules_reach_the_pipeline_and_auto_noise_needs_a_magnitude(make_napari_viewer, qtbot):
    from napari_qsm_ms.qsm import defaults

    chi, brain, mag, phase = _data()
    rng = np.random.default_rng(11)
    sigma = 0.05 * float(np.median(mag[brain]))
    signal = mag * np.exp(1j * phase) + sigma * (rng.standard_normal(mag.shape) + 1j * rng.standard_normal(mag.shape))
    viewer = make_napari_viewer()
    viewer.add_image(np.abs(signal).astype(np.float32), name="mag", scale=VS)
    viewer.add_image(wrap_to_pi(np.angle(signal).astype(np.float32)), name="phase", scale=VS)
    viewer.add_labels(brain.astype(np.int32), name="brain", scale=VS)
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Reconstruct QSM")
    widget.phase_combo.setCurrentText("phase")
    widget.mask_combo.setCurrentText("brain")
    rule = widget.lambda_rule_combo
    assert rule.currentData() == defaults.MEDI_LAMBDA and not widget.lambda_spin.isEnabled()
    rule.setCurrentIndex(rule.findData(None))  # fixed: the value beside is used
    assert widget.lambda_spin.isEnabled()
    widget.lambda_spin.setValue(2000)
    assert widget.parameters()["medi_lambda"] == 2000.0
    rule.setCurrentIndex(rule.findData(defaults.AUTO_NOISE))
    assert not widget.lambda_spin.isEnabled() and widget.parameters()["medi_lambda"] == defaults.AUTO_NOISE
    widget.magnitude_combo.setCurrentText(NO_MAGNITUDE)
    assert widget.inversion_combo.currentData() == "auto"  # without a magnitude that is TV: the MEDI weight is moot
    widget.inversion_combo.setCurrentIndex(widget.inversion_combo.findData("medi"))
    assert widget.run() is None and "auto-noise measures the noise in the magnitude" in widget.status.text()
    widget.magnitude_combo.setCurrentText("mag")
    _run_to_result(widget, qtbot)
    p = widget.last_result.parameters
    assert p["medi_lambda_choice"] == "discrepancy (magnitude noise)"
    assert p["magnitude_noise_sd"] == pytest.approx(sigma, rel=0.15)


def test_dock_medi_step_cap_typed_reaches_the_pipeline_and_its_warning_shows(make_napari_viewer, qtbot):
    """The user types a Gauss-Newton cap of 1 into 'MEDI steps (max)': MEDI runs one step, and the
    dock's status carries the pipeline's warning that the cap, not the stopping rule, ended it."""
    from qtpy.QtCore import Qt

    chi, brain, mag, phase = _data()
    viewer = make_napari_viewer()
    viewer.add_image(mag, name="mag", scale=VS)
    viewer.add_image(phase, name="phase", scale=VS)
    viewer.add_labels(brain.astype(np.int32), name="brain", scale=VS)
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Reconstruct QSM")
    widget.phase_combo.setCurrentText("phase")
    widget.mask_combo.setCurrentText("brain")
    widget.phase_units_combo.setCurrentIndex(widget.phase_units_combo.findData("rad"))  # never wraps: stated
    widget.inversion_combo.setCurrentIndex(widget.inversion_combo.findData("medi"))
    rule = widget.lambda_rule_combo
    rule.setCurrentIndex(rule.findData(None))
    spin = widget.medi_steps_spin
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "1")
    qtbot.keyClick(spin.lineEdit(), Qt.Key_Enter)
    assert spin.value() == 1
    _run_to_result(widget, qtbot)
    p = widget.last_result.parameters
    assert p["medi_max_iter"] == 1 and p["medi_iterations"] == 1 and p["medi_converged"] is False
    assert "warning: MEDI stopped at its cap of 1 Gauss-Newton steps" in widget.status.text()
