"""QSM benchmarks: speed and memory of the whole pipeline, and accuracy on simulated phantoms.

Run: ``.venv/bin/python benchmarks/bench_qsm.py [--quick] [--skip-speed] [--skip-accuracy]``

Speed (issue 3): the paper's T2* matrix, 384x384x90 at 0.47x0.47x1 mm, whole pipeline with
MEDI-L1 (mask, region-growing unwrapping, PDF, 2.5 mm erosion, MEDI): wall time, the same time as a
multiple of one 3-D FFT of the padded MEDI grid measured in this run (complex and real FFT), the
number of FFTs performed, and peak memory (tracemalloc peak of the reconstruction and the
process's max RSS), and the same times as multiples of one complex FFT of the image grid. Targets
(issue 13, build 8): <= 45 s on 2 cores, <= 3 GB.

Accuracy: phantoms of ``napari_qsm_ms.simulate`` with known chi. Demeaned NRMSE (%), HFEN (%)
and XSIM inside the QSM mask, (a) from the true local field with each inversion, (b) end to end
from the wrapped noisy phase. Lesion-minus-reference susceptibility (lesion minus a ring of
adjacent same tissue, 1-3 mm from the lesion) compared with the same measure on the true chi.
Targets: from the true local field MEDI < 40 %, best < 30 %; end to end < 60 %; lesion contrast
median absolute error < 0.003 ppm with the right sign for >= 95 % of lesions.

Figures are printed, never asserted. The machine is shared: the FFT yardstick is measured in the
same run so that ratios stay meaningful under load.
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
from scipy import ndimage as ndi

from _common import compile_qsm_kernels, timeit  # benchmarks/ is on sys.path when run as a script
from napari_qsm_ms.io.geometry import b0_direction_voxel
from napari_qsm_ms.qsm import defaults
from napari_qsm_ms.qsm._fft import FFT_COUNTER, workers
from napari_qsm_ms.qsm.dipole import ppm_per_radian
from napari_qsm_ms.qsm.inversion import DEFAULT_PAD_MM, _grid, medi_l1, tkd, tv_admm
from napari_qsm_ms.qsm.mask import erode_mask_mm
from napari_qsm_ms.qsm.metrics import hfen_percent as hfen
from napari_qsm_ms.qsm.metrics import nrmse_percent as nrmse
from napari_qsm_ms.qsm.metrics import xsim
from napari_qsm_ms.qsm.pipeline import DEFAULT_MEDI_LAMBDA, reconstruct
from napari_qsm_ms.simulate.forward import gre_signal
from napari_qsm_ms.simulate.phantom import make_phantom

TE_S, B0_T = 0.0177, 7.0


# ---- metrics (napari_qsm_ms.qsm.metrics) ----------------------------------------------------------
def lesion_contrasts(chi, ph, mask, gap_mm=1.0, ring_mm=3.0):
    """Lesion (or lesion part) minus a ring of the same host tissue; rows (id, part, est)."""
    vs = ph.voxel_size_mm
    rows = []
    any_lesion = ph.lesion_ids > 0
    for lid in np.unique(ph.lesion_ids[ph.lesion_ids > 0]):
        les = ph.lesion_ids == lid
        dist = ndi.distance_transform_edt(~les, sampling=vs)
        for part, code in (("wm", 3), ("cortical", 2)):
            roi = les & (ph.tissue == code) & mask
            if roi.sum() < 3:
                continue
            ring = (dist > gap_mm) & (dist <= ring_mm) & (ph.tissue == code) & ~any_lesion & ~ph.vessels & mask
            if ring.sum() < 5:
                continue
            rows.append((int(lid), part, float(chi[roi].mean() - chi[ring].mean()), roi, ring))
    return rows


# ---- speed --------------------------------------------------------------------------------------
def fft_yardstick(shape, repeats=7):
    """Seconds of one real and one complex 3-D FFT of ``shape`` with scipy.fft (all workers), each the
    median of ``repeats`` calls after a warm-up call (a mean let one slow call move the yardstick)."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    xc = x.astype(np.complex64)

    def median_seconds(func, arr):
        func(arr, workers=workers())  # warm-up: plan and caches
        return timeit(lambda: func(arr, workers=workers()), repeat=repeats)

    return median_seconds(sfft.rfftn, x), median_seconds(sfft.fftn, xc)


def ducc_yardstick(shape, repeats=5):
    """One complex 3-D FFT of ``shape`` with ducc0, the library the pipeline's FFTs use (the figures
    above keep scipy.fft's complex FFT as the yardstick, as every earlier run of this benchmark)."""
    import ducc0

    xc = np.random.default_rng(0).standard_normal(shape).astype(np.complex64)
    out = np.empty_like(xc)
    ducc0.fft.c2c(xc, axes=(0, 1, 2), nthreads=workers(), out=out)
    t = time.perf_counter()
    for _ in range(repeats):
        ducc0.fft.c2c(xc, axes=(0, 1, 2), nthreads=workers(), out=out)
    return (time.perf_counter() - t) / repeats


def bench_speed(shape, voxel_size_mm, bfrs=("pdf", "vsharp")):
    print(f"\n## Speed: {shape} at {voxel_size_mm} mm, MEDI-L1 + PDF, TE {TE_S * 1e3:g} ms, {B0_T:g} T")
    print(f"cores available: {workers()}, load average: {os.getloadavg()[0]:.2f} (shared machine)")
    t = time.perf_counter()
    ph = make_phantom(shape, voxel_size_mm, seed=0)
    sig = gre_signal(ph, seed=0, te_s=TE_S, b0_t=B0_T)
    print(f"phantom + signal simulated in {time.perf_counter() - t:.1f} s (not part of the timing)")
    mag, phase, aff = sig.magnitude, sig.phase_rad, ph.affine
    del ph, sig
    walls = {}
    for bfr in bfrs:
        t_image_before = fft_yardstick(tuple(shape))[1]
        FFT_COUNTER.reset()
        tracemalloc.start()
        t0 = time.perf_counter()
        r = reconstruct(mag, phase, affine=aff, te_s=TE_S, b0_t=B0_T, bfr=bfr, keep_intermediates=False)
        wall = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        grid = _grid(r.mask, voxel_size_mm, DEFAULT_PAD_MM).shape
        t_real, t_complex = fft_yardstick(grid)
        t_image_after = fft_yardstick(tuple(shape))[1]
        t_image = min(t_image_before, t_image_after)  # the faster reading: the larger, more cautious multiple
        maxrss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"\n### MEDI-L1 after {bfr.upper()} (load average now {os.getloadavg()[0]:.2f})")
        print(f"MEDI grid (eroded-mask box + {DEFAULT_PAD_MM:g} mm padding, next_fast_len): {grid}")
        print(f"whole pipeline: {wall:.1f} s  (target <= 45 s)  stages: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in r.timings_s.items() if k != "total"))
        print(f"yardstick: one complex 3-D FFT of {grid}: {t_complex * 1e3:.0f} ms, one real FFT: "
              f"{t_real * 1e3:.0f} ms")
        print(f"pipeline = {wall / t_complex:.0f} complex FFTs = {wall / t_real:.0f} real FFTs of that size")
        print(f"yardstick of the image grid: one complex 3-D FFT of {tuple(shape)}: {t_image * 1e3:.0f} ms "
              f"(the faster of {t_image_before * 1e3:.0f} ms before and {t_image_after * 1e3:.0f} ms after "
              "the run); "
              f"pipeline = {wall / t_image:.0f} of them; stages in them: "
              + ", ".join(f"{k} {v / t_image:.0f}" for k, v in r.timings_s.items() if k != "total"))
        t_ducc = ducc_yardstick(tuple(shape))
        print(f"the same yardstick with ducc0 (the pipeline's FFT library): {t_ducc * 1e3:.0f} ms; "
              f"pipeline = {wall / t_ducc:.0f} of them")
        p = r.parameters
        if "pdf_iterations" in p:
            print(f"PDF: grid coarsened by {p['pdf_coarsening']}, {p['pdf_iterations']} CG iterations, relative "
                  f"residual {p['pdf_relative_residual']:.4f} (tol {p['pdf_tol']:g}, converged {p['pdf_converged']})")
        print(f"FFTs performed: {r.fft_count} (real/DCT 3-D transforms; by shape: "
              + ", ".join(f"{s}: {n}" for s, n in sorted(FFT_COUNTER.shapes.items(), key=lambda kv: -kv[1])) + ")")
        print(f"peak traced memory of the reconstruction: {peak / 1e9:.2f} GB; process max RSS: {maxrss_gb:.2f} GB "
              "(target < 3 GB)")
        walls[bfr] = wall
    return walls


# ---- accuracy -----------------------------------------------------------------------------------
def bench_accuracy(shape, voxel_size_mm, seeds, n_lesions):
    print(f"\n## Accuracy: phantoms {shape} at {voxel_size_mm} mm, seeds {list(seeds)}, "
          f"lesions (wm, cortical, mixed) = {n_lesions}, SNR 40, TE {TE_S * 1e3:g} ms, {B0_T:g} T")
    table = {}
    lesion_rows = []
    for seed in seeds:
        ph = make_phantom(shape, voxel_size_mm, seed=seed, n_lesions=n_lesions)
        sig = gre_signal(ph, seed=seed, te_s=TE_S, b0_t=B0_T)
        vs = ph.voxel_size_mm
        b0 = b0_direction_voxel(ph.affine)
        mask = erode_mask_mm(ph.brain_mask, vs, 2.5)
        local = np.where(mask, sig.local_field_ppm, 0).astype(np.float32)
        ppr = ppm_per_radian(TE_S, B0_T)
        runs = {
            "local field -> TKD": lambda: (tkd(local, mask, vs, b0), mask),
            "local field -> TV-ADMM": lambda: (tv_admm(local, mask, vs, b0), mask),
            "local field -> MEDI-L1": lambda: (medi_l1(local, mask, sig.magnitude, vs, b0, ppm_per_rad=ppr,
                                                       lam=DEFAULT_MEDI_LAMBDA), mask),
        }
        for bfr in ("pdf", "vsharp"):
            for inv in ("medi", "tv", "tkd"):
                def run(bfr=bfr, inv=inv):
                    r = reconstruct(sig.magnitude, sig.phase_rad, affine=ph.affine, te_s=TE_S, b0_t=B0_T, bfr=bfr,
                                    inversion=inv, keep_intermediates=False)
                    return r.chi_ppm, r.mask & ph.brain_mask
                runs[f"wrapped phase -> {bfr.upper()} -> {inv.upper()}"] = run
        for name, fn in runs.items():
            t = time.perf_counter()
            chi, m = fn()
            dt = time.perf_counter() - t
            rows = lesion_contrasts(chi, ph, m)
            truth_rows = {(lid, part): est for lid, part, est, *_ in lesion_contrasts(ph.chi_ppm, ph, m)}
            errs = [(est - truth_rows[(lid, part)], est, truth_rows[(lid, part)]) for lid, part, est, *_ in rows
                    if (lid, part) in truth_rows]
            table.setdefault(name, []).append((nrmse(chi, ph.chi_ppm, m), hfen(chi, ph.chi_ppm, m),
                                               xsim(chi, ph.chi_ppm, m), dt, errs))
            print(f"  seed {seed}: {name}: NRMSE {table[name][-1][0]:.1f} %, {dt:.1f} s", flush=True)
    print("\n| method | NRMSE % | HFEN % | XSIM | lesion contrast median abs err (ppm) | right sign | n | time s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, vals in table.items():
        errs = [e for v in vals for e in v[4]]
        e = np.array([x[0] for x in errs]) if errs else np.array([np.nan])
        sign_ok = np.mean([np.sign(est) == np.sign(tr) for _, est, tr in errs]) if errs else np.nan
        print(f"| {name} | {np.mean([v[0] for v in vals]):.1f} | {np.mean([v[1] for v in vals]):.1f} | "
              f"{np.mean([v[2] for v in vals]):.3f} | {np.median(np.abs(e)):.4f} | {100 * sign_ok:.0f} % | "
              f"{len(errs)} | {np.mean([v[3] for v in vals]):.1f} |")
    return table


GEOMETRIES = {
    "0.94": dict(shape=(192, 192, 90), voxel_size_mm=(0.94, 0.94, 1.0)),
    "0.47-slab": dict(shape=(256, 256, 64), voxel_size_mm=(0.47, 0.47, 1.0)),
    "oblique": dict(shape=(192, 192, 72), voxel_size_mm=(0.94, 0.94, 1.0), oblique_deg=20.0),
}
"""Phantom geometries of the default-pipeline run: the accuracy grid, the paper's 0.47 x 0.47 x 1 mm
voxels on a slab (a smaller matrix than the paper's 384 x 384 x 90, for time), an oblique slab."""


def bench_default(geometries, seeds, n_lesions=(16, 8, 4), medi_lambda=None):
    """The default pipeline end to end from the wrapped phase on each geometry and seed (with MEDI's
    lambda rule or value ``medi_lambda`` instead of the default when given)."""
    extra = {} if medi_lambda is None else dict(medi_lambda=medi_lambda)
    print(f"\n## Default pipeline end to end, geometries {list(geometries)}, seeds {list(seeds)}"
          + (f", MEDI lambda {medi_lambda}" if extra else ""))
    print("| geometry | seed | NRMSE % | HFEN % | XSIM | lesion contrast median abs err (ppm) | right sign | n | "
          "lambda (how) | FFTs | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    summary = []
    for geo in geometries:
        spec = dict(GEOMETRIES[geo])
        shape, vs = spec.pop("shape"), spec.pop("voxel_size_mm")
        for seed in seeds:
            ph = make_phantom(shape, vs, seed=seed, n_lesions=n_lesions, **spec)
            sig = gre_signal(ph, seed=seed, te_s=TE_S, b0_t=B0_T)
            FFT_COUNTER.reset()
            t = time.perf_counter()
            r = reconstruct(sig.magnitude, sig.phase_rad, affine=ph.affine, te_s=TE_S, b0_t=B0_T,
                            keep_intermediates=False, **extra)
            dt = time.perf_counter() - t
            m = r.mask & ph.brain_mask
            truth = {(lid, part): est for lid, part, est, *_ in lesion_contrasts(ph.chi_ppm, ph, m)}
            errs = [(est - truth[(lid, part)], est, truth[(lid, part)])
                    for lid, part, est, *_ in lesion_contrasts(r.chi_ppm, ph, m) if (lid, part) in truth]
            e = np.abs([x[0] for x in errs]) if errs else np.array([np.nan])
            sign_ok = np.mean([np.sign(a) == np.sign(b) for _, a, b in errs]) if errs else np.nan
            p = r.parameters
            lam = p.get("medi_lam", p.get("tv_lam"))
            how = p.get("medi_lambda_choice", p.get("tv_lambda_choice", "-"))
            row = (nrmse(r.chi_ppm, ph.chi_ppm, m), hfen(r.chi_ppm, ph.chi_ppm, m), xsim(r.chi_ppm, ph.chi_ppm, m))
            summary.append(row)
            print(f"| {geo} | {seed} | {row[0]:.1f} | {row[1]:.1f} | {row[2]:.3f} | {np.median(e):.4f} | "
                  f"{100 * sign_ok:.0f} % | {len(errs)} | {lam:.4g} ({how}) | {r.fft_count} | {dt:.0f} |", flush=True)
    print(f"mean NRMSE {np.mean([s[0] for s in summary]):.1f} %, HFEN {np.mean([s[1] for s in summary]):.1f} % "
          "(target NRMSE <= 50 %)")


def bench_stages(shape, voxel_size_mm, seed, n_lesions):
    """Stage-by-stage error against the simulator's truth (one phantom).

    Field NRMSE (demeaned, in the 2.5 mm eroded automatic mask, against the true local field) of
    background removal applied to the pure local field, the true total field, the Laplacian
    unwrapped phase and the region-growing unwrapped phase; then MEDI's chi NRMSE from each. Data
    weights and V-SHARP's region as in the pipeline (:func:`~napari_qsm_ms.qsm.pipeline.data_region`).
    """
    from napari_qsm_ms.qsm.bfr import pdf, vsharp
    from napari_qsm_ms.qsm.mask import brain_mask
    from napari_qsm_ms.qsm.pipeline import data_region, vsharp_region
    from napari_qsm_ms.qsm.region_unwrap import unwrap_region_growing
    from napari_qsm_ms.qsm.unwrap import unwrap_laplacian

    print(f"\n## Stages: phantom {shape} at {voxel_size_mm} mm, seed {seed}")
    ph = make_phantom(shape, voxel_size_mm, seed=seed, n_lesions=n_lesions)
    sig = gre_signal(ph, seed=seed, te_s=TE_S, b0_t=B0_T)
    vs, b0, ppr = ph.voxel_size_mm, b0_direction_voxel(ph.affine), ppm_per_radian(TE_S, B0_T)
    mask = brain_mask(sig.magnitude, vs)
    ero = erode_mask_mm(mask, vs, 2.5)
    trusted = data_region(sig.phase_rad, mask)
    print(f"  data region (largest reliable part of the mask): {100 * trusted.sum() / mask.sum():.1f} % of the mask")
    n_std = (1 / np.maximum(sig.magnitude, 1e-30)).astype(np.float32)
    n_std[~trusted] = np.inf
    local = sig.local_field_ppm
    timed = {}

    def unwrapped(name, fn):
        t = time.perf_counter()
        out = fn() * np.float32(ppr)
        timed[name] = time.perf_counter() - t
        return out

    fields = {
        "pure local field": np.where(mask, local, 0).astype(np.float32),
        "true total field": sig.total_field_ppm,
        "Laplacian unwrapped": unwrapped("Laplacian", lambda: unwrap_laplacian(sig.phase_rad, vs)),
        "region-growing unwrapped": unwrapped(
            "region growing", lambda: unwrap_region_growing(sig.phase_rad, mask, sig.magnitude)),
    }
    print("  unwrapping time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timed.items()))
    for name in ("Laplacian unwrapped", "region-growing unwrapped"):
        e = (fields[name] - sig.total_field_ppm)[trusted]
        print(f"  {name}: voxels of the data region off by > pi: "
              f"{100 * np.mean(np.abs(e - np.median(e)) / ppr > np.pi):.3f} %, "
              f"error rms / local field rms {np.std(e) / np.std(local[trusted]):.2f}")
    print("| input | BFR | local field NRMSE % | -> MEDI chi NRMSE % |")
    print("|---|---|---|---|")
    for name, f in fields.items():
        for bfr in ("PDF", "V-SHARP"):
            if bfr == "PDF":
                loc, m = pdf(f, mask, vs, b0, n_std=n_std), ero
            else:
                loc, bm = vsharp(f, vsharp_region(mask, trusted), vs)
                m = ero & bm
            chi = medi_l1(np.where(m, loc, 0).astype(np.float32), m, sig.magnitude, vs, b0, ppm_per_rad=ppr,
                          lam=DEFAULT_MEDI_LAMBDA, n_std=n_std)
            ok = m & trusted
            print(f"| {name} | {bfr} | {nrmse(loc, local, ok):.1f} | {nrmse(chi, ph.chi_ppm, m & ph.brain_mask):.1f} |",
                  flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small grids only (a smoke run)")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--speed-default-only", action="store_true", help="speed of the default pipeline (PDF) only")
    p.add_argument("--stages", action="store_true", help="stage-by-stage errors against the truth only")
    p.add_argument("--seeds", type=int, nargs="+", default=[1], help="phantom seeds of the accuracy run (default: 1)")
    p.add_argument("--default-pipeline", nargs="*", metavar="GEOMETRY", default=None,
                   help=f"only the default pipeline end to end on these geometries ({', '.join(GEOMETRIES)}; "
                   "default: all) for --seeds")
    p.add_argument("--lambda", dest="medi_lambda", type=defaults.parse_lambda, default=None,
                   help="with --default-pipeline: MEDI's lambda rule (auto, auto-noise) or value instead of the default")
    args = p.parse_args(argv)
    print(f"scipy.fft workers: {workers()}; numpy {np.__version__}")
    compile_qsm_kernels()
    if args.default_pipeline is not None:
        bench_default(args.default_pipeline or list(GEOMETRIES), args.seeds, medi_lambda=args.medi_lambda)
        return 0
    if args.stages:
        bench_stages((192, 192, 90), (0.94, 0.94, 1.0), seed=1, n_lesions=(16, 8, 4))
        return 0
    if not args.skip_speed:
        if args.quick:
            bench_speed((192, 192, 45), (0.94, 0.94, 2.0))
        else:
            bench_speed((384, 384, 90), (0.47, 0.47, 1.0), bfrs=("pdf",) if args.speed_default_only else
                        ("pdf", "vsharp"))
    if not args.skip_accuracy:
        if args.quick:
            bench_accuracy((96, 96, 48), (1.0, 1.0, 2.0), seeds=(1,), n_lesions=(6, 3, 2))
        else:
            bench_accuracy((192, 192, 90), (0.94, 0.94, 1.0), seeds=tuple(args.seeds), n_lesions=(16, 8, 4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
