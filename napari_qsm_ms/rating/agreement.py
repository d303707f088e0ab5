"""Inter-rater agreement: Fleiss' kappa, pairwise Cohen's kappa, confusion tables, class counts.

Items are candidates (``subject, candidate_source, lesion_id``); categories are the four votes
(:data:`~napari_qsm_ms.rating.votes.VOTE_CLASSES`). Fleiss' kappa needs every item rated by every
rater: it is computed over the items that all raters of the panel voted on (``n_items`` says how
many). Cohen's kappa of a pair uses the items both raters voted on. Skipped items are left out, not
counted as a category.

References
----------
Fleiss JL. Measuring nominal scale agreement among many raters. Psychol Bull 1971;76:378-382.
Cohen J. A coefficient of agreement for nominal scales. Educ Psychol Meas 1960;20:37-46.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..io.atomic import atomic_write_tsv
from ..io.layout import StudyFiles, SubjectFiles
from .votes import VOTE_CLASSES, list_raters, read_all_votes

AGREEMENT_COLUMNS = ["measure", "raters", "value", "n_items", "subjects"]


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an items x categories table of counts.

    Parameters
    ----------
    counts : ndarray, shape (n_items, n_categories)
        ``counts[i, j]`` raters who put item ``i`` in category ``j``; every row sums to the same
        number of raters ``n >= 2``.

    Returns
    -------
    float
        Kappa; NaN when there are no items or chance agreement is 1 (one category only).
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        return float("nan")
    n = counts.sum(axis=1)
    if not np.allclose(n, n[0]) or n[0] < 2:
        raise ValueError("every item needs the same number (>= 2) of ratings")
    n = n[0]
    n_items = counts.shape[0]
    p_j = counts.sum(axis=0) / (n_items * n)
    p_i = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_i.mean()
    p_e = (p_j**2).sum()
    if np.isclose(p_e, 1.0):
        return float("nan")
    return float((p_bar - p_e) / (1.0 - p_e))


def cohen_kappa(table: np.ndarray) -> float:
    """Cohen's kappa from a square contingency table (rows: rater A, columns: rater B).

    Returns NaN when the table is empty or chance agreement is 1.
    """
    table = np.asarray(table, dtype=float)
    total = table.sum()
    if table.ndim != 2 or table.shape[0] != table.shape[1]:
        raise ValueError("a square table is needed")
    if total == 0:
        return float("nan")
    p_o = np.trace(table) / total
    p_e = float((table.sum(axis=1) * table.sum(axis=0)).sum() / total**2)
    if np.isclose(p_e, 1.0):
        return float("nan")
    return float((p_o - p_e) / (1.0 - p_e))


def ratings_matrix(votes: pd.DataFrame, raters: Sequence[str] | None = None) -> pd.DataFrame:
    """Items x raters table of votes (missing vote = None).

    Parameters
    ----------
    votes : DataFrame
        Long table with ``rater, lesion_id, candidate_source, vote`` and optionally ``subject``.
    raters : sequence of str, optional
        Column order (default: sorted raters present).
    """
    frame = votes.copy()
    if "subject" not in frame.columns:
        frame["subject"] = ""
    raters = sorted(frame["rater"].unique()) if raters is None else list(raters)
    if not len(frame):
        idx = pd.MultiIndex.from_tuples([], names=["subject", "candidate_source", "lesion_id"])
        return pd.DataFrame(index=idx, columns=raters, dtype=object)
    wide = frame.pivot_table(
        index=["subject", "candidate_source", "lesion_id"], columns="rater", values="vote", aggfunc="first"
    )
    wide = wide.reindex(columns=raters)
    return wide.astype(object).where(wide.notna(), None)


def confusion_table(ratings: pd.DataFrame, rater_a: str, rater_b: str) -> pd.DataFrame:
    """Votes of ``rater_a`` (rows) against ``rater_b`` (columns) on the items both voted on."""
    both = ratings[[rater_a, rater_b]].dropna()
    table = pd.DataFrame(0, index=pd.Index(VOTE_CLASSES, name=rater_a), columns=pd.Index(VOTE_CLASSES, name=rater_b))
    for a, b in zip(both[rater_a], both[rater_b]):
        table.loc[a, b] += 1
    return table


def category_counts(ratings: pd.DataFrame, raters: Sequence[str]) -> np.ndarray:
    """Items x categories counts over the items every rater in ``raters`` voted on."""
    complete = ratings[list(raters)].dropna()
    out = np.zeros((len(complete), len(VOTE_CLASSES)), dtype=int)
    col = {c: j for j, c in enumerate(VOTE_CLASSES)}
    for i, row in enumerate(complete.itertuples(index=False)):
        for vote in row:
            out[i, col[vote]] += 1
    return out


@dataclass
class AgreementReport:
    """Everything the consensus dock and ``qsm-ms consensus`` show about agreement."""

    raters: list[str]
    fleiss_kappa: float
    fleiss_n_items: int
    cohen: list[tuple[str, str, float, int]] = field(default_factory=list)
    confusion: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)
    class_counts: pd.DataFrame = field(default_factory=pd.DataFrame)

    def table(self, subjects: str = "") -> pd.DataFrame:
        """Rows ``measure, raters, value, n_items, subjects`` (agreement.tsv)."""
        rows = [
            {
                "measure": "fleiss_kappa",
                "raters": ";".join(self.raters),
                "value": self.fleiss_kappa,
                "n_items": self.fleiss_n_items,
                "subjects": subjects,
            }
        ]
        for a, b, kappa, n in self.cohen:
            rows.append({"measure": "cohen_kappa", "raters": f"{a};{b}", "value": kappa, "n_items": n, "subjects": subjects})
        frame = pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
        frame["value"] = frame["value"].astype(float).round(6)
        return frame


def agreement(ratings: pd.DataFrame, raters: Sequence[str] | None = None) -> AgreementReport:
    """Fleiss' kappa, pairwise Cohen's kappa, confusion tables and per-rater class counts.

    Parameters
    ----------
    ratings : DataFrame
        Items x raters votes (:func:`ratings_matrix`).
    raters : sequence of str, optional
        The panel (default: the columns of ``ratings``).
    """
    raters = list(ratings.columns) if raters is None else list(raters)
    if len(raters) >= 2:
        counts = category_counts(ratings, raters)
        fk = fleiss_kappa(counts) if len(counts) else float("nan")
        n_fk = len(counts)
    else:
        fk, n_fk = float("nan"), 0
    cohen, confusion = [], {}
    for a, b in itertools.combinations(raters, 2):
        table = confusion_table(ratings, a, b)
        confusion[(a, b)] = table
        cohen.append((a, b, cohen_kappa(table.to_numpy()), int(table.to_numpy().sum())))
    class_counts = pd.DataFrame(
        {r: [int((ratings[r] == c).sum()) for c in VOTE_CLASSES] for r in raters}, index=pd.Index(VOTE_CLASSES, name="vote")
    ).T
    class_counts.index.name = "rater"
    return AgreementReport(raters, fk, n_fk, cohen, confusion, class_counts)


def collect_votes(subjects: Sequence[SubjectFiles]) -> pd.DataFrame:
    """Every rater's votes on the given subjects, in one long table with a ``subject`` column."""
    frames = []
    for subject in subjects:
        v = read_all_votes(subject)
        if len(v):
            frames.append(v.assign(subject=subject.label))
    if not frames:
        return pd.DataFrame(columns=["subject", "rater", "lesion_id", "candidate_source", "vote"])
    return pd.concat(frames, ignore_index=True)


def subject_agreement(subject: SubjectFiles, raters: Sequence[str] | None = None) -> AgreementReport:
    """Agreement over one subject's candidates."""
    raters = list_raters(subject) if raters is None else list(raters)
    votes = read_all_votes(subject, raters).assign(subject=subject.label)
    return agreement(ratings_matrix(votes, raters), raters)


def write_agreement(
    study: StudyFiles | str, subjects: Sequence[str] | None = None, raters: Sequence[str] | None = None
) -> tuple[pd.DataFrame, AgreementReport]:
    """Pool the votes of the study (or of ``subjects``) and write ``derivatives/qsm-ms/agreement.tsv``.

    Returns
    -------
    table : DataFrame
        What was written (``measure, raters, value, n_items, subjects``).
    report : AgreementReport
    """
    study = study if isinstance(study, StudyFiles) else StudyFiles.at(study)
    subs = study.subjects(list(subjects) if subjects else None)
    votes = collect_votes(subs)
    panel = sorted(votes["rater"].unique()) if raters is None else list(raters)
    report = agreement(ratings_matrix(votes, panel), panel)
    label = ";".join(s.label for s in subs if s.label in set(votes["subject"]))
    table = report.table(subjects=label)
    atomic_write_tsv(study.agreement_tsv, table)
    return table, report
