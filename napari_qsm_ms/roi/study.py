"""Reference ROIs of one subject: read inputs -> pure computation -> write ``refwm``/``refgm``.

The one subject-level core of the references, used by ``qsm-ms rois``, the Lesions dock's "Build
references" and Python alike:

* :func:`read_reference_inputs` reads a subject's files into :class:`ReferenceInputs`; the dock
  builds the same :class:`ReferenceInputs` from its layers (in the files' voxel order);
* :func:`compute_subject_references` (pure) applies the class policy, the exclusion rule and the
  reference-exclusion rule, calls :func:`~napari_qsm_ms.roi.references.build_references` and makes
  the parameter/provenance record (including ``brain_mask`` and ``built_at``) and the flags;
* :func:`write_subject_references` writes the ROI files and the annotation JSON;
* :func:`build_subject_references` does the three in a row.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ..errors import InputFileError, ParameterError
from ..io.layout import SubjectFiles, TISSUE_LABELS
from ..io.nifti import Volume, check_same_grid, load_volume, save_volume
from ..progress import ProgressCallback, report, scaled
from .annotation import AnnotationState
from .references import (
    DEFAULT_GAP_MM,
    DEFAULT_MAX_DISTANCE_PX,
    DEFAULT_MIN_VOXELS,
    DEFAULT_RING_MM,
    ReferenceResult,
    build_references,
    check_reference_parameters,
    reference_exclusion,
    reference_parameter_record,
)
from .rules import drawn_classes, read_consensus_table, slice_axis_of_affine


def axial_axis(affine: np.ndarray) -> int:
    """The array axis closest to the world superior-inferior axis (across axial slices).

    Examples
    --------
    >>> axial_axis(np.diag([0.47, 0.47, 1.0, 1.0]))
    2
    >>> axial_axis(np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]]))
    1
    """
    return slice_axis_of_affine(affine).axis


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


@dataclass
class ReferenceInputs:
    """Everything the references of one subject depend on, in the files' voxel order.

    Attributes
    ----------
    lesions, tissue : ndarray of int
        Lesion ids and tissue codes (0-4) on the T2* grid.
    affine : ndarray (4, 4)
        The grid's affine (voxel size and axial axis come from it).
    consensus : DataFrame or None
        The consensus table (:func:`~napari_qsm_ms.roi.rules.read_consensus_table`), None if none.
    excluded : dict
        ``{lesion_id: reason}`` of the lesions excluded in the annotation.
    vessels : ndarray of bool, optional
        Vessel voxels to keep out of the references (None: vessels not excluded).
    brain_mask : ndarray, optional
        The QSM mask; voxels outside it are kept out (None: no mask used).
    brain_mask_name, classes_name : str
        What the record calls the mask and the class source (file names, or a layer's name).
    """

    lesions: np.ndarray
    tissue: np.ndarray
    affine: np.ndarray
    consensus: pd.DataFrame | None = None
    excluded: dict[int, str] = field(default_factory=dict)
    vessels: np.ndarray | None = None
    brain_mask: np.ndarray | None = None
    brain_mask_name: str | None = None
    classes_name: str | None = None


@dataclass
class SubjectReferences:
    """Output of :func:`compute_subject_references`: the ROIs, the per-lesion flags and the record."""

    result: ReferenceResult
    flags: dict[int, list[str]]
    record: dict


def read_reference_inputs(
    subject: SubjectFiles, *, exclude_vessels: bool = False, use_brain_mask: bool = True
) -> ReferenceInputs:
    """Read the inputs of a subject's references from its files.

    Raises
    ------
    InputFileError
        Missing or unreadable lesion/tissue/vessel file, grids that differ, tissue codes outside
        0-4, a bad ``lesions.tsv`` or annotation file.
    """
    lesions = load_label_volume(subject.lesions, "lesion label")
    tissue = load_label_volume(subject.tissue, "tissue class")
    check_same_grid(lesions, tissue)
    _check_on_magnitude_grid(subject, lesions)
    bad = np.setdiff1d(np.unique(tissue.data), list(TISSUE_LABELS))
    if bad.size:
        raise InputFileError(tissue.path, f"tissue codes must be 0-4, found {bad[:5].tolist()}")
    inputs = ReferenceInputs(lesions.data, tissue.data, lesions.affine, read_consensus_table(subject),
                             excluded_lesions(subject), classes_name=subject.lesions_tsv.name)
    if exclude_vessels:
        vessels = load_label_volume(subject.vessels, "vessel mask")
        check_same_grid(lesions, vessels)
        inputs.vessels = vessels.data > 0
    if use_brain_mask and subject.brain_mask.exists():
        brain = load_label_volume(subject.brain_mask, "brain mask")
        check_same_grid(lesions, brain)
        inputs.brain_mask, inputs.brain_mask_name = brain.data, subject.brain_mask.name
    return inputs


def excluded_lesions(subject: SubjectFiles) -> dict[int, str]:
    """``{lesion_id: reason}`` of the lesions excluded in the subject's annotation file."""
    if not subject.annotation_json.exists():
        return {}
    return AnnotationState.load(subject.annotation_json).excluded()


def compute_subject_references(
    inputs: ReferenceInputs,
    *,
    gap_mm: float = DEFAULT_GAP_MM,
    ring_mm: float = DEFAULT_RING_MM,
    max_distance_px: float = DEFAULT_MAX_DISTANCE_PX,
    slice_axis: int | None = None,
    all_slices: bool = False,
    min_voxels: int = DEFAULT_MIN_VOXELS,
    gap_3d: bool = False,
    built_at: str | None = None,
    progress: ProgressCallback | None = None,
) -> SubjectReferences:
    """The references of one subject from its inputs (pure: nothing is read or written).

    Class policy (:func:`~napari_qsm_ms.roi.rules.reference_class`): the consensus class of the
    drawn lesion (proposals of the consensus table never lend their class to a drawn lesion);
    ``disputed`` or absent: the class suggested by the cortex fraction; ``rejected`` and lesions
    excluded in the annotation: no reference (their voxels and gap still stay out of every other
    reference). Reference-exclusion rule: vessel voxels and voxels outside the brain mask
    (:func:`~napari_qsm_ms.roi.references.reference_exclusion`).

    Parameters
    ----------
    inputs : ReferenceInputs
    gap_mm, ring_mm, max_distance_px, all_slices, min_voxels, gap_3d
        See :func:`~napari_qsm_ms.roi.references.build_references`.
    slice_axis : int, optional
        Array axis across slices; default: the axis nearest the world S-I axis (axial slices).
    built_at : str, optional
        Time recorded in the parameter record (default: now, UTC).
    progress : callable, optional

    Returns
    -------
    SubjectReferences
        The ROIs and table (with ``class_source``: ``lesions.tsv`` or ``suggested``), the
        ``refwm_*``/``refgm_*`` flags and the record (parameters, ``exclude_vessels``,
        ``brain_mask``, ``classes_from``, ``excluded``, ``built_at``).
    """
    gap_mm, ring_mm, max_distance_px, min_voxels = check_reference_parameters(
        gap_mm, ring_mm, max_distance_px, min_voxels
    )
    direction = slice_axis_of_affine(inputs.affine)
    axis = direction.axis if slice_axis is None else int(slice_axis)
    if axis not in (0, 1, 2):
        raise ParameterError(f"slice_axis must be 0, 1 or 2, got {slice_axis}")
    decided = drawn_classes(inputs.consensus)
    classes = dict(decided)
    classes.update({int(k): "excluded" for k in inputs.excluded})
    voxel_size = tuple(float(v) for v in np.sqrt((np.asarray(inputs.affine)[:3, :3] ** 2).sum(axis=0)))
    result = build_references(
        inputs.lesions, inputs.tissue, voxel_size,
        lesion_classes=classes, gap_mm=gap_mm, ring_mm=ring_mm, max_distance_px=max_distance_px,
        slice_axis=axis, all_slices=all_slices, min_voxels=min_voxels,
        exclude=reference_exclusion(inputs.vessels, inputs.brain_mask), gap_3d=gap_3d,
        increasing_superior=direction.increasing_superior if axis == direction.axis else True,
        progress=progress,
    )
    table = result.table.copy()
    table["class_source"] = np.where(table["lesion_id"].isin(list(decided)), "lesions.tsv", "suggested")
    record = reference_parameter_record(
        gap_mm=gap_mm, ring_mm=ring_mm, max_distance_px=max_distance_px, slice_axis=axis,
        all_slices=all_slices, min_voxels=min_voxels, gap_3d=gap_3d,
    )
    record.update(
        exclude_vessels=inputs.vessels is not None,
        brain_mask=inputs.brain_mask_name if inputs.brain_mask is not None else None,
        classes_from=(inputs.classes_name or "lesions.tsv") if inputs.consensus is not None
        else "suggested from tissue",
        excluded=sorted(int(k) for k in inputs.excluded),
        built_at=built_at or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    table = table.astype({"lesion_id": "int64", "voxels": "int64"})
    out = ReferenceResult(result.refwm, result.refgm, table)
    return SubjectReferences(out, reference_flags(table), record)


def write_subject_references(subject: SubjectFiles, refs: SubjectReferences, like: Volume) -> None:
    """Write ``refwm``/``refgm`` (atomic, on ``like``'s grid) and record flags and parameters in the
    annotation JSON."""
    save_volume(subject.refwm, refs.result.refwm, like.affine, like=like, dtype=np.int32)
    save_volume(subject.refgm, refs.result.refgm, like.affine, like=like, dtype=np.int32)
    state = AnnotationState.load(subject.annotation_json)
    state.set_reference_flags(refs.flags, refs.record)
    state.save(subject.annotation_json)


def build_subject_references(
    subject: SubjectFiles, *, exclude_vessels: bool = False, use_brain_mask: bool = True, write: bool = True,
    progress: ProgressCallback | None = None, **params,
) -> ReferenceResult:
    """Build the reference ROIs of one subject from its files and write them (``qsm-ms rois``).

    :func:`read_reference_inputs` -> :func:`compute_subject_references` ->
    :func:`write_subject_references`; the Lesions dock calls the same pure step on its layers.

    Parameters
    ----------
    subject : SubjectFiles
    exclude_vessels : bool
        Keep voxels of ``desc-vessels_mask`` out of the references.
    use_brain_mask : bool
        Keep voxels outside ``desc-brain_mask`` (where chi is not defined) out of the references,
        when that file exists. Default True.
    write : bool
        Write the files (False: compute only, e.g. for a preview).
    progress : callable, optional
    **params
        ``gap_mm``, ``ring_mm``, ``max_distance_px``, ``slice_axis``, ``all_slices``,
        ``min_voxels``, ``gap_3d`` (see :func:`compute_subject_references`).

    Returns
    -------
    ReferenceResult
    """
    check_reference_parameters(
        params.get("gap_mm", DEFAULT_GAP_MM), params.get("ring_mm", DEFAULT_RING_MM),
        params.get("max_distance_px", DEFAULT_MAX_DISTANCE_PX), params.get("min_voxels", DEFAULT_MIN_VOXELS),
    )
    report(progress, 0.0, f"sub-{subject.label}: reading lesions and tissue")
    inputs = read_reference_inputs(subject, exclude_vessels=exclude_vessels, use_brain_mask=use_brain_mask)
    refs = compute_subject_references(inputs, progress=scaled(progress, 0.05, 0.9), **params)
    if write:
        report(progress, 0.9, f"sub-{subject.label}: writing references")
        like = load_volume(subject.lesions, dtype=None)
        write_subject_references(subject, refs, like)
    report(progress, 1.0, f"sub-{subject.label}: references done")
    return refs.result


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
