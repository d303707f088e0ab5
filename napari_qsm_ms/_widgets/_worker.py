"""Run a pure function in a napari thread worker with a progress bar and a Cancel button.

Widgets call :func:`run_with_progress`; the pure function receives ``progress=`` and reports
through it from the worker thread. A Qt signal carries each report to the GUI thread (queued
connection), and the Cancel button sets a :class:`~napari_qsm_ms.progress.CancelToken` that makes
the next report raise :class:`~napari_qsm_ms.errors.CancelledError` inside the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from napari.qt.threading import FunctionWorker, create_worker
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..errors import CancelledError
from ..progress import CancelToken


class _Relay(QObject):
    changed = Signal(float, str)


class ProgressPanel(QWidget):
    """A progress bar, a status line and a Cancel button; hidden while idle."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        row = QHBoxLayout()
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(row)
        lay.addWidget(self.status)
        self._relay = _Relay()
        self._relay.changed.connect(self._on_changed)
        self.token: CancelToken | None = None
        self.cancel_button.clicked.connect(self._on_cancel)
        self.set_idle("")

    def _on_changed(self, fraction: float, message: str) -> None:
        self.bar.setValue(int(round(1000 * fraction)))
        self.status.setText(message)

    def _on_cancel(self) -> None:
        if self.token is not None:
            self.token.cancel()
            self.status.setText("cancelling...")

    def set_idle(self, message: str) -> None:
        self.cancel_button.setEnabled(False)
        self.status.setText(message)

    def start(self) -> Callable[[float, str], None]:
        """Show as busy and return the thread-safe progress callback for the pure function."""
        self.token = CancelToken()
        self.bar.setValue(0)
        self.cancel_button.setEnabled(True)
        return self.token.wrap(lambda f, m: self._relay.changed.emit(f, m))


def run_with_progress(
    func: Callable[..., Any],
    panel: ProgressPanel,
    *,
    on_returned: Callable[[Any], None],
    on_error: Callable[[BaseException], None] | None = None,
    start: bool = True,
    **kwargs: Any,
) -> FunctionWorker:
    """Call ``func(**kwargs, progress=cb)`` in a worker thread, reporting into ``panel``.

    Parameters
    ----------
    func : callable
        A pure function accepting ``progress=``.
    panel : ProgressPanel
        Where progress shows; its Cancel button stops the work.
    on_returned : callable
        Called on the GUI thread with the result.
    on_error : callable, optional
        Called on the GUI thread with the exception (not for cancellation, which only resets the
        panel). Defaults to a napari notification.
    start : bool
        Start at once (tests may pass False and start inside ``qtbot.waitSignal``).

    If ``panel`` is destroyed (its dock closed) before the work ends, the work is cancelled at its
    next report and neither callback runs: nothing touches the deleted widgets.
    """
    progress = panel.start()
    token = panel.token
    # _ignore_errors: errors go to on_error only (superqt would also re-raise them in the Qt loop)
    worker = create_worker(func, progress=progress, _start_thread=False, _ignore_errors=True, **kwargs)
    alive = [True]

    def _panel_gone(*_: Any) -> None:  # the dock was closed while working: stop, show nothing
        alive[0] = False
        token.cancel()

    panel.destroyed.connect(_panel_gone)

    def _done(result: Any) -> None:
        if not alive[0]:
            return
        panel.set_idle("done")
        panel.bar.setValue(1000)
        on_returned(result)

    def _failed(exc: BaseException) -> None:
        if not alive[0]:
            return
        if isinstance(exc, CancelledError):
            panel.set_idle("cancelled")
            return
        panel.set_idle(f"error: {exc}")
        if on_error is not None:
            on_error(exc)
        else:
            from napari.utils.notifications import show_error

            show_error(str(exc))

    worker.returned.connect(_done)
    worker.errored.connect(_failed)
    if start:
        worker.start()
    return worker
