"""RaterSession: reproducible per-rater order, navigation, resume, and blinding of its API."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from napari_qsm_ms.rating.session import RaterSession, candidates_from_labels, rater_seed
from napari_qsm_ms.rating.votes import read_votes, record_vote

from ._helpers import blob_labels, make_subject


def _session(subject, rater, n=5, **kw):
    labels = blob_labels(n=n)
    return RaterSession(subject, rater, candidates_from_labels(labels), labels={"drawn": labels}, **kw)


def _order(session):
    """Lesion ids in the session's order, found through the id-free masks and the label map."""
    labels = blob_labels(n=session.total)
    ids = []
    for pos in range(session.total):
        session.go_to(pos)
        ids.append(int(np.unique(labels[session.current_mask()])[0]))
    return ids


def test_candidates_from_labels_centres_and_boxes():
    labels = np.zeros((10, 10, 10), dtype=np.int32)
    labels[2:4, 5:8, 1:2] = 7
    labels[6, 6, 6] = 2
    cands = candidates_from_labels(labels, "proposed")
    assert [c.lesion_id for c in cands] == [2, 7]
    assert cands[1].center_vox == pytest.approx((2.5, 6.0, 1.0))
    assert cands[1].bbox == ((2, 4), (5, 8), (1, 2))
    assert all(c.source == "proposed" for c in cands)
    assert candidates_from_labels(np.zeros((3, 3, 3), int)) == []


def test_order_is_shuffled_per_rater_and_reproducible(tmp_path):
    subject = make_subject(tmp_path, n_lesions=10)
    a1 = _order(_session(subject, "alice", n=10))
    a2 = _order(_session(subject, "alice", n=10))
    b = _order(_session(subject, "bob", n=10))
    assert a1 == a2
    assert sorted(a1) == list(range(1, 11))
    assert a1 != b
    assert a1 != sorted(a1)
    # the seed is a stable hash, not Python's salted hash(): fixed value for a fixed input
    assert rater_seed("01", "alice") == int.from_bytes(
        __import__("hashlib").sha256(b"01/alice").digest()[:8], "little"
    )


def test_vote_navigation_skip_and_progress(tmp_path):
    subject = make_subject(tmp_path)
    s = _session(subject, "carol")
    assert (s.total, s.n_rated, s.position, s.progress) == (5, 0, 0, 0.0)
    assert s.current.label == "candidate 1 of 5"
    s.vote("wm", "first")
    assert s.position == 1 and s.n_rated == 1
    s.skip()
    assert s.position == 2 and s.n_rated == 1
    s.vote("mixed")
    s.back()
    s.back()
    assert s.position == 1 and s.current.vote is None
    s.back()
    assert s.current.vote == "wm" and s.current.comment == "first"
    s.back()
    assert s.position == 0
    s.go_to(4)
    s.next()
    assert s.position == 4
    s.vote("cortical")  # wraps around to the skipped candidate
    assert s.position == 1
    s.vote("not_lesion")
    assert s.position == 3
    s.vote("wm")
    assert s.finished and s.progress == 1.0
    assert len(read_votes(subject, "carol")) == 5


def test_resume_at_first_unrated(tmp_path):
    subject = make_subject(tmp_path)
    s = _session(subject, "dan")
    order = _order(s)
    s.go_to(0)
    s.vote("wm")
    s.vote("wm")
    s.skip()
    s.vote("mixed")
    resumed = _session(subject, "dan")
    assert resumed.n_rated == 3
    assert resumed.position == 2
    assert _order(resumed) == order


def test_session_api_is_blind(tmp_path):
    """No public attribute or view of a session carries lesion ids or other raters' votes."""
    subject = make_subject(tmp_path, n_lesions=5)
    for lid in range(1, 6):
        record_vote(subject, "other", lid, "cortical", comment=f"SECRET{lid}")
    s = _session(subject, "eve")
    public = {name: getattr(s, name) for name in dir(s) if not name.startswith("_") and not callable(getattr(s, name))}
    assert set(public) == {"rater", "subject_label", "total", "position", "n_rated", "progress", "finished", "current"}
    seen = repr(s) + repr(public) + repr(s.rated_flags())
    assert "SECRET" not in seen and "cortical" not in seen
    assert s.n_rated == 0 and s.current.vote is None
    view = s.current
    assert set(vars(view)) == {"index", "total", "center_vox", "bbox", "vote", "comment"}
    mask = s.current_mask()
    assert mask.dtype == bool  # the candidate is shown as a binary mask, never by its id


def test_session_reads_only_the_raters_own_file(tmp_path):
    """Audit every file opened while a session runs: no other rater's votes, no consensus."""
    subject = make_subject(tmp_path)
    record_vote(subject, "other", 1, "wm")
    subject.lesions_tsv.write_text("lesion_id\tclass\n1\twm\n")
    opened: list[str] = []
    active = [True]

    def hook(event, args):
        if active[0] and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(str(args[0]))

    sys.addaudithook(hook)
    try:
        s = _session(subject, "frank")
        s.vote("wm")
        s.skip()
        s.vote("mixed")
        _ = s.current, s.progress, s.current_mask()
    finally:
        active[0] = False
    touched = [p for p in opened if "sub-01" in p and not os.path.isdir(p)]  # files, not the folder fsync
    assert touched, "the session must read/write its own votes file"
    assert not any("rater-other" in p for p in touched)
    assert not any(p.endswith("_lesions.tsv") for p in touched)
    assert all("rater-frank" in p for p in touched)


def test_duplicate_candidates_refused(tmp_path):
    subject = make_subject(tmp_path)
    cands = candidates_from_labels(blob_labels(n=2))
    with pytest.raises(ValueError, match="twice"):
        RaterSession(subject, "x", cands + cands[:1])


def test_empty_session(tmp_path):
    subject = make_subject(tmp_path)
    s = RaterSession(subject, "x", [])
    assert s.current is None and s.finished and s.progress == 1.0
    with pytest.raises(IndexError):
        s.vote("wm")


def test_proposed_candidates_are_voted_with_their_source(tmp_path):
    from napari_qsm_ms.rating.consensus import run_consensus

    subject = make_subject(tmp_path, n_lesions=3)
    drawn = blob_labels(n=3)
    proposed = np.zeros_like(drawn)
    proposed[20:22, 20:22, 3:5] = 4
    proposed[20:22, 2:4, 8:10] = 5
    labels = {"drawn": drawn, "proposed": proposed}
    cands = candidates_from_labels(drawn, "drawn") + candidates_from_labels(proposed, "proposed")
    for rater in ("a", "b"):
        s = RaterSession(subject, rater, cands, labels=labels)
        assert s.total == 5
        while not s.finished:
            mask = s.current_mask()
            source = "proposed" if proposed[mask].any() else "drawn"
            s.vote("not_lesion" if source == "proposed" else "wm")
    votes = read_votes(subject, "a").set_index("lesion_id")["candidate_source"].to_dict()
    assert votes == {1: "drawn", 2: "drawn", 3: "drawn", 4: "proposed", 5: "proposed"}
    table = run_consensus(subject, write=False)
    got = set(zip(table["candidate_source"], table["lesion_id"]))
    assert set(got) == {("drawn", 1), ("drawn", 2), ("drawn", 3), ("proposed", 4), ("proposed", 5)}
    assert list(table["class"]) == ["wm", "wm", "wm", "rejected", "rejected"]
