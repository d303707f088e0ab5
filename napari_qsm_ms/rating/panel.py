"""The panel of raters: a choice made once per study, honoured by the dock and the command line.

The panel is stored in ``derivatives/qsm-ms/raters.tsv`` (one column ``rater``;
:attr:`napari_qsm_ms.io.layout.StudyFiles.raters_tsv`). :func:`decide_panel` is the one rule:

* a stored panel is used as it is; an explicit choice (``qsm-ms consensus --raters``, the dock's
  panel field) that names the same raters is accepted, one that names others is refused with a
  one-line error (change the panel on purpose with :func:`write_panel`, ``--set-panel``, or by
  editing the file), so two paths can never pool different raters silently;
* without a stored panel, an explicit choice becomes the study's panel and is recorded;
* without either, the panel is every rater with a votes file for the subject (not recorded).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from ..errors import InputFileError, ParameterError
from ..io.atomic import atomic_write_tsv
from ..io.layout import StudyFiles
from .votes import check_rater


class PanelChoice(NamedTuple):
    """The panel and where it came from: ``raters.tsv``, ``chosen`` (to record) or ``votes files``."""

    raters: list[str]
    source: str


def decide_panel(
    stored: Sequence[str] | None, requested: Sequence[str] | None, with_votes: Sequence[str]
) -> PanelChoice:
    """Which raters pool their votes (pure; see the module docstring for the rule).

    Examples
    --------
    >>> decide_panel(["anna", "ben"], None, ["anna", "ben", "r1"])
    PanelChoice(raters=['anna', 'ben'], source='raters.tsv')
    >>> decide_panel(None, ["anna", "ben"], ["anna", "ben", "r1"])
    PanelChoice(raters=['anna', 'ben'], source='chosen')
    >>> decide_panel(None, None, ["r2", "r1"])
    PanelChoice(raters=['r1', 'r2'], source='votes files')
    """
    if requested:
        requested = [check_rater(r) for r in requested]
        if len(set(requested)) != len(requested):
            raise ParameterError("a rater is listed twice in the panel")
    if stored:
        stored = [check_rater(r) for r in stored]
        if requested and set(requested) != set(stored):
            raise ParameterError(
                f"the study's panel of raters is {', '.join(stored)} (raters.tsv); "
                f"{', '.join(requested)} contradicts it: change the panel with --set-panel first"
            )
        return PanelChoice(list(stored), "raters.tsv")
    if requested:
        return PanelChoice(list(requested), "chosen")
    return PanelChoice(sorted(check_rater(r) for r in with_votes), "votes files")


def read_panel(study: StudyFiles) -> list[str] | None:
    """The stored panel of the study, or None when there is no ``raters.tsv``."""
    path = study.raters_tsv
    if not path.exists():
        return None
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as exc:  # pandas raises several types on malformed text
        raise InputFileError(path, f"cannot be read as a table ({type(exc).__name__})") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if "rater" not in frame.columns:
        raise InputFileError(path, "missing column rater")
    names = [n.strip() for n in frame["rater"] if n.strip()]
    try:
        names = [check_rater(n) for n in names]
    except Exception as exc:
        raise InputFileError(path, str(exc)) from None
    if len(names) < 2:
        raise InputFileError(path, f"a panel needs at least 2 raters, found {len(names)}")
    return names


def write_panel(study: StudyFiles, raters: Sequence[str]) -> Path:
    """Record the study's panel of raters (replaces any earlier one)."""
    names = [check_rater(r) for r in raters]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ParameterError(f"a panel needs at least 2 different raters, got {', '.join(names) or 'none'}")
    return atomic_write_tsv(study.raters_tsv, pd.DataFrame({"rater": names}))


def study_panel(study: StudyFiles, requested: Sequence[str] | None, with_votes: Sequence[str]) -> PanelChoice:
    """Read the stored panel, decide (:func:`decide_panel`) and record a new explicit choice."""
    choice = decide_panel(read_panel(study), requested, with_votes)
    if choice.source == "chosen":
        write_panel(study, choice.raters)
    return choice
