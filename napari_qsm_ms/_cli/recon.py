"""``qsm-ms recon``: QSM from GRE magnitude + phase files, or over a study (docs/qsm.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ParameterError
from ..progress import TextProgress
from ..qsm import defaults
from ..qsm.pipeline import BFR_METHODS, INVERSION_METHODS, UNWRAP_METHODS
from ._common import add_study_arguments, selected_subjects


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "recon",
        help="QSM reconstruction (mask, unwrapping, PDF/V-SHARP, MEDI-L1/TKD/TV)",
        description="Susceptibility map (ppm, float32, on the magnitude's grid) from a GRE magnitude "
        "and wrapped phase. File mode: --magnitude/--phase/--out (TE and B0 from --te/--b0 or the phase "
        "JSON sidecar). Study mode: STUDY writes derivatives/qsm-ms/sub-*/anat/sub-*_Chimap.nii.gz and "
        "sub-*_desc-brain_mask.nii.gz (TE and B0 from the phase sidecar).",
    )
    add_study_arguments(p, study_required=False)
    files = p.add_argument_group("file mode")
    files.add_argument("--magnitude", metavar="MAG", type=Path, help="GRE magnitude NIfTI (3-D, or 4-D echoes)")
    files.add_argument("--phase", metavar="PHASE", type=Path,
                       help="GRE phase NIfTI on the same grid (radians or raw integers; 4-D for echoes)")
    files.add_argument("--te", metavar="SECONDS", type=float, nargs="+", default=None,
                       help="echo time(s) in seconds, one per echo (default: EchoTime of the phase sidecar)")
    files.add_argument("--b0", metavar="TESLA", type=float, default=None,
                       help="field strength in tesla (default: MagneticFieldStrength of the phase sidecar)")
    files.add_argument("--out", metavar="CHI", type=Path, help="output chi map in ppm (.nii or .nii.gz)")
    files.add_argument("--mask", metavar="MASK", type=Path, default=None,
                       help="brain mask before erosion (default: computed from the magnitude)")
    files.add_argument("--mask-out", metavar="PATH", type=Path, default=None,
                       help="also write the mask used for QSM (after erosion) here (default: not written)")
    m = p.add_argument_group("method")
    m.add_argument("--inversion", choices=INVERSION_METHODS, default=defaults.INVERSION,
                   help=f"dipole inversion: medi (MEDI-L1, as the paper), tkd, tv (default: {defaults.INVERSION})")
    m.add_argument("--unwrap", choices=UNWRAP_METHODS, default="region",
                   help="phase unwrapping: region (quality-guided region growing, exact multiples of 2 pi) "
                   "or laplacian (as MEDI's unwrapLaplacian) (default: region)")
    m.add_argument("--bfr", choices=BFR_METHODS, default="pdf",
                   help="background-field removal: pdf (as MEDI) or vsharp (default: pdf)")
    m.add_argument("--erode-mm", type=float, default=defaults.ERODE_MM, metavar="MM",
                   help=f"erosion of the brain mask before inversion, mm (default: {defaults.ERODE_MM:g})")
    m.add_argument("--phase-units", choices=("auto", "rad", "raw"), default="auto",
                   help="phase units; raw integers are scaled to radians (default: auto)")
    m.add_argument("--lambda", dest="medi_lambda", type=defaults.parse_lambda, default=defaults.MEDI_LAMBDA,
                   metavar="L", help="MEDI data weight in ppm-normalised units, the same for any B0/TE; "
                   "MEDI-toolbox lambda = L * ppm_per_radian(TE, B0); 'auto' chooses it per scan by the "
                   f"discrepancy principle (default: {defaults.MEDI_LAMBDA})")
    m.add_argument("--merit", action="store_true", help="MEDI: MERIT reweighting of outlier voxels (default: off)")
    m.add_argument("--smv-radius-mm", type=float, default=None, metavar="MM",
                   help="MEDI: SMV high-pass of field and kernel with this radius, mm (default: off)")
    m.add_argument("--tkd-threshold", type=float, default=defaults.TKD_THRESHOLD, metavar="T",
                   help=f"TKD: truncation of |D|, frequencies below it dropped (default: {defaults.TKD_THRESHOLD:g})")
    m.add_argument("--tv-lambda", type=defaults.parse_lambda, default=defaults.TV_LAMBDA, metavar="L",
                   help=f"TV-ADMM: TV weight for a field in ppm, or 'auto' (default: {defaults.TV_LAMBDA})")
    p.add_argument("--save-intermediates", metavar="DIR", nargs="?", const=True, default=None,
                   help="write unwrapped phase (rad), total and local field (ppm) and masks: into DIR in "
                   "file mode; into derivatives/qsm-ms/sub-*/anat/intermediates in study mode "
                   "(default: not written)")
    p.set_defaults(func=run)


def _params(args: argparse.Namespace) -> dict:
    defaults.check_erosion(args.erode_mm, "--erode-mm")
    defaults.check_lambda(args.medi_lambda, "--lambda")
    defaults.check_threshold(args.tkd_threshold, "--tkd-threshold")
    defaults.check_lambda(args.tv_lambda, "--tv-lambda")
    if args.smv_radius_mm is not None and args.smv_radius_mm <= 0:
        raise ParameterError(f"--smv-radius-mm {args.smv_radius_mm} must be > 0")
    return dict(
        inversion=args.inversion, unwrap=args.unwrap, bfr=args.bfr, erode_mm=args.erode_mm, phase_units=args.phase_units,
        medi_lambda=args.medi_lambda, medi_merit=args.merit, medi_smv_radius_mm=args.smv_radius_mm,
        tkd_threshold=args.tkd_threshold, tv_lambda=args.tv_lambda,
    )


def run(args: argparse.Namespace) -> int:
    from ..qsm.pipeline import reconstruct_files, reconstruct_subject

    file_mode = any(v is not None for v in (args.magnitude, args.phase, args.out))
    if file_mode and args.study is not None:
        raise ParameterError("give either STUDY or --magnitude/--phase/--out, not both")
    params = _params(args)
    if file_mode:
        missing = [opt for opt, v in (("--magnitude", args.magnitude), ("--phase", args.phase), ("--out", args.out))
                   if v is None]
        if missing:
            raise ParameterError(f"file mode needs {', '.join(missing)}")
        if args.save_intermediates is True:
            raise ParameterError("--save-intermediates needs a folder in file mode")
        te = None if args.te is None else (args.te[0] if len(args.te) == 1 else args.te)
        bar = TextProgress(prefix="recon ")
        try:
            result = reconstruct_files(
                args.magnitude, args.phase, args.out, te_s=te, b0_t=args.b0, mask_path=args.mask,
                mask_out_path=args.mask_out, save_intermediates=args.save_intermediates, progress=bar, **params,
            )
        finally:
            bar.close()
        print(f"wrote {args.out} ({int(result.mask.sum())} voxels in the QSM mask, "
              f"{result.timings_s['total']:.1f} s)")
        return 0
    if args.study is None:
        raise ParameterError("give a STUDY folder, or --magnitude, --phase and --out")
    for opt, v in (("--te", args.te), ("--b0", args.b0), ("--mask", args.mask), ("--mask-out", args.mask_out)):
        if v is not None:
            raise ParameterError(f"{opt} is for file mode; in study mode the sidecars give TE and B0")
    subjects = selected_subjects(args)
    for subject in subjects:
        bar = TextProgress(prefix=f"{subject.sub} ")
        inter = args.save_intermediates
        if inter not in (None, True):
            inter = Path(inter) / subject.sub
        try:
            result = reconstruct_subject(subject, save_intermediates=inter, progress=bar, **params)
        finally:
            bar.close()
        print(f"{subject.sub}: wrote {subject.chimap} ({result.timings_s['total']:.1f} s)")
    return 0
