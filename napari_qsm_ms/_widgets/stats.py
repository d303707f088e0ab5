"""The "Statistics" dock: lesion table, Figure 2, live values while ROIs are edited, export;
lesion markers (PRL count, CVS fraction and its rules per subject, rim profiles of PRL vs
non-PRL lesions) as ``qsm-ms stats`` writes them (``stats.markers.marker_summary`` of the same
``compute_study``).

Thin by design: the numbers come from :mod:`napari_qsm_ms.stats` (``compute_study`` for the
study, ``live_subject_stats`` for the subject shown in the viewer, ``run_study_stats`` for the
export), run in thread workers; this module only lays out widgets and forwards actions. The live
values and the export use the same ``compute_subject_stats`` on the files' voxel order; when the
layers are not the saved files (e.g. a Chimap only in memory, an unsaved edit), the dock says so
plainly, since the export and the report read the files.
"""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
import pandas as pd
from qtpy.QtCore import Qt, QTimer
from qtpy.QtGui import QBrush, QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..errors import QSMMSError
from ..io.layout import StudyFiles, SubjectFiles
from ..stats.markers import marker_summary, study_rim_figure
from ..stats.study import OPTIONAL_MAPS, compute_study, live_subject_stats, run_study_stats
from ..stats.tests import ALPHA, N_COMPARISONS, paper_tests
from ._layers import layer_to_volume, show_lesion
from ._worker import ProgressPanel, run_with_progress
from ._scroll import scroll_contents
from ._tables import fit_columns

#: (lesions.tsv column, header)
TABLE_COLUMNS = [
    ("subject", "Subject"),
    ("lesion_id", "ID"),
    ("class", "Class"),
    ("part", "Part"),
    ("relative_ppm", "Rel. (ppm)"),
    ("lesion_ppm", "Lesion (ppm)"),
    ("reference_ppm", "Ref. (ppm)"),
    ("lesion_voxels", "Vox"),
    ("reference_voxels", "Ref vox"),
    ("included", "In tests"),
    ("prl", "PRL"),
    ("cvs", "CVS"),
    ("flags", "Flags"),
]
#: Lesion-marker columns of the table: from the last Compute/Export (saved files), by (subject, id).
MARKER_TABLE_COLUMNS = ("prl", "cvs")
#: (subjects.tsv column, header) of the marker summary (stats.markers.marker_summary).
MARKER_SUMMARY_COLUMNS = [
    ("subject", "Subject", "subject label"),
    ("n_prl", "PRL", "paramagnetic rim lesions counted"),
    ("prl_source", "PRL from", "rated (the rim round's consensus) or measured (the rim score's suggestion)"),
    ("n_cvs_eligible", "Eligible", "lesions assessed for the central vein sign (not excluded)"),
    ("n_cvs_excluded", "Excl.", "lesions excluded (NAIMS: under 3 mm, confluent, several veins; or rated)"),
    ("n_cvs", "CVS+", "eligible lesions with a central vein"),
    ("cvs_fraction", "Fraction", "CVS+ / eligible"),
    ("cvs_40pct", "\u2265 40 %", "CVS in at least 40 % of the eligible lesions"),
    ("cvs_select3", "Sel-3*", "Select-3*: at least 3 CVS+ lesions (Solomon et al. 2018)"),
    ("cvs_select6", "Sel-6*", "Select-6*: at least 6 CVS+ lesions (Mult Scler 2024;30:25-34)"),
    ("cvs_source", "CVS from", "rated (the rim round's consensus) or measured"),
]
_FLAG_BRUSH = QBrush(QColor(255, 170, 60, 90))
_EXCLUDED_BRUSH = QBrush(QColor(140, 140, 140))
ROI_ROLES = ("lesions", "refwm", "refgm", "tissue", "qsm", "mask", "vessels")
DEBOUNCE_MS = 400


def _layer(viewer, role: str, subject: SubjectFiles | None = None):
    for layer in viewer.layers:
        meta = layer.metadata or {}
        if meta.get("role") == role and (subject is None or meta.get("subject") in (None, subject)):
            return layer
    return None


def _viewer_subject(viewer) -> SubjectFiles | None:
    for role in ("magnitude", "lesions", "qsm"):
        layer = _layer(viewer, role)
        if layer is not None and (layer.metadata or {}).get("subject") is not None:
            return layer.metadata["subject"]
    for layer in viewer.layers:
        sub = (layer.metadata or {}).get("subject")
        if sub is not None:
            return sub
    return None


def _fmt(value, column: str) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "n/a"
        if column.endswith("_fraction"):
            return f"{value:.2f}"
        return f"{value:+.4f}" if column.endswith("_ppm") else f"{value:g}"
    return "" if value is None else str(value)


class StatsWidget(QWidget):
    """Lesion table and Figure 2 of the loaded study, live values, export of the report."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.study: StudyFiles | None = None
        self.lesions = pd.DataFrame()
        self.markers = pd.DataFrame()  # per subject, as subjects.tsv (stats.markers.marker_summary)
        self.marker_lesions = pd.DataFrame()  # per lesion: subject, lesion_id, prl, cvs, sources
        self.rim_profiles = pd.DataFrame()
        self.live_subject: str | None = None
        self.unsaved: list[str] = []  # layers that differ from the files the export reads
        self._workers: list = []
        self._live_busy = False
        self._live_again = False
        self._connected: list = []
        state = self._state = {"alive": True}  # workers may return after the dock is deleted
        self.destroyed.connect(lambda *_: state.update(alive=False))

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("study folder (taken from the loaded subject)")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._on_browse)
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip(
            "Relative susceptibility of every lesion of the study, from the saved files"
        )
        self.compute_button.clicked.connect(self._on_compute)
        self.export_button = QPushButton("Export report...")
        self.export_button.setToolTip(
            "Write lesions.tsv, summary.tsv, model.tsv, bootstrap.tsv, figures and "
            "report.html (default derivatives/qsm-ms/stats), from the SAVED files"
        )
        self.export_button.clicked.connect(self._on_export)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        buttons = QHBoxLayout()
        buttons.addWidget(self.compute_button)
        buttons.addWidget(self.export_button)
        self.save_table_button = QPushButton("Save table...")
        self.save_table_button.setToolTip("The lesion table as shown (live values included) as TSV")
        self.save_table_button.clicked.connect(self._on_save_table)
        self.save_figure_button = QPushButton("Save Figure 2...")
        self.save_figure_button.setToolTip("Figure 2 of the values shown, as PNG and SVG")
        self.save_figure_button.clicked.connect(self._on_save_figure)
        buttons.addWidget(self.save_table_button)
        buttons.addWidget(self.save_figure_button)

        self.summary_label = QLabel("No study computed yet.")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.report_label = QLabel("")
        self.report_label.setWordWrap(True)
        self.report_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels([h for _, h in TABLE_COLUMNS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(6 * 22 + 28)  # several rows, even in a small dock
        self._fitter = fit_columns(self.table, len(TABLE_COLUMNS) - 1)  # Flags visible without scrolling
        self.table.cellClicked.connect(self._on_row_clicked)

        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(6, 3.2), dpi=90)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(260)
        self.rim_figure = Figure(figsize=(6, 3.2), dpi=90)
        self.rim_canvas = FigureCanvasQTAgg(self.rim_figure)
        self.figure_tabs = QTabWidget()
        self.figure_tabs.addTab(self.canvas, "Figure 2")
        self.figure_tabs.addTab(self.rim_canvas, "Rim profiles (PRL vs non-PRL)")

        self.marker_label = QLabel("Lesion markers (PRL, central vein sign): press Compute.")
        self.marker_label.setWordWrap(True)
        self.marker_table = QTableWidget(0, len(MARKER_SUMMARY_COLUMNS))
        for c, (_, header, tip) in enumerate(MARKER_SUMMARY_COLUMNS):
            item = QTableWidgetItem(header)
            item.setToolTip(tip)
            self.marker_table.setHorizontalHeaderItem(c, item)
        self.marker_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.marker_table.verticalHeader().setVisible(False)
        self._marker_fitter = fit_columns(self.marker_table, 0)
        markers = QWidget()
        mlay = QVBoxLayout(markers)
        mlay.setContentsMargins(0, 0, 0, 0)
        mlay.addWidget(self.marker_label)
        mlay.addWidget(self.marker_table, 1)

        self.progress = ProgressPanel()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(markers)
        split.addWidget(self.figure_tabs)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.summary_label)
        lay.addWidget(split, 1)
        lay.addWidget(self.status_label)
        lay.addWidget(self.report_label)
        scroll_contents(self)  # fits a small screen: the dock's contents scroll

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.refresh_current_subject)
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self._on_layers_changed()

    # ------------------------------------------------------------------------------ study
    def _on_browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Study folder", self.path_edit.text())
        if path:
            self.path_edit.setText(path)

    def study_root(self) -> Path | None:
        text = self.path_edit.text().strip()
        if text:
            return Path(text)
        sub = _viewer_subject(self.viewer)
        return None if sub is None else Path(sub.study)

    def _on_layers_changed(self, event=None) -> None:
        sub = _viewer_subject(self.viewer)
        if sub is not None and not self.path_edit.text().strip():
            self.path_edit.setText(str(sub.study))
        self._connect_roi_layers()

    def _on_compute(self) -> None:
        self.compute(blocking=False)

    def compute(self, *, blocking: bool = False):
        """Compute the study statistics from the saved files (worker unless ``blocking``)."""
        root = self.study_root()
        if root is None:
            self._show_error("choose a study folder first")
            return None
        if blocking:
            try:
                result = compute_study(root, n_resamples=200)
            except QSMMSError as exc:
                self._show_error(str(exc))
                return None
            self._on_computed(result)
            return result
        worker = run_with_progress(
            compute_study,
            self.progress,
            on_returned=self._on_computed,
            on_error=lambda e: self._show_error(str(e)),
            study_root=root,
            n_resamples=200,
        )
        self._keep(worker)
        return worker

    def _on_computed(self, result) -> None:
        if not self._state["alive"]:
            return
        self.study = StudyFiles.at(result.root)
        self.lesions = result.lesions.copy()
        self.markers = marker_summary(result.subjects)
        keep = [c for c in ("subject", "lesion_id", "class", "prl", "prl_source", "cvs", "cvs_source",
                            "cvs_exclusion_reason") if c in result.lesions]
        self.marker_lesions = result.lesions[keep].drop_duplicates(["subject", "lesion_id"]) if keep else pd.DataFrame()
        self.rim_profiles = result.rim_profiles
        self.live_subject = None
        for note in result.notes:
            napari.utils.notifications.show_warning(note)
        self._show_table()
        self.status_label.setText("values from the saved files")
        if _viewer_subject(self.viewer) is not None:
            self._debounce.start()  # the loaded subject may have unsaved edits

    def _on_export(self) -> None:
        root = self.study_root()
        if root is None:
            self._show_error("choose a study folder first")
            return
        default = StudyFiles.at(root).stats_dir
        out = QFileDialog.getExistingDirectory(self, "Output folder (replaced)", str(default.parent))
        if out:
            self.export(root, Path(out) / "stats" if Path(out) == default.parent else Path(out))

    def export(self, root: Path, out_dir: Path | None = None, *, start: bool = True):
        """Run ``run_study_stats`` (files written) in a worker; returns it."""
        worker = run_with_progress(
            run_study_stats,
            self.progress,
            on_returned=self._on_exported,
            on_error=lambda e: self._show_error(str(e)),
            start=start,
            study_root=root,
            out_dir=out_dir,
        )
        self._keep(worker)
        return worker

    def _on_exported(self, result) -> None:
        if not self._state["alive"]:
            return
        self._on_computed(result)
        where = f"{result.parameters.get('out_dir')}/report.html"
        self.status_label.setText(f"report written: {where}")
        # stays until the next export (the status line is rewritten by every refresh)
        self.report_label.setText(f"Last report: {where}")

    def _on_save_table(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save lesion table", "lesions.tsv", "TSV (*.tsv)")
        if path:
            self.save_table(Path(path))

    def save_table(self, path: Path) -> Path:
        """Write the lesion table shown (with live values and their flags) as TSV, atomically."""
        from ..io.atomic import atomic_write_tsv

        out = atomic_write_tsv(path, self.lesions)
        self.status_label.setText(f"table written: {out}")
        return out

    def _on_save_figure(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save Figure 2", "figure2.png", "PNG (*.png)")
        if path:
            self.save_figure(Path(path))

    def save_figure(self, path: Path) -> dict:
        """Write Figure 2 of the values shown as ``path`` (.png) and the same name with .svg."""
        from ..stats.figures import figure2, save_figure

        paths = save_figure(figure2(self.lesions), Path(path).with_suffix(""))
        self.status_label.setText(f"figure written: {paths['png']} and .svg")
        return paths

    def _keep(self, worker) -> None:
        self._workers.append(worker)
        worker.finished.connect(lambda: self._workers.remove(worker) if worker in self._workers else None)

    def _show_error(self, message: str) -> None:
        if not self._state["alive"]:
            return
        self.status_label.setText(f"error: {message}")
        napari.utils.notifications.show_error(message)

    # ------------------------------------------------------------------------------ display
    def _show_table(self) -> None:
        frame = self.lesions
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(frame))
        included = frame["included"].astype(bool).tolist() if "included" in frame else [True] * len(frame)
        flagged = (
            frame["flags"].astype(str).str.replace(r"(^|;)from_layers", "", regex=True).ne("").tolist()
            if "flags" in frame
            else [False] * len(frame)
        )
        marker = self._marker_cells(frame)
        for c, (col, _) in enumerate(TABLE_COLUMNS):
            if col in MARKER_TABLE_COLUMNS:
                values = marker[col]
            else:
                values = frame[col].tolist() if col in frame else [""] * len(frame)
            right = col in ("lesion_id", "lesion_voxels", "reference_voxels") or col.endswith("_ppm")
            for r, value in enumerate(values):
                item = QTableWidgetItem(_fmt(value, col))
                if right:
                    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                if col == "flags" and value:
                    item.setToolTip(str(value).replace(";", "\n"))
                if col in MARKER_TABLE_COLUMNS and marker[f"{col}_tip"][r]:
                    item.setToolTip(marker[f"{col}_tip"][r])
                if not included[r]:
                    item.setForeground(_EXCLUDED_BRUSH)  # out of the tests
                elif flagged[r]:
                    item.setBackground(_FLAG_BRUSH)  # in the tests, but look at the flags
                self.table.setItem(r, c, item)
        self._fitter.fit()
        self._draw_figure()
        self._update_summary()
        self._show_markers()

    def _marker_cells(self, frame: pd.DataFrame) -> dict:
        """PRL / CVS of the rows of ``frame`` from the last computed markers (saved files)."""
        out = {k: [""] * len(frame) for k in ("prl", "cvs", "prl_tip", "cvs_tip")}
        if self.marker_lesions.empty or frame.empty or "prl" not in self.marker_lesions:
            return out
        by_key = {(str(r["subject"]), int(r["lesion_id"])): r for r in self.marker_lesions.to_dict("records")}
        for k, (subj, lid) in enumerate(zip(frame["subject"].astype(str), frame["lesion_id"])):
            rec = by_key.get((subj, int(lid)))
            if rec is None:
                continue
            out["prl"][k] = _fmt(bool(rec["prl"]), "prl") if pd.notna(rec["prl"]) else ""
            out["prl_tip"][k] = f"PRL: {rec.get('prl_source', '')}"
            reason = str(rec.get("cvs_exclusion_reason") or "")
            out["cvs"][k] = "excluded" if reason else (_fmt(bool(rec["cvs"]), "cvs") if pd.notna(rec["cvs"]) else "")
            out["cvs_tip"][k] = f"CVS: {rec.get('cvs_source', '')}" + (f"; excluded: {reason}" if reason else "")
        return out

    def _show_markers(self) -> None:
        frame = self.markers
        self.marker_table.setRowCount(len(frame))
        for c, (col, _, _) in enumerate(MARKER_SUMMARY_COLUMNS):
            for r, value in enumerate(frame[col].tolist() if col in frame else []):
                item = QTableWidgetItem(_fmt(value, col))
                if c and col not in ("prl_source", "cvs_source"):
                    item.setTextAlignment(int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter))
                self.marker_table.setItem(r, c, item)
        self._marker_fitter.fit()
        if not frame.empty:
            self.marker_label.setText(
                "Lesion markers per subject (as subjects.tsv; from the saved files). PRL / CVS: the rim "
                "round's consensus where the raters agreed, else the measured suggestion ('from')."
            )
        if self.rim_profiles.empty:
            self.rim_figure.clear()
        else:
            study_rim_figure(self.rim_profiles, self.marker_lesions, fig=self.rim_figure)
        try:
            self.rim_figure.tight_layout(pad=0.4)
        except (ValueError, RuntimeError):  # pragma: no cover - degenerate sizes while docking
            pass
        self.rim_canvas.draw_idle()

    def _update_summary(self) -> None:
        if self.lesions.empty:
            self.summary_label.setText("No lesions.")
            return
        s = paper_tests(self.lesions).set_index(["set", "level"])
        parts = []
        for key, label in (
            (("wm", "lesion"), "WM"),
            (("cortical", "lesion"), "cortical"),
            (("mixed_wm", "lesion"), "mixed WM"),
            (("mixed_cortical", "lesion"), "mixed cx"),
        ):
            r = s.loc[key]
            mean = f"{r['mean_ppm']:+.4f}" if np.isfinite(r["mean_ppm"]) else "n/a"
            p = f"{r['p']:.2g}" if np.isfinite(r["p"]) else "n/a"
            parts.append(f"{label}: n={int(r['n'])}, {mean} ppm, p={p}{' *' if r['significant'] else ''}")
        flags = self.lesions["flags"].astype(str).str.replace(r"(^|;)from_layers", "", regex=True)
        n_flag = int((flags != "").sum())
        self.summary_label.setText(
            " | ".join(parts) + f"  ({n_flag} rows flagged; * Bonferroni x{N_COMPARISONS} < {ALPHA})"
        )

    def _draw_figure(self) -> None:
        from ..stats.figures import figure2

        figure2(self.lesions, fig=self.figure)
        for text in list(self.figure.texts):  # the footnote does not fit in the dock
            text.remove()
        try:
            self.figure.tight_layout(pad=0.4)
        except (ValueError, RuntimeError):  # pragma: no cover - degenerate sizes while docking
            pass
        self.canvas.draw_idle()

    # ------------------------------------------------------------------------------ navigation
    def _on_row_clicked(self, row: int, _column: int) -> None:
        if row < 0 or row >= len(self.lesions):
            return
        rec = self.lesions.iloc[row]
        self.go_to_lesion(str(rec["subject"]), int(rec["lesion_id"]))

    def go_to_lesion(self, subject: str, lesion_id: int) -> bool:
        """Show lesion ``lesion_id`` of ``subject`` if that subject is loaded: central slice, centred."""
        sub = _viewer_subject(self.viewer)
        if sub is None or sub.label != subject:
            self.status_label.setText(
                f"lesion {lesion_id} belongs to sub-{subject}: load that subject (Study dock) to go to it"
            )
            return False
        layer = _layer(self.viewer, "lesions", sub)
        if layer is None:
            self.status_label.setText("no lesions layer loaded")
            return False
        central = show_lesion(self.viewer, layer, lesion_id)
        if central is None:
            self.status_label.setText(f"lesion {lesion_id} is not in the lesions layer")
            return False
        self.status_label.setText(f"sub-{subject} lesion {lesion_id}: slice {central}")
        return True

    # ------------------------------------------------------------------------------ live values
    def _connect_roi_layers(self) -> None:
        for emitter, cb in self._connected:
            try:
                emitter.disconnect(cb)
            except (TypeError, ValueError, RuntimeError):
                pass
        self._connected = []
        for role in ROI_ROLES:
            layer = _layer(self.viewer, role)
            if layer is None:
                continue
            for name in ("data", "paint", "set_data"):
                emitter = getattr(layer.events, name, None)
                if emitter is not None:
                    emitter.connect(self._on_roi_changed)
                    self._connected.append((emitter, self._on_roi_changed))

    def _on_roi_changed(self, event=None) -> None:
        self._debounce.start()

    def _layer_arrays(self, sub: SubjectFiles) -> dict | None:
        """The layers in the files' voxel order, as ``stats.study.subject_stats_from_arrays`` takes them."""
        les = _layer(self.viewer, "lesions", sub)
        if les is None:
            return None

        def source(role):
            layer = _layer(self.viewer, role, sub)
            if layer is None or np.shape(layer.data) != np.shape(les.data):
                return None
            return np.array(layer_to_volume(layer).data)

        lesions = layer_to_volume(les)
        roles = {"brain_mask": "mask"}
        return {"affine": lesions.affine, "lesions": np.array(lesions.data), "chi_ppm": source("qsm"),
                "maps": {name: source(roles.get(name, name)) for name in OPTIONAL_MAPS}}

    def refresh_current_subject(self, *, blocking: bool = False):
        """Recompute the loaded subject's rows from its layers (edited, maybe unsaved)."""
        sub = _viewer_subject(self.viewer)
        if sub is None:
            return None
        if self.study is not None and Path(sub.study).resolve() != Path(self.study.root).resolve():
            return None  # the loaded subject belongs to another study than the table
        arrays = self._layer_arrays(sub)
        if arrays is None:
            return None
        if blocking:
            self._on_live(sub, live_subject_stats(sub, **arrays))
            return None
        if self._live_busy:
            self._live_again = True
            return None
        from napari.qt.threading import create_worker

        self._live_busy = True
        worker = create_worker(live_subject_stats, sub, _start_thread=False, **arrays)
        worker.returned.connect(lambda out: self._on_live(sub, out))
        worker.errored.connect(lambda exc: self._show_error(str(exc)))
        worker.finished.connect(self._on_live_finished)
        self._keep(worker)
        worker.start()
        return worker

    def _on_live_finished(self) -> None:
        self._live_busy = False
        if not self._state["alive"]:
            return
        if self._live_again:
            self._live_again = False
            self._debounce.start()

    def _on_live(self, sub: SubjectFiles, live: tuple[pd.DataFrame, list[str]]) -> None:
        if not self._state["alive"]:
            return
        table, unsaved = live
        others = (
            self.lesions[self.lesions["subject"].astype(str) != sub.label]
            if not self.lesions.empty
            else self.lesions
        )
        frames = [f for f in (others, table) if not f.empty]
        merged = pd.concat(frames, ignore_index=True) if frames else table
        if "subject" in merged and not merged.empty:
            order = {
                s: k for k, s in enumerate(dict.fromkeys(list(self.lesions.get("subject", [])) + [sub.label]))
            }
            merged = (
                merged.assign(_o=merged["subject"].map(order))
                .sort_values(["_o", "lesion_id", "part"], kind="stable")
                .drop(columns="_o")
            )
        self.lesions = merged.reset_index(drop=True)
        self.live_subject = sub.label
        self._show_table()
        self.unsaved = unsaved
        if unsaved:
            self.status_label.setText(
                f"sub-{sub.label}: live values from the layers, NOT what Export writes: the export and "
                f"the report read the saved files, and these differ: {', '.join(unsaved)}. "
                "Save them (Reconstruct: 'Write Chimap + mask'; Lesions: Save) before exporting."
            )
        else:
            self.status_label.setText(
                f"sub-{sub.label}: live values from the layers = the saved files (as exported)"
            )
