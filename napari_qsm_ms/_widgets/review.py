"""Review lesions one by one: lesion and reference outlines over every contrast, side by side.

Like the paper's Figs 1 and 3-5 (Bian et al., AJNR 2016): the same in-plane crop around the lesion
on QSM, T2* magnitude, FLAIR, WM-nulled and CSF-nulled MPRAGE (and the tissue classes), all at the
viewer's current slice, with the lesion outlined in red, its NAWM reference in cyan and its NAGM
reference in green (other lesions dashed yellow). Panels are matplotlib canvases (no extra OpenGL
contexts, robust under Xvfb); the position is linked to the viewer: stepping to a lesion moves the
viewer to its central slice and centre, and moving the viewer's slice redraws the panels.

Below the panels, "Rim and vein" (:mod:`._review_markers`): the lesion's rim score, rim coverage,
vein score and CVS suggestion (the values of ``stats/lesions.tsv``), its radial profile, and two
layers following the current lesion: the rim band coloured by paramagnetic sector and the vein
voxels through its centre.

Keys (with the dock focused): Right / N / PageDown = next lesion, Left / P / PageUp = previous.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import napari
import numpy as np
import pandas as pd
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtGui import QKeySequence
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QShortcut,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..roi import lesions as roi_lesions
from ._layers import current_subject, find_layer
from ._layers import centre_viewer_on
from ._review_markers import MarkerSection
from ._scroll import scroll_contents
from ..io.layout import COREG_SERIES
from ..roi.crop import CropGeometry, crop_geometry  # noqa: F401 - CropGeometry re-exported
from ..roi.palette import REFERENCE_COLORS
from ._layers import slice_axis_of, voxel_size_of

#: (role, panel title) in display order (2 rows x 3 columns).
PANELS: tuple[tuple[str, str], ...] = (
    ("qsm", "QSM (ppm)"),
    ("magnitude", "T2* magnitude"),
    ("flair", "FLAIR"),
    ("wmn", "WM-nulled MPRAGE"),
    ("csfn", "CSF-nulled MPRAGE"),
    ("tissue", "Tissue classes"),
)
LESION_COLOR = "#ff3030"
REFWM_COLOR = REFERENCE_COLORS["refwm"]
REFGM_COLOR = REFERENCE_COLORS["refgm"]
OTHER_COLOR = "#ffd700"
TISSUE_CMAP = ListedColormap(["#000000", "#2050c0", "#909090", "#f0f0f0", "#e08020"], name="tissue5")


class ReviewWidget(QWidget):
    """Step through the lesions with outlines over all contrasts, linked to the viewer position."""

    drawn = Signal()

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.lesion_frame = pd.DataFrame(columns=roi_lesions.TABLE_COLUMNS)
        self.current_id: int | None = None
        self._closed = False
        self._navigating = False
        self._layer_connections: list = []
        self._build_ui()
        scroll_contents(self)  # fits a small screen: the dock's contents scroll
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(60)
        self._redraw_timer.timeout.connect(self.draw)
        self._list_timer = QTimer(self)
        self._list_timer.setSingleShot(True)
        self._list_timer.setInterval(400)
        self._list_timer.timeout.connect(self.refresh_lesions)
        self.viewer.dims.events.current_step.connect(self._on_dims)
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)
        self._on_layers_changed()

    # ------------------------------------------------------------------------------- UI
    def _build_ui(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        row = QHBoxLayout()
        self.prev_button = QPushButton("◀ Prev")
        self.prev_button.setToolTip("Previous lesion (Left, P, PageUp)")
        self.next_button = QPushButton("Next ▶")
        self.next_button.setToolTip("Next lesion (Right, N, PageDown)")
        self.lesion_combo = QComboBox()
        self.lesion_combo.setMinimumWidth(160)
        self.prev_button.clicked.connect(self.previous_lesion)
        self.next_button.clicked.connect(self.next_lesion)
        self.lesion_combo.activated.connect(self._on_combo)
        row.addWidget(self.prev_button)
        row.addWidget(self.lesion_combo, 1)
        row.addWidget(self.next_button)
        lay.addLayout(row)
        row2 = QHBoxLayout()
        self.width_spin = QDoubleSpinBox()
        self.width_spin.setRange(5.0, 120.0)
        self.width_spin.setValue(20.0)
        self.width_spin.setDecimals(0)
        self.width_spin.setSuffix(" mm")
        self.width_spin.setToolTip("Half width of the crop around the lesion (mm)")
        self.width_spin.valueChanged.connect(lambda *_: self._redraw_timer.start())
        self.others_check = QCheckBox("other lesions")
        self.others_check.setChecked(True)
        self.others_check.toggled.connect(lambda *_: self._redraw_timer.start())
        row2.addWidget(QLabel("Crop ±"))
        row2.addWidget(self.width_spin)
        row2.addWidget(self.others_check)
        row2.addStretch(1)
        lay.addLayout(row2)
        self.info_label = QLabel("no lesions")
        self.info_label.setWordWrap(True)
        lay.addWidget(self.info_label)
        self.figure = Figure(figsize=(6.0, 4.6), dpi=90, facecolor="black")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.canvas.setMinimumHeight(300)
        self.canvas.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.canvas.mpl_connect("key_press_event", self._on_canvas_key)
        lay.addWidget(self.canvas)
        legend = QLabel(
            f"<span style='color:{LESION_COLOR}'>■</span> lesion &nbsp; "
            f"<span style='color:{REFWM_COLOR}'>■</span> NAWM reference &nbsp; "
            f"<span style='color:{REFGM_COLOR}'>■</span> NAGM reference &nbsp; "
            f"<span style='color:{OTHER_COLOR}'>■</span> other lesions"
        )
        lay.addWidget(legend)
        self.markers = MarkerSection(self)
        lay.addWidget(self.markers)
        lay.addStretch(1)
        for keys, slot in (
            (("Right", "N", "PgDown"), self.next_lesion),
            (("Left", "P", "PgUp"), self.previous_lesion),
        ):
            for key in keys:
                shortcut = QShortcut(QKeySequence(key), self)
                shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                shortcut.activated.connect(slot)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    _NEXT_KEYS = (Qt.Key.Key_Right, Qt.Key.Key_N, Qt.Key.Key_PageDown)
    _PREV_KEYS = (Qt.Key.Key_Left, Qt.Key.Key_P, Qt.Key.Key_PageUp)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        """Step with the keys also when the window is not active (shortcuts need an active window)."""
        if event.key() in self._NEXT_KEYS:
            self.next_lesion()
        elif event.key() in self._PREV_KEYS:
            self.previous_lesion()
        else:
            super().keyPressEvent(event)

    def _on_canvas_key(self, event) -> None:
        """The matplotlib canvas keeps its key presses: step from there too."""
        if event.key in ("right", "n", "pagedown"):
            self.next_lesion()
        elif event.key in ("left", "p", "pageup"):
            self.previous_lesion()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        """Keep the 3 x 2 panel grid near square panels: canvas height follows the dock width."""
        super().resizeEvent(event)
        width = max(self.canvas.width(), 200)
        self.canvas.setFixedHeight(int(width * 0.78))

    # ------------------------------------------------------------------------------- layers
    def layer(self, role: str):
        return find_layer(self.viewer, role, current_subject(self.viewer))

    def _on_layers_changed(self, event=None) -> None:
        if self._closed:
            return
        for emitter, cb in self._layer_connections:
            with contextlib.suppress(Exception):
                emitter.disconnect(cb)
        self._layer_connections = []
        for role in ("lesions", "refwm", "refgm", "tissue"):
            layer = self.layer(role)
            if layer is None:
                continue
            for name in ("paint", "set_data", "data"):
                emitter = getattr(layer.events, name)
                emitter.connect(self._on_labels_changed)
                self._layer_connections.append((emitter, self._on_labels_changed))
        lesions = self.layer("lesions")
        if lesions is not None:
            lesions.events.selected_label.connect(self._on_selected_label)
            self._layer_connections.append((lesions.events.selected_label, self._on_selected_label))
        self.refresh_lesions()

    def _on_labels_changed(self, event=None) -> None:
        if not self._closed:
            self._list_timer.start()

    def _on_dims(self, event=None) -> None:
        if not self._closed and not self._navigating:
            self._redraw_timer.start()

    def _on_selected_label(self, event=None) -> None:
        if self._closed or self._navigating:
            return
        lesions = self.layer("lesions")
        lid = int(lesions.selected_label)
        if lid in self.lesion_ids() and lid != self.current_id:
            self.go_to(lid)

    # ------------------------------------------------------------------------------- lesions
    def lesion_ids(self) -> list[int]:
        return [int(i) for i in self.lesion_frame["lesion_id"]] if len(self.lesion_frame) else []

    def refresh_lesions(self) -> None:
        """Recompute the lesion list (ids, central slices, centroids) from the layers."""
        self._list_timer.stop()
        lesions = self.layer("lesions")
        if lesions is None or not np.any(lesions.data):
            self.lesion_frame = pd.DataFrame(columns=roi_lesions.TABLE_COLUMNS)
        else:
            tissue = self.layer("tissue")
            tissue_data = None if tissue is None or not np.any(tissue.data) else np.asarray(tissue.data)
            self.lesion_frame = roi_lesions.lesion_table(
                np.asarray(lesions.data), tissue_data, voxel_size_of(lesions), slice_axis=slice_axis_of(lesions)
            )
        self.lesion_combo.blockSignals(True)
        self.lesion_combo.clear()
        for rec in self.lesion_frame.to_dict("records"):
            self.lesion_combo.addItem(f"lesion {rec['lesion_id']} ({rec['suggested_class']})", int(rec["lesion_id"]))
        ids = self.lesion_ids()
        if self.current_id not in ids:
            self.current_id = ids[0] if ids else None
        if self.current_id is not None:
            self.lesion_combo.setCurrentIndex(ids.index(self.current_id))
        self.lesion_combo.blockSignals(False)
        self._redraw_timer.start()
        self.markers.request()

    def _on_combo(self, index: int) -> None:
        lid = self.lesion_combo.itemData(index)
        if lid is not None:
            self.go_to(int(lid))

    def next_lesion(self) -> None:
        self._step(+1)

    def previous_lesion(self) -> None:
        self._step(-1)

    def _step(self, delta: int) -> None:
        ids = self.lesion_ids()
        if not ids:
            return
        pos = ids.index(self.current_id) if self.current_id in ids else -1 if delta > 0 else 0
        self.go_to(ids[(pos + delta) % len(ids)])

    def _record(self, lesion_id: int) -> dict | None:
        rows = self.lesion_frame[self.lesion_frame["lesion_id"] == int(lesion_id)]
        return None if rows.empty else rows.iloc[0].to_dict()

    def go_to(self, lesion_id: int) -> None:
        """Show a lesion: viewer to its central slice and centre, label selected, panels redrawn."""
        rec = self._record(lesion_id)
        lesions = self.layer("lesions")
        if rec is None or lesions is None:
            return
        self.current_id = int(lesion_id)
        ids = self.lesion_ids()
        self.lesion_combo.setCurrentIndex(ids.index(self.current_id))
        self._navigating = True
        try:
            centroid = np.array(rec["centroid_vox"], dtype=float)
            centroid[slice_axis_of(lesions)] = float(rec["central_slice"])
            centre_viewer_on(self.viewer, lesions, centroid)
            lesions.selected_label = self.current_id
        finally:
            self._navigating = False
        self.draw()
        self.markers.request()

    def current_slice(self) -> int | None:
        """The viewer's slice index (canonical voxel index along the slice axis) of the lesions layer."""
        lesions = self.layer("lesions")
        if lesions is None:
            return None
        axis = slice_axis_of(lesions)
        point = np.asarray(self.viewer.dims.point, dtype=float)[-3:]
        data = np.asarray(lesions.world_to_data(point), dtype=float)
        return int(np.clip(round(float(data[axis])), 0, lesions.data.shape[axis] - 1))

    # ------------------------------------------------------------------------------- drawing
    def draw(self) -> None:
        """Redraw every panel for the current lesion at the viewer's slice."""
        self._redraw_timer.stop()
        if self._closed:
            return
        self.figure.clear()
        lesions = self.layer("lesions")
        rec = None if self.current_id is None else self._record(self.current_id)
        if lesions is None or rec is None:
            self.info_label.setText("no lesions: draw lesions in the 'Lesions and references' dock")
            self.canvas.draw_idle()
            self.drawn.emit()
            return
        axis = slice_axis_of(lesions)
        vs = voxel_size_of(lesions)
        shape = lesions.data.shape
        z = self.current_slice()
        first, last = int(rec["first_slice"]), int(rec["last_slice"])
        if z is None or not first <= z <= last:
            z = int(rec["central_slice"])
        geo = crop_geometry(rec["centroid_vox"], z, shape, vs, float(self.width_spin.value()), axis)
        les_crop = np.asarray(lesions.data[geo.index])
        refs = {r: (self.layer(r), c) for r, c in (("refwm", REFWM_COLOR), ("refgm", REFGM_COLOR))}
        axes = self.figure.subplots(2, 3, squeeze=False).ravel()
        self.figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.90, wspace=0.04, hspace=0.14)
        ref_vox = {}
        for role, (layer, _) in refs.items():
            ref_vox[role] = 0 if layer is None else int(np.count_nonzero(np.asarray(layer.data[geo.index]) == self.current_id))
        for ax, (role, title) in zip(axes, PANELS):
            ax.set_facecolor("black")
            ax.set_xticks([])
            ax.set_yticks([])
            layer = self.layer(role)
            if layer is None and not self._native_only(role):
                ax.set_title(f"{title}\n(not available)", color="gray", fontsize=8)
                continue
            off_grid = layer is None or (layer.metadata or {}).get("on_reference_grid") is False
            if off_grid or layer.data.shape[-3:] != shape:
                ax.set_title(f"{title}\n(not on the T2* grid: coregister)", color="gray", fontsize=8)
                continue
            img = np.asarray(layer.data[geo.index], dtype=np.float32)
            if role == "tissue":
                ax.imshow(img.T, origin="lower", extent=geo.extent_mm, cmap=TISSUE_CMAP, vmin=-0.5, vmax=4.5,
                          interpolation="nearest")
            else:
                lo, hi = (float(v) for v in layer.contrast_limits)
                ax.imshow(img.T, origin="lower", extent=geo.extent_mm, cmap="gray", vmin=lo, vmax=hi,
                          interpolation="nearest")
            self._outline(ax, les_crop == self.current_id, geo, LESION_COLOR, 1.4)
            if self.others_check.isChecked():
                others = (les_crop > 0) & (les_crop != self.current_id)
                self._outline(ax, others, geo, OTHER_COLOR, 0.9, style="--")
            for ref_role, (ref_layer, color) in refs.items():
                if ref_layer is not None and ref_vox[ref_role]:
                    self._outline(ax, np.asarray(ref_layer.data[geo.index]) == self.current_id, geo, color, 1.2)
            ax.set_xlim(geo.extent_mm[1], geo.extent_mm[0])  # radiological: patient right on the left
            ax.set_ylim(geo.extent_mm[2], geo.extent_mm[3])
            ax.set_aspect("equal")
            ax.set_title(title, color="white", fontsize=8)
        # 5 mm scale bar on the first panel
        ax0 = axes[0]
        x0 = geo.extent_mm[1] - 0.08 * (geo.extent_mm[1] - geo.extent_mm[0])
        y0 = geo.extent_mm[2] + 0.08 * (geo.extent_mm[3] - geo.extent_mm[2])
        ax0.plot([x0, x0 - 5.0], [y0, y0], color="white", lw=2)
        ax0.text(x0 - 2.5, y0 + 0.04 * (geo.extent_mm[3] - geo.extent_mm[2]), "5 mm", color="white", fontsize=7,
                 ha="center")
        pos = self.lesion_ids().index(self.current_id) + 1
        self.figure.suptitle(
            f"lesion {self.current_id} ({pos}/{len(self.lesion_frame)}) - slice {geo.slice_index}",
            color="white", fontsize=9,
        )
        self.info_label.setText(
            f"Lesion {self.current_id} ({pos}/{len(self.lesion_frame)}): suggested {rec['suggested_class']}, "
            f"{float(rec['volume_mm3']):.1f} mm³, extent {float(rec['extent_mm']):.1f} mm, slices {first}-{last} "
            f"(central {int(rec['central_slice'])}); on this slice: NAWM ref {ref_vox['refwm']} vox, "
            f"NAGM ref {ref_vox['refgm']} vox" + (f"; flags: {rec['flags']}" if rec.get("flags") else "")
        )
        self.canvas.draw_idle()
        self.drawn.emit()

    @staticmethod
    def _outline(ax, mask: np.ndarray, geo: CropGeometry, color: str, width: float, style: str = "-") -> None:
        if not mask.any():
            return
        padded = np.pad(mask.astype(np.float32), 1)  # closed contours at the crop edge
        l, r, b, t = geo.extent_mm
        dx = (r - l) / mask.shape[0]
        dy = (t - b) / mask.shape[1]
        ax.contour(
            padded.T, levels=[0.5], colors=[color], linewidths=width, linestyles=style,
            extent=(l - dx, r + dx, b - dy, t + dy), origin="lower",
        )

    # ------------------------------------------------------------------------------- teardown
    def _native_only(self, role: str) -> bool:
        """Whether series ``role`` exists only on its native grid (File > Open loads the T2* grid only)."""
        subject = current_subject(self.viewer)
        if subject is None or role not in COREG_SERIES:
            return False
        return subject.raw_series(role).exists() and not subject.coreg_series(role).exists()

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.markers.shutdown()
        self._redraw_timer.stop()
        self._list_timer.stop()
        for emitter, cb in self._layer_connections:
            with contextlib.suppress(Exception):
                emitter.disconnect(cb)
        for emitter, cb in (
            (self.viewer.dims.events.current_step, self._on_dims),
            (self.viewer.layers.events.inserted, self._on_layers_changed),
            (self.viewer.layers.events.removed, self._on_layers_changed),
        ):
            with contextlib.suppress(Exception):
                emitter.disconnect(cb)

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)
