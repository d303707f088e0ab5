"""The forward field against the analytic field of a uniformly magnetised sphere."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qsm_ms.errors import ParameterError
from napari_qsm_ms.simulate.forward import local_field_ppm, padded_shape


def sphere_partial_volume(shape, voxel_size_mm, center_mm, radius_mm, oversample=5):
    """Fraction of each voxel inside a sphere (sub-voxel sampling), so the volume is exact to ~0.1 %."""
    vs = np.asarray(voxel_size_mm, float)
    frac = np.zeros(shape, dtype=np.float64)
    offs = (np.arange(oversample) + 0.5) / oversample - 0.5
    axes = [np.arange(n) * v - c for n, v, c in zip(shape, vs, center_mm)]
    for ox in offs:
        for oy in offs:
            for oz in offs:
                x = (axes[0] + ox * vs[0])[:, None, None]
                y = (axes[1] + oy * vs[1])[None, :, None]
                z = (axes[2] + oz * vs[2])[None, None, :]
                frac += (x**2 + y**2 + z**2) <= radius_mm**2
    return (frac / oversample**3).astype(np.float32)


def analytic_sphere_field(shape, voxel_size_mm, center_mm, radius_mm, chi_ppm, b0_dir):
    """delta_B/B0 (ppm): 0 inside (Lorentz-corrected), chi/3 (a/r)^3 (3 cos^2 - 1) outside."""
    vs = np.asarray(voxel_size_mm, float)
    grids = np.meshgrid(*[np.arange(n) * v - c for n, v, c in zip(shape, vs, center_mm)], indexing="ij")
    pos = np.stack(grids, axis=-1)
    r = np.linalg.norm(pos, axis=-1)
    b = np.asarray(b0_dir, float) / np.linalg.norm(b0_dir)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos2 = (pos @ b) ** 2 / r**2
        field = chi_ppm / 3.0 * (radius_mm / r) ** 3 * (3 * cos2 - 1)
    field[r <= radius_mm] = 0.0
    return field, r


@pytest.mark.parametrize(
    "voxel_size_mm, b0_dir",
    [
        ((1.0, 1.0, 1.0), (0.0, 0.0, 1.0)),
        ((0.8, 0.8, 1.6), (0.0, 0.0, 1.0)),
        ((1.0, 1.0, 1.0), (0.0, np.sin(np.deg2rad(25)), np.cos(np.deg2rad(25)))),
        ((0.8, 1.0, 1.5), (0.3, -0.4, 0.866)),
    ],
)
def test_sphere_field_matches_analytic(voxel_size_mm, b0_dir):
    vs = np.asarray(voxel_size_mm)
    shape = tuple(int(n) for n in np.round(64.0 / vs))
    center = (np.asarray(shape) - 1) / 2.0 * vs + 0.37  # off-grid centre
    radius, chi = 8.0, 1.0
    pv = sphere_partial_volume(shape, vs, center, radius)
    field = local_field_ppm(chi * pv, vs, b0_dir, pad=True)
    expected, r = analytic_sphere_field(shape, vs, center, radius, chi, b0_dir)
    # Outside (1.5 to 3 radii) the field is up to chi/3 * 2 / 1.5^3 = 0.2 ppm. The discrete
    # k-space kernel differs from the continuous dipole by a first-order discretisation error
    # that is largest for B0 oblique to the grid (measured: max 5.5 %, RMS 1 % of that peak at
    # 1 mm, halving at 0.5 mm, see test_sphere_field_converges); axial B0 gives ~0.5 %.
    outside = (r >= 1.5 * radius) & (r <= 3.0 * radius)
    peak = chi / 3.0 * 2.0 / 1.5**3
    err = np.abs(field[outside] - expected[outside])
    h = float(vs.max())  # mm: the error scales with the coarsest voxel edge
    assert err.max() < 0.07 * h * peak, err.max()
    assert np.sqrt(np.mean(err**2)) < 0.015 * h * peak
    # Inside (r < 0.6 a) the Lorentz-corrected field is 0 (D = 1/3 - cos^2): residual below 3 % of chi.
    inside = r <= 0.6 * radius
    assert np.abs(field[inside]).max() < 0.03 * h * chi
    # The outside field is not trivially small (the checks above can fail).
    assert np.abs(expected[outside]).max() > 0.1


def test_sphere_field_converges_with_voxel_size():
    """For an oblique B0, the error of the discrete kernel is first order in the voxel size."""
    b0 = (0.0, np.sin(np.deg2rad(25)), np.cos(np.deg2rad(25)))
    errors = []
    for v in (1.0, 0.5):
        vs = np.full(3, v)
        shape = (int(64 / v),) * 3
        center = (np.asarray(shape) - 1) / 2.0 * vs + 0.37
        pv = sphere_partial_volume(shape, vs, center, 8.0, oversample=3)
        field = local_field_ppm(pv, vs, b0, pad=1.5)
        expected, r = analytic_sphere_field(shape, vs, center, 8.0, 1.0, b0)
        m = (r >= 12.0) & (r <= 24.0)
        errors.append(np.sqrt(np.mean((field[m] - expected[m]) ** 2)))
    assert errors[1] < 0.6 * errors[0], errors


def test_sphere_field_pad_option_and_linearity():
    vs = (1.0, 1.0, 1.0)
    shape = (48, 48, 48)
    center = np.array([23.5, 23.5, 23.5])
    pv = sphere_partial_volume(shape, vs, center, 6.0, oversample=3)
    f1 = local_field_ppm(pv, vs, (0, 0, 1))
    f2 = local_field_ppm(2.0 * pv, vs, (0, 0, 1))
    np.testing.assert_allclose(f2, 2.0 * f1, atol=1e-6)
    # Without padding, periodic images of the sphere add a field: the padded result is closer to analytic.
    expected, r = analytic_sphere_field(shape, vs, center, 6.0, 1.0, (0, 0, 1))
    f_nopad = local_field_ppm(pv, vs, (0, 0, 1), pad=False)
    far = r > 15
    assert np.abs(f1 - expected)[far].max() < np.abs(f_nopad - expected)[far].max()


def test_padded_shape_and_bad_input():
    assert padded_shape((30, 40, 50), True) == tuple(int(n) for n in padded_shape((60, 80, 100), False))
    assert all(a >= b for a, b in zip(padded_shape((30, 40, 50), 1.5), (45, 60, 75)))
    assert padded_shape((30, 40, 50), 0) == (30, 40, 50)
    with pytest.raises(ParameterError):
        padded_shape((30, 40, 50), 0.5)
    with pytest.raises(ParameterError):
        local_field_ppm(np.zeros((4, 4)), (1, 1, 1), (0, 0, 1))
    with pytest.raises(ParameterError):
        local_field_ppm(np.zeros((4, 4, 4)), (1, -1, 1), (0, 0, 1))


def test_demagnetisation_factors_known_cases():
    from napari_qsm_ms.simulate.forward import demagnetisation_factors, uniform_ellipsoid_field_ppm

    np.testing.assert_allclose(demagnetisation_factors([4.0, 4.0, 4.0]), [1 / 3] * 3, atol=1e-12)
    n = demagnetisation_factors([30.0, 45.0, 20.0])
    assert n.sum() == pytest.approx(1.0, abs=1e-9) and n[2] > n[0] > n[1]
    # long cylinder along B0: chi / 3; thin disc normal to B0: chi (1/3 - 1) = -2 chi / 3
    assert uniform_ellipsoid_field_ppm(1.0, [1, 1, 1e4], [0, 0, 1]) == pytest.approx(1 / 3, abs=1e-3)
    assert uniform_ellipsoid_field_ppm(1.0, [1e4, 1e4, 1], [0, 0, 1]) == pytest.approx(-2 / 3, abs=1e-3)


def test_uniform_ellipsoid_field_matches_padded_convolution():
    """The analytic interior field agrees with a heavily padded dipole convolution (oblique B0)."""
    from napari_qsm_ms.simulate.forward import uniform_ellipsoid_field_ppm

    vs = np.array([1.0, 1.0, 1.0])
    shape = (40, 40, 40)
    semi = np.array([12.0, 16.0, 8.0])
    grids = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * v for n, v in zip(shape, vs)], indexing="ij")
    q = sum((g / s) ** 2 for g, s in zip(grids, semi))
    ell = (q <= 1.0).astype(np.float32)
    b0 = np.array([0.0, np.sin(0.3), np.cos(0.3)])
    field = local_field_ppm(ell, vs, b0, pad=8.0)
    analytic = uniform_ellipsoid_field_ppm(1.0, semi, b0)
    core = q <= 0.5**2
    # staircase surface and remaining periodic images: 2 % of chi
    assert abs(np.median(field[core]) - analytic) < 0.02
    assert np.ptp(field[core]) < 0.05
