"""Crash-safe autosave files of the annotation layers (pure, no Qt): write, read, find and clear a
snapshot in ``SubjectFiles.autosave_dir``. The debounce timer and writer thread of the Lesions dock
are in :mod:`napari_qsm_ms._widgets._autosave`, which explains the scheme.
"""

from __future__ import annotations

import contextlib
import json
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_json
from .layout import SubjectFiles
from .nifti import CanonicalView, load_volume, save_volume, to_canonical


#: Annotation roles kept by the autosave, in writing order.
AUTOSAVE_ROLES: tuple[str, ...] = ("lesions", "tissue", "refwm", "refgm")
MANIFEST_NAME = "manifest.json"
ANNOTATION_NAME = "annotation.json"
MANIFEST_VERSION = 1


def fingerprint(data: np.ndarray) -> int:
    """A CRC-32 of an array's bytes and shape (cheap change detection, ~1 GB/s)."""
    arr = np.ascontiguousarray(data)
    crc = zlib.crc32(repr((arr.shape, arr.dtype.str)).encode())
    return zlib.crc32(memoryview(arr).cast("B"), crc)


@dataclass
class AutosaveSnapshot:
    """What one autosave holds.

    Attributes
    ----------
    directory : Path
        The autosave folder of the subject.
    time : float
        When the snapshot was written (seconds since the epoch).
    files : dict of str to Path
        Role (``lesions``, ``tissue``, ``refwm``, ``refgm``) -> NIfTI file in the source orientation.
    annotation : Path or None
        The annotation state JSON, if it was autosaved.
    """

    directory: Path
    time: float
    files: dict[str, Path] = field(default_factory=dict)
    annotation: Path | None = None
    subject_label: str | None = None

    @property
    def time_text(self) -> str:
        return datetime.fromtimestamp(self.time).strftime("%Y-%m-%d %H:%M:%S")


def _role_file(directory: Path, role: str) -> Path:
    return Path(directory) / f"{role}.nii.gz"


def write_autosave(
    directory: str | Path,
    volumes: dict[str, tuple[np.ndarray, np.ndarray]],
    annotation_state: Any | None = None,
    *,
    subject_label: str | None = None,
) -> AutosaveSnapshot:
    """Write a snapshot of annotation volumes (and the annotation state) atomically.

    Parameters
    ----------
    directory : str or Path
        The subject's autosave folder (``SubjectFiles.autosave_dir``); created if missing.
    volumes : dict of str to (ndarray, ndarray)
        Role -> (integer label array in the SOURCE voxel order, its 4x4 affine). Only the roles
        given are rewritten; files of other roles from an earlier snapshot are kept and listed.
    annotation_state : object with ``save(path)``, optional
        Saved as ``annotation.json`` in the folder.
    subject_label : str, optional
        Recorded in the manifest.

    Returns
    -------
    AutosaveSnapshot
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    previous = read_autosave(directory)
    if subject_label is None and previous is not None:
        subject_label = previous.subject_label
    entries: dict[str, dict[str, Any]] = {}
    if previous is not None:
        for role, path in previous.files.items():
            entries[role] = {"file": path.name}
    for role, (data, affine) in volumes.items():
        path = _role_file(directory, role)
        save_volume(path, np.asarray(data), affine, dtype=np.int32)
        entries[role] = {"file": path.name, "crc32": fingerprint(np.asarray(data, dtype=np.int32))}
    annotation = None
    if annotation_state is not None:
        annotation = directory / ANNOTATION_NAME
        annotation_state.save(annotation)
    elif previous is not None and previous.annotation is not None:
        annotation = previous.annotation
    now = time.time()
    manifest = {
        "version": MANIFEST_VERSION,
        "subject": subject_label,
        "time": now,
        "time_utc": datetime.fromtimestamp(now, tz=timezone.utc).isoformat(timespec="seconds"),
        "layers": entries,
        "annotation": None if annotation is None else annotation.name,
    }
    atomic_write_json(directory / MANIFEST_NAME, manifest)
    return AutosaveSnapshot(
        directory, now, {r: directory / e["file"] for r, e in entries.items()}, annotation, subject_label
    )


def read_autosave(directory: str | Path) -> AutosaveSnapshot | None:
    """The snapshot in ``directory``, or None if there is none (or its manifest is unreadable).

    Entries whose file is missing are dropped.
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        stamp = float(manifest["time"])
        layers = dict(manifest.get("layers") or {})
    except (ValueError, KeyError, TypeError):
        return None
    files = {}
    for role, entry in layers.items():
        path = directory / str(entry.get("file", ""))
        if role in AUTOSAVE_ROLES and path.is_file():
            files[role] = path
    annotation = manifest.get("annotation")
    annotation_path = directory / annotation if annotation else None
    if annotation_path is not None and not annotation_path.is_file():
        annotation_path = None
    label = manifest.get("subject")
    return AutosaveSnapshot(directory, stamp, files, annotation_path, None if label is None else str(label))


def saved_time(subject: SubjectFiles) -> float:
    """Modification time of the newest saved annotation derivative of ``subject`` (0 if none)."""
    paths = [subject.lesions, subject.tissue, subject.refwm, subject.refgm, subject.annotation_json]
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def pending_recovery(subject: SubjectFiles) -> AutosaveSnapshot | None:
    """The subject's autosave if it holds something and is newer than the saved files, else None."""
    snapshot = read_autosave(subject.autosave_dir)
    if snapshot is None or not (snapshot.files or snapshot.annotation):
        return None
    if snapshot.time <= saved_time(subject):
        return None
    return snapshot


def recovered_arrays(snapshot: AutosaveSnapshot) -> dict[str, tuple[np.ndarray, CanonicalView]]:
    """Load the snapshot's volumes: role -> (int32 array in canonical orientation, its view)."""
    out = {}
    for role, path in snapshot.files.items():
        volume = load_volume(path, dtype=None)
        data = np.rint(np.asarray(volume.data, dtype=float)).astype(np.int32)
        out[role] = to_canonical(data, volume.affine)
    return out


def clear_autosave(subject_or_dir: SubjectFiles | str | Path) -> None:
    """Remove the autosave files (manifest first, so a half-cleared folder is never "pending")."""
    directory = subject_or_dir.autosave_dir if isinstance(subject_or_dir, SubjectFiles) else Path(subject_or_dir)
    names = [MANIFEST_NAME, ANNOTATION_NAME] + [_role_file(directory, r).name for r in AUTOSAVE_ROLES]
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
    with contextlib.suppress(OSError):
        directory.rmdir()


# ---------------------------------------------------------------------------------------------
# Qt: debounce timer + background writer
# ---------------------------------------------------------------------------------------------
