"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import StudyLayoutError
from ..io.layout import StudyFiles, SubjectFiles


def add_study_arguments(parser: argparse.ArgumentParser, *, study_required: bool = True) -> None:
    """``STUDY`` and ``--subject LABEL ...``."""
    parser.add_argument(
        "study", metavar="STUDY", type=Path, nargs=None if study_required else "?",
        help="study folder in the layout of docs/study_layout.md",
    )
    parser.add_argument(
        "--subject", metavar="LABEL", nargs="+", default=None,
        help="subject label(s), with or without 'sub-' (default: every sub-* folder)",
    )


def selected_subjects(args: argparse.Namespace) -> list[SubjectFiles]:
    """The subjects a study command should process; a clear error if there are none."""
    study = StudyFiles.at(args.study)
    subjects = study.subjects(args.subject)
    if not subjects:
        raise StudyLayoutError(f"{study.root}: no sub-* folders")
    return subjects
