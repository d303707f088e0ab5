"""The docks' rim and vein numbers (stats/marker_view.py): the same as ``qsm-ms stats`` writes,
the same on a crop around one lesion as on the whole volume, and the overlay pictures agree with
the measures (roi/marker_overlay.py)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from napari_qsm_ms.io.nifti import load_volume
from napari_qsm_ms.roi import marker_overlay
from napari_qsm_ms.stats.marker_view import (
    NO_MAGNITUDE,
    NO_QSM,
    MarkerInputs,
    dock_marker_table,
    first_echo,
    lesion_marker_view,
)
from napari_qsm_ms.stats.markers import MARKER_LESION_COLUMNS

from ..widgets._markers_study import exported_lesions, marker_study
from napari_qsm_ms.io.layout import StudyFiles

TRUTH = "derivatives/simulation/sub-01/anat/sub-01_desc-truth{}.nii.gz"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return StudyFiles.at(marker_study(tmp_path_factory))


def _inputs(study, *, extras: bool = False) -> MarkerInputs:
    sub = study.subject("01")
    les = load_volume(sub.lesions)
    inputs = MarkerInputs(
        les.data.astype(np.int64), les.affine, load_volume(sub.chimap, allow_nan=True).data,
        first_echo(load_volume(sub.magnitude).data), load_volume(sub.tissue).data.astype(np.int64),
    )
    if extras:  # a brain mask and vessels, as a study with them passes them
        inputs.brain = load_volume(study.root / TRUTH.format("brain_mask")).data.astype(np.int64)
        inputs.vessels = load_volume(study.root / TRUTH.format("vessels_mask")).data.astype(np.int64)
    return inputs


def _same(a, b) -> bool:
    if isinstance(b, float) and np.isnan(b):
        return np.isnan(float(a))
    return a == b


def test_dock_table_equals_the_exported_lesions_tsv(study):
    exported = exported_lesions(study.subject("01"))
    table = dock_marker_table(_inputs(study)).set_index("lesion_id")
    assert list(table.index) == list(exported.index)
    for col in MARKER_LESION_COLUMNS:
        for lid in table.index:
            assert _same(table.loc[lid, col], exported.loc[lid, col]), (lid, col)


@pytest.mark.parametrize("extras", [False, True])
def test_one_lesion_on_a_crop_equals_the_whole_volume(study, extras):
    inputs = _inputs(study, extras=extras)
    whole = dock_marker_table(inputs).set_index("lesion_id")
    n_para = 0
    for lid in whole.index:
        view = lesion_marker_view(inputs, int(lid))
        for col in MARKER_LESION_COLUMNS:
            assert _same(view.values[col], whole.loc[lid, col]), (lid, col)
        # the picture agrees with the measure: the coverage of the drawn sectors is rim_coverage
        if np.isfinite(whole.loc[lid, "rim_coverage"]):
            assert view.rim.coverage == pytest.approx(whole.loc[lid, "rim_coverage"], abs=1e-12)
            n_para += int((view.rim.labels == marker_overlay.SECTOR_PARAMAGNETIC).any())
        # vein voxels (whole-volume indices) lie in the lesion; a suggested CVS has some
        lesion = inputs.lesions == lid
        assert all(lesion[tuple(p)] for p in view.vein_index)
        if whole.loc[lid, "cvs_suggested"]:
            assert len(view.vein_index) > 0 and view.vein_vesselness.min() >= 0.15
        assert view.profile is not None and view.profile["voxels"].sum() > 0
    assert n_para >= 3


def test_missing_inputs_say_what_to_run(study):
    inputs = _inputs(study)
    inputs.chi_ppm = None
    notes = inputs.missing()
    assert notes["rim_score_ppm"] == NO_QSM and "vein_score" not in notes
    view = lesion_marker_view(inputs, 1)
    assert view.rim is None and view.profile is None and np.isfinite(view.values["vein_score"])
    inputs.magnitude = None
    assert inputs.missing()["cvs_suggested"] == NO_MAGNITUDE


def test_marker_overlay_doctests():
    assert doctest.testmod(marker_overlay).failed == 0
