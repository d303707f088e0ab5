"""Lesions and references dock: draw lesions, edit tissue, build reference ROIs, vessel QC, autosave.

The dock works on the layers of the subject loaded by the plugin (``metadata['role']``):
``lesions``, ``tissue``, ``refwm``, ``refgm`` (Labels, canonical RAS orientation on the T2* grid),
and reads ``magnitude``, ``qsm``, ``csfn`` and ``mask``. It is a frame around four panels:

* :class:`._lesions_panel.LesionsPanel` -- the lesion table, lesion edits and exclusions;
* :class:`._references_panel.ReferencesPanel` -- "Build references" (``roi.study``);
* :class:`._tissue_panel.TissuePanel` -- import or estimate the tissue classes;
* :class:`._vessels_panel.VesselsPanel` -- vessel candidates and their removal.

The dock itself binds to the subject in the viewer, keeps the annotation state (exclusions,
flags), runs the panels' pure functions in a worker, and saves. All science is in
:mod:`napari_qsm_ms.roi`; every edit goes through napari's undoable Labels API
(:func:`._panel_tools.apply_labels_edit`), one Ctrl-Z step per layer.

Nothing is lost: every change to an annotation layer schedules a debounced autosave (see
:mod:`._autosave`); "Save" writes the derivative files and clears the autosave; opening a subject
whose autosave is newer than its saved files offers to recover it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import napari
import numpy as np
from qtpy.QtCore import QFileSystemWatcher, QTimer, Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QTabWidget, QVBoxLayout, QWidget

from ..errors import QSMMSError
from ..io.layout import SubjectFiles
from ..roi.annotation import AnnotationState
from ..roi.palette import REFERENCE_COLORS
from ..roi.segmentation_grid import import_segmentation_on_grid  # noqa: F401 - re-exported
from ._autosave import AUTOSAVE_ROLES, Autosaver, clear_autosave, pending_recovery, recovered_arrays
from ._layers import current_subject, find_layer, save_layer_to_subject, source_affine
from ._layers import slice_axis_of  # noqa: F401 - re-exported
from ._lesions_panel import LesionsPanel, guard
from ._panel_tools import apply_labels_edit, raise_or_notify, style_reference_layer  # noqa: F401 - re-exported
from ._references_panel import ReferencesPanel
from ._scroll import scroll_contents
from ._tissue_panel import SEGMENTATION_KINDS, TissuePanel, grid_volume  # noqa: F401 - re-exported
from ._undo import OperationUndo
from ._vessels_panel import VesselsPanel
from ._worker import ProgressPanel, run_with_progress

ROLE_NAMES = {"lesions": "lesions", "tissue": "tissue", "refwm": "refwm", "refgm": "refgm", "vessels": "vessels"}

#: the panels' widgets reachable as attributes of the dock (scripts and tests use them)
_PANEL_WIDGETS = {
    "lesions_panel": ("table", "summary_label", "new_button", "delete_button", "merge_button", "split_button",
                      "reason_combo", "reason_edit", "exclude_button", "include_button"),
    "references_panel": ("gap_spin", "ring_spin", "maxdist_spin", "minvox_spin", "allslices_check",
                         "build_refs_button"),
    "tissue_panel": ("seg_kind_combo", "import_button", "estimate_button"),
    "vessels_panel": ("vessel_spin", "vesselness_check", "find_vessels_button", "remove_vessels_button"),
}


class AnnotationWidget(QWidget):
    """Lesions, tissue, references and vessel QC for the subject in the viewer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    recovery : {'ask', 'always', 'never'}
        What to do when the subject has an autosave newer than its saved files: ask in a dialog
        (GUI default), recover silently (tests, scripted use), or ignore it.
    autosave_delay_ms : int
        Quiet time after the last edit before the autosave is written.
    """

    table_refreshed = Signal()
    subject_changed = Signal()

    def __init__(self, napari_viewer: napari.Viewer, *, recovery: str = "ask", autosave_delay_ms: int = 1500):
        super().__init__()
        self.viewer = napari_viewer
        self.recovery = recovery
        self.subject: SubjectFiles | None = None
        self.state = None  # roi.annotation.AnnotationState
        self.last_recovery = None
        self._connected: list[tuple[Any, Any]] = []
        self._worker = None
        self._closed = False
        self.operation_undo = OperationUndo()
        self._away_subject: SubjectFiles | None = None

        self._build_ui()
        scroll_contents(self)  # fits a small screen: the dock's contents scroll
        self.autosaver = Autosaver(self._collect_autosave, delay_ms=autosave_delay_ms, parent=self)
        self.autosaver.saved.connect(self.autosave_label.setText)
        self.autosaver.failed.connect(self._on_autosave_failed)
        self._table_timer = QTimer(self)
        self._table_timer.setSingleShot(True)
        self._table_timer.setInterval(250)
        self._table_timer.timeout.connect(self.refresh_table)
        # the consensus table (written by the Consensus dock or ``qsm-ms consensus``) is shown as
        # soon as it changes on disk: its folder is watched (atomic writes replace the file)
        self._consensus_watch = QFileSystemWatcher(self)
        self._consensus_watch.directoryChanged.connect(self._on_subject_folder_changed)
        self._bind_timer = QTimer(self)
        self._bind_timer.setSingleShot(True)
        self._bind_timer.setInterval(0)
        self._bind_timer.timeout.connect(self._rebind_if_needed)

        self._connect(self.viewer.layers.events.removing, self._on_layer_removing)
        self._connect(self.viewer.layers.events.inserted, self._on_layers_changed)
        self._connect(self.viewer.layers.events.removed, self._on_layers_changed)
        self.bind_subject()

    # ---------------------------------------------------------------------------------- UI
    def _build_ui(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.subject_label = QLabel("no subject loaded")
        self.subject_label.setStyleSheet("font-weight: bold")
        self.save_button = QPushButton("Save")
        self.save_button.setToolTip(
            "Write lesions, tissue, refwm, refgm (and vessels) as NIfTI derivatives in the source "
            "orientation, and the flags/exclusions as desc-annotation.json; clears the autosave"
        )
        self.save_button.clicked.connect(self._on_save)
        top.addWidget(self.subject_label, 1)
        top.addWidget(self.save_button)
        lay.addLayout(top)
        self.autosave_label = QLabel("autosave: nothing to save yet")
        self.autosave_label.setWordWrap(True)  # long paths must not widen the dock
        self.autosave_label.setStyleSheet("color: gray")
        lay.addWidget(self.autosave_label)

        self.lesions_panel = LesionsPanel(self)
        self.references_panel = ReferencesPanel(self)
        self.tissue_panel = TissuePanel(self)
        self.vessels_panel = VesselsPanel(self)
        lay.addWidget(self.lesions_panel, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.references_panel, "References")
        self.tabs.addTab(self.tissue_panel, "Tissue")
        self.tabs.addTab(self.vessels_panel, "Vessels / QC")
        lay.addWidget(self.tabs)
        for panel, names in _PANEL_WIDGETS.items():
            for name in names:
                setattr(self, name, getattr(getattr(self, panel), name))

        self.progress = ProgressPanel()
        lay.addWidget(self.progress)

    # ------------------------------------------------------------------ the panels' actions
    # (the dock's public API, kept for scripts and tests; the work is done in the panels)
    @property
    def lesion_frame(self):
        """``roi.lesions.lesion_table`` of the lesions layer, as last refreshed."""
        return self.lesions_panel.lesion_frame

    @property
    def reference_table(self):
        """The table of the last references built in the dock (None before)."""
        return self.references_panel.reference_table

    def new_lesion(self) -> int:
        return self.lesions_panel.new_lesion()

    def delete_lesions(self, ids: list[int]) -> int:
        return self.lesions_panel.delete_lesions(ids)

    def merge_lesions(self, ids: list[int]) -> int | None:
        return self.lesions_panel.merge_lesions(ids)

    def split_lesion(self, lesion_id: int) -> list[int]:
        return self.lesions_panel.split_lesion(lesion_id)

    def exclude_lesions(self, ids: list[int], reason: str, note: str = "") -> None:
        self.lesions_panel.exclude_lesions(ids, reason, note)

    def include_lesions(self, ids: list[int]) -> None:
        self.lesions_panel.include_lesions(ids)

    def go_to_lesion(self, lesion_id: int) -> None:
        self.lesions_panel.go_to_lesion(lesion_id)

    def consensus_classes(self) -> dict[int, str]:
        return self.lesions_panel.consensus_classes()

    def reference_parameters(self) -> dict[str, Any]:
        return self.references_panel.reference_parameters()

    def reference_inputs(self):
        return self.references_panel.reference_inputs()

    def build_references(self, *, start: bool = True):
        return self.references_panel.build_references(start=start)

    def import_tissue(self, path: str | Path, kind: str, *, start: bool = True):
        return self.tissue_panel.import_tissue(path, kind, start=start)

    def estimate_tissue(self, *, start: bool = True):
        return self.tissue_panel.estimate_tissue(start=start)

    def find_vessels(self, *, start: bool = True):
        return self.vessels_panel.find_vessels(start=start)

    def remove_vessels(self) -> dict[str, int]:
        return self.vessels_panel.remove_vessels()

    def refresh_table(self) -> None:
        """Recompute the lesion table from the layers and show it (about 10-100 ms)."""
        self._table_timer.stop()
        self.lesions_panel.refresh_table()
        self.table_refreshed.emit()

    # ---------------------------------------------------------------------------- events
    def _connect(self, emitter, callback) -> None:
        emitter.connect(callback)
        self._connected.append((emitter, callback))

    def _disconnect_all(self) -> None:
        for emitter, callback in self._connected:
            with contextlib.suppress(Exception):
                emitter.disconnect(callback)
        self._connected = []

    def _on_layers_changed(self, event=None) -> None:
        """Layers added/removed: rebind once the event loop runs again.

        Deferred so that a subject loaded layer by layer is bound (and checked for recovery) only
        once all its layers are in the viewer.
        """
        if not self._closed:
            self._bind_timer.start()

    def _rebind_if_needed(self) -> None:
        if self._closed:
            return
        subject = current_subject(self.viewer)
        if subject != self.subject or self._layer_connections_stale():
            self.bind_subject()

    def _on_layer_removing(self, event=None) -> None:
        """Before an annotation layer leaves the viewer (closing, another subject): autosave it."""
        if self._closed or event is None:
            return
        try:
            layer = self.viewer.layers[event.index]
        except (IndexError, TypeError):
            return
        if layer in getattr(self, "_bound_layers", {}).values():
            self.autosaver.flush(wait=True, check_all=True)

    def _layer_connections_stale(self) -> bool:
        layers = {role: self.layer(role) for role in AUTOSAVE_ROLES}
        return layers != getattr(self, "_bound_layers", {})

    def _on_annotation_changed(self, event=None) -> None:
        if self._closed:
            return
        source = getattr(event, "source", None)
        role = (getattr(source, "metadata", None) or {}).get("role")
        self.autosaver.schedule(role)
        self._table_timer.start()

    def after_operation_undone(self) -> None:
        for role in ("refwm", "refgm"):
            self.autosaver.schedule(role)
        self.refresh_table()

    def _on_autosave_failed(self, message: str) -> None:
        self.autosave_label.setText(message)
        self.autosave_label.setStyleSheet("color: red")

    # ---------------------------------------------------------------------------- layers
    def layer(self, role: str):
        """The subject's layer with ``metadata['role'] == role`` (None if absent)."""
        return find_layer(self.viewer, role, self.subject)

    def grid_layer(self):
        """A layer on the T2* grid: magnitude, else QSM, else lesions (None before a subject)."""
        return self.layer("magnitude") or self.layer("qsm") or self.layer("lesions")

    def ensure_layer(self, role: str):
        """The annotation Labels layer ``role``, created empty on the T2* grid if absent."""
        layer = self.layer(role)
        if layer is not None:
            return layer
        ref = self.grid_layer()
        if ref is None:
            raise QSMMSError("load a subject first (File > Open folder..., or the Study dock)")
        meta = dict(ref.metadata or {})
        meta.update(role=role, path=getattr(self.subject, role, None) if self.subject else None)
        meta["derived_from_qsm"] = role == "vessels"  # vessel candidates come from the QSM map
        kwargs: dict[str, Any] = {"name": ROLE_NAMES.get(role, role), "scale": ref.scale, "translate": ref.translate}
        if role in ("lesions", "refwm", "refgm"):
            kwargs["opacity"] = 0.9
        elif role == "tissue":
            kwargs["opacity"] = 0.35
        layer = self.viewer.add_labels(np.zeros(ref.data.shape[-3:], np.int32), metadata=meta, **kwargs)
        if role == "lesions":
            layer.contour = 1
        elif role in REFERENCE_COLORS:
            style_reference_layer(layer, role)
        return layer

    def bind_subject(self) -> None:
        """(Re)attach to the subject in the viewer: layers, annotation state, recovery, table."""
        self._disconnect_layer_events()
        subject = current_subject(self.viewer)
        # the same subject's layers coming back (rater sign-out puts back the layers it took out):
        # keep the state in memory and ask nothing (its autosave is this session's own)
        returning = subject is not None and self.subject is None and subject == self._away_subject
        new_subject = subject != self.subject and not returning
        if subject != self.subject and self.subject is not None:
            self.autosaver.flush(wait=True, check_all=True)
            self._away_subject = self.subject
        self.subject = subject
        if subject is None:
            self.subject_label.setText("no subject loaded")
            self._bound_layers = {}
            self.lesions_panel.clear()
            return
        self.subject_label.setText(f"sub-{subject.label}")
        lesions = self.layer("lesions")
        if lesions is not None:
            lesions.contour = 1
        for role in ("refwm", "refgm"):
            layer = self.layer(role)
            if layer is not None:
                style_reference_layer(layer, role)
        if new_subject:
            self._watch_subject_folder(subject)
            self.state = self._load_state()
            self.references_panel.reference_table = None
            self.autosaver.mark_clean(self._current_arrays(), self.state)
            snapshot = pending_recovery(subject)
            if snapshot is not None and self._should_recover(snapshot):
                self.recover(snapshot)
            self.subject_changed.emit()
        else:  # layers added to the same subject: their content so far is the baseline
            self.autosaver.add_baseline(self._current_arrays())
        self._connect_layer_events()
        self.refresh_table()

    def _watch_subject_folder(self, subject: SubjectFiles) -> None:
        old = self._consensus_watch.directories()
        if old:
            self._consensus_watch.removePaths(old)
        subject.deriv.mkdir(parents=True, exist_ok=True)
        self._consensus_watch.addPath(str(subject.deriv))
        self._consensus_mtime = self._consensus_stamp()

    def _consensus_stamp(self):
        path = self.subject.lesions_tsv if self.subject is not None else None
        return path.stat().st_mtime_ns if path is not None and path.exists() else None

    def _on_subject_folder_changed(self, _path: str = "") -> None:
        stamp = self._consensus_stamp()
        if stamp != getattr(self, "_consensus_mtime", None):
            self._consensus_mtime = stamp
            self._table_timer.start()

    def _connect_layer_events(self) -> None:
        self._bound_layers = {role: self.layer(role) for role in AUTOSAVE_ROLES}
        self._layer_connections = []
        for layer in self._bound_layers.values():
            if layer is None:
                continue
            for name in ("paint", "set_data", "data"):
                emitter = getattr(layer.events, name)
                emitter.connect(self._on_annotation_changed)
                self._layer_connections.append((emitter, self._on_annotation_changed))

    def _disconnect_layer_events(self) -> None:
        for emitter, callback in getattr(self, "_layer_connections", []):
            with contextlib.suppress(Exception):
                emitter.disconnect(callback)
        self._layer_connections = []

    def _current_arrays(self) -> dict[str, np.ndarray]:
        return {role: np.asarray(layer.data) for role in AUTOSAVE_ROLES if (layer := self.layer(role)) is not None}

    # ----------------------------------------------------------------------- annotation state
    def _load_state(self):
        path = self.subject.annotation_json
        if path.exists():
            try:
                return AnnotationState.load(path)
            except QSMMSError as exc:
                napari.utils.notifications.show_error(str(exc))
        return AnnotationState()

    def state_changed(self) -> None:
        self.autosaver.schedule("annotation")
        self.refresh_table()


    # ---------------------------------------------------------------------------- worker
    def run(self, func, on_done, *, start: bool = True, **kwargs):
        def _err(exc):
            napari.utils.notifications.show_error(str(exc))

        def _returned(result):
            if not self._closed:
                on_done(result)

        self._worker = run_with_progress(func, self.progress, on_returned=_returned, on_error=_err, start=start, **kwargs)
        return self._worker

    # ---------------------------------------------------------------------------- save / autosave
    def _collect_autosave(self):
        if self.subject is None:
            return None
        volumes = {}
        for role in AUTOSAVE_ROLES:
            layer = self.layer(role)
            if layer is None:
                continue
            volumes[role] = (np.asarray(layer.data), (layer.metadata or {}).get("canonical"), source_affine(layer))
        return self.subject, volumes, self.state

    def save(self) -> list[Path]:
        """Write the annotation derivatives (atomic, source orientation) and clear the autosave."""
        if self.subject is None:
            raise QSMMSError("no subject loaded")
        written = []
        for role in (*AUTOSAVE_ROLES, "vessels"):
            layer = self.layer(role)
            if layer is None:
                continue
            if role in ("refwm", "refgm", "vessels", "tissue") and not np.any(layer.data) and not Path(
                getattr(self.subject, role)
            ).exists():
                continue  # do not create empty files that were never drawn
            written.append(save_layer_to_subject(layer, getattr(self.subject, role)))
        if self.state is not None:
            self.state.save(self.subject.annotation_json)
            written.append(self.subject.annotation_json)
        self.autosaver.wait()
        clear_autosave(self.subject)
        self.autosaver.mark_clean(self._current_arrays(), self.state)
        self.autosave_label.setStyleSheet("color: gray")
        self.autosave_label.setText(f"saved {len(written)} file(s) to {self.subject.deriv}")
        return written

    def _on_save(self) -> None:
        guard(self.save)

    def _should_recover(self, snapshot) -> bool:
        if self.recovery == "always":
            return True
        if self.recovery == "never":
            return False
        answer = QMessageBox.question(
            self,
            "Recover unsaved annotations?",
            f"sub-{self.subject.label} has unsaved annotations autosaved at {snapshot.time_text} "
            f"({', '.join(snapshot.files) or 'flags'}), newer than the saved files.\n\n"
            "Recover them? (No keeps the saved files; the autosave is then discarded.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes,
        )
        if answer != QMessageBox.StandardButton.Yes:
            clear_autosave(self.subject)
            return False
        return True

    def recover(self, snapshot) -> list[str]:
        """Put an autosave snapshot back into the layers and the annotation state."""
        restored = []
        for role, (data, _view) in recovered_arrays(snapshot).items():
            layer = self.ensure_layer(role)
            if data.shape != layer.data.shape:
                napari.utils.notifications.show_error(f"{snapshot.files[role]}: shape differs from the layer, not recovered")
                continue
            layer.data = data.astype(layer.data.dtype, copy=False)
            restored.append(role)
        if snapshot.annotation is not None:
            self.state = AnnotationState.load(snapshot.annotation)
            restored.append("annotation")
        self.last_recovery = snapshot
        self.autosave_label.setText(f"recovered autosave of {snapshot.time_text}: {', '.join(restored)} (not saved yet)")
        self.autosave_label.setStyleSheet("color: darkorange")
        return restored

    # ---------------------------------------------------------------------------- teardown
    def shutdown(self) -> None:
        """Flush the autosave, stop timers and disconnect from the viewer (idempotent)."""
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self.autosaver.flush(wait=True, check_all=True)
        self._closed = True
        self._table_timer.stop()
        self._bind_timer.stop()
        self.autosaver.close()
        self._disconnect_layer_events()
        self._disconnect_all()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.shutdown()
        super().closeEvent(event)
