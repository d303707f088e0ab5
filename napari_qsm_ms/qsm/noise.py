"""Noise level of a magnitude image, measured from the image itself.

Donoho's robust estimator (Donoho D.L., Johnstone I.M., Biometrika 1994): the finest-scale
diagonal wavelet coefficients of an image are almost pure noise, the few that carry edges are
outliers, and the median of their absolute values, divided by 0.6745 (the median of ``|N(0, 1)|``),
is the noise standard deviation. In 3-D the finest diagonal coefficient is the Haar ``HHH`` detail
of a 2x2x2 block: ``sum(+-x) / sqrt(8)``, orthonormal, so Gaussian noise of SD ``sigma`` per voxel
gives coefficients of SD ``sigma``. Only blocks entirely inside ``mask`` count (the air outside a
head is Rician, and the mask's edge is an edge).

In a brain magnitude at SNR >= 5 the Rician bias is below 2 %; anatomy adds a little on top (+11 %
on the 0.94 mm phantom at SNR 40, where the truth is known; docs/qsm.md).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputFileError, ParameterError
from . import defaults

MAD_TO_SD = 0.6745
"""Median of |N(0, 1)|."""


def _haar_diagonal(x: np.ndarray) -> np.ndarray:
    """The ``HHH`` Haar detail of each 2x2x2 block (orthonormal), on the even-sized part of ``x``."""
    x = x[: x.shape[0] // 2 * 2, : x.shape[1] // 2 * 2, : x.shape[2] // 2 * 2].astype(np.float64)
    for axis in range(3):
        x = np.subtract(np.take(x, np.arange(0, x.shape[axis], 2), axis=axis),
                        np.take(x, np.arange(1, x.shape[axis], 2), axis=axis)) / np.sqrt(2.0)
    return x


def _inside_blocks(mask: np.ndarray) -> np.ndarray:
    """Whether each 2x2x2 block of the even-sized part of ``mask`` lies entirely inside it."""
    m = np.asarray(mask, dtype=bool)[: mask.shape[0] // 2 * 2, : mask.shape[1] // 2 * 2, : mask.shape[2] // 2 * 2]
    n0, n1, n2 = (s // 2 for s in m.shape)
    return m.reshape(n0, 2, n1, 2, n2, 2).all(axis=(1, 3, 5))


def magnitude_noise_sd(magnitude: np.ndarray, mask: np.ndarray, min_blocks: int = 1000) -> float:
    """Noise standard deviation of a magnitude image (per voxel, the image's units), measured in
    ``mask``; for a 4-D (multi-echo) magnitude, the median over echoes.

    Returns NaN when fewer than ``min_blocks`` 2x2x2 blocks lie inside the mask (too little to
    measure).
    """
    mag = np.asarray(magnitude)
    if mag.ndim == 4:
        values = [magnitude_noise_sd(mag[..., e], mask, min_blocks) for e in range(mag.shape[3])]
        return float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")
    inside = _inside_blocks(mask)
    if int(inside.sum()) < min_blocks:
        return float("nan")
    detail = np.abs(_haar_diagonal(mag)[inside])
    return float(np.median(detail) / MAD_TO_SD)


def noise_for_lambda(lam, magnitude: np.ndarray | None, mask: np.ndarray,
                     source: str | None = None) -> float | None:
    """The magnitude's noise SD that MEDI's weight ``lam`` needs: measured for ``"auto-noise"``
    (refused, with one line, without a magnitude or where it cannot be measured) and for ``"auto"``
    (None there: ``"auto"`` then follows the cone, :func:`~napari_qsm_ms.qsm.defaults.lambda_rule`);
    None for any other weight. The one rule of the pipeline and
    :func:`~napari_qsm_ms.qsm.inversion.medi_l1`."""
    if lam not in (defaults.AUTO, defaults.AUTO_NOISE):
        return None
    if magnitude is None:
        if lam == defaults.AUTO_NOISE:
            raise ParameterError(defaults.AUTO_NOISE_NEEDS_MAGNITUDE)
        return None
    return measure_noise_sd(magnitude, mask, source, required=lam == defaults.AUTO_NOISE)


def measure_noise_sd(magnitude: np.ndarray, mask: np.ndarray, source: str | None = None,
                     required: bool = True) -> float | None:
    """:func:`magnitude_noise_sd`, or where it cannot be measured a one-line error (naming
    ``source``, the magnitude's file or layer, when known; what MEDI's ``auto-noise`` weight needs)
    or, when not ``required`` (MEDI's ``auto``, which then follows the cone), None."""
    sd = magnitude_noise_sd(magnitude, mask)
    if np.isfinite(sd) and sd > 0:
        return sd
    if not required:
        return None
    problem = ("noise could not be measured in the brain mask for MEDI lambda auto-noise (too few voxels or a "
               "noise-free image); use lambda auto-cone or a number")
    if source is None:
        raise ParameterError(problem)
    raise InputFileError(source, problem)
