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
from ..io.sidecar import acquisition_from_sidecar, check_b0_t, check_te_s, sidecar_path
from ..io.units import phase_to_radians
from ..progress import ProgressCallback, report, scaled
from ._fft import FFT_COUNTER
from .bfr import pdf, vsharp
from .dipole import ppm_per_radian
from . import defaults
from .inversion import medi_l1, tkd, tv_admm
from .mask import brain_mask, erode_mask_mm, fill_holes_3d, largest_component
from .region_unwrap import unwrap_region_growing
from .unwrap import reliable_voxels, unwrap_laplacian

UNWRAP_METHODS = ("region", "laplacian")
BFR_METHODS = ("pdf", "vsharp")
INVERSION_METHODS = ("medi", "tkd", "tv")
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
    """

    chi_ppm: np.ndarray
    mask: np.ndarray
    affine: np.ndarray
    intermediates: dict[str, np.ndarray] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    fft_count: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)


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
        Noise standard deviation of ``field_rad`` (relative units).
    te_eff_s : float
        The effective echo time: the mean echo time.
    """
    t = np.asarray(echo_times_s, dtype=np.float32)
    mag = np.asarray(magnitude, dtype=np.float32)
    if mag.ndim == 3:
        mag = np.repeat(mag[..., None], len(t), axis=3)
    w = mag**2
    sw = w.sum(axis=3)
    sw_safe = np.where(sw > 0, sw, 1.0)
    tbar = (w * t).sum(axis=3) / sw_safe
    pbar = (w * unwrapped_rad).sum(axis=3) / sw_safe
    dt = t - tbar[..., None]
    sxx = (w * dt * dt).sum(axis=3)
    sxx_safe = np.where(sxx > 0, sxx, 1.0)
    slope = (w * dt * (unwrapped_rad - pbar[..., None])).sum(axis=3) / sxx_safe
    te_eff = float(t.mean())
    with np.errstate(divide="ignore"):
        n_std = np.where(sxx > 0, te_eff / np.sqrt(sxx_safe), np.inf).astype(np.float32)
    return (slope * te_eff).astype(np.float32), n_std, te_eff


def reconstruct(
    magnitude: np.ndarray,
    phase: np.ndarray,
    *,
    affine: np.ndarray,
    te_s: float | Sequence[float],
    b0_t: float,
    mask: np.ndarray | None = None,
    phase_units: str = "auto",
    unwrap: str = "region",
    bfr: str = "pdf",
    inversion: str = defaults.INVERSION,
    erode_mm: float = defaults.ERODE_MM,
    medi_lambda: float | str = defaults.MEDI_LAMBDA,
    medi_merit: bool = False,
    medi_smv_radius_mm: float | None = None,
    medi_max_iter: int = defaults.MEDI_MAX_ITER,
    medi_cg_max_iter: int = defaults.MEDI_CG_MAX_ITER,
    medi_cg_tol: float = defaults.MEDI_CG_TOL,
    tkd_threshold: float = defaults.TKD_THRESHOLD,
    tv_lambda: float | str = defaults.TV_LAMBDA,
    tv_max_iter: int = defaults.TV_MAX_ITER,
    pdf_tol: float = 1e-3,
    pdf_max_iter: int = 30,
    pdf_pad_mm: float = 20.0,
    vsharp_radii_mm: Sequence[float] | None = None,
    names: dict[str, str] | None = None,
    keep_intermediates: bool = True,
    progress: ProgressCallback | None = None,
) -> QSMResult:
    """Susceptibility map (ppm) from a GRE magnitude and wrapped phase.

    Steps: brain mask from the magnitude (unless given) -> phase unwrapping in the mask
    (quality-guided region growing, or the Laplacian method) -> (multi-echo: weighted fit over
    TE) -> background-field removal (PDF or V-SHARP) -> erosion by ``erode_mm`` -> dipole
    inversion (MEDI-L1, TKD or TV-ADMM) with the B0 direction and voxel size of ``affine``.

    The field is trusted (given data weight in PDF and MEDI) only on the *data region*: the
    largest 6-connected part of the mask where the wrapped phase steps by at most 1.5 rad to
    every neighbour (:func:`data_region`). Aliased voxels near air, and islands that an unwrapper
    can only reach across them (and may therefore be off by 2 pi), are left to the
    regularisation.

    Parameters
    ----------
    magnitude : ndarray, shape (nx, ny, nz) or (nx, ny, nz, n_echoes)
        GRE magnitude.
    phase : ndarray, same spatial shape; 4-D for several echoes
        Wrapped phase, radians or raw integers.
    affine : ndarray (4, 4)
        Voxel-to-world (RAS+ mm) transform of both; gives the voxel size and B0 direction.
    te_s : float or sequence of float
        Echo time(s), seconds (one per echo of a 4-D phase).
    b0_t : float
        Field strength, tesla.
    mask : ndarray of bool, optional
        Brain mask (before erosion); computed from the magnitude if None.
    phase_units : {'auto', 'rad', 'raw'}
        Units of ``phase`` (raw integers are scaled to radians).
    unwrap : {'region', 'laplacian'}
        Phase unwrapping: quality-guided region growing
        (:func:`~napari_qsm_ms.qsm.region_unwrap.unwrap_region_growing`, exact multiples of
        2 pi, the default) or the MEDI toolbox's Laplacian method
        (:func:`~napari_qsm_ms.qsm.unwrap.unwrap_laplacian`).
    bfr : {'pdf', 'vsharp'}
        Background-field removal.
    inversion : {'medi', 'tkd', 'tv'}
        Dipole inversion.
    erode_mm : float
        Erosion of the brain mask before inversion, mm (paper: 2.5).
    medi_lambda : float or "auto"
        MEDI data weight in ppm-normalised units, independent of B0 and TE
        (``lambda_MEDI-toolbox = medi_lambda * ppm_per_radian(TE, B0)``); "auto" (default):
        chosen per scan by the discrepancy principle (docs/qsm.md). The value used and how it was
        chosen are in ``parameters`` (``medi_lam``, ``medi_lambda_choice``, ...).
    medi_merit, medi_smv_radius_mm, medi_max_iter, medi_cg_max_iter, medi_cg_tol
        MEDI options (MERIT reweighting, SMV radius in mm or None, Gauss-Newton and CG limits).
    tkd_threshold : float
        TKD truncation of |D| (frequencies below it are dropped, the literature's TKD).
    tv_lambda, tv_max_iter
        TV-ADMM weight (ppm units, or "auto" as for MEDI) and iterations.
    pdf_tol, pdf_max_iter
        PDF conjugate-gradient tolerance and iterations.
    pdf_pad_mm : float
        PDF zero padding around the mask's box, mm in total per axis.
    vsharp_radii_mm : sequence of float, optional
        V-SHARP radii (default 12 mm down to two voxels in 1 mm steps).
    names : dict, optional
        File names for error messages: keys ``magnitude``, ``phase``, ``mask``.
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
    mag_name, ph_name, mask_name = _name(names, "magnitude"), _name(names, "phase"), _name(names, "mask")
    phase = np.asarray(phase)
    magnitude = np.asarray(magnitude)
    # ---- validation, before any computation --------------------------------------------------
    if unwrap not in UNWRAP_METHODS:
        raise ParameterError(f"unknown unwrapping {unwrap!r} (choose from {', '.join(UNWRAP_METHODS)})")
    if bfr not in BFR_METHODS:
        raise ParameterError(f"unknown background removal {bfr!r} (choose from {', '.join(BFR_METHODS)})")
    if inversion not in INVERSION_METHODS:
        raise ParameterError(f"unknown inversion {inversion!r} (choose from {', '.join(INVERSION_METHODS)})")
    erode_mm = defaults.check_erosion(erode_mm)
    _check_inversion_parameters(inversion, medi_lambda, medi_max_iter, medi_cg_max_iter, medi_cg_tol,
                                medi_smv_radius_mm, tkd_threshold, tv_lambda, tv_max_iter)
    if phase.ndim not in (3, 4):
        _fail(ph_name, f"phase is {phase.ndim}-D with shape {phase.shape}, expected 3-D or 4-D")
    if magnitude.ndim not in (3, 4):
        _fail(mag_name, f"magnitude is {magnitude.ndim}-D with shape {magnitude.shape}, expected 3-D or 4-D")
    if magnitude.shape[:3] != phase.shape[:3]:
        _fail(ph_name, f"phase shape {phase.shape[:3]} differs from magnitude shape {magnitude.shape[:3]}")
    n_echoes = phase.shape[3] if phase.ndim == 4 else 1
    if magnitude.ndim == 4 and magnitude.shape[3] != n_echoes:
        _fail(mag_name, f"magnitude has {magnitude.shape[3]} echoes but phase has {n_echoes}")
    tes = _echo_times(te_s, n_echoes, ph_name)
    b0 = check_b0_t(b0_t, ph_name)
    _check_finite(magnitude, mag_name, "magnitude")
    _check_finite(phase, ph_name, "phase")
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        _fail(mag_name, "affine is singular or not 4x4 (no usable geometry)")
    phase_rad = phase_to_radians(phase, phase_units, source=ph_name)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape[:3] != magnitude.shape[:3] or mask.ndim != 3:
            _fail(mask_name, f"mask shape {mask.shape} differs from magnitude shape {magnitude.shape[:3]}")
        _check_finite(mask.astype(np.float32) if mask.dtype != bool else mask, mask_name, "mask")
        mask = mask > 0
        if not mask.any():
            _fail(mask_name, "mask is empty (no voxel > 0)")
    vs = voxel_size_from_affine(affine)
    b0_dir = b0_direction_voxel(affine)
    mag3 = magnitude.astype(np.float32)
    if mag3.ndim == 4:
        mag3 = np.sqrt((mag3**2).mean(axis=3))
    if not (mag3 > 0).any():
        _fail(mag_name, "magnitude is zero everywhere")

    params = dict(
        te_s=list(tes), b0_t=b0, voxel_size_mm=list(vs), b0_dir_voxel=[float(v) for v in b0_dir],
        unwrap=unwrap, bfr=bfr, inversion=inversion, erode_mm=erode_mm, phase_units=phase_units,
        mask="given" if mask is not None else "from magnitude",
    )
    fft0 = FFT_COUNTER.count
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    # ---- brain mask -------------------------------------------------------------------------
    report(progress, 0.0, "brain mask")
    if mask is None:
        mask = brain_mask(mag3, vs)
        if not mask.any():
            _fail(mag_name, "no brain found in the magnitude (automatic mask is empty)")
    timings["mask"] = time.perf_counter() - t0

    # ---- unwrapping (and echo combination) ---------------------------------------------------
    t1 = time.perf_counter()

    def unwrap_echo(psi: np.ndarray, start: float, stop: float) -> np.ndarray:
        sub = scaled(progress, start, stop)
        if unwrap == "region":
            return unwrap_region_growing(psi, mask, mag3, progress=sub)
        return unwrap_laplacian(psi, vs, progress=sub)

    if n_echoes == 1:
        unwrapped = unwrap_echo(phase_rad, 0.03, 0.08)
        te_eff = tes[0]
        with np.errstate(divide="ignore"):
            n_std = np.where(mag3 > 0, 1.0 / np.maximum(mag3, 1e-30), np.inf).astype(np.float32)
    else:
        echoes = np.stack([unwrap_echo(phase_rad[..., e], 0.03 + 0.05 * e / n_echoes,
                                       0.03 + 0.05 * (e + 1) / n_echoes) for e in range(n_echoes)], axis=3)
        mags = magnitude.astype(np.float32) if magnitude.ndim == 4 else mag3
        unwrapped, n_std, te_eff = combine_echoes(echoes, mags, tes)
        del echoes
    trusted = data_region(phase_rad, mask)
    n_std[~trusted] = np.inf  # no data weight where the unwrapped phase cannot be trusted
    params["data_region_fraction"] = float(trusted.sum() / mask.sum())
    ppr = ppm_per_radian(te_eff, b0)
    params["te_effective_s"] = te_eff
    params["ppm_per_radian"] = ppr
    timings["unwrap"] = time.perf_counter() - t1

    # ---- background removal ----------------------------------------------------------------
    t2 = time.perf_counter()
    sub = scaled(progress, 0.08, 0.3)
    if bfr == "pdf":
        field_ok = trusted
        local_rad = pdf(unwrapped, mask, vs, b0_dir, n_std=n_std, tol=pdf_tol, max_iter=pdf_max_iter,
                        pad_mm=pdf_pad_mm, progress=sub)
        bfr_mask = mask
        params.update(pdf_tol=pdf_tol, pdf_max_iter=pdf_max_iter, pdf_pad_mm=pdf_pad_mm)
    else:
        region = vsharp_region(mask, trusted) if unwrap == "region" else mask
        local_rad, bfr_mask = vsharp(unwrapped, region, vs, radii_mm=vsharp_radii_mm, progress=sub)
        field_ok = bfr_mask  # V-SHARP's eroded region
        params["vsharp_radii_mm"] = None if vsharp_radii_mm is None else list(vsharp_radii_mm)
    timings["bfr"] = time.perf_counter() - t2

    # ---- erosion ----------------------------------------------------------------------------
    qsm_mask = erode_mask_mm(mask, vs, erode_mm) & bfr_mask
    if not qsm_mask.any():
        _fail(mask_name or mag_name, f"mask is empty after {erode_mm:g} mm erosion (brain too small?)")
    local_ppm = (local_rad * np.float32(ppr)).astype(np.float32)
    # no field outside the data region (V-SHARP: its region): MEDI gives it no weight anyway;
    # TKD and TV, which weigh every voxel alike, would otherwise invert aliased or 2 pi-off voxels
    local_ppm[~(qsm_mask & field_ok)] = 0

    # ---- inversion --------------------------------------------------------------------------
    t3 = time.perf_counter()
    sub = scaled(progress, 0.3, 1.0)
    info: list = []
    if inversion == "medi":
        chi = medi_l1(
            local_ppm, qsm_mask, mag3, vs, b0_dir, ppm_per_rad=ppr, lam=medi_lambda, n_std=n_std,
            merit=medi_merit, smv_radius_mm=medi_smv_radius_mm, max_iter=medi_max_iter,
            cg_max_iter=medi_cg_max_iter, cg_tol=medi_cg_tol, progress=sub, info=info,
        )
        if medi_smv_radius_mm:
            qsm_mask = qsm_mask & (chi != 0)
        params.update(medi_lambda=medi_lambda, medi_lambda_toolbox=info[0].lam * ppr, medi_merit=medi_merit,
                      medi_smv_radius_mm=medi_smv_radius_mm, medi_max_iter=medi_max_iter,
                      medi_cg_max_iter=medi_cg_max_iter, medi_cg_tol=medi_cg_tol, **info[0].record("medi"))
    elif inversion == "tkd":
        chi = tkd(local_ppm, qsm_mask, vs, b0_dir, threshold=tkd_threshold, progress=sub)
        params["tkd_threshold"] = tkd_threshold
    else:
        chi = tv_admm(local_ppm, qsm_mask, vs, b0_dir, lam=tv_lambda, max_iter=tv_max_iter, progress=sub,
                      info=info)
        params.update(tv_lambda=tv_lambda, tv_max_iter=tv_max_iter, **info[0].record("tv"))
    timings["inversion"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    report(progress, 1.0, "QSM done")

    inter: dict[str, np.ndarray] = {}
    if keep_intermediates:
        inter = {
            "unwrapped_phase_rad": unwrapped.astype(np.float32),
            "total_field_ppm": (unwrapped * np.float32(ppr)).astype(np.float32),
            "local_field_ppm": local_ppm,
            "brain_mask": mask,
            "qsm_mask": qsm_mask,
        }
    chi = chi.astype(np.float32, copy=False)
    chi[~qsm_mask] = 0
    return QSMResult(
        chi_ppm=chi, mask=qsm_mask, affine=affine, intermediates=inter, parameters=params,
        fft_count=FFT_COUNTER.count - fft0, timings_s=timings,
    )


def _check_inversion_parameters(inversion, medi_lambda, medi_max_iter, medi_cg_max_iter, medi_cg_tol,
                                medi_smv_radius_mm, tkd_threshold, tv_lambda, tv_max_iter) -> None:
    """Refuse bad inversion parameters before any computation (the inversions check them again)."""
    if inversion == "medi":
        defaults.check_lambda(medi_lambda, "MEDI lambda")
        defaults.check_iterations(medi_max_iter, "MEDI Gauss-Newton iterations")
        defaults.check_iterations(medi_cg_max_iter, "MEDI CG iterations")
        defaults.check_tolerance(medi_cg_tol, "MEDI CG tolerance")
        if medi_smv_radius_mm is not None:
            defaults.check_positive(medi_smv_radius_mm, "MEDI SMV radius (mm)")
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


def _load_inputs(magnitude_path, phase_path, mask_path):
    mag = load_volume(magnitude_path, ndim=(3, 4), dtype=np.float32)
    ph = load_volume(phase_path, ndim=(3, 4), dtype=None)  # keep raw integers as integers
    check_same_grid(mag, ph)
    mask = None
    if mask_path is not None:
        mask = load_volume(mask_path, ndim=3, dtype=np.float32)
        check_same_grid(mag, mask)
    return mag, ph, mask


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
    magnitude_path: str | os.PathLike,
    phase_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    te_s: float | Sequence[float] | None = None,
    b0_t: float | None = None,
    mask_path: str | os.PathLike | None = None,
    mask_out_path: str | os.PathLike | None = None,
    save_intermediates: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    **params,
) -> QSMResult:
    """Run :func:`reconstruct` on NIfTI files and write the chi map (and mask, intermediates).

    TE and B0 default to the phase file's JSON sidecar (``EchoTime``, ``MagneticFieldStrength``)
    when not given. Nothing is written unless the whole reconstruction succeeds.

    Parameters
    ----------
    magnitude_path, phase_path : path
        GRE magnitude and phase NIfTI files (3-D, or 4-D multi-echo) on the same grid.
    out_path : path
        Chi map to write (``.nii`` or ``.nii.gz``).
    te_s, b0_t : optional
        Echo time(s) in s and field in T; read from the phase sidecar when None.
    mask_path : path, optional
        Brain mask (before erosion) on the same grid.
    mask_out_path : path, optional
        Where to write the mask used for QSM (after erosion).
    save_intermediates : path, optional
        Folder for unwrapped phase, total and local field, masks.
    **params
        Passed to :func:`reconstruct`.
    """
    out_path = Path(out_path)
    if not str(out_path).lower().endswith((".nii", ".nii.gz")):
        raise InputFileError(out_path, "output must end in .nii or .nii.gz")
    mag, ph, mask = _load_inputs(magnitude_path, phase_path, mask_path)
    if te_s is None or b0_t is None:
        side = sidecar_path(ph.path)
        if not side.exists():
            missing = "echo time (--te)" if te_s is None else "field strength (--b0)"
            raise InputFileError(ph.path, f"no {missing} given and no sidecar {side.name}")
        acq = acquisition_from_sidecar(side)
        te_s = acq.echo_times_s if te_s is None else te_s
        b0_t = acq.b0_t if b0_t is None else b0_t
    result = reconstruct(
        mag.data, ph.data, affine=mag.affine, te_s=te_s, b0_t=b0_t,
        mask=None if mask is None else mask.data,
        names={"magnitude": str(mag.path), "phase": str(ph.path), "mask": None if mask is None else str(mask.path)},
        keep_intermediates=save_intermediates is not None, progress=progress, **params,
    )
    write_outputs(result, out_path, mask_path=mask_out_path, intermediates_dir=save_intermediates, like=mag,
                  sources={"magnitude": mag.path, "phase": ph.path, "mask": None if mask is None else mask.path})
    return result


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
