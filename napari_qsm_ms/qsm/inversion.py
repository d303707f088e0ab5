"""Dipole inversion: MEDI-L1 (as the MEDI toolbox's ``MEDI_L1``), TKD and TV-ADMM.

Every function takes the local field in ppm (``field_rad * ppm_per_radian(te, b0)``) and returns
chi in ppm, on the input grid, zero outside the mask. Work happens on the mask's bounding box,
zero-padded to an FFT-friendly size, with real FFTs in single precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ParameterError
from ..progress import ProgressCallback, report
from . import defaults
from . import _kspace
from ._fft import bounding_box, fast_shape, irfftn, pad_centered, rfftn
from .bfr import _cg, noise_weight, sphere_kernel_rfft
from .dipole import dipole_kernel
from .gradients import (
    forward_gradient,
    irls_weights,
    weighted_gradient_normal,
    weighted_gradient_normal_diagonal,
)

DEFAULT_PAD_MM = 8.0
"""Zero padding (mm) added on each side of the mask's bounding box before dipole convolutions."""


@dataclass
class _Grid:
    box: tuple
    inner: tuple
    shape: tuple

    def embed(self, x: np.ndarray, fill=0) -> np.ndarray:
        out, _ = pad_centered(np.asarray(x)[self.box], self.shape)
        return out

    def extract(self, xp: np.ndarray, full_shape, dtype=np.float32) -> np.ndarray:
        out = np.zeros(full_shape, dtype=dtype)
        out[self.box] = xp[self.inner]
        return out


def _grid(mask: np.ndarray, voxel_size_mm, pad_mm: float) -> _Grid:
    box = bounding_box(mask)
    sub = tuple(s.stop - s.start for s in box)
    pad = [2 * int(np.ceil(pad_mm / h)) for h in voxel_size_mm]
    shape = fast_shape(sub, pad)
    starts = [(s - n) // 2 for s, n in zip(shape, sub)]
    inner = tuple(slice(a, a + n) for a, n in zip(starts, sub))
    return _Grid(box, inner, shape)


def tkd(
    field_ppm: np.ndarray,
    mask: np.ndarray,
    voxel_size_mm,
    b0_dir,
    *,
    threshold: float = defaults.TKD_THRESHOLD,
    pad_mm: float = DEFAULT_PAD_MM,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Thresholded k-space division (Shmueli K. et al., MRM 2009; Wharton S. et al., MRM 2010).

    ``chi = IFFT(FFT(f) * K)`` with ``K = 1/D`` where ``|D| > threshold`` and ``K = 0`` elsewhere:
    the ill-conditioned frequencies are dropped, as in the 2016 QSM challenge's TKD recipe
    (threshold 0.19). The variant that raises ``|D|`` to the threshold instead (keeping its sign,
    this package's TKD before 2026-12) was removed: it was worse on the challenge data
    (RMSE 110.8 % against 86.4 %) and on our phantoms (NRMSE 79 % against 75 %).

    Parameters
    ----------
    field_ppm : ndarray
        Local field, ppm.
    mask : ndarray of bool
    voxel_size_mm, b0_dir : sequence of 3 float
    threshold : float
        Truncation level of ``|D|``, in (0, 2/3] (0.19 is common).
    pad_mm : float
        Zero padding per side, mm.

    Returns
    -------
    ndarray, float32
        Chi in ppm, 0 outside the mask.

    Raises
    ------
    ParameterError
        For a threshold outside (0, 2/3].
    """
    threshold = defaults.check_threshold(threshold)
    mask = np.asarray(mask, dtype=bool)
    g = _grid(mask, voxel_size_mm, pad_mm)
    report(progress, 0.0, "TKD inversion")
    f = g.embed(np.where(mask, field_ppm, 0).astype(np.float32))
    d = dipole_kernel(g.shape, voxel_size_mm, b0_dir, rfft=True)
    kept = np.abs(d) > threshold
    k_inv = np.where(kept, 1.0 / np.where(kept, d, 1.0), 0.0).astype(np.float32)
    chi = irfftn(rfftn(f) * k_inv, g.shape)
    out = g.extract(chi, mask.shape)
    out[~mask] = 0
    report(progress, 1.0, "TKD inversion")
    return out


def _periodic_grad(x, h):
    return np.stack([(np.roll(x, -1, axis=a) - x) / h[a] for a in range(3)])


def _periodic_grad_adj(g, h):
    return sum((np.roll(g[a], 1, axis=a) - g[a]) / h[a] for a in range(3))


@dataclass
class InversionInfo:
    """How an iterative inversion ended: what the provenance record needs.

    Attributes
    ----------
    lam : float
        The weight used at the end (chosen or given).
    lambda_choice : str
        ``"fixed"`` or how it was chosen (``"discrepancy (cone noise)"``).
    iterations : int
        Outer iterations done.
    converged : bool
        Whether the stopping criterion was met before the iteration limit.
    criterion : str
        The stopping criterion, in words.
    final_change : float
        The last relative update (the quantity the criterion compares with its tolerance).
    misfit_rms_ppm, target_rms_ppm : float
        Root-mean-square data misfit in the mask at the end, and the discrepancy target (NaN with
        a fixed weight).
    lambda_path : list of (weight, misfit)
        The automatic search's steps (empty with a fixed weight).
    lambda_at_bound : str
        ``"lower"``/``"upper"`` when the automatic search stopped at its bound, else ``""``.
    prior : str
        The regulariser and data weights actually used, in words (MEDI: with or without the
        magnitude's edge prior).
    final_change_in_mask : float
        MEDI: the last relative update ``||dx|| / ||x||`` taken in the mask only, the map that is
        reported (``final_change`` is over the padded grid, the free exterior included; NaN for TV).
    tolerance : float
        The tolerance ``final_change`` is compared with (NaN when not given).
    cg_iterations, cg_residuals : list
        MEDI: inner CG iterations and final relative residual ``||r|| / ||b||`` per Gauss-Newton
        step (empty for TV).
    cg_converged : bool or None
        MEDI: whether every inner solve with the final weight reached its tolerance (steps taken
        while an automatic weight was still moving are cut at :data:`SEARCH_CG_MAX_ITER`; False
        when the weight moved until the last step; None for TV).
    """

    lam: float
    iterations: int
    converged: bool
    criterion: str
    final_change: float
    misfit_rms_ppm: float = float("nan")
    lambda_choice: str = "fixed"
    target_rms_ppm: float = float("nan")
    lambda_path: list = field(default_factory=list)
    cg_iterations: list = field(default_factory=list)
    cg_residuals: list = field(default_factory=list)
    cg_converged: bool | None = None
    lambda_at_bound: str = ""
    prior: str = ""
    final_change_in_mask: float = float("nan")
    tolerance: float = float("nan")

    def record(self, prefix: str) -> dict:
        """The fields as ``{prefix_name: value}`` for a parameter record (JSON-safe floats)."""
        out = {}
        for k, v in self.__dict__.items():
            if isinstance(v, float):
                v = None if not np.isfinite(v) else float(f"{v:.6g}")
            elif isinstance(v, list) and v and isinstance(v[0], (tuple, list)):
                v = [[float(f"{a:.4g}") for a in pair] for pair in v]
            elif isinstance(v, list):
                v = [None if not np.isfinite(a) else (a if isinstance(a, int) else float(f"{a:.4g}")) for a in v]
            out[f"{prefix}_{k}"] = v
        return out


_CAP_OPTIONS = {"medi": ("MEDI", "Gauss-Newton steps",
                         "--medi-max-iter; 'MEDI steps (max)' in the QSM dock; medi_max_iter in Python"),
                "tv": ("TV", "ADMM iterations", "--tv-max-iter; tv_max_iter in Python")}


def _percent(fraction) -> str:
    """``0.151`` -> ``"15.1"``, ``1.0`` -> ``"100"``."""
    text = f"{100 * float(fraction):.1f}"
    return text[:-2] if text.endswith(".0") else text


def _settled_in_mask(parameters: dict, prefix: str) -> bool:
    """Whether the last update of the reported map, in the mask, was below the rule's tolerance
    (MEDI with its prior inside the mask: the grid's ratio also counts the free exterior)."""
    in_mask, tol = parameters.get(f"{prefix}_final_change_in_mask"), parameters.get(f"{prefix}_tolerance")
    return in_mask is not None and tol is not None and in_mask < tol


def convergence_warnings(parameters: dict) -> list:
    """One line per iterative inversion in ``parameters`` (the fields of :meth:`InversionInfo.record`)
    that ended at its iteration cap before its stopping rule (``*_converged`` False) with the reported
    map still moving: the map is the last iterate; the line says how far it still moved and how to
    raise the cap. A run whose last update in the mask was already below the tolerance (only the
    padded exterior still moving) gives no line: two more steps changed nothing measurable there
    (docs/qsm.md, "Known limits"); the sidecar still records ``*_converged`` False and both ratios."""
    out = []
    for prefix, (name, steps, options) in _CAP_OPTIONS.items():
        if parameters.get(f"{prefix}_converged") is not False or _settled_in_mask(parameters, prefix):
            continue
        rule = str(parameters.get(f"{prefix}_criterion", "")).split(";")[0]
        change = parameters.get(f"{prefix}_final_change")
        in_mask = parameters.get(f"{prefix}_final_change_in_mask")
        moved = "" if change is None else f"; the last one still changed chi by {_percent(change)} %"
        if change is not None and in_mask is not None:
            moved += f" over the padded grid ({_percent(in_mask)} % in the mask)"
        cap = parameters.get(f"{prefix}_iterations")
        out.append(f"{name} stopped at its cap of {cap} {steps} before its stopping rule ({rule}){moved}; "
                   f"raise the cap ({options})")
    return out


def tv_admm(
    field_ppm: np.ndarray,
    mask: np.ndarray,
    voxel_size_mm,
    b0_dir,
    *,
    lam: float | str = defaults.TV_LAMBDA,
    lam_start: float = defaults.TV_LAMBDA_FIXED,
    rho: float | None = None,
    max_iter: int = defaults.TV_MAX_ITER,
    tol: float = defaults.TV_TOL,
    pad_mm: float = DEFAULT_PAD_MM,
    progress: ProgressCallback | None = None,
    info: list | None = None,
) -> np.ndarray:
    """Total-variation inversion by ADMM with a closed-form k-space step (Bilgic B. et al., MRM 2014).

    Minimises ``1/2 ||D chi - f||^2 + lam ||G chi||_1`` (anisotropic TV, periodic forward
    differences with the voxel size). ``lam`` is in ppm units of the field, so it does not depend
    on B0 or TE.

    With ``lam="auto"`` the weight is chosen during the iterations by the discrepancy principle
    (:mod:`~napari_qsm_ms.qsm.regularisation`): starting from
    ``lam_start`` (:data:`~napari_qsm_ms.qsm.defaults.TV_LAMBDA_FIXED`), every
    :data:`~napari_qsm_ms.qsm.defaults.TV_LAMBDA_CHECK_EVERY` iterations the rms misfit
    ``|D chi - f|`` in the mask is compared with the cone noise level and ``lam`` takes a secant
    step (one extra FFT per check); the weight is frozen after
    :data:`~napari_qsm_ms.qsm.defaults.TV_LAMBDA_MAX_UPDATES` steps, or earlier once the misfit is
    within :data:`~napari_qsm_ms.qsm.defaults.DISCREPANCY_TOLERANCE` (2 %) of its target, twice
    (:class:`~napari_qsm_ms.qsm.regularisation.LambdaSearch`).

    Parameters
    ----------
    lam : float or "auto"
        TV weight (field in ppm, gradients per mm), > 0.
    lam_start : float
        Where the automatic search starts (ignored with a number).
    rho : float, optional
        ADMM penalty (default ``100 * lam``; under "auto" it follows the weight, the scaled dual
        variable rescaled with it).
    max_iter : int
        Iterations at most (>= 1).
    tol : float
        Stop when the relative change of chi, ``||chi_k - chi_k-1|| / ||chi_k||``, falls below
        ``tol`` (and the weight is no longer moving).
    info : list, optional
        Receives an :class:`InversionInfo`.

    Returns
    -------
    ndarray, float32
        Chi in ppm, 0 outside the mask.

    Raises
    ------
    ParameterError
        For a weight that is not "auto" or > 0, ``max_iter`` < 1, a tolerance outside (0, 1).
    """
    from .regularisation import LambdaSearch, cone_noise_level

    lam = defaults.lambda_rule(defaults.check_lambda(lam, "TV lambda"), noise_measured=False)
    if lam == defaults.AUTO_NOISE:
        raise ParameterError("TV lambda auto-noise is not available (TV has no magnitude noise weights): use auto "
                             "or a number")
    max_iter = defaults.check_iterations(max_iter, "TV iterations")
    tol = defaults.check_tolerance(tol, "TV tolerance")
    mask = np.asarray(mask, dtype=bool)
    vs = np.asarray(voxel_size_mm, dtype=np.float32)
    g = _grid(mask, voxel_size_mm, pad_mm)
    f = g.embed(np.where(mask, field_ppm, 0).astype(np.float32))
    d = dipole_kernel(g.shape, voxel_size_mm, b0_dir, rfft=True)
    search = LambdaSearch(lam, start=defaults.check_positive(lam_start, "TV lambda start"), increasing=True,
                          max_updates=defaults.TV_LAMBDA_MAX_UPDATES)
    m_in = g.embed(mask).astype(bool)
    if search.auto:
        search.set_target(cone_noise_level(f, d, voxel_size_mm, int(mask.sum())), float(np.sqrt(np.mean(f[m_in] ** 2))))
    lam = search.weight
    follow = rho is None  # the penalty follows an automatic weight (rho = 100 lam)
    rho = 100.0 * lam if rho is None else defaults.check_positive(rho, "TV rho")
    e2 = _difference_symbol(g.shape, vs, d.shape)
    denom = _tv_denominator(d, e2, rho)
    dtf = d * rfftn(f)
    z = np.zeros((3,) + g.shape, dtype=np.float32)
    u = np.zeros_like(z)
    chi = np.zeros(g.shape, dtype=np.float32)
    change, misfit, it = np.inf, np.nan, 0
    for it in range(1, max_iter + 1):
        rhs = dtf + rho * rfftn(_periodic_grad_adj(z - u, vs))
        chi_hat = rhs / denom
        chi_new = irfftn(chi_hat, g.shape).astype(np.float32)
        change = float(np.linalg.norm(chi_new - chi) / max(np.linalg.norm(chi_new), 1e-12))
        chi = chi_new
        if search.adapting and it % defaults.TV_LAMBDA_CHECK_EVERY == 0:
            lam = search.after_check(float(np.sqrt(np.mean((irfftn(d * chi_hat, g.shape) - f)[m_in] ** 2))))
            if follow and lam != rho / 100.0:  # new penalty; the scaled dual u = y / rho rescaled (Boyd 2011, 3.4.1)
                u *= np.float32(rho / (100.0 * lam))
                rho = 100.0 * lam
                denom = _tv_denominator(d, e2, rho)
        thr = np.float32(lam / rho)
        gx = _periodic_grad(chi, vs) + u
        z = np.sign(gx) * np.maximum(np.abs(gx) - thr, 0)
        u = gx - z
        report(progress, it / max_iter, f"TV-ADMM iteration {it}")
        if change < tol and it > 2 and search.settled:
            break
    if info is not None:
        misfit = float(np.sqrt(np.mean((irfftn(d * rfftn(chi), g.shape) - f)[m_in] ** 2)))
        info.append(InversionInfo(
            lam=lam, iterations=it, converged=change < tol and search.settled,
            criterion=f"relative change of chi < {tol:g}",
            final_change=change, tolerance=tol, misfit_rms_ppm=misfit, **search.record()))
    out = g.extract(chi, mask.shape)
    out[~mask] = 0
    return out


SEARCH_CG_MAX_ITER = 15
"""MEDI with ``lam="auto"``: inner CG iterations at most in the Gauss-Newton steps taken while the
weight is still being searched (the search needs the misfit's trend, not a converged step; solving
those steps to the tolerance cost 5x the FFTs on the 2 mm phantom). Steps with the final weight
solve to ``cg_tol``."""

PRECOND_MU_SCALE = 3.0
"""MEDI's k-space preconditioner uses ``mu = PRECOND_MU_SCALE * median(V)`` for the prior's
lagged-diffusivity weights ``V``: 3 needed the fewest CG iterations to the toolbox's tolerance on
the 2 mm phantom (0.3, 1, 3, 10, 30: 2.3, 1.3, 1, 1.03, 1.4 times the FFTs of 3; docs/qsm.md)."""


def _tv_denominator(d, e2, rho) -> np.ndarray:
    """``D^2 + rho |E|^2`` of TV-ADMM's k-space step (1 at k = 0)."""
    denom = (d * d + np.float32(rho) * e2).astype(np.float32)
    denom[0, 0, 0] = 1.0
    return denom


def _difference_symbol(shape, voxel_size_mm, half_shape) -> np.ndarray:
    """``|E(k)|^2`` of forward differences (per mm^2) on the rfft half-grid."""
    e2 = np.zeros(half_shape, dtype=np.float32)
    for a, n in enumerate(shape):
        k = np.arange(half_shape[a])
        e = (2.0 - 2.0 * np.cos(2 * np.pi * k / n)) / float(voxel_size_mm[a]) ** 2
        sh = [1, 1, 1]
        sh[a] = e.size
        e2 = e2 + e.reshape(sh).astype(np.float32)
    return e2


def gradient_mask(
    magnitude: np.ndarray, mask: np.ndarray, voxel_size_mm, percentage: float = 0.9
) -> np.ndarray:
    """MEDI's binary gradient weight ``M`` (Liu J. et al. 2012, eq. 4; toolbox ``gradient_mask``).

    The gradient of the masked magnitude is computed per voxel and direction; a threshold is
    chosen so that the number of (voxel, direction) entries above it equals ``percentage`` times
    the number of mask voxels (0.9 of 3 directions: the strongest ~30 % of entries are edges).
    ``M`` is 1 where the gradient is at or below the threshold (smoothness is enforced) and 0 on
    edges (free to follow the anatomy).

    Returns
    -------
    ndarray, shape (3, nx, ny, nz), float32
    """
    mask = np.asarray(mask, dtype=bool)
    mag = np.where(mask, np.asarray(magnitude, dtype=np.float32), 0)
    g = np.abs(forward_gradient(mag, voxel_size_mm))
    n_edges = int(round(percentage * mask.sum()))
    flat = g.ravel()
    if n_edges <= 0:
        thr = np.inf
    elif n_edges >= flat.size:
        thr = -np.inf
    else:
        # exact order statistic instead of MEDI's 5 % multiplicative search (same intent): the
        # (n_edges + 1)-th largest entry. Selected among the positive entries only: the ~75 %
        # zeros outside the mask made numpy's introselect take 5.9 s instead of 0.08 s.
        positive = flat[flat > 0]
        if n_edges >= positive.size:  # then zeros exist (n_edges < flat.size): every positive is an edge
            thr = 0.0
        else:
            thr = float(np.partition(positive, positive.size - n_edges - 1)[positive.size - n_edges - 1])
    return (g <= thr).astype(np.float32)


def _pcg_kspace(b, apply_reg, d, w2, two_lam, inv_pk, *, tol: float, max_iter: int, progress=None):
    """MEDI's inner solve ``(G^T V G + 2 lam D W^2 D) dx = b`` by conjugate gradients carried out
    on half spectra, with the k-space preconditioner ``inv_pk`` (float32, half spectrum) or none
    (``inv_pk=None``: the toolbox's plain CG, same iterates).

    Residual, search direction and solution live in k-space (inner products by Parseval), where
    the preconditioner is a product: one iteration costs 4 FFTs (``p`` and ``D p`` back to image
    space for the weights, the two image-space products forward), against 6 for
    :func:`~napari_qsm_ms.qsm.bfr._cg` with a k-space preconditioner. Stops when
    ``||r|| <= tol ||b||`` (the toolbox's ``cgsolve`` rule) or after ``max_iter`` iterations.

    Returns
    -------
    dx, d_dx : ndarray, float32
        The solution and its dipole convolution ``D dx``.
    iterations : int
    residual : float
        The final relative residual ``||r|| / ||b||``.
    """
    shape = b.shape
    r_hat = rfftn(b)
    c = _kspace.plane_weights(r_hat.shape[-1], shape[-1])
    bnorm2 = _kspace.half_dot(r_hat, r_hat, c)
    if bnorm2 == 0:
        return np.zeros_like(b), np.zeros_like(b), 0, 0.0
    use_pk = inv_pk is not None
    pk = inv_pk if use_pk else np.ones((1, 1, 1), dtype=np.float32)
    z_hat = inv_pk * r_hat if use_pk else r_hat.copy()
    p_hat = z_hat.copy()
    p_scratch = z_hat.copy()  # p_hat for the inverse FFT, which overwrites it
    dp_hat = d * p_hat  # D p, likewise overwritten
    x_hat = np.zeros_like(r_hat)
    ap_hat, dp_spec = np.empty_like(r_hat), np.empty_like(r_hat)
    two_lam_d = (two_lam * d).astype(np.float32)
    rz = _kspace.half_dot(r_hat, z_hat, c)
    p, d_p, reg = (np.empty(shape, dtype=np.float32) for _ in range(3))
    it, rel = 0, 1.0
    for it in range(1, max_iter + 1):
        irfftn(p_scratch, shape, out=p, overwrite=True)
        irfftn(dp_hat, shape, out=d_p, overwrite=True)
        _kspace.multiply_in_place(d_p, w2)
        rfftn(apply_reg(p, reg), out=ap_hat)
        pap = _kspace.add_data_term(ap_hat, two_lam_d, rfftn(d_p, out=dp_spec), p_hat, c)
        if pap <= 0:
            break
        rr, rz_new = _kspace.step(x_hat, r_hat, p_hat, ap_hat, rz / pap, pk, use_pk, z_hat, c)
        report(progress, it / max_iter, f"CG iteration {it}")
        rel = float(np.sqrt(max(rr, 0.0) / bnorm2))
        if rel <= tol:
            break
        _kspace.next_direction(p_hat, z_hat, rz_new / rz, d, dp_hat, p_scratch)
        rz = rz_new
    d_dx = irfftn(d * x_hat, shape, overwrite=True)
    return irfftn(x_hat, shape, overwrite=True), d_dx, it, rel


def _medi_objective(x, dx_field, f_rad, w, edge_free, vs, lam_medi) -> float:
    """MEDI's objective ``sum sqrt(|M G x|^2 + eps) + lam ||W (exp(i D x) - exp(i f))||^2`` (eps 1e-6)."""
    mg = edge_free * forward_gradient(x, vs)
    prior = float(np.sqrt(mg.astype(np.float64) ** 2 + 1e-6).sum())
    data = float((w.astype(np.float64) ** 2 * 2 * (1 - np.cos(dx_field - f_rad))).sum())
    return prior + lam_medi * data


def _inner_solves_converged(cg_path, cg_tol) -> bool:
    """Whether MEDI's inner solves with the final weight, ``(iterations, residual, searching)`` per
    Gauss-Newton step, all reached ``cg_tol`` (False when every step was a search step)."""
    final = [r for _, r, searching in cg_path if not searching]
    return bool(final) and all(r <= cg_tol for r in final)


def _medi_inner_solve(b, weights, vs, d, w2, two_lam, m_in, precondition, *, tol, max_iter, progress=None,
                      e2=None):
    """One Gauss-Newton step's linear solve ``(G^T V G + 2 lam D W^2 D) dx = b`` (``V`` = ``weights``).

    ``precondition``: True, the circulant (k-space) approximation ``2 lam mean(W^2) D^2 + mu |E|^2``
    (``mu`` = :data:`PRECOND_MU_SCALE` times the median of ``V`` in the mask, ``E`` the difference
    symbol, :func:`_difference_symbol`; pass it as ``e2`` to compute it once per solve of MEDI);
    ``'jacobi'``, the diagonal; False, none (the toolbox's CG).

    Returns
    -------
    dx, d_dx, iterations, residual
        As :func:`_pcg_kspace` (residual NaN with Jacobi).
    """
    shape = b.shape

    def apply_reg(p, out=None):
        return weighted_gradient_normal(p, weights, vs, out=out)

    if precondition != "jacobi":
        inv_pk = None
        if precondition:
            mu = PRECOND_MU_SCALE * _median_positive(weights[:, m_in] if m_in.any() else weights)
            w2_mean = float(w2[m_in].mean()) if m_in.any() else 1.0
            if e2 is None:
                e2 = _difference_symbol(shape, vs, d.shape)
            pk = (two_lam * w2_mean) * d * d + np.float32(mu) * e2
            pk[0, 0, 0] = 1.0
            inv_pk = (1.0 / pk).astype(np.float32)
        return _pcg_kspace(b, apply_reg, d, w2, two_lam, inv_pk, tol=tol, max_iter=max_iter, progress=progress)

    def dconv(x):
        return irfftn(d * rfftn(x), shape).astype(np.float32, copy=False)

    # Jacobi: diag(G^T V G) + 2 lam diag(D W^2 D), the latter ~ 2 lam mean(D^2) W^2
    d2_mean = np.float32(np.mean(d.astype(np.float64) ** 2))
    diag = weighted_gradient_normal_diagonal(weights, vs) + two_lam * d2_mean * w2
    m_inv = (1.0 / np.maximum(diag, 1e-12 + 1e-6 * float(diag.max()))).astype(np.float32)
    dx, it = _cg(lambda p: apply_reg(p) + two_lam * dconv(w2 * dconv(p)), b, tol=tol, max_iter=max_iter,
                 m_inv=m_inv, progress=progress, label="CG")
    return dx, dconv(dx), it, float("nan")


def _relative_update(dx: np.ndarray, x: np.ndarray, region: np.ndarray | None) -> float:
    """``||dx|| / ||x||`` (Gauss-Newton's stopping quantity), over ``region`` when given."""
    if region is not None:
        dx, x = dx[region], x[region]
    return float(np.linalg.norm(dx) / max(float(np.linalg.norm(x)), 1e-30))


def _medi_prior_words(has_magnitude: bool, has_noise: bool, region: str) -> str:
    """What MEDI's prior and data weights were, for the provenance record."""
    where = ("the prior inside the mask only (the exterior free)" if region == "mask"
             else "the prior on the whole grid")
    if has_magnitude:
        weights = "1/noise std" if has_noise else "1/magnitude"
        return f"edge prior from the magnitude (gradient mask); data weights {weights}; {where}"
    weights = "1/noise std" if has_noise else "equal in the mask"
    return (f"no magnitude: no edge prior (M = 1, plain L1 norm of the gradient, as TV); data weights {weights}; "
            f"{where}")


def _auto_noise_level(lam, noise_sd, magnitude, mask) -> float | None:
    """The magnitude's noise SD for the weight ``lam``: given, or measured in the magnitude for
    ``"auto-noise"`` (refused where it cannot be) and ``"auto"`` (None where it cannot be: then
    ``"auto"`` follows the cone, :func:`~napari_qsm_ms.qsm.defaults.lambda_rule`)."""
    from .noise import noise_for_lambda

    if noise_sd is not None:
        return defaults.check_positive(noise_sd, "magnitude noise SD")
    return noise_for_lambda(lam, magnitude, mask)


def _measured_misfit_level(w, nstd, noise_sd: float, m_in) -> float:
    """rms over the mask of the weighted field's noise ``W n_std noise_sd`` (radians)."""
    with np.errstate(invalid="ignore"):
        per_voxel = np.where(w > 0, w * nstd, 0.0)[m_in]
    return float(np.sqrt(np.mean(per_voxel.astype(np.float64) ** 2))) * float(noise_sd)


def _median_positive(values: np.ndarray, max_samples: int = 1_000_000) -> float:
    """Median of the positive entries, from an evenly strided subsample of at most ~``max_samples``
    (0 if there are none). Used only to scale MEDI's preconditioner, where a quantile accurate to
    ~0.1 % is plenty; the exact median of 10^7 weights took 0.7 s per Gauss-Newton step."""
    flat = values.ravel()
    sample = flat[:: max(1, flat.size // max_samples)]
    sample = sample[sample > 0]
    return float(np.median(sample)) if sample.size else 0.0


def medi_l1(
    field_ppm: np.ndarray,
    mask: np.ndarray,
    magnitude: np.ndarray,
    voxel_size_mm,
    b0_dir,
    *,
    ppm_per_rad: float,
    lam: float | str = defaults.MEDI_LAMBDA,
    lam_start: float = defaults.MEDI_LAMBDA_FIXED,
    n_std: np.ndarray | None = None,
    noise_sd: float | None = None,
    percentage: float = 0.9,
    max_iter: int = defaults.MEDI_MAX_ITER,
    cg_max_iter: int = defaults.MEDI_CG_MAX_ITER,
    cg_tol: float = defaults.MEDI_CG_TOL,
    tol_norm_ratio: float = defaults.MEDI_TOL,
    merit: bool = False,
    smv_radius_mm: float | None = None,
    prior_region: str = defaults.MEDI_PRIOR_REGION,
    precondition: bool | str = True,
    pad_mm: float = DEFAULT_PAD_MM,
    progress: ProgressCallback | None = None,
    info: list | None = None,
    trace: list | None = None,
) -> np.ndarray:
    """Morphology Enabled Dipole Inversion with an L1 prior (Liu J. et al., NeuroImage 2012).

    Minimises, as the MEDI toolbox's ``MEDI_L1`` does, over ``x`` = chi in radians at the echo
    time (``x = chi_ppm / ppm_per_rad``)::

        || M G x ||_1  +  lam_medi || W (exp(i D x) - exp(i f)) ||_2^2

    by Gauss-Newton (at most ``max_iter`` outer steps, stopping when ``||dx|| / ||x||`` falls below
    ``tol_norm_ratio``, the toolbox's rule, after a step with the final weight whose inner solve was
    not cut at the automatic search's cap; the norms are over the padded grid, as in the toolbox,
    and the same ratio in the mask is recorded) with conjugate-gradient inner solves, each run until its
    relative residual ``||r|| / ||b||`` is at most ``cg_tol`` (the toolbox's rule; ``cg_max_iter`` is
    only a safety cap, and whether every solve reached ``cg_tol`` is recorded), the L1 norm handled
    by lagged diffusivity ``1 / sqrt(|M G x|^2 + 1e-6)``. Unlike the toolbox, the inner CG runs on
    half spectra (4 FFTs per iteration) and is preconditioned by the circulant (k-space)
    approximation of the Gauss-Newton operator, ``2 lam mean(W^2) D^2 + mu |E|^2`` (``mu`` three
    times the median lagged-diffusivity weight, ``E`` the difference symbol): it reaches the same
    tolerance in about 0.6 times the toolbox's CG iterations, and at equal weight the map lies
    within 3 % NRMSE of the toolbox schedule's (docs/qsm.md, "Convergence of MEDI's solver"; the
    former default, cut at 15 iterations, stopped 12 % away). ``M`` is
    :func:`gradient_mask` of the magnitude, ``W`` the normalised inverse noise (``n_std``, or
    1/magnitude when not given).

    The weight given here, ``lam``, is defined on chi in ppm: ``lam_medi = lam * ppm_per_rad``.
    With an L1 prior the minimiser in ppm is then the same for any B0 and TE (the data term
    scales with the square, the prior linearly, of ``1/ppm_per_rad``), so one value serves 3 T
    and 7 T. The MEDI toolbox's default ``lam_medi = 1000`` corresponds to ``lam = 1000 /
    ppm_per_rad``, e.g. about 3.3e4 at 7 T and TE 17.7 ms.

    Parameters
    ----------
    field_ppm : ndarray
        Local field, ppm.
    mask : ndarray of bool
        Region where the field is trusted (eroded brain).
    magnitude : ndarray or None
        GRE magnitude (for the edge mask and, without ``n_std``, the noise weight). None (no
        magnitude, e.g. a local field from another tool): no edge prior (``M = 1``, so the prior
        is the plain L1 norm of the gradient, as TV) and, without ``n_std``, equal data weights in
        the mask.
    voxel_size_mm, b0_dir : sequence of 3 float
    ppm_per_rad : float
        :func:`~napari_qsm_ms.qsm.dipole.ppm_per_radian` of the acquisition.
    lam : float, "auto", "auto-noise" or "auto-cone"
        Data-term weight in ppm-normalised units (see above), > 0. ``"auto"``: ``"auto-noise"``
        with a magnitude, ``"auto-cone"`` without (:func:`~napari_qsm_ms.qsm.defaults.lambda_rule`).
        ``"auto-noise"``: the misfit target is the noise of the weighted field measured from the
        magnitude, ``rms(W n_std noise_sd)`` in the mask (recomputed when MERIT reweights).
        ``"auto-cone"``: the target is the cone's misfit level, which also counts model error and
        smooths more. Either is chosen during the
        Gauss-Newton steps by the discrepancy principle (:mod:`~napari_qsm_ms.qsm.regularisation`):
        starting from ``lam_start``, after each step but the first (at most
        :data:`~napari_qsm_ms.qsm.defaults.MEDI_LAMBDA_MAX_UPDATES` times, then frozen) the
        rms of the weighted misfit ``W (D chi - f)`` in the mask is compared with the cone noise
        level of ``W f``, and ``lam`` takes a secant step in ``log(lam)`` (at most x3). Where a
        larger data weight no longer lowers the misfit (a floor of model error: the misfit changes
        by less than 5 % of the step in log scale, twice), adaptation stops at the knee of the
        misfit curve, where its log-log slope falls to 5 %
        (:meth:`~napari_qsm_ms.qsm.regularisation.DiscrepancyTracker._knee`).
    lam_start : float
        Where the automatic search starts (default
        :data:`~napari_qsm_ms.qsm.defaults.MEDI_LAMBDA_FIXED`; ignored with a number).
    n_std : ndarray, optional
        Noise standard deviation of the field, relative: in units of the magnitude's noise
        (``1 / magnitude`` for one echo; :func:`~napari_qsm_ms.qsm.pipeline.echo_fit_noise`).
    noise_sd : float, optional
        The magnitude's noise standard deviation (its units), for ``lam="auto-noise"``; measured
        in ``magnitude`` within ``mask`` (:func:`~napari_qsm_ms.qsm.noise.magnitude_noise_sd`) when
        not given.
    percentage : float
        Edge fraction for :func:`gradient_mask` (MEDI: 0.9).
    merit : bool
        Model error reduction through iterative tuning (reweight voxels with large residuals).
    precondition : bool or 'jacobi'
        Preconditioner of the inner CG (True: k-space circulant; 'jacobi': diagonal; False: none).
    smv_radius_mm : float, optional
        Apply MEDI's SMV option: high-pass the field and kernel with a sphere of this radius
        (e.g. 5 mm) and shrink the mask accordingly.
    prior_region : {'auto', 'mask', 'grid'}
        Where the prior acts (:func:`~napari_qsm_ms.qsm.defaults.medi_prior_region`): ``'mask'``,
        inside the mask only, so that the susceptibility outside the mask (computed on the padded
        grid, not returned) is free to explain the field of outside sources that background
        removal left; ``'grid'``, on the whole grid, as the MEDI toolbox; ``'auto'`` (default),
        ``'mask'`` with a magnitude and ``'grid'`` without.

    info : list, optional
        Receives an :class:`InversionInfo` (weight and how it was chosen, steps, last relative
        update, CG iterations and final residual per step, misfit and target).
    trace : list, optional
        Receives one dict per Gauss-Newton step (``cg_iterations``, ``cg_residual``, ``update``,
        ``objective``: MEDI's objective after the step), for benchmarks; costs one gradient per
        step.

    Returns
    -------
    ndarray, float32
        Chi in ppm, 0 outside the mask.

    Raises
    ------
    ParameterError
        For a weight that is not "auto" or > 0, iteration counts < 1, tolerances outside (0, 1),
        ``ppm_per_rad`` <= 0.
    """
    from .regularisation import LambdaSearch, cone_noise_level

    lam = defaults.check_lambda(lam, "MEDI lambda")
    ppm_per_rad = defaults.check_positive(ppm_per_rad, "ppm per radian")
    max_iter = defaults.check_iterations(max_iter, "MEDI Gauss-Newton iterations")
    cg_max_iter = defaults.check_iterations(cg_max_iter, "MEDI CG iterations")
    cg_tol = defaults.check_tolerance(cg_tol, "MEDI CG tolerance")
    tol_norm_ratio = defaults.check_tolerance(tol_norm_ratio, "MEDI tolerance")
    if not 0 < percentage <= 1:
        raise ParameterError(f"MEDI edge percentage {percentage!r} must be in (0, 1]")
    if smv_radius_mm is not None:
        smv_radius_mm = defaults.check_positive(smv_radius_mm, "MEDI SMV radius (mm)")
    prior_region = defaults.medi_prior_region(prior_region, has_magnitude=magnitude is not None)
    mask = np.asarray(mask, dtype=bool)
    noise_sd = _auto_noise_level(lam, noise_sd, magnitude, mask)
    lam = defaults.lambda_rule(lam, noise_measured=noise_sd is not None)
    vs = tuple(float(v) for v in voxel_size_mm)
    g = _grid(mask, vs, pad_mm)
    search = LambdaSearch(lam, start=defaults.check_positive(lam_start, "MEDI lambda start"), increasing=False,
                          max_updates=defaults.MEDI_LAMBDA_MAX_UPDATES)
    lam = search.weight
    lam_medi = float(lam) * float(ppm_per_rad)
    m_in = g.embed(mask).astype(bool)
    f_rad = g.embed(np.where(mask, field_ppm, 0).astype(np.float32)) / np.float32(ppm_per_rad)
    mag = g.embed(np.asarray(mask if magnitude is None else magnitude, dtype=np.float32))
    if n_std is None:
        with np.errstate(divide="ignore"):
            nstd = np.where(mag > 0, 1.0 / np.maximum(mag, 1e-30), np.inf).astype(np.float32)
    else:
        nstd = g.embed(np.asarray(n_std, dtype=np.float32))
    d = dipole_kernel(g.shape, vs, b0_dir, rfft=True)
    sphere = None
    if smv_radius_mm:
        sphere = sphere_kernel_rfft(g.shape, vs, smv_radius_mm)
        smv = lambda x: irfftn(sphere * rfftn(x), g.shape).astype(np.float32)  # noqa: E731
        m_in = smv(m_in.astype(np.float32)) > 0.999
        d = ((1.0 - sphere) * d).astype(np.float32)
        f_rad = (f_rad - smv(f_rad)) * m_in
        nstd = np.sqrt(np.maximum(smv(np.where(np.isfinite(nstd), nstd, 0) ** 2), 0) + nstd**2)  # FFT round-off < 0
    w = noise_weight(nstd, m_in)
    w2 = (w * w).astype(np.float32)
    edge_free = gradient_mask(mag, m_in, vs, percentage)
    if prior_region == "mask":  # the exterior is free to take up what background removal left
        edge_free[:, ~m_in] = 0
    nstd_measured = nstd  # the noise of the field before MERIT inflates it

    def set_target(w):  # the noise level of the weighted field (radians) and its rms, for the search
        target = (_measured_misfit_level(w, nstd_measured, noise_sd, m_in) if search.rule == defaults.AUTO_NOISE
                  else cone_noise_level(w * f_rad, d, vs, int(m_in.sum())))
        search.set_target(target, float(np.sqrt(np.mean((w * f_rad)[m_in] ** 2))))

    if search.auto:
        set_target(w)

    def dconv(x):
        return irfftn(d * rfftn(x), g.shape).astype(np.float32, copy=False)

    e2 = _difference_symbol(g.shape, vs, d.shape) if precondition and precondition != "jacobi" else None
    cg_path = []  # (CG iterations, final relative residual) per Gauss-Newton step
    x = np.zeros(g.shape, dtype=np.float32)
    weights = np.empty((3,) + g.shape, dtype=np.float32)
    reg_buf = np.empty(g.shape, dtype=np.float32)
    two_lam = np.float32(2.0 * lam_medi)
    report(progress, 0.0, "MEDI: Gauss-Newton iteration 1")
    dx_field = np.zeros(g.shape, dtype=np.float32)  # D x, kept up to date without FFTs
    for it in range(1, max_iter + 1):
        irls_weights(x, edge_free, vs, 1e-6, out=weights)
        # gradient of the data term: 2 lam D^T real(conj(w) (-i) (w - b0)) = -2 lam D (W^2 sin(f - Dx))
        b = weighted_gradient_normal(x, weights, vs, out=reg_buf).copy()
        b -= two_lam * dconv(w2 * np.sin(f_rad - dx_field))

        sub = None if progress is None else (
            lambda fr, msg, it=it: report(progress, (it - 1 + fr) / max_iter, f"MEDI: Gauss-Newton {it}, {msg}")
        )

        searching = search.adapting  # the weight may still change after this step
        cg_cap = min(cg_max_iter, SEARCH_CG_MAX_ITER) if searching else cg_max_iter
        dx, d_dx, cg_it, cg_res = _medi_inner_solve(-b, weights, vs, d, w2, two_lam, m_in, precondition,
                                                    tol=cg_tol, max_iter=cg_cap, progress=sub, e2=e2)
        cg_path.append((cg_it, cg_res, searching))
        x += dx
        dx_field += d_dx
        ratio = _relative_update(dx, x, None)  # the toolbox's rule, over the grid
        ratio_in_mask = _relative_update(dx, x, m_in)  # the map that is reported (recorded, not a rule)
        if trace is not None:
            trace.append(dict(cg_iterations=cg_it, cg_residual=cg_res, update=ratio,
                              update_in_mask=ratio_in_mask,
                              objective=_medi_objective(x, dx_field, f_rad, w, edge_free, vs, lam_medi)))
        lam_step = lam  # the weight this step was computed with
        if search.adapting and it > 1:  # the first step's misfit is not settled yet
            lam = search.after_check(float(np.sqrt(np.mean((w * (dx_field - f_rad))[m_in] ** 2))))
            lam_medi = float(lam) * float(ppm_per_rad)
            two_lam = np.float32(2.0 * lam_medi)
        if merit:
            res = w * np.exp(1j * dx_field) - w * np.exp(1j * f_rad)
            res = res - res[m_in].mean()
            a = np.abs(res[m_in])
            factor = 6.0 * float(a.std())
            if factor > 0:
                scale = np.maximum(np.abs(res) / factor, 1.0)
                nstd = np.where(m_in, nstd * scale**2, nstd)
                w = noise_weight(nstd, m_in)
                w2 = (w * w).astype(np.float32)
                if search.adapting and search.rule == defaults.AUTO_NOISE:  # the noise of the reweighted field
                    set_target(w)
        if ratio < tol_norm_ratio and not searching:  # at least one full step at the final weight
            break
    report(progress, 1.0, "MEDI done")
    if info is not None:
        misfit = float(np.sqrt(np.mean((w * (dx_field - f_rad))[m_in] ** 2))) * ppm_per_rad
        info.append(InversionInfo(
            lam=float(lam_step), iterations=it, converged=ratio < tol_norm_ratio and not searching,
            criterion=(f"relative update ||dx||/||x|| < {tol_norm_ratio:g}; each inner CG to relative "
                       f"residual {cg_tol:g} (at most {cg_max_iter} iterations)"), final_change=ratio,
            final_change_in_mask=ratio_in_mask, tolerance=tol_norm_ratio,
            cg_iterations=[int(c) for c, _, _ in cg_path], cg_residuals=[float(r) for _, r, _ in cg_path],
            cg_converged=_inner_solves_converged(cg_path, cg_tol),
            misfit_rms_ppm=misfit,
            prior=_medi_prior_words(magnitude is not None, n_std is not None, prior_region),
            **search.record(ppm_per_rad)))
    chi = x * np.float32(ppm_per_rad)
    out = g.extract(chi, mask.shape)
    if smv_radius_mm:
        keep = g.extract(m_in.astype(np.float32), mask.shape) > 0
        return np.where(keep & mask, out, 0).astype(np.float32)
    out[~mask] = 0
    return out
