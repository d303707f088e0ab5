"""Benchmark: rigid MI registration of one series at the paper's sizes (Bian et al. 2016).

Moving: coronal MPRAGE-like, 224 x 224 x 256 at 0.8 mm; fixed: axial T2*-like slab, 384 x 384 x 90 at
0.47 x 0.47 x 1 mm, tilted 8 degrees; the head moved by a known rigid motion between the two.
Prints the registration time, its accuracy against the known motion, and yardsticks measured in
the same run: one linear resampling of the moving image onto the fixed grid (SimpleITK) and one
3-D FFT of the fixed size (scipy.fft). Target: registration under 30 s on 2 cores.

Run: ``.venv/bin/python benchmarks/bench_registration.py [--threads N]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from napari_qsm_ms.io.nifti import Volume  # noqa: E402
from napari_qsm_ms.registration.resample import resample_volume  # noqa: E402
from napari_qsm_ms.registration.rigid import (  # noqa: E402
    RigidParameters,
    available_cores,
    max_displacement_mm,
    register_rigid,
    rotation_angle_deg,
)
from tests.registration import _head as H  # noqa: E402

FIXED_SHAPE, FIXED_VOXEL_MM = (384, 384, 90), (0.47, 0.47, 1.0)
MOVING_SHAPE, MOVING_VOXEL_MM = (224, 224, 256), (0.8, 0.8, 0.8)


def render_chunked(shape, affine, contrast, motion=None, seed=0) -> Volume:
    """Render the analytic head slab by slab (bounded memory)."""
    out = np.empty(shape, np.float32)
    step = 16
    for k0 in range(0, shape[2], step):
        k1 = min(shape[2], k0 + step)
        sub = affine.copy()
        sub[:3, 3] = affine[:3, :3] @ [0, 0, k0] + affine[:3, 3]
        out[..., k0:k1] = H.render((shape[0], shape[1], k1 - k0), sub, contrast, motion=motion, seed=seed + k0).data
    return Volume(out, affine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=available_cores(), help="cores (default: all available)")
    args = parser.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    print(f"cores available {available_cores()}, SimpleITK threads {args.threads}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    t = time.perf_counter()
    fixed = render_chunked(FIXED_SHAPE, H.axial_affine(FIXED_VOXEL_MM, FIXED_SHAPE, center=H.CENTER_RAS + [0, 0, 10],
                                                       tilt_deg=8), "t2star", seed=1)
    motion = H.rigid((4.0, -6.0, 5.0), (6.0, -5.0, 4.0))
    moving = render_chunked(MOVING_SHAPE, H.coronal_affine(MOVING_VOXEL_MM, MOVING_SHAPE), "t1", motion=motion, seed=2)
    print(f"rendered phantoms in {time.perf_counter() - t:.1f} s: fixed {FIXED_SHAPE} at {FIXED_VOXEL_MM} mm, "
          f"moving {MOVING_SHAPE} at {MOVING_VOXEL_MM} mm")

    t = time.perf_counter()
    resample_volume(moving, FIXED_SHAPE, fixed.affine, motion)
    t_resample = time.perf_counter() - t
    arr = fixed.data.astype(np.float32)
    t = time.perf_counter()
    scipy.fft.fftn(arr, workers=args.threads)
    t_fft = time.perf_counter() - t
    print(f"yardstick: one linear resampling onto the fixed grid {t_resample:.2f} s; "
          f"one 3-D FFT {FIXED_SHAPE} (float32, {args.threads} workers) {t_fft:.2f} s")

    t = time.perf_counter()
    result = register_rigid(fixed, moving, params=RigidParameters(threads=args.threads))
    t_reg = time.perf_counter() - t
    pts = H.grid_points((96, 96, 45), fixed.affine @ np.diag([4, 4, 2, 1]))
    pts = pts[H.brain_mask(pts)]
    err_mm = max_displacement_mm(result.matrix_ras, motion, pts)
    err_deg = rotation_angle_deg(np.linalg.inv(result.matrix_ras) @ motion)
    print(f"registration {t_reg:.1f} s  ({t_reg / t_resample:.1f} resamplings, {t_reg / t_fft:.0f} FFTs); "
          f"target < 30 s: {'PASS' if t_reg < 30 else 'FAIL'}")
    print(f"  {result.summary()}")
    print(f"  error vs known motion ({rotation_angle_deg(motion):.1f} deg, {np.linalg.norm(motion[:3, 3]):.1f} mm): "
          f"max over brain {err_mm:.3f} mm, rotation {err_deg:.3f} deg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
