"""Lesions and references dock: draw lesions, edit tissue, build reference ROIs, vessel QC, autosave.

The dock works on the layers of the subject loaded by the plugin (``metadata['role']``):
``lesions``, ``tissue``, ``refwm``, ``refgm`` (Labels, canonical RAS orientation on the T2* grid),
and reads ``magnitude``, ``qsm``, ``csfn`` and ``mask``. All science is in :mod:`napari_qsm_ms.roi`;
this module gathers parameters, calls one pure function (in a worker when it is slow), and applies
the result to the layers through napari's undoable Labels API (:func:`apply_labels_edit`), so every
edit the dock makes is one Ctrl-Z step per layer.

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
import pandas as pd
from qtpy.QtCore import QFileSystemWatcher, QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..errors import ParameterError, QSMMSError
from ..io.layout import SubjectFiles
from ..io.nifti import CanonicalView, Volume, to_canonical
from ..roi import lesions as roi_lesions
from ..roi import references as roi_refs
from ..roi import vessels as roi_vessels
from ..roi.annotation import EXCLUSION_REASONS, AnnotationState
from ..roi.rules import drawn_classes, read_consensus_table, reserved_ids
from ..roi.study import ReferenceInputs, compute_subject_references
from ..roi.tissue import estimate_tissue as roi_estimate_tissue
from ..roi.palette import REFERENCE_COLORS
from ..roi.stale import stale_reference_flags
from ._autosave import AUTOSAVE_ROLES, Autosaver, clear_autosave, pending_recovery, recovered_arrays
from ._layers import centre_viewer_on, current_subject, find_layer, save_layer_to_subject
from ._lesion_table import LesionTableView, display_frame
from ._worker import ProgressPanel, run_with_progress
from ._layers import programmatic_edit, select_drawing_layer, slice_axis_of, voxel_size_of
from ..roi.segmentation_grid import import_segmentation_on_grid  # noqa: F401 - re-exported
from ._undo import OperationUndo
from ._scroll import scroll_contents

SEGMENTATION_KINDS = (
    ("FreeSurfer aseg", "aseg"),
    ("FreeSurfer aparc+aseg", "aparc+aseg"),
    ("SynthSeg", "synthseg"),
    ("FSL FAST hard segmentation (_seg)", "fast"),
    ("FSL FAST PVE maps (4-D: CSF, GM, WM)", "fast_pve"),
)
ROLE_NAMES = {"lesions": "lesions", "tissue": "tissue", "refwm": "refwm", "refgm": "refgm", "vessels": "vessels"}


# --------------------------------------------------------------------------------------------
# helpers without Qt widgets (testable on their own)
# --------------------------------------------------------------------------------------------
def apply_labels_edit(layer, new_data: np.ndarray) -> int:
    """Make ``layer.data`` equal ``new_data`` as ONE undoable step; returns the voxels changed.

    Only the changed voxels go through ``layer.data_setitem`` inside ``layer.block_history()``,
    so ``layer.undo()`` (Ctrl-Z) restores the previous content in one step.
    """
    new = np.asarray(new_data)
    if new.shape != layer.data.shape:
        raise ParameterError(f"edit of layer {layer.name!r}: shape {new.shape} differs from {layer.data.shape}")
    changed = np.nonzero(np.asarray(layer.data) != new)
    if changed[0].size == 0:
        return 0
    hidden = not layer.visible
    if hidden:  # napari 0.9 data_setitem indexes the displayed slice, which a hidden layer lacks
        layer.visible = True
    try:
        with programmatic_edit(), layer.block_history():  # the paint event comes at block_history exit
            layer.data_setitem(changed, new[changed])
    finally:
        if hidden:
            layer.visible = False
    return int(changed[0].size)


#: Outline colours shared with the review view: every reference of one kind has one colour.


def style_reference_layer(layer, role: str) -> None:
    """Contour display and one colour for all ids of a reference layer (cyan NAWM, green NAGM)."""
    from napari.utils.colormaps import DirectLabelColormap

    layer.contour = 1
    color = REFERENCE_COLORS.get(role)
    if color is not None:
        layer.colormap = DirectLabelColormap(color_dict={None: color, 0: "transparent"})


def grid_volume(layer) -> Volume:
    """A data-less :class:`Volume` with the source shape and affine of a plugin layer (grid checks)."""
    meta = layer.metadata or {}
    view: CanonicalView | None = meta.get("canonical")
    if view is not None:
        shape, affine = view.source_shape[:3], view.source_affine
    else:
        shape, affine = layer.data.shape[-3:], np.asarray(meta.get("affine", np.eye(4)))
    return Volume(np.broadcast_to(np.zeros((), np.uint8), shape), np.asarray(affine), meta.get("path"))


def _without_progress(func, **kwargs):
    """Wrap a pure function without ``progress=`` for :func:`run_with_progress`."""

    def _call(progress=None):
        if progress is not None:
            progress(0.05, "working...")
        out = func(**kwargs)
        if progress is not None:
            progress(1.0, "done")
        return out

    return _call


# --------------------------------------------------------------------------------------------
# the dock
# --------------------------------------------------------------------------------------------
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
        self.reference_table: pd.DataFrame | None = None
        self.lesion_frame: pd.DataFrame = pd.DataFrame(columns=roi_lesions.TABLE_COLUMNS)
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

        # --- lesions
        box = QGroupBox("Lesions (drawn on T2* magnitude)")
        grid = QGridLayout(box)
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
        excl = QHBoxLayout()
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
        excl.addWidget(self.reason_combo)
        excl.addWidget(self.reason_edit, 1)
        excl.addWidget(self.exclude_button)
        excl.addWidget(self.include_button)
        grid.addLayout(excl, 3, 0, 1, 4)
        lay.addWidget(box, 1)

        tabs = QTabWidget()
        tabs.addTab(self._build_references_tab(), "References")
        tabs.addTab(self._build_tissue_tab(), "Tissue")
        tabs.addTab(self._build_vessels_tab(), "Vessels / QC")
        self.tabs = tabs
        lay.addWidget(tabs)

        self.progress = ProgressPanel()
        lay.addWidget(self.progress)

    def _build_references_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.gap_spin = QDoubleSpinBox()
        self.gap_spin.setRange(0.0, 10.0)
        self.gap_spin.setSingleStep(0.1)
        self.gap_spin.setDecimals(2)
        self.gap_spin.setSuffix(" mm")
        self.gap_spin.setValue(float(roi_refs.DEFAULT_GAP_MM))
        px = roi_refs.PAPER_PIXEL_MM
        self.gap_spin.setToolTip(
            f"Gap between a lesion and its reference (partial-volume guard), mm. Paper default "
            f"{roi_refs.DEFAULT_GAP_MM} mm = {roi_refs.DEFAULT_GAP_MM / px:.0f} px of {px} mm"
        )
        self.ring_spin = QDoubleSpinBox()
        self.ring_spin.setRange(0.1, 20.0)
        self.ring_spin.setSingleStep(0.1)
        self.ring_spin.setDecimals(2)
        self.ring_spin.setSuffix(" mm")
        self.ring_spin.setValue(float(roi_refs.DEFAULT_RING_MM))
        self.ring_spin.setToolTip(
            f"Width of the reference ring / strip beyond the gap, mm. Default {roi_refs.DEFAULT_RING_MM} mm: "
            f"gap + ring = {(roi_refs.DEFAULT_GAP_MM + roi_refs.DEFAULT_RING_MM) / px:.0f} px of {px} mm"
        )
        self.maxdist_spin = QSpinBox()
        self.maxdist_spin.setRange(1, 100)
        self.maxdist_spin.setValue(int(roi_refs.DEFAULT_MAX_DISTANCE_PX))
        self.maxdist_spin.setSuffix(" px")
        self.maxdist_spin.setToolTip("References stay within this many in-plane pixels of the lesion (paper: 10)")
        self.minvox_spin = QSpinBox()
        self.minvox_spin.setRange(1, 100000)
        self.minvox_spin.setValue(int(roi_refs.DEFAULT_MIN_VOXELS))
        self.minvox_spin.setToolTip("References with fewer voxels are flagged for manual editing")
        self.allslices_check = QCheckBox("use all lesion slices (paper: central slice only)")
        self.build_refs_button = QPushButton("Build references")
        self.build_refs_button.setToolTip(
            "Build NAWM rings (WM lesions) and NAGM strips (cortical lesions), both for mixed lesions, "
            "into the refwm / refgm layers (one undo step per layer)"
        )
        self.build_refs_button.clicked.connect(lambda: self.build_references())
        form.addRow("Gap", self.gap_spin)
        form.addRow("Ring / strip width", self.ring_spin)
        form.addRow("Max distance", self.maxdist_spin)
        form.addRow("Min voxels", self.minvox_spin)
        form.addRow(self.allslices_check)
        form.addRow(self.build_refs_button)
        return page

    def _build_tissue_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.seg_kind_combo = QComboBox()
        for text, kind in SEGMENTATION_KINDS:
            self.seg_kind_combo.addItem(text, kind)
        self.import_button = QPushButton("Import segmentation...")
        self.import_button.setToolTip(
            "Map a FreeSurfer/FAST/SynthSeg label map ON THE T2* GRID to tissue classes "
            "(0 outside, 1 CSF, 2 cortex, 3 WM, 4 deep GM)"
        )
        self.import_button.clicked.connect(self._on_import_clicked)
        self.estimate_button = QPushButton("Estimate from CSF-nulled MPRAGE")
        self.estimate_button.setToolTip(
            "First estimate of the tissue classes from the coregistered CSF-nulled MPRAGE and the T2* "
            "magnitude inside the brain mask; check and edit it"
        )
        self.estimate_button.clicked.connect(lambda: self.estimate_tissue())
        form.addRow("Kind", self.seg_kind_combo)
        form.addRow(self.import_button)
        form.addRow(self.estimate_button)
        form.addRow(QLabel("Edit the 'tissue' layer with napari's brush (2 cortex, 3 WM)."))
        return page

    def _build_vessels_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.vessel_spin = QDoubleSpinBox()
        self.vessel_spin.setRange(0.0, 2.0)
        self.vessel_spin.setSingleStep(0.01)
        self.vessel_spin.setDecimals(3)
        self.vessel_spin.setSuffix(" ppm")
        self.vessel_spin.setValue(float(roi_vessels.DEFAULT_THRESHOLD_PPM))
        self.vessel_spin.setToolTip("Candidate vessel voxels: chi above the local tissue level by this much (ppm)")
        self.vesselness_check = QCheckBox("tubular only (Sato vesselness)")
        self.vesselness_check.setChecked(True)
        self.vesselness_check.setToolTip("Keep only elongated candidates; paramagnetic rim lesions are round")
        self.find_vessels_button = QPushButton("Find vessels")
        self.find_vessels_button.clicked.connect(lambda: self.find_vessels())
        self.remove_vessels_button = QPushButton("Remove vessels from ROIs")
        self.remove_vessels_button.setToolTip("Erase vessel voxels from lesions, refwm and refgm (undoable)")
        self.remove_vessels_button.clicked.connect(lambda: self.remove_vessels())
        form.addRow("Threshold", self.vessel_spin)
        form.addRow(self.vesselness_check)
        form.addRow(self.find_vessels_button)
        form.addRow(self.remove_vessels_button)
        return page

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

    def _after_operation_undone(self) -> None:
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

    def _reference_layer(self):
        return self.layer("magnitude") or self.layer("qsm") or self.layer("lesions")

    def ensure_layer(self, role: str):
        """The annotation Labels layer ``role``, created empty on the T2* grid if absent."""
        layer = self.layer(role)
        if layer is not None:
            return layer
        ref = self._reference_layer()
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
            self.lesion_frame = pd.DataFrame(columns=roi_lesions.TABLE_COLUMNS)
            self.table.set_frame(display_frame(self.lesion_frame))
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
            self.reference_table = None
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

    def _state_changed(self) -> None:
        self.autosaver.schedule("annotation")
        self.refresh_table()

    def exclude_lesions(self, ids: list[int], reason: str, note: str = "") -> None:
        """Mark lesions excluded (artefact, eroded by the QSM mask, ...) with a reason."""
        if not ids:
            raise ParameterError("select one or more lesions in the table first")
        if not reason.strip():
            raise ParameterError("give a reason for the exclusion")
        text = reason if not note.strip() else f"{reason}: {note.strip()}"
        if self.state is None:
            raise QSMMSError("annotation state unavailable (roi.annotation missing)")
        for lid in ids:
            self.state.exclude(int(lid), text)
        self._state_changed()

    def include_lesions(self, ids: list[int]) -> None:
        for lid in ids:
            self.state.include(int(lid))
        self._state_changed()

    def _on_exclude(self) -> None:
        self._guard(self.exclude_lesions, self.table.selected_ids(), self.reason_combo.currentText(), self.reason_edit.text())

    # ---------------------------------------------------------------------------- table
    def consensus_classes(self) -> dict[int, str]:
        """lesion id -> consensus class of the drawn lesions in ``sub-*_lesions.tsv`` (empty if none)."""
        if self.subject is None:
            return {}
        try:
            return drawn_classes(read_consensus_table(self.subject))
        except QSMMSError as exc:
            self.summary_label.setText(str(exc))
            return {}

    def _vessel_mask(self) -> np.ndarray | None:
        """Vessel voxels (from the 'vessels' layer) kept out of the references, or None."""
        vessels = self.layer("vessels")
        if vessels is None or not np.any(vessels.data):
            return None
        return np.asarray(vessels.data) > 0

    def _extra_flags(self, consensus: dict[int, str] | None = None) -> dict[int, list[str]]:
        """Flags kept in the annotation state (reference flags, manual flags), per lesion, and
        references built for another class than the consensus gave (``roi.stale``)."""
        entries = {} if self.state is None else self.state.lesions
        flags = {int(k): list(v.flags) for k, v in entries.items() if v.flags}
        if consensus:
            frame = self.lesion_frame
            suggested = dict(zip(frame["lesion_id"].astype(int), frame["suggested_class"]))
            refs = [self.layer(role) for role in ("refwm", "refgm")]
            stale = stale_reference_flags(
                consensus, suggested, *(None if r is None else np.asarray(r.data) for r in refs),
                set(self._excluded()),
            )
            for lid, flag in stale.items():
                flags.setdefault(lid, []).append(flag)
        return flags

    def _excluded(self) -> dict[int, str]:
        """Excluded lesion ids -> reason."""
        if self.state is None:
            return {}
        return {int(k): v.exclusion_reason for k, v in self.state.lesions.items() if v.excluded}

    def refresh_table(self) -> None:
        """Recompute the lesion table from the layers and show it (about 10-100 ms)."""
        self._table_timer.stop()
        lesions = self.layer("lesions")
        if lesions is None:
            self.lesion_frame = pd.DataFrame(columns=roi_lesions.TABLE_COLUMNS)
        else:
            tissue = self.layer("tissue")
            tissue_data = None if tissue is None or not np.any(tissue.data) else np.asarray(tissue.data)
            self.lesion_frame = roi_lesions.lesion_table(
                np.asarray(lesions.data),
                tissue_data,
                voxel_size_of(lesions),
                slice_axis=slice_axis_of(lesions),
            )
        consensus = self.consensus_classes()
        frame = display_frame(
            self.lesion_frame,
            consensus=consensus,
            extra_flags=self._extra_flags(consensus),
            excluded=self._excluded(),
        )
        self.table.set_frame(frame)
        n = len(frame)
        n_flag = int((frame["flags"] != "").sum()) if n else 0
        n_excl = int(frame["excluded"].sum()) if n else 0
        self.summary_label.setText(f"{n} lesion(s), {n_flag} flagged, {n_excl} excluded")
        self.table_refreshed.emit()

    # ---------------------------------------------------------------------------- navigation
    def go_to_lesion(self, lesion_id: int) -> None:
        """Centre the view on a lesion's centroid, show its central slice and select its label."""
        lesions = self.layer("lesions")
        if lesions is None:
            return
        rows = self.lesion_frame[self.lesion_frame["lesion_id"] == int(lesion_id)]
        if rows.empty:
            return
        rec = rows.iloc[0]
        centroid = np.array(rec["centroid_vox"], dtype=float)
        centroid[slice_axis_of(lesions)] = float(rec["central_slice"])
        centre_viewer_on(self.viewer, lesions, centroid)
        lesions.selected_label = int(lesion_id)
        self.table.select_ids([int(lesion_id)])

    # ---------------------------------------------------------------------------- lesion edits
    def _guard(self, func, *args, **kwargs):
        """Run an action, turning input errors into a notification."""
        try:
            return func(*args, **kwargs)
        except QSMMSError as exc:
            napari.utils.notifications.show_error(str(exc))
            return None

    def _lesions_layer(self):
        layer = self.layer("lesions")
        if layer is None:
            layer = self.ensure_layer("lesions")
        return layer

    def new_lesion(self) -> int:
        """Select the next free id on the lesions layer and switch to paint mode."""
        layer = self._lesions_layer()
        lid = roi_lesions.next_free_id(np.asarray(layer.data), reserved_ids(self.subject))
        layer.visible = True
        self.viewer.layers.selection.active = layer
        layer.selected_label = lid
        layer.mode = "paint"
        return lid

    def delete_lesions(self, ids: list[int]) -> int:
        """Delete lesions (and their references): one undo step per layer."""
        if not ids:
            raise_or_notify(self, "select one or more lesions in the table first")
            return 0
        changed = apply_labels_edit(self._lesions_layer(), roi_lesions.delete_lesions(np.asarray(self._lesions_layer().data), ids))
        for role in ("refwm", "refgm"):
            layer = self.layer(role)
            if layer is not None and np.isin(layer.data, ids).any():
                apply_labels_edit(layer, roi_lesions.delete_lesions(np.asarray(layer.data), ids))
        self.refresh_table()
        return changed

    def merge_lesions(self, ids: list[int]) -> int | None:
        """Merge the lesions into the smallest id (one undo step); returns the kept id."""
        if len(ids) < 2:
            raise_or_notify(self, "select two or more lesions to merge")
            return None
        layer = self._lesions_layer()
        apply_labels_edit(layer, roi_lesions.merge_lesions(np.asarray(layer.data), ids))
        self.refresh_table()
        return min(int(i) for i in ids)

    def split_lesion(self, lesion_id: int) -> list[int]:
        """Split a lesion into its connected components (one undo step); returns the new ids."""
        layer = self._lesions_layer()
        new, new_ids = roi_lesions.split_lesion(
            np.asarray(layer.data), int(lesion_id), reserved_ids(self.subject)
        )
        apply_labels_edit(layer, new)
        self.refresh_table()
        return new_ids

    def _on_split(self) -> None:
        ids = self.table.selected_ids()
        if len(ids) != 1:
            raise_or_notify(self, "select exactly one lesion to split")
            return
        new_ids = self._guard(self.split_lesion, ids[0])
        if new_ids is not None:
            self.summary_label.setText(
                f"lesion {ids[0]} split into {1 + len(new_ids)} parts" if new_ids else f"lesion {ids[0]} is one piece"
            )

    # ---------------------------------------------------------------------------- tissue
    def _on_import_clicked(self) -> None:
        start = str(self.subject.deriv) if self.subject is not None else ""
        path, _ = QFileDialog.getOpenFileName(self, "Segmentation on the T2* grid", start, "NIfTI (*.nii *.nii.gz)")
        if path:
            self.import_tissue(path, self.seg_kind_combo.currentData())

    def import_tissue(self, path: str | Path, kind: str, *, start: bool = True):
        """Import a segmentation file into the tissue layer (in a worker; undoable)."""
        ref = self._reference_layer()
        if ref is None:
            raise_or_notify(self, "load a subject first")
            return None
        return self._run(
            import_segmentation_on_grid,
            self._apply_tissue,
            start=start,
            path=path,
            kind=kind,
            reference=grid_volume(ref),
        )

    def estimate_tissue(self, *, start: bool = True):
        """First tissue estimate from the CSF-nulled MPRAGE and magnitude in the brain mask (worker)."""
        missing = [name for role, name in (("csfn", "CSF-nulled MPRAGE"), ("magnitude", "T2* magnitude"),
                                           ("mask", "brain mask")) if self.layer(role) is None]
        if missing:
            raise_or_notify(self, f"cannot estimate tissue: missing {', '.join(missing)} layer(s)")
            return None
        csfn = self.layer("csfn")
        if (csfn.metadata or {}).get("on_reference_grid") is False or csfn.data.shape != self.layer("magnitude").data.shape:
            raise_or_notify(self, "cannot estimate tissue: the CSF-nulled MPRAGE is not coregistered onto the T2* grid")
            return None
        func = _without_progress(
            roi_estimate_tissue,
            csfn=np.asarray(csfn.data, dtype=np.float32),
            magnitude=np.asarray(self.layer("magnitude").data, dtype=np.float32),
            brain_mask=np.asarray(self.layer("mask").data) > 0,
            voxel_size_mm=voxel_size_of(csfn),
        )
        return self._run(func, self._apply_tissue, start=start)

    def _apply_tissue(self, tissue: np.ndarray) -> None:
        layer = self.ensure_layer("tissue")
        apply_labels_edit(layer, np.asarray(tissue, dtype=layer.data.dtype))
        layer.visible = True
        self.refresh_table()

    # ---------------------------------------------------------------------------- references
    def reference_parameters(self) -> dict[str, Any]:
        """The reference parameters set in the dock (units in the names)."""
        return {
            "gap_mm": float(self.gap_spin.value()),
            "ring_mm": float(self.ring_spin.value()),
            "max_distance_px": int(self.maxdist_spin.value()),
            "min_voxels": int(self.minvox_spin.value()),
            "all_slices": bool(self.allslices_check.isChecked()),
        }

    def reference_inputs(self) -> ReferenceInputs:
        """The inputs of ``roi.study.compute_subject_references`` from the layers, in the files' voxel
        order: lesions, tissue, the 'vessels' layer (when not empty) and the 'mask' layer (when not
        empty), the consensus table and the dock's exclusions."""
        from .._writer import layer_array_for_file

        def source(layer):
            return layer_array_for_file(layer.data, layer.metadata, layer.scale, layer.translate)

        lesions, affine = source(self.layer("lesions"))
        inputs = ReferenceInputs(
            np.asarray(lesions), np.asarray(source(self.layer("tissue"))[0]), affine,
            read_consensus_table(self.subject) if self.subject is not None else None, self._excluded(),
            classes_name=self.subject.lesions_tsv.name if self.subject is not None else None,
        )
        if self._vessel_mask() is not None:
            inputs.vessels = np.asarray(source(self.layer("vessels"))[0]) > 0
        mask = self.layer("mask")
        if mask is not None and np.any(mask.data):
            inputs.brain_mask = np.asarray(source(mask)[0])
            path = (mask.metadata or {}).get("path")
            inputs.brain_mask_name = Path(path).name if path else f"layer {mask.name}"
        return inputs

    def build_references(self, *, start: bool = True):
        """Run ``roi.study.compute_subject_references`` (what ``qsm-ms rois`` runs) in a worker on
        the layers, and fill refwm / refgm."""
        lesions = self.layer("lesions")
        tissue = self.layer("tissue")
        if lesions is None or not np.any(lesions.data):
            raise_or_notify(self, "draw lesions first")
            return None
        if tissue is None or not np.any(tissue.data):
            raise_or_notify(self, "the tissue layer is empty: import or estimate tissue classes first")
            return None
        self.refresh_table()
        try:
            inputs = self.reference_inputs()
        except QSMMSError as exc:
            raise_or_notify(self, str(exc))
            return None
        return self._run(compute_subject_references, self._apply_references, start=start, inputs=inputs,
                         **self.reference_parameters())

    def _apply_references(self, refs) -> None:
        from ..io.nifti import to_canonical

        lesions = self.layer("lesions")
        view = (lesions.metadata or {}).get("canonical")
        edited = []
        for role, data in (("refwm", refs.result.refwm), ("refgm", refs.result.refgm)):
            layer = self.ensure_layer(role)
            if view is not None:
                data = to_canonical(np.asarray(data), view.source_affine)[0]
            if apply_labels_edit(layer, np.asarray(data, dtype=layer.data.dtype)):
                edited.append(layer)
            layer.contour = 1
            layer.visible = True
        select_drawing_layer(self.viewer)  # the user stays on 'lesions'
        # Ctrl-Z from 'lesions' (or a reference layer) undoes the references, in one step
        self.operation_undo.record(
            "Build references", edited, [lesions], on_undone=self._after_operation_undone
        )
        self.reference_table = refs.result.table
        if self.state is not None:
            self.state.set_reference_flags(refs.flags, refs.record)
            self.autosaver.schedule("annotation")
        self.refresh_table()

    # ---------------------------------------------------------------------------- vessels
    def find_vessels(self, *, start: bool = True):
        """Candidate vessel voxels from the QSM map (worker), shown in the 'vessels' layer."""
        qsm = self.layer("qsm")
        tissue = self.layer("tissue")
        if qsm is None:
            raise_or_notify(self, "no QSM layer: reconstruct QSM first")
            return None
        mask = self.layer("mask")
        func = _without_progress(
            roi_vessels.vessel_candidates,
            chi_ppm=np.asarray(qsm.data, dtype=np.float32),
            tissue=None if tissue is None or not np.any(tissue.data) else np.asarray(tissue.data),
            voxel_size_mm=voxel_size_of(qsm),
            threshold_ppm=float(self.vessel_spin.value()),
            use_vesselness=bool(self.vesselness_check.isChecked()),
            mask=None if mask is None else np.asarray(mask.data) > 0,
        )
        return self._run(func, self._apply_vessels, start=start)

    def _apply_vessels(self, vessels: np.ndarray) -> None:
        layer = self.ensure_layer("vessels")
        apply_labels_edit(layer, np.asarray(vessels, dtype=layer.data.dtype))
        layer.visible = True
        self.summary_label.setText(f"{int(np.count_nonzero(vessels))} candidate vessel voxels")

    def remove_vessels(self) -> dict[str, int]:
        """Erase vessel voxels from lesions, refwm and refgm (one undo step per layer)."""
        vessels = self.layer("vessels")
        if vessels is None or not np.any(vessels.data):
            raise_or_notify(self, "no vessel candidates: run 'Find vessels' first (or paint the vessels layer)")
            return {}
        mask = np.asarray(vessels.data) > 0
        removed = {}
        for role in ("lesions", "refwm", "refgm"):
            layer = self.layer(role)
            if layer is None:
                continue
            removed[role] = apply_labels_edit(layer, roi_vessels.remove_voxels(np.asarray(layer.data), mask))
        self.summary_label.setText("vessel voxels removed: " + ", ".join(f"{k} {v}" for k, v in removed.items()))
        self.refresh_table()
        return removed

    # ---------------------------------------------------------------------------- worker
    def _run(self, func, on_done, *, start: bool = True, **kwargs):
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
            meta = layer.metadata or {}
            view = meta.get("canonical")
            affine = view.source_affine if view is not None else np.asarray(meta.get("affine", np.eye(4)))
            volumes[role] = (np.asarray(layer.data), view, affine)
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
        self._guard(self.save)

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


def raise_or_notify(widget: AnnotationWidget, message: str) -> None:
    """Show a user mistake (nothing selected, no layer) as a napari notification."""
    widget.summary_label.setText(message)
    napari.utils.notifications.show_warning(message)
