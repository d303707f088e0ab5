"""The fused half-spectrum passes of MEDI's k-space CG against plain numpy (Parseval, brute force)."""

import numpy as np
import pytest
import scipy.fft as sfft

from napari_qsm_ms.qsm import _kspace


def _spectra(shape, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    return a, b, sfft.rfftn(a), sfft.rfftn(b)


@pytest.mark.parametrize("shape", [(6, 5, 8), (7, 4, 9)])  # even and odd last axis
def test_half_dot_is_parseval(shape):
    a, b, ah, bh = _spectra(shape, 0)
    c = _kspace.plane_weights(ah.shape[-1], shape[-1])
    n = np.prod(shape)
    assert _kspace.half_dot(ah, bh, c) == pytest.approx(n * float(np.dot(a.ravel(), b.ravel())), rel=1e-5)


@pytest.mark.parametrize("use_pk", [True, False])
def test_step_and_direction_match_numpy(use_pk):
    shape = (6, 5, 8)
    _, _, x, r = _spectra(shape, 1)
    _, _, p, ap = _spectra(shape, 2)
    rng = np.random.default_rng(3)
    pk = rng.uniform(0.5, 2, ap.shape).astype(np.float32)
    d = rng.uniform(-1, 1, ap.shape).astype(np.float32)
    c = _kspace.plane_weights(ap.shape[-1], shape[-1])
    x0, r0, p0, alpha = x.copy(), r.copy(), p.copy(), 0.37
    z = np.empty_like(r)
    rr, rz = _kspace.step(x, r, p, ap, alpha, pk, use_pk, z, c)
    r_ref = r0 - alpha * ap
    z_ref = pk * r_ref if use_pk else r_ref
    np.testing.assert_allclose(x, x0 + alpha * p0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r, r_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(z, z_ref, rtol=1e-5, atol=1e-5)
    assert rr == pytest.approx(_kspace.half_dot(r_ref, r_ref, c), rel=1e-5)
    assert rz == pytest.approx(_kspace.half_dot(r_ref, z_ref, c), rel=1e-5)
    dp, p_copy = np.empty_like(p), np.empty_like(p)
    _kspace.next_direction(p, z, 0.5, d, dp, p_copy)
    np.testing.assert_array_equal(p_copy, p)
    np.testing.assert_allclose(p, z_ref + 0.5 * p0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dp, d * (z_ref + 0.5 * p0), rtol=1e-5, atol=1e-5)


def test_add_data_term_returns_the_inner_product():
    shape = (5, 6, 7)
    _, _, ap, s = _spectra(shape, 4)
    _, _, p, _ = _spectra(shape, 5)
    d = np.random.default_rng(6).uniform(0, 3, ap.shape).astype(np.float32)
    c = _kspace.plane_weights(ap.shape[-1], shape[-1])
    ref = ap + d * s
    pap = _kspace.add_data_term(ap, d, s, p, c)
    np.testing.assert_allclose(ap, ref, rtol=1e-5, atol=1e-5)
    assert pap == pytest.approx(_kspace.half_dot(p, ref, c), rel=1e-5)


def test_multiply_in_place_is_numpys_product_bit_for_bit():
    # MEDI's maps must not change with the fused product (float32, no fast-math)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 7, 6)).astype(np.float32)
    w = rng.uniform(0.0, 3.0, x.shape).astype(np.float32)
    expected = x * w
    _kspace.multiply_in_place(x, w)
    assert np.array_equal(x, expected)
