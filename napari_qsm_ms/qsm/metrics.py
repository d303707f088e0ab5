"""Accuracy metrics of a susceptibility map against a known truth (simulations, QSM challenges).

All are computed inside a mask and are insensitive to a constant offset (QSM gives chi relative
to the mask's mean): the demeaned normalised RMS error, the high-frequency error norm, and XSIM.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def nrmse_percent(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Demeaned NRMSE (%) inside ``mask``: ``100 ||(e - mean e) - (t - mean t)|| / ||t - mean t||``."""
    mask = np.asarray(mask, dtype=bool)
    t = truth[mask] - truth[mask].mean()
    e = estimate[mask] - estimate[mask].mean()
    return float(100 * np.linalg.norm(e - t) / np.linalg.norm(t))


def hfen_percent(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray, sigma_vox: float = 1.5) -> float:
    """High-frequency error norm (%): NRMSE of the Laplacian-of-Gaussian filtered (``sigma_vox``
    voxels) demeaned maps, inside ``mask``."""
    mask = np.asarray(mask, dtype=bool)
    a = ndi.gaussian_laplace(np.where(mask, estimate - estimate[mask].mean(), 0).astype(np.float64), sigma_vox)
    b = ndi.gaussian_laplace(np.where(mask, truth - truth[mask].mean(), 0).astype(np.float64), sigma_vox)
    return float(100 * np.linalg.norm((a - b)[mask]) / np.linalg.norm(b[mask]))


def xsim(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """XSIM (QSM challenge 2.0): SSIM with K1 0.01, K2 0.001, dynamic range 1 ppm, both maps
    clipped to [-0.1, 0.2] ppm, Gaussian window, averaged inside ``mask`` (unitless, 1 = equal)."""
    from skimage.metrics import structural_similarity

    mask = np.asarray(mask, dtype=bool)
    a = np.clip(np.where(mask, estimate, 0), -0.1, 0.2).astype(np.float64)
    b = np.clip(np.where(mask, truth, 0), -0.1, 0.2).astype(np.float64)
    _, smap = structural_similarity(a, b, data_range=1.0, K1=0.01, K2=0.001, gaussian_weights=True,
                                    sigma=0.5, use_sample_covariance=False, full=True)
    return float(smap[mask].mean())
