"""``qsm-ms recon``: QSM from GRE magnitude + phase files, or over a study (docs/qsm.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ParameterError
from ..io.units import PHASE_UNITS
from ..progress import TextProgress
from ..qsm import defaults
from ..qsm.pipeline import BFR_METHODS, FIELD_UNITS, INVERSION_METHODS, UNWRAP_METHODS, entry_of, method_summary
from ._common import add_study_arguments, selected_subjects


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "recon",
        help="QSM reconstruction (mask, unwrapping, PDF/V-SHARP, MEDI-L1/TKD/TV)",
        description="Susceptibility map (ppm, float32, on the input's grid) from a GRE magnitude "
        "and wrapped phase, or entering later with an unwrapped total field (--field) or a "
        "background-removed local field (--local-field), whose stages are then skipped. File mode: "
        "--magnitude/--phase/--out (TE and B0 from --te/--b0 or the input's JSON sidecar). Study mode: "
        "STUDY writes derivatives/qsm-ms/sub-*/anat/sub-*_Chimap.nii.gz and sub-*_desc-brain_mask.nii.gz "
        "(TE and B0 from the phase sidecar).",
    )
    add_study_arguments(p, study_required=False)
    files = p.add_argument_group("file mode")
    files.add_argument("--magnitude", metavar="MAG", type=Path,
                       help="GRE magnitude NIfTI (3-D, or 4-D echoes); optional with --field/--local-field, "
                       "where it gives MEDI's edge prior and the noise weights")
    files.add_argument("--phase", metavar="PHASE", type=Path,
                       help="wrapped GRE phase NIfTI on the same grid (see --phase-units; 4-D for echoes)")
    files.add_argument("--field", metavar="FIELD", type=Path,
                       help="instead of --phase: unwrapped total field (units --field-units; 4-D unwrapped phase "
                       "per echo with --field-units rad); unwrapping is skipped")
    files.add_argument("--local-field", metavar="FIELD", type=Path,
                       help="instead of --phase: background-removed local field (units --field-units); unwrapping "
                       "and background removal are skipped, and --erode-mm defaults to 0")
    files.add_argument("--field-units", choices=FIELD_UNITS, default=None,
                       help="units of --field/--local-field: hz, ppm (of B0) or rad (phase at --te) (required "
                       "with them)")
    files.add_argument("--te", metavar="SECONDS", type=float, nargs="+", default=None,
                       help="echo time(s) in seconds, one per echo (default: EchoTime of the input's sidecar; "
                       "optional for a field in hz or ppm)")
    files.add_argument("--b0", metavar="TESLA", type=float, default=None,
                       help="field strength in tesla (default: MagneticFieldStrength of the input's sidecar; "
                       "optional for a field in ppm)")
    files.add_argument("--out", metavar="CHI", type=Path, help="output chi map in ppm (.nii or .nii.gz)")
    files.add_argument("--mask", metavar="MASK", type=Path, default=None,
                       help="brain mask before erosion (default: computed from the magnitude; required without "
                       "--magnitude)")
    files.add_argument("--mask-out", metavar="PATH", type=Path, default=None,
                       help="also write the mask used for QSM (after erosion) here (default: not written)")
    m = p.add_argument_group("method")
    m.add_argument("--inversion", choices=INVERSION_METHODS, default=defaults.INVERSION,
                   help="dipole inversion: auto (MEDI-L1 with a magnitude, TV-ADMM without one), medi (MEDI-L1, as the "
                   f"paper), tkd, tv (default: {defaults.INVERSION})")
    m.add_argument("--unwrap", choices=UNWRAP_METHODS, default="region",
                   help="phase unwrapping: region (quality-guided region growing, exact multiples of 2 pi) "
                   "or laplacian (as MEDI's unwrapLaplacian) (default: region)")
    m.add_argument("--bfr", choices=BFR_METHODS, default="pdf",
                   help="background-field removal: pdf (as MEDI) or vsharp (default: pdf)")
    m.add_argument("--erode-mm", type=float, default=None, metavar="MM",
                   help=f"erosion of the brain mask before inversion, mm (default: {defaults.ERODE_MM:g}; 0 with "
                   "--local-field)")
    m.add_argument("--phase-units", choices=PHASE_UNITS, default="auto",
                   help="phase units: auto (radians or raw integers, refusing a phase that does not look "
                   "wrapped), rad, deg, or raw (levels of an n-bit phase, integers or evenly spaced floats, "
                   "2^n levels one turn) (default: auto)")
    m.add_argument("--phase-range", metavar=("LOW", "HIGH"), type=float, nargs=2, default=None,
                   help="state the phase scale instead: stored values LOW..HIGH span one full turn (2 pi) "
                   "(default: from --phase-units)")
    m.add_argument("--lambda", dest="medi_lambda", type=defaults.parse_lambda, default=defaults.MEDI_LAMBDA,
                   metavar="L", help="MEDI data weight in ppm-normalised units, the same for any B0/TE; "
                   "MEDI-toolbox lambda = L * ppm_per_radian(TE, B0); chosen per scan by the discrepancy "
                   "principle with 'auto-noise' (on the noise measured in the magnitude; needs a magnitude) or "
                   "'auto-cone' (on the misfit level of the dipole kernel's cone: noise and model error, smoother "
                   "maps); 'auto' is auto-noise with a magnitude and auto-cone without "
                   f"(default: {defaults.MEDI_LAMBDA})")
    m.add_argument("--medi-prior-region", choices=defaults.MEDI_PRIOR_REGIONS, default=defaults.MEDI_PRIOR_REGION,
                   help="MEDI: where the prior acts: 'mask', inside the brain mask only (the susceptibility "
                   "outside, not reported, is free to take up what background removal left), 'grid', the "
                   "whole padded grid as the MEDI toolbox, or 'auto': mask with a magnitude, grid without "
                   f"(default: {defaults.MEDI_PRIOR_REGION})")
    m.add_argument("--medi-max-iter", type=int, default=defaults.MEDI_MAX_ITER, metavar="N",
                   help="MEDI: at most N Gauss-Newton steps, the automatic weight's search included; a run "
                   f"that stops at N before its stopping rule says so (default: {defaults.MEDI_MAX_ITER})")
    m.add_argument("--merit", action="store_true", help="MEDI: MERIT reweighting of outlier voxels (default: off)")
    m.add_argument("--smv-radius-mm", type=float, default=None, metavar="MM",
                   help="MEDI: SMV high-pass of field and kernel with this radius, mm (default: off)")
    m.add_argument("--tkd-threshold", type=float, default=defaults.TKD_THRESHOLD, metavar="T",
                   help=f"TKD: truncation of |D|, frequencies below it dropped (default: {defaults.TKD_THRESHOLD:g})")
    m.add_argument("--tv-lambda", type=defaults.parse_lambda, default=defaults.TV_LAMBDA, metavar="L",
                   help=f"TV-ADMM: TV weight for a field in ppm, or 'auto' (default: {defaults.TV_LAMBDA})")
    m.add_argument("--tv-max-iter", type=int, default=defaults.TV_MAX_ITER, metavar="N",
                   help=f"TV-ADMM: at most N iterations (default: {defaults.TV_MAX_ITER})")
    p.add_argument("--save-intermediates", metavar="DIR", nargs="?", const=True, default=None,
                   help="write unwrapped phase (rad), total and local field (ppm) and masks: into DIR in "
                   "file mode; into derivatives/qsm-ms/sub-*/anat/intermediates in study mode "
                   "(default: not written)")
    p.set_defaults(func=run)


def _params(args: argparse.Namespace) -> dict:
    if args.erode_mm is not None:
        defaults.check_erosion(args.erode_mm, "--erode-mm")
    defaults.check_lambda(args.medi_lambda, "--lambda")
    defaults.check_threshold(args.tkd_threshold, "--tkd-threshold")
    defaults.check_lambda(args.tv_lambda, "--tv-lambda")
    defaults.check_iterations(args.medi_max_iter, "--medi-max-iter")
    defaults.check_iterations(args.tv_max_iter, "--tv-max-iter")
    if args.smv_radius_mm is not None and args.smv_radius_mm <= 0:
        raise ParameterError(f"--smv-radius-mm {args.smv_radius_mm} must be > 0")
    return dict(
        inversion=args.inversion, unwrap=args.unwrap, bfr=args.bfr, erode_mm=args.erode_mm,
        medi_lambda=args.medi_lambda, medi_merit=args.merit, medi_smv_radius_mm=args.smv_radius_mm,
        medi_prior_region=args.medi_prior_region, medi_max_iter=args.medi_max_iter,
        tkd_threshold=args.tkd_threshold, tv_lambda=args.tv_lambda, tv_max_iter=args.tv_max_iter,
    )


def _input_params(args: argparse.Namespace) -> dict:
    """Phase units for a phase, field units for a field; each refused where it does not apply."""
    if sum(v is not None for v in (args.phase, args.field, args.local_field)) > 1:
        entry_of(args.phase, args.field, args.local_field)  # the one-line error naming both
    if args.phase is not None or (args.field is None and args.local_field is None):
        if args.field_units is not None:
            raise ParameterError("--field-units is for --field or --local-field, not --phase")
        return dict(phase_units=args.phase_units, phase_range=None if args.phase_range is None else
                    tuple(args.phase_range))
    opt = "--field" if args.field is not None else "--local-field"
    if args.phase_units != "auto" or args.phase_range is not None:
        raise ParameterError(f"--phase-units and --phase-range are for --phase; {opt} takes --field-units")
    if args.field_units is None:
        raise ParameterError(f"{opt} needs --field-units ({'|'.join(FIELD_UNITS)})")
    return dict(field_units=args.field_units)


def _print_warnings(result, who: str = "") -> None:
    for warning in result.warnings:
        print(f"qsm-ms recon: warning: {who}{warning}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ..qsm.pipeline import reconstruct_files, reconstruct_subject

    inputs = (args.magnitude, args.phase, args.field, args.local_field, args.out)
    file_mode = any(v is not None for v in inputs)
    if file_mode and args.study is not None:
        raise ParameterError("give either STUDY or --magnitude/--phase/--out, not both")
    params = _params(args)
    if file_mode:
        params.update(_input_params(args))
        missing = [opt for opt, absent in (
            ("--magnitude (or --mask)", args.magnitude is None and args.mask is None),
            ("--phase (or --field or --local-field)", args.phase is None and args.field is None
             and args.local_field is None),
            ("--out", args.out is None)) if absent]
        if missing:
            raise ParameterError(f"file mode needs {', '.join(missing)}")
        if args.save_intermediates is True:
            raise ParameterError("--save-intermediates needs a folder in file mode")
        te = None if args.te is None else (args.te[0] if len(args.te) == 1 else args.te)
        bar = TextProgress(prefix="recon ")
        try:
            result = reconstruct_files(
                args.magnitude, args.phase, args.out, field_path=args.field, local_field_path=args.local_field,
                te_s=te, b0_t=args.b0, mask_path=args.mask, mask_out_path=args.mask_out,
                save_intermediates=args.save_intermediates, progress=bar, **params,
            )
        finally:
            bar.close()
        _print_warnings(result)
        print(f"wrote {args.out} ({int(result.mask.sum())} voxels in the QSM mask, "
              f"{result.timings_s['total']:.1f} s; {method_summary(result.parameters)})")
        return 0
    if args.study is None:
        raise ParameterError("give a STUDY folder, or --magnitude, --phase and --out")
    for opt, v in (("--te", args.te), ("--b0", args.b0), ("--mask", args.mask), ("--mask-out", args.mask_out),
                   ("--field-units", args.field_units)):
        if v is not None:
            raise ParameterError(f"{opt} is for file mode; in study mode the sidecars give TE and B0")
    params.update(phase_units=args.phase_units, phase_range=None if args.phase_range is None else tuple(args.phase_range))
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
        _print_warnings(result, f"{subject.sub}: ")
        print(f"{subject.sub}: wrote {subject.chimap} ({result.timings_s['total']:.1f} s; "
              f"{method_summary(result.parameters)})")
    return 0
