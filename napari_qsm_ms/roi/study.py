"""Reference ROIs over the study layout: read lesions + tissue, write ``refwm``/``refgm``.

:func:`build_subject_references` is what ``qsm-ms rois`` and the GUI's "Build references" call.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nibabel.orientations import io_orientation

from ..errors import InputFileError, ParameterError
from ..io.layout import SubjectFiles, TISSUE_LABELS
from ..io.nifti import Volume, check_same_grid, load_volume, save_volume
from ..progress import ProgressCallback, report, scaled
from .annotation import AnnotationState
from .lesions import LESION_CLASSES
from .references import (
    DEFAULT_GAP_MM,
    DEFAULT_MAX_DISTANCE_PX,
    DEFAULT_MIN_VOXELS,
    DEFAULT_RING_MM,
    ReferenceResult,
    build_references,
    check_reference_parameters,
    reference_exclusion,
    reference_parameters,
)

#: Classes of ``sub-*_lesions.tsv`` that are used as given; others fall back to the suggestion
#: (``disputed``, empty) or get no reference (``rejected``, ``not_lesion``).
NO_REFERENCE_CLASSES = ("rejected", "not_lesion")


def axial_axis(affine: np.ndarray) -> int:
    """The array axis closest to the world superior-inferior axis (across axial slices).

    Examples
    --------
    >>> axial_axis(np.diag([0.47, 0.47, 1.0, 1.0]))
    2
    >>> axial_axis(np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]]))
    1
    """
    ornt = io_orientation(np.asarray(affine, dtype=float))
    return int(np.flatnonzero(ornt[:, 0] == 2)[0])


def load_label_volume(path: str | os.PathLike, what: str) -> Volume:
    """Load an integer label volume (lesions, tissue, references), refusing fractional values."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(p, f"{what} file not found")
    vol = load_volume(p, dtype=None)
    data = np.asarray(vol.data)
    if not np.issubdtype(data.dtype, np.integer) and data.dtype != bool:
        if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
            raise InputFileError(p, f"{what} labels must be whole numbers")
        data = data.astype(np.int32)
    if data.size and data.min() < 0:
        raise InputFileError(p, f"{what} labels must not be negative")
    vol.data = data.astype(np.int32) if data.dtype != np.int32 else data
    return vol


def read_lesion_classes(subject: SubjectFiles) -> dict[int, str]:
    """``{lesion_id: class}`` from ``sub-*_lesions.tsv`` (empty when there is no file).

    Raises
    ------
    InputFileError
        Unreadable file or missing ``lesion_id``/``class`` columns.
    """
    path = subject.lesions_tsv
    if not path.exists():
        return {}
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False, dtype={"class": str})
    except Exception as exc:  # pandas raises several types on malformed text
        raise InputFileError(path, f"cannot be read as TSV ({type(exc).__name__})") from None
    missing = {"lesion_id", "class"} - set(table.columns)
    if missing:
        raise InputFileError(path, f"missing column(s) {', '.join(sorted(missing))}")
    try:
        ids = table["lesion_id"].astype(int)
    except (ValueError, TypeError):
        raise InputFileError(path, "lesion_id must be whole numbers") from None
    out = {}
    for lesion_id, cls in zip(ids, table["class"].fillna("")):
        cls = str(cls).strip().lower()
        if cls in LESION_CLASSES or cls in NO_REFERENCE_CLASSES:
            out[int(lesion_id)] = cls
    return out


def build_subject_references(
    subject: SubjectFiles,
    *,
    gap_mm: float = DEFAULT_GAP_MM,
    ring_mm: float = DEFAULT_RING_MM,
    max_distance_px: float = DEFAULT_MAX_DISTANCE_PX,
    slice_axis: int | None = None,
    all_slices: bool = False,
    min_voxels: int = DEFAULT_MIN_VOXELS,
    gap_3d: bool = False,
    exclude_vessels: bool = False,
    use_brain_mask: bool = True,
    write: bool = True,
    progress: ProgressCallback | None = None,
) -> ReferenceResult:
    """Build the reference ROIs of one subject and write them to the study layout.

    Reads ``desc-lesions_dseg`` and ``desc-tissue_dseg`` (and ``desc-vessels_mask`` with
    ``exclude_vessels``), takes lesion classes from ``sub-*_lesions.tsv`` when present (lesions
    not in it, or ``disputed``, get the class suggested by their cortex fraction; ``rejected``
    lesions get no reference), calls :func:`~napari_qsm_ms.roi.references.build_references`,
    writes ``desc-refwm_dseg`` and ``desc-refgm_dseg`` atomically, and records the parameters
    and the ``refwm_*``/``refgm_*`` flags in the annotation JSON.

    Parameters
    ----------
    subject : SubjectFiles
    gap_mm, ring_mm, max_distance_px, all_slices, min_voxels, gap_3d
        See :func:`~napari_qsm_ms.roi.references.build_references`.
    slice_axis : int, optional
        Array axis across slices; default: the axis nearest the world S-I axis (axial slices).
    exclude_vessels : bool
        Keep voxels of ``desc-vessels_mask`` out of the references.
    use_brain_mask : bool
        Keep voxels outside ``desc-brain_mask`` (the QSM mask, where chi is not defined) out of
        the references, when that file exists. Default True.
    write : bool
        Write the files (False: compute only, e.g. for a preview).
    progress : callable, optional

    Returns
    -------
    ReferenceResult

    Raises
    ------
    InputFileError
        Missing or unreadable lesion/tissue/vessel file, grids that differ, tissue codes
        outside 0-4, a bad ``lesions.tsv``.
    """
    gap_mm, ring_mm, max_distance_px, min_voxels = check_reference_parameters(
        gap_mm, ring_mm, max_distance_px, min_voxels
    )
    report(progress, 0.0, f"sub-{subject.label}: reading lesions and tissue")
    lesions = load_label_volume(subject.lesions, "lesion label")
    tissue = load_label_volume(subject.tissue, "tissue class")
    check_same_grid(lesions, tissue)
    _check_on_magnitude_grid(subject, lesions)
    bad = np.setdiff1d(np.unique(tissue.data), list(TISSUE_LABELS))
    if bad.size:
        raise InputFileError(tissue.path, f"tissue codes must be 0-4, found {bad[:5].tolist()}")
    vessels_data = brain_data = None
    if exclude_vessels:
        vessels = load_label_volume(subject.vessels, "vessel mask")
        check_same_grid(lesions, vessels)
        vessels_data = vessels.data
    mask_used = None
    if use_brain_mask and subject.brain_mask.exists():
        brain = load_label_volume(subject.brain_mask, "brain mask")
        check_same_grid(lesions, brain)
        brain_data = brain.data
        mask_used = subject.brain_mask.name
    exclude = reference_exclusion(vessels_data, brain_data)
    axis = axial_axis(lesions.affine) if slice_axis is None else int(slice_axis)
    if axis not in (0, 1, 2):
        raise ParameterError(f"slice_axis must be 0, 1 or 2, got {slice_axis}")
    classes = read_lesion_classes(subject)
    result = build_references(
        lesions.data, tissue.data, lesions.voxel_size_mm,
        lesion_classes=classes, gap_mm=gap_mm, ring_mm=ring_mm, max_distance_px=max_distance_px,
        slice_axis=axis, all_slices=all_slices, min_voxels=min_voxels, exclude=exclude, gap_3d=gap_3d,
        progress=scaled(progress, 0.05, 0.9),
    )
    table = result.table.copy()
    from_tsv = table["lesion_id"].isin([k for k, c in classes.items()])
    table["class_source"] = np.where(from_tsv, "lesions.tsv", "suggested")
    result = ReferenceResult(result.refwm, result.refgm, table)
    if write:
        report(progress, 0.9, f"sub-{subject.label}: writing references")
        save_volume(subject.refwm, result.refwm, lesions.affine, like=lesions, dtype=np.int32)
        save_volume(subject.refgm, result.refgm, lesions.affine, like=lesions, dtype=np.int32)
        params = reference_parameters(
            gap_mm=gap_mm, ring_mm=ring_mm, max_distance_px=max_distance_px, slice_axis=axis,
            all_slices=all_slices, min_voxels=min_voxels, gap_3d=gap_3d,
        )
        params.update(
            exclude_vessels=bool(exclude_vessels),
            brain_mask=mask_used,
            classes_from=str(subject.lesions_tsv.name) if classes else "suggested from tissue",
            built_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        )
        state = AnnotationState.load(subject.annotation_json)
        state.set_reference_flags(reference_flags(result.table), params)
        state.save(subject.annotation_json)
    report(progress, 1.0, f"sub-{subject.label}: references done")
    return result


def _check_on_magnitude_grid(subject: SubjectFiles, labels: Volume) -> None:
    """Labels must lie on the T2* magnitude grid (when the magnitude file is there and readable)."""
    if not subject.magnitude.exists():
        return
    try:
        img = nib.load(str(subject.magnitude))
        mag = Volume(np.empty((0,), dtype=np.uint8), np.asarray(img.affine, dtype=float), subject.magnitude)
        shape = tuple(img.shape[:3])
    except Exception:  # an unreadable magnitude is the reconstruction's problem, not ours
        return
    if shape != labels.shape[:3]:
        raise InputFileError(labels.path, f"shape {labels.shape[:3]} differs from {mag.name} shape {shape}")
    if not np.allclose(mag.affine, labels.affine, atol=1e-3):
        raise InputFileError(labels.path, f"affine differs from {mag.name}: labels must lie on the T2* grid")


def reference_flags(table: pd.DataFrame) -> dict[int, list[str]]:
    """Annotation flags from a reference table: ``refwm_too_small``, ``refgm_empty``, ...

    Examples
    --------
    >>> t = pd.DataFrame({"lesion_id": [1, 2], "part": ["wm", "cortical"],
    ...                   "flags": ["reference_too_small;reference_empty", ""]})
    >>> reference_flags(t)
    {1: ['refwm_too_small', 'refwm_empty']}
    """
    out: dict[int, list[str]] = {}
    prefix = {"wm": "refwm_", "cortical": "refgm_"}
    for lesion_id, part, flags in zip(table["lesion_id"], table["part"], table["flags"]):
        if part not in prefix or not flags:
            continue
        for flag in str(flags).split(";"):
            out.setdefault(int(lesion_id), []).append(prefix[part] + flag.removeprefix("reference_"))
    return out
