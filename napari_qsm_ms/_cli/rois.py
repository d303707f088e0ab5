"""`qsm-ms rois` (placeholder: its issue replaces this module)."""

from __future__ import annotations

import argparse

from ..errors import QSMMSError


def register(subparsers) -> None:
    p = subparsers.add_parser("rois", help="(not yet available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise QSMMSError("'rois' is not available yet in this build")
