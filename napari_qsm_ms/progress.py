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


def scaled(
    progress: ProgressCallback | None, start: float, stop: float, stage: str | None = None
) -> ProgressCallback | None:
    """A callback mapping a sub-task's 0..1 onto ``start..stop`` of ``progress``.

    With ``stage``, its messages are prefixed ``"<stage>: "`` so that a log groups them
    (:func:`stage_of`).
    """
    if progress is None:
        return None

    def _sub(fraction: float, message: str) -> None:
        if stage is not None and stage_of(message) != stage:
            message = f"{stage}: {message}"
        progress(start + (stop - start) * min(max(fraction, 0.0), 1.0), message)

    return _sub


def stage_of(message: str) -> str:
    """The stage a progress message belongs to: the text before its first ``": "``, or, without
    one, the message with its numbers taken out ("PDF iteration 3" -> "PDF iteration")."""
    head, sep, _ = message.partition(": ")
    if sep:
        return head.strip()
    return " ".join(w for w in message.split() if not any(c.isdigit() for c in w)) or message


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
    """Command-line progress on stderr.

    On a terminal, a one-line bar redrawn in place. Elsewhere (a batch job, CI, a log file) a few
    lines per stage (:func:`stage_of`): when it starts and when it is done, with its time, instead
    of one line per update.
    """

    def __init__(self, prefix: str = "", stream: TextIO | None = None, width: int = 30) -> None:
        self.prefix = prefix
        self.stream = stream or sys.stderr
        self.width = width
        self._last_line = ""
        self._tty = getattr(self.stream, "isatty", lambda: False)()
        self._t0 = time.perf_counter()
        self._stage: str | None = None
        self._stage_t0 = self._t0
        self._last_message = ""

    def __call__(self, fraction: float, message: str) -> None:
        if self._tty:
            filled = int(round(self.width * fraction))
            line = (
                f"{self.prefix}[{'#' * filled}{'.' * (self.width - filled)}] {100 * fraction:5.1f}% "
                f"{time.perf_counter() - self._t0:6.1f}s {message}"
            )
            self.stream.write("\r" + line.ljust(len(self._last_line)))
            self._last_line = line
        else:
            stage = stage_of(message)
            if fraction >= 1.0 and stage != self._stage:  # the final report: one closing line
                self._end_stage()
                self.stream.write(f"{self.prefix}{message} ({time.perf_counter() - self._t0:.1f} s)\n")
                self._stage = None
            elif stage != self._stage:
                self._end_stage()
                self._stage, self._stage_t0 = stage, time.perf_counter()
                self.stream.write(f"{self.prefix}{stage}: started at {100 * fraction:.0f}% "
                                  f"({self._stage_t0 - self._t0:.1f} s)\n")
        self._last_message = message
        self.stream.flush()

    def _end_stage(self) -> None:
        if self._stage is None:
            return
        now = time.perf_counter()
        last = self._last_message
        if last.startswith(f"{self._stage}: "):
            last = last[len(self._stage) + 2:]
        detail = f" ({last})" if last and last not in (self._stage, "start") else ""
        self.stream.write(f"{self.prefix}{self._stage}: done in {now - self._stage_t0:.1f} s{detail}\n")
        self._stage = None

    def close(self) -> None:
        if self._tty and self._last_line:
            self.stream.write("\n")
        elif not self._tty:
            self._end_stage()
        self.stream.flush()
