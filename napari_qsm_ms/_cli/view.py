"""`qsm-ms view [STUDY | SUBJECT_DIR | FILE ...]`: open napari with the plugin and the data loaded."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import QSMMSError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "view",
        help="open napari with the plugin's docks and a study, subject folder or NIfTI files loaded",
        description="Open napari with the QSM-MS docks. A study folder opens its first subject "
        "(switch subjects in the Study dock); a sub-* folder opens that subject; NIfTI files open as layers.",
    )
    p.add_argument("paths", metavar="PATH", nargs="*", type=Path, help="study folder, sub-* folder or NIfTI files")
    p.add_argument("--no-docks", action="store_true", help="do not open the plugin's docks")
    p.add_argument(
        "--sample",
        action="store_true",
        help="open the shipped sample study from a user copy (the installed files are never edited)",
    )
    p.set_defaults(func=run)


def check_view_paths(paths: list[Path]) -> None:
    """Validate before any window opens, so bad input gives one line and exit 2."""
    from .._reader import unreadable_reason

    for p in paths:
        reason = unreadable_reason(p)
        if reason is not None:
            raise QSMMSError(reason)


def run(args: argparse.Namespace) -> int:
    if args.sample:
        from .._sample_data import sample_study_copy

        args.paths = [sample_study_copy(), *args.paths]
    check_view_paths(args.paths)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise QSMMSError("no display available (DISPLAY is not set); run under a desktop or xvfb-run")
    import napari

    from .._widgets.study import open_in_viewer

    viewer = napari.Viewer(title="napari-qsm-ms")
    open_in_viewer(viewer, args.paths, docks=not args.no_docks)
    napari.run()
    return 0
