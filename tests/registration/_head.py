"""An analytic head for registration tests: defined in world millimetres, sampled on any grid.

Because the head is a function of the world point, the same anatomy can be rendered on two grids
of different voxel size, orientation and field of view, with different contrasts (T1-like and
T2*-like), and moved by an exactly known rigid transform. Structures: scalp, skull, CSF, a
folded cortex (radius modulated by smooth "gyri"), white matter, two unequal ventricles, deep grey
nuclei and eyes, so the head has no symmetry a registration could slide along.
Partial volume is modelled by a logistic edge about half a voxel wide.
"""

from __future__ import annotations

import numpy as np

from napari_qsm_ms.io.nifti import Volume

CENTER_RAS = np.array([0.0, -10.0, 15.0])
HEAD_RADII_MM = np.array([78.0, 98.0, 88.0])

#: Intensity per compartment: background, scalp, skull, csf, cortex, wm, deep gm, eyes.
CONTRASTS = {
    "t1": dict(bg=0.0, scalp=0.75, skull=0.08, csf=0.05, gm=0.45, wm=0.85, deep=0.55, eye=0.1),
    "t2star": dict(bg=0.0, scalp=0.45, skull=0.04, csf=0.95, gm=0.7, wm=0.5, deep=0.3, eye=0.9),
}


def _ellipsoid_level(p: np.ndarray, center, radii) -> np.ndarray:
    """Approximate signed distance (mm, negative inside) to an axis-aligned ellipsoid."""
    q = (p - np.asarray(center, dtype=float)) / np.asarray(radii, dtype=float)
    r = np.sqrt((q**2).sum(axis=-1))
    return (r - 1.0) * float(np.mean(radii))


def _gyri_mm(p: np.ndarray, amplitude_mm: float) -> np.ndarray:
    q = p - CENTER_RAS
    r = np.sqrt((q**2).sum(axis=-1)) + 1e-6
    theta = np.arccos(np.clip(q[..., 2] / r, -1, 1))
    phi = np.arctan2(q[..., 1], q[..., 0])
    return amplitude_mm * (np.sin(7 * theta + 0.5) * np.cos(6 * phi) + 0.5 * np.sin(11 * phi + 3 * theta))


def head_intensity(points_ras: np.ndarray, contrast: str, edge_mm: float) -> np.ndarray:
    """Image intensity of the analytic head at world points (RAS+, mm, shape (..., 3))."""
    c = CONTRASTS[contrast]
    p = np.asarray(points_ras, dtype=float)

    def member(level):
        return 1.0 / (1.0 + np.exp(np.clip(level / edge_mm, -50, 50)))

    layers = [
        ("scalp", _ellipsoid_level(p, CENTER_RAS, HEAD_RADII_MM)),
        ("skull", _ellipsoid_level(p, CENTER_RAS, HEAD_RADII_MM - 6)),
        ("csf", _ellipsoid_level(p, CENTER_RAS, HEAD_RADII_MM - 12)),
        ("gm", _ellipsoid_level(p, CENTER_RAS, HEAD_RADII_MM - 15) + _gyri_mm(p, 2.5)),
        ("wm", _ellipsoid_level(p, CENTER_RAS, HEAD_RADII_MM - 21) + _gyri_mm(p, 3.0)),
        ("deep", _ellipsoid_level(p, CENTER_RAS + [-14, 4, 2], [9, 14, 10])),
        ("deep", _ellipsoid_level(p, CENTER_RAS + [15, 2, 0], [8, 11, 12])),
        ("csf", _ellipsoid_level(p, CENTER_RAS + [-6, 8, 14], [5, 22, 8])),
        ("csf", _ellipsoid_level(p, CENTER_RAS + [8, 2, 12], [4, 17, 6])),
        ("eye", _ellipsoid_level(p, CENTER_RAS + [-30, 80, -40], [12, 11, 11])),
        ("eye", _ellipsoid_level(p, CENTER_RAS + [30, 80, -40], [12, 11, 11])),
    ]
    out = np.full(p.shape[:-1], c["bg"], dtype=np.float64)
    for name, level in layers:
        m = member(level)
        out = out * (1 - m) + c[name] * m
    return out


def head_labels(points_ras: np.ndarray) -> np.ndarray:
    """Hard labels of the analytic head (0 outside, 1 csf, 2 cortex, 3 wm, 4 deep gm)."""
    p = np.asarray(points_ras, dtype=float)
    out = np.zeros(p.shape[:-1], dtype=np.int32)
    out[_ellipsoid_level(p, CENTER_RAS, HEAD_RADII_MM - 12) < 0] = 1
    out[_ellipsoid_level(p, CENTER_RAS, HEAD_RADII_MM - 15) + _gyri_mm(p, 2.5) < 0] = 2
    out[_ellipsoid_level(p, CENTER_RAS, HEAD_RADII_MM - 21) + _gyri_mm(p, 3.0) < 0] = 3
    return out


def brain_mask(points_ras: np.ndarray) -> np.ndarray:
    return _ellipsoid_level(np.asarray(points_ras, float), CENTER_RAS, HEAD_RADII_MM - 15) < 0


def grid_points(shape, affine) -> np.ndarray:
    """World points (RAS+, mm) of every voxel centre, shape (*shape, 3)."""
    idx = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij"), axis=-1)
    return idx @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def rotation_matrix(angles_deg) -> np.ndarray:
    """Rotation about x, then y, then z (degrees), as a 3x3 matrix."""
    ax, ay, az = np.deg2rad(np.asarray(angles_deg, dtype=float))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rigid(angles_deg, translation_mm, center=CENTER_RAS) -> np.ndarray:
    """4x4 rigid motion: rotate about ``center``, then translate (RAS+ mm)."""
    r = rotation_matrix(angles_deg)
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = np.asarray(center) - r @ np.asarray(center) + np.asarray(translation_mm, dtype=float)
    return m


def axial_affine(voxel_size_mm, shape, center=CENTER_RAS, tilt_deg=0.0) -> np.ndarray:
    """Axial grid (i: R->L like scanners store it, j: P->A, k: I->S) centred on ``center``."""
    axes = np.diag([-1.0, 1.0, 1.0]) * np.asarray(voxel_size_mm, dtype=float)
    axes = rotation_matrix([tilt_deg, 0, 0]) @ axes
    a = np.eye(4)
    a[:3, :3] = axes
    a[:3, 3] = np.asarray(center) - axes @ ((np.asarray(shape) - 1) / 2.0)
    return a


def coronal_affine(voxel_size_mm, shape, center=CENTER_RAS) -> np.ndarray:
    """Coronal grid (i: R->L, j: S->I, k: P->A): a permutation and flips of the axial one."""
    s = np.asarray(voxel_size_mm, dtype=float)
    axes = np.array([[-1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]]) * s
    a = np.eye(4)
    a[:3, :3] = axes
    a[:3, 3] = np.asarray(center) - axes @ ((np.asarray(shape) - 1) / 2.0)
    return a


def render(shape, affine, contrast, *, motion=None, noise=0.01, seed=0, bias=True) -> Volume:
    """Sample the head on a grid; ``motion`` (4x4, RAS+) moves the head before imaging.

    The image value at world point y is the head's at ``motion^-1 (y)``, so the rigid transform
    mapping the unmoved frame's points onto this image's world points is ``motion`` itself.
    """
    pts = grid_points(shape, affine)
    if motion is not None:
        inv = np.linalg.inv(motion)
        pts = pts @ inv[:3, :3].T + inv[:3, 3]
    edge = 0.5 * float(np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0)).max())
    img = head_intensity(pts, contrast, edge)
    if bias:  # smooth receive-field inhomogeneity, different per contrast
        q = (pts - CENTER_RAS) / 100.0
        img = img * (1.0 + (0.15 if contrast == "t2star" else -0.1) * q[..., 0] + 0.1 * q[..., 2] ** 2)
    rng = np.random.default_rng(seed)
    img = img + noise * rng.standard_normal(img.shape)
    return Volume(data=np.clip(img, 0, None).astype(np.float32), affine=np.asarray(affine, dtype=float))
