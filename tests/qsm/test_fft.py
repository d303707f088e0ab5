"""The package's one FFT pair (ducc0) against scipy.fft, on the inputs it meets."""

import numpy as np
import pytest
import scipy.fft as sfft

from napari_qsm_ms.qsm._fft import FFT_COUNTER, irfftn, rfftn


@pytest.mark.parametrize("shape", [(8, 9, 10), (7, 6, 5)])
@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f8", ">f8", "bool", "int16"])
def test_rfftn_matches_scipy(shape, dtype):
    x = (np.random.default_rng(0).standard_normal(shape) * 3).astype(dtype)
    ref = sfft.rfftn(x.astype(np.float64))
    got = rfftn(x)
    assert got.shape == ref.shape
    assert got.dtype == (np.complex64 if dtype.endswith("f4") else np.complex128)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_round_trip_with_buffers_and_overwrite():
    shape = (12, 10, 9)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    spec = np.empty((12, 10, 5), dtype=np.complex64)
    out = np.empty(shape, dtype=np.float32)
    n0 = FFT_COUNTER.count
    assert rfftn(x, out=spec) is spec
    kept = spec.copy()
    np.testing.assert_allclose(irfftn(spec, shape), x, atol=1e-5)
    np.testing.assert_array_equal(spec, kept)  # without overwrite the spectrum is kept
    assert irfftn(spec, shape, out=out, overwrite=True) is out
    np.testing.assert_allclose(out, x, atol=1e-5)
    assert FFT_COUNTER.count - n0 == 3
