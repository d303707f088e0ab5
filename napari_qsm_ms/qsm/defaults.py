"""Every default of the QSM inversion, stated once, and the checks of those parameters.

The pipeline (:func:`~napari_qsm_ms.qsm.pipeline.reconstruct`), the command line
(``qsm-ms recon``), the "Reconstruct QSM" dock and the provenance record all read these
constants; the pure functions of :mod:`~napari_qsm_ms.qsm.inversion` check their parameters with
the functions below and raise :class:`~napari_qsm_ms.errors.ParameterError` on a bad value. How
each default was chosen is written in docs/qsm.md ("How the defaults were chosen").
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import ParameterError

AUTO = "auto"
"""Value of a regularisation weight that asks for the per-scan choice
(:mod:`~napari_qsm_ms.qsm.regularisation`) by the discrepancy principle: MEDI with a magnitude
whose noise can be measured follows :data:`AUTO_NOISE`, anything else :data:`AUTO_CONE`
(:func:`lambda_rule`)."""

AUTO_NOISE = "auto-noise"
"""The discrepancy principle on the noise measured in the magnitude
(:func:`~napari_qsm_ms.qsm.noise.magnitude_noise_sd`); needs a magnitude (docs/qsm.md)."""

AUTO_CONE = "auto-cone"
"""The discrepancy principle on the misfit level measured in the dipole kernel's cone, where the
kernel is near zero (noise and model error: a smoother map); needs no magnitude (docs/qsm.md)."""

AUTO_RULES = (AUTO, AUTO_NOISE, AUTO_CONE)
"""The names of the automatic choices of a weight."""


def lambda_rule(value, noise_measured: bool):
    """The rule an automatic MEDI weight follows: ``"auto"`` is :data:`AUTO_NOISE` where the noise
    of a magnitude was measured, and :data:`AUTO_CONE` where there is no magnitude or its noise
    cannot be measured (a noise-free image); a named rule or a number is itself. The one rule the
    dock, the command line and Python follow."""
    if value == AUTO:
        return AUTO_NOISE if noise_measured else AUTO_CONE
    return value


AUTO_NOISE_NEEDS_MAGNITUDE = ("MEDI lambda auto-noise measures the noise in the magnitude, and none was given: "
                              "give a magnitude (--magnitude) or use lambda auto-cone")
"""The one refusal of ``auto-noise`` without a magnitude (the dock, the command line, Python)."""

ERODE_MM = 2.5
"""Erosion of the brain mask before inversion, mm (the paper's 2.5 mm)."""

INVERSION = "auto"
"""Default dipole inversion: ``"auto"`` is MEDI-L1 where a magnitude is given (its edge prior and
noise weights come from it) and TV-ADMM where none is (MEDI without a magnitude has neither: its
prior is then the plain L1 norm of the gradient, i.e. TV, which TV-ADMM solves with a linear data
term, closer to chi_33 on the 2016 challenge and to the truth on the phantoms' local fields, at a
tenth of the FFTs; :func:`~napari_qsm_ms.qsm.pipeline.choose_inversion`, docs/qsm.md)."""

MEDI_LAMBDA = AUTO
"""MEDI data weight: chosen per scan (discrepancy principle on the magnitude's noise, or on the
cone's misfit level without a magnitude; :func:`lambda_rule`, docs/qsm.md)."""

MEDI_LAMBDA_FIXED = 5.0e3
"""A fixed MEDI data weight in ppm-normalised units, where a number is needed (the dock's spin box
starts at "auto" and steps from here); the toolbox's 1000 is ``1000 / ppm_per_radian``."""

MEDI_PRIOR_REGIONS = ("auto", "mask", "grid")
MEDI_PRIOR_REGION = "auto"
"""Where MEDI's prior acts (:func:`medi_prior_region`): ``"mask"``, only inside the mask. The
susceptibility outside the mask (never reported) is then free, and takes up the part of the local
field that background removal got wrong: that remainder is the field of sources outside the mask,
which regularised susceptibility inside could only explain as sheets along the mask's edge (on the
phantoms, 62 % of the error energy lay within 3 mm of the edge). ``"grid"``: the MEDI toolbox's
choice, the prior on the whole padded grid. ``"auto"`` (default): ``"mask"`` with a magnitude,
``"grid"`` without. Phantoms end to end with a magnitude (docs/qsm.md): NRMSE 45.8 -> 22.5 %
(0.94 mm), lesion-contrast error 0.0030 -> 0.0005 ppm; without a magnitude (no edge prior, the
cone's weight) the free exterior also took up real susceptibility: challenge HFEN 71.9 -> 76.6 %,
phantom local fields 80.8 -> 82.2 % (oblique)."""


def medi_prior_region(value, has_magnitude: bool) -> str:
    """Where MEDI's prior acts: ``"auto"`` is ``"mask"`` with a magnitude (its edge prior and
    measured noise hold the interior, the free exterior takes up background removal's remainder)
    and ``"grid"`` without; a named region is itself. The one rule every path follows."""
    value = check_choice(value, MEDI_PRIOR_REGIONS, "MEDI prior region")
    if value == "auto":
        return "mask" if has_magnitude else "grid"
    return value

MEDI_MAX_ITER = 10
"""MEDI Gauss-Newton steps at most (the toolbox's ``max_iter``)."""

MEDI_TOL = 0.1
"""MEDI stops when the relative update ``||dx|| / ||x||`` of a Gauss-Newton step falls below this
(the toolbox's ``tol_norm_ratio``; over the padded grid, docs/qsm.md)."""

MEDI_CG_MAX_ITER = 100
"""Conjugate-gradient iterations at most per Gauss-Newton step: a safety cap (the toolbox's), not
the stopping rule; the inner solve stops on :data:`MEDI_CG_TOL` (docs/qsm.md, "Convergence of
MEDI's solver": 25-55 preconditioned iterations on the 2 mm phantom)."""

MEDI_CG_TOL = 0.01
"""Relative residual ``||r|| / ||b||`` at which each inner CG solve stops (the toolbox's
``cg_tol``); reached, not cut short, by the default schedule."""

TV_LAMBDA = AUTO
"""TV weight: chosen per scan (discrepancy principle, docs/qsm.md)."""

TV_LAMBDA_FIXED = 1.0e-3
"""A fixed TV weight (field in ppm, gradients per mm), where a number is needed."""

TV_MAX_ITER = 60
"""TV-ADMM iterations at most."""

TV_TOL = 1e-3
"""TV-ADMM stops when the relative change of chi falls below this."""

TKD_THRESHOLD = 0.19
"""TKD truncation of ``|D|``: frequencies below it are dropped (the 2016 challenge's TKD recipe)."""

DISCREPANCY_CONE = 0.05
"""``|D|`` below which a frequency counts as inside the dipole's zero cone for the noise estimate."""

DISCREPANCY_KMIN_PER_MM = 0.05
"""Frequencies below this (cycles/mm) are left out of the cone noise estimate (mask leakage)."""

DISCREPANCY_TOLERANCE = 0.02
"""The automatic weight is settled when two consecutive misfits are within this fraction of the
noise level."""

DISCREPANCY_BOUNDS = 100.0
"""The automatic search keeps a weight within this factor of its start; a weight stopped there is
recorded (``*_lambda_at_bound``) and reported as a warning."""

MEDI_LAMBDA_MAX_UPDATES = 6
"""Automatic MEDI lambda: secant steps at most (one after each Gauss-Newton step from the second);
then the weight is frozen, which bounds the cost of the choice (docs/qsm.md)."""

TV_LAMBDA_CHECK_EVERY = 5
"""Automatic TV lambda: ADMM iterations between two misfit checks (one extra FFT each)."""

TV_LAMBDA_MAX_UPDATES = 6
"""Automatic TV lambda: secant steps at most (with the defaults, until half of the iterations)."""


def check_positive(value, name: str) -> float:
    """``value`` as a float, refused unless finite and > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} {value!r} is not a number") from None
    if not (math.isfinite(v) and v > 0):
        raise ParameterError(f"{name} {value!r} must be a finite number > 0")
    return v


def check_lambda(value, name: str = "lambda"):
    """A regularisation weight: one of :data:`AUTO_RULES` (``"auto"``, ``"auto-noise"``,
    ``"auto-cone"``) or a finite number > 0 (returned as float)."""
    if isinstance(value, str) and value.strip().lower() in AUTO_RULES:
        return value.strip().lower()
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            raise ParameterError(f"{name} {value!r} is neither a number nor one of {', '.join(AUTO_RULES)}") from None
    return check_positive(value, name)


def check_choice(value, choices, name: str) -> str:
    """``value`` if it is one of ``choices``, else a one-line ParameterError naming them."""
    if value not in choices:
        raise ParameterError(f"unknown {name} {value!r} (choose from {', '.join(choices)})")
    return value


def check_iterations(value, name: str = "iterations") -> int:
    """An iteration count: a whole number >= 1."""
    whole = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    if not whole and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        whole, value = True, int(value)
    if not whole or value < 1:
        raise ParameterError(f"{name} {value!r} must be a whole number >= 1")
    return int(value)


def check_tolerance(value, name: str = "tolerance") -> float:
    """A convergence tolerance: finite, > 0 and < 1."""
    v = check_positive(value, name)
    if v >= 1:
        raise ParameterError(f"{name} {value!r} must be < 1")
    return v


def check_threshold(value, name: str = "TKD threshold") -> float:
    """TKD's truncation of ``|D|``: in (0, 2/3] (``|D|`` never exceeds 2/3)."""
    v = check_positive(value, name)
    if v > 2 / 3:
        raise ParameterError(f"{name} {value!r} must be in (0, 2/3]")
    return v


def check_erosion(value, name: str = "erosion (mm)") -> float:
    """An erosion in mm: finite and >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} {value!r} is not a number") from None
    if not (math.isfinite(v) and v >= 0):
        raise ParameterError(f"{name} {value!r} must be a finite number >= 0")
    return v


def parse_lambda(text: str):
    """Command-line type of a regularisation weight: ``auto``, ``auto-noise``, ``auto-cone`` or a
    number > 0."""
    return check_lambda(text.strip() if isinstance(text, str) else text)


# pipeline stages (q2)
PDF_TOL = 1e-3
"""PDF's CG stops when the relative residual ``||r|| / ||b||`` falls below this, or after
:data:`PDF_MAX_ITER` iterations (on our phantoms it is the iteration limit that stops it: at 30
iterations the residual is 0.01-0.04, and 50 iterations changed the local-field error by < 2 points;
how it stopped is recorded, ``pdf_iterations``, ``pdf_relative_residual``)."""

PDF_MAX_ITER = 30
"""PDF conjugate-gradient iterations at most (MEDI toolbox: 30)."""

PDF_GRID_MM = 1.0
"""PDF solves on a grid of about this spacing: axes with finer voxels are averaged over
``round(PDF_GRID_MM / voxel)`` voxels (noise-weighted) and the background field it finds is
interpolated back. The background field is smooth inside the brain: on the 0.47 x 0.47 x 1 mm slab
phantom the local-field error went from 48.2 to 48.5 % at 1/5 of the time."""
