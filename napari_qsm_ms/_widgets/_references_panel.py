"""References panel of the Lesions dock: the reference parameters and "Build references".

It runs :func:`roi.study.compute_subject_references` -- what ``qsm-ms rois`` runs -- on inputs
taken from the layers in the files' voxel order, and writes NAWM rings / NAGM strips into the
refwm / refgm layers (one undo step per layer, one Ctrl-Z for the whole operation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QSpinBox

from ..errors import QSMMSError
from ..io.nifti import to_canonical
from ..roi import references as roi_refs
from ..roi.rules import read_consensus_table
from ..roi.study import ReferenceInputs, compute_subject_references
from ._layers import layer_to_volume, select_drawing_layer
from ._panel_tools import DockPanel, apply_labels_edit, button, raise_or_notify


def _mm_spin(low: float, high: float, value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(0.1)
    spin.setDecimals(2)
    spin.setSuffix(" mm")
    spin.setValue(float(value))
    return spin


class ReferencesPanel(DockPanel):
    """The "References" tab of the Lesions dock."""

    def __init__(self, dock):
        super().__init__(dock)
        self.reference_table = None  # the table of the last references built here
        px = roi_refs.PAPER_PIXEL_MM
        self.gap_spin = _mm_spin(0.0, 10.0, roi_refs.DEFAULT_GAP_MM)
        self.gap_spin.setToolTip(
            f"Gap between a lesion and its reference (partial-volume guard), mm. Paper default "
            f"{roi_refs.DEFAULT_GAP_MM} mm = {roi_refs.DEFAULT_GAP_MM / px:.0f} px of {px} mm"
        )
        self.ring_spin = _mm_spin(0.1, 20.0, roi_refs.DEFAULT_RING_MM)
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
        self.build_refs_button = button(
            "Build references",
            "Build NAWM rings (WM lesions) and NAGM strips (cortical lesions), both for mixed lesions, "
            "into the refwm / refgm layers (one undo step per layer)",
            self.build_references,
        )
        form = QFormLayout(self)
        form.addRow("Gap", self.gap_spin)
        form.addRow("Ring / strip width", self.ring_spin)
        form.addRow("Max distance", self.maxdist_spin)
        form.addRow("Min voxels", self.minvox_spin)
        form.addRow(self.allslices_check)
        form.addRow(self.build_refs_button)

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
        dock = self.dock
        subject = dock.subject
        lesions = layer_to_volume(dock.layer("lesions"))
        inputs = ReferenceInputs(
            np.asarray(lesions.data), np.asarray(layer_to_volume(dock.layer("tissue")).data), lesions.affine,
            read_consensus_table(subject) if subject is not None else None, dock.lesions_panel.excluded(),
            classes_name=subject.lesions_tsv.name if subject is not None else None,
        )
        vessels = dock.layer("vessels")
        if vessels is not None and np.any(vessels.data):
            inputs.vessels = np.asarray(layer_to_volume(vessels).data) > 0
        mask = dock.layer("mask")
        if mask is not None and np.any(mask.data):
            inputs.brain_mask = np.asarray(layer_to_volume(mask).data)
            path = (mask.metadata or {}).get("path")
            inputs.brain_mask_name = Path(path).name if path else f"layer {mask.name}"
        return inputs

    def build_references(self, *, start: bool = True):
        """Run ``roi.study.compute_subject_references`` (what ``qsm-ms rois`` runs) in a worker on
        the layers, and fill refwm / refgm."""
        lesions = self.dock.layer("lesions")
        tissue = self.dock.layer("tissue")
        if lesions is None or not np.any(lesions.data):
            raise_or_notify(self.dock, "draw lesions first")
            return None
        if tissue is None or not np.any(tissue.data):
            raise_or_notify(self.dock, "the tissue layer is empty: import or estimate tissue classes first")
            return None
        self.dock.refresh_table()
        try:
            inputs = self.reference_inputs()
        except QSMMSError as exc:
            raise_or_notify(self.dock, str(exc))
            return None
        return self.dock.run(compute_subject_references, self._apply_references, start=start, inputs=inputs,
                             **self.reference_parameters())

    def _apply_references(self, refs) -> None:
        dock = self.dock
        lesions = dock.layer("lesions")
        view = (lesions.metadata or {}).get("canonical")
        edited = []
        for role, data in (("refwm", refs.result.refwm), ("refgm", refs.result.refgm)):
            layer = dock.ensure_layer(role)
            if view is not None:
                data = to_canonical(np.asarray(data), view.source_affine)[0]
            if apply_labels_edit(layer, np.asarray(data, dtype=layer.data.dtype)):
                edited.append(layer)
            layer.contour = 1
            layer.visible = True
        select_drawing_layer(dock.viewer)  # the user stays on 'lesions'
        # Ctrl-Z from 'lesions' (or a reference layer) undoes the references, in one step
        dock.operation_undo.record(
            "Build references", edited, [lesions], on_undone=dock.after_operation_undone
        )
        self.reference_table = refs.result.table
        if dock.state is not None:
            dock.state.set_reference_flags(refs.flags, refs.record)
            dock.autosaver.schedule("annotation")
        dock.refresh_table()
