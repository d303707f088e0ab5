import numpy as np

from napari_qsm_ms.io.units import wrap_to_pi
from napari_qsm_ms.qsm.unwrap import laplacian_eigenvalues, unwrap_laplacian


def test_unwraps_smooth_phase_up_to_a_constant():
    vs = (1.0, 1.0, 1.5)
    i, j, k = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in (48, 40, 32)), indexing="ij")
    phase = 0.006 * ((i - 20) ** 2 + (j - 15) ** 2) + 0.25 * k + 2.0 * np.sin(i / 9.0)
    assert np.ptp(phase) > 4 * np.pi  # several wraps
    wrapped = wrap_to_pi(phase.astype(np.float32))
    out = unwrap_laplacian(wrapped, vs)
    err = out - phase
    err -= err.mean()
    assert np.abs(err).max() < 0.1 * np.pi
    assert np.sqrt(np.mean(err**2)) < 0.02 * np.ptp(phase)


def test_unwrap_of_unwrapped_small_phase_is_identity_up_to_constant():
    rng = np.random.default_rng(1)
    from scipy import ndimage as ndi

    phase = ndi.gaussian_filter(rng.standard_normal((32, 32, 24)), 3).astype(np.float32)
    phase *= 1.0 / np.abs(phase).max()
    out = unwrap_laplacian(phase, (1, 1, 1))
    np.testing.assert_allclose(out - out.mean(), phase - phase.mean(), atol=0.02)


def test_laplacian_eigenvalues_are_nonpositive_and_zero_at_dc():
    lam = laplacian_eigenvalues((8, 6, 4), (0.5, 1.0, 2.0))
    assert lam[0, 0, 0] == 0 and np.all(lam <= 0)
