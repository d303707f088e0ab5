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

The file functions are Qt-free, in :mod:`napari_qsm_ms.io.autosave`; :class:`Autosaver` adds
the debounce timer and the
background writer thread for the widget.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

from ..io.layout import SubjectFiles

from ..io.autosave import (  # noqa: F401 - the file functions, re-exported for the dock and tests
    fingerprint,
    AutosaveSnapshot,
    _role_file,
    write_autosave,
    read_autosave,
    saved_time,
    pending_recovery,
    recovered_arrays,
    clear_autosave,
    AUTOSAVE_ROLES,
    MANIFEST_NAME,
    ANNOTATION_NAME,
    MANIFEST_VERSION,
)


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
