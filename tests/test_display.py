"""Window/level presets and the drag mapping (pure)."""

import numpy as np
import pytest

from napari_qsm_ms.display import drag_window_level, robust_range, window_presets
from napari_qsm_ms.errors import ParameterError


def test_presets_per_contrast():
    qsm = window_presets("qsm", np.zeros(3))
    assert all(lo == -hi for lo, hi in qsm.values())
    img = np.zeros((20, 20, 20), np.float32)
    img[5:15, 5:15, 5:15] = np.linspace(100, 500, 1000).reshape(10, 10, 10)
    for role in ("magnitude", "wmn", "csfn", "flair"):
        presets = window_presets(role, img)
        assert len(presets) == 3
        for lo, hi in presets.values():
            assert 100 <= lo < hi <= 500  # the zero background does not enter
    with pytest.raises(ParameterError):
        window_presets("lesions", img)


def test_drag_right_widens_up_raises_and_never_inverts():
    lo, hi = drag_window_level((0.0, 10.0), 0.1, 0.0, (0.0, 100.0))
    assert (lo, hi) == (-5.0, 15.0)
    lo, hi = drag_window_level((0.0, 10.0), 0.0, 0.1, (0.0, 100.0))
    assert (lo, hi) == (10.0, 20.0)
    lo, hi = drag_window_level((0.0, 10.0), -5.0, 0.0, (0.0, 100.0))
    assert hi - lo == pytest.approx(0.1) and (lo + hi) / 2 == 5.0
    with pytest.raises(ParameterError):
        drag_window_level((0, 1), 0, 0, (1.0, 1.0))


def test_robust_range():
    data = np.arange(1001, dtype=float)
    data[0] = np.nan
    assert robust_range(data) == pytest.approx((6.0, 995.0), abs=0.01)
