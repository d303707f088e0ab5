"""Headless end-to-end demo: the whole analysis of the paper on a copy of a study.

``python -m napari_qsm_ms.demo sample_data/study --out out/demo`` copies the study (the shipped
sample is never modified) and runs, through the same ``qsm-ms`` commands a user would type:
QSM reconstruction, coregistration, reference ROIs, consensus of the shipped rater votes, and the
statistics with figures and the HTML report. It prints where every output is.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from .cli import main as qsm_ms

STEPS = [
    ("QSM reconstruction (MEDI-L1)", ["recon", "{study}"]),
    ("rigid coregistration onto the T2* grid", ["coregister", "{study}"]),
    ("reference ROIs", ["rois", "{study}"]),
    ("rater consensus and agreement", ["consensus", "{study}"]),
    ("statistics, figures and report", ["stats", "{study}"]),
]


def run_demo(source: Path, out: Path) -> int:
    """Copy ``source`` to ``out/study`` and run every step; return the first non-zero status."""
    study = out / "study"
    if study.exists():
        shutil.rmtree(study)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, study, ignore=shutil.ignore_patterns(".autosave"))
    print(f"demo: working on a copy of {source} in {study}")
    t_start = time.perf_counter()
    for title, argv in STEPS:
        args = [a.format(study=study) for a in argv]
        print(f"\n== {title}: qsm-ms {' '.join(args)}", flush=True)
        t0 = time.perf_counter()
        status = qsm_ms(args)
        print(f"   ({time.perf_counter() - t0:.1f} s, exit {status})", flush=True)
        if status != 0:
            print(f"demo: step '{title}' failed (exit {status})", file=sys.stderr)
            return status
    deriv = study / "derivatives" / "qsm-ms"
    print(f"\ndemo finished in {time.perf_counter() - t_start:.0f} s. Outputs:")
    print(f"  derivatives (QSM, masks, coregistered series, ROIs, votes): {deriv}")
    print(f"  per-lesion table:   {deriv / 'stats' / 'lesions.tsv'}")
    print(f"  Table 3 (summary):  {deriv / 'stats' / 'summary.tsv'}")
    print(f"  report:             {deriv / 'stats' / 'report.html'}")
    print(f"  agreement:          {deriv / 'agreement.tsv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m napari_qsm_ms.demo", description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="study folder to analyse (copied, never modified)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    args = parser.parse_args(argv)
    if not args.study.is_dir():
        print(f"demo: error: {args.study}: study folder not found", file=sys.stderr)
        return 2
    return run_demo(args.study, args.out)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
