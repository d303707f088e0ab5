"""Progress reporting and cancellation for long pure computations, without Qt.

Long functions take ``progress: ProgressCallback | None``. They call ``progress(fraction, message)``
with ``fraction`` in [0, 1]. The callback may raise :class:`~napari_qsm_ms.errors.CancelledError`
to stop the work (the GUI's Cancel button does this); pure code must let it propagate and must not
leave partial output files behind (write atomically, at the end).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from .errors import CancelledError

ProgressCallback = Callable[[float, str], None]


def report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    """Call ``progress`` if given (the one-liner pure code uses)."""
    if progress is not None:
        progress(min(max(float(fraction), 0.0), 1.0), message)


def scaled(progress: ProgressCallback | None, start: float, stop: float) -> ProgressCallback | None:
    """A callback mapping a sub-task's 0..1 onto ``start..stop`` of ``progress``."""
    if progress is None:
        return None

    def _sub(fraction: float, message: str) -> None:
        progress(start + (stop - start) * min(max(fraction, 0.0), 1.0), message)

    return _sub


class CancelToken:
    """A thread-safe flag; :meth:`wrap` turns a callback into one that raises once cancelled."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wrap(self, progress: ProgressCallback | None = None) -> ProgressCallback:
        def _checked(fraction: float, message: str) -> None:
            if self._event.is_set():
                raise CancelledError("cancelled by the user")
            if progress is not None:
                progress(fraction, message)

        return _checked


class TextProgress:
    """A one-line text progress bar for the command line (stderr, redrawn in place on a TTY)."""

    def __init__(self, prefix: str = "", stream: TextIO | None = None, width: int = 30) -> None:
        self.prefix = prefix
        self.stream = stream or sys.stderr
        self.width = width
        self._last_line = ""
        self._tty = getattr(self.stream, "isatty", lambda: False)()
        self._t0 = time.perf_counter()

    def __call__(self, fraction: float, message: str) -> None:
        filled = int(round(self.width * fraction))
        line = (
            f"{self.prefix}[{'#' * filled}{'.' * (self.width - filled)}] {100 * fraction:5.1f}% "
            f"{time.perf_counter() - self._t0:6.1f}s {message}"
        )
        if self._tty:
            self.stream.write("\r" + line.ljust(len(self._last_line)))
        elif message != getattr(self, "_last_message", None):
            self.stream.write(line + "\n")
        self._last_message = message
        self._last_line = line
        self.stream.flush()

    def close(self) -> None:
        if self._tty and self._last_line:
            self.stream.write("\n")
            self.stream.flush()
