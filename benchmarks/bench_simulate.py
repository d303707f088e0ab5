"""Benchmark of the simulator: phantom, dipole field, GRE signal, and the analytic-sphere accuracy.

Run: ``python benchmarks/bench_simulate.py [--paper]`` (``--paper`` adds the 384 x 384 x 90 grid at
0.47 x 0.47 x 1 mm). Times are printed next to a yardstick measured in the same run: one forward
real FFT (``scipy.fft.rfftn``, all cores) of the zero-padded grid the dipole convolution uses.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from napari_qsm_ms.io.geometry import b0_direction_voxel
from napari_qsm_ms.simulate.forward import gre_signal, local_field_ppm, padded_shape
from napari_qsm_ms.simulate.phantom import make_phantom


def _timed(fn, *args, repeat=1, **kwargs):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best, out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def yardstick_fft_s(shape) -> float:
    big = padded_shape(shape, True)
    x = np.random.default_rng(0).standard_normal(big, dtype=np.float32)
    t, _ = _timed(scipy.fft.rfftn, x, workers=os.cpu_count(), repeat=2)
    return t


def bench_grid(shape, vs, oblique_deg=10.0) -> None:
    fft_s = yardstick_fft_s(shape)
    t_ph, ph = _timed(make_phantom, shape, vs, seed=0, oblique_deg=oblique_deg)
    b0 = b0_direction_voxel(ph.affine)
    t_field, _ = _timed(local_field_ppm, ph.chi_ppm, vs, b0)
    t_gre, _ = _timed(gre_signal, ph, seed=0)
    n = int(np.prod(shape))
    print(
        f"{shape!s:>16} {vs!s:>18} {n / 1e6:6.2f} M | FFT {fft_s:6.2f} s | phantom {t_ph:6.2f} s "
        f"({t_ph / fft_s:5.1f} FFT) | local field {t_field:6.2f} s ({t_field / fft_s:4.1f} FFT) | "
        f"GRE {t_gre:6.2f} s ({t_gre / fft_s:4.1f} FFT) | peak RSS {_peak_rss_mb():7.0f} MB"
    )


def bench_sphere_accuracy() -> None:
    """Max/RMS error of the sphere field 1.5-3 radii out, as a fraction of its peak, vs voxel size."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "simulate"))
    from test_forward import analytic_sphere_field, sphere_partial_volume

    for label, b0 in (
        ("axial", (0.0, 0.0, 1.0)),
        ("25 deg", (0.0, np.sin(np.deg2rad(25)), np.cos(np.deg2rad(25)))),
    ):
        for v in (1.0, 0.5):
            vs = np.full(3, v)
            shape = (int(64 / v),) * 3
            center = (np.asarray(shape) - 1) / 2.0 * vs + 0.37
            pv = sphere_partial_volume(shape, vs, center, 8.0, oversample=3)
            field = local_field_ppm(pv, vs, b0)
            expected, r = analytic_sphere_field(shape, vs, center, 8.0, 1.0, b0)
            m = (r >= 12.0) & (r <= 24.0)
            peak = 2.0 / 3.0 / 1.5**3
            err = np.abs(field[m] - expected[m])
            inside = np.abs(field[r <= 4.8]).max()
            print(
                f"sphere a=8 mm, B0 {label:>7}, voxel {v} mm: outside max {err.max() / peak:6.2%} "
                f"RMS {np.sqrt(np.mean(err**2)) / peak:6.2%} of peak; inside max |field| {inside:.4f} chi"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", action="store_true", help="also the paper's 384 x 384 x 90 grid")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  (other processes may share them: compare with the FFT yardstick)")
    grids = [
        ((96, 96, 48), (1.0, 1.0, 2.0)),
        ((192, 192, 45), (0.94, 0.94, 2.0)),
        ((120, 144, 60), (1.0, 1.0, 1.5)),
    ]
    if args.paper:
        grids.append(((384, 384, 90), (0.47, 0.47, 1.0)))
    for shape, vs in grids:
        bench_grid(shape, vs)
    bench_sphere_accuracy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
