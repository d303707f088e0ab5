"""Rigid mutual-information coregistration of the MPRAGEs and FLAIR onto the T2* magnitude grid.

Public API
----------
* :func:`rigid.register_rigid` (6-DOF Mattes MI, multi-resolution, SimpleITK) -> :class:`rigid.RigidResult`
* :func:`conversion.sitk_image_from_volume` / :func:`conversion.volume_from_sitk_image` (RAS+ <-> LPS+)
* :func:`resample.resample_volume`, :func:`resample.labels_to_native`, :func:`resample.save_transform`,
  :func:`resample.load_transform`
* :func:`study.coregister_subject`, :func:`study.save_nudged`, :func:`study.load_coregistration`
* :mod:`qc`: checkerboards and manual nudges

See docs/registration.md.
"""

from .conversion import sitk_image_from_volume, volume_from_sitk_image
from .resample import labels_to_native, load_transform, resample_volume, save_transform
from .rigid import RegistrationError, RigidParameters, RigidResult, register_rigid
from .study import coregister_subject, labels_to_series, load_coregistration, save_nudged

__all__ = [
    "RegistrationError",
    "RigidParameters",
    "RigidResult",
    "coregister_subject",
    "labels_to_native",
    "labels_to_series",
    "load_coregistration",
    "load_transform",
    "register_rigid",
    "resample_volume",
    "save_nudged",
    "save_transform",
    "sitk_image_from_volume",
    "volume_from_sitk_image",
]
