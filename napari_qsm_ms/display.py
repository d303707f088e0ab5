"""Window/level rules for the viewer (pure): presets per contrast and the mouse-drag mapping.

Contrast limits are (low, high) intensities; window = high - low, level = (low + high) / 2.

* :func:`window_presets`: named presets for a layer's role (T2* magnitude, MPRAGEs, FLAIR,
  QSM in ppm), computed from its data;
* :func:`drag_window_level`: new limits after a mouse drag, the ITK-SNAP / radiology-workstation
  way (right = wider window, up = higher level), scaled so that dragging across the canvas
  spans the image's robust range.
"""

from __future__ import annotations

import numpy as np

from .errors import ParameterError

#: QSM presets (ppm, relative to the reference): symmetric windows.
QSM_PRESETS_PPM = {
    "lesions (+-0.10 ppm)": (-0.10, 0.10),
    "default (+-0.15 ppm)": (-0.15, 0.15),
    "veins and iron (+-0.30 ppm)": (-0.30, 0.30),
}
#: Percentile windows of the non-zero voxels for magnitude-like images.
PERCENTILE_PRESETS = {
    "full range (0.5-99.5 %)": (0.5, 99.5),
    "brain (5-99 %)": (5.0, 99.0),
    "narrow, lesion contrast (30-95 %)": (30.0, 95.0),
}
MAGNITUDE_ROLES = ("magnitude", "wmn", "csfn", "flair", "image")
MIN_WINDOW_FRACTION = 1e-3


def robust_range(data: np.ndarray) -> tuple[float, float]:
    """The 0.5-99.5 percentile range of the finite values (the reader's default contrast limits)."""
    arr = np.asarray(data)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise ParameterError("the image has no finite values")
    lo, hi = np.percentile(finite, [0.5, 99.5])
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def window_presets(role: str, data: np.ndarray) -> dict[str, tuple[float, float]]:
    """Named (low, high) contrast limits for a layer of ``role``.

    QSM gets fixed symmetric windows in ppm; magnitude-like images get percentile windows of
    their non-zero voxels (background excluded, so the brain fills the grey scale).
    """
    if role == "qsm":
        return dict(QSM_PRESETS_PPM)
    if role not in MAGNITUDE_ROLES:
        raise ParameterError(f"no window presets for a {role!r} layer")
    arr = np.asarray(data)
    sample = arr[np.isfinite(arr) & (arr != 0)]
    if sample.size == 0:
        raise ParameterError("the image has no non-zero finite values")
    if sample.size > 2_000_000:  # a strided sample is plenty for percentiles
        sample = sample[:: sample.size // 1_000_000]
    out = {}
    for name, (p_lo, p_hi) in PERCENTILE_PRESETS.items():
        lo, hi = np.percentile(sample, [p_lo, p_hi])
        out[name] = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
    return out


def drag_window_level(
    limits: tuple[float, float], dx_fraction: float, dy_fraction: float, data_range: tuple[float, float]
) -> tuple[float, float]:
    """New contrast limits after dragging by a fraction of the canvas (right/up positive).

    Horizontal drag widens (right) or narrows (left) the window by ``dx_fraction`` of the data
    range; vertical drag raises (up) or lowers the level by ``dy_fraction`` of it. The window
    never goes below 0.1 % of the data range.
    """
    low, high = (float(v) for v in limits)
    span = float(data_range[1]) - float(data_range[0])
    if not np.isfinite(span) or span <= 0:
        raise ParameterError(f"data range must be increasing, got {data_range}")
    window = max(high - low + float(dx_fraction) * span, MIN_WINDOW_FRACTION * span)
    level = (low + high) / 2.0 + float(dy_fraction) * span
    return level - window / 2.0, level + window / 2.0
