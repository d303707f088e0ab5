"""The "Reconstruct QSM" dock: magnitude + phase layers (or a total or local field, or the loaded
subject) -> QSM and mask layers.

Thin by design: it gathers parameters and calls :func:`napari_qsm_ms.qsm.pipeline.reconstruct_from`
(layers in the viewer) or :func:`~napari_qsm_ms.qsm.pipeline.reconstruct_subject` (the subject's
files, writing its derivatives) in a worker with a progress bar and a Cancel button. The QSM layer
is placed below the outline layers (lesions, references) and the user's active layer stays active.
"""

from __future__ import annotations

import napari
import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..errors import QSMMSError
from ..io.nifti import Volume
from ..io.sidecar import acquisition_from_sidecar
from ..io.units import PHASE_UNITS
from ..qsm import defaults
from ..qsm.pipeline import (
    FIELD_UNITS,
    check_lambda_rule,
    choose_inversion,
    method_summary,
    reconstruct_from,
    reconstruct_subject,
)
from ._layers import layer_to_volume
from ._worker import ProgressPanel, run_with_progress

AUTO_MASK = "(automatic from magnitude)"
NO_MAGNITUDE = "(none)"
ENTRIES = [("Wrapped phase", "phase"), ("Total field (unwrapped)", "field"), ("Local field (background removed)",
                                                                            "local_field")]
PHASE_UNIT_LABELS = {"auto": "auto (refuse if not wrapped)", "rad": "radians", "deg": "degrees",
                     "raw": "raw levels (2^n = one turn)"}
FIELD_UNIT_LABELS = {"hz": "Hz", "ppm": "ppm", "rad": "rad (phase at TE)"}
QSM_LAYER_NAME = "QSM (ppm)"
QSM_CONTRAST_PPM = (-0.15, 0.15)
INVERSIONS = [("auto (MEDI-L1; TV without magnitude)", "auto"), ("MEDI-L1 (paper)", "medi"),
              ("TKD (fast)", "tkd"), ("TV-ADMM", "tv")]
BFRS = [("PDF (MEDI)", "pdf"), ("V-SHARP", "vsharp")]
UNWRAPS = [("Region growing (exact)", "region"), ("Laplacian (MEDI)", "laplacian")]


class ReconWidget(QWidget):
    """Run the QSM pipeline on the viewer's magnitude and phase layers."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self.last_result = None
        self.magnitude_combo = QComboBox()
        self.entry_combo = QComboBox()
        for label, key in ENTRIES:
            self.entry_combo.addItem(label, key)
        self.entry_combo.setToolTip("What the input layer is: the pipeline skips the stages it has passed")
        self.phase_combo = QComboBox()
        self.phase_units_combo = QComboBox()
        for key in PHASE_UNITS:
            self.phase_units_combo.addItem(PHASE_UNIT_LABELS[key], key)
        self.field_units_combo = QComboBox()
        for key in FIELD_UNITS:
            self.field_units_combo.addItem(FIELD_UNIT_LABELS[key], key)
        self.field_units_combo.setCurrentIndex(self.field_units_combo.findData("ppm"))
        self.mask_combo = QComboBox()
        self.te_spin = QDoubleSpinBox()
        self.te_spin.setRange(0.1, 200.0)
        self.te_spin.setDecimals(2)
        self.te_spin.setSuffix(" ms")
        self.te_spin.setValue(17.7)
        self.te_spin.setToolTip("Echo time in milliseconds (filled from the phase sidecar when known)")
        self.echo_times_edit = QLineEdit()
        self.echo_times_edit.setPlaceholderText("4-D input: e.g. 4, 8, 12")
        self.echo_times_edit.setToolTip("Echo times in milliseconds, one per volume of a 4-D (multi-echo) input "
                                        "(filled from the phase sidecar when known)")
        self.b0_spin = QDoubleSpinBox()
        self.b0_spin.setRange(0.5, 14.0)
        self.b0_spin.setDecimals(2)
        self.b0_spin.setSuffix(" T")
        self.b0_spin.setValue(7.0)
        self.inversion_combo = QComboBox()
        for label, key in INVERSIONS:
            self.inversion_combo.addItem(label, key)
        self.inversion_combo.setCurrentIndex(self.inversion_combo.findData(defaults.INVERSION))
        self.unwrap_combo = QComboBox()
        for label, key in UNWRAPS:
            self.unwrap_combo.addItem(label, key)
        self.unwrap_combo.setToolTip("Region growing changes the wrapped phase by exact multiples of 2 pi only; "
                                     "the Laplacian method of the MEDI toolbox is approximate near air at 7 T")
        self.bfr_combo = QComboBox()
        for label, key in BFRS:
            self.bfr_combo.addItem(label, key)
        self.erode_spin = QDoubleSpinBox()
        self.erode_spin.setRange(0.0, 10.0)
        self.erode_spin.setSingleStep(0.5)
        self.erode_spin.setSuffix(" mm")
        self.erode_spin.setValue(defaults.ERODE_MM)
        self.lambda_rule_combo = QComboBox()
        for label, key in (("auto", defaults.AUTO), ("auto-noise", defaults.AUTO_NOISE),
                           ("auto-cone (smoother)", defaults.AUTO_CONE), ("fixed", None)):
            self.lambda_rule_combo.addItem(label, key)
        self.lambda_rule_combo.setCurrentIndex(self.lambda_rule_combo.findData(
            defaults.MEDI_LAMBDA if defaults.MEDI_LAMBDA in defaults.AUTO_RULES else None))
        self.lambda_rule_combo.setToolTip(
            "How MEDI's data weight is chosen per scan by the discrepancy principle: 'auto' (the default) is "
            "'auto-noise' with a magnitude and 'auto-cone' without; 'auto-noise' on the noise measured in the "
            "magnitude (keeps lesion contrasts and thin rims; needs a magnitude); 'auto-cone' on the cone's misfit "
            "level (noise and model error: smoother maps); 'fixed' the value beside (docs/qsm.md)")
        self.lambda_spin = QDoubleSpinBox()
        self.lambda_spin.setRange(1.0, 1e7)
        self.lambda_spin.setDecimals(0)
        self.lambda_spin.setSingleStep(1000)
        self.lambda_spin.setValue(defaults.MEDI_LAMBDA_FIXED if defaults.MEDI_LAMBDA in defaults.AUTO_RULES
                                  else defaults.MEDI_LAMBDA)
        self.lambda_spin.setToolTip("Fixed MEDI data weight in ppm-normalised units (the same value for any B0 and TE)")
        self.medi_steps_spin = QSpinBox()
        self.medi_steps_spin.setRange(1, 100)
        self.medi_steps_spin.setValue(defaults.MEDI_MAX_ITER)
        self.medi_steps_spin.setToolTip("MEDI: at most this many Gauss-Newton steps, the automatic weight's "
                                        "search included; a run that stops here before its stopping rule "
                                        "says so")
        self.lambda_rule_combo.currentIndexChanged.connect(self._on_lambda_rule)
        self._on_lambda_rule()
        self.save_check = QCheckBox("Save to the subject's derivatives")
        self.save_check.setToolTip("Reconstruct from the subject's files and write derivatives/qsm-ms/sub-*/anat/"
                                   "*_Chimap.nii.gz and *_desc-brain_mask.nii.gz")
        self.run_button = QPushButton("Reconstruct")
        self.run_button.clicked.connect(self._on_run)
        self.progress = ProgressPanel()
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Input", self.entry_combo)
        form.addRow("Magnitude", self.magnitude_combo)
        self.input_label = QLabel("Phase")
        form.addRow(self.input_label, self.phase_combo)
        form.addRow("Phase units", self.phase_units_combo)
        form.addRow("Field units", self.field_units_combo)
        form.addRow("Brain mask", self.mask_combo)
        form.addRow("Echo time", self.te_spin)
        form.addRow("Echo times (ms)", self.echo_times_edit)
        form.addRow("B0", self.b0_spin)
        form.addRow("Unwrapping", self.unwrap_combo)
        form.addRow("Background removal", self.bfr_combo)
        form.addRow("Inversion", self.inversion_combo)
        form.addRow("Erosion", self.erode_spin)
        lambda_row = QHBoxLayout()
        lambda_row.addWidget(self.lambda_rule_combo, 1)
        lambda_row.addWidget(self.lambda_spin)
        form.addRow("MEDI lambda", lambda_row)
        form.addRow("MEDI steps (max)", self.medi_steps_spin)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        for combo in self.findChildren(QComboBox):  # long item texts must not widen the dock past the screen
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        self.lambda_rule_combo.setMinimumContentsLength(4)  # shares its row with the weight's spin box
        lay.addWidget(self.save_check)
        lay.addWidget(self.run_button)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addStretch(1)

        self.phase_combo.currentIndexChanged.connect(self._on_phase_changed)
        self.entry_combo.currentIndexChanged.connect(self._on_entry_changed)
        self.viewer.layers.events.inserted.connect(self._refresh)
        self.viewer.layers.events.removed.connect(self._refresh)
        self._refresh()
        self._on_entry_changed()

    # ---- layer choices ----------------------------------------------------------------------
    def _layers(self, kind: str):
        return [layer for layer in self.viewer.layers if layer._type_string == kind and layer.ndim >= 3]

    def _refresh(self, event=None) -> None:
        def fill(combo, names, preferred_role, extra=None):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            if extra:
                combo.addItem(extra)
            combo.addItems(names)
            if current and combo.findText(current) >= 0:
                combo.setCurrentIndex(combo.findText(current))
            else:
                for layer in self.viewer.layers:
                    if (layer.metadata or {}).get("role") == preferred_role and combo.findText(layer.name) >= 0:
                        combo.setCurrentIndex(combo.findText(layer.name))
                        break
            combo.blockSignals(False)

        images = [layer.name for layer in self._layers("image") if layer.name != QSM_LAYER_NAME]
        fill(self.magnitude_combo, images, "magnitude", extra=NO_MAGNITUDE)
        if self.magnitude_combo.currentText() == NO_MAGNITUDE and len(images) > 0 and not self._field_entry():
            self.magnitude_combo.setCurrentIndex(1)
        fill(self.phase_combo, images, "phase")
        if self.phase_combo.currentText() == self.magnitude_combo.currentText() and len(images) > 1:
            self.phase_combo.setCurrentIndex((self.magnitude_combo.currentIndex()) % len(images))
        fill(self.mask_combo, [layer.name for layer in self._layers("labels")], "mask", extra=AUTO_MASK)
        self.save_check.setEnabled(self._subject() is not None)
        self._on_phase_changed()

    def _field_entry(self) -> bool:
        return self.entry_combo.currentData() != "phase"

    def _on_entry_changed(self, *_) -> None:
        field = self._field_entry()
        self.input_label.setText("Field" if field else "Phase")
        self.phase_units_combo.setEnabled(not field)
        self.field_units_combo.setEnabled(field)
        self.unwrap_combo.setEnabled(not field)
        self.bfr_combo.setEnabled(self.entry_combo.currentData() != "local_field")
        self.erode_spin.setValue(0.0 if self.entry_combo.currentData() == "local_field" else defaults.ERODE_MM)
        self.save_check.setEnabled(self._subject() is not None and not field)

    def _layer(self, name: str):
        return self.viewer.layers[name] if name and name in self.viewer.layers else None

    def _subject(self):
        for name in (self.magnitude_combo.currentText(), self.phase_combo.currentText()):
            layer = self._layer(name)
            if layer is not None and (layer.metadata or {}).get("subject") is not None:
                return layer.metadata["subject"]
        return None

    def _on_phase_changed(self, *_) -> None:
        subject = self._subject()
        if subject is not None and subject.phase_json.exists():
            try:
                acq = acquisition_from_sidecar(subject.phase_json)
            except QSMMSError as exc:
                self.status.setText(str(exc))
                return
            self.te_spin.setValue(acq.te_s * 1000.0)
            self.b0_spin.setValue(acq.b0_t)
            if len(acq.echo_times_s) > 1:
                self.echo_times_edit.setText(", ".join(f"{1000 * t:g}" for t in acq.echo_times_s))

    # ---- running ----------------------------------------------------------------------------
    def parameters(self) -> dict:
        """Method parameters as :func:`reconstruct` takes them."""
        return dict(
            inversion=self.inversion_combo.currentData(),
            unwrap=self.unwrap_combo.currentData(),
            bfr=self.bfr_combo.currentData(),
            erode_mm=float(self.erode_spin.value()),
            medi_lambda=self.lambda_rule_combo.currentData() or float(self.lambda_spin.value()),
            medi_max_iter=int(self.medi_steps_spin.value()),
        )

    def _on_lambda_rule(self, *_):
        self.lambda_spin.setEnabled(self.lambda_rule_combo.currentData() is None)

    def _on_run(self) -> None:
        self.run()

    def run(self, start: bool = True):
        """Start the reconstruction in a worker; returns the worker (None on bad input)."""
        try:
            kwargs, func = self._job()
        except QSMMSError as exc:
            self.status.setText(f"error: {exc}")
            return None
        self.run_button.setEnabled(False)
        self.status.setText("")
        self.worker = run_with_progress(
            func, self.progress, on_returned=self._on_returned, on_error=self._on_error, start=False, **kwargs
        )
        self.worker.finished.connect(lambda: self.run_button.setEnabled(True))
        if start:
            self.worker.start()
        return self.worker

    def _job(self):
        params = self.parameters()
        entry = self.entry_combo.currentData()
        mag_layer = self._layer(self.magnitude_combo.currentText())
        in_layer = self._layer(self.phase_combo.currentText())
        what = "field" if entry != "phase" else "phase"
        if self.save_check.isChecked() and self.save_check.isEnabled():
            self._target = ("subject", self._subject(), mag_layer)
            params["phase_units"] = self.phase_units_combo.currentData()
            return dict(subject=self._subject(), **params), reconstruct_subject
        if in_layer is None:
            raise QSMMSError(f"choose a {what} layer")
        if mag_layer is in_layer:
            raise QSMMSError(f"magnitude and {what} must be different layers")
        source = layer_to_volume(in_layer)
        data, affine = source.data, source.affine
        magnitude = None
        if mag_layer is not None:
            mag = layer_to_volume(mag_layer)
            magnitude = mag.data
            if data.shape[:3] != magnitude.shape[:3] or not np.allclose(affine, mag.affine, atol=1e-3):
                raise QSMMSError(f"layer {in_layer.name!r} is not on the grid of {mag_layer.name!r}")
            magnitude = np.asarray(magnitude, dtype=np.float32)
        check_lambda_rule(choose_inversion(params["inversion"], magnitude is not None)[0], params["medi_lambda"],
                          magnitude is not None)
        mask = None
        mask_layer = self._layer(self.mask_combo.currentText()) if self.mask_combo.currentText() != AUTO_MASK else None
        if mask_layer is not None:
            mask = np.asarray(layer_to_volume(mask_layer).data) > 0
        elif magnitude is None:
            raise QSMMSError(f"choose a brain mask layer: without a magnitude the {what} needs one")
        self._target = ("layers", None, mag_layer if mag_layer is not None else in_layer)
        names = {"magnitude": None if mag_layer is None else f"layer {mag_layer.name!r}",
                 entry: f"layer {in_layer.name!r}", "mask": None if mask_layer is None else f"layer {mask_layer.name!r}"}
        if entry == "phase":
            params["phase_units"] = self.phase_units_combo.currentData()
        else:
            params["field_units"] = self.field_units_combo.currentData()
        return dict(
            data=np.asarray(data), entry=entry, magnitude=magnitude, affine=affine, mask=mask,
            te_s=self._echo_times_s(data), b0_t=self.b0_spin.value(), names=names,
            keep_intermediates=False, **params,
        ), reconstruct_from

    def _echo_times_s(self, data: np.ndarray):
        """The single echo time for a 3-D input, the list of the echo-times field for a 4-D one."""
        if data.ndim != 4:
            return self.te_spin.value() / 1000.0
        text = self.echo_times_edit.text().replace(",", " ").split()
        if not text:
            raise QSMMSError(f"a 4-D input with {data.shape[3]} volumes needs its echo times (Echo times field, ms)")
        try:
            return [float(t) / 1000.0 for t in text]
        except ValueError:
            raise QSMMSError(f"echo times {self.echo_times_edit.text()!r} are not numbers (ms, comma-separated)") from None

    def _on_error(self, exc: BaseException) -> None:
        self.status.setText(f"error: {exc}")

    def _on_returned(self, result) -> None:
        self.last_result = result
        _, subject, mag_layer = self._target
        self.add_result_layers(result, mag_layer, subject=subject)
        text = (f"QSM done in {result.timings_s.get('total', 0):.1f} s: {int(result.mask.sum())} voxels, "
                f"{method_summary(result.parameters)}")
        if result.warnings:
            from napari.utils.notifications import show_warning

            text += "\nwarning: " + "\nwarning: ".join(result.warnings)
            for warning in result.warnings:
                show_warning(warning)
        self.status.setText(text)

    def add_result_layers(self, result, mag_layer, subject=None):
        """Add (or update) the "QSM (ppm)" image and the QSM mask labels on the magnitude's grid, below
        the outline layers, keeping the user's active layer active (the QSM layer when none was)."""
        active = self.viewer.layers.selection.active
        before = set(id(layer) for layer in self.viewer.layers)
        qsm, mask = self._add_layers(result, mag_layer, subject)
        new = [layer for layer in (mask, qsm) if id(layer) not in before]
        place_below_outlines(self.viewer, new)
        keep = active if active is not None and active in self.viewer.layers else qsm
        self.viewer.layers.selection.active = keep
        return qsm, mask

    def _add_layers(self, result, mag_layer, subject):
        meta = (mag_layer.metadata or {}) if mag_layer is not None else {}
        if meta.get("canonical") is not None:
            from ._layers import add_volume_layer

            chi_path = subject.chimap if subject is not None else None
            mask_path = subject.brain_mask if subject is not None else None
            qsm = add_volume_layer(self.viewer, Volume(result.chi_ppm, result.affine, chi_path), "qsm",
                                   subject=subject, name=QSM_LAYER_NAME)
            mask = add_volume_layer(self.viewer, Volume(result.mask.astype(np.int32), result.affine, mask_path),
                                    "mask", subject=subject)
        else:
            geometry = {}
            if mag_layer is not None:
                geometry = dict(scale=mag_layer.scale, translate=mag_layer.translate, rotate=mag_layer.rotate,
                                shear=mag_layer.shear, affine=mag_layer.affine)
            qsm = self.viewer.add_image(
                result.chi_ppm, name=QSM_LAYER_NAME, colormap="gray", contrast_limits=QSM_CONTRAST_PPM,
                metadata={"role": "qsm", "affine": result.affine, "derived_from_qsm": True}, **geometry,
            )
            mask = self.viewer.add_labels(
                result.mask.astype(np.int32), name="QSM mask", opacity=0.3, visible=False,
                metadata={"role": "mask", "affine": result.affine}, **geometry,
            )
        qsm.colormap = "gray"
        qsm.contrast_limits = QSM_CONTRAST_PPM
        qsm.visible = True
        return qsm, mask


def is_outline(layer) -> bool:
    """Whether a layer is drawn as outlines (labels shown as contours: lesions, references)."""
    return layer._type_string == "labels" and (getattr(layer, "contour", 0) > 0
                                              or bool((layer.metadata or {}).get("contour")))


def place_below_outlines(viewer, layers) -> None:
    """Move ``layers`` (in order, the last ending highest) just below the lowest outline layer, so
    that outlines stay on top of a newly added image."""
    for layer in layers:
        outlines = [i for i, other in enumerate(viewer.layers) if is_outline(other) and other is not layer]
        if not outlines:
            return
        src = viewer.layers.index(layer)
        dest = min(outlines)
        if src > dest:
            viewer.layers.move(src, dest)
