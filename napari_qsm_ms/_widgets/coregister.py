"""Dock widget "Coregister onto T2*": run the rigid coregistration, check it, nudge it by hand.

Thin layer over :mod:`napari_qsm_ms.registration`: the subject folder comes from the layers' metadata
(or is typed/browsed); "Coregister" runs :func:`registration.study.coregister_subject` in a worker
with a progress bar; the QC part shows a coregistered series over the T2* magnitude as a
checkerboard (one Image layer) or a blended overlay (opacity), and six spin boxes (translation in
mm, rotation in degrees, in T2* world space) move the series live; "Save nudged transform"
re-writes the transform files and the resampled series (:func:`registration.study.save_nudged`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtCore import Qt, QTimer
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
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ..errors import QSMMSError
from ..io.layout import COREG_SERIES, SubjectFiles, subject_from_path
from ..io.nifti import Volume
from ..registration.qc import scale_intensity
from ..registration.qc_view import QCState
from ..registration.study import coregister_subject, save_nudged
from ._layers import add_layer_data, current_subject
from ._worker import ProgressPanel, run_with_progress
from ._scroll import scroll_contents

SERIES_NAMES = {"wmn": "WM-nulled MPRAGE", "csfn": "CSF-nulled MPRAGE", "flair": "FLAIR"}
CHECKER_LAYER = "coreg QC: checkerboard"
BLEND_LAYER = "coreg QC: series"
FIXED_LAYER = "coreg QC: T2* magnitude"


class CoregisterWidget(QWidget):
    """Rigid coregistration of the MPRAGEs and FLAIR onto the T2* magnitude, with QC and nudging."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.qc: QCState | None = None
        self.worker = None
        self._last_result = None

        self.folder = QLineEdit()
        self.folder.setPlaceholderText("subject folder (sub-XX) or any of its files")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._on_browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)

        self.series_boxes = {}
        series_row = QHBoxLayout()
        for key in COREG_SERIES:
            box = QCheckBox(key)
            box.setChecked(True)
            box.setToolTip(SERIES_NAMES[key])
            self.series_boxes[key] = box
            series_row.addWidget(box)
        self.from_saved = QCheckBox("start from the saved (nudged) transform")
        self.from_saved.setToolTip("refine a saved or hand-nudged result instead of starting from the scanner affines")
        series_row.addStretch(1)
        self.run_button = QPushButton("Coregister onto T2*")
        self.run_button.setToolTip("rigid 6-DOF mutual-information registration of each selected series")
        self.run_button.clicked.connect(self._on_run)
        self.panel = ProgressPanel()
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextSelectableByMouse)

        # --- QC ---
        self.qc_series = QComboBox()
        self.qc_series.addItems(list(COREG_SERIES))
        self.show_button = QPushButton("Show QC")
        self.show_button.clicked.connect(self._on_show_qc)
        self.mode = QComboBox()
        self.mode.addItems(["checkerboard", "blend"])
        self.mode.currentTextChanged.connect(self._on_mode)
        self.check_mm = QDoubleSpinBox()
        self.check_mm.setRange(2.0, 100.0)
        self.check_mm.setValue(16.0)
        self.check_mm.setSuffix(" mm")
        self.check_mm.valueChanged.connect(self._on_check_size)
        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.valueChanged.connect(self._on_opacity)
        qc_form = QFormLayout()
        qc_row = QHBoxLayout()
        qc_row.addWidget(self.qc_series, 1)
        qc_row.addWidget(self.show_button)
        qc_form.addRow("series", qc_row)
        qc_form.addRow("display", self.mode)
        qc_form.addRow("square size", self.check_mm)
        qc_form.addRow("blend opacity", self.opacity)

        self.shift = [self._spin(-30, 30, 0.25, " mm") for _ in range(3)]
        self.rotation = [self._spin(-15, 15, 0.25, " deg") for _ in range(3)]
        grid = QGridLayout()
        for col, axis in enumerate(("x (R)", "y (A)", "z (S)")):
            grid.addWidget(QLabel(axis), 0, col + 1, alignment=Qt.AlignCenter)
        grid.addWidget(QLabel("shift"), 1, 0)
        grid.addWidget(QLabel("rotate"), 2, 0)
        for col in range(3):
            grid.addWidget(self.shift[col], 1, col + 1)
            grid.addWidget(self.rotation[col], 2, col + 1)
        self.reset_button = QPushButton("Reset nudge")
        self.reset_button.clicked.connect(self._on_reset)
        self.save_button = QPushButton("Save nudged transform")
        self.save_button.clicked.connect(self._on_save)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reset_button)
        buttons.addWidget(self.save_button)
        nudge_box = QGroupBox("Manual nudge (T2* world, about the slab centre)")
        nudge_layout = QVBoxLayout(nudge_box)
        nudge_layout.addLayout(grid)
        nudge_layout.addLayout(buttons)
        self.qc_label = QLabel("")
        self.qc_label.setWordWrap(True)

        qc_box = QGroupBox("Quality control")
        qc_layout = QVBoxLayout(qc_box)
        qc_layout.addLayout(qc_form)
        qc_layout.addWidget(nudge_box)
        qc_layout.addWidget(self.qc_label)

        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addLayout(series_row)
        layout.addWidget(self.from_saved)
        layout.addWidget(self.run_button)
        layout.addWidget(self.panel)
        layout.addWidget(self.result_label)
        layout.addWidget(qc_box)
        layout.addStretch(1)
        scroll_contents(self)  # fits a small screen: the dock's contents scroll

        self._mask = self._moving_display = self._board = None
        self._stale = False
        self._timer = QTimer(self)  # whole volume, once the nudging pauses
        self._timer.setSingleShot(True)
        self._timer.setInterval(700)
        self._timer.timeout.connect(self._update_overlay)
        self._slice_timer = QTimer(self)  # the visible slice, at once
        self._slice_timer.setSingleShot(True)
        self._slice_timer.setInterval(10)
        self._slice_timer.timeout.connect(self._update_visible_slice)
        self.viewer.dims.events.current_step.connect(self._on_step)
        self._set_qc_enabled(False)
        self._fill_subject_from_layers()
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)

    # --- helpers -----------------------------------------------------------------------------
    def _spin(self, lo: float, hi: float, step: float, suffix: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(lo, hi)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setSuffix(suffix)
        box.valueChanged.connect(self._schedule_update)
        return box

    def _set_qc_enabled(self, enabled: bool) -> None:
        for w in [*self.shift, *self.rotation, self.reset_button, self.save_button, self.mode,
                  self.check_mm, self.opacity]:
            w.setEnabled(enabled)

    def _fill_subject_from_layers(self) -> None:
        if self.folder.text().strip():
            return
        subject = current_subject(self.viewer)
        if subject is None:
            for layer in self.viewer.layers:
                path = (layer.metadata or {}).get("path")
                subject = subject_from_path(path) if path else None
                if subject is not None:
                    break
        if subject is not None:
            self.folder.setText(str(subject.study / subject.sub))

    def _on_layer_inserted(self, event=None) -> None:
        self._fill_subject_from_layers()

    def subject(self) -> SubjectFiles:
        """The subject named in the folder field."""
        text = self.folder.text().strip()
        subject = subject_from_path(text) if text else None
        if subject is None:
            raise QSMMSError(f"{text or '(empty)'}: not a subject folder (sub-XX) or a file inside one")
        return subject

    def translation_mm(self) -> tuple[float, float, float]:
        return tuple(float(b.value()) for b in self.shift)

    def rotation_deg(self) -> tuple[float, float, float]:
        return tuple(float(b.value()) for b in self.rotation)

    def _error(self, exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        self.result_label.setText(f"error: {exc}")
        show_error(str(exc))

    # --- run ---------------------------------------------------------------------------------
    def _on_browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Subject folder (sub-XX)", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _on_run(self):
        """Start coregistration in a worker; returns the worker (tests wait on it)."""
        try:
            subject = self.subject()
        except QSMMSError as exc:
            self._error(exc)
            return None
        keys = [k for k, box in self.series_boxes.items() if box.isChecked()]
        if not keys:
            self._error(QSMMSError("no series selected"))
            return None
        self.run_button.setEnabled(False)
        self.result_label.setText("")
        self.worker = run_with_progress(
            coregister_subject, self.panel, on_returned=self._on_done, on_error=self._on_failed,
            subject=subject, keys=tuple(keys), from_saved=self.from_saved.isChecked(),
        )
        self.worker.finished.connect(lambda: self.run_button.setEnabled(True))
        return self.worker

    def _on_done(self, result) -> None:
        self._last_result = result
        lines = [f"{key}: {res.summary()}" for key, res in result.results.items()]
        lines += result.notes
        self.result_label.setText("\n".join(lines) if lines else "nothing to coregister")
        if result.results:
            first = next(iter(result.results))
            self.qc_series.setCurrentText(first)
            self.show_qc(first)

    def _on_failed(self, exc: BaseException) -> None:
        self._error(exc)

    # --- QC ----------------------------------------------------------------------------------
    def _on_show_qc(self) -> None:
        self.show_qc(self.qc_series.currentText())

    def show_qc(self, key: str) -> None:
        """Load series ``key``'s saved coregistration and show it over the T2* magnitude."""
        try:
            self.qc = QCState(self.subject(), key)
        except QSMMSError as exc:
            self._error(exc)
            return
        self._on_reset(update=False)
        meta = self.qc.metadata
        mi = meta.get("mutual_information")
        text = f"{SERIES_NAMES[key]}: saved transform"
        if mi is not None:
            text += f", MI {mi:.3f}, correction {meta.get('correction_mm', 0):.2f} mm / {meta.get('correction_deg', 0):.2f} deg"
        if meta.get("manual_nudges"):
            text += f", {len(meta['manual_nudges'])} manual nudge(s)"
        self.qc_label.setText(text)
        self._set_qc_enabled(True)
        self._update_overlay()
        self.viewer.reset_view()

    def _layer(self, name: str):
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _ensure_layer(self, name: str, data: np.ndarray, **style):
        layer = self._layer(name)
        if layer is not None and layer.data.shape == data.shape:
            layer.data = data
            return layer
        if layer is not None:
            self.viewer.layers.remove(layer)
        from .._reader import volume_layer_data

        vol = Volume(np.zeros(self.qc.fixed.shape[:3], np.float32), self.qc.fixed.affine)
        _, kwargs, kind = volume_layer_data(vol, "coreg_qc", name=name)
        kwargs.pop("contrast_limits", None)
        kwargs["metadata"]["role"] = "coreg_qc"
        kwargs.update(style)
        return add_layer_data(self.viewer, data, kwargs, kind)

    def _schedule_update(self, *_) -> None:
        """Nudge or square size changed: the visible slice now, the whole volume when idle."""
        if self.qc is None:
            return
        self._slice_timer.start()
        self._timer.start()

    def _update_overlay(self) -> None:
        """Resample the whole series with the current nudge and refresh the QC layers."""
        if self.qc is None:
            return
        qc = self.qc
        self._mask = qc.checker_mask(self.check_mm.value())
        self._moving_display = scale_intensity(qc.resampled(self.translation_mm(), self.rotation_deg()),
                                               qc.moving_range)
        self._board = np.where(self._mask, qc.fixed_display, self._moving_display).astype(np.float32)
        self._stale = False
        self._ensure_layer(FIXED_LAYER, qc.fixed_display, colormap="gray", contrast_limits=(0.0, 1.0))
        blend = self._ensure_layer(BLEND_LAYER, self._moving_display, colormap="magenta",
                                   contrast_limits=(0.0, 1.0), blending="additive")
        check = self._ensure_layer(CHECKER_LAYER, self._board, colormap="gray", contrast_limits=(0.0, 1.0))
        blend.opacity = self.opacity.value() / 100.0
        self._on_mode(self.mode.currentText(), layers=(check, blend))

    def visible_slice(self) -> tuple[int, int] | None:
        """(axis, index) of the QC layers' slice shown in a 2-D view, else None."""
        check = self._layer(CHECKER_LAYER)
        dims = self.viewer.dims
        if check is None or dims.ndisplay != 2:
            return None
        offset = dims.ndim - check.ndim
        axes = [a - offset for a in dims.not_displayed if a >= offset]
        if len(axes) != 1:
            return None
        axis = axes[0]
        index = int(round((dims.point[axis + offset] - check.translate[axis]) / check.scale[axis]))
        return (axis, index) if 0 <= index < check.data.shape[axis] else None

    def _update_visible_slice(self, *_) -> None:
        """Re-sample only the displayed slice (milliseconds, even at the paper's size)."""
        if self.qc is None or self._board is None:
            return
        where = self.visible_slice()
        if where is None:
            return
        axis, index = where
        plane = scale_intensity(self.qc.resampled_slice(axis, index, self.translation_mm(), self.rotation_deg()),
                                self.qc.moving_range)
        sl = tuple(index if a == axis else slice(None) for a in range(3))
        self._moving_display[sl] = plane
        self._board[sl] = np.where(self._mask[sl], self.qc.fixed_display[sl], plane)
        self._stale = True
        for name in (BLEND_LAYER, CHECKER_LAYER):
            layer = self._layer(name)
            if layer is not None:
                layer.refresh()

    def _on_check_size(self, *_) -> None:
        if self.qc is not None:
            self._update_overlay()

    def _on_step(self, *_) -> None:
        if self._stale:
            self._slice_timer.start()

    def _on_mode(self, mode: str, layers=None) -> None:
        check, blend = layers or (self._layer(CHECKER_LAYER), self._layer(BLEND_LAYER))
        if check is None or blend is None:
            return
        check.visible = mode == "checkerboard"
        blend.visible = mode == "blend"
        fixed = self._layer(FIXED_LAYER)
        if fixed is not None:
            fixed.visible = mode == "blend"
        # keep the QC layers on top of the stack, checkerboard last
        for layer in (fixed, blend, check):
            if layer is not None:
                self.viewer.layers.move(self.viewer.layers.index(layer), len(self.viewer.layers))
        self.viewer.layers.selection.active = check if mode == "checkerboard" else blend

    def _on_opacity(self, value: int) -> None:
        blend = self._layer(BLEND_LAYER)
        if blend is not None:
            blend.opacity = value / 100.0

    def _on_reset(self, *_, update: bool = True) -> None:
        for box in [*self.shift, *self.rotation]:
            box.blockSignals(True)
            box.setValue(0.0)
            box.blockSignals(False)
        if update:
            self._update_overlay()

    def _on_save(self):
        """Re-write the transform and the resampled series with the nudge (in a worker)."""
        if self.qc is None:
            return None
        qc = self.qc
        t, r = self.translation_mm(), self.rotation_deg()
        if not any(t) and not any(r):
            self.qc_label.setText("nothing to save: the nudge is zero")
            return None
        self.save_button.setEnabled(False)
        self.worker = run_with_progress(
            save_nudged, self.panel, on_returned=lambda paths: self._on_saved(qc.key, paths),
            on_error=self._on_failed, subject=qc.subject, key=qc.key, nudge=qc.nudge(t, r),
            translation_mm=t, rotation_deg=r,
        )
        self.worker.finished.connect(lambda: self.save_button.setEnabled(True))
        return self.worker

    def _on_saved(self, key: str, paths) -> None:
        self.show_qc(key)
        self.qc_label.setText(self.qc_label.text() + f"; saved {', '.join(Path(p).name for p in paths)}")

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt name
        """Leaving the step (another workspace page, dock hidden): the QC layers go out of sight."""
        self._qc_shown = {}
        for name in (FIXED_LAYER, BLEND_LAYER, CHECKER_LAYER):
            layer = self._layer(name)
            if layer is not None:
                self._qc_shown[name] = layer.visible
                layer.visible = False
        super().hideEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt name
        for name, visible in getattr(self, "_qc_shown", {}).items():
            layer = self._layer(name)
            if layer is not None:
                layer.visible = visible
        self._qc_shown = {}
        super().showEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        self._timer.stop()
        self._slice_timer.stop()
        for emitter, slot in ((self.viewer.layers.events.inserted, self._on_layer_inserted),
                              (self.viewer.dims.events.current_step, self._on_step)):
            try:
                emitter.disconnect(slot)
            except (TypeError, ValueError, RuntimeError):
                pass
        super().closeEvent(event)


__all__ = ["CoregisterWidget", "QCState"]
