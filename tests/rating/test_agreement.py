"""Kappas against statsmodels on known tables; confusion tables; agreement.tsv."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.rating.agreement import (
    agreement,
    category_counts,
    cohen_kappa,
    confusion_table,
    fleiss_kappa,
    ratings_matrix,
    write_agreement,
)
from napari_qsm_ms.rating.votes import VOTE_CLASSES, record_vote

from ._helpers import make_subject

# Wikipedia's worked example: 10 items, 14 raters, 5 categories; kappa = 0.210.
WIKIPEDIA_TABLE = np.array(
    [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
)
# Fleiss (1971): 30 patients, 6 psychiatrists, 5 diagnoses (ratings per patient); kappa = 0.430.
FLEISS_1971_DIAGNOSES = np.array(
    [
        [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5], [2, 2, 2, 4, 4, 4],
        [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4], [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5],
        [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4], [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5],
        [3, 3, 3, 3, 3, 5], [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
        [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4], [1, 4, 4, 4, 4, 5],
        [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4], [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
    ]
)


def test_fleiss_kappa_equals_statsmodels_and_the_published_values():
    assert fleiss_kappa(WIKIPEDIA_TABLE) == pytest.approx(sm_fleiss_kappa(WIKIPEDIA_TABLE, method="fleiss"), abs=1e-12)
    assert fleiss_kappa(WIKIPEDIA_TABLE) == pytest.approx(0.210, abs=5e-4)
    counts, _ = aggregate_raters(FLEISS_1971_DIAGNOSES)
    assert fleiss_kappa(counts) == pytest.approx(sm_fleiss_kappa(counts, method="fleiss"), abs=1e-12)
    assert fleiss_kappa(counts) == pytest.approx(0.430, abs=5e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fleiss_kappa_equals_statsmodels_on_vote_tables(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, 40)
    ratings = np.where(rng.random((40, 3)) < 0.7, truth[:, None], rng.integers(0, 4, (40, 3)))
    table, _ = aggregate_raters(ratings, n_cat=4)
    assert fleiss_kappa(table) == pytest.approx(sm_fleiss_kappa(table, method="fleiss"), abs=1e-12)


# Cohen's kappa, known 2x2 (Wikipedia example: 20/5/10/15 -> 0.4) and a 4x4 table
COHEN_2X2 = np.array([[20, 5], [10, 15]])
COHEN_4X4 = np.array([[12, 2, 1, 0], [3, 8, 2, 1], [0, 2, 6, 1], [1, 0, 1, 9]])


def test_cohen_kappa_equals_statsmodels():
    assert cohen_kappa(COHEN_2X2) == pytest.approx(0.4, abs=1e-12)
    for table in (COHEN_2X2, COHEN_4X4):
        assert cohen_kappa(table) == pytest.approx(sm_cohens_kappa(table).kappa, abs=1e-12)


def test_degenerate_kappas_are_nan():
    assert np.isnan(cohen_kappa(np.zeros((4, 4))))
    assert np.isnan(cohen_kappa(np.diag([5, 0, 0, 0])))  # one category only: chance agreement 1
    assert np.isnan(fleiss_kappa(np.zeros((0, 4))))
    with pytest.raises(ValueError):
        fleiss_kappa(np.array([[3, 0], [1, 1]]))


def _votes_long(matrix, raters, source="drawn"):
    rows = []
    for i, row in enumerate(matrix, start=1):
        for r, v in zip(raters, row):
            if v is not None:
                rows.append({"rater": r, "lesion_id": i, "candidate_source": source, "vote": v})
    return pd.DataFrame(rows)


def test_report_on_vote_tables_matches_statsmodels():
    rng = np.random.default_rng(7)
    raters = ["a", "b", "c"]
    truth = rng.integers(0, 4, 30)
    codes = np.where(rng.random((30, 3)) < 0.65, truth[:, None], rng.integers(0, 4, (30, 3)))
    matrix = [[VOTE_CLASSES[k] for k in row] for row in codes]
    matrix[0][2] = None  # one skip: left out of Fleiss, and of the pairs with c
    ratings = ratings_matrix(_votes_long(matrix, raters), raters)
    rep = agreement(ratings)
    full, _ = aggregate_raters(codes[1:], n_cat=4)
    assert rep.fleiss_n_items == 29
    assert rep.fleiss_kappa == pytest.approx(sm_fleiss_kappa(full, method="fleiss"), abs=1e-12)
    for a, b, kappa, n in rep.cohen:
        ia, ib = raters.index(a), raters.index(b)
        keep = [i for i in range(30) if matrix[i][ia] is not None and matrix[i][ib] is not None]
        table = np.zeros((4, 4), int)
        for i in keep:
            table[codes[i, ia], codes[i, ib]] += 1
        assert n == len(keep)
        assert kappa == pytest.approx(sm_cohens_kappa(table).kappa, abs=1e-12)
        assert (rep.confusion[(a, b)].to_numpy() == table).all()
    assert rep.class_counts.loc["a"].sum() == 30 and rep.class_counts.loc["c"].sum() == 29
    assert list(rep.class_counts.columns) == list(VOTE_CLASSES)
    assert category_counts(ratings, raters).sum() == 29 * 3


def test_confusion_table_orientation():
    ratings = ratings_matrix(_votes_long([["wm", "mixed"], ["wm", "wm"]], ["x", "y"]), ["x", "y"])
    t = confusion_table(ratings, "x", "y")
    assert t.loc["wm", "mixed"] == 1 and t.loc["wm", "wm"] == 1 and t.to_numpy().sum() == 2


def test_write_agreement_pools_subjects(tmp_path):
    s1 = make_subject(tmp_path, "01")
    s2 = make_subject(tmp_path, "02")
    plan = {
        s1: {"a": ["wm", "wm", "mixed"], "b": ["wm", "cortical", "mixed"], "c": ["wm", "wm", "not_lesion"]},
        s2: {"a": ["cortical", "wm"], "b": ["cortical", "wm"], "c": ["mixed", "wm"]},
    }
    for subject, by_rater in plan.items():
        for rater, votes in by_rater.items():
            for lid, v in enumerate(votes, start=1):
                record_vote(subject, rater, lid, v)
    table, rep = write_agreement(StudyFiles.at(s1.study))
    written = pd.read_csv(StudyFiles.at(s1.study).agreement_tsv, sep="\t")
    assert list(written.columns) == ["measure", "raters", "value", "n_items", "subjects"]
    assert list(written["measure"]) == ["fleiss_kappa", "cohen_kappa", "cohen_kappa", "cohen_kappa"]
    assert list(written["raters"]) == ["a;b;c", "a;b", "a;c", "b;c"]
    assert (written["n_items"] == 5).all()
    assert written["subjects"].iloc[0] == "01;02"
    codes = {v: k for k, v in enumerate(VOTE_CLASSES)}
    items = [[codes[plan[s][r][i]] for r in "abc"] for s in plan for i in range(len(plan[s]["a"]))]
    counts, _ = aggregate_raters(np.array(items), n_cat=4)
    assert written["value"].iloc[0] == pytest.approx(sm_fleiss_kappa(counts, method="fleiss"), abs=1e-6)
