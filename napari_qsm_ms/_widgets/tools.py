"""The "Drawing tools" dock: fill from a click, interpolate between slices, window/level.

* **Fill from a click**: with *Fill on click* on, a click on the canvas fills the connected
  voxels of the chosen image whose intensity lies in [low, high] (:func:`roi.fill.region_grow`,
  in the clicked slice unless *3-D* is ticked) with the Lesions layer's selected label, never
  over another lesion (:func:`roi.fill.fill_voxels`). One click = one undo step (Ctrl-Z).
* **Interpolate**: fills the empty slices between the drawn slices of the selected lesion along
  the slider axis (:func:`roi.lesions.interpolate_slices`), one undo step.
* **Window/level**: presets per contrast (:func:`display.window_presets`) for the selected
  image layer, and *Drag W/L*: with it on, dragging on the canvas changes the window
  (left/right) and level (up/down) of the selected image (:func:`display.drag_window_level`);
  panning is off meanwhile.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..display import drag_window_level, robust_range, window_presets
from ..errors import QSMMSError
from ..roi.fill import fill_voxels, range_around, region_grow
from ..roi.lesions import interpolate_slices
from ._layers import find_layer, viewer_camera

DRAG_PIXELS_FOR_FULL_RANGE = 400.0
"""A drag of this many pixels changes window or level by the image's whole robust range."""


def _voxel_of(layer, world_position) -> tuple[int, ...]:
    data = np.asarray(layer.world_to_data(world_position), dtype=float)[-3:]
    return tuple(int(round(v)) for v in data)


def _image_layers(viewer) -> list:
    return [layer for layer in viewer.layers if isinstance(layer, Image) and layer.data.ndim == 3]


class DrawingToolsWidget(QWidget):
    """Fill from a click, interpolation between drawn slices, window/level presets and drag."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.status = QLabel("")
        self.status.setWordWrap(True)

        # --- fill -------------------------------------------------------------------------------
        self.source_combo = QComboBox()
        self.low_spin, self.high_spin = QDoubleSpinBox(), QDoubleSpinBox()
        for spin in (self.low_spin, self.high_spin):
            spin.setRange(-1e9, 1e9)
            spin.setDecimals(3)
        self.fill_check = QCheckBox("Fill on click")
        self.fill_check.setToolTip("A click on the canvas fills the connected voxels within the range")
        self.fill_check.toggled.connect(self._on_fill_toggled)
        self.volume_check = QCheckBox("3-D (else the clicked slice only)")
        self.pick_check = QCheckBox("Range from the clicked voxel")
        self.pick_check.setChecked(True)
        fill_box = QGroupBox("Fill from a click (threshold / region grow)")
        form = QFormLayout(fill_box)
        form.addRow("Image", self.source_combo)
        rng = QHBoxLayout()
        rng.addWidget(self.low_spin)
        rng.addWidget(QLabel("to"))
        rng.addWidget(self.high_spin)
        form.addRow("Intensity", rng)
        form.addRow(self.pick_check)
        form.addRow(self.volume_check)
        form.addRow(self.fill_check)

        # --- interpolation ----------------------------------------------------------------------
        self.interpolate_button = QPushButton("Interpolate the selected lesion between drawn slices")
        self.interpolate_button.clicked.connect(self.interpolate)

        # --- window / level ---------------------------------------------------------------------
        self.preset_combo = QComboBox()
        self.preset_combo.activated.connect(lambda _i: self.apply_preset(self.preset_combo.currentText()))
        self.drag_check = QCheckBox("Drag W/L on the canvas")
        self.drag_check.toggled.connect(self._on_drag_toggled)
        wl_box = QGroupBox("Window / level of the selected image")
        wl = QFormLayout(wl_box)
        wl.addRow("Preset", self.preset_combo)
        wl.addRow(self.drag_check)

        lay = QVBoxLayout(self)
        lay.addWidget(fill_box)
        lay.addWidget(self.interpolate_button)
        lay.addWidget(wl_box)
        lay.addWidget(self.status)
        lay.addStretch(1)

        self.viewer.layers.events.inserted.connect(self._refresh)
        self.viewer.layers.events.removed.connect(self._refresh)
        self.viewer.layers.selection.events.active.connect(self._refresh_presets)
        self._refresh()

    # --- layers ---------------------------------------------------------------------------------
    def _refresh(self, event=None) -> None:
        current = self.source_combo.currentText()
        names = [layer.name for layer in _image_layers(self.viewer)]
        self.source_combo.clear()
        self.source_combo.addItems(names)
        if current in names:
            self.source_combo.setCurrentText(current)
        self._refresh_presets()

    def _source(self):
        name = self.source_combo.currentText()
        return next((layer for layer in _image_layers(self.viewer) if layer.name == name), None)

    def _lesions(self):
        layer = find_layer(self.viewer, "lesions")
        if layer is None:
            raise QSMMSError("no lesions layer: load a subject first")
        return layer

    def _apply_edit(self, layer, index, value) -> int:
        """Write ``value`` at ``index`` as one undoable edit; the number of voxels changed."""
        n = int(len(index[0])) if index else 0
        if n:
            layer.data_setitem(index, value)
        return n

    # --- fill -----------------------------------------------------------------------------------
    def _on_fill_toggled(self, on: bool) -> None:
        callbacks = self.viewer.mouse_drag_callbacks
        if on and self._fill_callback not in callbacks:
            callbacks.append(self._fill_callback)
            lesions = find_layer(self.viewer, "lesions")
            if lesions is not None:
                lesions.mode = "pan_zoom"  # the click fills, it does not paint
        elif not on and self._fill_callback in callbacks:
            callbacks.remove(self._fill_callback)

    def _fill_callback(self, viewer, event):
        if event.type != "mouse_press" or event.button != 1:
            return
        start = tuple(event.pos)
        yield
        while event.type == "mouse_move":  # a drag pans: no fill
            yield
        if np.hypot(*(np.asarray(event.pos) - start)) <= 3:
            self.fill_at(event.position)

    def fill_at(self, world_position) -> int:
        """Fill from the voxel at ``world_position``; the number of voxels filled."""
        try:
            source, lesions = self._source(), self._lesions()
            if source is None:
                raise QSMMSError("no image to threshold: load a subject first")
            seed = _voxel_of(source, world_position)
            if self.pick_check.isChecked():
                low, high = range_around(source.data, seed)
                self.low_spin.setValue(low)
                self.high_spin.setValue(high)
            plane = None if self.volume_check.isChecked() else self.viewer.dims.order[0]
            region = region_grow(
                source.data, seed, self.low_spin.value(), self.high_spin.value(), plane_axis=plane
            )
            label = int(lesions.selected_label)
            n = self._apply_edit(lesions, fill_voxels(lesions.data, region, label), label)
        except QSMMSError as exc:
            self.status.setText(f"error: {exc}")
            return 0
        self.status.setText(f"filled {n} voxels with lesion {label} (Ctrl-Z undoes)")
        return n

    # --- interpolation --------------------------------------------------------------------------
    def interpolate(self) -> int:
        """Interpolate the selected lesion along the slider axis; the number of voxels added."""
        try:
            lesions = self._lesions()
            label = int(lesions.selected_label)
            axis = self.viewer.dims.order[0]
            new, filled = interpolate_slices(
                lesions.data, label, slice_axis=axis, voxel_size_mm=tuple(lesions.scale[-3:])
            )
            n = self._apply_edit(lesions, np.nonzero(new != np.asarray(lesions.data)), label)
        except QSMMSError as exc:
            self.status.setText(f"error: {exc}")
            return 0
        where = f"slices {filled}" if filled else "no empty slice between drawn ones"
        self.status.setText(f"lesion {label}: {n} voxels added in {where} (Ctrl-Z undoes)")
        return n

    # --- window / level -------------------------------------------------------------------------
    def _active_image(self):
        layer = self.viewer.layers.selection.active
        return layer if isinstance(layer, Image) else None

    def _refresh_presets(self, event=None) -> None:
        self.preset_combo.clear()
        layer = self._active_image()
        if layer is None:
            return
        role = (layer.metadata or {}).get("role", "image")
        try:
            self._presets = window_presets(role, layer.data)
        except QSMMSError:
            self._presets = {}
        self.preset_combo.addItems(list(self._presets))

    def apply_preset(self, name: str) -> None:
        layer = self._active_image()
        if layer is not None and name in getattr(self, "_presets", {}):
            layer.contrast_limits = self._presets[name]

    def _on_drag_toggled(self, on: bool) -> None:
        callbacks = self.viewer.mouse_drag_callbacks
        viewer_camera(self.viewer).mouse_pan = not on
        if on and self._drag_callback not in callbacks:
            callbacks.append(self._drag_callback)
        elif not on and self._drag_callback in callbacks:
            callbacks.remove(self._drag_callback)

    def _drag_callback(self, viewer, event):
        layer = self._active_image()
        if layer is None or event.button != 1:
            return
        start_pos = np.asarray(event.pos, dtype=float)
        start_limits = tuple(layer.contrast_limits)
        data_range = robust_range(layer.data)
        yield
        while event.type == "mouse_move":
            dx, dy = (np.asarray(event.pos, dtype=float) - start_pos) / DRAG_PIXELS_FOR_FULL_RANGE
            layer.contrast_limits = drag_window_level(start_limits, dx, -dy, data_range)
            yield

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.fill_check.setChecked(False)
        self.drag_check.setChecked(False)
        super().closeEvent(event)
