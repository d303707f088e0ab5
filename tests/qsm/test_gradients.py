import numpy as np
import pytest

from napari_qsm_ms.qsm.gradients import (
    divergence,
    forward_gradient,
    forward_gradient_adjoint,
    irls_weights,
    weighted_gradient_normal,
)

VS = (0.47, 0.6, 1.2)


@pytest.fixture
def rng():
    return np.random.default_rng(3)


def test_adjoint_identity(rng):
    x = rng.standard_normal((17, 23, 11)).astype(np.float32)
    g = rng.standard_normal((3, 17, 23, 11)).astype(np.float32)
    lhs = float(np.vdot(forward_gradient(x, VS).astype(np.float64), g))
    rhs = float(np.vdot(x.astype(np.float64), forward_gradient_adjoint(g, VS)))
    assert lhs == pytest.approx(rhs, rel=1e-4)
    np.testing.assert_allclose(divergence(g, VS), -forward_gradient_adjoint(g, VS))


def test_ramp_gradient_in_mm():
    i, j, k = np.meshgrid(*(np.arange(n) for n in (10, 12, 8)), indexing="ij")
    x = (2.0 * i * VS[0] - 3.0 * j * VS[1] + 0.5 * k * VS[2]).astype(np.float32)  # in mm
    g = forward_gradient(x, VS)
    np.testing.assert_allclose(g[0, :-1], 2.0, atol=1e-4)
    np.testing.assert_allclose(g[1, :, :-1], -3.0, atol=1e-4)
    np.testing.assert_allclose(g[2, :, :, :-1], 0.5, atol=1e-4)
    assert np.all(g[0, -1] == 0) and np.all(g[1, :, -1] == 0) and np.all(g[2, :, :, -1] == 0)
    assert np.all(forward_gradient(np.full((5, 6, 7), 3.0), VS) == 0)


def test_fused_operators_match_composition(rng):
    x = rng.standard_normal((14, 9, 12)).astype(np.float32)
    w = rng.random((3, 14, 9, 12)).astype(np.float32)
    expected = forward_gradient_adjoint(w * forward_gradient(x, VS), VS)
    np.testing.assert_allclose(weighted_gradient_normal(x, w, VS), expected, rtol=1e-4, atol=1e-4)
    m = (rng.random((3, 14, 9, 12)) > 0.3).astype(np.float32)
    g = forward_gradient(x, VS)
    np.testing.assert_allclose(irls_weights(x, m, VS, 1e-6), m / np.sqrt((m * g) ** 2 + 1e-6), rtol=1e-4)


def test_rejects_bad_voxel_size():
    with pytest.raises(ValueError):
        forward_gradient(np.zeros((3, 3, 3)), (1, 0, 1))
