"""Benchmark of the pure ROI layer: reference ROIs and the lesion table on a whole-brain grid.

Grid 384 x 384 x 90 at 0.47 x 0.47 x 1 mm (the paper's T2* pixel), 150 lesions (random ellipsoids,
2-10 mm: WM, juxtacortical/mixed and cortical) on a synthetic tissue map (CSF rim, cortical ribbon,
WM, deep GM). Run::

    .venv/bin/python benchmarks/bench_roi.py

Prints every figure next to yardsticks measured in the same run (one Euclidean distance
transform of the full volume with physical sampling, one complex 3-D FFT), so numbers from a
loaded machine can still be compared. Targets from issue 4: references for 150 lesions < 2 s,
lesion table refresh < 100 ms.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np
from scipy import ndimage as ndi

from napari_qsm_ms.roi.lesions import lesion_table
from napari_qsm_ms.roi.references import build_references
from napari_qsm_ms.roi.vessels import vessel_candidates

SHAPE = (384, 384, 90)
VOXEL_MM = (0.47, 0.47, 1.0)
N_LESIONS = 150


def timeit(func, repeat: int = 5) -> tuple[float, object]:
    """Median wall time (s) of ``repeat`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def make_volumes(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tissue (ellipsoidal brain: CSF rim, 2.5 mm cortex, WM, deep GM) and 150 lesions."""
    rng = np.random.default_rng(seed)
    vs = np.asarray(VOXEL_MM)
    grid = np.ogrid[tuple(slice(0, s) for s in SHAPE)]
    centre = (np.asarray(SHAPE) - 1) / 2
    semi = np.array([85.0, 85.0, 44.0])  # mm
    # approximate depth below the brain surface (mm) from a normalised ellipsoid radius
    r = np.sqrt(sum(((g - c) * v / s) ** 2 for g, c, v, s in zip(grid, centre, vs, semi)))
    depth = (1.0 - r) * semi.min()
    tissue = np.zeros(SHAPE, np.uint8)
    tissue[depth > 0] = 1
    tissue[depth > 1.5] = 2
    tissue[depth > 4.0] = 3
    tissue[(depth > 25) & (depth < 32)] = 4
    lesions = np.zeros(SHAPE, np.int32)
    placed = 0
    while placed < N_LESIONS:
        kind = placed % 5  # 3 WM : 1 juxtacortical/mixed : 1 cortical
        lo, hi = {0: (6, 22), 1: (6, 22), 2: (6, 22), 3: (3.0, 5.5), 4: (1.8, 3.8)}[kind]
        radius_mm = rng.uniform(1.0, 5.0, 3)
        radius_mm[2] = max(radius_mm[2], 1.0)
        c = centre + rng.uniform(-1, 1, 3) * (np.asarray(SHAPE) / 2 - 12)
        ci = tuple(int(x) for x in c)
        if not (lo < depth[ci] < hi):
            continue
        sl = tuple(slice(max(int(ci[a] - radius_mm[a] / vs[a]) - 1, 0), int(ci[a] + radius_mm[a] / vs[a]) + 2)
                   for a in range(3))
        g = np.ogrid[sl]
        inside = sum(((gg - cc) * v / rr) ** 2 for gg, cc, v, rr in zip(g, ci, vs, radius_mm)) <= 1.0
        box = lesions[sl]
        if (box[inside] > 0).any():
            continue
        placed += 1
        box[inside] = placed
    return lesions, tissue


def main() -> int:
    print(f"grid {SHAPE} at {VOXEL_MM} mm, {N_LESIONS} lesions; cores available: {os.cpu_count()}; "
          f"load average {os.getloadavg()[0]:.1f} (other work shares this machine)")
    lesions, tissue = make_volumes()
    t_edt, _ = timeit(lambda: ndi.distance_transform_edt(lesions == 0, sampling=VOXEL_MM), repeat=3)
    t_fft, _ = timeit(lambda: np.fft.fftn(tissue.astype(np.complex64)), repeat=3)
    print(f"yardstick: full-volume distance_transform_edt {t_edt * 1e3:8.1f} ms; complex 3-D FFT {t_fft * 1e3:8.1f} ms")

    t_table, table = timeit(lambda: lesion_table(lesions, tissue, VOXEL_MM), repeat=7)
    print(f"lesion_table (150 lesions)        {t_table * 1e3:8.1f} ms   target < 100 ms   "
          f"= {t_table / t_edt:.2f} x EDT")
    counts = table["suggested_class"].value_counts().to_dict()
    print(f"  suggested classes {counts}; flagged small: {int(table['flags'].str.contains('small').sum())}")

    t_ref, res = timeit(lambda: build_references(lesions, tissue, VOXEL_MM), repeat=3)
    print(f"build_references (central slice)  {t_ref * 1e3:8.1f} ms   target < 2000 ms  "
          f"= {t_ref / t_edt:.2f} x EDT")
    t_all, res_all = timeit(lambda: build_references(lesions, tissue, VOXEL_MM, all_slices=True), repeat=3)
    print(f"build_references (all slices)     {t_all * 1e3:8.1f} ms                     "
          f"= {t_all / t_edt:.2f} x EDT")
    tab = res.table
    for part in ("wm", "cortical"):
        rows = tab[tab.part == part]
        print(f"  {part:8s} references: {len(rows):3d}, median {rows.voxels.median():.0f} voxels, "
              f"too small: {int(rows['flags'].str.contains('too_small').sum())}")
    t_one, _ = timeit(lambda: build_references(lesions, tissue, VOXEL_MM, only_ids=[1]), repeat=5)
    print(f"build_references (one lesion)     {t_one * 1e3:8.1f} ms   (interactive rebuild)")

    # chi: noise plus 40 veins (0.3 ppm, ~1 mm wide) along z and y, and the lesions at +0.05 ppm
    rng = np.random.default_rng(1)
    chi = rng.normal(0, 0.01, SHAPE).astype(np.float32)
    chi[lesions > 0] += 0.05
    veins = np.zeros(SHAPE, bool)
    for _ in range(20):
        x, y, z = rng.integers(60, 320), rng.integers(60, 320), rng.integers(10, 80)
        veins[x - 1 : x + 1, y - 1 : y + 1, :] = True
        veins[x - 1 : x + 1, :, z] = True
    veins &= tissue > 0
    chi[veins] += 0.3
    t_thr, _ = timeit(lambda: vessel_candidates(chi, tissue, VOXEL_MM, use_vesselness=False), repeat=1)
    print(f"vessel_candidates (threshold + shape, full grid)       {t_thr:6.2f} s")
    t_ves, cand = timeit(lambda: vessel_candidates(chi, tissue, VOXEL_MM), repeat=1)
    found = cand[veins].mean()
    false_pos = int((cand & ~veins).sum())
    print(f"vessel_candidates (with Sato vesselness, full grid)    {t_ves:6.2f} s   "
          f"vein voxels found {100 * found:.0f} %, other voxels flagged {false_pos}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
