"""Quality-control helpers: checkerboards, intensity normalisation and manual nudges (pure numpy)."""

from __future__ import annotations

import numpy as np


def display_range(data: np.ndarray, upper_percentile: float = 99.5) -> tuple[float, float]:
    """Display range of an image: (Otsu threshold of the non-zero voxels, head's upper percentile).

    The head is the set of voxels above the Otsu threshold. Returns ``(0, 0)`` for an empty image.
    """
    from .rigid import _otsu

    arr = np.asarray(data, dtype=np.float32)
    values = arr[np.isfinite(arr) & (arr != 0)]
    if values.size == 0:
        return 0.0, 0.0
    values = values[:: max(1, values.size // 500_000)]
    lo = _otsu(values)
    head = values[values > lo]
    hi = float(np.percentile(head if head.size else values, upper_percentile))
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    return float(lo), float(hi)


def scale_intensity(data: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Map ``value_range`` linearly onto 0..1 and clip (float32; non-finite -> 0)."""
    lo, hi = value_range
    arr = np.asarray(data, dtype=np.float32)
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.float32)
    out = (np.where(np.isfinite(arr), arr, lo) - lo) / (hi - lo)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def normalize_intensity(data: np.ndarray, upper_percentile: float = 99.5) -> np.ndarray:
    """Scale an image to 0..1 for display (float32): Otsu threshold -> 0, head's upper percentile -> 1.

    The head is the set of voxels above an Otsu threshold; the background (below it) is black and
    the brightest 0.5 % of the head saturate. A linear map keeps noise where it is (histogram
    equalisation was tried and amplified noise in low-contrast regions).

    Parameters
    ----------
    data : ndarray
        Image.
    upper_percentile : float
        Percentile of the head's values mapped to 1.
    """
    return scale_intensity(data, display_range(data, upper_percentile))


def checkerboard_mask(shape: tuple[int, int, int], voxel_size_mm, check_mm: float = 16.0) -> np.ndarray:
    """Boolean 3-D checkerboard with squares ``check_mm`` wide along every axis (True = first image)."""
    if check_mm <= 0:
        raise ValueError(f"check_mm must be positive, not {check_mm}")
    parity = np.zeros(tuple(shape[:3]), dtype=np.int64)
    for axis, (n, size) in enumerate(zip(shape[:3], voxel_size_mm)):
        idx = (np.arange(n) * float(size) // float(check_mm)).astype(np.int64)
        view = [1, 1, 1]
        view[axis] = n
        parity = parity + idx.reshape(view)
    return parity % 2 == 0


def checkerboard(fixed: np.ndarray, moving: np.ndarray, voxel_size_mm, check_mm: float = 16.0) -> np.ndarray:
    """Checkerboard of two images on one grid, each normalised to 0..1 (float32).

    Squares alternate between ``fixed`` and ``moving``; misalignment shows as broken edges at the
    square borders.
    """
    if np.shape(fixed) != np.shape(moving):
        raise ValueError(f"images differ in shape: {np.shape(fixed)} vs {np.shape(moving)}")
    mask = checkerboard_mask(np.shape(fixed), voxel_size_mm, check_mm)
    return np.where(mask, normalize_intensity(fixed), normalize_intensity(moving)).astype(np.float32)


def rotation_xyz_deg(angles_deg) -> np.ndarray:
    """Rotation about the world x, then y, then z axis (degrees, right-handed, RAS+)."""
    ax, ay, az = np.deg2rad(np.asarray(angles_deg, dtype=float))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def nudge_matrix(translation_mm, rotation_deg, center_ras) -> np.ndarray:
    """A manual rigid motion of the displayed series, in T2* world space (RAS+, mm).

    Parameters
    ----------
    translation_mm : (float, float, float)
        Shift towards +x (right), +y (anterior), +z (superior), mm.
    rotation_deg : (float, float, float)
        Rotations about x, y, z through ``center_ras`` (degrees).
    center_ras : (float, float, float)
        Centre of rotation (e.g. the T2* field-of-view centre), mm.

    Returns
    -------
    ndarray, shape (4, 4)
    """
    r = rotation_xyz_deg(rotation_deg)
    c = np.asarray(center_ras, dtype=float)
    n = np.eye(4)
    n[:3, :3] = r
    n[:3, 3] = c - r @ c + np.asarray(translation_mm, dtype=float)
    return n


def apply_nudge(matrix_ras: np.ndarray, nudge: np.ndarray) -> np.ndarray:
    """The fixed-to-moving matrix after moving the displayed series by ``nudge``.

    A series resampled with ``matrix_ras`` shows anatomy point ``M x`` at ``x``; moved by ``N`` it
    shows at ``x`` what was at ``N^-1 x``, i.e. ``M N^-1``.
    """
    return np.asarray(matrix_ras, dtype=float) @ np.linalg.inv(np.asarray(nudge, dtype=float))


def grid_center_ras(shape, affine) -> np.ndarray:
    """World point (RAS+, mm) of a grid's centre."""
    a = np.asarray(affine, dtype=float)
    return a[:3, :3] @ ((np.asarray(shape[:3], dtype=float) - 1) / 2.0) + a[:3, 3]
