"""Invariants of the rim and vein measures (roi/rim.py, roi/veins.py) on analytic lesions.

A spherical lesion is drawn in world coordinates (mm) on grids of several voxel sizes, some with
an oblique affine; the expected values come from the analytic geometry, never from the code
under test.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from napari_qsm_ms.errors import ParameterError
from napari_qsm_ms.roi import rim as rim_mod
from napari_qsm_ms.roi import veins as veins_mod
from napari_qsm_ms.roi.rim import (
    RIM_BAND_MM,
    radial_profile,
    rim_metrics,
    signed_distance_mm,
    voxel_size_from_affine,
)
from napari_qsm_ms.roi.veins import VESSEL_THRESHOLD, vein_metrics

R_MM = 6.0
SHELL_HALF_MM = 2.5  # the drawn shell is wider than the measured band (|d| <= 1 mm) by > 1 voxel
RIM_PPM, CORE_PPM, OUT_PPM = 0.05, 0.01, -0.02


def _rotation(axis, deg):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    t = np.deg2rad(deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


GRIDS = [
    ((1.0, 1.0, 1.0), 0.0),
    ((0.47, 0.47, 1.0), 0.0),
    ((0.6, 0.8, 1.5), 0.0),
    ((1.0, 1.0, 1.0), 30.0),
    ((0.47, 0.47, 1.0), 25.0),
]


def _world(vs, tilt_deg, fov_mm=26.0):
    """Voxel centres in world mm (grid centred on the origin), the affine and the grid shape."""
    vs = np.asarray(vs, float)
    shape = tuple(int(np.ceil(fov_mm / v)) for v in vs)
    rot = _rotation((1.0, 0.3, 0.2), tilt_deg)
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(vs)
    affine[:3, 3] = -(rot @ (vs * (np.asarray(shape) - 1) / 2.0))
    idx = np.indices(shape).reshape(3, -1).T.astype(float)
    pts = idx @ affine[:3, :3].T + affine[:3, 3]
    return pts.reshape(*shape, 3), affine, shape


def _shell_lesion(vs, tilt_deg, half_space=None, half_width_mm=SHELL_HALF_MM):
    pts, affine, shape = _world(vs, tilt_deg)
    r = np.linalg.norm(pts, axis=-1)
    lesion = r <= R_MM
    chi = np.where(lesion, CORE_PPM, OUT_PPM).astype(np.float32)
    shell = np.abs(r - R_MM) <= half_width_mm
    if half_space is not None:
        shell &= half_space(pts, affine)
    chi[shell] = RIM_PPM
    return chi, lesion.astype(np.int32), affine, r


@pytest.mark.parametrize("vs,tilt", GRIDS, ids=[f"{v}-{t:g}deg" for v, t in GRIDS])
def test_uniform_shell_value_in_rim_band(vs, tilt):
    chi, lesion, affine, _ = _shell_lesion(vs, tilt)
    voxel = voxel_size_from_affine(affine)
    np.testing.assert_allclose(voxel, vs, rtol=1e-9)
    row = rim_metrics(chi, lesion, voxel).iloc[0]
    assert row["rim_ppm"] == pytest.approx(RIM_PPM, abs=1e-7)
    prof = radial_profile(chi, lesion.astype(bool), voxel, bins_mm=np.arange(-1.0, 1.01, 0.5))
    populated = prof[prof["voxels"] > 0]
    assert len(populated) >= 3
    np.testing.assert_allclose(populated["mean_ppm"], RIM_PPM, atol=1e-7)


@pytest.mark.parametrize("vs,tilt", GRIDS, ids=[f"{v}-{t:g}deg" for v, t in GRIDS])
def test_core_and_outside_of_a_thin_shell(vs, tilt):
    """A shell confined to the band: the core and outside medians are the drawn values."""
    pts, affine, _ = _world(vs, tilt)
    r = np.linalg.norm(pts, axis=-1)
    lesion = r <= R_MM
    chi = np.where(lesion, CORE_PPM, OUT_PPM).astype(np.float32)
    chi[np.abs(r - R_MM) <= 0.4] = RIM_PPM
    row = rim_metrics(chi, lesion.astype(int), voxel_size_from_affine(affine)).iloc[0]
    assert row["core_ppm"] == pytest.approx(CORE_PPM, abs=1e-7)
    assert row["outside_ppm"] == pytest.approx(OUT_PPM, abs=1e-7)


@pytest.mark.parametrize("vs,tilt", GRIDS, ids=[f"{v}-{t:g}deg" for v, t in GRIDS])
@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75, 1.0])
def test_angular_coverage_of_a_partial_shell(vs, tilt, fraction):
    """A shell on a sector of in-plane angle (about the slice axis) covers that fraction."""

    def sector(pts, affine):
        axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
        u, v = pts @ axes[:, 0], pts @ axes[:, 1]
        ang = np.mod(np.arctan2(v, u), 2 * np.pi)
        return ang < 2 * np.pi * fraction

    chi, lesion, affine, _ = _shell_lesion(vs, tilt, sector, half_width_mm=1.0)
    row = rim_metrics(chi, lesion, voxel_size_from_affine(affine)).iloc[0]
    assert abs(row["rim_coverage"] - fraction) <= 1.0 / 12 + 1e-9
    assert abs(row["rim_coverage_central"] - fraction) <= 1.0 / 12 + 1e-9
    assert row["rim_score_ppm"] > 0


def test_no_rim_no_coverage_and_uniform_bright_lesion_is_not_a_rim():
    chi, lesion, affine, r = _shell_lesion((0.5, 0.5, 1.0), 0.0, lambda p, a: np.zeros(p.shape[:3], bool))
    row = rim_metrics(chi, lesion, (0.5, 0.5, 1.0)).iloc[0]
    assert row["rim_coverage"] == 0.0 and not row["prl_suggested"]
    bright = np.where(r <= R_MM, 0.08, OUT_PPM).astype(np.float32)
    row = rim_metrics(bright, lesion, (0.5, 0.5, 1.0)).iloc[0]
    assert row["rim_coverage"] == 0.0 and not row["prl_suggested"]


@pytest.mark.parametrize("vs,tilt", GRIDS, ids=[f"{v}-{t:g}deg" for v, t in GRIDS])
def test_signed_distance_against_the_sphere(vs, tilt):
    pts, affine, _ = _world(vs, tilt)
    r = np.linalg.norm(pts, axis=-1)
    d = signed_distance_mm(r <= R_MM, voxel_size_from_affine(affine))
    near = np.abs(r - R_MM) < 4.0
    # a voxelised sphere's boundary is off the analytic one by up to about half a voxel diagonal
    tol = 0.5 * float(np.linalg.norm(vs)) + 0.05
    assert np.max(np.abs(d[near] - (r[near] - R_MM))) <= tol
    assert np.all(d[r <= R_MM] < 0) and np.all(d[r > R_MM] > 0)


def test_signed_distance_rejects_empty_and_sheared():
    with pytest.raises(ParameterError):
        signed_distance_mm(np.zeros((4, 4, 4), bool), (1, 1, 1))
    sheared = np.eye(4)
    sheared[0, 1] = 0.5
    with pytest.raises(ParameterError, match="sheared"):
        voxel_size_from_affine(sheared)


def test_rim_band_is_what_the_docs_say():
    assert RIM_BAND_MM == (-1.0, 1.0)


# ---- veins ----------------------------------------------------------------------------------
def _vein_lesion(vs, direction, offset_mm=0.0, radius_mm=0.5, seed=0):
    """A 4.5 mm-radius lesion (bright on T2*) with a dark vein tube, plus noise (SNR ~40)."""
    vs = np.asarray(vs, float)
    shape = tuple(int(np.ceil(24.0 / v)) for v in vs)
    idx = np.indices(shape).reshape(3, -1).T.astype(float)
    pts = ((idx - (np.asarray(shape) - 1) / 2.0) * vs).reshape(*shape, 3)
    r = np.linalg.norm(pts, axis=-1)
    lesion = r <= 4.5
    mag = np.where(lesion, 520.0, 400.0)
    if direction is not None:
        u = np.asarray(direction, float) / np.linalg.norm(direction)
        side = np.cross(u, [0.0, 0.0, 1.0] if abs(u[2]) < 0.9 else [1.0, 0.0, 0.0])
        side /= np.linalg.norm(side)
        p = pts - offset_mm * side
        dist = np.linalg.norm(p - (p @ u)[..., None] * u, axis=-1)
        h = float(np.mean(vs))
        pv = np.clip(0.5 + (radius_mm - dist) / h, 0, 1)
        mag = mag * (1 - pv) + 0.15 * mag * pv
    mag = mag + np.random.default_rng(seed).normal(0, 10.0, shape)
    return mag.astype(np.float32), lesion.astype(np.int32)


VEIN_GRIDS = [(1.0, 1.0, 1.0), (0.47, 0.47, 1.0)]


@pytest.mark.parametrize("vs", VEIN_GRIDS)
@pytest.mark.parametrize("direction", [(0, 0, 1), (1, 0, 0), (1, 1, 1), (0, 1, 0.3)])
def test_central_vein_crosses_the_centre_on_consecutive_slices(vs, direction):
    mag, lesion = _vein_lesion(vs, direction)
    row = vein_metrics(mag, lesion, vs).iloc[0]
    assert row["vein_score"] >= VESSEL_THRESHOLD
    assert row["vein_slices"] >= 2
    assert row["cvs_eligible"] and row["cvs_suggested"]


@pytest.mark.parametrize("vs", VEIN_GRIDS)
def test_no_vein_and_eccentric_vein_score_low(vs):
    none = vein_metrics(*_vein_lesion(vs, None), vs).iloc[0]
    ecc = vein_metrics(*_vein_lesion(vs, (0, 0, 1), offset_mm=3.6), vs).iloc[0]
    central = vein_metrics(*_vein_lesion(vs, (0, 0, 1)), vs).iloc[0]
    assert none["vein_score"] < VESSEL_THRESHOLD and not none["cvs_suggested"]
    assert ecc["vein_score"] < VESSEL_THRESHOLD and not ecc["cvs_suggested"]
    assert central["vein_score"] > max(none["vein_score"], ecc["vein_score"])


def test_small_lesion_is_not_eligible():
    mag = np.full((20, 20, 20), 400.0, np.float32)
    les = np.zeros(mag.shape, np.int32)
    les[9:11, 9:11, 9:11] = 1  # 2 mm across
    row = vein_metrics(mag, les, (1, 1, 1)).iloc[0]
    assert not row["cvs_eligible"] and not row["cvs_suggested"]


@pytest.mark.parametrize("module", [rim_mod, veins_mod])
def test_module_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
