"""The votes file of one rater for one subject (docs/study_layout.md, docs/rating.md).

``derivatives/qsm-ms/sub-<label>/anat/sub-<label>_rater-<name>_votes.tsv``, one row per candidate
the rater has voted on, with the columns

``lesion_id``         the candidate's id in its label map (int), required
``vote``              ``wm`` | ``cortical`` | ``mixed`` | ``not_lesion``, required
``comment``           free text, one line (tabs and newlines are replaced by spaces); default empty
``timestamp``         UTC ISO 8601 time of the vote; default empty
``candidate_source``  ``drawn`` (the lesions label map) | ``proposed`` (automatic proposals);
                      default ``drawn``
``history``           earlier votes on the same candidate, ``vote@timestamp`` joined by ``;``;
                      default empty

Files written by other tools are read too: only ``lesion_id`` and ``vote`` are required, the
optional columns take their defaults, and a spreadsheet export works (tab-, comma- or
semicolon-separated, Windows line ends, a UTF-8 byte-order mark, column names in any case,
votes such as ``WM`` or ``not lesion``, extra columns kept).

Concurrency and crash safety: every vote rewrites the rater's OWN file atomically (temporary file in
the same folder, fsync, rename; :func:`napari_qsm_ms.io.atomic_write_tsv`). Raters never write each
other's files, so several raters voting at the same time on a shared folder cannot lose votes, and a
process killed at any moment leaves either the file before or the file after the vote, never half a
file. One rater must not vote on the same subject from two processes at once (the later write would
win); the rater widget is the only writer of its rater's file.
"""

from __future__ import annotations

import datetime as _dt
import io
import re
from pathlib import Path

import pandas as pd

from ..errors import InputFileError, ParameterError
from ..io.atomic import atomic_write_tsv
from ..io.layout import SubjectFiles, check_label
from ..roi.rules import CANDIDATE_SOURCES, VOTE_CLASSES

VOTE_COLUMNS: list[str] = ["lesion_id", "vote", "comment", "timestamp", "candidate_source", "history"]

_SENTINEL = "RATERNAMEPLACEHOLDER0"


def check_rater(name: str) -> str:
    """Return ``name`` if it is a valid rater name (letters and digits only), else raise.

    Raises
    ------
    StudyLayoutError
        One line: ``invalid rater name '...': use letters and digits only``.
    """
    return check_label(str(name).strip() if name is not None else "", "rater name")


def check_vote(vote: str) -> str:
    """Return ``vote`` if it is one of :data:`VOTE_CLASSES`, else raise :class:`ParameterError`."""
    if vote not in VOTE_CLASSES:
        raise ParameterError(f"invalid vote {vote!r}: use one of {', '.join(VOTE_CLASSES)}")
    return vote


def check_source(source: str) -> str:
    """Return ``source`` if it is one of :data:`CANDIDATE_SOURCES`, else raise :class:`ParameterError`."""
    if source not in CANDIDATE_SOURCES:
        raise ParameterError(f"invalid candidate source {source!r}: use one of {', '.join(CANDIDATE_SOURCES)}")
    return source


def empty_votes() -> pd.DataFrame:
    """An empty votes table with the contract's columns and dtypes."""
    return pd.DataFrame(
        {
            "lesion_id": pd.Series([], dtype="int64"),
            **{c: pd.Series([], dtype="object") for c in VOTE_COLUMNS[1:]},
        }
    )


def _one_line(text: str | None) -> str:
    return " ".join(str(text or "").split())


def now_utc() -> str:
    """The current UTC time as ISO 8601 with seconds (``2026-11-24T20:50:00Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_votes_file(path: str | Path) -> pd.DataFrame:
    """Read and validate one votes file; a missing file is an empty table.

    Only ``lesion_id`` and ``vote`` are required (see the module docstring for the defaults and the
    spreadsheet exports accepted).

    Raises
    ------
    InputFileError
        Unreadable file, missing columns, unknown votes or sources, non-integer ids, or a candidate
        listed twice (one line naming the file).
    """
    p = Path(path)
    if not p.exists():
        return empty_votes()
    frame = _read_table_text(p)
    missing = [c for c in VOTE_COLUMNS[:2] if c not in frame.columns]
    if missing:
        found = ", ".join(frame.columns) or "none"
        raise InputFileError(p, f"missing column(s) {', '.join(missing)} (found {found})")
    for col in VOTE_COLUMNS[2:]:
        if col not in frame.columns:
            frame[col] = ""
    frame = frame[frame["lesion_id"].str.strip() != ""].reset_index(drop=True)  # blank spreadsheet rows
    try:
        ids = frame["lesion_id"].str.strip().astype(float)
    except (ValueError, TypeError):
        raise InputFileError(p, "lesion_id must be integers") from None
    if (ids != ids.round()).any():
        raise InputFileError(p, "lesion_id must be integers")
    ids = ids.astype("int64")
    if (ids <= 0).any():
        raise InputFileError(p, "lesion_id must be positive")
    frame["lesion_id"] = ids
    frame["vote"] = frame["vote"].str.strip().str.lower().str.replace(r"[\s-]+", "_", regex=True)
    bad = sorted(set(frame["vote"]) - set(VOTE_CLASSES))
    if bad:
        raise InputFileError(p, f"unknown vote(s) {', '.join(map(repr, bad))}; expected {', '.join(VOTE_CLASSES)}")
    source = frame["candidate_source"].str.strip().str.lower()
    frame["candidate_source"] = source.replace({"": "drawn", "n/a": "drawn"})
    bad = sorted(set(frame["candidate_source"]) - set(CANDIDATE_SOURCES))
    if bad:
        raise InputFileError(p, f"unknown candidate_source {', '.join(map(repr, bad))}")
    if frame.duplicated(["candidate_source", "lesion_id"]).any():
        raise InputFileError(p, "a candidate is listed twice")
    for col in ("comment", "history", "timestamp"):
        frame[col] = frame[col].replace({"n/a": ""})
    return frame[VOTE_COLUMNS + [c for c in frame.columns if c not in VOTE_COLUMNS]].reset_index(drop=True)


def _read_table_text(p: Path) -> pd.DataFrame:
    """A votes table as strings: tab-, comma- or semicolon-separated, BOM and CRLF tolerated,
    column names stripped and lower-cased."""
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(p, f"cannot be read as UTF-8 text ({type(exc).__name__})") from None
    header = text.splitlines()[0] if text.strip() else ""
    sep = "\t" if "\t" in header else max((",", ";"), key=header.count)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[])
    except Exception as exc:  # pandas raises several types for broken files
        raise InputFileError(p, f"cannot be read as a votes table ({type(exc).__name__}: {exc})") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame.apply(lambda col: col.str.strip("\r"))


def read_votes(subject: SubjectFiles, rater: str) -> pd.DataFrame:
    """The votes of ``rater`` on ``subject`` (empty table if the rater has not voted yet)."""
    return read_votes_file(subject.votes_tsv(check_rater(rater)))


def record_vote(
    subject: SubjectFiles,
    rater: str,
    lesion_id: int,
    vote: str,
    *,
    comment: str = "",
    candidate_source: str = "drawn",
    timestamp: str | None = None,
) -> pd.DataFrame:
    """Record one vote at once: read the rater's own file, replace the candidate's row, rewrite it.

    A vote on a candidate the rater voted on before replaces it; the earlier vote moves into the
    ``history`` column (``vote@timestamp``).

    Parameters
    ----------
    subject : SubjectFiles
    rater : str
        Letters and digits only.
    lesion_id : int
        Candidate id (> 0) in the label map of ``candidate_source``.
    vote : str
        One of :data:`VOTE_CLASSES`.
    comment : str
        Free text (kept on one line).
    candidate_source : str
        ``drawn`` or ``proposed``.
    timestamp : str, optional
        Defaults to :func:`now_utc`.

    Returns
    -------
    DataFrame
        The rater's votes after the write.
    """
    path = subject.votes_tsv(check_rater(rater))
    check_vote(vote)
    check_source(candidate_source)
    lesion_id = int(lesion_id)
    if lesion_id <= 0:
        raise ParameterError(f"invalid lesion id {lesion_id}: must be positive")
    frame = read_votes_file(path)
    row = (frame["lesion_id"] == lesion_id) & (frame["candidate_source"] == candidate_source)
    history = ""
    if row.any():
        old = frame.loc[row].iloc[0]
        earlier = f"{old['vote']}@{old['timestamp']}"
        history = ";".join(h for h in (str(old["history"]), earlier) if h)
        frame = frame.loc[~row]
    new = pd.DataFrame(
        [
            {
                "lesion_id": lesion_id,
                "vote": vote,
                "comment": _one_line(comment).replace(";", ","),
                "timestamp": timestamp or now_utc(),
                "candidate_source": candidate_source,
                "history": history,
            }
        ]
    )
    frame = pd.concat([frame, new], ignore_index=True) if len(frame) else new
    frame = frame.sort_values(["candidate_source", "lesion_id"], kind="stable").reset_index(drop=True)
    atomic_write_tsv(path, frame[VOTE_COLUMNS])
    return frame


def list_raters(subject: SubjectFiles) -> list[str]:
    """Names of the raters who have a votes file for ``subject``, sorted."""
    template = subject.votes_tsv(_SENTINEL).name
    prefix, suffix = template.split(_SENTINEL)
    pattern = re.compile("^" + re.escape(prefix) + "([A-Za-z0-9]+)" + re.escape(suffix) + "$")
    if not subject.deriv.is_dir():
        return []
    names = [m.group(1) for p in subject.deriv.iterdir() if (m := pattern.match(p.name))]
    return sorted(names)


def read_all_votes(subject: SubjectFiles, raters: list[str] | None = None) -> pd.DataFrame:
    """Every rater's votes on ``subject`` in one long table with a ``rater`` column.

    Used by the consensus and agreement code only (never by a rater session).
    """
    raters = list_raters(subject) if raters is None else [check_rater(r) for r in raters]
    frames = []
    for rater in raters:
        frame = read_votes(subject, rater)
        if len(frame):
            frames.append(frame.assign(rater=rater))
    if not frames:
        return empty_votes().assign(rater=pd.Series([], dtype="object"))
    return pd.concat(frames, ignore_index=True)
