"""Quantitative susceptibility mapping in pure numpy/scipy: masks, unwrapping, background removal,
dipole inversion and the whole pipeline."""

from .dipole import GAMMA_BAR_MHZ_PER_T, dipole_kernel, ppm_per_radian

__all__ = ["GAMMA_BAR_MHZ_PER_T", "dipole_kernel", "ppm_per_radian"]
