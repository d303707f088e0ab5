"""Vessel (and bright artefact) candidates on the susceptibility map, and their removal from ROIs.

Veins are paramagnetic: on QSM they are bright tubes, far above the surrounding tissue. The paper
removed vessels from every ROI by hand; :func:`vessel_candidates` proposes the voxels to remove,
as an overlay the user reviews, and :func:`remove_voxels` edits a label array. Removing voxels is
an edit of the saved ROI files, never a hidden step (docs/roi.md).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage as ndi

from ..errors import ParameterError
from ..progress import ProgressCallback, report, scaled
from .lesions import check_voxel_size

#: chi above the local tissue background (ppm) for a voxel to be a vessel candidate.
DEFAULT_THRESHOLD_PPM = 0.1
#: Width (FWHM, mm) of the local background window.
DEFAULT_BACKGROUND_MM = 6.0
#: Vessel radii (mm) probed by the vesselness filter.
DEFAULT_SIGMAS_MM = (0.5, 1.0)
#: Sato tubeness, relative to an ideal vein of radius min(sigmas) at the threshold contrast, above
#: which a voxel is tubular.
DEFAULT_VESSELNESS = 0.5
#: Candidate components less elongated than this (ratio of the two largest principal axes) are
#: dropped: veins are long and thin, lesions compact.
DEFAULT_MIN_ELONGATION = 2.0
#: Candidate components smaller than this (voxels) are dropped (noise specks).
DEFAULT_MIN_SIZE_VOXELS = 3
#: Tile edge (mm) of the tubeness computation around candidates.
_TILE_MM = 40.0


def local_background_ppm(chi_ppm: np.ndarray, tissue: np.ndarray | None, voxel_size_mm,
                         *, window_mm: float = DEFAULT_BACKGROUND_MM,
                         outlier_ppm: float = DEFAULT_THRESHOLD_PPM) -> np.ndarray:
    """Local tissue background of chi (ppm): a robust Gaussian-weighted mean within each tissue class.

    Normalised convolution per tissue class (Gaussian of FWHM ``window_mm``, physical spacing),
    computed twice: the second pass leaves out voxels more than ``outlier_ppm`` above the first
    estimate, so veins do not lift their own background. With ``tissue`` each class is averaged
    over itself only, so a vein in WM is compared with WM and a cortical vein with cortex.

    Notes
    -----
    The background is smooth on the scale of ``window_mm``, so it is computed on a grid coarsened
    by block averaging (blocks no larger than the Gaussian's sigma, the Gaussian narrowed to keep
    the same total width) and read back at the block of each voxel: a whole-brain 0.47 mm grid
    costs a few block sums instead of full-resolution 3-D filters.
    """
    vs = check_voxel_size(voxel_size_mm)
    chi = np.asarray(chi_ppm, dtype=np.float32)
    sigma = np.array([window_mm / 2.3548 / v for v in vs])
    block = np.maximum(np.floor(sigma).astype(int), 1)
    sigma_coarse = np.sqrt(np.maximum(sigma**2 - block**2 / 12.0, 0.09)) / block
    tis = None if tissue is None else np.asarray(tissue)
    codes = [None] if tis is None else [c for c in np.unique(tis) if c != 0]
    out = np.zeros_like(chi)
    for code in codes:
        m = np.ones(chi.shape, bool) if code is None else tis == code
        weight = m
        bg = None
        for _ in range(2):
            num = _smooth_blocks(np.where(weight, chi, np.float32(0)), block, sigma_coarse)
            den = _smooth_blocks(weight.astype(np.float32), block, sigma_coarse)
            bg_coarse = num / np.maximum(den, 1e-6)
            bg = _expand_blocks(bg_coarse, block, chi.shape)
            weight = m & (chi - bg <= outlier_ppm)
        out[m] = bg[m]
    return out


def _smooth_blocks(arr: np.ndarray, block: np.ndarray, sigma_coarse: np.ndarray) -> np.ndarray:
    """Block means of ``arr`` (zero-padded to whole blocks), Gaussian-filtered on the coarse grid."""
    pad = [(0, (-n) % b) for n, b in zip(arr.shape, block)]
    a = np.pad(arr, pad) if any(p[1] for p in pad) else arr
    shape = []
    for n, b in zip(a.shape, block):
        shape += [n // b, b]
    coarse = a.reshape(shape).mean(axis=(1, 3, 5), dtype=np.float32)
    return ndi.gaussian_filter(coarse, sigma_coarse, mode="constant")


def _expand_blocks(coarse: np.ndarray, block: np.ndarray, shape) -> np.ndarray:
    """Back to full resolution: each voxel takes the value of its block."""
    out = coarse
    for axis, b in enumerate(block):
        if b > 1:
            out = np.repeat(out, b, axis=axis)
    return out[tuple(slice(0, n) for n in shape)]


def vessel_candidates(
    chi_ppm: np.ndarray,
    tissue: np.ndarray | None,
    voxel_size_mm,
    *,
    threshold_ppm: float = DEFAULT_THRESHOLD_PPM,
    background_mm: float = DEFAULT_BACKGROUND_MM,
    use_vesselness: bool = True,
    sigmas_mm=DEFAULT_SIGMAS_MM,
    vesselness_threshold: float = DEFAULT_VESSELNESS,
    min_size_voxels: int = DEFAULT_MIN_SIZE_VOXELS,
    min_elongation: float = DEFAULT_MIN_ELONGATION,
    mask: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Candidate vessel voxels: chi well above the local tissue, and tubular.

    A voxel is a candidate when ``chi - background > threshold_ppm``, where the background is a
    robust local mean of chi over a ``background_mm`` window within the voxel's own tissue class
    (:func:`local_background_ppm`), and -- with ``use_vesselness`` -- when the Sato tubeness of
    chi at physical scales ``sigmas_mm`` (bright ridges, scikit-image ``sato`` at isotropic
    spacing) exceeds ``vesselness_threshold`` times the tubeness of an ideal vein of radius
    ``min(sigmas_mm)`` at the threshold contrast (a physical calibration, independent of what
    else is in the image). Its eigenvalues are computed only at the above-threshold voxels (on
    40 mm tiles that hold some), so a whole-brain grid stays affordable. Connected components
    (26-connectivity) smaller than ``min_size_voxels`` or less elongated than ``min_elongation``
    (square root of the ratio of the two largest eigenvalues of the component's coordinate
    covariance, in mm) are dropped.

    Parameters
    ----------
    chi_ppm : ndarray, 3-D
    tissue : ndarray, 3-D, or None
        Candidates only on tissue (codes > 0) when given.
    voxel_size_mm : sequence of 3 float
    threshold_ppm : float
        Excess over the local background (ppm). Default 0.1.
    background_mm : float
        Background window (mm). Default 6.
    use_vesselness : bool
    sigmas_mm : sequence of float
        Vessel radii probed (mm).
    vesselness_threshold : float
        Fraction of the tubeness of the ideal threshold-contrast vein (default 0.5).
    min_size_voxels : int
    min_elongation : float
        1 keeps every shape; 2 (default) drops compact blobs.
    mask : ndarray of bool, optional
        Limit to this mask (e.g. the QSM brain mask).
    progress : callable, optional
        ``progress(fraction, message)``; may raise ``CancelledError``.

    Returns
    -------
    ndarray of bool

    Notes
    -----
    Paramagnetic lesions (iron rims, the paper's WM lesions) are also above their background:
    the vesselness term keeps round blobs out, but review the overlay before removing voxels from
    lesion ROIs.
    """
    chi = np.asarray(chi_ppm, dtype=np.float32)
    vs = check_voxel_size(voxel_size_mm)
    if chi.ndim != 3:
        raise ParameterError(f"chi_ppm must be 3-D, got shape {chi.shape}")
    if not np.isfinite(threshold_ppm) or threshold_ppm < 0:
        raise ParameterError(f"threshold_ppm must be >= 0 ppm, got {threshold_ppm}")
    region = np.ones(chi.shape, bool) if mask is None else np.asarray(mask, bool)
    if tissue is not None:
        if np.asarray(tissue).shape != chi.shape:
            shape = np.asarray(tissue).shape
            raise ParameterError(f"tissue shape {shape} differs from chi shape {chi.shape}")
        region &= np.asarray(tissue) > 0
    report(progress, 0.0, "local tissue background")
    background = local_background_ppm(chi, tissue, vs, window_mm=background_mm, outlier_ppm=threshold_ppm)
    cand = region & (chi - background > threshold_ppm)
    report(progress, 0.2, "vesselness")
    if use_vesselness and cand.any():
        tube = _tubeness_at(chi, vs, cand, sigmas_mm, max(threshold_ppm, 1e-3), scaled(progress, 0.2, 0.95))
        cand &= tube > vesselness_threshold
    if cand.any() and (min_size_voxels > 1 or min_elongation > 1):
        comp, n = ndi.label(cand, structure=np.ones((3, 3, 3), bool))
        keep = np.bincount(comp.ravel(), minlength=n + 1) >= max(min_size_voxels, 1)
        if min_elongation > 1:
            keep &= _elongation(comp, n, vs) >= min_elongation
        keep[0] = False
        cand = keep[comp]
    report(progress, 1.0, "vessel candidates done")
    return cand


def _elongation(comp: np.ndarray, n: int, vs: np.ndarray) -> np.ndarray:
    """Per component: sqrt(largest / second largest eigenvalue) of the coordinate covariance (mm)."""
    idx = np.flatnonzero(comp)
    lab = comp.ravel()[idx]
    xyz = np.stack(np.unravel_index(idx, comp.shape), axis=1) * vs
    count = np.bincount(lab, minlength=n + 1).astype(float)
    count[0] = 1
    mean = np.stack([np.bincount(lab, xyz[:, a], n + 1) for a in range(3)], 1) / count[:, None]
    cov = np.empty((n + 1, 3, 3))
    for a in range(3):
        for b in range(a, 3):
            second = np.bincount(lab, xyz[:, a] * xyz[:, b], n + 1) / count
            cov[:, a, b] = cov[:, b, a] = second - mean[:, a] * mean[:, b]
    cov += np.diag(vs**2 / 12.0)  # a voxel's own extent, so single voxels are round
    ev = np.linalg.eigvalsh(cov)  # ascending
    return np.sqrt(ev[:, 2] / np.maximum(ev[:, 1], 1e-12))


def tubeness(chi_ppm: np.ndarray, voxel_size_mm, *, sigmas_mm=DEFAULT_SIGMAS_MM,
             region: np.ndarray | None = None, max_slab_voxels: int = 2_000_000) -> np.ndarray:
    """Bright-tube measure (Sato), normalised to its 99.9th percentile inside ``region``.

    Anisotropic voxels: the volume is zoomed to isotropic spacing (the smallest voxel edge),
    filtered with ``skimage.filters.sato`` at ``sigma_mm / spacing``, and zoomed back. The work
    is done in overlapping slabs along the coarsest axis (overlap: 4 sigma plus 3 voxels, the
    filter's reach), each of at most ``max_slab_voxels`` zoomed voxels, so memory stays bounded
    (about 0.2 GB) on whole-brain grids.
    """
    vs = check_voxel_size(voxel_size_mm)
    chi = np.asarray(chi_ppm, dtype=np.float32)
    t = _sato_raw(chi, vs, sigmas_mm, max_slab_voxels)
    inside = t[region] if region is not None and region.any() else t.ravel()
    scale = float(np.percentile(inside, 99.9)) if inside.size else 0.0
    return t / scale if scale > 0 else np.zeros_like(t)


def _tubeness_at(chi: np.ndarray, vs: np.ndarray, cand: np.ndarray, sigmas_mm,
                 contrast_ppm: float, progress: ProgressCallback | None = None) -> np.ndarray:
    """Sato tubeness at the ``cand`` voxels relative to an ideal vein (0 elsewhere).

    The reference is the tubeness on the axis of a straight cylinder of radius
    ``min(sigmas_mm)`` and contrast ``contrast_ppm`` (the detection threshold), so 1 means "as
    tubular as the faintest, thinnest vein the threshold admits". Candidate voxels are grouped
    into boxes (candidates closer than the filter's reach share one) and the filter runs on each
    box with its margin: the same values as a whole-volume filter, at a fraction of the cost.
    """
    iso = float(vs.min())
    reach = [int(np.ceil((4 * max(sigmas_mm) + 3 * iso) / v)) + 1 for v in vs]
    tile = [max(int(round(_TILE_MM / v)), 4) for v in vs]
    t = np.zeros(chi.shape, dtype=np.float32)
    starts = list(itertools.product(*[range(0, n, k) for n, k in zip(chi.shape, tile)]))
    for i, start in enumerate(starts):
        report(progress, i / len(starts), f"vesselness, tile {i + 1} of {len(starts)}")
        core = tuple(slice(a, min(a + k, n)) for a, k, n in zip(start, tile, chi.shape))
        inside = cand[core]
        if not inside.any():
            continue
        box = tuple(slice(max(c.start - r, 0), min(c.stop + r, n)) for c, r, n in zip(core, reach, chi.shape))
        piece = chi[box]
        zoom = vs / iso
        img = ndi.zoom(piece, zoom, order=1) if np.any(np.abs(zoom - 1) > 1e-3) else piece
        # candidate positions in the zoomed box (ndimage.zoom maps the corner voxels onto each other)
        pts = np.argwhere(inside) + np.array([c.start - b.start for c, b in zip(core, box)])
        scale = (np.array(img.shape) - 1) / np.maximum(np.array(piece.shape) - 1, 1)
        t[core][inside] = _sato_at_points(img, [s_ / iso for s_ in sigmas_mm], pts * scale)
    ref = _reference_vein_tubeness(iso, tuple(float(x) for x in sigmas_mm), float(contrast_ppm))
    return t / ref if ref > 0 else np.zeros_like(t)


def _reference_vein_tubeness(iso_mm: float, sigmas_mm: tuple, contrast_ppm: float) -> float:
    """Tubeness on the axis of a cylinder of radius min(sigmas_mm) and the given contrast."""
    radius = min(sigmas_mm)
    half = int(np.ceil((4 * max(sigmas_mm) + radius) / iso_mm)) + 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1] * iso_mm
    disc = (x * x + y * y <= radius * radius).astype(np.float32) * contrast_ppm
    vol = np.repeat(disc[:, :, None], 2 * half + 1, axis=2)
    return float(_sato_at_points(vol, [s / iso_mm for s in sigmas_mm], np.array([[half, half, half]]))[0])


def _sato_at_points(img: np.ndarray, sigmas_vox, points: np.ndarray) -> np.ndarray:
    """Sato tubeness of bright tubes at (fractional) voxel positions of an isotropic image.

    As ``skimage.filters.sato(black_ridges=False)``: at each scale, the Hessian of the Gaussian-
    smoothed negated image, its two largest eigenvalues clipped at 0, their geometric mean times
    sigma^2; the maximum over scales. The Hessian is filtered on the whole image but its
    eigenvalues are computed at ``points`` only (interpolated linearly), which is what makes
    whole-brain grids affordable.
    """
    neg = -np.asarray(img, dtype=np.float32)
    best = np.zeros(len(points))
    if len(points) == 0:
        return best
    coords = np.asarray(points, dtype=float).T
    for sigma in sigmas_vox:
        hess = np.empty((len(points), 3, 3))
        for a, b in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)):
            order = [0, 0, 0]
            order[a] += 1
            order[b] += 1
            d = ndi.gaussian_filter(neg, sigma, order=order, mode="nearest")
            hess[:, a, b] = hess[:, b, a] = ndi.map_coordinates(d, coords, order=1, mode="nearest")
        ev = np.linalg.eigvalsh(hess)  # ascending: the two largest are the last two
        vals = sigma**2 * np.sqrt(np.maximum(ev[:, 2], 0) * np.maximum(ev[:, 1], 0))
        best = np.maximum(best, vals)
    return best


def _sato_raw(chi: np.ndarray, vs: np.ndarray, sigmas_mm, max_slab_voxels: int = 2_000_000) -> np.ndarray:
    """Sato tubeness (unnormalised) in overlapping slabs along the coarsest axis."""
    iso = float(vs.min())
    zoom = vs / iso
    sig = [s / iso for s in sigmas_mm]
    axis = int(np.argmax(vs))
    n = chi.shape[axis]
    margin = int(np.ceil((4 * max(sigmas_mm) + 3 * iso) / vs[axis])) + 1
    plane = float(np.prod([chi.shape[a] * zoom[a] for a in range(3) if a != axis]))
    slab = max(1, int(max_slab_voxels / (plane * zoom[axis])) - 2 * margin)
    t = np.empty(chi.shape, dtype=np.float32)
    for start in range(0, n, slab):
        stop = min(start + slab, n)
        lo, hi = max(start - margin, 0), min(stop + margin, n)
        piece = np.moveaxis(chi, axis, 0)[lo:hi]
        filtered = _sato_isotropic(np.moveaxis(piece, 0, axis), zoom, sig)
        np.moveaxis(t, axis, 0)[start:stop] = np.moveaxis(filtered, axis, 0)[start - lo : stop - lo]
    return t


def _sato_isotropic(piece: np.ndarray, zoom: np.ndarray, sigmas_vox) -> np.ndarray:
    """Sato tubeness of ``piece`` computed at isotropic spacing, returned on ``piece``'s grid."""
    from skimage.filters import sato

    resample = bool(np.any(np.abs(zoom - 1) > 1e-3))
    img = ndi.zoom(piece, zoom, order=1) if resample else piece
    out = sato(img, sigmas=sigmas_vox, black_ridges=False, mode="nearest").astype(np.float32)
    if out.shape != piece.shape:
        out = ndi.zoom(out, np.array(piece.shape) / np.array(out.shape), order=1)
        out = out[tuple(slice(0, s) for s in piece.shape)]
        if out.shape != piece.shape:  # pragma: no cover - rounding of zoom
            out = np.pad(out, [(0, s - o) for s, o in zip(piece.shape, out.shape)], mode="edge")
    return out


def remove_voxels(label_array: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``label_array`` with the voxels of ``mask`` set to 0 (e.g. vessels out of ROIs).

    Examples
    --------
    >>> remove_voxels(np.array([[[1, 1, 2]]]), np.array([[[False, True, True]]]))[0, 0].tolist()
    [1, 0, 0]
    """
    arr = np.asarray(label_array)
    m = np.asarray(mask, dtype=bool)
    if m.shape != arr.shape:
        raise ParameterError(f"mask shape {m.shape} differs from label array shape {arr.shape}")
    out = arr.copy()
    out[m] = 0
    return out
