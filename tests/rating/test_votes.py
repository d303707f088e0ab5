"""The votes file: contract columns, replacement with history, validation, crash and concurrency."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from napari_qsm_ms.errors import InputFileError, ParameterError, StudyLayoutError
from napari_qsm_ms.rating.votes import (
    VOTE_COLUMNS,
    check_rater,
    list_raters,
    read_all_votes,
    read_votes,
    read_votes_file,
    record_vote,
)

from ._helpers import make_subject


def test_vote_is_written_at_once_with_contract_columns(tmp_path):
    subject = make_subject(tmp_path)
    record_vote(subject, "alice", 3, "wm", comment="juxtacortical?\tmaybe\nnot", candidate_source="drawn")
    path = subject.votes_tsv("alice")
    assert path.name == "sub-01_rater-alice_votes.tsv"
    frame = pd.read_csv(path, sep="\t", keep_default_na=False)
    assert list(frame.columns) == VOTE_COLUMNS
    assert frame.loc[0, "lesion_id"] == 3 and frame.loc[0, "vote"] == "wm"
    assert frame.loc[0, "comment"] == "juxtacortical? maybe not"
    assert frame.loc[0, "candidate_source"] == "drawn"
    assert frame.loc[0, "timestamp"].endswith("Z")


def test_changed_vote_replaces_and_keeps_history(tmp_path):
    subject = make_subject(tmp_path)
    record_vote(subject, "bob", 2, "wm", timestamp="t1")
    record_vote(subject, "bob", 2, "mixed", timestamp="t2")
    record_vote(subject, "bob", 2, "cortical", timestamp="t3")
    record_vote(subject, "bob", 2, "wm", candidate_source="proposed", timestamp="t4")
    votes = read_votes(subject, "bob")
    drawn = votes[votes["candidate_source"] == "drawn"]
    assert len(drawn) == 1
    assert drawn["vote"].iloc[0] == "cortical"
    assert drawn["history"].iloc[0] == "wm@t1;mixed@t2"
    assert len(votes) == 2  # the proposal with the same id is another candidate


@pytest.mark.parametrize("name", ["", "al ice", "bob/..", "a_b", "ré"])
def test_bad_rater_names_are_refused_in_one_line(tmp_path, name):
    subject = make_subject(tmp_path)
    with pytest.raises(StudyLayoutError) as err:
        record_vote(subject, name, 1, "wm")
    assert "rater name" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(StudyLayoutError):
        check_rater(name)


def test_bad_votes_and_ids_are_refused(tmp_path):
    subject = make_subject(tmp_path)
    with pytest.raises(ParameterError, match="invalid vote"):
        record_vote(subject, "a", 1, "lesion")
    with pytest.raises(ParameterError, match="lesion id"):
        record_vote(subject, "a", 0, "wm")
    with pytest.raises(ParameterError, match="candidate source"):
        record_vote(subject, "a", 1, "wm", candidate_source="auto")
    assert not subject.votes_tsv("a").exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("lesion_id\tcomment\n1\twm\n", "missing column"),
        ("lesion_id\tvote\tcomment\ttimestamp\tcandidate_source\n1\tgrey\t\tt\tdrawn\n", "unknown vote"),
        ("lesion_id\tvote\tcomment\ttimestamp\tcandidate_source\nx\twm\t\tt\tdrawn\n", "integers"),
        ("lesion_id\tvote\tcomment\ttimestamp\tcandidate_source\n1\twm\t\tt\tdrawn\n1\tmixed\t\tt\tdrawn\n", "twice"),
        ("lesion_id\tvote\tcomment\ttimestamp\tcandidate_source\n1\twm\t\tt\tmagic\n", "candidate_source"),
    ],
)
def test_bad_votes_files_name_the_file(tmp_path, content, problem):
    path = tmp_path / "sub-01_rater-x_votes.tsv"
    path.write_text(content)
    with pytest.raises(InputFileError) as err:
        read_votes_file(path)
    assert str(err.value).startswith(str(path)) and problem in str(err.value)


def test_two_column_vote_file_is_accepted_with_defaults(tmp_path):
    """Issue 11: the layout's contract is ``lesion_id, vote, ...``: optional columns take defaults."""
    path = tmp_path / "sub-01_rater-x_votes.tsv"
    path.write_text("lesion_id\tvote\n1\twm\n2\tnot_lesion\n")
    frame = read_votes_file(path)
    assert frame["lesion_id"].tolist() == [1, 2] and frame["vote"].tolist() == ["wm", "not_lesion"]
    assert frame["candidate_source"].tolist() == ["drawn", "drawn"]
    assert frame["comment"].tolist() == ["", ""] and frame["history"].tolist() == ["", ""]


def test_spreadsheet_export_is_accepted(tmp_path):
    """A CSV from a spreadsheet: BOM, Windows line ends, capitalised names and votes, extra columns."""
    path = tmp_path / "sub-01_rater-x_votes.tsv"
    path.write_bytes("\ufeffLesion_ID,Vote,Confidence\r\n1,WM,high\r\n3,Not lesion,low\r\n,,\r\n".encode())
    frame = read_votes_file(path)
    assert frame["lesion_id"].tolist() == [1, 3] and frame["vote"].tolist() == ["wm", "not_lesion"]
    assert frame["confidence"].tolist() == ["high", "low"]
    path.write_bytes("lesion_id,vote\r\n1,grey\r\n".encode())
    with pytest.raises(InputFileError) as err:
        read_votes_file(path)
    assert str(err.value).startswith(str(path)) and "unknown vote" in str(err.value)


def test_list_raters_ignores_temporary_files(tmp_path):
    subject = make_subject(tmp_path)
    for r in ("carol", "alice", "bob"):
        record_vote(subject, r, 1, "wm")
    (subject.deriv / ".sub-01_rater-eve_votes.tsv.abc.tsv").write_text("partial")
    assert list_raters(subject) == ["alice", "bob", "carol"]
    assert sorted(read_all_votes(subject)["rater"]) == ["alice", "bob", "carol"]


_VOTER = textwrap.dedent(
    """
    import sys, os
    from pathlib import Path
    from napari_qsm_ms.io.layout import SubjectFiles
    from napari_qsm_ms.rating.votes import record_vote
    study, rater, n, stop_after = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    subject = SubjectFiles(Path(study), "01")
    for i in range(1, n + 1):
        record_vote(subject, rater, i, ("wm", "cortical", "mixed", "not_lesion")[i % 4], comment=f"c{i}")
        if i == stop_after:
            print("voted", flush=True)
            sys.stdin.readline()  # wait here to be killed
    """
)


def test_votes_survive_a_killed_process(tmp_path):
    subject = make_subject(tmp_path)
    script = tmp_path / "voter.py"
    script.write_text(_VOTER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(subject.study), "dora", "40", "25"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "voted"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdin.close()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    votes = read_votes(subject, "dora")
    assert list(votes["lesion_id"]) == list(range(1, 26))
    assert all(votes["comment"] == [f"c{i}" for i in range(1, 26)])
    leftovers = [p for p in subject.deriv.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_votes_survive_a_kill_at_a_random_moment(tmp_path):
    """Kill a writer in the middle of its stream of votes: the file is always complete."""
    subject = make_subject(tmp_path)
    script = tmp_path / "voter.py"
    script.write_text(_VOTER)
    proc = subprocess.Popen([sys.executable, str(script), str(subject.study), "erin", "100000", "-1"])
    path = subject.votes_tsv("erin")
    try:
        for _ in range(600):
            if path.exists():
                break
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    votes = read_votes(subject, "erin")
    n = len(votes)
    assert n >= 1
    assert list(votes["lesion_id"]) == list(range(1, n + 1))


def test_concurrent_raters_lose_nothing(tmp_path):
    subject = make_subject(tmp_path)
    script = tmp_path / "voter.py"
    script.write_text(_VOTER)
    raters = ["r1", "r2", "r3", "r4"]
    procs = [
        subprocess.Popen([sys.executable, str(script), str(subject.study), r, "60", "-1"]) for r in raters
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    assert list_raters(subject) == raters
    for r in raters:
        votes = read_votes(subject, r)
        assert list(votes["lesion_id"]) == list(range(1, 61))
        assert list(votes["comment"]) == [f"c{i}" for i in range(1, 61)]
