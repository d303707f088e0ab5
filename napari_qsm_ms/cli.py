"""``qsm-ms``: the command line over the pure layers.

Each subcommand lives in ``napari_qsm_ms/_cli/<name>.py`` with two functions:
``register(subparsers)`` adds its parser (every option documented with unit and default) and sets
``func=run``; ``run(args) -> int`` does the work. Bad input raises a
:class:`~napari_qsm_ms.errors.QSMMSError`, which :func:`main` prints as one line on stderr with
exit status 2 (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .errors import CancelledError, QSMMSError, one_line

SUBCOMMANDS = ("recon", "coregister", "rois", "consensus", "stats", "simulate", "view", "run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qsm-ms",
        description="Quantitative susceptibility mapping of MS lesions (Bian et al., AJNR 2016) "
        "over a BIDS study; see docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"napari_qsm_ms._cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qsm-ms`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except QSMMSError as exc:
        if args.debug:
            raise
        print(f"qsm-ms {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except CancelledError:
        print(f"qsm-ms {args.command}: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"qsm-ms {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permission denied, ...: still one line, naming the file
        if args.debug:
            raise
        print(f"qsm-ms {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
