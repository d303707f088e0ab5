"""`qsm-ms simulate OUT_STUDY`: write a simulated 7 T MS study with ground truth."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ..errors import ParameterError
from ..progress import TextProgress


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def register(subparsers) -> None:
    from ..simulate.forward import DEFAULT_SNR
    from ..simulate.study import DEFAULT_N_LESIONS, DEFAULT_RAW_VOXEL_MM, DEFAULT_SHAPE, DEFAULT_VOXEL_SIZE_MM

    p = subparsers.add_parser(
        "simulate",
        help="write a simulated 7 T MS study (numerical head phantom) with ground truth",
        description="Simulate MS patients at 7 T: T2* GRE magnitude and wrapped phase (TE 17.7 ms), "
        "WM-nulled/CSF-nulled MPRAGE and FLAIR on their own coronal grids (slightly misaligned), "
        "tissue classes and lesion labels in derivatives/qsm-ms, ground truth in "
        "derivatives/simulation. See docs/simulate.md.",
    )
    p.add_argument("out_study", metavar="OUT_STUDY", type=Path, help="output study folder (new or empty)")
    p.add_argument(
        "--subjects", type=_positive_int, default=2, metavar="N", help="number of subjects, 1-99 (default: 2)"
    )
    p.add_argument("--seed", type=_positive_int, default=0, metavar="S", help="random seed (default: 0)")
    p.add_argument(
        "--voxel-size",
        type=_float,
        nargs=3,
        metavar=("X", "Y", "Z"),
        default=list(DEFAULT_VOXEL_SIZE_MM),
        help="T2* voxel size in mm (default: {}; the paper: 0.47 0.47 1)".format(
            " ".join(map(str, DEFAULT_VOXEL_SIZE_MM))
        ),
    )
    p.add_argument(
        "--shape",
        type=_positive_int,
        nargs=3,
        metavar=("NX", "NY", "NZ"),
        default=list(DEFAULT_SHAPE),
        help="T2* matrix in voxels, each 16-1024 (default: {}; the paper: 384 384 90)".format(
            " ".join(map(str, DEFAULT_SHAPE))
        ),
    )
    p.add_argument(
        "--oblique-deg",
        type=_float,
        default=0.0,
        metavar="DEG",
        help="tilt of the slab about the left-right axis in degrees, within +-45 (default: 0)",
    )
    p.add_argument(
        "--lesions",
        type=_positive_int,
        nargs=3,
        metavar=("WM", "CORTICAL", "MIXED"),
        default=list(DEFAULT_N_LESIONS),
        help="lesions per subject (default: {})".format(" ".join(map(str, DEFAULT_N_LESIONS))),
    )
    p.add_argument(
        "--raw-voxel-size",
        type=_float,
        nargs=3,
        metavar=("WMN", "CSFN", "FLAIR"),
        default=[DEFAULT_RAW_VOXEL_MM[k] for k in ("wmn", "csfn", "flair")],
        help="isotropic voxel edge in mm of the WM-nulled MPRAGE, CSF-nulled MPRAGE and FLAIR "
        "(default: 1.0 0.8 0.8)",
    )
    p.add_argument(
        "--anatomy",
        choices=("synthetic", "mni"),
        default="synthetic",
        help="synthetic analytic head scaled to the field of view, or real brain anatomy from the MNI "
        "ICBM152 2009 templates shipped with nilearn, at real size, grid centred on MNI (0, -18, 18) "
        "(default: synthetic)",
    )
    p.add_argument(
        "--snr",
        type=_float,
        default=DEFAULT_SNR,
        help=f"magnitude SNR of white matter (default: {DEFAULT_SNR:g})",
    )
    p.add_argument(
        "--phase-units",
        choices=("alternate", "raw", "rad"),
        default="alternate",
        help="phase storage: raw integers -4096..4095, radians, or alternate raw/rad between "
        "subjects (default: alternate)",
    )
    p.add_argument(
        "--compact-truth",
        action="store_true",
        help="store truth maps as int16 with scale factors, fields only inside the brain (default: float32)",
    )
    p.add_argument(
        "--no-votes",
        action="store_true",
        help="do not write simulated rater votes (default: write r1, r2, r3)",
    )
    _marker_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace OUT_STUDY if it exists and is not empty")
    p.set_defaults(func=run)


def _marker_options(p) -> None:
    """Options of the lesion markers (simulate.markers.MarkerSpec; its defaults, stated there)."""
    from ..simulate.markers import MarkerSpec

    d = MarkerSpec()
    g = p.add_argument_group(
        "lesion markers (docs/markers.md)",
        "paramagnetic rims and central veins drawn into the lesions; truth in "
        "sub-*_lesions-truth.tsv (columns prl, rim_*, vein, vein_*). Without a fraction nothing is added.",
    )
    g.add_argument("--prl-fraction", type=_float, default=d.prl_fraction, metavar="F",
                   help=f"fraction of the WM and mixed lesions with a paramagnetic rim, 0-1 (default: {d.prl_fraction:g})")
    g.add_argument("--cvs-fraction", type=_float, default=d.cvs_fraction, metavar="F",
                   help=f"fraction of all lesions with a central vein, 0-1 (default: {d.cvs_fraction:g})")
    g.add_argument("--eccentric-vein-fraction", type=_float, default=d.eccentric_fraction, metavar="F",
                   help="fraction of all lesions with a vein off the centre (a mimic), 0-1, with "
                   f"--cvs-fraction at most 1 (default: {d.eccentric_fraction:g})")
    for name, unit, help_text in (
        ("rim_chi_ppm", "ppm", "susceptibility added in the rim"),
        ("rim_width_mm", "mm", "rim width across the lesion boundary"),
        ("rim_coverage", "", "fraction of the circumference the rim covers, within (0, 1]"),
        ("vein_radius_mm", "mm", "vein radius"),
    ):
        lo, hi = getattr(d, name)
        flag = "--" + name.replace("_", "-")
        g.add_argument(flag, type=_float, nargs=2, metavar=("LOW", "HIGH"), default=[lo, hi],
                       help=f"{help_text}{f' ({unit})' if unit else ''}, drawn uniformly per lesion "
                       f"(default: {lo:g} {hi:g})")


def marker_spec_from_args(args: argparse.Namespace):
    """The :class:`~napari_qsm_ms.simulate.markers.MarkerSpec` of the options, or None when it adds
    nothing (the study is then the same as without marker options)."""
    from ..simulate.markers import MarkerSpec

    spec = MarkerSpec(
        prl_fraction=args.prl_fraction,
        cvs_fraction=args.cvs_fraction,
        eccentric_fraction=args.eccentric_vein_fraction,
        rim_width_mm=tuple(args.rim_width_mm),
        rim_chi_ppm=tuple(args.rim_chi_ppm),
        rim_coverage=tuple(args.rim_coverage),
        vein_radius_mm=tuple(args.vein_radius_mm),
    )
    return spec if spec.active else None


def run(args: argparse.Namespace) -> int:
    from ..simulate.study import RATERS, simulate_study

    if any(v <= 0 for v in args.voxel_size):
        raise ParameterError(f"voxel size must be positive (mm), got {' '.join(map(str, args.voxel_size))}")
    if any(v <= 0 for v in args.raw_voxel_size):
        raise ParameterError(
            f"raw voxel sizes must be positive (mm), got {' '.join(map(str, args.raw_voxel_size))}"
        )
    if args.snr <= 0:
        raise ParameterError(f"SNR must be positive, got {args.snr}")
    units = ("raw", "rad") if args.phase_units == "alternate" else args.phase_units
    markers = marker_spec_from_args(args)  # ParameterError (one line) on a bad fraction or range
    bar = TextProgress("simulate ")
    try:
        study = simulate_study(
            args.out_study,
            args.subjects,
            seed=args.seed,
            voxel_size_mm=tuple(args.voxel_size),
            shape=tuple(args.shape),
            oblique_deg=args.oblique_deg,
            n_lesions=tuple(args.lesions),
            raw_voxel_mm=dict(zip(("wmn", "csfn", "flair"), args.raw_voxel_size)),
            phase_units=units,
            snr=args.snr,
            compact_truth=args.compact_truth,
            raters=None if args.no_votes else RATERS,
            anatomy=args.anatomy,
            overwrite=args.overwrite,
            progress=bar,
            markers=markers,
        )
    finally:
        bar.close()
    print(f"wrote {len(study.subject_labels())} simulated subject(s) to {study.root}", file=sys.stdout)
    print(f"ground truth: {study.root / 'derivatives' / 'simulation'}", file=sys.stdout)
    return 0
