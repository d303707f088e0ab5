"""The "Study" dock: open a study, check it, switch subjects."""

from __future__ import annotations

from pathlib import Path

import napari
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .._reader import resolve_subject, subject_layer_data
from ..errors import QSMMSError
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


class StudyWidget(QWidget):
    """Open a study folder, see what each subject has or lacks, load a subject's layers."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.study: StudyFiles | None = None
        self.report: StudyReport | None = None

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("study folder (BIDS, see docs/ARCHITECTURE.md)")
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
        self.findings = QTableWidget(0, 3)
        self.findings.setHorizontalHeaderLabels(["severity", "file", "problem"])
        self.findings.horizontalHeader().setSectionResizeMode(2, QHeaderView.Stretch)
        self.findings.verticalHeader().setVisible(False)
        self.findings.setEditTriggers(QTableWidget.NoEditTriggers)
        self.panel = ProgressPanel()

        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addLayout(row2)
        lay.addWidget(self.summary)
        lay.addWidget(self.findings, 1)
        lay.addWidget(self.panel)
        self.worker = None

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
        return self.report

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
