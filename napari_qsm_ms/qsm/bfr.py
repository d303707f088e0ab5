"""Background-field removal: PDF (as the MEDI toolbox's ``PDF``) and V-SHARP.

Fields here are in any consistent unit (the pipeline passes radians at the echo time); the
dipole kernel is :func:`napari_qsm_ms.qsm.dipole.dipole_kernel` with the true B0 direction in
voxel coordinates and the voxel size.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..progress import ProgressCallback, report
from ._fft import bounding_box, fast_shape, irfftn, pad_centered, rfftn
from . import defaults
from .dipole import dipole_kernel


def noise_weight(n_std: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """MEDI's data weight ``mask / n_std`` normalised to mean 1 in the mask (``dataterm_mask``).

    ``n_std`` is the noise standard deviation of the field (1/SNR for one echo); None gives the
    mask itself.
    """
    mask = np.asarray(mask, dtype=bool)
    if n_std is None:
        return mask.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(mask, 1.0 / np.asarray(n_std, dtype=np.float32), 0.0)
    w[~np.isfinite(w)] = 0.0
    mean = float(w[mask].mean()) if mask.any() else 0.0
    if mean > 0:
        w /= mean
    return w.astype(np.float32)


def _cg(apply_a, b, *, tol: float, max_iter: int, x0=None, m_inv=None, progress=None, label="CG",
        record: dict | None = None):
    """(Preconditioned) conjugate gradients for a symmetric positive (semi)definite operator, float32.

    ``m_inv`` is an optional preconditioner: an array multiplied with the residual, or a function. Stops
    when ``||r|| <= tol * ||b||`` or after ``max_iter`` iterations (as MEDI's ``cgsolve``). ``record``,
    if given, receives ``iterations``, ``relative_residual`` (``||r|| / ||b||`` at the stop) and
    ``converged`` (whether ``tol`` was reached).

    Returns
    -------
    x : ndarray
    iterations : int
    """
    x = np.zeros_like(b) if x0 is None else x0.copy()
    r = b - apply_a(x) if x0 is not None else b.copy()
    z = r if m_inv is None else (m_inv(r) if callable(m_inv) else m_inv * r)
    p = z.copy()
    rz = float(np.vdot(r, z).real)
    bnorm = float(np.sqrt(np.vdot(b, b).real))
    if bnorm == 0:
        if record is not None:
            record.update(iterations=0, relative_residual=0.0, converged=True)
        return x, 0
    it = 0
    rnorm = float(np.sqrt(np.vdot(r, r).real))
    for it in range(1, max_iter + 1):
        ap = apply_a(p)
        pap = float(np.vdot(p, ap).real)
        if pap <= 0:
            break
        alpha = np.float32(rz / pap)
        x += alpha * p
        r -= alpha * ap
        report(progress, it / max_iter, f"{label} iteration {it}")
        rnorm = float(np.sqrt(np.vdot(r, r).real))
        if rnorm <= tol * bnorm:
            break
        z = r if m_inv is None else (m_inv(r) if callable(m_inv) else m_inv * r)
        rz_new = float(np.vdot(r, z).real)
        p *= np.float32(rz_new / rz)
        p += z
        rz = rz_new
    if record is not None:
        record.update(iterations=it, relative_residual=rnorm / bnorm, converged=rnorm <= tol * bnorm)
    return x, it


def pdf(
    total_field: np.ndarray,
    mask: np.ndarray,
    voxel_size_mm,
    b0_dir,
    *,
    n_std: np.ndarray | None = None,
    tol: float = defaults.PDF_TOL,
    max_iter: int = defaults.PDF_MAX_ITER,
    pad_mm: float = 20.0,
    grid_mm: float | None = None,
    progress: ProgressCallback | None = None,
    record: dict | None = None,
) -> np.ndarray:
    """Projection onto Dipole Fields (Liu T. et al., NMR Biomed 2011; de Rochefort, MRM 2010).

    After taking out the field's (noise-weighted) mean over the mask, a constant that is part of
    the background, finds the susceptibility ``x`` outside the mask whose dipole field best
    explains the total field inside it, in the noise-weighted least-squares sense,
    ``min_x || W (f - M D (M_out x)) ||^2``, by conjugate gradients, then subtracts that
    background field. As the MEDI toolbox, the volume is cropped to the mask's bounding box and
    zero-padded by ``pad_mm`` in total along each axis (then up to an FFT-friendly size).

    Parameters
    ----------
    total_field : ndarray
        Unwrapped total field (any unit; the output has the same).
    mask : ndarray of bool
        Region of interest (brain).
    voxel_size_mm, b0_dir : sequence of 3 float
        Voxel size (mm) and unit B0 direction along the array axes.
    n_std : ndarray, optional
        Field noise standard deviation (1/magnitude for one echo); uniform if None.
    tol : float
        Relative residual at which CG stops (MEDI default 0.1; 0.01 here).
    max_iter : int
        CG iterations at most (MEDI default 30).
    pad_mm : float
        Total zero padding per axis around the mask's bounding box, mm (MEDI pads 40 voxels,
        20 mm at its usual 0.5 mm; on our 0.94 mm phantom 20 and 40 voxels gave the same error,
        61.4 and 61.6 % end to end, and 20 was 1.9 times faster).
    grid_mm : float, optional
        Solve on a coarser grid of about this spacing (:func:`coarsening`,
        ``defaults.PDF_GRID_MM`` in the pipeline) and interpolate the background back; None solves
        on the voxel grid.

    Returns
    -------
    ndarray, float32
        Local field inside the mask, 0 outside.
    """
    mask = np.asarray(mask, dtype=bool)
    f = np.asarray(total_field, dtype=np.float32)
    factors = coarsening(voxel_size_mm, grid_mm)
    if record is not None:
        record["coarsening"] = list(factors)
    if factors != (1, 1, 1):
        return _pdf_coarse(f, mask, voxel_size_mm, b0_dir, factors, n_std=n_std, tol=tol, max_iter=max_iter,
                           pad_mm=pad_mm, progress=progress, record=record)
    box = bounding_box(mask)
    m = mask[box]
    vs = np.asarray(voxel_size_mm, dtype=float)
    shape = fast_shape(m.shape, tuple(int(np.ceil(pad_mm / h)) for h in vs))
    m_in, sl = pad_centered(m, shape)
    w2 = noise_weight(None if n_std is None else np.asarray(n_std)[box], m) ** 2
    w2, _ = pad_centered(w2, shape)
    fb, _ = pad_centered(np.where(m, f[box], 0).astype(np.float32), shape)
    # a constant offset (the phase's arbitrary 2 pi k, or the mean of a strong air-tissue field)
    # is harmonic, so it belongs to the background, but exterior dipoles fit it only slowly: take
    # it out first (on the 7 T phantom a 1 ppm offset otherwise left 284 % error after MEDI)
    weight_sum = float(w2[m_in].sum())
    offset = float((w2 * fb)[m_in].sum() / weight_sum) if weight_sum > 0 else float(fb[m_in].mean())
    fb[m_in] -= np.float32(offset)
    d = dipole_kernel(shape, voxel_size_mm, b0_dir, rfft=True)
    outside = (~m_in).astype(np.float32)

    def conv(x):
        return irfftn(d * rfftn(x), shape).astype(np.float32, copy=False)

    def apply_a(x):
        return outside * conv(w2 * conv(outside * x))

    report(progress, 0.0, "PDF background removal")
    b = outside * conv(w2 * fb)
    x, _ = _cg(apply_a, b, tol=tol, max_iter=max_iter, progress=progress, label="PDF", record=record)
    if record is not None:
        record["grid"] = list(shape)
    background = conv(outside * x)
    local = np.zeros_like(f)
    local[box] = np.where(m, (fb - background)[sl], 0.0)
    report(progress, 1.0, "PDF background removal")
    return local


def coarsening(voxel_size_mm, grid_mm: float | None) -> tuple[int, int, int]:
    """Voxels averaged per axis for a grid of about ``grid_mm``: ``max(1, round(grid_mm / voxel))``
    (0.47 mm -> 2, 0.94 or 1 mm -> 1); all 1 for None."""
    if grid_mm is None:
        return (1, 1, 1)
    return tuple(max(1, int(np.floor(grid_mm / float(h) + 0.5))) for h in voxel_size_mm)


def _block_sum(a: np.ndarray, factors) -> np.ndarray:
    """Sum over blocks of ``factors`` voxels (``a``'s shape a multiple of them)."""
    fx, fy, fz = factors
    nx, ny, nz = a.shape
    return a.reshape(nx // fx, fx, ny // fy, fy, nz // fz, fz).sum(axis=(1, 3, 5))


def _upsample_linear(coarse: np.ndarray, factors) -> np.ndarray:
    """Linear interpolation from blocks of ``factors`` voxels back to the voxels (block centres at
    the blocks' middles, the edge values held beyond them): ``ndi.zoom(coarse, factors, order=1,
    mode="nearest", grid_mode=True)``, axis by axis with two takes, float32."""
    out = np.asarray(coarse, dtype=np.float32)
    for ax, f in enumerate(factors):
        if f == 1:
            continue
        n = out.shape[ax]
        pos = np.clip((np.arange(n * f) + 0.5) / f - 0.5, 0, n - 1)
        i0 = np.floor(pos).astype(np.intp)
        i1 = np.minimum(i0 + 1, n - 1)
        w = (pos - i0).astype(np.float32).reshape([-1 if a == ax else 1 for a in range(out.ndim)])
        out = out.take(i0, axis=ax) * (1 - w) + out.take(i1, axis=ax) * w
    return out


def _pdf_coarse(f, mask, voxel_size_mm, b0_dir, factors, *, n_std, tol, max_iter, pad_mm, progress, record):
    """PDF on blocks of ``factors`` voxels: the field averaged with the noise weights, a block in
    the mask when all its voxels are; the background found there (the field minus the local field,
    offset included) is extended outside the coarse mask by its nearest value, interpolated
    linearly back to the voxels and subtracted from the field in the mask."""
    box = bounding_box(mask, margin=factors)
    m = mask[box]
    shape = tuple(-(-n // a) * a for n, a in zip(m.shape, factors))
    pad = [(0, s - n) for s, n in zip(shape, m.shape)]
    w2 = np.pad(noise_weight(None if n_std is None else np.asarray(n_std)[box], m) ** 2, pad)
    fb = np.pad(np.where(m, f[box], 0).astype(np.float32), pad)
    w_sum = _block_sum(w2, factors)
    field_c = (_block_sum(w2 * fb, factors) / np.maximum(w_sum, 1e-30)).astype(np.float32)
    mask_c = _block_sum(np.pad(m, pad).astype(np.uint8), factors) == int(np.prod(factors))
    with np.errstate(divide="ignore"):
        n_std_c = np.where(w_sum > 0, 1.0 / np.sqrt(w_sum), np.inf).astype(np.float32)
    vs_c = tuple(float(h) * a for h, a in zip(voxel_size_mm, factors))
    local_c = pdf(field_c, mask_c, vs_c, b0_dir, n_std=n_std_c, tol=tol, max_iter=max_iter, pad_mm=pad_mm,
                  progress=progress, record=record)
    if record is not None:
        record["coarsening"] = list(factors)
    background_c = np.where(mask_c, field_c - local_c, 0).astype(np.float32)
    nearest = ndi.distance_transform_edt(~mask_c, return_distances=False, return_indices=True)
    background_c = background_c[tuple(nearest)]
    del nearest
    background = _upsample_linear(background_c, factors)
    local = np.zeros_like(f)
    local[box] = np.where(m, f[box] - background[: m.shape[0], : m.shape[1], : m.shape[2]], 0.0)
    return local


def _wrapped_distance_sq(shape, voxel_size_mm) -> np.ndarray:
    """Squared distance (mm^2) of every voxel to the origin with periodic wrap-around, float32."""
    vs = np.asarray(voxel_size_mm, dtype=float)
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    dist2 = np.zeros(shape, dtype=np.float32)
    for g, n, h in zip(grids, shape, vs):
        dist2 += ((np.minimum(g, n - g) * h) ** 2).astype(np.float32)
    return dist2


def sphere_kernel_rfft(shape, voxel_size_mm, radius_mm: float, *, dist2: np.ndarray | None = None) -> np.ndarray:
    """Half-spectrum (rfftn) of the normalised spherical-mean-value kernel of ``radius_mm``.

    ``dist2`` (from ``_wrapped_distance_sq``) may be passed to reuse it across radii.
    """
    if dist2 is None:
        dist2 = _wrapped_distance_sq(shape, voxel_size_mm)
    ball = (dist2 <= np.float32(radius_mm**2)).astype(np.float32)
    ball /= ball.sum()
    return rfftn(ball).real.astype(np.float32)  # a symmetric real kernel has a real spectrum


def default_vsharp_radii(voxel_size_mm, max_mm: float = 12.0) -> tuple[float, ...]:
    """Radii from ``max_mm`` down to 2 voxels of the largest voxel edge, in 1 mm steps (mm)."""
    rmin = max(2.0 * max(voxel_size_mm), 1.0)
    radii = np.arange(max_mm, rmin - 1e-6, -1.0)
    return tuple(float(r) for r in radii) if radii.size else (float(max_mm),)


def vsharp(
    total_field: np.ndarray,
    mask: np.ndarray,
    voxel_size_mm,
    *,
    radii_mm=None,
    threshold: float = 0.05,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """V-SHARP (Wu B. et al., MRM 2012; Schweser F. et al., NeuroImage 2011).

    For each radius (largest first), the field minus its spherical mean is kept at the voxels
    whose sphere lies inside the mask and that no larger sphere already covered; the combined
    result is deconvolved with the largest kernel by truncated SVD (``|1 - S| < threshold`` set
    to 0).

    Returns
    -------
    local : ndarray, float32
        Local field in the returned mask, 0 outside.
    mask_out : ndarray of bool
        The mask eroded by the smallest radius.
    """
    mask = np.asarray(mask, dtype=bool)
    vs = tuple(float(v) for v in voxel_size_mm)
    radii = sorted(default_vsharp_radii(vs) if radii_mm is None else [float(r) for r in radii_mm], reverse=True)
    box = bounding_box(mask)
    m = mask[box]
    f = np.where(m, np.asarray(total_field, dtype=np.float32)[box], 0).astype(np.float32)
    pad = [int(np.ceil(radii[0] / h)) + 1 for h in vs]
    shape = fast_shape(m.shape, [2 * p for p in pad])
    fp, sl = pad_centered(f, shape)
    mp, _ = pad_centered(m, shape)
    spec = rfftn(fp)
    combined = np.zeros(shape, dtype=np.float32)
    done = np.zeros(shape, dtype=bool)
    first_kernel = None
    dist_mm = ndi.distance_transform_edt(mp, sampling=vs)  # one transform serves every radius
    dist2 = _wrapped_distance_sq(shape, vs)
    for i, r in enumerate(radii):
        report(progress, i / (len(radii) + 1), f"V-SHARP radius {r:g} mm")
        s = sphere_kernel_rfft(shape, vs, r, dist2=dist2)
        if first_kernel is None:
            first_kernel = s
        inner = (dist_mm > r) & ~done
        hp = irfftn((1.0 - s) * spec, shape)
        combined[inner] = hp[inner]
        done |= inner
    inv = 1.0 - first_kernel
    keep = np.abs(inv) >= threshold
    inv_safe = np.where(keep, inv, 1.0)
    local_p = irfftn(np.where(keep, rfftn(combined) / inv_safe, 0), shape).astype(np.float32)
    local_p *= done
    local = np.zeros(mask.shape, dtype=np.float32)
    mask_out = np.zeros(mask.shape, dtype=bool)
    local[box] = local_p[sl]
    mask_out[box] = done[sl]
    report(progress, 1.0, "V-SHARP done")
    return local, mask_out
