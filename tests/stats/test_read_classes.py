"""Classes for the statistics come from the consensus of drawn lesions only."""

from __future__ import annotations

import pandas as pd

from napari_qsm_ms.io.atomic import atomic_write_tsv
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.roi.annotation import AnnotationState
from napari_qsm_ms.stats.study import read_annotation, read_classes


def test_proposed_candidates_are_not_lesions_yet(tmp_path):
    sub = StudyFiles.at(tmp_path).subject("01")
    assert read_classes(sub) is None
    atomic_write_tsv(
        sub.lesions_tsv,
        pd.DataFrame(
            {
                "lesion_id": [1, 2, 50],
                "class": ["wm", "cortical", "wm"],
                "consensus": ["agreed"] * 3,
                "candidate_source": ["drawn", "drawn", "proposed"],
            }
        ),
    )
    assert read_classes(sub)["lesion_id"].tolist() == [1, 2]


def test_exclusions_and_flags_from_the_annotation_state(tmp_path):
    sub = StudyFiles.at(tmp_path).subject("01")
    assert read_annotation(sub) == ({}, {})
    state = AnnotationState()
    state.exclude(3, "QSM artefact;  near sinus")
    state.add_flag(4, "small")
    state.save(sub.annotation_json)
    exclude, flags = read_annotation(sub)
    assert exclude == {3: "QSM artefact, near sinus"}
    assert flags == {4: ["annotation:small"]}
