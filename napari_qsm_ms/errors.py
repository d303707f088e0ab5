"""Error types shared by every layer of napari-qsm-ms.

Every error a user can cause by giving bad input derives from :class:`QSMMSError`. Its string is
a single line naming the file (when there is one) and the problem, so the command line can print
it as it is and exit non-zero, and the GUI can show it in a notification.
"""

from __future__ import annotations

from os import PathLike


class QSMMSError(ValueError):
    """Base class of errors caused by bad input (files, parameters, study layout)."""


class InputFileError(QSMMSError):
    """A file that exists (or should) is unusable.

    Parameters
    ----------
    path : str or PathLike or None
        The offending file; ``None`` for in-memory input.
    problem : str
        What is wrong, in a few words, without a trailing full stop.

    Examples
    --------
    >>> str(InputFileError("sub-01_part-phase_T2starw.nii.gz", "contains NaN values"))
    'sub-01_part-phase_T2starw.nii.gz: contains NaN values'
    """

    def __init__(self, path: str | PathLike | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(self.problem if self.path is None else f"{self.path}: {self.problem}")


class ParameterError(QSMMSError):
    """A parameter value is outside what the method can use (TE <= 0, B0 of 50 T, ...)."""


class StudyLayoutError(QSMMSError):
    """A study folder does not follow the layout of docs/study_layout.md."""


class CancelledError(Exception):
    """Long work was cancelled by the user (not an input error)."""


def one_line(exc: BaseException) -> str:
    """An error as the one line the CLI and the docks show.

    An ``OSError`` (disk full, permission denied, ...) becomes ``file: reason``; any other error
    its message with line breaks and runs of spaces collapsed (its type name if the message is
    empty).
    """
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        text = f"{where}{exc.strerror or exc}"
    else:
        text = str(exc)
    return " ".join(text.split()) or type(exc).__name__
