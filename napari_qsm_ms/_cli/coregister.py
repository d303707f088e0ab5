"""``qsm-ms coregister STUDY [--subject LABEL ...]``: rigid MI coregistration onto the T2* grid.

A failing series or subject (unreadable file, result refused by a sanity check, ...) is reported on
one line on stderr and the run goes on with the others; a summary line ends the run and the exit
status is 2 if anything failed. ``--fail-fast`` stops at the first failure instead.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from ..errors import QSMMSError, one_line
from ..progress import TextProgress
from ..registration.rigid import DEFAULT_MIN_MI, DEFAULT_MIN_OVERLAP, RigidParameters
from ..registration.study import DEFAULT_KEYS, coregister_subject
from ._common import add_study_arguments, selected_subjects


def register(subparsers) -> None:
    d = RigidParameters()
    p = subparsers.add_parser(
        "coregister",
        help="rigidly coregister MPRAGEs and FLAIR onto the T2* magnitude (writes space-T2starw_*)",
        description="Rigid (6-DOF) Mattes mutual-information registration of each series "
        "(acq-wmn_T1w, acq-csfn_T1w, FLAIR) onto the subject's T2* magnitude, started from the scanner "
        "affines; writes the series resampled onto the T2* grid, an ITK .tfm and a JSON sidecar with "
        "the 4x4 RAS+ matrix and the final metric. Missing series are skipped. A series or subject that "
        "fails is reported on one line and the run goes on with the others; a summary line ends the "
        "run and the exit status is 2 if anything failed. See docs/registration.md.",
    )
    add_study_arguments(p)
    p.add_argument("--series", nargs="+", choices=DEFAULT_KEYS, default=list(DEFAULT_KEYS),
                   help="series to coregister (default: %(default)s)")
    p.add_argument("--initializer", choices=("scanner", "moments", "geometry"), default=d.initializer,
                   help="start: scanner affines (identity in world space), intensity centres of mass, "
                        "or field-of-view centres (default: %(default)s)")
    p.add_argument("--from-saved", action="store_true",
                   help="start from each series' saved transform (e.g. after a manual nudge in napari) "
                        "instead of the scanner affines (default: off)")
    p.add_argument("--bins", type=int, default=d.histogram_bins,
                   help="mutual-information histogram bins (default: %(default)s)")
    p.add_argument("--sampling", type=float, default=d.sampling_fraction,
                   help="fraction of T2* voxels sampled for the metric per level (default: %(default)s)")
    p.add_argument("--max-samples", type=int, default=d.max_samples,
                   help="cap on sampled voxels per level (default: %(default)s)")
    p.add_argument("--working-voxel-mm", type=float, default=d.working_voxel_mm,
                   help="block-average finer images by integer factors to about this voxel size, mm, "
                        "before the pyramid; 0 registers at full resolution (about 3x slower) "
                        "(default: %(default)s)")
    p.add_argument("--shrink", type=int, nargs="+", default=list(d.shrink_factors),
                   help="pyramid shrink factors, coarse to fine (default: %(default)s)")
    p.add_argument("--smoothing-mm", type=float, nargs="+", default=list(d.smoothing_sigmas_mm),
                   help="Gaussian smoothing per level, mm (default: %(default)s)")
    p.add_argument("--iterations", type=int, default=d.max_iterations,
                   help="maximum optimiser iterations per level (default: %(default)s)")
    p.add_argument("--min-mi", type=float, default=DEFAULT_MIN_MI,
                   help="refuse results whose final mutual information (nats) is below this "
                        "(default: %(default)s)")
    p.add_argument("--min-overlap", type=float, default=DEFAULT_MIN_OVERLAP,
                   help="refuse results where less than this fraction of the T2* head lies in the "
                        "series' field of view (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None,
                   help="SimpleITK threads (default: all cores available)")
    p.add_argument("--seed", type=int, default=d.seed, help="metric sampling seed (default: %(default)s)")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop the whole run at the first series or subject that fails (default: off: "
                        "report it, go on with the others, exit 2 at the end)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = RigidParameters(
        initializer=args.initializer,
        histogram_bins=args.bins,
        sampling_fraction=args.sampling,
        max_samples=args.max_samples,
        working_voxel_mm=args.working_voxel_mm,
        shrink_factors=tuple(args.shrink),
        smoothing_sigmas_mm=tuple(args.smoothing_mm),
        max_iterations=args.iterations,
        min_mutual_information=args.min_mi,
        min_overlap=args.min_overlap,
        threads=args.threads,
        seed=args.seed,
    )
    params.check()
    keep_going = not args.fail_fast
    registered = skipped = 0
    failed: list[str] = []
    for subject in selected_subjects(args):
        bar = TextProgress()  # every message names the subject
        error = None
        try:
            done = coregister_subject(subject, keys=args.series, progress=bar, params=params,
                                      from_saved=args.from_saved, keep_going=keep_going)
        except (QSMMSError, OSError) as exc:  # the T2* magnitude: no series of this subject can run
            if not keep_going:
                raise
            error = exc
        finally:
            bar.close()
        if error is not None:
            _report_failure(args, error)
            failed.append(f"sub-{subject.label} (all series)")
            continue
        for exc in done.failures.values():
            _report_failure(args, exc)
        for note in done.notes:
            print(f"note: {note}")
        for key, result in done.results.items():
            print(f"sub-{subject.label} {key}: {result.summary()} -> {subject.coreg_series(key).name}")
        registered += len(done.results)
        skipped += len(set(args.series) - set(done.results) - set(done.failures))
        failed.extend(f"sub-{subject.label} {key}" for key in done.failures)
    summary = f"qsm-ms coregister: {registered} series registered"
    if skipped:
        summary += f", {skipped} skipped (not found)"
    print(f"{summary}, {len(failed)} failed: {', '.join(failed)}" if failed else f"{summary}, none failed")
    return 2 if failed else 0


def _report_failure(args: argparse.Namespace, exc: BaseException) -> None:
    """One line on stderr, as :func:`napari_qsm_ms.cli.main` prints a fatal error (plus the
    traceback with ``--debug``)."""
    sys.stdout.flush()
    if getattr(args, "debug", False):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    print(f"qsm-ms {args.command}: error: {one_line(exc)}", file=sys.stderr, flush=True)
