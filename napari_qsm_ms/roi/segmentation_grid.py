"""A tissue segmentation file read onto the T2* grid (pure, no Qt): "Import segmentation" of the
Lesions dock."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputFileError, ParameterError
from ..io.nifti import Volume, check_same_grid, load_volume, to_canonical
from .tissue import import_segmentation


def import_segmentation_on_grid(path: str | Path, kind: str, reference: Volume, progress=None) -> np.ndarray:
    """Read a segmentation file, check it lies on ``reference``'s grid, map it to tissue codes.

    Parameters
    ----------
    path : str or Path
        Label map (FreeSurfer/SynthSeg codes, FAST ``_seg``) or, for ``fast_pve``, the three FAST
        PVE maps stacked on a 4th axis. It must already be on the T2* magnitude grid.
    kind : str
        One of ``roi.tissue.KINDS``.
    reference : Volume
        The T2* grid (shape and affine; data unused).

    Returns
    -------
    ndarray of int32
        Tissue codes in the canonical orientation of the plugin's layers.

    Raises
    ------
    InputFileError
        File unreadable, not a label map, or on another grid (resample it onto the T2* first).
    """
    if progress is not None:
        progress(0.05, f"reading {Path(path).name}")
    if kind == "fast_pve":
        volume = load_volume(path, ndim=4, dtype=np.float32)
    else:
        volume = load_volume(path, dtype=None)
    try:
        check_same_grid(reference, volume)
    except InputFileError as exc:
        raise InputFileError(
            path, f"not on the T2* grid ({exc.problem}); resample it onto the T2* magnitude first"
        ) from None
    if progress is not None:
        progress(0.5, "mapping labels to tissue classes")
    try:
        tissue = import_segmentation(volume.data, kind=kind, voxel_size_mm=volume.voxel_size_mm)
    except ParameterError as exc:
        raise InputFileError(path, str(exc)) from None
    canonical, _ = to_canonical(np.asarray(tissue, dtype=np.int32), volume.affine)
    return canonical
