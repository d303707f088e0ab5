"""The shipped sample: real (MNI) anatomy, its licence notice, 11 lesions per subject."""

import json
from pathlib import Path

import pytest

from napari_qsm_ms.simulate.mni import MNI_NOTICE
from napari_qsm_ms.simulate.sample_study import SAMPLE_ANATOMY

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.mark.skipif(not (SAMPLE_DATA / "study").is_dir(), reason="sample study not generated")
def test_sample_uses_mni_anatomy_with_its_notice():
    assert SAMPLE_ANATOMY == "mni"
    params = json.loads((SAMPLE_DATA / "study/derivatives/simulation/dataset_description.json").read_text())
    assert params["Parameters"]["anatomy"] == "mni"
    assert params["Parameters"]["n_lesions"] == [6, 3, 2]
    assert (SAMPLE_DATA / "study" / "NOTICE").read_text() == MNI_NOTICE
    assert MNI_NOTICE in (SAMPLE_DATA / "NOTICE").read_text()
