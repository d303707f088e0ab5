"""Resampling between grids through a world-space rigid transform, and transform files.

One function, :func:`resample_volume`, carries any volume onto any grid: a series onto the T2*
grid (linear) with the registration's fixed-to-moving matrix, or a label map from the T2* grid back
onto a series' native grid (nearest neighbour) with the inverse matrix
(:func:`labels_to_native`). Transforms are saved twice: an ITK ``.tfm`` (for ITK, ANTs, 3D Slicer)
and a JSON sidecar with the 4x4 RAS+ matrix, both in world coordinates, so they stay valid for any
resampling of either image.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Any, Literal

import numpy as np
import SimpleITK as sitk

from ..errors import InputFileError
from ..io.atomic import atomic_path, atomic_write_json
from ..io.nifti import Volume
from .conversion import (
    itk_transform_from_ras,
    ras_from_itk_transform,
    reference_image,
    sitk_image_from_volume,
)

Interpolation = Literal["linear", "nearest"]
_INTERPOLATORS = {"linear": sitk.sitkLinear, "nearest": sitk.sitkNearestNeighbor}

#: Key of the 4x4 matrix in the JSON sidecar (T2* world point -> series world point, RAS+ mm).
MATRIX_KEY = "matrix_ras_t2starw_to_series"
INVERSE_KEY = "matrix_ras_series_to_t2starw"


def resample_volume(
    source: Volume,
    target_shape: tuple[int, ...],
    target_affine: np.ndarray,
    matrix_ras: np.ndarray | None = None,
    *,
    interpolation: Interpolation = "linear",
    default_value: float = 0.0,
) -> np.ndarray:
    """Resample ``source`` onto a target grid.

    Parameters
    ----------
    source : Volume
        3-D image or label map with its RAS+ affine.
    target_shape : tuple of int
        Shape of the target grid.
    target_affine : ndarray, shape (4, 4)
        Target voxel-to-world affine (RAS+, mm).
    matrix_ras : ndarray, shape (4, 4), optional
        Maps a target world point to the source world point whose value it takes (the registration's
        fixed-to-moving direction). Identity if omitted (images already aligned in world space).
    interpolation : {'linear', 'nearest'}
        Linear for images; nearest for label maps (values are copied, never blended).
    default_value : float
        Value outside the source's field of view.

    Returns
    -------
    ndarray
        Target-shaped array; float32 for linear, the source's integer type for nearest.
    """
    if interpolation not in _INTERPOLATORS:
        raise ValueError(f"interpolation must be 'linear' or 'nearest', not {interpolation!r}")
    src = sitk_image_from_volume(source, dtype=np.float32 if interpolation == "linear" else None)
    return resample_image(src, target_shape, target_affine, matrix_ras, interpolation=interpolation,
                          default_value=default_value)


def resample_image(
    src: sitk.Image,
    target_shape: tuple[int, ...],
    target_affine: np.ndarray,
    matrix_ras: np.ndarray | None = None,
    *,
    interpolation: Interpolation = "linear",
    default_value: float = 0.0,
) -> np.ndarray:
    """:func:`resample_volume` for a source already converted to SimpleITK (re-use it when resampling
    the same image many times, e.g. one slice per manual nudge)."""
    if interpolation not in _INTERPOLATORS:
        raise ValueError(f"interpolation must be 'linear' or 'nearest', not {interpolation!r}")
    ref = reference_image(tuple(target_shape[:3]), target_affine)
    transform = itk_transform_from_ras(np.eye(4) if matrix_ras is None else matrix_ras)
    out = sitk.Resample(src, ref, transform, _INTERPOLATORS[interpolation], float(default_value),
                        src.GetPixelID())
    return np.ascontiguousarray(sitk.GetArrayFromImage(out).transpose(2, 1, 0))


def labels_to_native(
    labels: np.ndarray,
    t2_affine: np.ndarray,
    native_shape: tuple[int, ...],
    native_affine: np.ndarray,
    matrix_ras: np.ndarray,
) -> np.ndarray:
    """Carry a label map drawn on the T2* grid to a series' native grid (nearest neighbour).

    Parameters
    ----------
    labels : ndarray of int
        Labels on the T2* grid (e.g. ``desc-lesions_dseg``).
    t2_affine : ndarray, shape (4, 4)
        The T2* grid's affine.
    native_shape, native_affine
        The series' own grid (its raw file).
    matrix_ras : ndarray, shape (4, 4)
        The saved registration transform (T2* world -> series world), as from :func:`load_transform`.

    Returns
    -------
    ndarray
        Labels on the native grid, same dtype; 0 outside the T2* field of view.
    """
    source = Volume(data=np.asarray(labels), affine=np.asarray(t2_affine, dtype=float))
    inverse = np.linalg.inv(np.asarray(matrix_ras, dtype=float))
    return resample_volume(source, native_shape, native_affine, inverse, interpolation="nearest")


def software_versions() -> dict[str, str]:
    """Versions recorded in sidecars."""
    from .. import __version__

    return {
        "napari-qsm-ms": __version__,
        "SimpleITK": sitk.Version_VersionString(),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def save_transform(
    tfm_path: str | os.PathLike,
    json_path: str | os.PathLike,
    matrix_ras: np.ndarray,
    *,
    center_ras: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write a rigid world transform as ITK ``.tfm`` and as a JSON sidecar (both atomically).

    Parameters
    ----------
    tfm_path, json_path : path
        Outputs (``SubjectFiles.coreg_transform(key, '.tfm')`` / ``'.json'``).
    matrix_ras : ndarray, shape (4, 4)
        T2* world point -> series world point (RAS+, mm). The ITK file holds the same mapping in
        LPS+, the convention ITK/ANTs resampling uses ("fixed" = T2*).
    center_ras : ndarray, optional
        Rotation centre stored in the ITK file (cosmetic).
    metadata : dict, optional
        Extra JSON fields (metric values, parameters, source files, ...).
    """
    matrix = np.asarray(matrix_ras, dtype=float)
    tf = itk_transform_from_ras(matrix, center_ras)
    with atomic_path(tfm_path) as tmp:
        sitk.WriteTransform(tf, str(tmp))
    doc = {
        MATRIX_KEY: matrix.tolist(),
        INVERSE_KEY: np.linalg.inv(matrix).tolist(),
        "convention": (
            f"{MATRIX_KEY} maps a point of the T2* magnitude's world space (scanner RAS+, mm) to the "
            "point of the series' world space with the same anatomy; resampling the series with it puts "
            f"it on the T2* grid. {INVERSE_KEY} moves the series onto the T2* image. The ITK file holds "
            "the first in LPS+ (ITK 'fixed to moving', fixed = T2*)."
        ),
        "itk_transform_file": Path(tfm_path).name,
        "software": software_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    doc.update(metadata or {})
    atomic_write_json(json_path, doc)
    return Path(tfm_path), Path(json_path)


def load_transform(path: str | os.PathLike) -> np.ndarray:
    """Read a saved transform (the JSON sidecar or the ITK ``.tfm``) as the 4x4 RAS+ matrix.

    Raises
    ------
    InputFileError
        Missing file, unreadable content, or not a rigid 3-D linear transform.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(p, "transform file not found")
    if p.suffix == ".json":
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            matrix = np.asarray(doc[MATRIX_KEY], dtype=float)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFileError(p, f"no usable '{MATRIX_KEY}' ({type(exc).__name__})") from None
        if matrix.shape != (4, 4) or not np.isfinite(matrix).all():
            raise InputFileError(p, f"'{MATRIX_KEY}' is not a finite 4x4 matrix")
    else:
        try:
            matrix = ras_from_itk_transform(sitk.ReadTransform(str(p)))
        except (RuntimeError, ValueError) as exc:
            raise InputFileError(p, f"not a readable 3-D linear ITK transform ({str(exc).splitlines()[-1]})") from None
    r = matrix[:3, :3]
    if np.abs(r @ r.T - np.eye(3)).max() > 1e-4 or np.linalg.det(r) < 0 or np.any(matrix[3] != [0, 0, 0, 1]):
        raise InputFileError(p, "transform is not rigid")
    return matrix


def load_transform_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON sidecar as a dict (empty if absent)."""
    p = Path(path)
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputFileError(p, f"not valid JSON ({exc})") from None
