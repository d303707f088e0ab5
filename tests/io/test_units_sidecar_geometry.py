"""Phase units, sidecars and the B0 direction from the affine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from napari_qsm_ms.errors import InputFileError, ParameterError
from napari_qsm_ms.io.geometry import b0_direction_voxel
from napari_qsm_ms.io.sidecar import acquisition_from_sidecar, check_b0_t, check_te_s
from napari_qsm_ms.io.units import detect_phase_units, phase_to_radians, wrap_to_pi


def test_raw_integer_phase_equals_its_radian_twin():
    rng = np.random.default_rng(0)
    phase_rad = rng.uniform(-np.pi, np.pi, size=(10, 10, 10))
    raw = np.clip(np.round(phase_rad / np.pi * 4096), -4096, 4095).astype(np.int16)
    assert detect_phase_units(raw) == "raw"
    assert detect_phase_units(phase_rad) == "rad"
    got = phase_to_radians(raw)
    err = np.angle(np.exp(1j * (got - phase_rad)))
    assert np.abs(err).max() <= np.pi / 4096 + 1e-6


def test_unsigned_raw_phase_0_4095():
    rng = np.random.default_rng(1)
    phase_rad = rng.uniform(0, 2 * np.pi, size=(8, 8, 8))
    raw = np.clip(np.round(phase_rad / (2 * np.pi) * 4096), 0, 4095).astype(np.uint16)
    got = phase_to_radians(raw, "raw")
    err = np.angle(np.exp(1j * (got - phase_rad)))
    assert np.abs(err).max() < 2 * np.pi / 4096 + 1e-6


def test_unwrapped_phase_is_refused_with_the_file_name():
    unwrapped = np.linspace(-20, 20, 1000).reshape(10, 10, 10)
    with pytest.raises(InputFileError, match="ph.nii.gz: phase range"):
        phase_to_radians(unwrapped, source="ph.nii.gz")
    with pytest.raises(InputFileError, match="not wrapped"):
        phase_to_radians(unwrapped, "rad", source="ph.nii.gz")


def test_wrap_to_pi_range():
    x = np.linspace(-50, 50, 10001)
    w = wrap_to_pi(x)
    assert w.min() >= -np.pi and w.max() < np.pi
    np.testing.assert_allclose(np.exp(1j * w), np.exp(1j * x), atol=1e-9)


def test_sidecar_reads_te_and_b0(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"EchoTime": 0.0177, "MagneticFieldStrength": 7}))
    acq = acquisition_from_sidecar(p)
    assert acq.te_s == 0.0177 and acq.b0_t == 7.0
    p.write_text(json.dumps({"EchoTime": [0.005, 0.010], "MagneticFieldStrength": 3}))
    assert acquisition_from_sidecar(p).echo_times_s == (0.005, 0.010)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"MagneticFieldStrength": 7}), "no EchoTime"),
        (json.dumps({"EchoTime": 0.0177}), "no MagneticFieldStrength"),
        (json.dumps({"EchoTime": 17.7, "MagneticFieldStrength": 7}), "milliseconds"),
        (json.dumps({"EchoTime": -0.01, "MagneticFieldStrength": 7}), "must be > 0"),
        (json.dumps({"EchoTime": 0.0177, "MagneticFieldStrength": 70}), "outside 0.5-14 T"),
        (json.dumps([1, 2]), "JSON object"),
    ],
)
def test_bad_sidecars(tmp_path, content, message):
    p = tmp_path / "sub-01_part-phase_T2starw.json"
    p.write_text(content)
    with pytest.raises(InputFileError) as info:
        acquisition_from_sidecar(p)
    assert message in str(info.value) and str(p) in str(info.value)


def test_parameter_checks_without_file():
    with pytest.raises(ParameterError):
        check_te_s(0)
    with pytest.raises(ParameterError):
        check_b0_t(0.1)
    assert check_b0_t(3) == 3.0


def test_b0_direction_axial_and_permuted():
    np.testing.assert_allclose(b0_direction_voxel(np.diag([0.47, 0.47, 1.0, 1.0])), [0, 0, 1], atol=1e-12)
    # Coronal acquisition: array axis 1 runs along S.
    coronal = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(np.abs(b0_direction_voxel(coronal)), [0, 1, 0], atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_b0_direction_oblique_matches_rotation(seed):
    rng = np.random.default_rng(seed)
    rot = Rotation.from_rotvec(rng.normal(size=3) * 0.3).as_matrix()
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.47, 0.47, 1.0])
    b = b0_direction_voxel(affine)
    # The world direction rebuilt from the voxel-axis components is scanner z.
    np.testing.assert_allclose(rot @ b, [0, 0, 1], atol=1e-12)
