"""Benchmark: ``qsm-ms run`` over a small simulated cohort, serial vs ``--jobs 2`` vs a Dask cluster.

Simulates 6 small subjects, then runs the whole study three times on fresh copies, each as the
user would (``qsm-ms run`` in its own process): ``--jobs 1``, ``--jobs 2`` (a pool of worker
processes) and ``--scheduler`` pointing at a Dask ``LocalCluster`` of 2 single-threaded worker
processes started here. Prints the wall times, their ratios to the serial run, the peak resident
memory of a worker (the run's own report) next to the estimate ``--jobs`` is chosen from
(:func:`napari_qsm_ms.cohort.resources.subject_peak_bytes`), and a yardstick measured in the same
run: one complex 3-D FFT of the T2* grid.

Run: ``.venv/bin/python benchmarks/bench_cohort.py [--subjects 6] [--shape 64 64 32] [--quick]``
(``--quick``: TKD, one series, few bootstrap resamples, as the tests use).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_qsm import fft_yardstick  # noqa: E402

from napari_qsm_ms.cohort.resources import available_cores, subject_peak_bytes  # noqa: E402
from napari_qsm_ms.simulate.study import simulate_study  # noqa: E402
from tests.cohort._study import FAST_ARGS  # noqa: E402


def run_cli(study: Path, *args: str) -> tuple[float, float, str]:
    """``qsm-ms run STUDY ARGS`` in a new process: wall time (s), peak worker memory (MB), output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "napari_qsm_ms.cli", "run", str(study), *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        print(out)
        raise SystemExit(f"qsm-ms run {' '.join(args)} failed with exit {proc.returncode}")
    peak = re.search(r"peak memory of a worker: (\d+) MB", out)
    return wall, float(peak.group(1)) if peak else float("nan"), out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--shape", type=int, nargs=3, default=[64, 64, 32])
    parser.add_argument("--quick", action="store_true", help="TKD, one series, few bootstrap resamples")
    args, _ = parser.parse_known_args(argv)
    try:
        from distributed import LocalCluster
    except ImportError:
        print("bench_cohort: distributed is not installed (pip install '.[cluster]'); skipped")
        return 0
    shape = tuple(args.shape)
    print(f"## qsm-ms run: {args.subjects} simulated subjects of {shape} voxels, "
          f"{'quick settings (TKD, FLAIR only)' if args.quick else 'default settings (MEDI-L1, 3 series)'}")
    print(f"cores available: {available_cores()}, load average: {os.getloadavg()[0]:.2f} (shared machine)")
    _, t_fft = fft_yardstick(shape)
    print(f"yardstick: one complex 3-D FFT of {shape}: {t_fft * 1e3:.1f} ms")
    extra = FAST_ARGS if args.quick else []
    with tempfile.TemporaryDirectory(prefix="bench-cohort-") as tmp:
        pristine = Path(tmp) / "pristine"
        t0 = time.perf_counter()
        simulate_study(pristine, args.subjects, seed=1, shape=shape, voxel_size_mm=(1.5, 1.5, 2.0),
                       n_lesions=(3, 2, 1), raw_voxel_mm={"wmn": 2.0, "csfn": 2.0, "flair": 2.0})
        print(f"study simulated in {time.perf_counter() - t0:.1f} s (not timed below)")
        walls = {}
        rows = []

        def one(name: str, *run_args: str) -> None:
            study = Path(tmp) / name
            shutil.copytree(pristine, study)
            load = os.getloadavg()[0]
            wall, peak, out = run_cli(study, *run_args, *extra)
            walls[name] = wall
            steps = sum(float(x) for x in re.findall(r" done in ([0-9.]+) s", out))
            rows.append((name, wall, steps, peak, f"{load:.1f} / {os.getloadavg()[0]:.1f}"))

        one("serial", "--jobs", "1")
        one("jobs2", "--jobs", "2")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster:
            one("dask", "--scheduler", cluster.scheduler_address)
    estimate = subject_peak_bytes(shape[0] * shape[1] * shape[2]) / 1e6
    print("\n| run | wall | serial / this | wall = FFTs | sum of step times | peak memory of a worker "
          "| load average before / after |")
    print("|---|---|---|---|---|---|---|")
    for name, wall, steps, peak, load in rows:
        print(f"| {name} | {wall:.1f} s | {walls['serial'] / wall:.2f} | {wall / t_fft:.0f} | {steps:.1f} s "
              f"| {peak:.0f} MB | {load} |")
    print(f"\nestimated peak per subject used to choose --jobs: {estimate:.0f} MB "
          "(napari_qsm_ms.cohort.resources.subject_peak_bytes)")
    print("wall times include starting the processes (and for dask, the workers importing the package); "
          "the sum of step times is the work as each subject saw it (it grows when processes share cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
