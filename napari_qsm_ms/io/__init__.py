"""Reading and writing NIfTI volumes, sidecars, tables and the study layout."""

from .atomic import atomic_path, atomic_write_json, atomic_write_text, atomic_write_tsv
from .geometry import b0_direction_voxel
from .layout import StudyFiles, SubjectFiles, subject_from_path
from .nifti import Volume, check_same_grid, from_canonical, load_volume, save_volume, to_canonical
from .sidecar import AcquisitionParams, acquisition_from_sidecar, check_b0_t, check_te_s
from .study import Finding, StudyReport, scan_study
from .units import PhaseScaling, detect_phase_units, interpret_phase, phase_to_radians, wrap_to_pi

__all__ = [
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_write_tsv",
    "b0_direction_voxel",
    "StudyFiles",
    "SubjectFiles",
    "subject_from_path",
    "Volume",
    "check_same_grid",
    "from_canonical",
    "load_volume",
    "save_volume",
    "to_canonical",
    "AcquisitionParams",
    "acquisition_from_sidecar",
    "check_b0_t",
    "check_te_s",
    "Finding",
    "StudyReport",
    "scan_study",
    "PhaseScaling",
    "detect_phase_units",
    "interpret_phase",
    "phase_to_radians",
    "wrap_to_pi",
]
