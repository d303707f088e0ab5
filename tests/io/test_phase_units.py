"""No silent unit errors (issue 13): phases that do not look like wrapped radians are refused with the
cause and the option that fixes it; known scalings are detected and recorded; stated scales work."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from napari_qsm_ms.cli import main
from napari_qsm_ms.errors import InputFileError, ParameterError
from napari_qsm_ms.io.units import interpret_phase, level_lattice, wrap_fraction

ROMEO_STEP = 1.7946e-6  # the real ROMEO crop: 4096 float levels of this size, +-0.0036744


def _wrapped_phase(seed=0, shape=(24, 22, 20)):
    """A wrapped phase in radians: a smooth field that wraps several times, plus noise."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    field = 0.9 * i + 0.4 * j - 0.3 * k + 2.0 * np.sin(i / 5.0)
    return np.angle(np.exp(1j * (field + 0.1 * rng.standard_normal(shape)))).astype(np.float32)


def _romeo_like(phase_rad):
    """The ROMEO crop's storage: 12-bit levels (k + 0.5) * 1.7946e-6 with k in -2048..2047."""
    k = np.clip(np.floor(phase_rad / (2 * np.pi) * 4096), -2048, 2047)
    return ((k + 0.5) * ROMEO_STEP).astype(np.float32)


def _ppm_local_field(shape=(24, 22, 20)):
    """A local field in ppm as a background-removed map looks: +-0.1 inside a brain, 0 outside."""
    c = np.array(shape) / 2
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    r2 = sum((g - cc) ** 2 for g, cc in zip(grids, c))
    brain = r2 < (0.4 * min(shape)) ** 2
    i, j, k = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    return np.where(brain, 0.1 * np.sin(i / 3.0) * np.cos(k / 4.0), 0).astype(np.float32)


def test_tiny_range_4096_level_phase_is_refused_naming_the_file_the_cause_and_the_fix():
    phase = _romeo_like(_wrapped_phase())
    assert abs(float(phase.max()) - 0.0036744) < 2e-6 and len(np.unique(phase)) > 3000
    with pytest.raises(InputFileError) as err:
        interpret_phase(phase, "auto", source="phase_4d.nii.gz")
    msg = str(err.value)
    assert msg.startswith("phase_4d.nii.gz: ") and "\n" not in msg
    assert "evenly spaced levels" in msg and "12-bit" in msg and "--phase-units raw" in msg and "--phase-range" in msg
    # stating 'rad' does not make +-0.0037 radians either
    with pytest.raises(InputFileError, match="span only"):
        interpret_phase(phase, "rad", source="phase_4d.nii.gz")


def test_the_suggested_options_give_the_radian_phase_back():
    rad = _wrapped_phase()
    phase = _romeo_like(rad)
    for units, rng in (("raw", None), ("auto", (-2048 * ROMEO_STEP, 2048 * ROMEO_STEP))):
        got, scaling = interpret_phase(phase, units, phase_range=rng)
        err = np.angle(np.exp(1j * (got - rad)))
        assert np.abs(err).max() <= 2 * np.pi / 4096 + 1e-5, units
        assert not scaling.detected
    assert interpret_phase(phase, "raw")[1].levels == 4096
    assert 4000 < level_lattice(phase)[1] <= 4096


def test_ppm_field_passed_as_phase_is_refused_pointing_to_field_entry():
    with pytest.raises(InputFileError) as err:
        interpret_phase(_ppm_local_field(), "auto", source="local_field_ppm.nii.gz")
    msg = str(err.value)
    assert msg.startswith("local_field_ppm.nii.gz: phase values span only") and "--field" in msg


def test_field_in_hz_and_unwrapped_phase_are_refused_pointing_to_field_entry():
    hz = _ppm_local_field() * 123.2  # +-12 Hz at 2.9 T
    with pytest.raises(InputFileError, match="neither radians.*--field FILE --field-units"):
        interpret_phase(hz, "auto", source="f.nii.gz")
    # within +-pi but never wrapping (an unwrapped phase of a small field): refused under auto,
    # accepted when the user states radians
    smooth = np.linspace(-1.6, 1.6, 24 * 22 * 20, dtype=np.float32).reshape(24, 22, 20)
    with pytest.raises(InputFileError, match="never wrap"):
        interpret_phase(smooth, "auto")
    assert interpret_phase(smooth, "rad")[1].units == "rad"


def test_known_scalings_are_detected_and_recorded():
    rad = _wrapped_phase()
    got, scaling = interpret_phase(rad)
    assert scaling.units == "rad" and scaling.detected and scaling.rad_per_unit == 1.0
    assert wrap_fraction(rad) > 1e-3
    raw = np.clip(np.round(rad / np.pi * 4096), -4096, 4095).astype(np.int16)
    got, scaling = interpret_phase(raw)
    assert scaling.units == "raw" and scaling.detected and scaling.levels == 8192
    assert scaling.rad_per_unit == pytest.approx(np.pi / 4096)
    unsigned = np.clip(np.round((rad + np.pi) / (2 * np.pi) * 4096), 0, 4095).astype(np.uint16)
    assert interpret_phase(unsigned)[1].levels == 4096
    deg = np.degrees(rad)
    with pytest.raises(InputFileError, match="--phase-units deg"):
        interpret_phase(deg)
    got, scaling = interpret_phase(deg, "deg")
    np.testing.assert_allclose(np.exp(1j * got), np.exp(1j * rad), atol=1e-5)


def test_contradictory_phase_options_are_refused():
    with pytest.raises(ParameterError, match="not both"):
        interpret_phase(_wrapped_phase(), "raw", phase_range=(-1, 1))
    with pytest.raises(InputFileError, match="outside --phase-range"):
        interpret_phase(_wrapped_phase(), phase_range=(-1, 1))


@pytest.mark.parametrize("kind", ["romeo", "ppm"])
def test_cli_refuses_with_one_line_and_writes_nothing(tmp_path, capsys, kind):
    aff = np.diag([0.47, 0.47, 1.0, 1.0])
    rad = _wrapped_phase()
    mag = np.full(rad.shape, 100.0, np.float32)
    stored = _romeo_like(rad) if kind == "romeo" else _ppm_local_field()
    ph = tmp_path / "phase.nii.gz"
    nib.save(nib.Nifti1Image(mag, aff), tmp_path / "mag.nii.gz")
    nib.save(nib.Nifti1Image(stored, aff), ph)
    (tmp_path / "phase.json").write_text(json.dumps({"EchoTime": 0.008, "MagneticFieldStrength": 3}))
    out = tmp_path / "chi.nii.gz"
    code = main(["recon", "--magnitude", str(tmp_path / "mag.nii.gz"), "--phase", str(ph), "--out", str(out),
                 "--inversion", "tkd"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(ph) in err
    assert ("--phase-units raw" in err) if kind == "romeo" else ("--field" in err)
    assert not out.exists()


def test_cli_records_the_detected_scaling_in_the_sidecar(tmp_path, capsys):
    from tests.qsm.test_pipeline import B0T, TE, _acquire, _affine

    aff = _affine()
    chi, brain, mag, phase = _acquire(aff, noise=0.02)
    raw = np.clip(np.round(phase / np.pi * 4096), -4096, 4095).astype(np.int16)
    nib.save(nib.Nifti1Image(mag, aff), tmp_path / "mag.nii.gz")
    nib.save(nib.Nifti1Image(raw, aff), tmp_path / "phase.nii.gz")
    code = main(["recon", "--magnitude", str(tmp_path / "mag.nii.gz"), "--phase", str(tmp_path / "phase.nii.gz"),
                 "--te", str(TE), "--b0", str(B0T), "--out", str(tmp_path / "chi.nii.gz"), "--inversion", "tkd"])
    assert code == 0, capsys.readouterr().err
    scaling = json.loads((tmp_path / "chi.json").read_text())["Parameters"]["phase_scaling"]
    assert scaling == {"units": "raw", "rad_per_unit": pytest.approx(np.pi / 4096), "offset": 0.0,
                       "detected": True, "levels": 8192}
