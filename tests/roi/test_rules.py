"""Issue 11: one rule, one place (roi.rules) -- each test failed on c0d90eb (see the notes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.io.nifti import load_volume, save_volume
from napari_qsm_ms.roi import rules
from napari_qsm_ms.roi.lesions import lesion_table, split_lesion
from napari_qsm_ms.roi.study import build_subject_references
from napari_qsm_ms.stats.figures import _panel_slice
from napari_qsm_ms.stats.lesions import relative_susceptibility
from napari_qsm_ms.stats.study import run_study_stats

from ._synthetic import tissue_map

AFFINE = np.diag([0.47, 0.47, 1.0, 1.0])


def _tied_lesions(shape=(40, 40, 10)):
    """Lesions whose central slice differs between 'most voxels' and 'middle of the span', and
    one with two equally full slices equally near its middle (the last tie rule)."""
    les = np.zeros(shape, np.int16)
    les[5:8, 5:8, 1] = 1  # 9 voxels on slice 1
    les[6, 6, 2:5] = 1  # then a thin tail to slice 4: middle of the span is 2, most voxels 1
    les[20:22, 20:22, 5:7] = 2  # two equal slices: 5 and 6 (tie -> the inferior one)
    les[30:33, 10:13, 3] = 3
    les[31, 11, [2, 4]] = 3  # 3 slices, most voxels in the middle
    return les


def test_central_slice_is_one_rule_in_roi_file_table_stats_report_and_rater_view(tmp_path):
    les = _tied_lesions()
    tis = tissue_map(les.shape)
    expected = {1: 1, 2: 5, 3: 3}
    table = lesion_table(les, tis, (0.47, 0.47, 1))
    assert dict(zip(table["lesion_id"], table["central_slice"])) == expected
    # the ROI file: references lie on that slice
    sub = StudyFiles.at(tmp_path).subject("01")
    save_volume(sub.magnitude, np.ones(les.shape, np.float32), AFFINE)
    save_volume(sub.lesions, les, AFFINE, dtype=np.int16)
    save_volume(sub.tissue, tis, AFFINE, dtype=np.uint8)
    save_volume(sub.chimap, np.ones(les.shape, np.float32), AFFINE)
    build_subject_references(sub, min_voxels=1)
    refwm = np.asarray(load_volume(sub.refwm, dtype=None).data)
    for lid, z in expected.items():
        assert set(np.nonzero(refwm == lid)[2]) == {z}
    # stats/lesions.tsv
    result = run_study_stats(tmp_path, n_resamples=10)
    assert dict(zip(result.lesions["lesion_id"], result.lesions["central_slice"])) == expected
    table = relative_susceptibility(None, les, None, None, tis)
    assert dict(zip(table["lesion_id"], table["central_slice"])) == expected
    # the report's panel
    for lid, z in expected.items():
        assert _panel_slice(sub, lid).slice == z
    # the rater view (canonical layers, the slice axis from the layer geometry)
    from napari_qsm_ms.rating.view import view_point as _view_point  # what the rater dock calls

    for lid, z in expected.items():
        assert _view_point(les == lid, (0.0, 0.0, 0.0), 2)[2] == z


def test_central_slice_does_not_depend_on_the_voxel_order():
    counts = np.array([0, 4, 4, 0])
    up = rules.central_slice(counts, increasing_superior=True)
    down = len(counts) - 1 - rules.central_slice(counts[::-1], increasing_superior=False)
    assert up == down == 1


def test_a_proposal_never_lends_its_class_to_a_drawn_lesion_with_the_same_id(tmp_path):
    les = np.zeros((30, 30, 6), np.int16)
    les[10:14, 10:14, 2:4] = 1
    les[20:23, 5:8, 2:4] = 2
    sub = StudyFiles.at(tmp_path).subject("01")
    save_volume(sub.lesions, les, AFFINE, dtype=np.int16)
    save_volume(sub.tissue, np.full(les.shape, 3, np.uint8), AFFINE, dtype=np.uint8)
    pd.DataFrame({"lesion_id": [1, 2], "candidate_source": ["drawn", "proposed"],
                  "class": ["wm", "rejected"]}).to_csv(sub.lesions_tsv, sep="\t", index=False)
    result = build_subject_references(sub)
    row = result.table.set_index("lesion_id").loc[2]
    assert row["class"] == "wm" and row["voxels"] > 0 and row["class_source"] == "suggested"
    assert rules.drawn_classes(rules.read_consensus_table(sub)) == {1: "wm"}


def test_new_ids_never_collide_with_proposals(tmp_path):
    sub = StudyFiles.at(tmp_path).subject("01")
    drawn = np.zeros((10, 10, 3), np.int16)
    drawn[1, 1, 1] = 3
    proposals = np.zeros_like(drawn)
    proposals[5, 5, 1] = 4  # numbered after the largest drawn id
    save_volume(sub.proposals, proposals, AFFINE, dtype=np.int16)
    reserved = rules.reserved_ids(sub)
    assert reserved == {4}
    assert rules.next_free_id(drawn, reserved) == 5
    drawn[1, 1, 0] = drawn[8, 8, 0] = 3  # a second piece
    _, new_ids = split_lesion(drawn, 3, reserved)
    assert new_ids == [5]


@pytest.mark.parametrize(("cls", "suggested", "expected"), [
    ("wm", "cortical", "wm"), ("disputed", "mixed", "mixed"), ("", "cortical", "cortical"),
    ("rejected", "wm", None), ("not_lesion", "wm", None),
])
def test_reference_class_policy(cls, suggested, expected):
    assert rules.reference_class(cls, suggested) == expected
    assert rules.reference_class(cls, suggested, excluded=True) is None


def test_vocabulary_is_one_set_of_tuples():
    from napari_qsm_ms.rating import consensus, votes
    from napari_qsm_ms.roi import lesions

    assert votes.VOTE_CLASSES is rules.VOTE_CLASSES and lesions.LESION_CLASSES is rules.LESION_CLASSES
    assert consensus.RESOLUTION_CLASSES is rules.RESOLUTION_CLASSES
    assert set(rules.CONSENSUS_CLASSES) == {*rules.LESION_CLASSES, "rejected", "disputed"}
