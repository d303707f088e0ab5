"""napari sample data: one subject of the shipped simulated study, opened from a user copy.

The shipped study (``sample_data/study`` of the package) is never edited: File > Open Sample
copies it once into the user's data folder (:func:`sample_copy_root`, e.g.
``~/.local/share/napari-qsm-ms/sample/study-<fingerprint>`` on Linux) and every layer points
there, so the Lesions dock saves and autosaves into the copy. A new version of the sample gets
a new fingerprint, hence a fresh copy; the user's edits of an older copy stay where they are.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ._reader import subject_layer_data
from .errors import QSMMSError
from .io.layout import StudyFiles

SAMPLE_STUDY = Path(__file__).resolve().parent.parent / "sample_data" / "study"
SAMPLE_SUBJECT = "01"
SAMPLE_DIR_ENV = "QSM_MS_SAMPLE_DIR"
"""Environment variable that overrides where the sample copy goes."""


def sample_study_path() -> Path:
    """The shipped sample study (a source checkout or editable install); read-only for us."""
    if not (SAMPLE_STUDY / "sub-01").is_dir():
        raise QSMMSError(
            f"{SAMPLE_STUDY}: sample study not found; regenerate it with "
            "`python -m napari_qsm_ms.simulate.sample_study sample_data/study`"
        )
    return SAMPLE_STUDY


def sample_copy_root() -> Path:
    """Where sample copies go: ``$QSM_MS_SAMPLE_DIR``, else the user data folder, else a temp folder."""
    if os.environ.get(SAMPLE_DIR_ENV):
        return Path(os.environ[SAMPLE_DIR_ENV]).expanduser()
    try:
        import platformdirs

        return Path(platformdirs.user_data_dir("napari-qsm-ms")) / "sample"
    except ImportError:  # pragma: no cover - napari installs platformdirs
        return Path(tempfile.gettempdir()) / "napari-qsm-ms-sample"


def _fingerprint(root: Path) -> str:
    """Short hash of the shipped study's file names and sizes (changes with every regeneration)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()[:10]


def sample_study_copy(dest_root: str | os.PathLike | None = None) -> Path:
    """A writable copy of the shipped sample study (made once per sample version), its path.

    The copy is made in a temporary folder next to its target and renamed into place, so an
    interrupted copy is never mistaken for a complete one.
    """
    source = sample_study_path()
    root = Path(dest_root) if dest_root is not None else sample_copy_root()
    target = root / f"study-{_fingerprint(source)}"
    if (target / "dataset_description.json").is_file():
        return target
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".copy-", dir=root))
        shutil.copytree(source, tmp / "study")
        os.replace(tmp / "study", target)
        shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise QSMMSError(f"{root}: cannot copy the sample study there ({exc.strerror or exc})") from None
    return target


def sample_subject():
    """LayerData of sub-01 of a user copy of the sample study (series, tissue classes, lesions)."""
    return subject_layer_data(StudyFiles.at(sample_study_copy()).subject(SAMPLE_SUBJECT))
