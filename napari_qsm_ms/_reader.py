"""napari reader: NIfTI files, subject folders and study folders.

Layers are built from :func:`subject_layer_data` / :func:`file_layer_data` as napari LayerData
tuples (no napari import here). Every layer carries in ``metadata``:

``role``       what the layer is (``magnitude``, ``phase``, ``qsm``, ``wmn``, ``csfn``, ``flair``,
               ``mask``, ``tissue``, ``lesions``, ``refwm``, ``refgm``, ``vessels``, or ``image``/``labels``);
``path``       the source file (``pathlib.Path``), or where the layer saves to;
``affine``     the source file's true 4x4 voxel-to-world affine (RAS+, mm);
``canonical``  a :class:`~napari_qsm_ms.io.nifti.CanonicalView`: layer data are in the closest RAS+
               orientation; ``from_canonical(data, view)`` gives the source voxel order back;
``subject``    the :class:`~napari_qsm_ms.io.layout.SubjectFiles` (subject/study folders only);
``derived_from_qsm``  True for the QSM map and layers computed from it (rater blinding).

Display geometry: ``scale`` = voxel size (mm) and ``translate`` = the canonical affine's origin,
so all volumes on one grid align exactly and axis-aligned grids align in world space. Oblique
rotations are not applied for display (napari cannot slice them orthogonally); the true affine is
kept in metadata and used for every computation and every write.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .display import robust_range
from .errors import QSMMSError
from .io.layout import COREG_SERIES, StudyFiles, SubjectFiles, subject_from_path
from .io.nifti import Volume, is_nifti, load_volume, strip_nifti_suffix, to_canonical

LayerData = tuple[np.ndarray, dict[str, Any], str]

QSM_CONTRAST_PPM = (-0.15, 0.15)

#: role -> (layer name, layer type, extra kwargs); order is the stacking order (first = bottom).
ROLE_STYLE: dict[str, tuple[str, str, dict[str, Any]]] = {
    "magnitude": ("T2* magnitude", "image", {"colormap": "gray"}),
    "phase": ("T2* phase", "image", {"colormap": "twilight_shifted", "visible": False}),
    "wmn": ("WM-nulled MPRAGE", "image", {"colormap": "gray", "visible": False}),
    "csfn": ("CSF-nulled MPRAGE", "image", {"colormap": "gray", "visible": False}),
    "flair": ("FLAIR", "image", {"colormap": "gray", "visible": False}),
    "qsm": ("QSM (ppm)", "image", {"colormap": "gray", "contrast_limits": QSM_CONTRAST_PPM, "visible": False}),
    "mask": ("brain mask", "labels", {"visible": False, "opacity": 0.3}),
    "tissue": ("tissue", "labels", {"visible": False, "opacity": 0.35}),
    "vessels": ("vessels", "labels", {"visible": False, "opacity": 0.6}),
    "lesions": ("lesions", "labels", {"opacity": 0.9}),
    "refwm": ("refwm", "labels", {"opacity": 0.9}),
    "refgm": ("refgm", "labels", {"opacity": 0.9}),
}
LABEL_ROLES = {role for role, (_, kind, _) in ROLE_STYLE.items() if kind == "labels"}
CONTOUR_ROLES = {"lesions", "refwm", "refgm"}

# File-name endings (without .nii[.gz]) -> role, for single files.
_SUFFIX_ROLES = [
    ("_part-mag_T2starw", "magnitude"),
    ("_part-phase_T2starw", "phase"),
    ("_Chimap", "qsm"),
    ("_acq-wmn_T1w", "wmn"),
    ("_acq-csfn_T1w", "csfn"),
    ("_FLAIR", "flair"),
    ("_desc-brain_mask", "mask"),
    ("_desc-tissue_dseg", "tissue"),
    ("_desc-lesions_dseg", "lesions"),
    ("_desc-refwm_dseg", "refwm"),
    ("_desc-refgm_dseg", "refgm"),
    ("_desc-vessels_mask", "vessels"),
]
_LABEL_LIKE = ("_dseg", "_mask", "_label", "_labels", "_seg", "_roi", "aseg", "aparc")


def role_from_filename(path: str | os.PathLike) -> str:
    """The role a file plays, from its BIDS-like name; ``image`` or ``labels`` if unknown."""
    stem = strip_nifti_suffix(Path(path).name)
    for suffix, role in _SUFFIX_ROLES:
        if stem.endswith(suffix):
            return role
    return "labels" if any(tag in stem.lower() for tag in _LABEL_LIKE) else "image"


def _display_geometry(view_affine: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    scale = tuple(float(s) for s in np.sqrt((view_affine[:3, :3] ** 2).sum(axis=0)))
    translate = tuple(float(t) for t in view_affine[:3, 3])
    return scale, translate


def volume_layer_data(
    volume: Volume, role: str, *, subject: SubjectFiles | None = None, name: str | None = None
) -> LayerData:
    """One LayerData tuple for a loaded volume, in canonical orientation with metadata."""
    data, view = to_canonical(volume.data, volume.affine)
    scale, translate = _display_geometry(view.canonical_affine)
    layer_name, kind, style = ROLE_STYLE.get(
        role, (strip_nifti_suffix(volume.name), "labels" if role == "labels" else "image", {})
    )
    kwargs: dict[str, Any] = {
        "name": name or layer_name,
        "scale": scale[: data.ndim] if data.ndim == 3 else (1.0,) * (data.ndim - 3) + scale,
        "translate": translate if data.ndim == 3 else (0.0,) * (data.ndim - 3) + translate,
        "metadata": {
            "role": role,
            "path": volume.path,
            "affine": volume.affine,
            "canonical": view,
            "subject": subject,
            "derived_from_qsm": role in {"qsm", "vessels"},
        },
        **style,
    }
    if kind == "labels":
        data = np.asarray(data).astype(np.int32, copy=False)
        if role in CONTOUR_ROLES:  # Labels() takes no contour argument: applied after adding
            kwargs["metadata"]["contour"] = 1
    elif data.ndim >= 3 and "contrast_limits" not in kwargs and np.isfinite(data).any():
        kwargs["contrast_limits"] = robust_range(data)
    if data.ndim == 4:  # echoes/time last on disk -> first in napari (slider)
        data = np.moveaxis(data, -1, 0)
    return data, kwargs, kind


def file_layer_data(path: str | os.PathLike) -> list[LayerData]:
    """LayerData for one NIfTI file (Labels for label-like names such as ``_dseg``, ``_mask``)."""
    role = role_from_filename(path)
    is_labels = role in LABEL_ROLES or role == "labels"
    volume = load_volume(path, ndim=(3, 4), dtype=None if is_labels else np.float32, allow_nan=not is_labels)
    if is_labels and np.issubdtype(volume.data.dtype, np.floating):
        volume.data = np.rint(np.nan_to_num(volume.data)).astype(np.int32)
    return [volume_layer_data(volume, role, subject=subject_from_path(path))]


def subject_sources(subject: SubjectFiles, *, include_native: bool = False) -> dict[str, Path]:
    """The existing file for each role of a subject.

    The conventional series come from their coregistered copies on the T2* grid; with
    ``include_native`` a series not yet coregistered falls back to its raw file on its own grid.
    """
    candidates: dict[str, list[Path]] = {
        "magnitude": [subject.magnitude],
        "phase": [subject.phase],
        "qsm": [subject.chimap],
        **{
            key: [subject.coreg_series(key)] + ([subject.raw_series(key)] if include_native else [])
            for key in COREG_SERIES
        },
        "mask": [subject.brain_mask],
        "tissue": [subject.tissue],
        "vessels": [subject.vessels],
        "lesions": [subject.lesions],
        "refwm": [subject.refwm],
        "refgm": [subject.refgm],
    }
    found = {}
    for role, paths in candidates.items():
        for p in paths:
            if p.exists():
                found[role] = p
                break
    return found


def subject_layer_data(
    subject: SubjectFiles, *, include_phase: bool = True, include_native: bool = False
) -> list[LayerData]:
    """LayerData for every series and derivative a subject has, in stacking order.

    Annotation layers that do not exist yet (lesions, tissue, refwm, refgm) are created empty on
    the T2* magnitude grid, with ``metadata['path']`` set to where they will be saved. Conventional
    series not yet coregistered are left out unless ``include_native`` (their own grids would
    stretch the slider and never align with the T2* slices; the Coregister dock reads them).
    """
    sources = subject_sources(subject, include_native=include_native)
    if "magnitude" not in sources:
        raise QSMMSError(f"{subject.magnitude}: T2* magnitude not found (the reference grid of the subject)")
    reference = load_volume(sources["magnitude"])
    out: list[LayerData] = []
    for role in ROLE_STYLE:
        if role == "phase" and not include_phase:
            continue
        if role == "magnitude":
            volume = reference
        elif role in sources:
            is_labels = role in LABEL_ROLES
            volume = load_volume(sources[role], dtype=None if is_labels else np.float32, allow_nan=not is_labels)
            if is_labels:
                volume.data = np.rint(np.nan_to_num(np.asarray(volume.data, dtype=float))).astype(np.int32)
        elif role in {"lesions", "tissue", "refwm", "refgm"}:
            volume = Volume(
                np.zeros(reference.shape[:3], np.int32), reference.affine, getattr(subject, role), reference.header
            )
        else:
            continue
        data, kwargs, kind = volume_layer_data(volume, role, subject=subject)
        kwargs["metadata"]["on_reference_grid"] = volume.shape[:3] == reference.shape[:3] and np.allclose(
            volume.affine, reference.affine, atol=1e-3
        )
        if role in COREG_SERIES and not kwargs["metadata"]["on_reference_grid"]:
            kwargs["name"] += " (native grid)"
        out.append((data, kwargs, kind))
    return out


def resolve_subject(path: str | os.PathLike) -> SubjectFiles | None:
    """The subject a folder designates: a ``sub-*`` folder (raw or derivative), or a study's first."""
    p = Path(path)
    if not p.is_dir():
        return None
    subject = subject_from_path(p)
    if subject is not None:
        return subject
    study = StudyFiles.at(p)
    labels = study.subject_labels()
    return study.subject(labels[0]) if labels else None


def unreadable_reason(path: str | os.PathLike) -> str | None:
    """Why the reader cannot open ``path`` (one line naming it), or None if it can.

    The reader opens NIfTI files (``.nii``, ``.nii.gz``), ``sub-*`` folders and study folders
    with ``sub-*`` folders, and nothing else.
    """
    p = Path(path)
    if not p.exists():
        return f"{p}: not found"
    if p.is_dir():
        if resolve_subject(p) is None:
            return f"{p}: not a NIfTI file, a sub-* folder or a study with sub-* folders"
        return None
    if not is_nifti(p):
        return f"{p}: not a NIfTI file (.nii or .nii.gz)"
    return None


def read_path(path: str | os.PathLike) -> list[LayerData]:
    """Read a NIfTI file, a subject folder or a study folder (its first subject)."""
    reason = unreadable_reason(path)
    if reason is not None:
        raise QSMMSError(reason)
    p = Path(path)
    if p.is_dir():
        return subject_layer_data(resolve_subject(p))
    return file_layer_data(p)


def get_reader(path: str | list[str]):
    """npe2 reader contribution: a reader function for NIfTI files and study/subject folders.

    Other files: None (napari offers them to other readers; the manifest's patterns keep them
    from reaching us anyway). A folder that is neither a study nor a subject: a reader that
    raises the one-line reason, so napari shows why instead of "refused the file".
    """
    paths = path if isinstance(path, list) else [path]
    if not paths or not all(isinstance(p, str | os.PathLike) for p in paths):
        return None
    if len(paths) > 1 and not all(is_nifti(p) for p in paths):
        return None
    first = Path(paths[0])
    if first.is_dir():
        return _read_many if unreadable_reason(first) is None else _refuse
    return _read_many if all(is_nifti(p) for p in paths) else None


def _refuse(path: str | list[str]) -> list[LayerData]:
    paths = path if isinstance(path, list) else [path]
    raise QSMMSError(unreadable_reason(paths[0]) or f"{paths[0]}: cannot be read")


def _read_many(path: str | list[str]) -> list[LayerData]:
    paths = path if isinstance(path, list) else [path]
    layers: list[LayerData] = []
    for p in paths:
        layers.extend(read_path(p))
    return layers
