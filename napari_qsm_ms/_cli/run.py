"""``qsm-ms run STUDY``: every subject through recon, coregister, consensus and rois, then the
study's agreement and statistics; up-to-date steps are skipped (docs/cohort.md).

A failing subject is reported on one line on stderr and the others go on; a summary line ends the
run and the exit status is 2 if anything failed (as ``qsm-ms coregister``). ``--fail-fast``
stops at the first failure instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ParameterError
from ._common import add_study_arguments


def register(subparsers) -> None:
    from ..cohort.steps import ALL_STEPS

    p = subparsers.add_parser(
        "run",
        help="the whole study: recon, coregister, consensus, rois per subject, then agreement and stats; "
        "skips what is up to date; parallel here or on a Dask cluster",
        description="Run every subject through QSM (recon), coregistration, the per-subject consensus of "
        "the raters' votes and the reference ROIs (each step whose inputs exist), then the study's "
        "agreement and statistics. A step is skipped when its record (sub-*_desc-<step>_record.json) "
        "shows outputs made from the same inputs (SHA-256) and parameters, so a re-run after a crash or a "
        "parameter change does only what is needed. Subjects run in parallel on this machine (--jobs) or "
        "on a running Dask cluster (--scheduler). A failing subject is reported on one line and the "
        "others go on; exit status 2 if anything failed. See docs/cohort.md.",
    )
    add_study_arguments(p)
    p.add_argument("--only", nargs="+", choices=ALL_STEPS, metavar="STEP", default=None,
                   help=f"run only these steps ({', '.join(ALL_STEPS)}; default: all)")
    p.add_argument("--force", action="store_true",
                   help="run the chosen steps even when their outputs are up to date (default: off)")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop at the first failing subject "
                   "(default: off: report it, go on, exit 2 at the end)")
    p.add_argument("--plan", action="store_true",
                   help="only print the state of every step (done, edited, out of date, missing, blocked)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="STEP.NAME=VALUE",
                   help="a parameter of a step, named as in the Python function the step calls, value as "
                   "JSON or plain text, e.g. --set recon.inversion=tkd --set stats.n_resamples=500 "
                   "(repeatable; default: the functions' defaults, as the single-step commands)")
    p.add_argument("--params", type=Path, default=None, metavar="FILE",
                   help='JSON file {"recon": {"inversion": "tkd"}, ...}; --set wins (default: none)')
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="subjects at once on this machine (default: from the cores and the memory one "
                       "subject needs at the study's grid size, so the machine does not swap)")
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run on a running Dask cluster, e.g. tcp://login1:8786 (needs the 'cluster' "
                       "extra; the study folder must be at the same path on every worker)")
    p.set_defaults(func=run)


def parse_settings(settings: list[str], params_file: Path | None) -> dict[str, dict]:
    """``--params`` and ``--set STEP.NAME=VALUE`` as ``{step: {name: value}}``."""
    out: dict[str, dict] = {}
    if params_file is not None:
        try:
            loaded = json.loads(params_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ParameterError(f"{params_file}: not a readable JSON file ({exc})") from None
        if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
            raise ParameterError(f"{params_file}: expected {{\"step\": {{\"name\": value}}}}")
        out = {k: dict(v) for k, v in loaded.items()}
    for item in settings:
        key, eq, text = item.partition("=")
        step, dot, name = key.partition(".")
        if not (eq and dot and step and name):
            raise ParameterError(f"--set {item!r}: expected STEP.NAME=VALUE, e.g. recon.inversion=tkd")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        out.setdefault(step, {})[name] = value
    return out


def run(args: argparse.Namespace) -> int:
    from ..cohort.run import plan_study, run_study
    from ..cohort.steps import step_parameters

    params = step_parameters(parse_settings(args.settings, args.params))
    if args.plan:
        for target, states in plan_study(args.study, params, only=args.only, subjects=args.subject).items():
            name = target if target == "study" else f"sub-{target}"
            print(f"{name}: " + "; ".join(s.line() for s in states))
        return 0
    printer = _Printer()
    result = run_study(
        args.study, params=params, only=args.only, force=args.force, subjects=args.subject,
        jobs=args.jobs, scheduler=args.scheduler, fail_fast=args.fail_fast,
        debug=getattr(args, "debug", False), on_event=printer, on_start=printer.started,
    )
    for task in result.subjects + ([result.study] if result.study else []):
        if task.error:
            if task.traceback and getattr(args, "debug", False):
                print(task.traceback, file=sys.stderr, end="")
            print(f"qsm-ms run: error: {task.error}", file=sys.stderr, flush=True)
    peak = max((t.peak_rss_mb for t in result.subjects), default=0.0)
    print(f"peak memory of a worker: {peak:.0f} MB")
    print(result.summary())
    return 0 if result.ok else 2


class _Printer:
    """Per-subject progress lines on stdout (whole lines, so parallel subjects interleave cleanly)."""

    def started(self, jobs: str, dashboard: str | None) -> None:
        print(f"qsm-ms run: {jobs}", flush=True)
        if dashboard:
            print(f"Dask dashboard: {dashboard}", flush=True)

    def __call__(self, ev) -> None:
        from ..cohort.run import DONE, FAILED, PROGRESS, SKIPPED, START, STUDY_TARGET

        who = ev.subject if ev.subject == STUDY_TARGET else f"sub-{ev.subject}"
        if ev.kind == PROGRESS or not ev.step:
            return
        text = {START: f"{ev.step} started ({ev.message.split(': ', 1)[-1]})", DONE: ev.message,
                SKIPPED: ev.message, FAILED: f"{ev.step} FAILED"}.get(ev.kind, ev.message)
        print(f"{who} [{100 * ev.fraction:3.0f}%] {text}", flush=True)
