"""run_with_progress when the dock is closed while the work runs (found by a teardown error of the
Workspace test: the worker's end touched a deleted Cancel button)."""

import threading

from qtpy.QtWidgets import QWidget

from napari_qsm_ms._widgets._worker import ProgressPanel, run_with_progress
from napari_qsm_ms.errors import CancelledError


def test_closing_the_panel_while_working_cancels_and_calls_nothing(qtbot):
    host = QWidget()
    panel = ProgressPanel(host)
    release, reports = threading.Event(), []
    returned = []

    def slow(progress):
        release.wait(10)
        try:
            progress(0.5, "half")
        except CancelledError:
            reports.append("cancelled")
            raise
        return 1

    worker = run_with_progress(slow, panel, on_returned=returned.append, on_error=returned.append, start=False)
    with qtbot.waitSignal(worker.finished, timeout=10000):
        worker.start()
        host.deleteLater()  # the dock goes away with its panel
        qtbot.wait(50)
        release.set()
    qtbot.wait(50)
    assert reports == ["cancelled"] and returned == []


def test_an_open_panel_gets_the_result(qtbot):
    host = QWidget()
    panel = ProgressPanel(host)
    returned = []
    worker = run_with_progress(lambda progress: 7, panel, on_returned=returned.append, start=False)
    with qtbot.waitSignal(worker.finished, timeout=10000):
        worker.start()
    qtbot.wait(20)
    assert returned == [7] and panel.status.text() == "done"
    host.deleteLater()
