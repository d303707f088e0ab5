"""`qsm-ms consensus` (placeholder: its issue replaces this module)."""

from __future__ import annotations

import argparse

from ..errors import QSMMSError


def register(subparsers) -> None:
    p = subparsers.add_parser("consensus", help="(not yet available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise QSMMSError("'consensus' is not available yet in this build")
