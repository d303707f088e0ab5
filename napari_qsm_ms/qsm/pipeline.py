"""The whole QSM pipeline: validation, mask, unwrapping, background removal, erosion, inversion.

:func:`reconstruct` works on arrays; :func:`reconstruct_files` on NIfTI files;
:func:`reconstruct_subject` on one subject of a study (TE and B0 from the phase sidecar). Inputs
are validated before any computation, with one-line errors naming the file; outputs are written
only once everything has been computed, each atomically, so an error or a cancellation leaves no
partial file behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputFileError, ParameterError
from ..io.atomic import atomic_write_json
from ..io.checksum import sha256_file
from ..io.geometry import b0_direction_voxel
from ..io.layout import DERIVATIVES, SubjectFiles
from ..io.nifti import Volume, check_same_grid, load_volume, save_volume, voxel_size_from_affine
from ..io.sidecar import acquisition_from_sidecar, check_b0_t, check_te_s, read_sidecar, sidecar_path
from ..io.units import interpret_phase
from ..progress import ProgressCallback, report, scaled
from ._fft import FFT_COUNTER
from .bfr import pdf, vsharp
from . import defaults
from .dipole import GAMMA_BAR_MHZ_PER_T, ppm_per_radian
from .inversion import convergence_warnings, medi_l1, tkd, tv_admm
from .mask import brain_mask, erode_mask_mm, fill_holes_3d, has_background, largest_component
from .region_unwrap import unwrap_region_growing
from .regularisation import lambda_warnings
from .unwrap import reliable_voxels, unwrap_laplacian

UNWRAP_METHODS = ("region", "laplacian")
BFR_METHODS = ("pdf", "vsharp")
INVERSION_METHODS = ("auto", "medi", "tkd", "tv")
"""Dipole inversions by name; ``auto`` is resolved by :func:`choose_inversion`."""
ENTRY_STAGES = ("phase", "field", "local_field")
"""Where :func:`reconstruct_from` can start: a wrapped phase, an unwrapped total field, a local field."""
FIELD_UNITS = ("hz", "ppm", "rad")
"""Units of a given field map: Hz, ppm of B0, or radians of phase at the echo time."""
MIN_MASK_FRACTION = 0.10
"""Below this fraction of the non-zero field of view a brain mask gets a warning. Axial QSM fields of
view put the brain at 11-25 % of the grid (the 2016 challenge: 22.8 %; a 240 x 240 x 150 mm slab about
15 %; a 256 mm sagittal whole-head field of view about 11 %); the real ROMEO crop, brain only, lost to a
mask of 7.4 %. A warning costs nothing when the field of view is unusually large."""
DEFAULT_MEDI_LAMBDA = defaults.MEDI_LAMBDA
"""MEDI data weight (``"auto"``: chosen per scan; see :mod:`~napari_qsm_ms.qsm.defaults`)."""

INTERMEDIATE_FILES = {
    "unwrapped_phase_rad": "unwrapped_phase_rad.nii.gz",
    "total_field_ppm": "total_field_ppm.nii.gz",
    "local_field_ppm": "local_field_ppm.nii.gz",
    "brain_mask": "brain_mask.nii.gz",
    "qsm_mask": "qsm_mask.nii.gz",
}
"""Intermediate name -> file name written by ``--save-intermediates``."""


@dataclass
class QSMResult:
    """What :func:`reconstruct` returns.

    Attributes
    ----------
    chi_ppm : ndarray, float32
        Susceptibility in ppm on the input grid, 0 outside ``mask``.
    mask : ndarray of bool
        Mask the susceptibility is valid in (brain after erosion; after V-SHARP's own erosion too).
    affine : ndarray (4, 4)
        The input affine.
    intermediates : dict of str -> ndarray
        ``unwrapped_phase_rad`` (at the (effective) echo time), ``total_field_ppm``,
        ``local_field_ppm``, ``brain_mask`` (before erosion), ``qsm_mask``.
    parameters : dict
        Every parameter used (for provenance).
    fft_count : int
        3-D FFTs performed.
    timings_s : dict
        Wall time of each stage, seconds.
    warnings : list of str
        One line each: results to check (e.g. a mask that keeps a tiny part of the field of view).
    """

    chi_ppm: np.ndarray
    mask: np.ndarray
    affine: np.ndarray
    intermediates: dict[str, np.ndarray] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    fft_count: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _name(names: dict | None, key: str) -> str | None:
    return None if names is None else names.get(key)


def _fail(source: str | None, problem: str):
    if source is None:
        raise ParameterError(problem)
    raise InputFileError(source, problem)


def _check_finite(arr: np.ndarray, source: str | None, what: str) -> None:
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        n = int((~np.isfinite(arr)).sum())
        if source is None:
            raise ParameterError(f"{what} contains {n} NaN or infinite values")
        raise InputFileError(source, f"contains {n} NaN or infinite values")


def _echo_times(te_s, n_echoes: int, phase_name: str | None) -> tuple[float, ...]:
    if te_s is None:
        _fail(phase_name, "no echo time given (pass TE in seconds or provide a JSON sidecar)")
    tes = tuple(np.atleast_1d(np.asarray(te_s, dtype=float)).tolist())
    if n_echoes == 1:
        if len(tes) != 1:
            _fail(phase_name, f"3-D phase (one echo) but {len(tes)} echo times were given")
    else:
        if len(tes) == 1:
            _fail(phase_name, f"4-D phase with {n_echoes} echoes needs a list of {n_echoes} echo times")
        if len(tes) != n_echoes:
            _fail(phase_name, f"4-D phase with {n_echoes} echoes but {len(tes)} echo times were given")
    tes = tuple(check_te_s(t, phase_name) for t in tes)
    if n_echoes > 1 and len(set(tes)) != len(tes):
        _fail(phase_name, f"echo times {tes} are not distinct")
    return tes


def echo_fit_noise(magnitude: np.ndarray, echo_times_s: Sequence[float]) -> tuple[np.ndarray, float]:
    """Noise standard deviation (relative units) of the field that :func:`combine_echoes` fits, as
    phase at the effective echo time, and that effective echo time (the mean TE).

    One echo: ``1 / magnitude``. Several: ``te_eff / sqrt(sum_e m_e^2 (t_e - tbar)^2)``, the standard
    error of the weighted slope; it depends on the magnitudes and echo times only, so a field given
    at a later stage gets the same weights as the full pipeline would.
    """
    t = np.asarray(echo_times_s, dtype=np.float32)
    mag = np.asarray(magnitude, dtype=np.float32)
    te_eff = float(t.mean())
    if len(t) == 1:
        m = mag if mag.ndim == 3 else mag[..., 0]
        with np.errstate(divide="ignore"):
            return np.where(m > 0, 1.0 / np.maximum(m, 1e-30), np.inf).astype(np.float32), te_eff
    w, tbar, sw_safe = _echo_weights(mag, t)
    dt = t - tbar[..., None]
    sxx = (w * dt * dt).sum(axis=3)
    sxx_safe = np.where(sxx > 0, sxx, 1.0)
    with np.errstate(divide="ignore"):
        n_std = np.where(sxx > 0, te_eff / np.sqrt(sxx_safe), np.inf).astype(np.float32)
    return n_std, te_eff


def _echo_weights(mag: np.ndarray, t: np.ndarray):
    if mag.ndim == 3:
        mag = np.repeat(mag[..., None], len(t), axis=3)
    w = mag**2
    sw = w.sum(axis=3)
    sw_safe = np.where(sw > 0, sw, 1.0)
    tbar = (w * t).sum(axis=3) / sw_safe
    return w, tbar, sw_safe


def combine_echoes(
    unwrapped_rad: np.ndarray, magnitude: np.ndarray, echo_times_s: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted linear fit of the unwrapped phase over echo time (with an intercept).

    The slope (rad/s) is fitted per voxel with weights ``magnitude_e^2`` (inverse phase-noise
    variance); per-echo offsets of the Laplacian unwrapping go into the intercept.

    Returns
    -------
    field_rad : ndarray
        The fitted field expressed as phase at the effective echo time (rad).
    n_std : ndarray
        Noise standard deviation of ``field_rad`` (relative units, :func:`echo_fit_noise`).
    te_eff_s : float
        The effective echo time: the mean echo time.
    """
    t = np.asarray(echo_times_s, dtype=np.float32)
    w, tbar, sw_safe = _echo_weights(np.asarray(magnitude, dtype=np.float32), t)
    pbar = (w * unwrapped_rad).sum(axis=3) / sw_safe
    dt = t - tbar[..., None]
    sxx = (w * dt * dt).sum(axis=3)
    sxx_safe = np.where(sxx > 0, sxx, 1.0)
    slope = (w * dt * (unwrapped_rad - pbar[..., None])).sum(axis=3) / sxx_safe
    n_std, te_eff = echo_fit_noise(magnitude, echo_times_s)
    return (slope * te_eff).astype(np.float32), n_std, te_eff


# ---- the pipeline, cut into its stages ------------------------------------------------------------


@dataclass
class _Inputs:
    """Validated inputs shared by every stage."""

    entry: str
    data: np.ndarray  # phase (radians, wrapped), or field as given
    magnitude: np.ndarray | None  # as given (3-D or 4-D), float32
    mag3: np.ndarray  # 3-D magnitude (echo RMS), or the mask as a uniform one without magnitude
    mask: np.ndarray | None
    affine: np.ndarray
    vs: tuple[float, float, float]
    b0_dir: np.ndarray
    tes: tuple[float, ...] | None
    b0: float | None
    names: dict
    params: dict


@dataclass
class _Field:
    """A field in radians at the effective echo time, with its noise and where it is trusted."""

    rad: np.ndarray
    n_std: np.ndarray | None
    trusted: np.ndarray
    ppm_per_rad: float


def check_entry(entry: str, field_units: str | None, has_magnitude: bool, has_mask: bool) -> None:
    """Refuse an unknown entry stage, field units that contradict it, and a phase without magnitude
    or mask (the field entries' mask rule is checked with the arrays)."""
    if entry not in ENTRY_STAGES:
        raise ParameterError(f"unknown entry stage {entry!r} (choose from {', '.join(ENTRY_STAGES)})")
    if entry == "phase":
        if field_units is not None:
            raise ParameterError("field units are for a field map (--field or --local-field), not a wrapped phase")
        if not has_magnitude and not has_mask:
            raise ParameterError("a wrapped phase needs a magnitude or a mask")
    elif field_units is None:
        raise ParameterError(f"a field map needs its units (--field-units {'|'.join(FIELD_UNITS)})")
    elif field_units not in FIELD_UNITS:
        raise ParameterError(f"unknown field units {field_units!r} (choose from {', '.join(FIELD_UNITS)})")


def _intermediates(entry: str, total: _Field, local_ppm, brain, qsm_mask) -> dict[str, np.ndarray]:
    """The volumes ``--save-intermediates`` writes, those the entry computed."""
    inter: dict[str, np.ndarray] = {}
    if entry != "local_field":
        inter["total_field_ppm"] = (total.rad * np.float32(total.ppm_per_rad)).astype(np.float32)
    if entry == "phase":
        inter["unwrapped_phase_rad"] = total.rad.astype(np.float32)
    inter.update(local_field_ppm=local_ppm, brain_mask=brain, qsm_mask=qsm_mask)
    return inter


def check_methods(unwrap: str, bfr: str, inversion: str, erode_mm: float | None) -> None:
    """Refuse unknown method names and a negative erosion before any computation."""
    if unwrap not in UNWRAP_METHODS:
        raise ParameterError(f"unknown unwrapping {unwrap!r} (choose from {', '.join(UNWRAP_METHODS)})")
    if bfr not in BFR_METHODS:
        raise ParameterError(f"unknown background removal {bfr!r} (choose from {', '.join(BFR_METHODS)})")
    if inversion not in INVERSION_METHODS:
        raise ParameterError(f"unknown inversion {inversion!r} (choose from {', '.join(INVERSION_METHODS)})")
    if erode_mm is not None:
        defaults.check_erosion(erode_mm)


def choose_inversion(inversion: str, has_magnitude: bool) -> tuple[str, str]:
    """The inversion to run and why: ``"auto"`` is MEDI with a magnitude, TV without
    (:data:`~napari_qsm_ms.qsm.defaults.INVERSION`); a named method is itself. The one rule the dock,
    the command line and Python follow (recorded as ``inversion`` and ``inversion_choice``)."""
    if inversion != "auto":
        return inversion, "given"
    if has_magnitude:
        return "medi", "auto: MEDI (a magnitude gives its edge prior and noise weights)"
    return "tv", "auto: TV (no magnitude: MEDI would have no edge prior and no noise weights)"


def method_summary(parameters: dict) -> str:
    """One line saying what ran, from a result's (or a Chimap sidecar's) parameters: the inversion
    (and why, when ``auto`` chose it), after which background removal, and the weight with how it
    was chosen, e.g. ``"MEDI after PDF (auto: a magnitude given), lambda 2478 (discrepancy (magnitude
    noise))"``. What the dock's status and ``qsm-ms recon`` print."""
    inversion = str(parameters.get("inversion", "?"))
    bfr = parameters.get("bfr", "?")
    text = f"{inversion.upper()} after {'the given local field' if bfr == 'given' else str(bfr).upper()}"
    if str(parameters.get("inversion_choice", "")).startswith("auto"):
        text += " (auto: a magnitude given)" if inversion == "medi" else " (auto: no magnitude)"
    lam = parameters.get(f"{inversion}_lam")
    if lam is not None:
        text += f", lambda {lam:.4g} ({parameters.get(f'{inversion}_lambda_choice', 'fixed')})"
    return text


def erosion_for(entry: str, erode_mm: float | None) -> float:
    """The erosion before inversion, mm: as given, else the default
    (:data:`~napari_qsm_ms.qsm.defaults.ERODE_MM`) when the pipeline removes the background itself,
    and 0 for a local field (its own background removal already decided where it is valid, e.g.
    the challenge's mask)."""
    if erode_mm is not None:
        return float(erode_mm)
    return 0.0 if entry == "local_field" else defaults.ERODE_MM


def _validate(entry, data, magnitude, mask, affine, te_s, b0_t, field_units, names) -> _Inputs:
    """Shapes, echo times, B0, geometry and finiteness of the inputs, with one-line errors."""
    data_key = "phase" if entry == "phase" else entry
    data_name, mag_name, mask_name = _name(names, data_key), _name(names, "magnitude"), _name(names, "mask")
    what = {"phase": "phase", "field": "field", "local_field": "local field"}[entry]
    data = np.asarray(data)
    if data.ndim not in (3, 4):
        _fail(data_name, f"{what} is {data.ndim}-D with shape {data.shape}, expected 3-D or 4-D")
    n_vol = data.shape[3] if data.ndim == 4 else 1
    if entry != "phase" and n_vol > 1 and field_units != "rad":
        _fail(data_name, f"4-D {what} ({n_vol} volumes) needs --field-units rad (an unwrapped phase per echo); "
                         f"a field in {field_units} is one 3-D volume")
    if entry == "local_field" and n_vol > 1:
        _fail(data_name, "a local field is one 3-D volume")
    if magnitude is not None:
        magnitude = np.asarray(magnitude)
        if magnitude.ndim not in (3, 4):
            _fail(mag_name, f"magnitude is {magnitude.ndim}-D with shape {magnitude.shape}, expected 3-D or 4-D")
        if magnitude.shape[:3] != data.shape[:3]:
            _fail(data_name, f"{what} shape {data.shape[:3]} differs from magnitude shape {magnitude.shape[:3]}")
        _check_finite(magnitude, mag_name, "magnitude")
    elif mask is None:
        raise ParameterError(f"a mask is needed when there is no magnitude (give --mask with the {what})")
    _check_finite(data, data_name, what)
    tes = _entry_echo_times(entry, te_s, n_vol, magnitude, field_units, data_name, mag_name)
    if b0_t is None and entry != "phase" and field_units == "ppm":
        if tes is not None:
            raise ParameterError("echo times (--te) with a field in ppm also need the field strength (--b0)")
        b0 = None
    elif b0_t is None:
        raise ParameterError(f"no field strength given for the {what} (--b0, or MagneticFieldStrength in a sidecar)")
    else:
        b0 = check_b0_t(b0_t, data_name)
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        _fail(mag_name or data_name, "affine is singular or not 4x4 (no usable geometry)")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape[:3] != data.shape[:3] or mask.ndim != 3:
            _fail(mask_name, f"mask shape {mask.shape} differs from the {what} shape {data.shape[:3]}")
        _check_finite(mask.astype(np.float32) if mask.dtype != bool else mask, mask_name, "mask")
        mask = mask > 0
        if not mask.any():
            _fail(mask_name, "mask is empty (no voxel > 0)")
    if magnitude is not None:
        mags = magnitude.astype(np.float32)
        mag3 = np.sqrt((mags**2).mean(axis=3)) if mags.ndim == 4 else mags
        if not (mag3 > 0).any():
            _fail(mag_name, "magnitude is zero everywhere")
    else:
        mags, mag3 = None, mask.astype(np.float32)
    params = dict(entry=entry, te_s=None if tes is None else list(tes), b0_t=b0)
    return _Inputs(entry, data, mags, mag3, mask, affine, voxel_size_from_affine(affine),
                   b0_direction_voxel(affine), tes, b0, names or {}, params)


def _entry_echo_times(entry, te_s, n_vol, magnitude, field_units, data_name, mag_name):
    """Echo times for the entry stage: one per echo of a phase or of a 4-D field in rad; optional for a
    field in Hz or ppm (there they set MEDI's data term and the noise weights of a 4-D magnitude)."""
    n_mag = magnitude.shape[3] if magnitude is not None and magnitude.ndim == 4 else None
    if entry == "phase" or field_units == "rad":
        if te_s is None and entry != "phase":
            raise ParameterError("--field-units rad needs the echo time(s) (--te)")
        tes = _echo_times(te_s, n_vol, data_name)
    elif te_s is None:
        tes = None
    else:
        tes = tuple(check_te_s(t, data_name) for t in np.atleast_1d(np.asarray(te_s, dtype=float)).tolist())
    if n_mag is not None:
        if entry == "phase" and n_mag != n_vol:
            _fail(mag_name, f"magnitude has {n_mag} echoes but phase has {n_vol}")
        if tes is None:
            raise ParameterError(f"a {n_mag}-echo magnitude needs its echo times (--te) for the noise weights")
        if n_mag != len(tes):
            _fail(mag_name, f"magnitude has {n_mag} echoes but {len(tes)} echo time(s) were given")
    return tes


def mask_stage(inp: _Inputs) -> np.ndarray:
    """Stage 1: the brain mask (before erosion), given or computed from the magnitude."""
    if inp.mask is not None:
        return inp.mask
    inp.params["mask"] = ("from magnitude (Otsu)" if has_background(inp.mag3) else
                          "from magnitude (no background: every non-zero voxel)")
    mask = brain_mask(inp.mag3, inp.vs)
    if not mask.any():
        _fail(_name(inp.names, "magnitude"), "no brain found in the magnitude (automatic mask is empty)")
    return mask


def fov_voxels(inp: _Inputs) -> int:
    """Voxels of the non-zero field of view: where the magnitude (else the input) is not zero."""
    if inp.magnitude is not None:
        ref = inp.mag3
    else:
        ref = np.abs(inp.data).reshape(inp.data.shape[:3] + (-1,)).max(axis=3)
    return int((ref != 0).sum())


def mask_coverage(mask: np.ndarray, fov: int, given: bool) -> tuple[float, str | None]:
    """Fraction of the non-zero field of view that the brain mask keeps, and a warning when it is
    below :data:`MIN_MASK_FRACTION`."""
    frac = float(mask.sum() / fov) if fov else 0.0
    warning = None
    if frac < MIN_MASK_FRACTION:
        how = "the given mask" if given else "the automatic brain mask"
        warning = (f"{how} keeps only {int(mask.sum())} of {fov} non-zero voxels ({100 * frac:.1f} % of the field "
                   f"of view, below {100 * MIN_MASK_FRACTION:.0f} %): check it (--mask-out) or give one (--mask)")
    return frac, warning


def total_field_from_phase(phase_rad: np.ndarray, inp: _Inputs, mask: np.ndarray, unwrap: str,
                           progress: ProgressCallback | None) -> _Field:
    """Stage 2 from a wrapped phase: unwrap each echo in the mask (region growing or Laplacian),
    fit over echo time, and trust the data region (:func:`data_region`).

    Region growing covers the data region first, through its own edges only (``core``): there every
    wrapped step is small, so the result does not depend on the path; reached through aliased voxels
    at the brain's edge instead, islands of it came out 2 pi off (613 voxels on the oblique slab
    phantom, 80.7 % local-field error after PDF against 57.8 % without them)."""
    n_echoes = phase_rad.shape[3] if phase_rad.ndim == 4 else 1
    trusted = data_region(phase_rad, mask)

    def unwrap_echo(psi: np.ndarray, start: float, stop: float) -> np.ndarray:
        sub = scaled(progress, start, stop)
        if unwrap == "region":
            return unwrap_region_growing(psi, mask, inp.mag3, core=trusted, progress=sub)
        return unwrap_laplacian(psi, inp.vs, progress=sub)

    if n_echoes == 1:
        unwrapped = unwrap_echo(phase_rad, 0.03, 0.08)
        n_std, te_eff = echo_fit_noise(inp.mag3, inp.tes)
    else:
        echoes = np.stack([unwrap_echo(phase_rad[..., e], 0.03 + 0.05 * e / n_echoes,
                                       0.03 + 0.05 * (e + 1) / n_echoes) for e in range(n_echoes)], axis=3)
        mags = inp.magnitude if inp.magnitude.ndim == 4 else inp.mag3
        unwrapped, n_std, te_eff = combine_echoes(echoes, mags, inp.tes)
        del echoes
    n_std[~trusted] = np.inf  # no data weight where the unwrapped phase cannot be trusted
    return _Field(unwrapped, n_std, trusted, ppm_per_radian(te_eff, inp.b0))


def field_from_map(inp: _Inputs, mask: np.ndarray, field_units: str) -> _Field:
    """Stage 2 (or 3) from a given field map: to radians at the effective echo time, trusted in the
    whole mask (an unwrapped field carries no sign of aliasing), noise from the magnitude when given.

    Without echo times (a field in Hz or ppm), MEDI's data term works on the field in ppm as if it
    were radians (``ppm_per_rad`` = 1, its linear regime); with them, at the effective echo time as
    the full pipeline does.
    """
    data = np.asarray(inp.data, dtype=np.float32)
    n_std = None
    if data.ndim == 4:  # unwrapped phase per echo, radians
        mags = inp.magnitude if inp.magnitude is not None else np.ones(data.shape, np.float32)
        rad, n_std, te_eff = combine_echoes(data, mags, inp.tes)
        if inp.magnitude is None:
            n_std = None
    else:
        te_eff = None if inp.tes is None else float(np.mean(inp.tes))
        ppm = field_to_ppm(data, field_units, b0_t=inp.b0, te_s=te_eff)
        ppr = 1.0 if te_eff is None else ppm_per_radian(te_eff, inp.b0)
        rad = ppm / np.float32(ppr)
        if inp.magnitude is not None:
            n_std = echo_fit_noise(inp.magnitude if inp.tes is not None else inp.mag3, inp.tes or (1.0,))[0]
    if n_std is not None:
        n_std[~mask] = np.inf
    ppr = 1.0 if te_eff is None else ppm_per_radian(te_eff, inp.b0)
    inp.params.update(te_effective_s=te_eff, ppm_per_radian=ppr)
    return _Field(rad.astype(np.float32), n_std, mask, ppr)


def field_to_ppm(field_map: np.ndarray, units: str, *, b0_t: float | None, te_s: float | None = None) -> np.ndarray:
    """A field map (3-D) in ppm of B0, from Hz, ppm, or radians of phase at echo time ``te_s``.

    ``ppm = Hz / (gamma_bar B0)`` (gamma_bar in MHz/T) and ``ppm = rad * ppm_per_radian(TE, B0)``.
    """
    arr = np.asarray(field_map, dtype=np.float32)
    if units == "ppm":
        return arr.copy()
    if units == "hz":
        return (arr / np.float32(GAMMA_BAR_MHZ_PER_T * b0_t)).astype(np.float32)
    if units == "rad":
        if te_s is None:
            raise ParameterError("--field-units rad needs the echo time (--te)")
        return (arr * np.float32(ppm_per_radian(te_s, b0_t))).astype(np.float32)
    raise ParameterError(f"unknown field units {units!r} (use {', '.join(FIELD_UNITS)})")


def background_stage(total: _Field, inp: _Inputs, mask: np.ndarray, bfr: str, unwrap: str, *, pdf_tol: float,
                     pdf_max_iter: int, pdf_pad_mm: float, pdf_grid_mm: float | None, vsharp_radii_mm,
                     progress) -> tuple:
    """Stage 3: background-field removal (PDF or V-SHARP). Returns the local field (rad), the region
    V-SHARP leaves valid (the mask for PDF), and where the field is trusted afterwards."""
    if bfr == "pdf":
        stop: dict = {}
        local_rad = pdf(total.rad, mask, inp.vs, inp.b0_dir, n_std=total.n_std, tol=pdf_tol, max_iter=pdf_max_iter,
                        pad_mm=pdf_pad_mm, grid_mm=pdf_grid_mm, progress=progress, record=stop)
        inp.params.update(pdf_tol=pdf_tol, pdf_max_iter=pdf_max_iter, pdf_pad_mm=pdf_pad_mm, pdf_grid_mm=pdf_grid_mm,
                          pdf_coarsening=stop["coarsening"], pdf_iterations=stop["iterations"],
                          pdf_relative_residual=stop["relative_residual"], pdf_converged=stop["converged"])
        return local_rad, mask, total.trusted
    region = vsharp_region(mask, total.trusted) if (unwrap == "region" and inp.entry == "phase") else mask
    local_rad, bfr_mask = vsharp(total.rad, region, inp.vs, radii_mm=vsharp_radii_mm, progress=progress)
    inp.params["vsharp_radii_mm"] = None if vsharp_radii_mm is None else list(vsharp_radii_mm)
    return local_rad, bfr_mask, bfr_mask  # V-SHARP's eroded region


def erosion_stage(mask: np.ndarray, bfr_mask: np.ndarray, inp: _Inputs, erode_mm: float) -> np.ndarray:
    """Stage 4: the QSM mask, the brain mask eroded by ``erode_mm`` within the background removal's region."""
    qsm_mask = erode_mask_mm(mask, inp.vs, erode_mm) & bfr_mask
    if not qsm_mask.any():
        _fail(_name(inp.names, "mask") or _name(inp.names, "magnitude"),
              f"mask is empty after {erode_mm:g} mm erosion (brain too small?)")
    return qsm_mask


def check_lambda_rule(inversion: str, medi_lambda, has_magnitude: bool) -> None:
    """Refuse MEDI's ``auto-noise`` weight without a magnitude (where its noise is measured); what the
    dock checks before starting and :func:`reconstruct_from` before computing."""
    if inversion != "medi" or has_magnitude:
        return
    if defaults.check_lambda(medi_lambda, "MEDI lambda") == defaults.AUTO_NOISE:
        raise ParameterError(defaults.AUTO_NOISE_NEEDS_MAGNITUDE)


def _magnitude_noise(inp: _Inputs, brain: np.ndarray, medi_lambda) -> float | None:
    """The magnitude's noise SD (per echo, its units) measured in the brain mask for MEDI's
    ``auto`` and ``auto-noise`` weights (recorded as ``magnitude_noise_sd``); None for other weights,
    and for ``auto`` where there is no magnitude or its noise cannot be measured (then the cone
    chooses: :func:`~napari_qsm_ms.qsm.defaults.lambda_rule`)."""
    from .noise import noise_for_lambda

    sd = noise_for_lambda(medi_lambda, inp.magnitude, brain, _name(inp.names, "magnitude"))
    if sd is not None:
        inp.params["magnitude_noise_sd"] = float(f"{sd:.6g}")
    return sd


def inversion_stage(local_ppm, qsm_mask, mag3, n_std, inp: _Inputs, ppr: float, inversion: str, *,
                    medi_lambda, medi_merit, medi_smv_radius_mm, medi_max_iter, medi_cg_max_iter, medi_cg_tol,
                    tkd_threshold, medi_prior_region=defaults.MEDI_PRIOR_REGION, tv_lambda, tv_max_iter, progress,
                    magnitude_noise_sd=None) -> tuple[np.ndarray, np.ndarray]:
    """Stage 5: dipole inversion (MEDI-L1, TKD or TV-ADMM); returns chi (ppm) and the QSM mask."""
    params = inp.params
    info: list = []
    if inversion == "medi":
        chi = medi_l1(
            local_ppm, qsm_mask, mag3, inp.vs, inp.b0_dir, ppm_per_rad=ppr, n_std=n_std,
            # the rule resolved from the pipeline's one noise measurement: MEDI does not measure again
            lam=defaults.lambda_rule(medi_lambda, noise_measured=magnitude_noise_sd is not None),
            noise_sd=magnitude_noise_sd,
            merit=medi_merit, smv_radius_mm=medi_smv_radius_mm, prior_region=medi_prior_region,
            max_iter=medi_max_iter,
            cg_max_iter=medi_cg_max_iter, cg_tol=medi_cg_tol, progress=progress, info=info,
        )
        if medi_smv_radius_mm:
            qsm_mask = qsm_mask & (chi != 0)
        params.update(medi_lambda=medi_lambda, medi_lambda_toolbox=info[0].lam * ppr, medi_merit=medi_merit,
                      medi_smv_radius_mm=medi_smv_radius_mm, medi_prior_region=medi_prior_region,
                      medi_max_iter=medi_max_iter, medi_cg_max_iter=medi_cg_max_iter, medi_cg_tol=medi_cg_tol,
                      **info[0].record("medi"))
    elif inversion == "tkd":
        chi = tkd(local_ppm, qsm_mask, inp.vs, inp.b0_dir, threshold=tkd_threshold, progress=progress)
        params["tkd_threshold"] = tkd_threshold
    else:
        chi = tv_admm(local_ppm, qsm_mask, inp.vs, inp.b0_dir, lam=tv_lambda, max_iter=tv_max_iter,
                      progress=progress, info=info)
        params.update(tv_lambda=tv_lambda, tv_max_iter=tv_max_iter, **info[0].record("tv"))
    return chi, qsm_mask


def reconstruct(
    magnitude: np.ndarray,
    phase: np.ndarray,
    *,
    affine: np.ndarray,
    te_s: float | Sequence[float],
    b0_t: float,
    **options,
) -> QSMResult:
    """Susceptibility map (ppm) from a GRE magnitude and wrapped phase: :func:`reconstruct_from`
    entered at the ``'phase'`` stage (every option of that function applies)."""
    return reconstruct_from(phase, entry="phase", magnitude=magnitude, affine=affine, te_s=te_s, b0_t=b0_t,
                            **options)


def reconstruct_from(
    data: np.ndarray,
    *,
    entry: str = "phase",
    affine: np.ndarray,
    magnitude: np.ndarray | None = None,
    te_s: float | Sequence[float] | None = None,
    b0_t: float | None = None,
    mask: np.ndarray | None = None,
    phase_units: str = "auto",
    phase_range: tuple[float, float] | None = None,
    field_units: str | None = None,
    unwrap: str = "region",
    bfr: str = "pdf",
    inversion: str = defaults.INVERSION,
    erode_mm: float | None = None,
    medi_lambda: float | str = defaults.MEDI_LAMBDA,
    medi_merit: bool = False,
    medi_smv_radius_mm: float | None = None,
    medi_prior_region: str = defaults.MEDI_PRIOR_REGION,
    medi_max_iter: int = defaults.MEDI_MAX_ITER,
    medi_cg_max_iter: int = defaults.MEDI_CG_MAX_ITER,
    medi_cg_tol: float = defaults.MEDI_CG_TOL,
    tkd_threshold: float = defaults.TKD_THRESHOLD,
    tv_lambda: float | str = defaults.TV_LAMBDA,
    tv_max_iter: int = defaults.TV_MAX_ITER,
    pdf_tol: float = defaults.PDF_TOL,
    pdf_max_iter: int = defaults.PDF_MAX_ITER,
    pdf_pad_mm: float = 20.0,
    pdf_grid_mm: float | None = defaults.PDF_GRID_MM,
    vsharp_radii_mm: Sequence[float] | None = None,
    names: dict[str, str] | None = None,
    keep_intermediates: bool = True,
    progress: ProgressCallback | None = None,
) -> QSMResult:
    """Susceptibility map (ppm), entering the pipeline at any stage.

    Stages: brain mask from the magnitude (unless given) -> phase unwrapping in the mask
    (quality-guided region growing, or the Laplacian method) -> (multi-echo: weighted fit over
    TE) -> background-field removal (PDF or V-SHARP) -> erosion by ``erode_mm`` -> dipole
    inversion (MEDI-L1, TKD or TV-ADMM) with the B0 direction and voxel size of ``affine``.
    ``entry`` says which stages the input has passed:

    * ``'phase'``: ``data`` is the wrapped phase (3-D, or 4-D with echoes last); every stage runs.
    * ``'field'``: ``data`` is the unwrapped total field (3-D in ``field_units`` Hz, ppm or rad at
      TE; or 4-D unwrapped phase per echo in rad); unwrapping is skipped.
    * ``'local_field'``: ``data`` is the background-removed local field (3-D); unwrapping and
      background removal are skipped, and the default erosion is 0 (:func:`erosion_for`).

    For the phase, the field is trusted (given data weight in PDF and MEDI) only on the *data
    region*: the largest 6-connected part of the mask where the wrapped phase steps by at most
    1.5 rad to every neighbour (:func:`data_region`). Aliased voxels near air, and islands that an
    unwrapper can only reach across them (and may therefore be off by 2 pi), are left to the
    regularisation. A given field is trusted in the whole mask.

    Parameters
    ----------
    data : ndarray, shape (nx, ny, nz) or (nx, ny, nz, n_echoes)
        Wrapped phase, total field or local field (see ``entry``).
    entry : {'phase', 'field', 'local_field'}
        The stage the input enters at.
    affine : ndarray (4, 4)
        Voxel-to-world (RAS+ mm) transform; gives the voxel size and B0 direction.
    magnitude : ndarray, same spatial shape, optional
        GRE magnitude (3-D or 4-D); required for ``'phase'`` entry without a mask. Used for the
        automatic mask, the noise weights and MEDI's edge prior. Without it, the weights are
        uniform in the mask and MEDI's edge prior sees the mask as a uniform image.
    te_s : float or sequence of float
        Echo time(s), seconds (one per echo of a 4-D phase). Required for the phase and for a field
        in rad; optional for a field in Hz or ppm.
    b0_t : float
        Field strength, tesla (optional only for a field in ppm).
    mask : ndarray of bool, optional
        Brain mask (before erosion); computed from the magnitude if None (required without one).
    phase_units : {'auto', 'rad', 'deg', 'raw'}
        Units of the phase (:func:`~napari_qsm_ms.io.units.interpret_phase`); 'auto' refuses a phase
        that does not look wrapped.
    phase_range : (low, high), optional
        The stored phase values that span one full turn, instead of ``phase_units``.
    field_units : {'hz', 'ppm', 'rad'}
        Units of a field (``entry`` 'field' or 'local_field'); required there.
    unwrap : {'region', 'laplacian'}
        Phase unwrapping: quality-guided region growing
        (:func:`~napari_qsm_ms.qsm.region_unwrap.unwrap_region_growing`, exact multiples of
        2 pi, the default) or the MEDI toolbox's Laplacian method
        (:func:`~napari_qsm_ms.qsm.unwrap.unwrap_laplacian`).
    bfr : {'pdf', 'vsharp'}
        Background-field removal.
    inversion : {'auto', 'medi', 'tkd', 'tv'}
        Dipole inversion; ``auto`` (the default): MEDI with a magnitude, TV without
        (:func:`choose_inversion`).
    erode_mm : float, optional
        Erosion of the brain mask before inversion, mm (paper: 2.5; :func:`erosion_for`).
    medi_lambda : float or "auto"
        MEDI data weight in ppm-normalised units, independent of B0 and TE
        (``lambda_MEDI-toolbox = medi_lambda * ppm_per_radian(TE, B0)``); "auto" (default):
        chosen per scan by the discrepancy principle (docs/qsm.md). The value used and how it was
        chosen are in ``parameters`` (``medi_lam``, ``medi_lambda_choice``, ...).
    medi_merit, medi_smv_radius_mm, medi_max_iter, medi_cg_max_iter, medi_cg_tol
        MEDI options (MERIT reweighting, SMV radius in mm or None, Gauss-Newton and CG limits).
    medi_prior_region : {'auto', 'mask', 'grid'}
        Where MEDI's prior acts: inside the mask only (the susceptibility outside is free to take
        up what background removal left), on the whole grid (the MEDI toolbox), or ``auto`` (the
        default): inside the mask with a magnitude, the whole grid without
        (:func:`~napari_qsm_ms.qsm.defaults.medi_prior_region`; what ran is in ``medi_prior``).
    tkd_threshold : float
        TKD truncation of |D| (frequencies below it are dropped, the literature's TKD).
    tv_lambda, tv_max_iter
        TV-ADMM weight (ppm units, or "auto" as for MEDI) and iterations.
    pdf_tol, pdf_max_iter
        PDF conjugate-gradient tolerance and iterations (how it stopped is recorded:
        ``pdf_iterations``, ``pdf_relative_residual``, ``pdf_converged``).
    pdf_grid_mm : float or None
        PDF solves on a grid of about this spacing (finer axes averaged, ``bfr.coarsening``); None:
        on the voxel grid.
    pdf_pad_mm : float
        PDF zero padding around the mask's box, mm in total per axis.
    vsharp_radii_mm : sequence of float, optional
        V-SHARP radii (default 12 mm down to two voxels in 1 mm steps).
    names : dict, optional
        File names for error messages: keys ``magnitude``, ``phase``, ``field``, ``local_field``,
        ``mask``.
    keep_intermediates : bool
        Return the intermediate volumes in ``intermediates``.
    progress : callable, optional
        ``progress(fraction, message)``; may raise CancelledError.

    Returns
    -------
    QSMResult

    Raises
    ------
    QSMMSError
        On bad input, with a one-line message naming the file when known.
    """
    # ---- validation, before any computation --------------------------------------------------
    check_entry(entry, field_units, magnitude is not None, mask is not None)
    check_methods(unwrap, bfr, inversion, erode_mm)
    inversion, inversion_choice = choose_inversion(inversion, magnitude is not None)
    _check_inversion_parameters(inversion, medi_lambda, medi_max_iter, medi_cg_max_iter, medi_cg_tol,
                                medi_smv_radius_mm, tkd_threshold, tv_lambda, tv_max_iter, medi_prior_region)
    check_lambda_rule(inversion, medi_lambda, magnitude is not None)
    if inversion == "medi":
        medi_lambda = defaults.check_lambda(medi_lambda, "MEDI lambda")  # "Auto-Noise " -> "auto-noise"
    erode = erosion_for(entry, erode_mm)
    inp = _validate(entry, data, magnitude, mask, affine, te_s, b0_t, field_units, names)
    params = inp.params
    params.update(voxel_size_mm=list(inp.vs), b0_dir_voxel=[float(v) for v in inp.b0_dir],
                  unwrap=unwrap if entry == "phase" else "given", bfr=bfr if entry != "local_field" else "given",
                  inversion=inversion, inversion_choice=inversion_choice, erode_mm=erode,
                  mask="given" if mask is not None else "from magnitude",
                  magnitude="given" if magnitude is not None else "none")
    if entry == "phase":
        inp.data, scaling = interpret_phase(inp.data, phase_units, phase_range=phase_range,
                                            source=_name(names, "phase"))
        params.update(phase_units=phase_units, phase_scaling=scaling.as_record())
    else:
        params["field_units"] = field_units
    fft0 = FFT_COUNTER.count
    timings: dict[str, float] = {}
    warnings: list[str] = []
    t0 = time.perf_counter()

    # ---- 1. brain mask ------------------------------------------------------------------------
    report(progress, 0.0, "mask: brain mask")
    brain = mask_stage(inp)
    fov = fov_voxels(inp)
    params["brain_mask_fraction_of_fov"], warning = mask_coverage(brain, fov, mask is not None)
    if warning:
        warnings.append(warning)
    timings["mask"] = time.perf_counter() - t0

    # ---- 2. total field: unwrapping (and echo combination) ------------------------------------
    t1 = time.perf_counter()
    if entry == "phase":
        report(progress, 0.03, "unwrapping: start")
        total = total_field_from_phase(inp.data, inp, brain, unwrap, scaled(progress, 0.03, 0.08, "unwrapping"))
        params.update(te_effective_s=float(np.mean(inp.tes)), ppm_per_radian=total.ppm_per_rad)
    else:
        total = field_from_map(inp, brain, field_units)
    params["data_region_fraction"] = float(total.trusted.sum() / brain.sum())
    ppr = total.ppm_per_rad
    timings["unwrap"] = time.perf_counter() - t1

    # ---- 3. background removal ----------------------------------------------------------------
    t2 = time.perf_counter()
    if entry == "local_field":
        local_rad, bfr_mask, field_ok = total.rad, brain, total.trusted
    else:
        report(progress, 0.08, "background removal: start")
        local_rad, bfr_mask, field_ok = background_stage(
            total, inp, brain, bfr, unwrap, pdf_tol=pdf_tol, pdf_max_iter=pdf_max_iter, pdf_pad_mm=pdf_pad_mm,
            pdf_grid_mm=pdf_grid_mm,
            vsharp_radii_mm=vsharp_radii_mm, progress=scaled(progress, 0.08, 0.3, "background removal"))
    timings["bfr"] = time.perf_counter() - t2

    # ---- 4. erosion ---------------------------------------------------------------------------
    qsm_mask = erosion_stage(brain, bfr_mask, inp, erode)
    local_ppm = (local_rad * np.float32(ppr)).astype(np.float32)
    # no field outside the data region (V-SHARP: its region): MEDI gives it no weight anyway;
    # TKD and TV, which weigh every voxel alike, would otherwise invert aliased or 2 pi-off voxels
    local_ppm[~(qsm_mask & field_ok)] = 0

    # ---- 5. inversion -------------------------------------------------------------------------
    t3 = time.perf_counter()
    report(progress, 0.3, "inversion: start")
    noise_sd = _magnitude_noise(inp, brain, medi_lambda) if inversion == "medi" else None
    if inversion == "medi" and medi_lambda == defaults.AUTO and inp.magnitude is not None and noise_sd is None:
        warnings.append("MEDI lambda auto: the magnitude's noise could not be measured (a noise-free image?), "
                        "so the cone's misfit level chose the weight (smoother); consider a fixed --lambda")
    chi, qsm_mask = inversion_stage(
        local_ppm, qsm_mask, None if inp.magnitude is None else inp.mag3, total.n_std, inp, ppr, inversion,
        medi_lambda=medi_lambda, magnitude_noise_sd=noise_sd,
        medi_merit=medi_merit, medi_smv_radius_mm=medi_smv_radius_mm, medi_prior_region=medi_prior_region,
        medi_max_iter=medi_max_iter, medi_cg_max_iter=medi_cg_max_iter, medi_cg_tol=medi_cg_tol,
        tkd_threshold=tkd_threshold,
        tv_lambda=tv_lambda, tv_max_iter=tv_max_iter, progress=scaled(progress, 0.3, 1.0, "inversion"))
    timings["inversion"] = time.perf_counter() - t3
    warnings.extend(lambda_warnings(params))  # an automatic weight stopped at its search's bound
    warnings.extend(convergence_warnings(params))  # an iterative inversion stopped at its cap
    timings["total"] = time.perf_counter() - t0
    params["qsm_mask_fraction_of_fov"] = float(qsm_mask.sum() / max(fov, 1))
    report(progress, 1.0, "QSM done")

    inter = _intermediates(entry, total, local_ppm, brain, qsm_mask) if keep_intermediates else {}
    chi = chi.astype(np.float32, copy=False)
    chi[~qsm_mask] = 0
    return QSMResult(
        chi_ppm=chi, mask=qsm_mask, affine=inp.affine, intermediates=inter, parameters=params,
        fft_count=FFT_COUNTER.count - fft0, timings_s=timings, warnings=warnings,
    )


def _check_inversion_parameters(inversion, medi_lambda, medi_max_iter, medi_cg_max_iter, medi_cg_tol,
                                medi_smv_radius_mm, tkd_threshold, tv_lambda, tv_max_iter,
                                medi_prior_region=defaults.MEDI_PRIOR_REGION) -> None:
    """Refuse bad inversion parameters before any computation (the inversions check them again)."""
    if inversion == "medi":
        defaults.check_lambda(medi_lambda, "MEDI lambda")
        defaults.check_iterations(medi_max_iter, "MEDI Gauss-Newton iterations")
        defaults.check_iterations(medi_cg_max_iter, "MEDI CG iterations")
        defaults.check_tolerance(medi_cg_tol, "MEDI CG tolerance")
        if medi_smv_radius_mm is not None:
            defaults.check_positive(medi_smv_radius_mm, "MEDI SMV radius (mm)")
        defaults.check_choice(medi_prior_region, defaults.MEDI_PRIOR_REGIONS, "MEDI prior region")
    elif inversion == "tkd":
        defaults.check_threshold(tkd_threshold)
    else:
        defaults.check_lambda(tv_lambda, "TV lambda")
        defaults.check_iterations(tv_max_iter, "TV iterations")


def data_region(phase_rad: np.ndarray, mask: np.ndarray, max_step_rad: float = 1.5) -> np.ndarray:
    """Where the unwrapped field can be trusted: the largest 6-connected part of ``mask`` whose
    wrapped phase steps by at most ``max_step_rad`` to every neighbour (in every echo of a 4-D
    phase).

    Outside it the phase is aliased (near air at 7 T), or is an island that any unwrapper reaches
    only across aliased voxels, so that it may be off by a multiple of 2 pi.

    Parameters
    ----------
    phase_rad : ndarray, shape (nx, ny, nz) or (nx, ny, nz, n_echoes)
        Wrapped phase, radians.
    mask : ndarray of bool, shape (nx, ny, nz)
        Brain mask.
    max_step_rad : float
        Largest wrapped neighbour step of a reliable voxel, radians.

    Returns
    -------
    ndarray of bool
    """
    phase_rad = np.asarray(phase_rad)
    reliable = np.asarray(mask, dtype=bool).copy()
    echoes = [phase_rad] if phase_rad.ndim == 3 else [phase_rad[..., e] for e in range(phase_rad.shape[3])]
    for psi in echoes:
        reliable &= reliable_voxels(psi, max_step_rad)
    return largest_component(reliable)


def vsharp_region(mask: np.ndarray, trusted: np.ndarray) -> np.ndarray:
    """Where V-SHARP may average a region-grown field: the data region with its holes filled.

    V-SHARP weighs every voxel alike, so its spheres must not reach into the islands at the
    brain's edge that region growing may have left 2 pi off; holes inside are kept (there region
    growing is right, and holes would cost V-SHARP every sphere around them: 79 % against 64 %
    end to end on our 7 T phantom).
    """
    return np.asarray(mask, dtype=bool) & fill_holes_3d(trusted)


def _load_inputs(magnitude_path, data_path, mask_path, *, entry: str = "phase"):
    """Load the entry's input (phase, field or local field), the magnitude and the mask, each on the
    grid of the first one given."""
    data = load_volume(data_path, ndim=(3, 4), dtype=None if entry == "phase" else np.float32)
    mag = None if magnitude_path is None else load_volume(magnitude_path, ndim=(3, 4), dtype=np.float32)
    if mag is not None:
        check_same_grid(mag, data)
    mask = None
    if mask_path is not None:
        mask = load_volume(mask_path, ndim=3, dtype=np.float32)
        check_same_grid(mag if mag is not None else data, mask)
    return mag, data, mask


def provenance(result: QSMResult, sources: dict[str, str | os.PathLike | None]) -> dict:
    """What a chi map's JSON sidecar records: units, software, parameters, timings, inputs."""
    from .. import __version__

    return {
        "Units": "ppm",
        "Description": "magnetic susceptibility (chi) relative to the mean of the QSM mask",
        "GeneratedBy": {"Name": "napari-qsm-ms", "Version": __version__},
        "Parameters": result.parameters,
        "TimingsSeconds": {k: round(v, 3) for k, v in result.timings_s.items()},
        "FFTCount": result.fft_count,
        "QSMMaskVoxels": int(result.mask.sum()),
        "EntryStage": result.parameters.get("entry", "phase"),
        "Warnings": list(result.warnings),
        "Sources": {role: {"path": str(Path(p).resolve()), "sha256": sha256_file(p)}
                    for role, p in sources.items() if p is not None},
    }


def write_outputs(
    result: QSMResult,
    chi_path: str | os.PathLike,
    *,
    mask_path: str | os.PathLike | None = None,
    intermediates_dir: str | os.PathLike | None = None,
    prefix: str = "",
    like: Volume | None = None,
    sources: dict[str, str | os.PathLike | None] | None = None,
) -> list[Path]:
    """Write the chi map (float32 ppm) with its JSON sidecar, the mask (uint8) and optionally the
    intermediates, each atomically. Returns the paths written.

    The sidecar (``<chi>.json``, :func:`provenance`) records the units, the package version,
    every parameter, the timings and the inputs (``sources``: role -> path) with their SHA-256.
    """
    written = [save_volume(chi_path, result.chi_ppm, result.affine, like=like, dtype=np.float32)]
    side = sidecar_path(chi_path)
    atomic_write_json(side, provenance(result, sources or {}))
    written.append(side)
    if mask_path is not None:
        written.append(save_volume(mask_path, result.mask, result.affine, like=like, dtype=np.uint8))
    if intermediates_dir is not None:
        out = Path(intermediates_dir)
        for key, fname in INTERMEDIATE_FILES.items():
            if key in result.intermediates:
                arr = result.intermediates[key]
                dtype = np.uint8 if arr.dtype == bool else np.float32
                written.append(save_volume(out / f"{prefix}{fname}", arr, result.affine, like=like, dtype=dtype))
        atomic_write_json(out / f"{prefix}qsm_parameters.json", {**result.parameters, "timings_s": result.timings_s,
                                                                 "fft_count": result.fft_count})
    return written


def reconstruct_files(
    magnitude_path: str | os.PathLike | None,
    phase_path: str | os.PathLike | None,
    out_path: str | os.PathLike,
    *,
    field_path: str | os.PathLike | None = None,
    local_field_path: str | os.PathLike | None = None,
    te_s: float | Sequence[float] | None = None,
    b0_t: float | None = None,
    mask_path: str | os.PathLike | None = None,
    mask_out_path: str | os.PathLike | None = None,
    save_intermediates: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    **params,
) -> QSMResult:
    """Run :func:`reconstruct_from` on NIfTI files and write the chi map (and mask, intermediates).

    Exactly one of ``phase_path`` (wrapped phase), ``field_path`` (unwrapped total field) and
    ``local_field_path`` (background-removed local field) gives the input and so the entry stage.
    TE and B0 default to that file's JSON sidecar (``EchoTime``, ``MagneticFieldStrength``) when not
    given. Nothing is written unless the whole reconstruction succeeds.

    Parameters
    ----------
    magnitude_path : path or None
        GRE magnitude (3-D, or 4-D multi-echo) on the same grid; optional for a field given with a mask.
    phase_path, field_path, local_field_path : path
        The input, one of the three (NIfTI, 3-D or 4-D echoes last).
    out_path : path
        Chi map to write (``.nii`` or ``.nii.gz``).
    te_s, b0_t : optional
        Echo time(s) in s and field in T; read from the input's sidecar when None.
    mask_path : path, optional
        Brain mask (before erosion) on the same grid.
    mask_out_path : path, optional
        Where to write the mask used for QSM (after erosion).
    save_intermediates : path, optional
        Folder for unwrapped phase, total and local field, masks.
    **params
        Passed to :func:`reconstruct_from` (``field_units`` for a field).
    """
    out_path = Path(out_path)
    if not str(out_path).lower().endswith((".nii", ".nii.gz")):
        raise InputFileError(out_path, "output must end in .nii or .nii.gz")
    entry, data_path = entry_of(phase_path, field_path, local_field_path)
    mag, data, mask = _load_inputs(magnitude_path, data_path, mask_path, entry=entry)
    te_s, b0_t = _acquisition_for(data.path, entry, params.get("field_units"), te_s, b0_t)
    result = reconstruct_from(
        data.data, entry=entry, magnitude=None if mag is None else mag.data, affine=data.affine, te_s=te_s,
        b0_t=b0_t, mask=None if mask is None else mask.data,
        names={"magnitude": None if mag is None else str(mag.path), entry: str(data.path),
               "mask": None if mask is None else str(mask.path)},
        keep_intermediates=save_intermediates is not None, progress=progress, **params,
    )
    write_outputs(result, out_path, mask_path=mask_out_path, intermediates_dir=save_intermediates,
                  like=mag if mag is not None else data,
                  sources={"magnitude": None if mag is None else mag.path, entry: data.path,
                           "mask": None if mask is None else mask.path})
    return result


def entry_of(phase_path, field_path, local_field_path) -> tuple[str, os.PathLike]:
    """The entry stage and its file from the three input options, exactly one of which is given."""
    given = [(e, p) for e, p in (("phase", phase_path), ("field", field_path), ("local_field", local_field_path))
             if p is not None]
    if len(given) != 1:
        names = " and ".join(f"--{e.replace('_', '-')}" for e, _ in given)
        raise ParameterError(f"give one input, --phase, --field or --local-field, not {names}" if given
                             else "give an input: --phase, --field or --local-field")
    return given[0]


def _acquisition_for(path: Path, entry: str, field_units: str | None, te_s, b0_t):
    """TE and B0 from the options, else from the input's sidecar; a missing one is an error only
    where the entry needs it (a field in ppm needs neither, a field in Hz only B0)."""
    needs_te = entry == "phase" or field_units == "rad"
    needs_b0 = entry == "phase" or field_units in ("rad", "hz")
    if te_s is not None:  # the options' own values: an error names the option, not the input file
        for t in np.atleast_1d(np.asarray(te_s, dtype=object)).tolist():  # objects: "abc" gets its own error
            check_te_s(t, name="--te")
    if b0_t is not None:
        check_b0_t(b0_t, name="--b0")
    side = sidecar_path(path)
    if side.exists() and (te_s is None or b0_t is None):
        acq = acquisition_from_sidecar(side) if needs_te else None
        if acq is not None:
            te_s = acq.echo_times_s if te_s is None else te_s
            b0_t = acq.b0_t if b0_t is None else b0_t
        elif b0_t is None:
            b0_t = read_sidecar(side).get("MagneticFieldStrength")
    missing = [opt for opt, need, v in (("echo time (--te)", needs_te, te_s), ("field strength (--b0)", needs_b0, b0_t))
               if need and v is None]
    if missing:
        raise InputFileError(path, f"no {missing[0]} given and no sidecar {side.name} with it")
    return te_s, b0_t


def _write_derivatives_description(study: Path) -> None:
    path = study / DERIVATIVES / "dataset_description.json"
    if not path.exists():
        atomic_write_json(path, {
            "Name": "qsm-ms derivatives", "BIDSVersion": "1.8.0", "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "napari-qsm-ms"}],
        })


def reconstruct_subject(
    subject: SubjectFiles,
    *,
    save_intermediates: bool | str | os.PathLike = False,
    progress: ProgressCallback | None = None,
    **params,
) -> QSMResult:
    """Reconstruct one subject of a study: writes ``subject.chimap`` and ``subject.brain_mask``.

    TE and B0 come from ``subject.phase_json``. Intermediates go to ``subject.intermediates()``
    when ``save_intermediates`` is True, or into the folder it names.
    """
    if not subject.phase_json.exists():
        raise InputFileError(subject.phase_json, "sidecar not found (EchoTime and MagneticFieldStrength needed)")
    acq = acquisition_from_sidecar(subject.phase_json)
    mag, ph, _ = _load_inputs(subject.magnitude, subject.phase, None)
    result = reconstruct(
        mag.data, ph.data, affine=mag.affine, te_s=acq.echo_times_s, b0_t=acq.b0_t,
        names={"magnitude": str(mag.path), "phase": str(ph.path)},
        keep_intermediates=bool(save_intermediates), progress=progress, **params,
    )
    if save_intermediates is True:
        inter_dir = subject.intermediates()
    else:
        inter_dir = Path(save_intermediates) if save_intermediates else None
    write_outputs(
        result, subject.chimap, mask_path=subject.brain_mask, intermediates_dir=inter_dir,
        prefix=f"{subject.sub}_", like=mag,
        sources={"magnitude": mag.path, "phase": ph.path, "phase_sidecar": subject.phase_json},
    )
    _write_derivatives_description(subject.study)
    return result
