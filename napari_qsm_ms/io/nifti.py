"""NIfTI volumes through nibabel, keeping the true affine.

Computation happens on the array in the file's own voxel order, with the affine carried beside it
(:class:`Volume`). Display may use :func:`to_canonical`, which reorders axes to the closest RAS+
orientation and remembers how to go back (:func:`from_canonical`), so that anything drawn on the
canonical view is written back in the source orientation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform

from ..errors import InputFileError
from .atomic import atomic_path

NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass
class Volume:
    """An image array with its geometry.

    Attributes
    ----------
    data : ndarray
        Voxel values in the file's voxel order (3-D, or 4-D with echoes/time last).
    affine : ndarray, shape (4, 4)
        Voxel index to world (scanner RAS+, mm) transform.
    path : Path or None
        Source file, used in error messages.
    header : nibabel header or None
        Source header, reused when writing derived volumes so units and codes carry over.
    """

    data: np.ndarray
    affine: np.ndarray
    path: Path | None = None
    header: object | None = field(default=None, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def voxel_size_mm(self) -> tuple[float, float, float]:
        """Voxel edge lengths (mm) along the three spatial array axes, from the affine."""
        return voxel_size_from_affine(self.affine)

    @property
    def name(self) -> str:
        return "<memory>" if self.path is None else self.path.name


def is_nifti(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a NIfTI suffix (``.nii`` or ``.nii.gz``)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def strip_nifti_suffix(name: str) -> str:
    """``sub-01_T1w.nii.gz`` -> ``sub-01_T1w``."""
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def voxel_size_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel edge lengths (mm): the norms of the affine's first three columns."""
    sizes = np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(axis=0))
    return tuple(float(s) for s in sizes)


def load_volume(
    path: str | os.PathLike,
    *,
    ndim: int | tuple[int, ...] | None = 3,
    dtype: np.dtype | type | None = np.float32,
    allow_nan: bool = False,
) -> Volume:
    """Load a NIfTI file, checking what every caller would otherwise check.

    Parameters
    ----------
    path : str or PathLike
        A ``.nii`` or ``.nii.gz`` file.
    ndim : int or tuple of int or None
        Accepted dimensionalities (trailing singleton axes beyond 3 are dropped first).
        ``None`` accepts any.
    dtype : numpy dtype or None
        Convert the scaled data to this type; ``None`` keeps nibabel's on-disk type
        (``get_fdata`` is not used then, so integers stay integers, as needed to detect raw phase).
    allow_nan : bool
        If False, a volume with NaN or infinite values is refused.

    Returns
    -------
    Volume

    Raises
    ------
    InputFileError
        Missing, empty, unreadable, wrong dimensionality, non-finite values, or a singular affine.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(p, "file not found")
    if p.is_dir():
        raise InputFileError(p, "is a folder, expected a NIfTI file")
    if p.stat().st_size == 0:
        raise InputFileError(p, "file is empty (0 bytes)")
    if not is_nifti(p):
        raise InputFileError(p, "not a NIfTI file (expected .nii or .nii.gz)")
    try:
        img = nib.load(str(p))
        if dtype is None:
            data = np.asanyarray(img.dataobj)
        else:
            data = np.asarray(img.get_fdata(dtype=np.float64 if np.dtype(dtype) == np.float64 else np.float32))
            if np.dtype(dtype) != data.dtype:
                data = data.astype(dtype)
    except InputFileError:
        raise
    except Exception as exc:  # nibabel raises many types for truncated or corrupt files
        raise InputFileError(p, f"cannot be read as NIfTI ({type(exc).__name__}: {exc})") from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.size == 0:
        raise InputFileError(p, "image has no voxels")
    if ndim is not None:
        accepted = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if data.ndim not in accepted:
            want = " or ".join(f"{n}-D" for n in accepted)
            raise InputFileError(p, f"is {data.ndim}-D with shape {data.shape}, expected {want}")
    if not allow_nan and np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        n_bad = int((~np.isfinite(data)).sum())
        raise InputFileError(p, f"contains {n_bad} NaN or infinite values")
    affine = np.asarray(img.affine, dtype=float)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputFileError(p, "has a singular or non-finite affine (no usable geometry)")
    return Volume(data=data, affine=affine, path=p, header=img.header)


def save_volume(
    path: str | os.PathLike,
    data: np.ndarray,
    affine: np.ndarray,
    *,
    like: Volume | None = None,
    dtype: np.dtype | type | None = None,
) -> Path:
    """Write a NIfTI file atomically (temporary name, then rename).

    Parameters
    ----------
    path : str or PathLike
        Output file (``.nii`` or ``.nii.gz``); folders are created.
    data : ndarray
        Array in the voxel order that ``affine`` describes.
    affine : ndarray, shape (4, 4)
        Voxel-to-world transform written as both sform and qform (code 1, scanner).
    like : Volume, optional
        Source whose spatial units carry over.
    dtype : numpy dtype, optional
        On-disk type (defaults to the array's; bool becomes uint8, int64 becomes int32).

    Returns
    -------
    Path
    """
    arr = np.asarray(data)
    if dtype is not None:
        arr = arr.astype(dtype)
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8)
    elif arr.dtype == np.int64 or arr.dtype == np.uint64:
        if arr.size and (arr.max() > np.iinfo(np.int32).max or arr.min() < np.iinfo(np.int32).min):
            raise ValueError("integer labels do not fit int32")
        arr = arr.astype(np.int32)
    elif arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    img = nib.Nifti1Image(arr, np.asarray(affine, dtype=float))
    img.set_sform(img.affine, code=1)
    img.set_qform(img.affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    if like is not None and like.header is not None:
        try:
            img.header.set_xyzt_units(*like.header.get_xyzt_units())
        except Exception:  # pragma: no cover - exotic headers
            pass
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)


@dataclass(frozen=True)
class CanonicalView:
    """How a source array maps to its closest RAS+ canonical orientation and back."""

    source_affine: np.ndarray
    source_shape: tuple[int, ...]
    ornt: np.ndarray  # source -> canonical transform (nibabel orientation array)

    @property
    def canonical_shape(self) -> tuple[int, int, int]:
        """Spatial shape of the canonical array."""
        order = np.argsort(self.ornt[:, 0])
        return tuple(int(self.source_shape[i]) for i in order)

    def canonical_to_source_index(self, ijk) -> np.ndarray:
        """Source voxel index of a canonical voxel index (float, 3,)."""
        world = self.canonical_affine @ np.r_[np.asarray(ijk, dtype=float), 1.0]
        return (np.linalg.inv(self.source_affine) @ world)[:3]

    @property
    def canonical_affine(self) -> np.ndarray:
        return self.source_affine @ inv_ornt_aff(self.ornt, self.source_shape[:3])


def to_canonical(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, CanonicalView]:
    """Reorder and flip the spatial axes of ``data`` to the closest RAS+ orientation.

    The world coordinates of every voxel are preserved: ``view.canonical_affine`` applied to the
    new indices gives the same points as ``affine`` applied to the old ones. Oblique rotations are
    not resampled away; only axis permutations and flips are applied.

    Returns
    -------
    canonical_data : ndarray
    view : CanonicalView
        Pass it to :func:`from_canonical` to go back.
    """
    affine = np.asarray(affine, dtype=float)
    src = io_orientation(affine)
    ras = np.array([[0, 1], [1, 1], [2, 1]], dtype=float)
    ornt = ornt_transform(src, ras)
    view = CanonicalView(affine, tuple(data.shape), ornt)
    return apply_orientation(data, ornt), view


def from_canonical(data: np.ndarray, view: CanonicalView) -> np.ndarray:
    """Inverse of :func:`to_canonical`: canonical array back to the source voxel order."""
    back = ornt_transform(np.array([[0, 1], [1, 1], [2, 1]], dtype=float), io_orientation(view.source_affine))
    out = apply_orientation(data, back)
    if out.shape[:3] != view.source_shape[:3]:  # pragma: no cover - guards a nibabel contract
        raise RuntimeError("canonical round trip changed the shape")
    return out


def same_grid(a: Volume, b: Volume, *, atol_mm: float = 1e-3) -> bool:
    """Whether two volumes share the spatial shape and affine (within ``atol_mm``)."""
    return a.shape[:3] == b.shape[:3] and np.allclose(a.affine, b.affine, atol=atol_mm)


def check_same_grid(reference: Volume, other: Volume, *, atol_mm: float = 1e-3) -> None:
    """Raise :class:`InputFileError` naming ``other`` if it is not on ``reference``'s grid."""
    if reference.shape[:3] != other.shape[:3]:
        raise InputFileError(
            other.path, f"shape {other.shape[:3]} differs from {reference.name} shape {reference.shape[:3]}"
        )
    if not np.allclose(reference.affine, other.affine, atol=atol_mm):
        shift = float(np.abs(reference.affine - other.affine).max())
        raise InputFileError(other.path, f"affine differs from {reference.name} (by up to {shift:.3g} mm)")
