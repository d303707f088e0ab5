"""MS lesions of the phantom: designed offsets (the paper's Table 3) and placement on a grid.

Lesions of three classes are placed with a seed: white-matter lesions entirely in WM, cortical
lesions more than 75 % (by design 80 %) in cortex, mixed lesions 25-75 % (by design 30-70 %) in
cortex, every lesion at least 2 mm across in-plane and away from veins and other lesions.

A lesion's susceptibility is the normal-appearing tissue value at the same place plus a designed
offset drawn per lesion from the paper's Table 3 (Bian et al., AJNR 2016): WM lesions
+0.014 +/- 0.014 ppm relative to NAWM; cortical lesions -0.018 +/- 0.013 relative to NAGM; mixed
lesions +0.014 +/- 0.018 (WM part) and -0.009 +/- 0.012 (cortical part).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from ..errors import ParameterError
from .head_model import CORTEX, CSF, WM, HeadModel, Lesion

#: Table 3 of the paper: (mean, SD) of relative susceptibility (ppm) per lesion class and part.
TABLE3_PPM = {
    ("wm", "wm"): (0.014, 0.014),
    ("cortical", "cortical"): (-0.018, 0.013),
    ("mixed", "wm"): (0.014, 0.018),
    ("mixed", "cortical"): (-0.009, 0.012),
}
LESION_CLASSES = ("wm", "cortical", "mixed")
MIN_LESION_EXTENT_MM = 2.0
#: Design margins inside the paper's class rules (cortical > 0.75, mixed 0.25-0.75).
CORTICAL_MIN_FRACTION = 0.80
MIXED_FRACTION_RANGE = (0.30, 0.70)


def _draw_delta(rng: np.random.Generator, lesion_class: str, part: str) -> float:
    mean, sd = TABLE3_PPM[(lesion_class, part)]
    return float(rng.normal(mean, sd))


def _bounding_box(mask: np.ndarray, margin: int = 1) -> tuple[slice, slice, slice]:
    """Slices of the bounding box of ``mask`` grown by ``margin`` voxels (clipped to the array)."""
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(int(hits[0]) - margin, 0), min(int(hits[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)


def place_lesions(
    model: HeadModel,
    region: np.ndarray,
    depth: np.ndarray,
    vessels: np.ndarray,
    x,
    y,
    z,
    vs: np.ndarray,
    n_lesions: tuple[int, int, int],
    rng: np.random.Generator,
) -> list[Lesion]:
    """Place lesions on the grid by rejection sampling; each satisfies its class rule here."""
    wm = region == WM
    ctx = region == CORTEX
    brain = region >= CSF
    # Distance maps on the brain's bounding box plus one voxel: exact for every voxel of the brain
    # (the box is convex and its margin is outside the brain), which is all that is used below.
    crop = _bounding_box(brain, margin=1)

    def edt(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(mask.shape, dtype=np.float32)
        out[crop] = ndimage.distance_transform_edt(mask[crop], sampling=vs)
        return out

    dist_in_wm = edt(wm)
    dist_to_wm = edt(~wm)
    dist_vessel = edt(~vessels) if vessels.any() else None
    dist_out = edt(brain)
    shape = np.asarray(region.shape)
    edge = np.maximum(np.ceil(4.0 / vs).astype(int), 3)
    interior = np.zeros(region.shape, dtype=bool)
    interior[edge[0] : shape[0] - edge[0], edge[1] : shape[1] - edge[1], edge[2] : shape[2] - edge[2]] = True
    vox_diag = float(np.linalg.norm(vs))
    semi_ranges = {"wm": (2.0, 4.0), "cortical": (1.6, 2.6), "mixed": (2.4, 4.0)}
    candidates = {
        "wm": np.flatnonzero(interior & wm & (dist_in_wm >= 3.0)),
        "cortical": np.flatnonzero(interior & ctx & (depth >= model.csf_mm + 2.0) & (dist_out >= 2.0)),
        "mixed": np.flatnonzero(interior & ctx & (dist_to_wm <= vs.max() * 1.01) & (dist_out >= 2.0)),
    }
    lesions: list[Lesion] = []
    order = ["mixed"] * n_lesions[2] + ["cortical"] * n_lesions[1] + ["wm"] * n_lesions[0]
    for cls in order:
        cand = candidates[cls]
        placed = False
        for _attempt in range(600):
            if cand.size == 0:
                break
            idx = np.unravel_index(int(cand[rng.integers(cand.size)]), region.shape)
            center = np.array([x[idx], y[idx], z[idx]], dtype=float) + rng.uniform(-0.3, 0.3, 3) * vs
            semi = rng.uniform(*semi_ranges[cls], size=3)
            semi = np.maximum(semi, 0.75 * vs)  # at least 1.5 voxels across on every axis
            if any(
                np.linalg.norm(center - o.center_mm) < semi.max() + o.semi_axes_mm.max() + 6.0
                for o in lesions
            ):
                continue
            lo = np.maximum(np.floor((center - semi) / vs + (shape - 1) / 2.0).astype(int) - 1, 0)
            hi = np.minimum(np.ceil((center + semi) / vs + (shape - 1) / 2.0).astype(int) + 2, shape)
            box = tuple(slice(lo[i], hi[i]) for i in range(3))
            q = (
                ((x[box] - center[0]) / semi[0]) ** 2
                + ((y[box] - center[1]) / semi[1]) ** 2
                + ((z[box] - center[2]) / semi[2]) ** 2
            )
            host = region[box]
            blob = q <= 1.0
            if cls == "wm":
                if np.any(blob & (host != WM)):
                    continue  # a WM lesion lies entirely in WM
                les_mask = blob
            else:
                les_mask = blob & ((host == WM) | (host == CORTEX))
            n_vox = int(les_mask.sum())
            if n_vox < 4:
                continue
            frac = float(np.sum(les_mask & (host == CORTEX)) / n_vox)
            if cls == "cortical" and frac < CORTICAL_MIN_FRACTION:
                continue
            if cls == "mixed" and not (MIXED_FRACTION_RANGE[0] <= frac <= MIXED_FRACTION_RANGE[1]):
                continue
            if cls == "wm" and frac > 0:
                continue
            ii = np.nonzero(les_mask)
            extent = min((np.ptp(ii[a]) + 1) * vs[a] for a in (0, 1))
            if extent < MIN_LESION_EXTENT_MM:
                continue
            if dist_vessel is not None and float(dist_vessel[box][les_mask].min()) < 3.0 + 0.5 * vox_diag:
                continue
            if float(dist_out[box][les_mask].min()) < 1.0:
                continue
            les = Lesion(len(lesions) + 1, cls, center, semi)
            if cls in ("wm", "mixed"):
                les.delta_wm_ppm = _draw_delta(rng, cls, "wm")
            if cls in ("cortical", "mixed"):
                les.delta_cortical_ppm = _draw_delta(rng, cls, "cortical")
            lesions.append(les)
            placed = True
            break
        if not placed:
            raise ParameterError(
                f"could not place a {cls} lesion on a grid of {tuple(region.shape)} voxels of "
                f"{tuple(round(float(v), 3) for v in vs)} mm: use a larger grid, finer voxels or fewer lesions"
            )
    # ids in a stable anatomical order (WM first, then cortical, then mixed) for readability
    rank = {c: i for i, c in enumerate(LESION_CLASSES)}
    lesions.sort(key=lambda les: (rank[les.lesion_class], les.lesion_id))
    for new_id, les in enumerate(lesions, start=1):
        les.lesion_id = new_id
    return lesions


def lesion_table(
    model: HeadModel, region: np.ndarray, lesion_ids: np.ndarray, vs: np.ndarray
) -> pd.DataFrame:
    """The designed lesions with their realised size and cortex fraction on this grid."""
    shape = np.asarray(region.shape)
    rows = []
    objs = ndimage.find_objects(lesion_ids)
    for les in model.lesions:
        sl = objs[les.lesion_id - 1] if les.lesion_id - 1 < len(objs) else None
        if sl is None:
            n_vox, frac, extent = 0, float("nan"), 0.0
        else:
            m = lesion_ids[sl] == les.lesion_id
            host = region[sl][m]
            n_vox = int(m.sum())
            frac = float(np.mean(host == CORTEX))
            ii = np.nonzero(m)
            extent = float(min((np.ptp(ii[a]) + 1) * vs[a] for a in (0, 1)))
        center_vox = tuple(round(v) for v in les.center_mm / vs + (shape - 1) / 2.0)
        rows.append(
            {
                "lesion_id": les.lesion_id,
                "class": les.lesion_class,
                "designed_delta_wm_ppm": les.delta_wm_ppm,
                "designed_delta_cortical_ppm": les.delta_cortical_ppm,
                "center_vox": center_vox,
                "center_mm": tuple(round(float(v), 3) for v in les.center_mm),
                "semi_axes_mm": tuple(round(float(v), 3) for v in les.semi_axes_mm),
                "voxels": n_vox,
                "cortex_fraction": frac,
                "extent_mm": extent,
            }
        )
    columns = [
        "lesion_id",
        "class",
        "designed_delta_wm_ppm",
        "designed_delta_cortical_ppm",
        "center_vox",
        "center_mm",
        "semi_axes_mm",
        "voxels",
        "cortex_fraction",
        "extent_mm",
    ]
    return pd.DataFrame(rows, columns=columns)
