"""Step records: is a step's output up to date with its inputs and parameters?

After a step has written all its outputs, :func:`write_record` stores beside them (path from
:mod:`napari_qsm_ms.io.layout`) its parameters and, for every file it read and wrote, the SHA-256
(:func:`napari_qsm_ms.io.checksum.sha256_file`), size and modification time. :func:`step_state`
compares that with the files now:

``done``        record present; same parameters; same inputs; every output present and unchanged
``edited``      as done, but an output was changed since (by hand, e.g. an ROI edited in napari):
                kept, never overwritten unless an input or parameter changed or ``--force``
``out of date`` the parameters, an input, or the set of inputs changed since the record
``missing``     no record (never run, or stopped before its last output), or an output is gone
``blocked``     a required input is missing (the step cannot run yet)

The record is written last, so a run killed at any moment leaves the step without a record
(``missing``) and the next run redoes it. Paths in a record are relative to the study folder, so
a study moved or mounted elsewhere (a cluster node) keeps its records.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..io.atomic import atomic_write_json, is_atomic_temporary
from ..io.checksum import sha256_file
from ..io.layout import StudyFiles, SubjectFiles, study_step_record, subject_step_record
from .steps import STEPS, recorded_parameters

DONE, EDITED, OUT_OF_DATE, MISSING, BLOCKED = "done", "edited", "out of date", "missing", "blocked"
#: States after which a step does not need to run.
UP_TO_DATE = (DONE, EDITED)


@dataclass(frozen=True)
class StepState:
    """The state of one step for one subject (or the study), with the reason in one line."""

    step: str
    state: str
    reason: str = ""
    adopted: bool = False  # done by the single-step command, judged from its sidecar (no record yet)

    @property
    def needs_run(self) -> bool:
        return self.state in (OUT_OF_DATE, MISSING)

    def line(self) -> str:
        return f"{self.step} {self.state}" + (f" ({self.reason})" if self.reason else "")


def record_path(target: SubjectFiles | StudyFiles, step: str) -> Path:
    """Where the record of ``step`` lives for ``target`` (a subject or the study)."""
    if isinstance(target, SubjectFiles):
        return subject_step_record(target, step)
    return study_step_record(target, step)


def study_root(target: SubjectFiles | StudyFiles) -> Path:
    return target.study if isinstance(target, SubjectFiles) else target.root


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def file_entry(path: Path) -> dict:
    """What a record keeps of a file: SHA-256, size and modification time (ns)."""
    st = path.stat()
    return {"sha256": sha256_file(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def same_file(path: Path, entry: dict) -> bool:
    """True when ``path`` still has the recorded content.

    A file with the recorded size and modification time is taken as unchanged without reading it
    (as make and rsync do); otherwise its SHA-256 decides (a copied study keeps its records).
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    if st.st_size != entry.get("bytes"):
        return False
    if st.st_mtime_ns == entry.get("mtime_ns"):
        return True
    return sha256_file(path) == entry.get("sha256")


def write_record(target, step: str, params: dict, inputs: dict[str, Path], outputs: list[Path],
                 *, seconds: float, summary: str) -> Path:
    """Record a finished step (call after its last output is written)."""
    root = study_root(target)
    record = {
        "Step": step,
        "GeneratedBy": {"Name": "napari-qsm-ms", "Version": __version__},
        "Parameters": recorded_parameters(params),
        "Inputs": _input_entries(inputs, root, file_entry),
        "Outputs": {_rel(p, root): file_entry(p) for p in outputs},
        "Seconds": round(seconds, 3),
        "Summary": summary,
    }
    return atomic_write_json(record_path(target, step), record)


def _input_entries(inputs: dict, root: Path, entry) -> dict:
    """Record keys and entries of a step's inputs: files by their path relative to the study
    (``entry(path)``), values by their name (``{"value": ...}``)."""
    out = {}
    for name, item in inputs.items():
        if isinstance(item, Path):
            out[_rel(item, root)] = entry(item)
        else:
            out[name] = {"value": _normalise(item)}
    return out


def read_record(path: Path) -> dict | None:
    """The record at ``path``, or None when absent or unreadable (then the step runs again)."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _normalise(obj):
    """Parameters as JSON gives them back (tuples as lists), for comparison."""
    return json.loads(json.dumps(obj, default=str))


def step_state(target, step: str, params: dict) -> StepState:
    """Compare the record of ``step`` with the files and ``params`` now (see the module notes)."""
    spec = STEPS[step]
    why = spec.blocked(target, params)
    if why:
        return StepState(step, BLOCKED, why)
    record = read_record(record_path(target, step))
    if record is None:
        adopted = spec.adopt(target, params) if spec.adopt is not None else None
        if adopted:
            return StepState(step, DONE, adopted, adopted=True)
        return StepState(step, MISSING, "not run yet")
    old = record.get("Parameters", {})
    new = _normalise(recorded_parameters(params))
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        return StepState(step, OUT_OF_DATE, f"parameters changed: {', '.join(changed)}")
    root = study_root(target)
    now = _input_entries(spec.inputs(target, params), root, lambda p: p)
    recorded = record.get("Inputs", {})
    if set(now) != set(recorded):
        diff = sorted(set(now) ^ set(recorded))
        names = ", ".join(Path(d).name for d in diff[:3])
        return StepState(step, OUT_OF_DATE, f"inputs added or removed: {names}")
    for key, item in now.items():
        if isinstance(item, Path) and not same_file(item, recorded[key]):
            return StepState(step, OUT_OF_DATE, f"input changed: {item.name}")
        if isinstance(item, dict) and item != recorded[key]:
            return StepState(step, OUT_OF_DATE, f"input changed: {key}")
    edited = []
    for rel, entry in record.get("Outputs", {}).items():
        path = root / rel
        if not path.exists():
            return StepState(step, MISSING, f"output missing: {path.name}")
        if not same_file(path, entry):
            edited.append(path.name)
    if edited:
        return StepState(step, EDITED, f"changed since the run, kept: {', '.join(edited[:3])}")
    return StepState(step, DONE, record.get("Summary", ""))


def leftover_temporaries(folder: Path) -> list[Path]:
    """Temporary files of :func:`napari_qsm_ms.io.atomic.atomic_path` left by a killed run.

    ``atomic_path`` writes ``.<name>.<8 random characters><suffix>`` beside ``<name>``; a process
    killed before the rename leaves one behind. Stats folders being built (``.stats.*``) too.
    """
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        if p.is_file() and is_atomic_temporary(p.name):
            out.append(p)
        elif p.is_dir() and p.name.startswith(".stats."):  # stats.study: mkdtemp and .old-<pid>
            out.append(p)
    return out


def remove_leftovers(folders: list[Path]) -> list[Path]:
    """Delete :func:`leftover_temporaries` in ``folders``; returns what was removed."""
    removed = []
    for folder in folders:
        for p in leftover_temporaries(folder):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)
            removed.append(p)
    return removed
