"""Vessels / QC panel of the Lesions dock: find candidate vessel voxels and erase them from the ROIs.

The science is in :mod:`roi.vessels` (``vessel_candidates``, ``remove_voxels``); the panel
gathers the layers and the two settings, and edits the layers as one undo step per layer.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout

from ..roi import vessels as roi_vessels
from ._layers import voxel_size_of
from ._panel_tools import DockPanel, apply_labels_edit, button, raise_or_notify, without_progress


class VesselsPanel(DockPanel):
    """The "Vessels / QC" tab of the Lesions dock."""

    def __init__(self, dock):
        super().__init__(dock)
        form = QFormLayout(self)
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
        self.find_vessels_button = button(
            "Find vessels", "Candidate vessel voxels from the QSM map, into the 'vessels' layer", self.find_vessels
        )
        self.remove_vessels_button = button(
            "Remove vessels from ROIs", "Erase vessel voxels from lesions, refwm and refgm (undoable)", self.remove_vessels
        )
        form.addRow("Threshold", self.vessel_spin)
        form.addRow(self.vesselness_check)
        form.addRow(self.find_vessels_button)
        form.addRow(self.remove_vessels_button)

    def find_vessels(self, *, start: bool = True):
        """Candidate vessel voxels from the QSM map (worker), shown in the 'vessels' layer."""
        qsm = self.dock.layer("qsm")
        tissue = self.dock.layer("tissue")
        if qsm is None:
            raise_or_notify(self.dock, "no QSM layer: reconstruct QSM first")
            return None
        mask = self.dock.layer("mask")
        func = without_progress(
            roi_vessels.vessel_candidates,
            chi_ppm=np.asarray(qsm.data, dtype=np.float32),
            tissue=None if tissue is None or not np.any(tissue.data) else np.asarray(tissue.data),
            voxel_size_mm=voxel_size_of(qsm),
            threshold_ppm=float(self.vessel_spin.value()),
            use_vesselness=bool(self.vesselness_check.isChecked()),
            mask=None if mask is None else np.asarray(mask.data) > 0,
        )
        return self.dock.run(func, self._apply_vessels, start=start)

    def _apply_vessels(self, vessels: np.ndarray) -> None:
        layer = self.dock.ensure_layer("vessels")
        apply_labels_edit(layer, np.asarray(vessels, dtype=layer.data.dtype))
        layer.visible = True
        self.dock.summary_label.setText(f"{int(np.count_nonzero(vessels))} candidate vessel voxels")

    def remove_vessels(self) -> dict[str, int]:
        """Erase vessel voxels from lesions, refwm and refgm (one undo step per layer)."""
        vessels = self.dock.layer("vessels")
        if vessels is None or not np.any(vessels.data):
            raise_or_notify(self.dock, "no vessel candidates: run 'Find vessels' first (or paint the vessels layer)")
            return {}
        mask = np.asarray(vessels.data) > 0
        removed = {}
        for role in ("lesions", "refwm", "refgm"):
            layer = self.dock.layer(role)
            if layer is None:
                continue
            removed[role] = apply_labels_edit(layer, roi_vessels.remove_voxels(np.asarray(layer.data), mask))
        self.dock.summary_label.setText("vessel voxels removed: " + ", ".join(f"{k} {v}" for k, v in removed.items()))
        self.dock.refresh_table()
        return removed
