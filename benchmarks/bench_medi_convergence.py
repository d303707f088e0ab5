"""MEDI's solver: how close each CG schedule gets to the MEDI toolbox's solution and to the
minimiser, and what one Gauss-Newton step costs (issue 13, builds 7 and 8).

Run: ``.venv/bin/python benchmarks/bench_medi_convergence.py [--skip-convergence] [--skip-speed]
[--tight] [--quick]``

Convergence: phantoms of ``napari_qsm_ms.simulate`` (7 T, TE 17.7 ms, SNR 50), MEDI's input is the
true local field plus the phase noise of the simulated GRE signal (no unwrapping or background
removal, so only the inversion is compared), inside the brain mask eroded by 2.5 mm, with the
simulated magnitude (edge prior, noise weights). At the toolbox's default weight (lambda 1000 in
its units) it runs

* the toolbox's schedule re-implemented here (no preconditioner, CG to relative residual 0.01 or
  100 iterations, Gauss-Newton until ``||dx|| / ||x|| < 0.1`` or 10 steps), which the issue found
  reproduces the toolbox under Octave to 1.5-3 % NRMSE;
* the former default's schedule (preconditioned CG cut at 15 iterations, with this version's
  preconditioner);
* our default solver (:data:`~napari_qsm_ms.qsm.defaults` schedule);
* our default as it runs with a magnitude (the prior inside the mask only, ``medi_prior_region``
  ``auto``): a different objective, so not comparable with the toolbox's map; its truth NRMSE and HFEN
  are the figures to compare;
* with ``--tight``, a tightly converged solve (CG to 1e-3, relative update 2e-3), the minimiser
  within ~0.5 %,

and prints per Gauss-Newton step the CG iterations, the final relative residual, the relative
update and MEDI's objective, then the NRMSE of each map against each other one, and NRMSE / HFEN
against the true chi. Geometries: the issue's 78 x 98 x 86 at 2 mm, and a 20 degree oblique slab
96 x 96 x 48 at 1 x 1 x 2 mm.

Speed: the paper's 384 x 384 x 90 at 0.47 x 0.47 x 1 mm (simulated as ``bench_qsm.py`` does),
MEDI alone at the fixed weight :data:`~napari_qsm_ms.qsm.defaults.MEDI_LAMBDA_FIXED` with the
default schedule: wall time, FFT count, Gauss-Newton and CG steps, the wall time as a multiple of
one complex 3-D FFT of the MEDI grid measured in the same run, peak memory. Figures are printed,
never asserted; the machine may be shared, hence the yardstick.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc

import numpy as np
import scipy.fft as sfft

from _common import compile_qsm_kernels  # benchmarks/ is on sys.path when run as a script
from napari_qsm_ms.io.geometry import b0_direction_voxel
from napari_qsm_ms.qsm import defaults
from napari_qsm_ms.qsm._fft import FFT_COUNTER, workers
from napari_qsm_ms.qsm.dipole import ppm_per_radian
from napari_qsm_ms.qsm.inversion import DEFAULT_PAD_MM, _grid, medi_l1
from napari_qsm_ms.qsm.mask import erode_mask_mm
from napari_qsm_ms.qsm.metrics import hfen_percent, nrmse_percent
from napari_qsm_ms.simulate.forward import field_to_phase_rad, gre_signal
from napari_qsm_ms.simulate.phantom import make_phantom

TE_S, B0_T, SNR = 0.0177, 7.0, 50.0
# The toolbox's formulation puts the prior on the whole grid: every schedule compared with it does too.
TOOLBOX = dict(precondition=False, cg_max_iter=100, cg_tol=0.01, tol_norm_ratio=0.1, max_iter=10,
               prior_region="grid")
FORMER_DEFAULT = dict(precondition=True, cg_max_iter=15, cg_tol=0.01, tol_norm_ratio=0.1, max_iter=10,
                      prior_region="grid")
DEFAULT_SOLVER = dict(prior_region="grid")
TIGHT = dict(precondition=True, cg_max_iter=300, cg_tol=1e-3, tol_norm_ratio=2e-3, max_iter=30,
             prior_region="grid")
GEOMETRIES = {
    "issue 2 mm 78x98x86": dict(shape=(78, 98, 86), voxel_size_mm=(2.0, 2.0, 2.0)),
    "oblique 20 deg 96x96x48 at 1x1x2 mm": dict(shape=(96, 96, 48), voxel_size_mm=(1.0, 1.0, 2.0), oblique_deg=20.0),
}


def simulated_input(shape, voxel_size_mm, oblique_deg=0.0, seed=0):
    """Local field (ppm, true + the GRE signal's phase noise), eroded mask, magnitude, true chi, B0."""
    ph = make_phantom(shape, voxel_size_mm, seed=seed, oblique_deg=oblique_deg)
    sig = gre_signal(ph, te_s=TE_S, b0_t=B0_T, snr=SNR, seed=seed)
    clean = field_to_phase_rad(sig.total_field_ppm, TE_S, B0_T) + np.float32(sig.phase_offset_rad)
    noise_rad = np.angle(np.exp(1j * (sig.phase_rad - clean)))
    mask = erode_mask_mm(ph.brain_mask, voxel_size_mm, defaults.ERODE_MM)
    field = np.where(mask, sig.local_field_ppm + noise_rad * ppm_per_radian(TE_S, B0_T), 0).astype(np.float32)
    return field, mask, sig.magnitude, ph.chi_ppm, b0_direction_voxel(ph.affine)


def fft_yardstick(shape, repeats=5):
    """Seconds of one complex 3-D FFT of ``shape`` (complex64, all workers), median of ``repeats``."""
    xc = np.random.default_rng(0).standard_normal(shape).astype(np.complex64)
    sfft.fftn(xc, workers=workers())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sfft.fftn(xc, workers=workers())
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def run_schedule(name, data, lam, vs, schedule):
    field, mask, mag, chi, b0 = data
    FFT_COUNTER.reset()
    trace, info = [], []
    t = time.perf_counter()
    out = medi_l1(field, mask, mag, vs, b0, ppm_per_rad=ppm_per_radian(TE_S, B0_T), lam=lam, info=info,
                  trace=trace, **schedule)
    wall = time.perf_counter() - t
    print(f"\n{name}: {wall:.1f} s, {FFT_COUNTER.count} FFTs; truth NRMSE {nrmse_percent(out, chi, mask):.1f} %, "
          f"HFEN {hfen_percent(out, chi, mask):.1f} %")
    for i, s in enumerate(trace, 1):
        print(f"  GN {i}: CG {s['cg_iterations']:3d} iterations, residual {s['cg_residual']:.3g}, "
              f"update {s['update']:.3g}, objective {s['objective']:.6g}")
    return out, wall


def bench_convergence(tight: bool, quick: bool):
    for gname, geo in GEOMETRIES.items():
        vs = geo["voxel_size_mm"]
        data = simulated_input(**geo)
        mask = data[1]
        lam = 1000.0 / ppm_per_radian(TE_S, B0_T)  # the toolbox's default weight in our units
        grid = _grid(mask, vs, DEFAULT_PAD_MM).shape
        print(f"\n## {gname}: {int(mask.sum())} mask voxels, MEDI grid {grid}, lambda {lam:.4g} "
              f"(toolbox 1000); one complex FFT of the grid {fft_yardstick(grid) * 1e3:.1f} ms "
              f"(load average {os.getloadavg()[0]:.1f})")
        schedules = {"toolbox schedule": TOOLBOX, "15-iteration cap (former schedule)": FORMER_DEFAULT,
                     "default solver": DEFAULT_SOLVER, "default (prior inside the mask)": {}}
        if tight:
            schedules["tight (minimiser)"] = TIGHT
        maps = {}
        for name, sch in schedules.items():
            maps[name], _ = run_schedule(name, data, lam, vs, sch)
        names = list(maps)
        print("\nNRMSE % of row against column (demeaned, in the mask):")
        print(" " * 26 + "".join(f"{n[:16]:>18s}" for n in names))
        for a in names:
            print(f"{a[:26]:26s}" + "".join(f"{nrmse_percent(maps[a], maps[b], mask):18.2f}" for b in names))
        if quick:
            break


def bench_speed():
    shape, vs = (384, 384, 90), (0.47, 0.47, 1.0)
    print(f"\n## Speed: MEDI alone on {shape} at {vs} mm, lambda {defaults.MEDI_LAMBDA_FIXED:g} (fixed), default "
          f"schedule; cores {workers()}, load average {os.getloadavg()[0]:.2f}")
    data = simulated_input(shape, vs)
    field, mask, mag, chi, b0 = data
    grid = _grid(mask, vs, DEFAULT_PAD_MM).shape
    FFT_COUNTER.reset()
    info = []
    tracemalloc.start()
    t = time.perf_counter()
    out = medi_l1(field, mask, mag, vs, b0, ppm_per_rad=ppm_per_radian(TE_S, B0_T), lam=defaults.MEDI_LAMBDA_FIXED,
                  info=info)
    wall = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t_fft = fft_yardstick(grid)
    i = info[0]
    print(f"MEDI grid {grid}: {wall:.1f} s wall = {wall / t_fft:.0f} complex FFT-times (one: {t_fft * 1e3:.0f} ms, "
          f"load average now {os.getloadavg()[0]:.2f})")
    print(f"FFTs {FFT_COUNTER.count}; Gauss-Newton steps {i.iterations} (final update {i.final_change:.3g}), "
          f"CG iterations {i.cg_iterations}, residuals {[f'{r:.3g}' for r in i.cg_residuals]}")
    print(f"truth NRMSE {nrmse_percent(out, chi, mask):.1f} %; peak traced memory {peak / 1e9:.2f} GB, process max RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip-convergence", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--tight", action="store_true", help="also run to tight convergence (slow: minutes)")
    p.add_argument("--quick", action="store_true", help="first geometry only")
    args = p.parse_args(argv)
    compile_qsm_kernels()
    if not args.skip_convergence:
        bench_convergence(args.tight, args.quick)
    if not args.skip_speed:
        bench_speed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
