"""Atomic writes: a file is either its old complete self or its new complete self, never half.

Every writer in the package goes through :func:`atomic_path`: write to a temporary name in the
same folder, flush and fsync, then ``os.replace`` onto the final name (atomic on POSIX and Windows
for files on one file system).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any


_UMASK_LOCK = threading.Lock()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    Parameters
    ----------
    path : str or PathLike
        Final file name. Its folder is created if missing.
    suffix : str, optional
        Suffix of the temporary name (defaults to the final name's suffixes, so that libraries
        choosing a format by extension, such as nibabel with ``.nii.gz``, do the right thing).

    Yields
    ------
    Path
        Where to write. If the body raises, the temporary file is removed and ``path`` is untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(final.suffixes) or ".tmp"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, _default_file_mode())  # mkstemp makes 0600; outputs are shared like any file
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically and return the path."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_write_tsv(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame as a tab-separated file (no index, ``n/a`` for missing) atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, na_rep="n/a", lineterminator="\n")
    return Path(path)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _default_file_mode() -> int:
    """``0o666`` less the process umask: the mode ``open()`` would give a new file.

    Reading the umask means setting it; that happens under a lock so threads writing at the same
    time never see a zero umask for longer than two system calls.
    """
    with _UMASK_LOCK:
        umask = os.umask(0o077)
        os.umask(umask)
    return 0o666 & ~umask


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # pragma: no cover
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Characters and length of the random part ``tempfile.mkstemp`` puts in :func:`atomic_path`'s names.
_RANDOM = re.compile(r"[a-z0-9_]{8}")


def is_atomic_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary of :func:`atomic_path` (``.<final>.<8 random><suffix>``, where
    ``<suffix>`` is the final name's suffixes or ``.tmp``): what a process killed before the rename
    leaves behind."""
    if not name.startswith("."):
        return False
    body = name[1:]
    for i, ch in enumerate(body):
        if ch != "." or i == 0:
            continue
        final, rest = body[:i], body[i + 1 :]
        suffix = rest[8:]
        expected = "".join(PurePath(final).suffixes) or ".tmp"
        if _RANDOM.fullmatch(rest[:8]) and suffix in (expected, ".tmp"):
            return True
    return False
