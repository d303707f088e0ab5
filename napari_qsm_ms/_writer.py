"""napari writers: Labels and Image layers to NIfTI, in the source orientation with the source affine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .io.nifti import CanonicalView, from_canonical, is_nifti, save_volume


def layer_array_for_file(data: np.ndarray, metadata: dict[str, Any], scale=None, translate=None):
    """The array and affine to write for a layer's data.

    Layers read by this plugin carry ``metadata['canonical']``: the data go back to the source voxel
    order and the source affine is used. Other layers are written as they are with an axis-aligned
    affine from ``scale`` and ``translate``.
    """
    view: CanonicalView | None = metadata.get("canonical") if metadata else None
    if view is not None:
        arr = np.asarray(data)
        if arr.ndim == 4:
            arr = np.moveaxis(arr, 0, -1)
        expected = view.canonical_shape
        if arr.shape[:3] != expected:
            raise ValueError(f"layer shape {arr.shape[:3]} does not match its source grid {expected}")
        return from_canonical(arr, view), view.source_affine
    arr = np.asarray(data)
    affine = np.eye(4)
    if scale is not None:
        affine[:3, :3] = np.diag(np.asarray(scale, dtype=float)[-3:])
    if translate is not None:
        affine[:3, 3] = np.asarray(translate, dtype=float)[-3:]
    return arr, affine


def _write(path: str, data: Any, attributes: dict, dtype) -> list[str]:
    if not is_nifti(path):
        path = str(path) + ".nii.gz"
    arr, affine = layer_array_for_file(
        data, attributes.get("metadata") or {}, attributes.get("scale"), attributes.get("translate")
    )
    save_volume(path, arr, affine, dtype=dtype)
    return [str(Path(path))]


def write_labels(path: str, data: Any, attributes: dict) -> list[str]:
    """npe2 writer for a Labels layer: integer NIfTI (int32, or uint8 when labels fit)."""
    arr = np.asarray(data)
    dtype = np.uint8 if arr.size and arr.min() >= 0 and arr.max() < 256 else np.int32
    return _write(path, arr, attributes, dtype)


def write_image(path: str, data: Any, attributes: dict) -> list[str]:
    """npe2 writer for an Image layer: float32 NIfTI."""
    return _write(path, np.asarray(data), attributes, np.float32)
