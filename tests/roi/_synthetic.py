"""Random lesion sets on a synthetic tissue map, shared by the roi tests."""

from __future__ import annotations

import numpy as np

from napari_qsm_ms.io.layout import TISSUE_CORTEX, TISSUE_CSF, TISSUE_WM


def tissue_map(shape=(64, 64, 10)) -> np.ndarray:
    """WM everywhere, a straight cortical ribbon (rows 40-45), CSF beyond it, a CSF pocket in WM."""
    tis = np.full(shape, TISSUE_WM, dtype=np.uint8)
    tis[40:46] = TISSUE_CORTEX
    tis[46:50] = TISSUE_CSF
    tis[50:56] = TISSUE_CORTEX  # the facing bank across a "sulcus"
    tis[56:] = 0
    tis[10:14, 10:14] = TISSUE_CSF
    return tis


def random_lesions(seed: int, shape=(64, 64, 10), n: int = 12) -> np.ndarray:
    """``n`` random ellipsoids (later ones may overwrite earlier ones; ids are then renumbered)."""
    rng = np.random.default_rng(seed)
    les = np.zeros(shape, dtype=np.int32)
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    for k in range(1, n + 1):
        low, high = [4, 4, 1], [shape[0] - 8, shape[1] - 4, shape[2] - 1]
        if k % 2 == 0:  # every other lesion at or near the cortical ribbon (rows 40-45)
            low[0], high[0] = 37, min(48, shape[0] - 4)
        centre = rng.uniform(low, high)
        radii = rng.uniform([1.0, 1.0, 0.6], [4.0, 4.0, 2.5])
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0
        les[inside] = k
    ids = np.unique(les[les > 0])
    lut = np.zeros(n + 1, dtype=np.int32)
    lut[ids] = np.arange(1, len(ids) + 1)
    return lut[les]
