"""FLAIR*: the voxel-wise product of FLAIR and T2* magnitude on the T2* grid (pure, no Qt).

FLAIR* (Sati et al., Radiology 2012;265:926-932) combines the lesion contrast of FLAIR
(lesions bright) with the vein contrast of T2*-weighted imaging (veins dark), so that a central
vein shows as a dark line inside a bright lesion; it is the contrast of choice for reading the
central vein sign (Sati et al., Nat Rev Neurol 2016). The recipe: bring FLAIR onto the T2* grid
(here: ``qsm-ms coregister``, rigid mutual information, ``space-T2starw_FLAIR``), then multiply
the two images voxel by voxel. Because the two series have arbitrary, unrelated intensity units,
each is first divided by its median inside the brain (:func:`normalise_in_mask`), so the product
is unit-free (white matter near 1) and does not change when either scan is rescaled.
Bias-field correction, which some FLAIR* pipelines apply before the product, is not done here.

>>> import numpy as np
>>> flair = np.full((2, 2, 2), 300.0); mag = np.full((2, 2, 2), 20.0)
>>> flair[0, 0, 0] = 600.0; mag[1, 1, 1] = 10.0  # a bright lesion voxel and a dark vein voxel
>>> star = flair_star(flair, mag)
>>> float(star[0, 0, 0]), float(star[1, 1, 1]), float(star[0, 1, 0])
(2.0, 0.5, 1.0)
"""

from __future__ import annotations

import numpy as np

from ..errors import InputFileError, ParameterError
from ..io.layout import SubjectFiles
from ..io.nifti import Volume, check_same_grid, load_volume


def normalise_in_mask(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``image`` divided by its median over the positive finite voxels of ``mask`` (float32).

    Raises
    ------
    ParameterError
        No positive finite voxel inside the mask (nothing to normalise by).
    """
    image = np.asarray(image, dtype=np.float32)
    usable = np.isfinite(image) & (image > 0)
    if mask is not None:
        usable &= np.asarray(mask, dtype=bool)
    if not usable.any():
        raise ParameterError("no positive voxel inside the mask to normalise by")
    return image / np.float32(np.median(image[usable]))


def flair_star(flair: np.ndarray, magnitude: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """FLAIR* = (FLAIR / its brain median) x (T2* magnitude / its brain median), 0 outside ``mask``.

    Parameters
    ----------
    flair, magnitude : ndarray
        The same grid (FLAIR already coregistered onto the T2* grid); any intensity units.
    mask : ndarray of bool, optional
        The brain; the medians are taken inside it and the product is 0 outside. Default: every
        voxel where both images are positive.

    Returns
    -------
    ndarray (float32), unit-free: 1 where both images equal their brain medians.
    """
    flair = np.asarray(flair)
    magnitude = np.asarray(magnitude)
    if flair.shape != magnitude.shape:
        raise ParameterError(f"FLAIR shape {flair.shape} differs from the T2* magnitude shape {magnitude.shape}")
    if mask is None:
        mask = (flair > 0) & (magnitude > 0)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != flair.shape:
        raise ParameterError(f"mask shape {mask.shape} differs from the image shape {flair.shape}")
    out = normalise_in_mask(flair, mask) * normalise_in_mask(magnitude, mask)
    out[~mask | ~np.isfinite(out)] = 0.0
    return out


def _first_echo(volume: Volume) -> Volume:
    data = volume.data if volume.data.ndim == 3 else volume.data[..., 0]
    return Volume(data=data, affine=volume.affine, path=volume.path, header=volume.header)


def _check_on_grid(reference: Volume, other: Volume) -> None:
    try:
        check_same_grid(reference, other)
    except InputFileError as exc:
        raise InputFileError(exc.path, f"{exc.problem}: not on the T2* grid (run qsm-ms coregister)") from None


def subject_flair_star(subject: SubjectFiles, magnitude: Volume | None = None) -> Volume | None:
    """FLAIR* of ``subject`` on its T2* grid, or None when it has no coregistered FLAIR.

    Reads ``space-T2starw_FLAIR`` and the T2* magnitude (first echo; or the ``magnitude`` given)
    and the brain mask when it exists (else every voxel where both are positive).

    Raises
    ------
    InputFileError
        One line naming the file: a FLAIR (or brain mask) not on the T2* magnitude's grid (shape or
        affine differ: coregister first), or an unreadable file.
    """
    path = subject.coreg_series("flair")
    if not path.exists():
        return None
    reference = _first_echo(magnitude if magnitude is not None else load_volume(subject.magnitude, ndim=(3, 4)))
    flair = load_volume(path)
    _check_on_grid(reference, flair)
    mask = None
    if subject.brain_mask.exists():
        mask_vol = load_volume(subject.brain_mask, dtype=None)
        _check_on_grid(reference, mask_vol)
        mask = np.asarray(mask_vol.data) > 0
    try:
        data = flair_star(flair.data, reference.data, mask)
    except ParameterError as exc:
        raise InputFileError(path, f"FLAIR* cannot be formed: {exc}") from None
    return Volume(data=data, affine=reference.affine, path=None)
