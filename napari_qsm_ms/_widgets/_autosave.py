"""Crash-safe autosave of the annotation layers (lesions, tissue, refwm, refgm) and their state.

Every change to an annotation layer schedules a debounced write (about 1.5 s after the last
change) of the changed layers into ``SubjectFiles.autosave_dir``: NIfTI files in the source voxel
order with the source affine (exactly what "Save" would write, so recovery is a plain load), the
:class:`~napari_qsm_ms.roi.annotation.AnnotationState` as JSON, and last a small ``manifest.json``
with the time of the snapshot and one entry per file. Every file is written atomically
(temporary name, fsync, rename), and the manifest is written after the files it lists, so a crash
at any moment leaves either the previous or the new complete snapshot.

An explicit "Save" writes the real derivative files and clears the autosave. When a subject is
opened and its autosave is newer than its saved derivative files, :func:`pending_recovery`
returns the snapshot, and :func:`recovered_arrays` gives its arrays back in canonical orientation.

The functions at module level are Qt-free; :class:`Autosaver` adds the debounce timer and the
background writer thread for the widget.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

from ..io.atomic import atomic_write_json
from ..io.layout import SubjectFiles
from ..io.nifti import CanonicalView, load_volume, save_volume, to_canonical

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

class Autosaver(QObject):
    """Debounced background autosave for one subject.

    Parameters
    ----------
    collect : callable
        Called on the GUI thread when the timer fires. Returns ``(subject, volumes, state)`` with
        ``volumes`` role -> (canonical int array, CanonicalView or None, affine) for the annotation
        layers present, and ``state`` an object with ``save(path)`` (or None). Returns None when
        there is nothing to save (no subject).
    delay_ms : int
        Quiet time after the last change before writing.

    Notes
    -----
    Only layers whose content differs from the last written (or loaded) version are written;
    the check is a CRC-32 of the array (tens of ms for a 384x384x90 volume). Arrays are copied on
    the GUI thread and written by one background thread, so drawing is never blocked by disk I/O.
    """

    saved = Signal(str)
    failed = Signal(str)

    def __init__(self, collect: Callable[[], Any], *, delay_ms: int = 1500, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._collect = collect
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(delay_ms))
        self._timer.timeout.connect(self._on_timeout)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qsm-ms-autosave")
        self._known: dict[str, int] = {}
        self._state_text: str | None = None
        self._lock = threading.Lock()
        self._pending: Future | None = None
        self._dirty: set[str] = set()
        self._dirty_all = False
        self.enabled = True
        self.last_snapshot: AutosaveSnapshot | None = None
        self.last_write_s: float | None = None

    @property
    def delay_ms(self) -> int:
        return self._timer.interval()

    def schedule(self, role: str | None = None) -> None:
        """(Re)start the debounce timer after a change of layer ``role`` (None: check every layer).

        Only the roles marked here are checksummed at the next write, so a stroke on the lesions
        layer costs one CRC, not four.
        """
        if not self.enabled:
            return
        if role is None:
            self._dirty_all = True
        else:
            self._dirty.add(role)
        self._timer.start()

    @property
    def is_scheduled(self) -> bool:
        return self._timer.isActive()

    def mark_clean(self, volumes: dict[str, np.ndarray], state: Any | None = None) -> None:
        """Record the current content as saved (after loading or an explicit Save)."""
        self._timer.stop()
        self.wait()
        self._known = {role: fingerprint(np.asarray(arr, dtype=np.int32)) for role, arr in volumes.items()}
        self._state_text = _state_text(state)
        self._dirty, self._dirty_all = set(), False

    def add_baseline(self, volumes: dict[str, np.ndarray]) -> None:
        """Record the content of layers not seen before (added later to the same subject) as saved."""
        for role, arr in volumes.items():
            if role not in self._known:
                self._known[role] = fingerprint(np.asarray(arr, dtype=np.int32))

    def _on_timeout(self) -> None:
        self.flush(wait=False)

    def flush(self, *, wait: bool = True, check_all: bool = False) -> Future | None:
        """Write the changed layers now (in the background thread; ``wait`` blocks until done).

        ``check_all`` checksums every layer, not only those marked by :meth:`schedule`.
        """
        if check_all:
            self._dirty_all = True
        self._timer.stop()
        collected = self._collect()
        if collected is None:
            return None
        subject, volumes, state = collected
        from ..io.nifti import from_canonical

        changed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        new_known = dict(self._known)
        check_all, dirty = self._dirty_all, set(self._dirty)
        self._dirty, self._dirty_all = set(), False
        for role, (data, view, affine) in volumes.items():
            if not check_all and role in self._known and role not in dirty:
                continue  # no change event since the last check
            arr = np.asarray(data, dtype=np.int32)
            crc = fingerprint(arr)
            if self._known.get(role) == crc:
                continue
            new_known[role] = crc
            source = from_canonical(arr, view) if view is not None else arr
            changed[role] = (np.array(source, dtype=np.int32, copy=True), affine)
        state_text = _state_text(state)
        state_changed = state_text != self._state_text
        if not changed and not state_changed:
            return None
        self._known = new_known
        self._state_text = state_text
        state_copy = _StateText(state_text) if (state_changed or changed) and state_text is not None else None
        future = self._pool.submit(self._write, subject, changed, state_copy)
        self._pending = future
        if wait:
            future.result()
        return future

    def _write(self, subject: SubjectFiles, changed: dict, state: Any | None) -> AutosaveSnapshot | None:
        t0 = time.perf_counter()
        try:
            with self._lock:
                snapshot = write_autosave(subject.autosave_dir, changed, state, subject_label=subject.label)
        except Exception as exc:  # disk full, permissions: tell the user, keep drawing
            self._known = {}  # rewrite everything next time
            self.failed.emit(f"autosave failed: {exc}")
            raise
        self.last_write_s = time.perf_counter() - t0
        self.last_snapshot = snapshot
        self.saved.emit(f"autosaved {datetime.now().strftime('%H:%M:%S')} ({', '.join(changed) or 'state'})")
        return snapshot

    def wait(self) -> None:
        """Block until a write in progress has finished."""
        pending = self._pending
        if pending is not None:
            with contextlib.suppress(Exception):
                pending.result()

    def close(self) -> None:
        self.enabled = False
        self._timer.stop()
        self.wait()
        self._pool.shutdown(wait=True)


class _StateText:
    """A frozen copy of an annotation state's JSON, saved from the writer thread."""

    def __init__(self, text: str) -> None:
        self.text = text

    def save(self, path: str | Path) -> None:
        from ..io.atomic import atomic_write_text

        atomic_write_text(path, self.text)


def _state_text(state: Any | None) -> str | None:
    """The JSON an annotation state would save (via its ``save`` into a temporary folder)."""
    if state is None:
        return None
    to_dict = getattr(state, "to_dict", None)
    if callable(to_dict):
        return json.dumps(to_dict(), indent=2, sort_keys=True, default=str) + "\n"
    import tempfile

    with tempfile.TemporaryDirectory(prefix="qsm-ms-state-") as tmp:
        path = Path(tmp) / "state.json"
        state.save(path)
        return path.read_text(encoding="utf-8")
