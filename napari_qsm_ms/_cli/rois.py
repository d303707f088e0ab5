"""``qsm-ms rois``: reference ROIs (NAWM rings, cortical strips) from lesions + tissue classes."""

from __future__ import annotations

import argparse

from ..progress import TextProgress
from ..roi.references import (
    DEFAULT_GAP_MM,
    DEFAULT_MAX_DISTANCE_PX,
    DEFAULT_MIN_VOXELS,
    DEFAULT_RING_MM,
    PAPER_PIXEL_MM,
)
from ._common import add_study_arguments, selected_subjects


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rois",
        help="build reference ROIs (desc-refwm/desc-refgm) from lesions and tissue classes",
        description=(
            "For each lesion of desc-lesions_dseg, draw its reference ROI on its central axial slice: "
            "a ring of normal-appearing WM (WM lesions), a strip of normal-appearing cortex continuous "
            "with the lesion (cortical lesions), one of each (mixed lesions), separated from every lesion "
            "by a gap and within a pixel limit. Classes come from sub-*_lesions.tsv when present, else "
            "from the lesion's cortex fraction (desc-tissue_dseg). Writes desc-refwm_dseg and "
            "desc-refgm_dseg and records parameters and flags in desc-annotation.json. See docs/roi.md."
        ),
    )
    add_study_arguments(p)
    p.add_argument("--gap-mm", type=float, default=DEFAULT_GAP_MM, metavar="G",
                   help=f"gap between lesion and reference, mm (default {DEFAULT_GAP_MM}, "
                        f"= {DEFAULT_GAP_MM / PAPER_PIXEL_MM:.0f} px of {PAPER_PIXEL_MM} mm)")
    p.add_argument("--ring-mm", type=float, default=DEFAULT_RING_MM, metavar="W",
                   help=f"reference width beyond the gap, mm (default {DEFAULT_RING_MM}; gap + width = "
                        f"{DEFAULT_GAP_MM + DEFAULT_RING_MM:.1f} mm = "
                        f"{(DEFAULT_GAP_MM + DEFAULT_RING_MM) / PAPER_PIXEL_MM:.0f} px of "
                        f"{PAPER_PIXEL_MM} mm)")
    p.add_argument("--max-distance-px", type=float, default=DEFAULT_MAX_DISTANCE_PX, metavar="N",
                   help=f"outer limit from the lesion, in-plane pixels (default {DEFAULT_MAX_DISTANCE_PX}, "
                        "the paper's 10-pixel vicinity)")
    p.add_argument("--all-slices", action="store_true",
                   help="use every slice of the lesion instead of its central slice only (default: off)")
    p.add_argument("--min-voxels", type=int, default=DEFAULT_MIN_VOXELS, metavar="N",
                   help="flag references with fewer voxels for manual editing "
                        f"(default {DEFAULT_MIN_VOXELS})")
    p.add_argument("--gap-3d", action="store_true",
                   help="keep the gap through-plane too: leave out voxels within the gap (3-D, mm) of "
                        "lesions on neighbouring slices (default: off, the paper's in-plane rule)")
    p.add_argument("--exclude-vessels", action="store_true",
                   help="keep voxels of desc-vessels_mask out of the references (default: off)")
    p.add_argument("--no-brain-mask", action="store_true",
                   help="do not restrict references to desc-brain_mask (default: references stay inside "
                        "the QSM mask when that file exists)")
    p.add_argument("--slice-axis", type=int, choices=(0, 1, 2), default=None,
                   help="array axis across slices (default: the axis nearest to superior-inferior, "
                        "i.e. axial slices)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..roi.study import build_subject_references

    subjects = selected_subjects(args)
    for subject in subjects:
        bar = TextProgress()  # every message names the subject
        try:
            result = build_subject_references(
                subject, gap_mm=args.gap_mm, ring_mm=args.ring_mm, max_distance_px=args.max_distance_px,
                slice_axis=args.slice_axis, all_slices=args.all_slices, min_voxels=args.min_voxels,
                gap_3d=args.gap_3d,
                exclude_vessels=args.exclude_vessels, use_brain_mask=not args.no_brain_mask, progress=bar,
            )
        finally:
            bar.close()
        table = result.table
        n_lesions = table["lesion_id"].nunique()
        parts = []
        for part, name in (("wm", "refwm"), ("cortical", "refgm")):
            rows = table[table["part"] == part]
            small = int(rows["flags"].str.contains("reference_too_small").sum())
            parts.append(f"{name} {len(rows)}" + (f" ({small} too small)" if small else ""))
        print(f"sub-{subject.label}: {n_lesions} lesions, {', '.join(parts)} -> {subject.refwm.parent}")
    return 0
