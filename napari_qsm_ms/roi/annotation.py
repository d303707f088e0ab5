"""Per-lesion annotation state kept beside the label files (``SubjectFiles.annotation_json``).

The JSON file holds what the label arrays cannot: which lesions are excluded and why (artefact,
eroded by the QSM mask, ...), flags (small lesion, reference too small, ...), free-text notes, and
the parameters the references were built with. It is written atomically, and keys this version
does not know (written by a newer version or by hand) are kept on load and written back on save.

File format (version 1)::

    {
      "format": "napari-qsm-ms annotation",
      "version": 1,
      "parameters": {"gap_mm": 1.0, "ring_mm": 3.7, ...},
      "lesions": {
        "3": {"excluded": true, "exclusion_reason": "artefact", "flags": ["small"], "note": ""}
      }
    }
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputFileError
from ..io.atomic import atomic_write_json

FORMAT = "napari-qsm-ms annotation"
VERSION = 1
#: Exclusion reasons offered by the GUI (any text is accepted).
EXCLUSION_REASONS = ("artefact", "eroded by QSM mask", "vessel", "not a lesion", "other")
#: Flags written by the reference builder start with these; a rebuild replaces them.
REFERENCE_FLAG_PREFIXES = ("refwm_", "refgm_")

_LESION_KEYS = ("excluded", "exclusion_reason", "flags", "note")


@dataclass
class LesionAnnotation:
    """Annotation of one lesion.

    Attributes
    ----------
    excluded : bool
        Left out of the statistics (the paper excluded one cortical lesion for artefacts).
    exclusion_reason : str
    flags : list of str
        Markers for review (``small``, ``refwm_too_small``, ...), no duplicates.
    note : str
        Free text.
    extra : dict
        Keys this version does not know, kept as they were.
    """

    excluded: bool = False
    exclusion_reason: str = ""
    flags: list[str] = field(default_factory=list)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.extra)
        out.update(
            excluded=bool(self.excluded),
            exclusion_reason=str(self.exclusion_reason),
            flags=list(dict.fromkeys(self.flags)),
            note=str(self.note),
        )
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> LesionAnnotation:
        if not isinstance(obj, dict):
            raise ValueError("lesion entry is not an object")
        flags = obj.get("flags", [])
        if isinstance(flags, str):
            flags = [f for f in flags.split(";") if f]
        return cls(
            excluded=bool(obj.get("excluded", False)),
            exclusion_reason=str(obj.get("exclusion_reason", "") or ""),
            flags=[str(f) for f in flags],
            note=str(obj.get("note", "") or ""),
            extra={k: v for k, v in obj.items() if k not in _LESION_KEYS},
        )

    def is_empty(self) -> bool:
        return not (self.excluded or self.exclusion_reason or self.flags or self.note or self.extra)


@dataclass
class AnnotationState:
    """Annotation of one subject: per-lesion entries and the reference parameters.

    Examples
    --------
    >>> state = AnnotationState()
    >>> state.exclude(3, "artefact")
    >>> state.add_flag(3, "small")
    >>> state.lesion(3).excluded, state.lesion(3).flags
    (True, ['small'])
    >>> AnnotationState.from_json(state.to_json()) == state
    True
    """

    lesions: dict[int, LesionAnnotation] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    # --- per-lesion edits ---------------------------------------------------------------------
    def lesion(self, lesion_id: int) -> LesionAnnotation:
        """The entry of ``lesion_id``, created empty if missing."""
        return self.lesions.setdefault(int(lesion_id), LesionAnnotation())

    def exclude(self, lesion_id: int, reason: str) -> None:
        entry = self.lesion(lesion_id)
        entry.excluded, entry.exclusion_reason = True, str(reason)

    def include(self, lesion_id: int) -> None:
        entry = self.lesion(lesion_id)
        entry.excluded, entry.exclusion_reason = False, ""

    def add_flag(self, lesion_id: int, flag: str) -> None:
        entry = self.lesion(lesion_id)
        if flag not in entry.flags:
            entry.flags.append(str(flag))

    def remove_flag(self, lesion_id: int, flag: str) -> None:
        entry = self.lesions.get(int(lesion_id))
        if entry is not None and flag in entry.flags:
            entry.flags.remove(flag)

    def excluded_ids(self) -> list[int]:
        return sorted(k for k, v in self.lesions.items() if v.excluded)

    def excluded(self) -> dict[int, str]:
        """``{lesion_id: reason}`` of the excluded lesions (the exclusion rule's one reader)."""
        return {int(k): v.exclusion_reason for k, v in sorted(self.lesions.items()) if v.excluded}

    def set_reference_flags(self, flags_by_lesion: dict[int, list[str]], parameters: dict[str, Any]) -> None:
        """Replace every reference flag (``refwm_*``, ``refgm_*``) and record the parameters."""
        for entry in self.lesions.values():
            entry.flags = [f for f in entry.flags if not f.startswith(REFERENCE_FLAG_PREFIXES)]
        for lesion_id, flags in flags_by_lesion.items():
            for flag in flags:
                self.add_flag(lesion_id, flag)
        self.parameters = dict(parameters)

    def renumber(self, mapping: dict[int, int]) -> None:
        """Follow a relabelling of lesion ids (``{old: new}``); ids missing from it are dropped."""
        self.lesions = {mapping[k]: v for k, v in self.lesions.items() if k in mapping}

    # --- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out = dict(self.extra)
        out.update(
            format=FORMAT,
            version=VERSION,
            parameters=dict(self.parameters),
            lesions={str(k): v.to_json() for k, v in sorted(self.lesions.items()) if not v.is_empty()},
        )
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> AnnotationState:
        if not isinstance(obj, dict):
            raise ValueError("top level is not a JSON object")
        lesions_obj = obj.get("lesions", {})
        lesions_obj = {} if lesions_obj is None else lesions_obj
        if not isinstance(lesions_obj, dict):
            raise ValueError("'lesions' is not an object")
        lesions = {}
        for key, value in lesions_obj.items():
            try:
                lesion_id = int(key)
            except ValueError:
                raise ValueError(f"lesion key {key!r} is not an integer id") from None
            lesions[lesion_id] = LesionAnnotation.from_json(value)
        parameters = obj.get("parameters", {})
        parameters = {} if parameters is None else parameters
        if not isinstance(parameters, dict):
            raise ValueError("'parameters' is not an object")
        extra = {k: v for k, v in obj.items() if k not in ("format", "version", "parameters", "lesions")}
        return cls(lesions=lesions, parameters=dict(parameters), extra=extra)

    @classmethod
    def load(cls, path: str | os.PathLike) -> AnnotationState:
        """Read ``path``; a missing file gives an empty state.

        Raises
        ------
        InputFileError
            The file exists but is not valid annotation JSON.
        """
        p = Path(path)
        if not p.exists():
            return cls()
        try:
            return cls.from_json(json.loads(p.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputFileError(p, f"not a valid annotation file ({exc})") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temporary file, then rename)."""
        return atomic_write_json(path, self.to_json())
