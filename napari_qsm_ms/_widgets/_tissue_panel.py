"""Tissue panel of the Lesions dock: import a segmentation or estimate the tissue classes.

The science is in :func:`roi.segmentation_grid.import_segmentation_on_grid` and
:func:`roi.tissue.estimate_tissue`; the panel gathers the layers, runs the function in the dock's
worker and writes the result into the 'tissue' layer as one undo step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QLabel

from ..roi.segmentation_grid import import_segmentation_on_grid
from ..roi.tissue import estimate_tissue as roi_estimate_tissue
from ._layers import layer_grid, voxel_size_of
from ._panel_tools import DockPanel, apply_labels_edit, button, raise_or_notify, without_progress

SEGMENTATION_KINDS = (
    ("FreeSurfer aseg", "aseg"),
    ("FreeSurfer aparc+aseg", "aparc+aseg"),
    ("SynthSeg", "synthseg"),
    ("FSL FAST hard segmentation (_seg)", "fast"),
    ("FSL FAST PVE maps (4-D: CSF, GM, WM)", "fast_pve"),
)
grid_volume = layer_grid  # the name tests and scripts import from .annotation


class TissuePanel(DockPanel):
    """The "Tissue" tab of the Lesions dock."""

    def __init__(self, dock):
        super().__init__(dock)
        form = QFormLayout(self)
        self.seg_kind_combo = QComboBox()
        for text, kind in SEGMENTATION_KINDS:
            self.seg_kind_combo.addItem(text, kind)
        self.import_button = button(
            "Import segmentation...",
            "Map a FreeSurfer/FAST/SynthSeg label map ON THE T2* GRID to tissue classes "
            "(0 outside, 1 CSF, 2 cortex, 3 WM, 4 deep GM)",
            self._on_import_clicked,
        )
        self.estimate_button = button(
            "Estimate from CSF-nulled MPRAGE",
            "First estimate of the tissue classes from the coregistered CSF-nulled MPRAGE and the T2* "
            "magnitude inside the brain mask; check and edit it",
            self.estimate_tissue,
        )
        form.addRow("Kind", self.seg_kind_combo)
        form.addRow(self.import_button)
        form.addRow(self.estimate_button)
        form.addRow(QLabel("Edit the 'tissue' layer with napari's brush (2 cortex, 3 WM)."))

    def _on_import_clicked(self) -> None:
        subject = self.dock.subject
        start = str(subject.deriv) if subject is not None else ""
        path, _ = QFileDialog.getOpenFileName(self, "Segmentation on the T2* grid", start, "NIfTI (*.nii *.nii.gz)")
        if path:
            self.import_tissue(path, self.seg_kind_combo.currentData())

    def import_tissue(self, path: str | Path, kind: str, *, start: bool = True):
        """Import a segmentation file into the tissue layer (in a worker; undoable)."""
        ref = self.dock.grid_layer()
        if ref is None:
            raise_or_notify(self.dock, "load a subject first")
            return None
        return self.dock.run(
            import_segmentation_on_grid, self._apply_tissue, start=start,
            path=path, kind=kind, reference=layer_grid(ref),
        )

    def estimate_tissue(self, *, start: bool = True):
        """First tissue estimate from the CSF-nulled MPRAGE and magnitude in the brain mask (worker)."""
        layer = self.dock.layer
        missing = [name for role, name in (("csfn", "CSF-nulled MPRAGE"), ("magnitude", "T2* magnitude"),
                                           ("mask", "brain mask")) if layer(role) is None]
        if missing:
            raise_or_notify(self.dock, f"cannot estimate tissue: missing {', '.join(missing)} layer(s)")
            return None
        csfn = layer("csfn")
        if (csfn.metadata or {}).get("on_reference_grid") is False or csfn.data.shape != layer("magnitude").data.shape:
            raise_or_notify(self.dock, "cannot estimate tissue: the CSF-nulled MPRAGE is not coregistered onto the T2* grid")
            return None
        func = without_progress(
            roi_estimate_tissue,
            csfn=np.asarray(csfn.data, dtype=np.float32),
            magnitude=np.asarray(layer("magnitude").data, dtype=np.float32),
            brain_mask=np.asarray(layer("mask").data) > 0,
            voxel_size_mm=voxel_size_of(csfn),
        )
        return self.dock.run(func, self._apply_tissue, start=start)

    def _apply_tissue(self, tissue: np.ndarray) -> None:
        layer = self.dock.ensure_layer("tissue")
        apply_labels_edit(layer, np.asarray(tissue, dtype=layer.data.dtype))
        layer.visible = True
        self.dock.refresh_table()
