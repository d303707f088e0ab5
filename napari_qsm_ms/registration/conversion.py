"""NIfTI (nibabel, RAS+) <-> SimpleITK (LPS+) images and transforms, in one tested place.

A NIfTI affine maps voxel indices ``(i, j, k)`` to scanner world coordinates in RAS+ (x to the
Right, y Anterior, z Superior). ITK describes the same voxels by an origin, a spacing and a
direction matrix in LPS+ (x to the Left, y Posterior, z Superior). The two world frames differ by
a flip of x and y, ``F = diag(-1, -1, 1)``::

    p_lps = F @ p_ras
    origin_lps    = F @ affine[:3, 3]
    spacing       = column norms of affine[:3, :3]
    direction_lps = F @ affine[:3, :3] / spacing

NumPy arrays from nibabel are indexed ``data[i, j, k]``; SimpleITK's ``GetImageFromArray`` reads a
NumPy array as ``[k, j, i]``, so the array is transposed on the way in and out.

Rigid transforms are stored as 4x4 homogeneous matrices acting on RAS+ points (mm). An ITK transform
acting on LPS+ points converts with ``M_ras = F4 @ M_lps @ F4`` (``F4 = diag(-1, -1, 1, 1)``, its own
inverse).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputFileError
from ..io.nifti import Volume

#: RAS+ <-> LPS+ flip, 3x3 and homogeneous 4x4 (each is its own inverse).
FLIP_3 = np.diag([-1.0, -1.0, 1.0])
FLIP_4 = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Largest deviation of the affine's normalised axes from orthonormality (shear) that is accepted
#: as rounding in the header; it is removed by the nearest orthonormal matrix.
MAX_SHEAR = 1e-3


def _direction_and_spacing(affine: np.ndarray, path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise InputFileError(path, "affine is not a finite 4x4 matrix")
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    if np.any(spacing <= 0):
        raise InputFileError(path, "affine has a zero voxel size (no usable geometry)")
    cosines = affine[:3, :3] / spacing
    u, s, vt = np.linalg.svd(cosines)
    if np.abs(s - 1.0).max() > MAX_SHEAR:
        raise InputFileError(
            path, f"affine has shear (axes not orthogonal, singular values {np.round(s, 4).tolist()}): "
            "resample the image to an orthogonal grid first"
        )
    return u @ vt, spacing


def sitk_image_from_volume(volume: Volume, *, dtype: np.dtype | type | None = np.float32) -> sitk.Image:
    """A SimpleITK image with the same voxels at the same physical places as ``volume``.

    Parameters
    ----------
    volume : Volume
        3-D data in the file's voxel order and its RAS+ affine (mm).
    dtype : numpy dtype or None
        Pixel type; ``None`` keeps the array's (use it for label maps).

    Returns
    -------
    SimpleITK.Image
        Origin, spacing (mm) and direction in ITK's LPS+ convention.

    Raises
    ------
    InputFileError
        Not 3-D, or an affine with shear or a zero voxel size.
    """
    data = np.asarray(volume.data)
    if data.ndim != 3:
        raise InputFileError(volume.path, f"is {data.ndim}-D with shape {data.shape}, expected a 3-D image")
    cosines, spacing = _direction_and_spacing(volume.affine, volume.path)
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    elif data.dtype == bool:
        data = data.astype(np.uint8)
    elif data.dtype == np.int64:
        data = data.astype(np.int32)
    image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(v) for v in (FLIP_3 @ cosines).ravel()))
    image.SetOrigin(tuple(float(v) for v in FLIP_3 @ np.asarray(volume.affine, dtype=float)[:3, 3]))
    return image


def affine_from_sitk_image(image: sitk.Image) -> np.ndarray:
    """The RAS+ voxel-to-world 4x4 affine (mm) of a 3-D SimpleITK image."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = FLIP_3 @ direction @ np.diag(image.GetSpacing())
    affine[:3, 3] = FLIP_3 @ np.asarray(image.GetOrigin(), dtype=float)
    return affine


def volume_from_sitk_image(image: sitk.Image, *, path: str | Path | None = None) -> Volume:
    """Inverse of :func:`sitk_image_from_volume`: array in ``[i, j, k]`` order and RAS+ affine."""
    if image.GetDimension() != 3:
        raise InputFileError(path, f"SimpleITK image is {image.GetDimension()}-D, expected 3-D")
    data = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    return Volume(data=np.ascontiguousarray(data), affine=affine_from_sitk_image(image),
                  path=None if path is None else Path(path))


def reference_image(shape: tuple[int, int, int], affine: np.ndarray) -> sitk.Image:
    """An empty (1-voxel-valued) SimpleITK image describing a grid, for ``sitk.Resample``."""
    cosines, spacing = _direction_and_spacing(affine, None)
    image = sitk.Image([int(n) for n in shape[:3]], sitk.sitkUInt8)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(v) for v in (FLIP_3 @ cosines).ravel()))
    image.SetOrigin(tuple(float(v) for v in FLIP_3 @ np.asarray(affine, dtype=float)[:3, 3]))
    return image


def nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    """The proper rotation closest to a 3x3 matrix (removes rounding; refuses reflections)."""
    u, _, vt = np.linalg.svd(np.asarray(matrix, dtype=float))
    rot = u @ vt
    if np.linalg.det(rot) < 0:
        raise ValueError("matrix is a reflection, not a rotation")
    return rot


def itk_transform_from_ras(matrix_ras: np.ndarray, center_ras: np.ndarray | None = None) -> sitk.Euler3DTransform:
    """An ITK rigid transform (LPS+) equal to a rigid 4x4 acting on RAS+ points.

    Parameters
    ----------
    matrix_ras : ndarray, shape (4, 4)
        Rigid transform of world points, RAS+ mm.
    center_ras : ndarray, shape (3,), optional
        Centre of rotation stored in the ITK transform (does not change the mapping).

    Returns
    -------
    SimpleITK.Euler3DTransform
    """
    m = FLIP_4 @ np.asarray(matrix_ras, dtype=float) @ FLIP_4
    rot = nearest_rotation(m[:3, :3])
    if np.abs(rot - m[:3, :3]).max() > 1e-6:
        raise ValueError("matrix is not rigid (rotation part is not orthonormal)")
    center = np.zeros(3) if center_ras is None else FLIP_3 @ np.asarray(center_ras, dtype=float)
    tf = sitk.Euler3DTransform()
    tf.SetCenter(tuple(float(c) for c in center))
    tf.SetMatrix(tuple(float(v) for v in rot.ravel()), 1e-6)
    # y = R (x - c) + c + t  ==  R x + m[:3, 3]
    tf.SetTranslation(tuple(float(v) for v in m[:3, 3] - center + rot @ center))
    return tf


def ras_from_itk_transform(transform: sitk.Transform) -> np.ndarray:
    """The 4x4 RAS+ matrix of a 3-D linear ITK transform (Euler, versor, affine or a composite of them).

    The matrix is read off the transform's action on the origin and the three unit points, so it
    works for every linear ITK transform type; a non-linear transform is refused.
    """
    if transform.GetDimension() != 3:
        raise ValueError(f"expected a 3-D transform, got a {transform.GetDimension()}-D one")
    probes = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [7, -5, 3]], dtype=float) * 10.0
    images = np.array([transform.TransformPoint(tuple(p)) for p in probes])
    m = np.eye(4)
    m[:3, 3] = images[0]
    m[:3, :3] = (images[1:4] - images[0]).T / 10.0
    if np.abs(m[:3, :3] @ probes[4] + m[:3, 3] - images[4]).max() > 1e-6:
        raise ValueError(f"{transform.GetName()} is not a linear transform")
    return FLIP_4 @ m @ FLIP_4
