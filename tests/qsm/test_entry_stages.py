"""Entering the pipeline at any stage (issue 13): a total field or a local field given instead of the
wrapped phase reproduces the full pipeline's chi where the stages coincide, from Python and the CLI."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_qsm_ms.cli import main
from napari_qsm_ms.io.units import wrap_to_pi
from napari_qsm_ms.qsm.dipole import GAMMA_BAR_MHZ_PER_T, ppm_per_radian
from napari_qsm_ms.qsm.pipeline import reconstruct, reconstruct_from

from ._spheres import field_ppm
from .test_pipeline import B0T, TE_SHORT, VS, _acquire, _affine

FAST_MEDI = dict(medi_max_iter=3, medi_cg_max_iter=10)


@pytest.fixture(scope="module")
def full():
    """The full pipeline from the wrapped phase on a phantom whose data region is the whole mask
    (short TE, no noise), so that every later entry sees the same trusted voxels."""
    aff = _affine()
    chi, brain, mag, phase = _acquire(aff, te_s=TE_SHORT)
    results = {inv: reconstruct(mag, phase, affine=aff, te_s=TE_SHORT, b0_t=B0T, mask=brain, inversion=inv, **FAST_MEDI)
               for inv in ("medi", "tkd")}
    assert results["medi"].parameters["data_region_fraction"] == 1.0
    return aff, brain, mag, results


def _same_chi(a, b):
    np.testing.assert_array_equal(a.mask, b.mask)
    scale = float(np.abs(a.chi_ppm).max())
    assert float(np.abs(a.chi_ppm - b.chi_ppm).max()) <= 1e-4 * scale


@pytest.mark.parametrize("units", ["ppm", "hz", "rad"])
def test_total_field_entry_reproduces_the_full_pipeline(full, units):
    aff, brain, mag, results = full
    ref = results["medi"]
    ppm = ref.intermediates["total_field_ppm"]
    data = {"ppm": ppm, "hz": ppm * np.float32(GAMMA_BAR_MHZ_PER_T * B0T),
            "rad": ref.intermediates["unwrapped_phase_rad"]}[units]
    got = reconstruct_from(data, entry="field", field_units=units, magnitude=mag, affine=aff, te_s=TE_SHORT,
                           b0_t=B0T, mask=brain, **FAST_MEDI)
    _same_chi(ref, got)
    assert got.parameters["entry"] == "field" and got.parameters["field_units"] == units
    assert "unwrapped_phase_rad" not in got.intermediates


@pytest.mark.parametrize("inversion", ["medi", "tkd"])
def test_local_field_entry_reproduces_the_full_pipeline(full, inversion):
    aff, brain, mag, results = full
    ref = results[inversion]
    got = reconstruct_from(ref.intermediates["local_field_ppm"], entry="local_field", field_units="ppm",
                           magnitude=mag, affine=aff, te_s=TE_SHORT, b0_t=B0T, mask=ref.mask, inversion=inversion,
                           **FAST_MEDI)
    assert got.parameters["erode_mm"] == 0 and got.parameters["bfr"] == "given"
    _same_chi(ref, got)


MULTI_ECHO_TES = (0.004, 0.008, 0.012)


def multi_echo_acquisition(aff):
    """chi, brain, 4-D magnitude (T2* decay) and 4-D wrapped phase of the sphere phantom at
    :data:`MULTI_ECHO_TES`; an offset that varies over the head makes the later echoes wrap."""
    chi, brain, mag, _ = _acquire(aff)
    f = field_ppm(chi, VS, (0, 0, 1))
    i = np.arange(chi.shape[0], dtype=np.float32)[:, None, None]
    phases = np.stack([wrap_to_pi((f / ppm_per_radian(t, B0T) + 0.1 * (i - 24) * t / 0.004).astype(np.float32))
                       for t in MULTI_ECHO_TES], axis=3)
    mags = np.stack([mag * np.float32(np.exp(-t / 0.03)) for t in MULTI_ECHO_TES], axis=3)
    return chi, brain, mags, phases


def test_multi_echo_field_entries_reproduce_the_full_pipeline():
    aff = _affine()
    chi, brain, mags, phases = multi_echo_acquisition(aff)
    tes = MULTI_ECHO_TES
    ref = reconstruct(mags, phases, affine=aff, te_s=tes, b0_t=B0T, mask=brain, inversion="tkd")
    assert ref.parameters["data_region_fraction"] == 1.0
    total = reconstruct_from(ref.intermediates["total_field_ppm"], entry="field", field_units="ppm", magnitude=mags,
                             affine=aff, te_s=tes, b0_t=B0T, mask=brain, inversion="tkd")
    _same_chi(ref, total)
    echoes = reconstruct_from(ref.intermediates["unwrapped_phase_rad"][..., None] * 0 + _unwrap_like(phases, ref),
                              entry="field", field_units="rad", magnitude=mags, affine=aff, te_s=tes, b0_t=B0T,
                              mask=brain, inversion="tkd")
    _same_chi(ref, echoes)


def _unwrap_like(phases, ref):
    """Each echo unwrapped as the pipeline does (region growing inside the mask)."""
    from napari_qsm_ms.qsm.region_unwrap import unwrap_region_growing

    brain = ref.intermediates["brain_mask"]
    mag = np.ones(brain.shape, np.float32)
    return np.stack([unwrap_region_growing(phases[..., e], brain, mag) for e in range(phases.shape[3])], axis=3)


def test_field_without_magnitude_needs_a_mask_and_runs_with_one(full):
    aff, brain, mag, results = full
    ppm = results["tkd"].intermediates["total_field_ppm"]
    with pytest.raises(Exception, match="mask is needed when there is no magnitude"):
        reconstruct_from(ppm, entry="field", field_units="ppm", affine=aff)
    r = reconstruct_from(ppm, entry="field", field_units="ppm", affine=aff, mask=brain, inversion="tkd")
    assert r.parameters["magnitude"] == "none" and r.parameters["b0_t"] is None and r.mask.any()
    # without a magnitude the noise weights (PDF, MEDI) are uniform in the mask: as a flat magnitude
    flat = reconstruct_from(ppm, entry="field", field_units="ppm", affine=aff, mask=brain, inversion="tkd",
                            magnitude=brain.astype(np.float32))
    _same_chi(flat, r)
    assert float(np.abs(r.chi_ppm - results["tkd"].chi_ppm).max()) < 0.05 * float(np.abs(r.chi_ppm).max())


def _save(path, arr, aff):
    nib.save(nib.Nifti1Image(np.asarray(arr), aff), path)
    return str(path)


def test_cli_field_in_hz_with_a_mask_only_records_the_entry(full, tmp_path, capsys):
    aff, brain, mag, results = full
    hz = results["tkd"].intermediates["total_field_ppm"] * np.float32(GAMMA_BAR_MHZ_PER_T * B0T)
    out = tmp_path / "chi.nii.gz"
    code = main(["recon", "--field", _save(tmp_path / "field_hz.nii.gz", hz, aff), "--field-units", "hz",
                 "--b0", str(B0T), "--mask", _save(tmp_path / "mask.nii.gz", brain.astype(np.uint8), aff),
                 "--out", str(out), "--inversion", "tkd"])
    assert code == 0, capsys.readouterr().err
    side = json.loads((tmp_path / "chi.json").read_text())
    assert side["EntryStage"] == "field" and side["Parameters"]["field_units"] == "hz"
    assert set(side["Sources"]) == {"field", "mask"}
    py = reconstruct_from(hz, entry="field", field_units="hz", b0_t=B0T, affine=aff, mask=brain, inversion="tkd")
    np.testing.assert_allclose(np.asarray(nib.load(out).dataobj), py.chi_ppm, atol=1e-6)  # CLI == Python


@pytest.mark.parametrize("case, expect", [
    ("no_units", "--field needs --field-units"),
    ("two_inputs", "give one input, --phase, --field or --local-field, not --phase and --field"),
    ("rad_no_te", "no echo time (--te) given"),
    ("no_mask", "file mode needs --magnitude (or --mask)"),
    ("units_with_phase", "--field-units is for --field or --local-field"),
    ("phase_units_with_field", "--phase-units and --phase-range are for --phase"),
    ("hz_4d", "needs --field-units rad"),
    ("hz_no_b0", "no field strength (--b0) given"),
])
def test_cli_entry_options_give_one_line_errors(full, tmp_path, capsys, case, expect):
    aff, brain, mag, results = full
    ppm = results["tkd"].intermediates["total_field_ppm"]
    field = _save(tmp_path / "field.nii.gz", ppm, aff)
    mask = _save(tmp_path / "mask.nii.gz", brain.astype(np.uint8), aff)
    out = tmp_path / "chi.nii.gz"
    argv = {
        "no_units": ["--field", field, "--mask", mask],
        "two_inputs": ["--field", field, "--phase", field, "--mask", mask, "--field-units", "ppm"],
        "rad_no_te": ["--field", field, "--field-units", "rad", "--b0", "7", "--mask", mask],
        "no_mask": ["--local-field", field, "--field-units", "ppm"],
        "units_with_phase": ["--phase", field, "--mask", mask, "--field-units", "ppm"],
        "phase_units_with_field": ["--field", field, "--mask", mask, "--field-units", "ppm", "--phase-units", "raw"],
        "hz_4d": ["--field", _save(tmp_path / "f4.nii.gz", np.stack([ppm, ppm], axis=3), aff), "--field-units", "hz",
                  "--b0", "7", "--mask", mask],
        "hz_no_b0": ["--field", field, "--field-units", "hz", "--mask", mask],
    }[case]
    code = main(["recon", *argv, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expect in err, err
    if case in ("rad_no_te", "hz_4d", "hz_no_b0"):
        assert "field" in err.split(":")[1] or ".nii.gz" in err  # names the file
    assert not out.exists()


def test_mask_keeping_a_tiny_part_of_the_field_of_view_is_warned_and_recorded(tmp_path, capsys):
    aff = _affine()
    chi, brain, mag, phase = _acquire(aff, noise=0.02)
    rng = np.random.default_rng(3)
    pad = ((12, 12), (12, 12), (10, 10))  # the same head in a field of view 3.4 times larger
    big_mag = np.pad(mag, pad, constant_values=0.02)
    big_phase = np.pad(phase, pad)
    outside = np.pad(np.zeros(phase.shape, bool), pad, constant_values=True)
    big_phase[outside] = rng.uniform(-np.pi, np.pi, int(outside.sum()))  # noise, as outside a real head
    paths = [_save(tmp_path / "mag.nii.gz", big_mag, aff), _save(tmp_path / "phase.nii.gz", big_phase.astype(np.float32), aff)]
    code = main(["recon", "--magnitude", paths[0], "--phase", paths[1], "--te", "0.0177", "--b0", str(B0T),
                 "--out", str(tmp_path / "chi.nii.gz"), "--inversion", "tkd"])
    err = capsys.readouterr().err
    assert code == 0, err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "the automatic brain mask keeps only" in warning[0]
    side = json.loads((tmp_path / "chi.json").read_text())
    frac = side["Parameters"]["brain_mask_fraction_of_fov"]
    assert 0.05 < frac < 0.10 and f"{100 * frac:.1f} %" in warning[0]
    assert side["Warnings"] == [warning[0].split("warning: ", 1)[1]]
    # the same head in its own field of view: no warning
    r = reconstruct(mag, phase, affine=aff, te_s=0.0177, b0_t=B0T, inversion="tkd")
    assert r.warnings == [] and r.parameters["brain_mask_fraction_of_fov"] > 0.2
