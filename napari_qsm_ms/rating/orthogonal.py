"""Linked orthogonal planes for a reading round (pure, no Qt): axial, coronal and sagittal cuts
through ONE point, laid out side by side as 2-D panels of a mosaic, and the way back from a point
on a panel to the voxel it shows.

The central vein sign needs the vein in at least two perpendicular planes (NAIMS; Sati et al.,
Nat Rev Neurol 2016), so the rim/vein round shows the three planes at once, for each contrast.
Volumes are in the canonical RAS+ voxel order (:func:`napari_qsm_ms.io.nifti.to_canonical`).
Every panel is sampled (nearest voxel) on a square grid of ``pixel_mm`` (the smallest voxel
edge), ``fov_mm`` wide, centred on the point, so panels of anisotropic voxels keep their true
proportions and the mosaic is one array per contrast. On screen (radiological convention, as the
rest of the plugin): axial with anterior up and the patient's right on the left; coronal with
superior up and the right on the left; sagittal with superior up and anterior on the left.

>>> grid = PlaneGrid(voxel_size_mm=(1.0, 1.0, 2.0), fov_mm=6.0)
>>> grid.n, grid.pixel_mm
(7, 1.0)
>>> vol = np.arange(10 * 10 * 10, dtype=float).reshape(10, 10, 10)
>>> cut = plane_cut(vol, (5, 5, 5), "axial", grid)
>>> bool(cut[3, 3] == vol[5, 5, 5])  # the point is the centre of every panel
True
>>> panel_voxel(grid, (5, 5, 5), "axial", 0, 0)  # top left of the axial panel: anterior, right
(8, 8, 5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PLANES = ("axial", "coronal", "sagittal")
#: Canonical (RAS+) axes of each plane: (normal, screen rows, screen columns). Screen rows and
#: columns run towards DEcreasing voxel index: anterior / superior up, the patient's right (and,
#: on the sagittal panel, anterior) on the left.
PLANE_AXES = {"axial": (2, 1, 0), "coronal": (1, 2, 0), "sagittal": (0, 2, 1)}
#: Letters at the (left, right, top) edges of each panel.
PLANE_SIDES = {"axial": ("R", "L", "A"), "coronal": ("R", "L", "S"), "sagittal": ("A", "P", "S")}
GAP_PX = 6
"""Blank pixels between two panels of the mosaic."""


@dataclass(frozen=True)
class PlaneGrid:
    """The square sampling grid of every panel: ``n`` x ``n`` pixels of ``pixel_mm`` (the smallest
    voxel edge divided by ``pixels_per_voxel``)."""

    voxel_size_mm: tuple[float, float, float]
    fov_mm: float = 40.0
    pixels_per_voxel: int = 1
    """Pixels per smallest voxel edge (more than 1 draws a one-pixel outline thinner than a voxel)."""

    @property
    def pixel_mm(self) -> float:
        return float(min(self.voxel_size_mm)) / self.pixels_per_voxel

    @property
    def n(self) -> int:
        """Pixels along a panel's edge (odd: the point is the centre pixel)."""
        return 2 * math.ceil(0.5 * self.fov_mm / self.pixel_mm) + 1

    def offsets_vox(self, axis: int) -> np.ndarray:
        """Voxel offsets from the point along ``axis`` for the panel's pixels (decreasing index)."""
        mm = (np.arange(self.n) - self.n // 2) * self.pixel_mm
        return -np.floor(mm / self.voxel_size_mm[axis] + 0.5).astype(int)


def plane_cut(volume: np.ndarray, point, plane: str, grid: PlaneGrid, fill: float = 0.0) -> np.ndarray:
    """The ``plane`` panel through ``point`` (voxel index): ``grid.n`` x ``grid.n``, ``fill`` outside."""
    normal, rows, cols = PLANE_AXES[plane]
    index = [None, None, None]
    index[normal] = np.full((1, 1), int(point[normal]))
    index[rows] = (int(point[rows]) + grid.offsets_vox(rows))[:, None]
    index[cols] = (int(point[cols]) + grid.offsets_vox(cols))[None, :]
    shape = np.asarray(volume).shape
    inside = np.ones((grid.n, grid.n), bool)
    clipped = []
    for ax, idx in enumerate(index):
        inside &= (idx >= 0) & (idx < shape[ax])
        clipped.append(np.clip(idx, 0, shape[ax] - 1))
    cut = np.asarray(volume)[tuple(clipped)]
    return np.where(inside, cut, fill).astype(np.asarray(volume).dtype, copy=False)


def mosaic_row(volume: np.ndarray, point, grid: PlaneGrid, fill: float = 0.0) -> np.ndarray:
    """The three planes of one contrast side by side (:data:`PLANES` order, :data:`GAP_PX` apart)."""
    row = np.full((grid.n, 3 * grid.n + 2 * GAP_PX), fill, dtype=np.asarray(volume).dtype)
    for k, plane in enumerate(PLANES):
        start = k * (grid.n + GAP_PX)
        row[:, start : start + grid.n] = plane_cut(volume, point, plane, grid, fill)
    return row


def panel_at(grid: PlaneGrid, row_px: float, col_px: float) -> tuple[str, int, int] | None:
    """Which plane's panel a pixel of a mosaic row lies on, and the pixel inside it (or None)."""
    r, c = int(round(row_px)), int(round(col_px))
    if not 0 <= r < grid.n or c < 0:
        return None
    k, inner = divmod(c, grid.n + GAP_PX)
    if k >= len(PLANES) or inner >= grid.n:
        return None
    return PLANES[k], r, inner


def panel_voxel(grid: PlaneGrid, point, plane: str, row: int, col: int, shape=None) -> tuple[int, int, int]:
    """The voxel shown at pixel (``row``, ``col``) of the ``plane`` panel through ``point``
    (clipped to ``shape`` when given)."""
    normal, rows, cols = PLANE_AXES[plane]
    voxel = [int(v) for v in point]
    voxel[rows] += int(grid.offsets_vox(rows)[row])
    voxel[cols] += int(grid.offsets_vox(cols)[col])
    if shape is not None:
        voxel = [int(np.clip(v, 0, s - 1)) for v, s in zip(voxel, shape)]
    return tuple(voxel)


def step_point(point, plane: str, steps: int, shape) -> tuple[int, int, int]:
    """``point`` moved ``steps`` slices along the normal of ``plane`` (towards superior, anterior
    or the patient's right for positive steps), kept inside ``shape``."""
    normal = PLANE_AXES[plane][0]
    moved = [int(v) for v in point]
    moved[normal] = int(np.clip(moved[normal] + steps, 0, shape[normal] - 1))
    return tuple(moved)
