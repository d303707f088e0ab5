"""napari sample data: one subject of the shipped simulated study."""

from __future__ import annotations

from pathlib import Path

from ._reader import subject_layer_data
from .errors import QSMMSError
from .io.layout import StudyFiles

SAMPLE_STUDY = Path(__file__).resolve().parent.parent / "sample_data" / "study"


def sample_study_path() -> Path:
    """The shipped sample study (a source checkout or editable install)."""
    if not (SAMPLE_STUDY / "sub-01").is_dir():
        raise QSMMSError(
            f"{SAMPLE_STUDY}: sample study not found; regenerate it with "
            "`python -m napari_qsm_ms.simulate.sample_study sample_data/study`"
        )
    return SAMPLE_STUDY


def sample_subject():
    """LayerData of sub-01 of the sample study (all series, tissue classes and lesions)."""
    return subject_layer_data(StudyFiles.at(sample_study_path()).subject("01"))
