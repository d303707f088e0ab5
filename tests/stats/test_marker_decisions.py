"""Which lesions count as PRL / CVS-positive in qsm-ms stats (stats/markers.py): the rim round's
consensus where the raters agreed, else the measured suggestion; NAIMS exclusions honoured by the
CVS fraction; the report's marker section and rim-profile figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_qsm_ms.errors import InputFileError
from napari_qsm_ms.io.layout import StudyFiles, round_consensus_tsv
from napari_qsm_ms.io.nifti import save_volume
from napari_qsm_ms.rating.markers import record_marker_vote, run_round_consensus
from napari_qsm_ms.stats.markers import (
    MARKER_SUBJECT_COLUMNS,
    decide_markers,
    marker_summary,
    read_rated_markers,
    subject_markers,
)
from napari_qsm_ms.stats.study import compute_study, run_study_stats

from .conftest import affine_for, make_arrays, write_subject


def _subject_with_magnitude(root, touching=False):
    arrays = make_arrays()
    if touching:  # a fourth (WM) lesion touching lesion 1
        arrays["lesions"][7:9, 3:7, 3:6] = 4
    sub = write_subject(root, "01", arrays, classes=("wm", "cortical", "mixed", "wm")[: 4 if touching else 3])
    mag = np.full(arrays["lesions"].shape, 400.0, np.float32)
    mag[15:17, 21:23, :] = 120.0  # a dark vein through lesion 3
    save_volume(sub.magnitude, mag, affine_for())
    return sub


def test_rated_consensus_decides_where_agreed_else_measured(tmp_path):
    sub = _subject_with_magnitude(tmp_path)
    measured = compute_study(tmp_path, n_resamples=20)
    m_rows = measured.lesions.drop_duplicates("lesion_id").set_index("lesion_id")
    assert (m_rows["prl_source"] == "measured").all() and (m_rows["cvs_source"] == "measured").all()
    assert measured.subjects.loc[0, "prl_source"] == "measured"
    # three raters: lesion 1 PRL yes (agreed), lesion 3 disputed; CVS: 1 excluded, 3 present
    answers = {"ann": ("yes", "no"), "bob": ("yes", "uncertain"), "cy": ("yes", "yes")}
    for rater, (p1, p3) in answers.items():
        record_marker_vote(sub, rater, 1, prl=p1, cvs="excluded", cvs_exclusion="other")
        record_marker_vote(sub, rater, 3, prl=p3, cvs="present")
    run_round_consensus(StudyFiles.at(tmp_path), [sub])
    rated = read_rated_markers(sub)
    assert rated.set_index("lesion_id").loc[3, "prl_rated"] == "disputed"
    res = compute_study(tmp_path, n_resamples=20)
    rows = res.lesions.drop_duplicates("lesion_id").set_index("lesion_id")
    assert bool(rows.loc[1, "prl"]) and rows.loc[1, "prl_source"] == "rated"
    assert rows.loc[3, "prl_source"] == "measured"  # disputed: the measured suggestion holds
    assert bool(rows.loc[3, "prl"]) == bool(rows.loc[3, "prl_suggested"])
    assert rows.loc[2, "prl_source"] == "measured"  # not read in the round
    assert rows.loc[1, "cvs_excluded"] and rows.loc[1, "cvs_exclusion_reason"] == "rated"
    assert bool(rows.loc[3, "cvs"]) and rows.loc[3, "cvs_source"] == "rated"
    subj = res.subjects.set_index("subject").loc["01"]
    assert subj["prl_source"] == "rated 1, measured 2" and subj["cvs_source"] == "rated 2, measured 1"
    expected = subject_markers(rows.reset_index())
    assert subj["n_prl"] == expected["n_prl"] == int(rows["prl"].astype(bool).sum())
    assert any(str(p).endswith("round-rim_consensus.tsv") for p in res.inputs["file"])


def test_exclusions_are_honoured_by_the_cvs_fraction():
    m = pd.DataFrame({
        "lesion_id": [1, 2, 3, 4, 5],
        "prl_suggested": False,
        "cvs_suggested": [True, True, True, False, False],
        "cvs_excluded": [False, True, True, False, False],
        "cvs_exclusion_reason": ["", "confluent", "multiple_veins", "", ""],
        "cvs_eligible": [True, False, False, True, True],
    })
    s = subject_markers(decide_markers(m, None))
    assert (s["n_cvs_eligible"], s["n_cvs_excluded"], s["n_cvs"]) == (3, 2, 1)
    assert s["cvs_fraction"] == pytest.approx(1 / 3) and not s["cvs_40pct"]


def test_touching_lesions_excluded_in_lesions_tsv(tmp_path):
    _subject_with_magnitude(tmp_path, touching=True)
    res = compute_study(tmp_path, n_resamples=20)
    rows = res.lesions.drop_duplicates("lesion_id").set_index("lesion_id")
    assert "confluent" in rows.loc[1, "cvs_exclusion_reason"] and rows.loc[1, "confluent_with"] == "4"
    assert "confluent" in rows.loc[4, "cvs_exclusion_reason"]
    assert not rows.loc[1, "cvs_eligible"]
    subj = res.subjects.set_index("subject").loc["01"]
    assert subj["n_cvs_eligible"] == int(rows["cvs_eligible"].astype(bool).sum())


def test_broken_consensus_file_is_one_line_error(tmp_path):
    sub = write_subject(tmp_path, "01")
    path = round_consensus_tsv(sub, "rim")
    path.write_text("lesion\tvalue\n1\tyes\n")
    with pytest.raises(InputFileError, match="missing column"):
        read_rated_markers(sub)


def test_report_has_the_marker_table_and_the_rim_profile_figure(tmp_path):
    _subject_with_magnitude(tmp_path)
    out = tmp_path / "out"
    res = run_study_stats(tmp_path, out, n_resamples=20)
    written = pd.read_csv(out / "subjects.tsv", sep="\t", dtype={"subject": str})
    shown = marker_summary(res.subjects)
    assert list(shown.columns) == ["subject", *MARKER_SUBJECT_COLUMNS]
    assert shown["n_prl"].tolist() == written["n_prl"].tolist()
    assert (out / "rim_profiles.png").stat().st_size > 5000 and (out / "rim_profiles.tsv").is_file()
    text = (out / "report.html").read_text()
    assert "paramagnetic rim lesions and the central vein sign" in text and "alt='rim_profiles'" in text
    assert "Select-6*" in text
