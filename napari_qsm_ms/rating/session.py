"""A blinded rating session: one rater, one subject, the candidates one at a time (pure, no Qt).

Blinding is a property of the session, not of the GUI:

* a rater sees candidates by an anonymous index in THEIR shuffled order ("candidate 3 of 17"),
  never by lesion id or by candidate source;
* the session reads and writes only the rater's own votes file, so it has no way to reach other
  raters' votes or the consensus;
* it knows nothing about QSM.

The order is shuffled per rater and subject, reproducibly: the seed comes from a SHA-256 hash of
``"<subject label>/<rater>"`` (not Python's salted ``hash()``), so a rater who stops and resumes sees
the same order, and two raters see different orders.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..io.layout import SubjectFiles
from ..roi.lesions import group_label_voxels
from .votes import CANDIDATE_SOURCES, check_rater, check_source, check_vote, read_votes, record_vote


@dataclass(frozen=True)
class Candidate:
    """A lesion candidate (internal: carries the id, never shown to a rater).

    Attributes
    ----------
    lesion_id : int
        Label value in the label map of ``source``.
    source : str
        ``drawn`` or ``proposed``.
    center_vox : tuple of float
        Centre of mass (voxel index) in the array the candidate was found in.
    bbox : tuple of (int, int)
        Per-axis ``(start, stop)`` voxel range.
    """

    lesion_id: int
    source: str = "drawn"
    center_vox: tuple[float, ...] = ()
    bbox: tuple[tuple[int, int], ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        return (self.source, int(self.lesion_id))


@dataclass(frozen=True)
class CandidateView:
    """What a rater may see of the current candidate.

    Attributes
    ----------
    index : int
        1-based position in this rater's shuffled order (anonymous: not the lesion id).
    total : int
        Number of candidates.
    center_vox : tuple of float
        Where to look (voxel index of the label array the candidates came from).
    bbox : tuple of (int, int)
        Voxel range per axis, for zooming.
    vote : str or None
        This rater's own earlier vote on it, if any.
    comment : str
        This rater's own earlier comment.
    """

    index: int
    total: int
    center_vox: tuple[float, ...]
    bbox: tuple[tuple[int, int], ...]
    vote: str | None
    comment: str

    @property
    def label(self) -> str:
        return f"candidate {self.index} of {self.total}"


def candidates_from_labels(labels: np.ndarray, source: str = "drawn") -> list[Candidate]:
    """One :class:`Candidate` per positive label value in ``labels``, sorted by id.

    Parameters
    ----------
    labels : ndarray of int
        Label map (0 = background).
    source : str
        ``drawn`` or ``proposed``.
    """
    check_source(source)
    groups = group_label_voxels(labels)  # from the labelled voxels only: one pass over the volume
    if groups is None:
        return []
    centers = groups.centroids()
    lows, highs = groups.bounding_boxes()
    return [
        Candidate(int(lid), source, tuple(float(c) for c in center), tuple(zip(map(int, lo), map(int, hi))))
        for lid, center, lo, hi in zip(groups.ids, centers, lows, highs)
    ]


def rater_seed(subject_label: str, rater: str) -> int:
    """A reproducible 64-bit seed from the subject label and the rater name (SHA-256)."""
    digest = hashlib.sha256(f"{subject_label}/{rater}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


class RaterSession:
    """One rater working through one subject's candidates.

    Parameters
    ----------
    subject : SubjectFiles
    rater : str
        Letters and digits only.
    candidates : list of Candidate
        Every candidate to rate (drawn and proposed).
    seed : int, optional
        Shuffling seed; defaults to :func:`rater_seed` of the subject label and rater.
    labels : dict, optional
        ``{source: label array}`` in the frame of the candidates' ``center_vox``, used by
        :meth:`current_mask` to give the current candidate as an id-free binary mask.

    Notes
    -----
    Resuming is reading the rater's own votes file: the session starts at the first candidate (in
    the rater's order) without a vote. Skipped candidates are not written and stay unrated.
    """

    def __init__(
        self,
        subject: SubjectFiles,
        rater: str,
        candidates: list[Candidate],
        seed: int | None = None,
        labels: dict[str, np.ndarray] | None = None,
    ) -> None:
        self._subject = subject
        self._rater = check_rater(rater)
        keys = [c.key for c in candidates]
        if len(set(keys)) != len(keys):
            raise ValueError("a candidate is listed twice")
        ordered = sorted(candidates, key=lambda c: (CANDIDATE_SOURCES.index(c.source), c.lesion_id))
        rng = np.random.default_rng(rater_seed(subject.label, self._rater) if seed is None else seed)
        self.__order = [ordered[i] for i in rng.permutation(len(ordered))]
        self.__labels = dict(labels or {})
        self.__votes: dict[tuple[str, int], tuple[str, str]] = {}
        own = read_votes(subject, self._rater)
        for row in own.itertuples(index=False):
            self.__votes[(row.candidate_source, int(row.lesion_id))] = (row.vote, row.comment)
        self._position = self._first_unrated(0)

    # --- what a rater may see ------------------------------------------------------------------
    @property
    def rater(self) -> str:
        return self._rater

    @property
    def subject_label(self) -> str:
        return self._subject.label

    @property
    def total(self) -> int:
        return len(self.__order)

    @property
    def position(self) -> int:
        """0-based position of the current candidate in this rater's order."""
        return self._position

    @property
    def n_rated(self) -> int:
        """How many candidates this rater has voted on."""
        return sum(1 for c in self.__order if c.key in self.__votes)

    @property
    def progress(self) -> float:
        """Fraction of candidates voted on (1.0 when there are none)."""
        return 1.0 if not self.total else self.n_rated / self.total

    @property
    def finished(self) -> bool:
        return self.n_rated == self.total

    @property
    def current(self) -> CandidateView | None:
        """The current candidate as the rater may see it (None if there are no candidates)."""
        if not self.total:
            return None
        cand = self.__order[self._position]
        vote, comment = self.__votes.get(cand.key, (None, ""))
        return CandidateView(self._position + 1, self.total, cand.center_vox, cand.bbox, vote, comment)

    def current_mask(self) -> np.ndarray | None:
        """The current candidate as a binary mask (no id), if label arrays were given."""
        if not self.total:
            return None
        cand = self.__order[self._position]
        labels = self.__labels.get(cand.source)
        if labels is None:
            return None
        return np.asarray(labels) == cand.lesion_id

    def rated_flags(self) -> list[bool]:
        """For each position in this rater's order, whether the rater has voted on it."""
        return [c.key in self.__votes for c in self.__order]

    # --- navigation ------------------------------------------------------------------------------
    def go_to(self, position: int) -> None:
        if not 0 <= position < max(self.total, 1):
            raise IndexError(f"position {position} outside 0..{self.total - 1}")
        self._position = int(position)

    def next(self) -> None:
        """Go to the next candidate in order (stays at the last)."""
        self._position = min(self._position + 1, max(self.total - 1, 0))

    def back(self) -> None:
        """Go to the previous candidate (stays at the first)."""
        self._position = max(self._position - 1, 0)

    def skip(self) -> None:
        """Leave the current candidate unrated and go to the next unrated one after it."""
        self._position = self._next_unrated_after(self._position, include_current=False)

    def vote(self, vote: str, comment: str = "") -> None:
        """Vote on the current candidate (written to the rater's file at once), then advance.

        Advances to the next unrated candidate after the current one (wrapping around); if every
        candidate is rated it moves to the next candidate in order.
        """
        if not self.total:
            raise IndexError("no candidates to vote on")
        check_vote(vote)
        cand = self.__order[self._position]
        record_vote(
            self._subject, self._rater, cand.lesion_id, vote, comment=comment, candidate_source=cand.source
        )
        self.__votes[cand.key] = (vote, " ".join(str(comment or "").split()).replace(";", ","))
        if self.finished:
            self.next()
        else:
            self._position = self._next_unrated_after(self._position, include_current=False)

    # --- internals -----------------------------------------------------------------------------
    def _first_unrated(self, start: int) -> int:
        for i in range(start, self.total):
            if self.__order[i].key not in self.__votes:
                return i
        return 0

    def _next_unrated_after(self, position: int, include_current: bool) -> int:
        n = self.total
        if not n:
            return 0
        offsets = range(0 if include_current else 1, n + (1 if include_current else 0))
        for k in offsets:
            i = (position + k) % n
            if self.__order[i].key not in self.__votes:
                return i
        return min(position + 1, n - 1)

    def __repr__(self) -> str:  # no ids, no votes of anyone
        return f"RaterSession(subject={self._subject.label!r}, rater={self._rater!r}, {self.n_rated}/{self.total} rated)"
