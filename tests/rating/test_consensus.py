"""Majority rule (2..5 raters), rejection, disputes, ties, missing votes, resolution, lesions.tsv."""

from __future__ import annotations

import pandas as pd
import pytest

from napari_qsm_ms.errors import InputFileError, ParameterError
from napari_qsm_ms.rating.consensus import (
    LESION_COLUMNS,
    compute_consensus,
    majority,
    read_lesion_classes,
    resolve,
    run_consensus,
)
from napari_qsm_ms.rating.votes import record_vote

from ._helpers import make_subject


@pytest.mark.parametrize(
    ("votes", "n", "expected"),
    [
        # three raters (the paper): 2 of 3
        (["wm", "wm", "wm"], 3, ("wm", "agreed", 1.0)),
        (["wm", "wm", "cortical"], 3, ("wm", "agreed", 2 / 3)),
        (["mixed", "cortical", "mixed"], 3, ("mixed", "agreed", 2 / 3)),
        (["wm", "cortical", "mixed"], 3, ("disputed", "disputed", 1 / 3)),
        (["not_lesion", "not_lesion", "wm"], 3, ("rejected", "agreed", 2 / 3)),
        (["not_lesion", "wm", "cortical"], 3, ("disputed", "disputed", 1 / 3)),
        # missing votes count as no vote but the panel stays 3
        (["wm", "wm"], 3, ("wm", "agreed", 2 / 3)),
        (["wm"], 3, ("disputed", "disputed", 1 / 3)),
        ([], 3, ("disputed", "disputed", 0.0)),
        # two raters: both must agree
        (["wm", "wm"], 2, ("wm", "agreed", 1.0)),
        (["wm", "mixed"], 2, ("disputed", "disputed", 0.5)),
        (["not_lesion", "not_lesion"], 2, ("rejected", "agreed", 1.0)),
        (["wm"], 2, ("disputed", "disputed", 0.5)),
        # four raters: 3 of 4; 2-2 is a tie
        (["wm", "wm", "wm", "mixed"], 4, ("wm", "agreed", 0.75)),
        (["wm", "wm", "mixed", "mixed"], 4, ("disputed", "disputed", 0.5)),
        (["not_lesion", "not_lesion", "wm", "wm"], 4, ("disputed", "disputed", 0.5)),
        (["not_lesion"] * 3 + ["wm"], 4, ("rejected", "agreed", 0.75)),
        (["wm", "wm", "cortical"], 4, ("disputed", "disputed", 0.5)),
        # five raters: 3 of 5
        (["cortical"] * 3 + ["wm", "mixed"], 5, ("cortical", "agreed", 0.6)),
    ],
)
def test_majority_rule(votes, n, expected):
    cls, state, agreement = majority(votes, n)
    assert (cls, state) == expected[:2]
    assert agreement == pytest.approx(expected[2])


def test_majority_needs_two_raters_and_valid_votes():
    with pytest.raises(ParameterError, match="at least 2"):
        majority(["wm"], 1)
    with pytest.raises(ParameterError, match="panel"):
        majority(["wm"] * 3, 2)
    with pytest.raises(ParameterError, match="unknown"):
        majority(["grey", "wm"], 2)


def _long(rows):
    return pd.DataFrame(rows, columns=["rater", "lesion_id", "candidate_source", "vote"])


def test_compute_consensus_table():
    votes = _long(
        [
            ("a", 1, "drawn", "wm"), ("b", 1, "drawn", "wm"), ("c", 1, "drawn", "mixed"),
            ("a", 2, "drawn", "not_lesion"), ("b", 2, "drawn", "not_lesion"),
            ("a", 3, "drawn", "wm"), ("b", 3, "drawn", "cortical"), ("c", 3, "drawn", "mixed"),
            ("a", 9, "proposed", "cortical"), ("b", 9, "proposed", "cortical"), ("c", 9, "proposed", "cortical"),
            ("zed", 1, "drawn", "cortical"),  # not in the panel: ignored
        ]
    )
    table = compute_consensus(votes, ["a", "b", "c"], candidates=[("drawn", 4)])
    assert list(table.columns) == LESION_COLUMNS
    rec = {(r.candidate_source, r.lesion_id): r for r in table.itertuples(index=False)}
    got = {k: (getattr(v, "_2"), v.consensus, v.votes, v.n_votes) for k, v in rec.items()}
    assert got == {
        ("drawn", 1): ("wm", "agreed", "wm:2;mixed:1", 3),
        ("drawn", 2): ("rejected", "agreed", "not_lesion:2", 2),
        ("drawn", 3): ("disputed", "disputed", "wm:1;cortical:1;mixed:1", 3),
        ("drawn", 4): ("disputed", "disputed", "", 0),
        ("proposed", 9): ("cortical", "agreed", "cortical:3", 3),
    }
    assert set(table["n_raters"]) == {3}


def _vote_all(subject, table):
    for rater, votes in table.items():
        for lid, vote in votes.items():
            if vote:
                record_vote(subject, rater, lid, vote)


def test_run_consensus_writes_lesions_tsv_and_keeps_resolutions(tmp_path):
    subject = make_subject(tmp_path, n_lesions=5)
    _vote_all(
        subject,
        {
            "alice": {1: "wm", 2: "cortical", 3: "not_lesion", 4: "wm", 5: None},
            "bob": {1: "wm", 2: "mixed", 3: "not_lesion", 4: "mixed", 5: None},
            "carol": {1: "cortical", 2: "wm", 3: "wm", 4: None, 5: None},
        },
    )
    table = run_consensus(subject)
    assert subject.lesions_tsv.exists()
    back = read_lesion_classes(subject)
    assert list(back["lesion_id"]) == [1, 2, 3, 4, 5]
    assert list(back["class"]) == ["wm", "disputed", "rejected", "disputed", "disputed"]
    assert list(back["flags"]) == ["", "", "", "", "unvoted"]
    assert table["n_raters"].tolist() == [3] * 5

    with pytest.raises(ParameterError, match="agreed"):
        resolve(subject, 1, "mixed", "meeting")
    with pytest.raises(ParameterError, match="reason"):
        resolve(subject, 2, "mixed", "  ")
    with pytest.raises(ParameterError, match="no drawn candidate 42"):
        resolve(subject, 42, "mixed", "x")
    resolve(subject, 2, "mixed", "boundary on CSF-nulled MPRAGE crosses the lesion")
    r = read_lesion_classes(subject).set_index("lesion_id")
    assert r.loc[2, "class"] == "mixed" and r.loc[2, "consensus"] == "resolved"
    assert r.loc[2, "agreement"] == pytest.approx(1 / 3, abs=5e-5)  # written with 4 decimals

    # a new vote that does not change the dispute keeps the resolution; one that makes a majority wins
    record_vote(subject, "carol", 4, "cortical")
    resolve(subject, 4, "wm", "periventricular")
    run_consensus(subject)
    r = read_lesion_classes(subject).set_index("lesion_id")
    assert (r.loc[2, "class"], r.loc[2, "consensus"]) == ("mixed", "resolved")
    assert r.loc[2, "resolution_reason"] == "boundary on CSF-nulled MPRAGE crosses the lesion"
    assert (r.loc[4, "class"], r.loc[4, "consensus"]) == ("wm", "resolved")
    record_vote(subject, "carol", 2, "mixed")
    run_consensus(subject)
    r = read_lesion_classes(subject).set_index("lesion_id")
    assert (r.loc[2, "class"], r.loc[2, "consensus"], r.loc[2, "resolution_reason"]) == ("mixed", "agreed", "")


def test_extra_columns_of_lesions_tsv_are_kept(tmp_path):
    subject = make_subject(tmp_path, n_lesions=2)
    subject.lesions_tsv.parent.mkdir(parents=True, exist_ok=True)
    subject.lesions_tsv.write_text("lesion_id\tclass\tage_months\n1\twm\t12\n2\twm\t3\n")
    _vote_all(subject, {"a": {1: "wm", 2: "mixed"}, "b": {1: "wm", 2: "mixed"}})
    run_consensus(subject)
    r = read_lesion_classes(subject).set_index("lesion_id")
    assert list(r["age_months"]) == [12, 3]
    assert list(r["class"]) == ["wm", "mixed"]


def test_two_and_four_rater_panels_from_files(tmp_path):
    subject = make_subject(tmp_path, n_lesions=3)
    _vote_all(subject, {"a": {1: "wm", 2: "wm", 3: "wm"}, "b": {1: "wm", 2: "mixed", 3: None}})
    assert list(run_consensus(subject)["class"]) == ["wm", "disputed", "disputed"]
    _vote_all(subject, {"c": {1: "mixed", 2: "wm", 3: "wm"}, "d": {1: "mixed", 2: "wm", 3: "wm"}})
    table = run_consensus(subject)
    assert list(table["n_raters"]) == [4] * 3
    assert list(table["class"]) == ["disputed", "wm", "wm"]
    # an explicit panel overrides the files found
    assert list(run_consensus(subject, raters=["a", "b"], write=False)["class"]) == ["wm", "disputed", "disputed"]


def test_consensus_errors(tmp_path):
    subject = make_subject(tmp_path)
    record_vote(subject, "solo", 1, "wm")
    with pytest.raises(ParameterError, match="at least 2 raters"):
        run_consensus(subject)
    with pytest.raises(InputFileError, match="run the consensus"):
        resolve(subject, 1, "wm", "x")
    subject.lesions_tsv.write_text("lesion_id\tclass\n1\tgrey\n")
    with pytest.raises(InputFileError, match="unknown class"):
        read_lesion_classes(subject)
    subject.lesions_tsv.write_text("id\tclass\n1\twm\n")
    with pytest.raises(InputFileError, match="lesion_id"):
        read_lesion_classes(subject)


def test_read_lesion_classes_empty_without_file(tmp_path):
    subject = make_subject(tmp_path)
    table = read_lesion_classes(subject)
    assert len(table) == 0 and {"lesion_id", "class", "consensus", "votes"} <= set(table.columns)
