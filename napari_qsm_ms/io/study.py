"""Scan a study folder and report precisely what is missing or inconsistent.

:func:`scan_study` never raises for a problem in the data: it collects :class:`Finding` rows (file,
problem, severity) so the GUI can show a table and the CLI can print them. ``StudyReport.raise_for_errors``
turns the first error into a one-line :class:`~napari_qsm_ms.errors.StudyLayoutError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np

from ..errors import InputFileError, StudyLayoutError
from .layout import COREG_SERIES, StudyFiles, SubjectFiles
from .sidecar import acquisition_from_sidecar

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    """One problem found in a study: ``file: problem`` with a severity."""

    subject: str | None
    path: Path
    problem: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class SubjectReport:
    label: str
    files: SubjectFiles
    present: dict[str, bool] = field(default_factory=dict)
    shape: tuple[int, ...] | None = None
    voxel_size_mm: tuple[float, float, float] | None = None
    echo_times_s: tuple[float, ...] | None = None
    b0_t: float | None = None


@dataclass
class StudyReport:
    root: Path
    subjects: list[SubjectReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def for_subject(self, label: str) -> list[Finding]:
        return [f for f in self.findings if f.subject == label]

    def raise_for_errors(self) -> None:
        """Raise a one-line StudyLayoutError for the first error (and how many more there are)."""
        errors = self.errors
        if errors:
            more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
            raise StudyLayoutError(f"{errors[0]}{more}")

    def format(self) -> str:
        """Human-readable multi-line summary."""
        lines = [f"study {self.root}: {len(self.subjects)} subject(s), {len(self.errors)} error(s)"]
        for sub in self.subjects:
            have = ", ".join(k for k, v in sub.present.items() if v) or "nothing"
            lines.append(f"  sub-{sub.label}: {have}")
            for f in self.for_subject(sub.label):
                lines.append(f"    {f.severity}: {f}")
        for f in self.findings:
            if f.subject is None:
                lines.append(f"  {f.severity}: {f}")
        return "\n".join(lines)


_RAW_REQUIRED = ("magnitude", "phase")
_ON_T2STAR_GRID = ("chimap", "brain_mask", "tissue", "lesions", "refwm", "refgm", "vessels")
_LABEL_FILES = ("brain_mask", "tissue", "lesions", "refwm", "refgm", "vessels")


def scan_study(root: str | os.PathLike, *, check_data: bool = True) -> StudyReport:
    """Check a study folder against the layout of docs/study_layout.md.

    Parameters
    ----------
    root : str or PathLike
        Study folder.
    check_data : bool
        Also read voxel data (NaN/inf, label files integer-valued, all-zero images). Headers are
        always read.

    Returns
    -------
    StudyReport
        With one :class:`Finding` per problem: missing magnitude or phase, missing or invalid phase
        sidecar (EchoTime s, MagneticFieldStrength T), empty or unreadable files, 4-D where 3-D is
        expected, NaNs, shape or affine mismatch between files that must share the T2* grid,
        non-integer label maps; missing optional series are ``info``.
    """
    study = StudyFiles.at(root)
    report = StudyReport(study.root)
    if not study.root.is_dir():
        report.findings.append(Finding(None, study.root, "study folder not found"))
        return report
    labels = study.subject_labels()
    if not labels:
        report.findings.append(Finding(None, study.root, "no sub-<label> folders"))
    if not (study.root / "dataset_description.json").exists():
        report.findings.append(
            Finding(None, study.root / "dataset_description.json", "missing (BIDS)", "warning")
        )
    for label in labels:
        report.subjects.append(_scan_subject(study.subject(label), report.findings, check_data))
    return report


def _scan_subject(sub: SubjectFiles, findings: list[Finding], check_data: bool) -> SubjectReport:
    rep = SubjectReport(sub.label, sub)

    def add(path: Path, problem: str, severity: Severity = "error") -> None:
        findings.append(Finding(sub.label, path, problem, severity))

    paths = {
        "magnitude": sub.magnitude,
        "phase": sub.phase,
        **{k: sub.raw_series(k) for k in COREG_SERIES},
        "chimap": sub.chimap,
        "brain_mask": sub.brain_mask,
        **{f"space-T2starw_{k}": sub.coreg_series(k) for k in COREG_SERIES},
        "tissue": sub.tissue,
        "lesions": sub.lesions,
        "refwm": sub.refwm,
        "refgm": sub.refgm,
        "vessels": sub.vessels,
    }
    headers: dict[str, nib.Nifti1Image] = {}
    for key, path in paths.items():
        rep.present[key] = path.exists()
        if not path.exists():
            if key in _RAW_REQUIRED:
                add(path, "missing (required)")
            elif key in COREG_SERIES:
                add(path, "missing (optional series)", "info")
            continue
        img = _open_header(path, add)
        if img is not None:
            headers[key] = img

    n_echoes = 1
    if sub.phase.exists():
        if not sub.phase_json.exists():
            add(sub.phase_json, "missing: EchoTime (s) and MagneticFieldStrength (T) are needed for QSM")
        else:
            try:
                acq = acquisition_from_sidecar(sub.phase_json)
                rep.echo_times_s, rep.b0_t = acq.echo_times_s, acq.b0_t
                n_echoes = len(acq.echo_times_s)
            except InputFileError as exc:
                add(sub.phase_json, exc.problem)

    ref = headers.get("magnitude")
    if ref is not None:
        rep.shape = tuple(int(n) for n in ref.shape)
        rep.voxel_size_mm = tuple(float(z) for z in ref.header.get_zooms()[:3])
    for key, img in headers.items():
        path = paths[key]
        shape = tuple(int(n) for n in img.shape)
        spatial = tuple(n for n in shape[3:] if n != 1)
        if len(shape) < 3:
            add(path, f"is {len(shape)}-D with shape {shape}, expected 3-D")
            continue
        if spatial:
            if key in ("magnitude", "phase") and n_echoes > 1 and spatial == (n_echoes,):
                pass  # multi-echo, consistent with the sidecar's EchoTime list
            else:
                add(path, f"is 4-D with shape {shape}, expected 3-D" + (
                    " (for multi-echo data list every EchoTime in the sidecar)" if key in ("magnitude", "phase") else ""))
                continue
        if ref is not None and key != "magnitude" and (key in _ON_T2STAR_GRID or key.startswith("space-") or key == "phase"):
            if shape[:3] != tuple(ref.shape[:3]):
                add(path, f"shape {shape[:3]} differs from the T2* magnitude's {tuple(ref.shape[:3])}")
            elif not np.allclose(img.affine, ref.affine, atol=1e-3):
                diff = float(np.abs(img.affine - ref.affine).max())
                add(path, f"affine differs from the T2* magnitude's (by up to {diff:.3g} mm)")
        if check_data:
            _check_data(key, path, img, add)
    return rep


def _open_header(path: Path, add) -> nib.Nifti1Image | None:
    if path.stat().st_size == 0:
        add(path, "file is empty (0 bytes)")
        return None
    try:
        return nib.load(str(path))
    except Exception as exc:
        add(path, f"cannot be read as NIfTI ({type(exc).__name__})")
        return None


def _check_data(key: str, path: Path, img, add) -> None:
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        add(path, f"voxel data cannot be read ({type(exc).__name__}: {exc})")
        return
    if data.size == 0:
        add(path, "image has no voxels")
        return
    if np.issubdtype(data.dtype, np.floating):
        n_bad = int((~np.isfinite(data)).sum())
        if n_bad:
            add(path, f"contains {n_bad} NaN or infinite values")
            return
    if key in _LABEL_FILES and np.issubdtype(data.dtype, np.floating) and not np.array_equal(data, np.round(data)):
        add(path, "label map has non-integer values")
    if key in ("magnitude", "phase") and not np.any(data):
        add(path, "image is all zeros")
