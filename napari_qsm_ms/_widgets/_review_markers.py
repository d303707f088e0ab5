"""The Review dock's "Rim and vein" section: the current lesion's markers, as numbers, a radial
profile and two napari layers the user can toggle (rim band coloured by paramagnetic sector, and
the vein voxels through the lesion centre).

The work is :func:`napari_qsm_ms.stats.marker_view.lesion_marker_view` in a worker; its numbers
come from ``stats.markers.marker_table``, the function that writes ``stats/lesions.tsv``.
"""

from __future__ import annotations

import contextlib

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import QCheckBox, QGroupBox, QLabel, QSizePolicy, QVBoxLayout

from ..io.nifti import to_canonical
from ..roi.marker_overlay import SECTOR_PARAMAGNETIC, SECTOR_QUIET
from ..roi.rim import PRL_SCORE_PPM, RIM_BAND_MM
from ..roi.veins import VESSEL_THRESHOLD
from ..stats.marker_view import LesionMarkerView, lesion_marker_view, marker_decisions
from ..errors import QSMMSError
from ._layers import current_subject, layer_grid
from ._marker_inputs import marker_fingerprint, marker_inputs
from ._worker import ProgressPanel, run_with_progress

RIM_LAYER = "rim sectors"
VEIN_LAYER = "vein (lesion centre)"
QUIET_COLOR = "#4682b4"
PARAMAGNETIC_COLOR = "#ff8c00"
VEIN_COLOR = "#00e5ff"


class MarkerSection(QGroupBox):
    """Rim and vein of the Review dock's current lesion (``review`` is the :class:`.review.ReviewWidget`)."""

    shown = Signal()

    def __init__(self, review) -> None:
        super().__init__("Rim and vein")
        self.review = review
        self.view: LesionMarkerView | None = None
        self._key = None
        self._worker = None
        self._again = False
        self._closed = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.layers_check = QCheckBox("Show rim sectors and vein in the viewer")
        self.layers_check.setChecked(True)
        self.layers_check.setToolTip(
            f"Adds two layers: '{RIM_LAYER}' (rim band: orange where the sector is paramagnetic, blue elsewhere) "
            f"and '{VEIN_LAYER}' (centre voxels with dark-vessel vesselness >= {VESSEL_THRESHOLD})"
        )
        self.layers_check.toggled.connect(self._on_check)
        lay.addWidget(self.layers_check)
        self.text = QLabel("no lesion")
        self.text.setWordWrap(True)
        lay.addWidget(self.text)
        self.figure = Figure(figsize=(5.0, 1.7), dpi=90)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.canvas.setFixedHeight(170)
        lay.addWidget(self.canvas)
        self.progress = ProgressPanel()
        lay.addWidget(self.progress)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(80)
        self._timer.timeout.connect(self.update_markers)

    # ------------------------------------------------------------------------------- work
    def request(self) -> None:
        """The current lesion or its inputs may have changed: update soon (debounced)."""
        if not self._closed:
            self._timer.start()

    def update_markers(self, *, start: bool = True):
        """Measure the current lesion in a worker unless its result is shown already; returns the worker."""
        self._timer.stop()
        if self._closed:
            return None
        if self._worker is not None:
            self._again = True
            return self._worker
        lid = self.review.current_id
        subject = current_subject(self.review.viewer)
        key = (lid, marker_fingerprint(self.review.layer, subject))
        if key == self._key:
            return None
        self._key = key
        try:
            inputs = None if lid is None else marker_inputs(self.review.layer, subject)
        except QSMMSError as exc:  # an unreadable round consensus: say so, measure without it
            self.text.setText(str(exc))
            inputs = marker_inputs(self.review.layer)
        if inputs is None or (inputs.chi_ppm is None and inputs.magnitude is None and inputs.rated is None):
            self.view = None
            missing = {} if inputs is None else inputs.missing()
            self.text.setText("no lesion" if inputs is None else " ".join(sorted(set(missing.values()))))
            self._draw_profile()
            self._show_layers()
            self.shown.emit()
            return None

        def _done(view):
            self._worker = None
            if self._closed:
                return
            self.view = view
            self._show()
            if self._again or (view is not None and view.lesion_id != self.review.current_id):
                self._again = False
                self._key = None
                self.update_markers()

        def _failed(exc):
            self._worker = None
            self._key = None
            self.text.setText(f"rim and vein measures failed: {exc}")

        self._worker = run_with_progress(
            lesion_marker_view, self.progress, on_returned=_done, on_error=_failed, start=start,
            inputs=inputs, lesion_id=int(lid),
        )
        return self._worker

    # ------------------------------------------------------------------------------- showing
    def _show(self) -> None:
        self.text.setText(self.summary())
        self._draw_profile()
        self._show_layers()
        self.shown.emit()

    def summary(self) -> str:
        """The current lesion's rim score, coverage, vein score (marker_table's values) and its PRL
        and CVS as ``qsm-ms stats`` counts them (:func:`.marker_view.marker_decisions`)."""
        view = self.view
        if view is None:
            return "no lesion"
        v, missing = view.values, view.missing
        parts = [f"<b>Lesion {view.lesion_id}</b>"]
        if "rim_score_ppm" in missing:
            parts.append(f"rim: — ({missing['rim_score_ppm']})")
        elif not np.isfinite(float(v.get("rim_score_ppm", np.nan))):
            parts.append("rim: — (no WM edge: rims are judged in white matter)")
        else:
            parts.append(
                f"rim score {float(v['rim_score_ppm']):.3f} ppm (PRL from {PRL_SCORE_PPM} ppm), rim coverage "
                f"{100 * float(v['rim_coverage']):.0f} %, rim - core {float(v['rim_contrast_ppm']):+.3f} ppm"
            )
        if "vein_score" in missing:
            parts.append(f"vein: — ({missing['vein_score']})")
        elif not np.isfinite(float(v.get("vein_score", np.nan))):
            parts.append("vein: — (no magnitude around the lesion)")
        else:
            parts.append(f"vein score {float(v['vein_score']):.2f} (CVS from {VESSEL_THRESHOLD})")
        if v:
            decided = marker_decisions(v)
            shown = [f"<b>{name} {decided[col][0]}</b> ({decided[col][1]})"
                     for col, name in (("prl", "PRL"), ("cvs", "CVS")) if decided[col][0] is not None]
            if shown:
                parts.append("counted: " + "; ".join(shown))
        return "<br>".join(parts)

    def _draw_profile(self) -> None:
        self.figure.clear()
        ax = self.figure.add_subplot(1, 1, 1)
        view = self.view
        prof = None if view is None else view.profile
        if prof is None or not np.isfinite(prof["median_ppm"].to_numpy(float)).any():
            ax.text(0.5, 0.5, "no radial profile (needs the QSM)", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        else:
            ax.axvspan(*RIM_BAND_MM, color="0.88", zorder=0)
            ax.axvline(0.0, color="0.5", lw=0.8)
            ok = np.isfinite(prof["median_ppm"].to_numpy(float))  # empty bins (voxel grid) are bridged
            ax.plot(prof["distance_mm"][ok], prof["median_ppm"][ok], "o-", color="tab:red", ms=3, lw=1.5)
            if view.rim is not None and np.isfinite(view.rim.reference_ppm):
                ax.axhline(view.rim.reference_ppm, color="tab:blue", ls="--", lw=0.9)
                ax.text(prof["distance_mm"].max(), view.rim.reference_ppm, "reference", color="tab:blue",
                        fontsize=7, ha="right", va="bottom")
            shown = prof["distance_mm"][ok]
            lo, hi = min(float(shown.min()), RIM_BAND_MM[0]), max(float(shown.max()), RIM_BAND_MM[1])
            ymax = ax.get_ylim()[1]
            for x, label, align in ((lo, "inside", "left"), (0.0, "rim band", "center"), (hi, "outside", "right")):
                ax.text(x, ymax, label, ha=align, va="top", fontsize=7, color="0.3")
            ax.set_xlabel("distance to the boundary (mm)", fontsize=7)
            ax.set_ylabel("χ median (ppm)", fontsize=7)
            ax.tick_params(labelsize=7)
        self.figure.tight_layout(pad=0.3)
        self.canvas.draw_idle()

    # ------------------------------------------------------------------------------- layers
    def _find(self, name: str):
        viewer = self.review.viewer
        return viewer.layers[name] if name in viewer.layers else None

    def _on_check(self, checked: bool) -> None:
        self._show_layers()

    def _remove_layers(self) -> None:
        for name in (RIM_LAYER, VEIN_LAYER):
            layer = self._find(name)
            if layer is not None:
                self.review.viewer.layers.remove(layer)

    def _show_layers(self) -> None:
        """Put the current lesion's rim sectors and vein voxels into the two layers (canonical grid)."""
        lesions = self.review.layer("lesions")
        view = self.view
        if not self.layers_check.isChecked() or lesions is None or view is None:
            self._remove_layers()
            return
        grid = layer_grid(lesions)
        affine = np.asarray(grid.affine, float)
        labels = np.zeros(grid.shape[:3], np.int8)
        if view.rim is not None:
            labels[view.box] = view.rim.labels
        canon, cview = to_canonical(labels, affine)
        to_canon = np.linalg.inv(cview.canonical_affine) @ affine
        pts = np.c_[view.vein_index, np.ones(len(view.vein_index))] @ to_canon.T
        active = self.review.viewer.layers.selection.active
        geometry = {"scale": lesions.scale, "translate": lesions.translate}
        rim = self._find(RIM_LAYER)
        if rim is None:
            cmap = DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0),
                                                   SECTOR_QUIET: QUIET_COLOR, SECTOR_PARAMAGNETIC: PARAMAGNETIC_COLOR})
            rim = self.review.viewer.add_labels(np.ascontiguousarray(canon), name=RIM_LAYER, colormap=cmap, opacity=0.6,
                                                metadata={"marker_overlay": "rim"}, **geometry)
        else:
            rim.data = np.ascontiguousarray(canon)
        vein = self._find(VEIN_LAYER)
        if vein is None:
            vein = self.review.viewer.add_points(pts[:, :3], name=VEIN_LAYER, size=0.8, face_color=VEIN_COLOR,
                                                 border_width=0, metadata={"marker_overlay": "vein"},
                                                 out_of_slice_display=False, **geometry)
        else:
            vein.data = pts[:, :3]
        if active is not None and active in self.review.viewer.layers:
            self.review.viewer.layers.selection.active = active  # keep drawing on the layer the user had

    def shutdown(self) -> None:
        self._closed = True
        self._timer.stop()
        worker, self._worker = self._worker, None
        if worker is not None:  # still measuring: its result (and its progress panel) have nowhere to go
            for signal in (worker.returned, worker.errored):
                with contextlib.suppress(TypeError, RuntimeError):
                    signal.disconnect()
            worker.quit()
