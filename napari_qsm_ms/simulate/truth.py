"""File names of the simulation ground truth, beside a simulated study.

``STUDY/derivatives/simulation/sub-<label>/anat/`` holds, on the T2* grid unless stated:

=====================================================  ==============================================
``sub-<label>_desc-truth_Chimap.nii.gz``               true susceptibility, ppm relative to CSF
``sub-<label>_desc-truth_localfield.nii.gz``           field of the brain's sources, ppm of B0
``sub-<label>_desc-truth_backgroundfield.nii.gz``      field of everything else, ppm of B0
``sub-<label>_desc-truth_dseg.nii.gz``                 tissue classes (0 outside, 1 CSF, 2 cortex,
                                                       3 WM, 4 deep GM)
``sub-<label>_desc-truthlesions_dseg.nii.gz``          lesion ids 1..N
``sub-<label>_desc-truthvessels_mask.nii.gz``          veins
``sub-<label>_desc-truthbrain_mask.nii.gz``            brain (tissue > 0)
``sub-<label>_lesions-truth.tsv``                      designed lesions: class, designed deltas, size
``sub-<label>_from-<series>_to-T2starw_desc-truth_xfm.json``  rigid misalignment of a raw series
``sub-<label>_desc-truth_simulation.json``             every parameter of the simulation
=====================================================  ==============================================

The transform JSON holds ``matrix``, a 4x4 world-to-world (scanner RAS+, mm) matrix ``M`` with
``x_T2starw = M @ x_series``: the world coordinates, in the T2* session, of the anatomical point
that the raw series places at ``x_series``. A perfect coregistration recovers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..io.layout import COREG_SERIES, check_label

SIMULATION_DERIVATIVES = Path("derivatives") / "simulation"


@dataclass(frozen=True)
class TruthFiles:
    """Paths of one subject's ground truth."""

    study: Path
    label: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "study", Path(self.study))
        check_label(self.label)

    @property
    def sub(self) -> str:
        return f"sub-{self.label}"

    @property
    def root(self) -> Path:
        return self.study / SIMULATION_DERIVATIVES

    @property
    def anat(self) -> Path:
        return self.root / self.sub / "anat"

    def _f(self, suffix: str, ext: str = ".nii.gz") -> Path:
        return self.anat / f"{self.sub}_{suffix}{ext}"

    @property
    def chimap(self) -> Path:
        return self._f("desc-truth_Chimap")

    @property
    def local_field(self) -> Path:
        return self._f("desc-truth_localfield")

    @property
    def background_field(self) -> Path:
        return self._f("desc-truth_backgroundfield")

    @property
    def tissue(self) -> Path:
        return self._f("desc-truth_dseg")

    @property
    def lesions(self) -> Path:
        return self._f("desc-truthlesions_dseg")

    @property
    def vessels(self) -> Path:
        return self._f("desc-truthvessels_mask")

    @property
    def brain_mask(self) -> Path:
        return self._f("desc-truthbrain_mask")

    @property
    def lesions_tsv(self) -> Path:
        return self._f("lesions-truth", ".tsv")

    def transform(self, key: str) -> Path:
        """Rigid misalignment of raw series ``key`` ('wmn', 'csfn', 'flair'), JSON 4x4."""
        return self._f(f"from-{COREG_SERIES[key].replace('_', '')}_to-T2starw_desc-truth_xfm", ".json")

    @property
    def parameters_json(self) -> Path:
        return self._f("desc-truth_simulation", ".json")
