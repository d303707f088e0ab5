"""Lesion-table panel of the Lesions dock: the table, lesion edits and exclusions.

The table rows come from :func:`roi.lesions.lesion_table` plus the consensus class
(:func:`roi.rules.drawn_classes`), the annotation flags and stale-reference flags
(:func:`roi.stale.stale_reference_flags`); edits call :mod:`roi.lesions` and go to the layers as
one undo step per layer. The annotation state (exclusions, flags) belongs to the dock.

The rim and vein columns come from :func:`stats.marker_view.dock_marker_table` (the measures of
``stats/lesions.tsv`` and the PRL / CVS decisions of ``qsm-ms stats``: the subject's rim-round
consensus where the raters agreed, else the measure), run in a worker whenever its inputs changed
(lesions, tissue, vessels, brain mask, QSM, T2* magnitude, the round's consensus file); a missing
input shows a dash whose tooltip says what to run.
"""

from __future__ import annotations


import napari
import numpy as np
import pandas as pd
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton

from ..errors import ParameterError, QSMMSError
from ..roi import lesions as roi_lesions
from ..roi.annotation import EXCLUSION_REASONS
from ..roi.rules import drawn_classes, read_consensus_table, reserved_ids
from ..roi.stale import stale_reference_flags
from ..stats.marker_view import dock_marker_table
from ._layers import centre_viewer_on, slice_axis_of, voxel_size_of
from ._lesion_table import LesionTableView, display_frame
from ._marker_inputs import marker_fingerprint, marker_inputs
from ._panel_tools import apply_labels_edit, raise_or_notify
from ._worker import ProgressPanel, run_with_progress


def guard(func, *args, **kwargs):
    """Run an action, turning input errors into a notification."""
    try:
        return func(*args, **kwargs)
    except QSMMSError as exc:
        napari.utils.notifications.show_error(str(exc))
        return None


class LesionsPanel(QGroupBox):
    """Lesion buttons, the lesion table and the exclusion row. ``dock`` is the
    :class:`.annotation.AnnotationWidget` it belongs to."""

    markers_measured = Signal()

    def __init__(self, dock):
        super().__init__("Lesions (drawn on T2* magnitude)")
        self.dock = dock
        self.lesion_frame: pd.DataFrame = pd.DataFrame(columns=roi_lesions.TABLE_COLUMNS)
        self.marker_frame: pd.DataFrame | None = None  # dock_marker_table of the last inputs
        self.marker_notes: dict[str, str] = {}  # column -> what to run (missing input)
        self._marker_key = None
        self._marker_worker = None
        self._marker_again = False
        self._marker_timer = QTimer(self)
        self._marker_timer.setSingleShot(True)
        self._marker_timer.setInterval(500)  # after the last edit
        self._marker_timer.timeout.connect(self._measure_if_changed)
        # QSM or magnitude layers coming and going change the measures' inputs too
        for emitter in (dock.viewer.layers.events.inserted, dock.viewer.layers.events.removed):
            dock._connect(emitter, self._on_layers_changed)
        grid = QGridLayout(self)
        self.new_button = QPushButton("New lesion")
        self.new_button.setToolTip("Select the next free lesion id and switch the lesions layer to paint mode")
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected lesions (and their references); undo with Ctrl-Z")
        self.merge_button = QPushButton("Merge")
        self.merge_button.setToolTip("Merge the selected lesions into the smallest of their ids")
        self.split_button = QPushButton("Split")
        self.split_button.setToolTip("Split the selected lesion into its 3-D connected components")
        for col, button in enumerate((self.new_button, self.delete_button, self.merge_button, self.split_button)):
            grid.addWidget(button, 0, col)
        self.new_button.clicked.connect(self.new_lesion)
        self.delete_button.clicked.connect(lambda: self.delete_lesions(self.table.selected_ids()))
        self.merge_button.clicked.connect(lambda: self.merge_lesions(self.table.selected_ids()))
        self.split_button.clicked.connect(self._on_split)
        self.table = LesionTableView()
        self.table.setMinimumHeight(220)
        self.table.setMinimumWidth(540)
        self.table.lesion_clicked.connect(self.go_to_lesion)
        grid.addWidget(self.table, 1, 0, 1, 4)
        self.summary_label = QLabel("")
        grid.addWidget(self.summary_label, 2, 0, 1, 4)
        grid.addLayout(self._exclusion_row(), 3, 0, 1, 4)
        self.marker_progress = ProgressPanel()
        self.marker_progress.setToolTip("Rim (QSM) and vein (T2* magnitude) measures of every lesion, in a worker")
        grid.addWidget(self.marker_progress, 4, 0, 1, 4)

    def _exclusion_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.reason_combo = QComboBox()
        self.reason_combo.addItems(EXCLUSION_REASONS)
        self.reason_edit = QLineEdit()
        self.reason_edit.setPlaceholderText("details (optional)")
        self.exclude_button = QPushButton("Exclude")
        self.exclude_button.setToolTip("Exclude the selected lesions from the statistics, with the reason")
        self.include_button = QPushButton("Include")
        self.include_button.setToolTip("Undo an exclusion of the selected lesions")
        self.exclude_button.clicked.connect(self._on_exclude)
        self.include_button.clicked.connect(lambda: self.include_lesions(self.table.selected_ids()))
        row.addWidget(self.reason_combo)
        row.addWidget(self.reason_edit, 1)
        row.addWidget(self.exclude_button)
        row.addWidget(self.include_button)
        return row

    # ----------------------------------------------------------------------- exclusions
    def exclude_lesions(self, ids: list[int], reason: str, note: str = "") -> None:
        """Mark lesions excluded (artefact, eroded by the QSM mask, ...) with a reason."""
        if not ids:
            raise ParameterError("select one or more lesions in the table first")
        if not reason.strip():
            raise ParameterError("give a reason for the exclusion")
        text = reason if not note.strip() else f"{reason}: {note.strip()}"
        if self.dock.state is None:
            raise QSMMSError("annotation state unavailable (roi.annotation missing)")
        for lid in ids:
            self.dock.state.exclude(int(lid), text)
        self.dock.state_changed()

    def include_lesions(self, ids: list[int]) -> None:
        for lid in ids:
            self.dock.state.include(int(lid))
        self.dock.state_changed()

    def _on_exclude(self) -> None:
        guard(self.exclude_lesions, self.table.selected_ids(), self.reason_combo.currentText(), self.reason_edit.text())

    def excluded(self) -> dict[int, str]:
        """Excluded lesion ids -> reason."""
        state = self.dock.state
        if state is None:
            return {}
        return {int(k): v.exclusion_reason for k, v in state.lesions.items() if v.excluded}

    # ---------------------------------------------------------------------------- table
    def consensus_classes(self) -> dict[int, str]:
        """lesion id -> consensus class of the drawn lesions in ``sub-*_lesions.tsv`` (empty if none)."""
        if self.dock.subject is None:
            return {}
        try:
            return drawn_classes(read_consensus_table(self.dock.subject))
        except QSMMSError as exc:
            self.summary_label.setText(str(exc))
            return {}

    def _extra_flags(self, consensus: dict[int, str] | None = None) -> dict[int, list[str]]:
        """Flags kept in the annotation state (reference flags, manual flags), per lesion, and
        references built for another class than the consensus gave (``roi.stale``)."""
        entries = {} if self.dock.state is None else self.dock.state.lesions
        flags = {int(k): list(v.flags) for k, v in entries.items() if v.flags}
        if consensus:
            frame = self.lesion_frame
            suggested = dict(zip(frame["lesion_id"].astype(int), frame["suggested_class"]))
            refs = [self.dock.layer(role) for role in ("refwm", "refgm")]
            stale = stale_reference_flags(
                consensus, suggested, *(None if r is None else np.asarray(r.data) for r in refs),
                set(self.excluded()),
            )
            for lid, flag in stale.items():
                flags.setdefault(lid, []).append(flag)
        return flags

    def refresh_table(self) -> None:
        """Recompute the lesion table from the layers and show it (about 10-100 ms)."""
        lesions = self.dock.layer("lesions")
        if lesions is None:
            self.lesion_frame = pd.DataFrame(columns=roi_lesions.TABLE_COLUMNS)
        else:
            tissue = self.dock.layer("tissue")
            tissue_data = None if tissue is None or not np.any(tissue.data) else np.asarray(tissue.data)
            self.lesion_frame = roi_lesions.lesion_table(
                np.asarray(lesions.data), tissue_data, voxel_size_of(lesions), slice_axis=slice_axis_of(lesions),
            )
        self._show_frame()
        if self._marker_key != marker_fingerprint(self.dock.layer, self.dock.subject):
            self._marker_timer.start()

    def _show_frame(self) -> None:
        consensus = self.consensus_classes()
        frame = display_frame(
            self.lesion_frame, consensus=consensus, extra_flags=self._extra_flags(consensus), excluded=self.excluded(),
            markers=self.marker_frame, marker_notes=self.marker_notes,
        )
        self.table.set_frame(frame)
        n = len(frame)
        n_flag = int((frame["flags"] != "").sum()) if n else 0
        n_excl = int(frame["excluded"].sum()) if n else 0
        self.summary_label.setText(f"{n} lesion(s), {n_flag} flagged, {n_excl} excluded")

    # ---------------------------------------------------------------------------- rim and vein
    def _on_layers_changed(self, event=None) -> None:
        if not getattr(self.dock, "_closed", False) and self.dock.subject is not None:
            self._marker_timer.start()

    def _measure_if_changed(self) -> None:
        if self._marker_worker is not None or self._marker_key != marker_fingerprint(self.dock.layer, self.dock.subject):
            self.measure_markers()

    def measure_markers(self, *, start: bool = True):
        """Measure rims and veins of every lesion in a worker (the columns of ``stats/lesions.tsv``).

        Returns the worker, or None when nothing needs one (no lesions, or neither QSM nor T2*
        magnitude nor a rim-round consensus: the columns then show what to run)."""
        self._marker_timer.stop()
        if getattr(self.dock, "_closed", False):
            return None
        if self._marker_worker is not None:  # measuring: once more when it is done
            self._marker_again = True
            return self._marker_worker
        key = marker_fingerprint(self.dock.layer, self.dock.subject)
        self._marker_key = key
        try:
            inputs = marker_inputs(self.dock.layer, self.dock.subject)
        except QSMMSError as exc:  # an unreadable round consensus: say so, measure without it
            napari.utils.notifications.show_error(str(exc))
            inputs = marker_inputs(self.dock.layer)
        if inputs is None or (inputs.chi_ppm is None and inputs.magnitude is None and inputs.rated is None):
            self.marker_frame = None
            self.marker_notes = {} if inputs is None else inputs.missing()
            self.marker_progress.set_idle("" if inputs is None else "rim and vein: no QSM and no T2* magnitude")
            self._show_frame()
            self.markers_measured.emit()
            return None
        notes = inputs.missing()

        def _done(table):
            self._marker_worker = None
            if getattr(self.dock, "_closed", False):
                return
            self.marker_frame, self.marker_notes = table, notes
            self._show_frame()
            self.markers_measured.emit()
            if self._marker_again:
                self._marker_again = False
                self.measure_markers()

        def _failed(exc):
            self._marker_worker = None
            napari.utils.notifications.show_error(f"rim and vein measures: {exc}")

        self._marker_worker = run_with_progress(
            dock_marker_table, self.marker_progress, on_returned=_done, on_error=_failed, start=start, inputs=inputs
        )
        return self._marker_worker

    def clear(self) -> None:
        """No subject: an empty table."""
        self.lesion_frame = pd.DataFrame(columns=roi_lesions.TABLE_COLUMNS)
        self.table.set_frame(display_frame(self.lesion_frame))

    def go_to_lesion(self, lesion_id: int) -> None:
        """Centre the view on a lesion's centroid, show its central slice and select its label."""
        lesions = self.dock.layer("lesions")
        if lesions is None:
            return
        rows = self.lesion_frame[self.lesion_frame["lesion_id"] == int(lesion_id)]
        if rows.empty:
            return
        rec = rows.iloc[0]
        centroid = np.array(rec["centroid_vox"], dtype=float)
        centroid[slice_axis_of(lesions)] = float(rec["central_slice"])
        centre_viewer_on(self.dock.viewer, lesions, centroid)
        lesions.selected_label = int(lesion_id)
        self.table.select_ids([int(lesion_id)])

    # ---------------------------------------------------------------------------- lesion edits
    def _lesions_layer(self):
        return self.dock.layer("lesions") or self.dock.ensure_layer("lesions")

    def new_lesion(self) -> int:
        """Select the next free id on the lesions layer and switch to paint mode."""
        layer = self._lesions_layer()
        lid = roi_lesions.next_free_id(np.asarray(layer.data), reserved_ids(self.dock.subject))
        layer.visible = True
        self.dock.viewer.layers.selection.active = layer
        layer.selected_label = lid
        layer.mode = "paint"
        return lid

    def delete_lesions(self, ids: list[int]) -> int:
        """Delete lesions (and their references): one undo step per layer."""
        if not ids:
            raise_or_notify(self.dock, "select one or more lesions in the table first")
            return 0
        layer = self._lesions_layer()
        changed = apply_labels_edit(layer, roi_lesions.delete_lesions(np.asarray(layer.data), ids))
        for role in ("refwm", "refgm"):
            ref = self.dock.layer(role)
            if ref is not None and np.isin(ref.data, ids).any():
                apply_labels_edit(ref, roi_lesions.delete_lesions(np.asarray(ref.data), ids))
        self.dock.refresh_table()
        return changed

    def merge_lesions(self, ids: list[int]) -> int | None:
        """Merge the lesions into the smallest id (one undo step); returns the kept id."""
        if len(ids) < 2:
            raise_or_notify(self.dock, "select two or more lesions to merge")
            return None
        layer = self._lesions_layer()
        apply_labels_edit(layer, roi_lesions.merge_lesions(np.asarray(layer.data), ids))
        self.dock.refresh_table()
        return min(int(i) for i in ids)

    def split_lesion(self, lesion_id: int) -> list[int]:
        """Split a lesion into its connected components (one undo step); returns the new ids."""
        layer = self._lesions_layer()
        new, new_ids = roi_lesions.split_lesion(np.asarray(layer.data), int(lesion_id), reserved_ids(self.dock.subject))
        apply_labels_edit(layer, new)
        self.dock.refresh_table()
        return new_ids

    def _on_split(self) -> None:
        ids = self.table.selected_ids()
        if len(ids) != 1:
            raise_or_notify(self.dock, "select exactly one lesion to split")
            return
        new_ids = guard(self.split_lesion, ids[0])
        if new_ids is not None:
            self.summary_label.setText(
                f"lesion {ids[0]} split into {1 + len(new_ids)} parts" if new_ids else f"lesion {ids[0]} is one piece"
            )
