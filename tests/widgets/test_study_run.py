"""The Study dock runs the whole study in the background, per-subject states, failures, cancel."""

from __future__ import annotations

import json

from napari_qsm_ms.cohort.run import plan_study
from napari_qsm_ms.errors import CancelledError
from tests.cohort._study import FAST, make_tiny_study


def _table(widget):
    t = widget.states
    return {t.item(i, 0).text(): (t.item(i, 1).text(), t.item(i, 2).text()) for i in range(t.rowCount())}


def _dock(viewer, study, tmp_path):
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Study")
    params = tmp_path / "params.json"
    params.write_text(json.dumps(FAST))
    widget.params_edit.setText(str(params))
    widget.open_study(study.root)  # the states are checked in a worker
    return widget


def _wait_for_states(qtbot, widget):
    qtbot.waitUntil(lambda: widget.states.rowCount() == 4 and widget.panel.status.text() == "done",
                    timeout=20000)


def test_study_dock_runs_the_study_and_shows_each_subjects_state(make_napari_viewer, qtbot, tmp_path):
    study = make_tiny_study(tmp_path / "study")
    phase = study.subject("02").phase
    phase.write_bytes(phase.read_bytes()[:1000])  # a truncated phase file
    viewer = make_napari_viewer()
    widget = _dock(viewer, study, tmp_path)
    _wait_for_states(qtbot, widget)
    assert widget.jobs_spin.value() >= 1
    assert _table(widget)["sub-01"] == ("out of date", "recon missing (not run yet)")
    widget.step_combo.setCurrentText("recon")
    widget.jobs_spin.setValue(1)
    with qtbot.waitSignal(widget.run_button.clicked, timeout=1000):
        widget.run_button.click()
    qtbot.waitUntil(lambda: widget.run_result is not None, timeout=60000)
    rows = _table(widget)
    assert rows["sub-01"][0] == "done" and rows["sub-03"][0] == "done"
    assert rows["sub-02"][0] == "failed"
    assert rows["sub-02"][1].startswith("recon: ") and phase.name in rows["sub-02"][1]
    assert "1 failed: sub-02" in widget.panel.status.text()
    qtbot.waitUntil(lambda: widget.run_button.isEnabled(), timeout=5000)
    widget.refresh_states(blocking=True)  # the records on disk agree with what the dock showed
    assert _table(widget)["sub-01"][0] == "done" and _table(widget)["sub-02"][0] == "out of date"


def test_study_dock_cancel_stops_the_run(make_napari_viewer, qtbot, tmp_path):
    study = make_tiny_study(tmp_path / "study")
    viewer = make_napari_viewer()
    widget = _dock(viewer, study, tmp_path)
    _wait_for_states(qtbot, widget)
    widget.step_combo.setCurrentText("recon")
    widget.jobs_spin.setValue(1)
    worker = widget.start_run()
    errors = []
    worker.errored.connect(errors.append)
    widget.panel.cancel_button.click()
    qtbot.waitUntil(lambda: widget.run_button.isEnabled(), timeout=60000)
    assert widget.run_result is None and [type(e) for e in errors] == [CancelledError]
    qtbot.waitUntil(lambda: widget.panel.status.text() == "done", timeout=20000)  # states re-checked
    states = plan_study(study.root, FAST, only=["recon"])
    assert [s[0].state for t, s in states.items() if t != "study"].count("done") < 3
    assert _table(widget)["sub-03"][0] == "out of date"
