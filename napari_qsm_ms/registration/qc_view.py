"""What the coregistration QC view shows (pure, no Qt): the T2* magnitude, one native series and its
saved transform, resampled onto the T2* grid in the reader's canonical orientation, with a nudge."""

from __future__ import annotations

import numpy as np

from ..io.layout import SubjectFiles
from ..io.nifti import Volume, load_volume, to_canonical
from .conversion import sitk_image_from_volume
from .qc import apply_nudge, checkerboard_mask, display_range, grid_center_ras, nudge_matrix, scale_intensity
from .resample import resample_image
from .study import load_coregistration, load_fixed


class QCState:
    """What the QC view needs: the T2* magnitude, one native series and its saved transform.

    Display arrays are on the T2* grid in the reader's canonical (closest RAS+) orientation, so QC
    layers overlay the reader's layers exactly; the series is resampled straight onto that grid.
    """

    def __init__(self, subject: SubjectFiles, key: str) -> None:
        self.subject = subject
        self.key = key
        self.fixed: Volume = load_fixed(subject)
        self.moving: Volume = load_volume(subject.raw_series(key), ndim=3)
        self.matrix, self.metadata = load_coregistration(subject, key)
        self.moving_image = sitk_image_from_volume(self.moving)  # converted once, resampled per nudge
        self.center_ras = grid_center_ras(self.fixed.shape, self.fixed.affine)
        canonical_fixed, self.view = to_canonical(self.fixed.data, self.fixed.affine)
        self.canonical_affine = self.view.canonical_affine
        self.canonical_shape = tuple(canonical_fixed.shape[:3])
        self.fixed_display = scale_intensity(canonical_fixed, display_range(self.fixed.data))
        # the series' display range is fixed by the saved transform, so nudging does not rescale it
        self.moving_range = display_range(self.resampled())

    def nudge(self, translation_mm, rotation_deg) -> np.ndarray:
        return nudge_matrix(translation_mm, rotation_deg, self.center_ras)

    def matrix_for(self, translation_mm=(0, 0, 0), rotation_deg=(0, 0, 0)) -> np.ndarray:
        return apply_nudge(self.matrix, self.nudge(translation_mm, rotation_deg))

    def resampled(self, translation_mm=(0, 0, 0), rotation_deg=(0, 0, 0)) -> np.ndarray:
        """The series on the T2* grid, canonical orientation, saved transform plus the nudge."""
        return resample_image(self.moving_image, self.canonical_shape, self.canonical_affine,
                              self.matrix_for(translation_mm, rotation_deg))

    def resampled_slice(self, axis: int, index: int, translation_mm=(0, 0, 0), rotation_deg=(0, 0, 0)) -> np.ndarray:
        """One canonical slice (``index`` along ``axis``) of :meth:`resampled`, for live nudging."""
        shape = list(self.canonical_shape)
        shape[axis] = 1
        affine = self.canonical_affine.copy()
        affine[:3, 3] = affine[:3, :3] @ np.eye(3)[axis] * index + affine[:3, 3]
        data = resample_image(self.moving_image, tuple(shape), affine, self.matrix_for(translation_mm, rotation_deg))
        return np.take(data, 0, axis=axis)

    def checker_mask(self, check_mm: float) -> np.ndarray:
        """Checkerboard squares on the T2* grid (anchored at its first voxel), canonical orientation."""
        return to_canonical(checkerboard_mask(self.fixed.shape[:3], self.fixed.voxel_size_mm, check_mm),
                            self.fixed.affine)[0]
