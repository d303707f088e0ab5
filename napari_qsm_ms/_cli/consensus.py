"""``qsm-ms consensus STUDY [--subject LABEL ...]``: rater votes -> lesions.tsv classes + agreement.

Also ``--propose`` (write automatic candidates before rating) and ``--resolve`` (record the outcome
of a consensus meeting for a disputed candidate).
"""

from __future__ import annotations

import argparse
import math

from ..errors import ParameterError
from ..io.layout import StudyFiles
from ..progress import TextProgress
from ..roi.rules import CONSENSUS_CLASSES
from ._common import add_study_arguments, selected_subjects


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "consensus",
        help="rater votes -> majority classes in sub-*_lesions.tsv, agreement report (agreement.tsv)",
        description="Read every rater's votes (sub-<label>_rater-<name>_votes.tsv), apply the majority "
        "rule (a class stands when more than half of the raters chose it; 'not a lesion' by majority "
        "rejects the candidate; otherwise disputed), write sub-<label>_lesions.tsv per subject and "
        "derivatives/qsm-ms/agreement.tsv (Fleiss' kappa, pairwise Cohen's kappa), and print a summary.",
    )
    add_study_arguments(p)
    p.add_argument(
        "--raters", metavar="NAME", nargs="+", default=None,
        help="the panel of raters: recorded as the study's panel (derivatives/qsm-ms/raters.tsv) when "
        "none is stored yet, refused when it contradicts the stored one (default: the stored panel, "
        "else every rater with a votes file for the subject); a panel rater without votes on a "
        "candidate counts as a missing vote",
    )
    p.add_argument(
        "--set-panel", metavar="NAME", nargs="+", default=None,
        help="replace the study's stored panel of raters (raters.tsv) by these raters, then run",
    )
    p.add_argument(
        "--resolve", metavar=("LESION_ID", "CLASS", "REASON"), nargs=3, default=None,
        help="record a consensus-meeting outcome for a disputed candidate of ONE --subject: "
        "CLASS is wm, cortical, mixed or rejected; REASON is free text (quote it)",
    )
    p.add_argument(
        "--source", choices=("drawn", "proposed"), default="drawn",
        help="candidate source of --resolve's LESION_ID (default: drawn)",
    )
    p.add_argument(
        "--propose", action="store_true",
        help="instead of the consensus, write automatic candidates (sub-<label>_desc-proposals_dseg.nii.gz: "
        "hyperintense on T2* and FLAIR, hypointense on CSF-nulled MPRAGE) for the raters to vote on",
    )
    p.add_argument(
        "--z-threshold", type=float, default=2.5, metavar="Z",
        help="--propose: robust z-score threshold against the tissue's median/MAD (unitless, default 2.5)",
    )
    p.add_argument(
        "--min-extent-mm", type=float, default=2.0, metavar="MM",
        help="--propose: smallest in-plane extent of a proposed component (mm, default 2.0)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..rating.agreement import write_agreement
    from ..rating.consensus import resolve, run_consensus, subject_panel
    from ..rating.panel import read_panel, write_panel

    subjects = selected_subjects(args)
    if args.propose:
        from ..rating.proposals import propose_subject

        for subject in subjects:
            path = propose_subject(
                subject, z_threshold=args.z_threshold, min_extent_mm=args.min_extent_mm,
                progress=TextProgress(f"{subject.sub} proposals"),
            )
            print(f"{subject.sub}: proposals written to {path}")
        return 0
    if args.resolve is not None:
        if len(subjects) != 1 or not args.subject:
            raise ParameterError("--resolve needs exactly one --subject")
        lesion, cls, reason = args.resolve
        try:
            lesion_id = int(lesion)
        except ValueError:
            raise ParameterError(f"--resolve: lesion id {lesion!r} is not an integer") from None
        resolve(subjects[0], lesion_id, cls, reason, candidate_source=args.source)
        print(f"{subjects[0].sub}: {args.source} candidate {lesion_id} resolved as {cls} ({reason})")
        return 0

    study = StudyFiles.at(args.study)
    if args.set_panel:
        write_panel(study, args.set_panel)
        print(f"panel of raters set to {', '.join(args.set_panel)} -> {study.raters_tsv}")
    done = []
    for subject in subjects:
        panel = subject_panel(subject, args.raters)
        if len(panel) < 2:
            print(f"{subject.sub}: skipped ({len(panel)} rater(s) with votes; consensus needs at least 2)")
            continue
        table = run_consensus(subject, args.raters)
        done.append(subject.label)
        counts = table["class"].value_counts()
        summary = ", ".join(f"{c} {int(counts.get(c, 0))}" for c in CONSENSUS_CLASSES)
        resolved = int((table["consensus"] == "resolved").sum())
        print(f"{subject.sub}: {len(table)} candidates, raters {', '.join(panel)}: {summary}"
              + (f" ({resolved} resolved)" if resolved else ""))
        disputed = table[table["class"] == "disputed"]
        for rec in disputed.itertuples(index=False):
            print(f"  disputed: {rec.candidate_source} {rec.lesion_id}: {rec.votes or 'no votes'}")
    if not done:
        raise ParameterError(f"{args.study}: no subject has votes from at least 2 raters")
    table, report = write_agreement(study, done, read_panel(study))
    print(f"agreement over {', '.join('sub-' + s for s in done)} -> {StudyFiles.at(args.study).agreement_tsv}")
    for rec in table.itertuples(index=False):
        value = "n/a" if math.isnan(rec.value) else f"{rec.value:.3f}"
        print(f"  {rec.measure} [{rec.raters.replace(';', ', ')}]: {value} (n={rec.n_items})")
    return 0
