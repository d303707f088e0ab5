"""File names of the study layout (docs/study_layout.md). The one place that spells them.

Every other module asks :class:`SubjectFiles` for a path instead of formatting names itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import StudyLayoutError

DERIVATIVES = Path("derivatives") / "qsm-ms"
_SUBJECT_RE = re.compile(r"^sub-([A-Za-z0-9]+)$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")

#: Coregistered series: key -> (raw file entity, derivative name after ``space-T2starw_``).
COREG_SERIES = {
    "wmn": "acq-wmn_T1w",
    "csfn": "acq-csfn_T1w",
    "flair": "FLAIR",
}

TISSUE_LABELS = {0: "outside", 1: "csf", 2: "cortical_gm", 3: "wm", 4: "deep_gm"}
TISSUE_CSF, TISSUE_CORTEX, TISSUE_WM, TISSUE_DEEP_GM = 1, 2, 3, 4


def check_label(label: str, what: str = "subject label") -> str:
    """A BIDS label: letters and digits only."""
    if not _LABEL_RE.match(label or ""):
        raise StudyLayoutError(f"invalid {what} {label!r}: use letters and digits only")
    return label


@dataclass(frozen=True)
class SubjectFiles:
    """Every path of one subject, raw and derived.

    Parameters
    ----------
    study : Path
        Study root (the folder holding ``sub-*``).
    label : str
        Subject label without ``sub-``.
    """

    study: Path
    label: str

    # --- raw ---------------------------------------------------------------------------------
    @property
    def sub(self) -> str:
        return f"sub-{self.label}"

    @property
    def anat(self) -> Path:
        return self.study / self.sub / "anat"

    def _raw(self, suffix: str) -> Path:
        return self.anat / f"{self.sub}_{suffix}.nii.gz"

    @property
    def magnitude(self) -> Path:
        return self._raw("part-mag_T2starw")

    @property
    def phase(self) -> Path:
        return self._raw("part-phase_T2starw")

    @property
    def phase_json(self) -> Path:
        return self.anat / f"{self.sub}_part-phase_T2starw.json"

    def raw_series(self, key: str) -> Path:
        """Native-space WM-nulled MPRAGE (``wmn``), CSF-nulled MPRAGE (``csfn``) or ``flair``."""
        return self._raw(COREG_SERIES[key])

    # --- derivatives ---------------------------------------------------------------------------
    @property
    def deriv(self) -> Path:
        return self.study / DERIVATIVES / self.sub / "anat"

    def _der(self, suffix: str, ext: str = ".nii.gz") -> Path:
        return self.deriv / f"{self.sub}_{suffix}{ext}"

    @property
    def chimap(self) -> Path:
        return self._der("Chimap")

    @property
    def brain_mask(self) -> Path:
        return self._der("desc-brain_mask")

    def coreg_series(self, key: str) -> Path:
        """Series ``key`` resampled onto the T2* grid."""
        return self._der(f"space-T2starw_{COREG_SERIES[key]}")

    def coreg_transform(self, key: str, ext: str = ".tfm") -> Path:
        """Rigid transform of series ``key`` to the T2* grid (ITK ``.tfm`` or ``.json`` 4x4)."""
        return self._der(f"from-{COREG_SERIES[key].replace('_', '')}_to-T2starw_xfm", ext)

    @property
    def tissue(self) -> Path:
        return self._der("desc-tissue_dseg")

    @property
    def lesions(self) -> Path:
        return self._der("desc-lesions_dseg")

    @property
    def refwm(self) -> Path:
        return self._der("desc-refwm_dseg")

    @property
    def refgm(self) -> Path:
        return self._der("desc-refgm_dseg")

    @property
    def vessels(self) -> Path:
        return self._der("desc-vessels_mask")

    @property
    def proposals(self) -> Path:
        """Automatic lesion candidates, kept apart from the drawn lesions until voted."""
        return self._der("desc-proposals_dseg")

    @property
    def lesions_tsv(self) -> Path:
        return self._der("lesions", ".tsv")

    @property
    def annotation_json(self) -> Path:
        """Per-lesion flags, exclusions and notes kept by the annotation workflow."""
        return self._der("desc-annotation", ".json")

    def votes_tsv(self, rater: str) -> Path:
        return self._der(f"rater-{check_label(rater, 'rater name')}_votes", ".tsv")

    def intermediates(self) -> Path:
        return self.deriv / "intermediates"

    @property
    def autosave_dir(self) -> Path:
        """Where the GUI keeps crash-recovery copies of unsaved annotation layers."""
        return self.study / DERIVATIVES / ".autosave" / self.sub


@dataclass(frozen=True)
class StudyFiles:
    """Study-level paths."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike) -> StudyFiles:
        return cls(Path(root))

    @property
    def derivatives(self) -> Path:
        return self.root / DERIVATIVES

    @property
    def agreement_tsv(self) -> Path:
        return self.derivatives / "agreement.tsv"

    @property
    def stats_dir(self) -> Path:
        return self.derivatives / "stats"

    @property
    def raters_tsv(self) -> Path:
        """The panel of raters of the study (column ``rater``), chosen once per study and honoured
        by ``qsm-ms consensus`` and the Consensus dock (see ``rating.panel``)."""
        return self.derivatives / "raters.tsv"

    def subject(self, label: str) -> SubjectFiles:
        return SubjectFiles(self.root, check_label(label))

    def subject_labels(self) -> list[str]:
        """Labels of the ``sub-*`` folders, sorted naturally (2 before 10)."""
        if not self.root.is_dir():
            raise StudyLayoutError(f"{self.root}: study folder not found")
        labels = [m.group(1) for p in self.root.iterdir() if p.is_dir() and (m := _SUBJECT_RE.match(p.name))]
        return sorted(labels, key=_natural_key)

    def subjects(self, labels: list[str] | None = None) -> list[SubjectFiles]:
        """The chosen subjects (all when ``labels`` is empty); unknown labels raise."""
        present = self.subject_labels()
        if not labels:
            return [self.subject(lab) for lab in present]
        missing = [lab.removeprefix("sub-") for lab in labels if lab.removeprefix("sub-") not in present]
        if missing:
            raise StudyLayoutError(f"{self.root}: no subject folder for {', '.join('sub-' + m for m in missing)}")
        return [self.subject(lab.removeprefix("sub-")) for lab in labels]


def subject_from_path(path: str | os.PathLike) -> SubjectFiles | None:
    """The subject a file or folder belongs to (``.../sub-01`` or a file inside it), else None."""
    p = Path(path).resolve()
    for part in [p, *p.parents]:
        m = _SUBJECT_RE.match(part.name)
        if m:
            root = part.parent
            if root.name == "qsm-ms" and root.parent.name == "derivatives":
                root = root.parent.parent
            return SubjectFiles(root, m.group(1))
    return None


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]
