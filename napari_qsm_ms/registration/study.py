"""Coregister a subject's MPRAGEs and FLAIR onto its T2* magnitude, over the study layout.

Reads ``SubjectFiles.magnitude`` and ``SubjectFiles.raw_series(key)``; writes, per series,
``SubjectFiles.coreg_series(key)`` (resampled onto the T2* grid, linear), the ITK transform
``SubjectFiles.coreg_transform(key, '.tfm')`` and its JSON sidecar (``'.json'``: 4x4 RAS+ matrix,
metric values, parameters, software versions). Missing optional series are skipped with a note.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputFileError, QSMMSError, StudyLayoutError
from ..io.layout import COREG_SERIES, SubjectFiles
from ..io.nifti import Volume, load_volume, save_volume
from ..progress import ProgressCallback, report, scaled
from .qc import apply_nudge
from .resample import load_transform, load_transform_metadata, resample_volume, save_transform
from .rigid import RigidParameters, RigidResult, register_rigid

DEFAULT_KEYS = ("wmn", "csfn", "flair")


@dataclass
class SubjectCoregistration:
    """What :func:`coregister_subject` did.

    Attributes
    ----------
    subject : str
        Label.
    results : dict
        Series key -> :class:`RigidResult`.
    outputs : dict
        Series key -> list of written paths.
    notes : list of str
        Skipped series and warnings, one line each.
    failures : dict
        Series key -> the error that stopped it (a :class:`~napari_qsm_ms.errors.QSMMSError` or an
        ``OSError``); only filled with ``keep_going=True``, empty otherwise.
    """

    subject: str
    results: dict[str, RigidResult] = field(default_factory=dict)
    outputs: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: dict[str, Exception] = field(default_factory=dict)


def load_fixed(subject: SubjectFiles) -> Volume:
    """The T2* magnitude (first echo if the file holds several)."""
    if not subject.magnitude.exists():
        raise InputFileError(subject.magnitude, "T2* magnitude not found (needed as the registration target)")
    vol = load_volume(subject.magnitude, ndim=(3, 4))
    if vol.data.ndim == 4:
        vol = Volume(data=np.ascontiguousarray(vol.data[..., 0]), affine=vol.affine, path=vol.path, header=vol.header)
    return vol


def _check_keys(keys) -> tuple[str, ...]:
    keys = tuple(keys)
    unknown = [k for k in keys if k not in COREG_SERIES]
    if unknown:
        raise StudyLayoutError(f"unknown series {', '.join(unknown)}: choose from {', '.join(COREG_SERIES)}")
    return keys


def coregister_subject(
    subject: SubjectFiles,
    keys=DEFAULT_KEYS,
    progress: ProgressCallback | None = None,
    *,
    params: RigidParameters | None = None,
    from_saved: bool = False,
    keep_going: bool = False,
) -> SubjectCoregistration:
    """Rigidly coregister each present series of ``subject`` onto its T2* magnitude and save.

    Parameters
    ----------
    subject : SubjectFiles
        The subject (its raw T2* magnitude and series).
    keys : sequence of {'wmn', 'csfn', 'flair'}
        Series to process; absent files are skipped with a note.
    progress : callable, optional
        ``progress(fraction, message)``; may raise :class:`CancelledError`.
    params : RigidParameters, optional
        Registration settings (defaults: :class:`RigidParameters`).
    from_saved : bool
        Start each series from its saved transform (e.g. after a manual nudge) instead of the
        scanner affines; series without one start as usual (noted).
    keep_going : bool
        When a series fails (unreadable file, registration refused by a sanity check, a write
        error), record the error in ``failures`` and go on with the next series instead of raising.
        A missing or unusable T2* magnitude still raises (no series can be registered), and
        :class:`~napari_qsm_ms.errors.CancelledError` / ``KeyboardInterrupt`` always stop at once.

    Returns
    -------
    SubjectCoregistration

    Raises
    ------
    InputFileError, RegistrationError
        Missing T2* magnitude, an unreadable series, or a registration failing its sanity checks
        (nothing is written for that series; earlier series stay written). With ``keep_going``,
        only for the T2* magnitude.
    """
    keys = _check_keys(keys)
    params = params or RigidParameters()
    params.check()
    out = SubjectCoregistration(subject=subject.label)
    report(progress, 0.0, f"sub-{subject.label}: loading the T2* magnitude")
    fixed = load_fixed(subject)
    present = []
    for key in keys:
        path = subject.raw_series(key)
        if path.exists():
            present.append(key)
        else:
            out.notes.append(f"sub-{subject.label}: {path.name} not found, {key} skipped")
    for n, key in enumerate(present):
        sub_progress = scaled(progress, n / len(present), (n + 1) / len(present))
        try:
            _coregister_series(subject, key, fixed, params, from_saved, out, sub_progress)
        except (QSMMSError, OSError) as exc:  # bad input; CancelledError/KeyboardInterrupt pass
            if not keep_going:
                raise
            out.failures[key] = exc
    report(progress, 1.0, f"sub-{subject.label}: {len(out.results)} of {len(present)} series coregistered")
    return out


def _coregister_series(subject: SubjectFiles, key: str, fixed: Volume, params: RigidParameters,
                       from_saved: bool, out: SubjectCoregistration,
                       progress: ProgressCallback | None) -> None:
    """Register, resample and write one series; record it in ``out`` (only once all is written)."""
    stage = f"sub-{subject.label} {key}"
    report(progress, 0.0, f"{stage}: loading")
    moving = load_volume(subject.raw_series(key), ndim=3)
    start = None
    if from_saved:
        if subject.coreg_transform(key, ".json").exists():
            start = load_transform(subject.coreg_transform(key, ".json"))
        else:
            out.notes.append(f"sub-{subject.label} {key}: no saved transform, "
                             "started from the scanner affines")
    result = register_rigid(fixed, moving, params=params, initial_matrix_ras=start,
                            progress=scaled(progress, 0.02, 0.9, stage=stage))
    report(progress, 0.92, f"{stage}: resampling onto the T2* grid")
    meta = result_metadata(result)
    meta["start"] = "saved transform" if start is not None else f"initializer '{params.initializer}'"
    if start is not None:
        meta["start_matrix_ras"] = start.tolist()
    paths = write_coregistration(subject, key, fixed, moving, result.matrix_ras,
                                 metadata=meta, center_ras=_center(result))
    out.results[key] = result
    out.outputs[key] = paths
    out.notes.extend(f"sub-{subject.label} {key}: {note}" for note in result.notes)


def _center(result: RigidResult) -> np.ndarray:
    from .conversion import FLIP_3

    return FLIP_3 @ np.asarray(result.transform.GetCenter(), dtype=float)


def result_metadata(result: RigidResult) -> dict[str, Any]:
    """JSON-ready description of a registration (for the transform sidecar)."""
    return {
        "method": "rigid 6-DOF, Mattes mutual information, multi-resolution, SimpleITK "
                  "ImageRegistrationMethod with regular-step gradient descent",
        "mutual_information": result.mutual_information,
        "initial_mutual_information": result.initial_mutual_information,
        "overlap_fraction": result.overlap,
        "iterations_per_level": result.iterations,
        "stop_condition": result.stop_condition,
        "correction_mm": result.correction_mm,
        "correction_deg": result.correction_deg,
        "seconds": result.seconds,
        "parameters": dataclasses.asdict(result.parameters),
        "notes": result.notes,
    }


def write_coregistration(
    subject: SubjectFiles,
    key: str,
    fixed: Volume,
    moving: Volume,
    matrix_ras: np.ndarray,
    *,
    metadata: dict[str, Any] | None = None,
    center_ras: np.ndarray | None = None,
) -> list[Path]:
    """Resample ``moving`` onto ``fixed``'s grid with ``matrix_ras`` and write series + transform.

    The JSON sidecar is written last, so a complete sidecar means complete outputs.
    """
    data = resample_volume(moving, fixed.shape[:3], fixed.affine, matrix_ras, interpolation="linear")
    meta = {
        "fixed_image": str(_relative(fixed.path, subject.study)),
        "moving_image": str(_relative(moving.path, subject.study)),
        "resampled_image": str(_relative(subject.coreg_series(key), subject.study)),
    }
    meta.update(metadata or {})
    series_path = save_volume(subject.coreg_series(key), data, fixed.affine, like=fixed, dtype=np.float32)
    tfm, js = save_transform(subject.coreg_transform(key, ".tfm"), subject.coreg_transform(key, ".json"),
                             matrix_ras, center_ras=center_ras, metadata=meta)
    return [series_path, tfm, js]


def _relative(path: Path | None, root: Path) -> str:
    if path is None:
        return "<memory>"
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


def load_coregistration(subject: SubjectFiles, key: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The saved transform of series ``key`` (4x4 RAS+, T2* world -> series world) and its sidecar."""
    _check_keys([key])
    path = subject.coreg_transform(key, ".json")
    if not path.exists():
        raise InputFileError(path, f"no saved coregistration for {key}: run 'qsm-ms coregister' first")
    return load_transform(path), load_transform_metadata(path)


def save_nudged(
    subject: SubjectFiles,
    key: str,
    nudge: np.ndarray,
    *,
    translation_mm=(0.0, 0.0, 0.0),
    rotation_deg=(0.0, 0.0, 0.0),
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Apply a manual nudge to the saved transform of ``key`` and re-write its outputs.

    Parameters
    ----------
    subject : SubjectFiles
    key : {'wmn', 'csfn', 'flair'}
    nudge : ndarray, shape (4, 4)
        Rigid motion of the coregistered series in T2* world space (:func:`qc.nudge_matrix`).
    translation_mm, rotation_deg : tuple
        The nudge's parameters, recorded in the sidecar.
    """
    matrix, meta = load_coregistration(subject, key)
    report(progress, 0.1, f"sub-{subject.label} {key}: re-writing with the manual correction")
    fixed = load_fixed(subject)
    moving = load_volume(subject.raw_series(key), ndim=3)
    new_matrix = apply_nudge(matrix, nudge)
    history = list(meta.get("manual_nudges", []))
    history.append({"translation_mm": [float(v) for v in translation_mm],
                    "rotation_deg": [float(v) for v in rotation_deg],
                    "nudge_matrix_ras": np.asarray(nudge, dtype=float).tolist()})
    keep = {k: v for k, v in meta.items() if k not in ("matrix_ras_t2starw_to_series", "matrix_ras_series_to_t2starw",
                                                      "software", "created", "convention", "itk_transform_file")}
    keep["manual_nudges"] = history
    keep["note"] = ("transform corrected by hand after the automatic registration; the metric values "
                    "describe the automatic result")
    paths = write_coregistration(subject, key, fixed, moving, new_matrix, metadata=keep)
    report(progress, 1.0, f"sub-{subject.label} {key}: saved")
    return paths


def labels_to_series(subject: SubjectFiles, key: str, labels_path=None) -> Volume:
    """A label map on the T2* grid carried to series ``key``'s native grid with its saved transform.

    Parameters
    ----------
    subject : SubjectFiles
    key : {'wmn', 'csfn', 'flair'}
    labels_path : path, optional
        Label file on the T2* grid (default: the subject's lesion labels, ``desc-lesions_dseg``).

    Returns
    -------
    Volume
        Integer labels on the series' own grid (nearest neighbour), with the series' affine.
    """
    from .resample import labels_to_native

    matrix, _ = load_coregistration(subject, key)
    path = Path(labels_path) if labels_path is not None else subject.lesions
    labels = load_volume(path, dtype=None)
    if not np.issubdtype(labels.data.dtype, np.integer):
        raise InputFileError(path, f"is {labels.data.dtype}, expected an integer label map")
    series = load_volume(subject.raw_series(key), ndim=3)
    data = labels_to_native(labels.data, labels.affine, series.shape, series.affine, matrix)
    return Volume(data=data, affine=series.affine, path=None)
