import numpy as np
import pytest

from napari_qsm_ms.qsm.metrics import hfen_percent, nrmse_percent, xsim


@pytest.mark.parametrize("seed", range(4))
def test_metrics_ignore_offsets_and_scale_with_the_error(seed):
    """Invariants on random maps: a constant offset changes nothing; identical maps score 0 % / XSIM 1;
    NRMSE is linear in the size of the error; the mask is honoured."""
    rng = np.random.default_rng(seed)
    truth = (0.05 * rng.standard_normal((24, 20, 16))).astype(np.float32)
    mask = rng.random(truth.shape) > 0.3
    noise = (0.01 * rng.standard_normal(truth.shape)).astype(np.float32)
    assert nrmse_percent(truth + 0.3, truth, mask) == pytest.approx(0, abs=1e-4)
    assert hfen_percent(truth, truth, mask) == pytest.approx(0, abs=1e-9)
    assert xsim(truth, truth, mask) == pytest.approx(1.0, abs=1e-9)
    one, two = nrmse_percent(truth + noise, truth, mask), nrmse_percent(truth + 2 * noise, truth, mask)
    assert two == pytest.approx(2 * one, rel=1e-4)
    t = truth[mask] - truth[mask].mean()
    e = noise[mask] - noise[mask].mean()
    assert one == pytest.approx(100 * np.sqrt((e**2).sum() / (t**2).sum()), rel=1e-4)
    outside = truth.copy()
    outside[~mask] += 5.0  # errors outside the mask do not count
    assert nrmse_percent(outside, truth, mask) == pytest.approx(0, abs=1e-4)
    assert hfen_percent(truth + noise, truth, mask) > 0 and xsim(truth + noise, truth, mask) < 1
