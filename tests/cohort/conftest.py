"""Session fixtures of the cohort tests: a tiny 3-subject study, and the same after a serial run."""

from __future__ import annotations

import pytest

from napari_qsm_ms.cohort.run import run_study

from ._study import FAST, SUBJECT_AND_AGREEMENT, copy_study, make_tiny_study


@pytest.fixture(scope="session")
def pristine(tmp_path_factory):
    return make_tiny_study(tmp_path_factory.mktemp("cohort") / "pristine")


@pytest.fixture(scope="session")
def serial(pristine, tmp_path_factory):
    """The study after a serial run of the subject steps and the agreement."""
    study = copy_study(pristine, tmp_path_factory.mktemp("serial") / "study")
    result = run_study(study.root, params=FAST, only=SUBJECT_AND_AGREEMENT, jobs=1)
    assert result.ok, result.failures
    return study
