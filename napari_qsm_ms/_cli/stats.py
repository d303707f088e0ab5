"""``qsm-ms stats STUDY [--out DIR]``: lesion table, the paper's tests, model, figures, report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..progress import TextProgress


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stats",
        help="relative susceptibility per lesion, t-tests (Table 3), mixed model, figures, HTML report",
        description="Compute the relative susceptibility of every lesion part from the saved Chimap and ROI "
        "files, the paper's six one-sample t-tests (Bonferroni over six), Welch WM-vs-cortical test, a "
        "mixed-effects model and subject-bootstrap CIs; write lesions.tsv, subjects.tsv, summary.tsv, "
        "model.tsv, bootstrap.tsv, inputs.tsv (SHA-256), figures (PNG+SVG) and report.html.",
    )
    p.add_argument(
        "study", metavar="STUDY", type=Path, help="study folder in the layout of docs/study_layout.md"
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=None,
        help="output folder, replaced as a whole (default: STUDY/derivatives/qsm-ms/stats)",
    )
    p.add_argument(
        "--subject",
        metavar="LABEL",
        nargs="+",
        default=None,
        help="subject label(s), with or without 'sub-' (default: every sub-* folder)",
    )
    p.add_argument(
        "--bootstrap",
        metavar="N",
        type=int,
        default=2000,
        help="bootstrap resamples of subjects (count; default 2000)",
    )
    p.add_argument("--seed", metavar="S", type=int, default=0, help="bootstrap random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ParameterError
    from ..stats.study import run_study_stats

    if args.bootstrap < 1:
        raise ParameterError(f"--bootstrap must be >= 1, got {args.bootstrap}")
    progress = None if args.quiet else TextProgress("stats ")
    try:
        result = run_study_stats(
            args.study, args.out, progress, subjects=args.subject, n_resamples=args.bootstrap, seed=args.seed
        )
    finally:
        if progress is not None:
            progress.close()
    for note in result.notes:
        print(f"qsm-ms stats: warning: {note}", file=sys.stderr)
    s = result.summary
    print(
        f"{len(result.subjects)} subjects, {len(result.lesions)} lesion parts, "
        f"{int(result.lesions['included'].astype(bool).sum()) if len(result.lesions) else 0} included"
    )
    for r in s.itertuples():
        if r.level in ("lesion", "subject") and r.set in ("wm", "cortical", "mixed_wm", "mixed_cortical"):
            print(
                f"  {r.set:15s} {r.level:8s} n={r.n:4d} mean={r.mean_ppm:+.4f} ppm sd={r.sd_ppm:.4f} "
                f"t={r.t:+.2f} p={r.p:.3g} p_bonf={r.p_bonferroni:.3g}{' *' if r.significant else ''}"
            )
    print(f"written {result.parameters['out_dir']}")
    return 0
