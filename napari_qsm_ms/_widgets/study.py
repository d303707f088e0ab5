"""The "Study" dock: open a study, check it, switch subjects, run the whole study.

"Run study" calls :func:`napari_qsm_ms.cohort.run.run_study` (what ``qsm-ms run`` calls) in a
worker thread; its per-subject events come back to the GUI thread through a queued Qt signal and
update the subject table (done, out of date, running, failed with its one-line reason).
"""

from __future__ import annotations

from pathlib import Path

import napari
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .._reader import resolve_subject, subject_layer_data
from ..cohort.resources import default_jobs
from ..cohort.run import DONE, FAILED, STUDY_TARGET, outcome_status, plan_study, run_study, subject_status
from ..cohort.steps import ALL_STEPS
from ..errors import QSMMSError, one_line
from ..io.layout import StudyFiles, SubjectFiles, subject_from_path
from ..io.study import StudyReport, scan_study
from ..progress import report
from ._layers import apply_display_hints, current_subject, set_axial_view, show_subject_layers
from ._worker import ProgressPanel, run_with_progress


def load_subject_layers(subject: SubjectFiles, progress=None):
    """Pure: read a subject's LayerData (for the worker)."""
    report(progress, 0.1, f"reading sub-{subject.label}")
    layers = subject_layer_data(subject)
    report(progress, 1.0, f"read {len(layers)} layers")
    return layers


def _read_only_table(headers: list[str]) -> QTableWidget:
    """A read-only table whose last column takes the remaining width."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.horizontalHeader().setSectionResizeMode(len(headers) - 1, QHeaderView.Stretch)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.NoEditTriggers)
    return table


class _EventRelay(QObject):
    """Carries run events from worker threads to the GUI thread (queued connection)."""

    event = Signal(object)


class StudyWidget(QWidget):
    """Open a study folder, see what each subject has or lacks, load a subject's layers."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.study: StudyFiles | None = None
        self.report: StudyReport | None = None

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("study folder (BIDS, see docs/study_layout.md)")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._on_browse)
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(self._on_open)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        row.addWidget(self.open_button)

        self.subject_combo = QComboBox()
        self.load_button = QPushButton("Load subject")
        self.load_button.clicked.connect(self._on_load)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("Subject"))
        row2.addWidget(self.subject_combo, 1)
        row2.addWidget(self.load_button)

        self.summary = QLabel("No study open.")
        self.summary.setWordWrap(True)
        self.findings = _read_only_table(["severity", "file", "problem"])
        self.panel = ProgressPanel()

        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addLayout(row2)
        lay.addWidget(self.summary)
        lay.addWidget(self.findings, 1)
        lay.addLayout(self._build_run_controls())
        lay.addWidget(self.states, 1)
        lay.addWidget(self.panel)
        self.worker = None
        self.run_worker = None
        self.run_result = None

    def _build_run_controls(self) -> QVBoxLayout:
        """Jobs, steps, force, parameters file, the Run button and the subject-state table."""
        self.jobs_spin = QSpinBox()
        self.jobs_spin.setRange(1, 256)
        self.jobs_spin.setToolTip("subjects at once (default: from the cores and memory)")
        self.step_combo = QComboBox()
        self.step_combo.addItems(["all steps", *ALL_STEPS])
        self.force_check = QCheckBox("force")
        self.force_check.setToolTip("run the steps even when their outputs are up to date")
        self.params_edit = QLineEdit()
        self.params_edit.setPlaceholderText(
            'parameters JSON file or object (optional), e.g. {"recon": {"inversion": "tkd"}}')
        self.run_button = QPushButton("Run study")
        self.run_button.clicked.connect(self._on_run)
        row = QHBoxLayout()
        row.addWidget(QLabel("Jobs"))
        row.addWidget(self.jobs_spin)
        row.addWidget(self.step_combo)
        row.addWidget(self.force_check)
        row.addWidget(self.run_button)
        self.states = _read_only_table(["subject", "state", "detail"])
        self._relay = _EventRelay()
        self._relay.event.connect(self._on_event)
        box = QVBoxLayout()
        box.addLayout(row)
        box.addWidget(self.params_edit)
        return box

    # --- actions --------------------------------------------------------------------------------
    def _on_browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open study folder", self.path_edit.text())
        if folder:
            self.path_edit.setText(folder)
            self._on_open()

    def _on_open(self) -> None:
        try:
            self.open_study(Path(self.path_edit.text()).expanduser())
        except QSMMSError as exc:
            self.summary.setText(f"error: {exc}")

    def _on_load(self) -> None:
        if self.study is None or not self.subject_combo.currentText():
            return
        label = self.subject_combo.currentText().removeprefix("sub-")
        self.load_subject(self.study.subject(label))

    # --- API used by qsm-ms view and tests -----------------------------------------------------
    def open_study(self, root: Path) -> StudyReport:
        """Scan ``root``, fill the subject list and the findings table."""
        root = Path(root)
        sub = subject_from_path(root) if root.is_dir() else None
        if sub is not None:
            root = sub.study
        self.path_edit.setText(str(root))
        self.report = scan_study(root)
        self.study = StudyFiles.at(root)
        self.subject_combo.clear()
        self.subject_combo.addItems([f"sub-{s.label}" for s in self.report.subjects])
        if sub is not None:
            self.subject_combo.setCurrentText(f"sub-{sub.label}")
        n_err = len(self.report.errors)
        self.summary.setText(
            f"{len(self.report.subjects)} subject(s); {n_err} error(s), "
            f"{len(self.report.findings) - n_err} note(s)."
        )
        self._fill_findings()
        labels = [s.label for s in self.report.subjects]
        if labels:
            self.jobs_spin.setValue(default_jobs(self.study, labels)[0])
        self.refresh_states()
        return self.report

    # --- running the study ----------------------------------------------------------------------
    def _only(self) -> list[str] | None:
        text = self.step_combo.currentText()
        return None if text == "all steps" else [text]

    def _params(self) -> dict | None:
        text = self.params_edit.text().strip()
        if not text:
            return None
        import json

        try:
            return json.loads(Path(text).read_text(encoding="utf-8") if not text.startswith("{") else text)
        except (OSError, ValueError) as exc:
            raise QSMMSError(f"parameters: not a JSON object or file ({one_line(exc)})") from None

    def refresh_states(self, *, blocking: bool = False):
        """Fill the subject table with each subject's state (done / out of date) from the records
        (in a worker unless ``blocking``: checking a large study reads checksums)."""
        if self.study is None:
            return None
        try:
            kwargs = dict(study_root=self.study.root, params=self._params(), only=self._only())
        except QSMMSError as exc:
            self.panel.set_idle(f"error: {exc}")
            return None
        if blocking:
            self._show_plan(plan_study(**kwargs))
            return None
        self.plan_worker = run_with_progress(plan_study, self.panel, on_returned=self._show_plan, **kwargs)
        return self.plan_worker

    def _show_plan(self, plan) -> None:
        self.states.setRowCount(len(plan))
        for i, (target, states) in enumerate(plan.items()):
            self._set_state_row(i, target, *subject_status(states))

    def _set_state_row(self, row: int, target: str, state: str, detail: str) -> None:
        name = target if target == STUDY_TARGET else f"sub-{target}"
        for j, text in enumerate([name, state, detail]):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            self.states.setItem(row, j, item)

    def _row_of(self, target: str) -> int:
        """The table row of ``target`` (a row is added when it has none yet)."""
        name = target if target == STUDY_TARGET else f"sub-{target}"
        for i in range(self.states.rowCount()):
            if self.states.item(i, 0) is not None and self.states.item(i, 0).text() == name:
                return i
        self.states.insertRow(self.states.rowCount())
        return self.states.rowCount() - 1

    def _on_run(self) -> None:
        if self.study is None:
            return
        try:
            self.start_run()
        except QSMMSError as exc:
            self.panel.set_idle(f"error: {exc}")

    def start_run(self):
        """Run the whole study in a worker thread (the Cancel button of the progress panel stops it)."""
        self.run_button.setEnabled(False)
        self.run_result = None
        self.run_worker = run_with_progress(
            run_study, self.panel, on_returned=self._on_run_done, on_error=self._on_run_error,
            study_root=self.study.root, params=self._params(), only=self._only(),
            force=self.force_check.isChecked(), jobs=self.jobs_spin.value(), on_event=self._relay.event.emit,
        )
        self.run_worker.finished.connect(self._on_run_finished)
        return self.run_worker

    def _on_run_finished(self) -> None:
        self.run_button.setEnabled(True)
        if self.run_result is None:  # cancelled or stopped by an error: show what is on disk now
            self.refresh_states()

    def _on_event(self, ev) -> None:
        if not ev.step:
            return
        row = self._row_of(ev.subject)
        state = {FAILED: "failed", DONE: "running"}.get(ev.kind, "running")
        self._set_state_row(row, ev.subject, state, f"{ev.step} {100 * ev.fraction:.0f}%: {ev.message}")

    def _on_run_done(self, result) -> None:
        self.run_result = result
        for outcome in result.subjects + ([result.study] if result.study else []):
            self._set_state_row(self._row_of(outcome.target), outcome.target, *outcome_status(outcome))
        self.panel.set_idle(result.summary().removeprefix("qsm-ms run: "))

    def _on_run_error(self, exc: BaseException) -> None:
        self.panel.set_idle(f"error: {one_line(exc)}")

    def _fill_findings(self) -> None:
        rows = [f for f in self.report.findings] if self.report else []
        self.findings.setRowCount(len(rows))
        for i, f in enumerate(rows):
            for j, text in enumerate([f.severity, f.path.name, f.problem]):
                item = QTableWidgetItem(text)
                item.setToolTip(str(f))
                self.findings.setItem(i, j, item)
        self.findings.resizeColumnsToContents()

    def load_subject(self, subject: SubjectFiles, *, blocking: bool = False):
        """Replace the viewer's subject layers with ``subject``'s (in a worker unless ``blocking``)."""
        if blocking:
            self._add_layers(load_subject_layers(subject))
            return None
        self.worker = run_with_progress(
            load_subject_layers, self.panel, on_returned=self._add_layers, subject=subject
        )
        return self.worker

    def _add_layers(self, layer_data) -> None:
        show_subject_layers(self.viewer, layer_data)
        subject = current_subject(self.viewer)
        if subject is not None:
            self.viewer.title = f"napari-qsm-ms: sub-{subject.label}"


def open_in_viewer(viewer: napari.Viewer, paths: list[Path], *, docks: bool = True) -> None:
    """What ``qsm-ms view`` does: folders load a subject (with the Study dock), files open as layers."""
    folders = [Path(p) for p in paths if Path(p).is_dir()]
    files = [str(p) for p in paths if not Path(p).is_dir()]
    if folders:
        subject = resolve_subject(folders[0])
        _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Study")
        widget.open_study(folders[0])
        if subject is not None:
            widget.load_subject(subject, blocking=True)
        if docks:
            viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Lesions and references")
    if files:
        for layer in viewer.open(files, plugin="napari-qsm-ms"):
            apply_display_hints(layer)
        set_axial_view(viewer)
