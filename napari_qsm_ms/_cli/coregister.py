"""``qsm-ms coregister STUDY [--subject LABEL ...]``: rigid MI coregistration onto the T2* grid."""

from __future__ import annotations

import argparse

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
        "the 4x4 RAS+ matrix and the final metric. Missing series are skipped. See docs/registration.md.",
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
    for subject in selected_subjects(args):
        bar = TextProgress(prefix=f"sub-{subject.label} ")
        try:
            done = coregister_subject(subject, keys=args.series, progress=bar, params=params,
                                      from_saved=args.from_saved)
        finally:
            bar.close()
        for note in done.notes:
            print(f"note: {note}")
        for key, result in done.results.items():
            print(f"sub-{subject.label} {key}: {result.summary()} -> {subject.coreg_series(key).name}")
    return 0
