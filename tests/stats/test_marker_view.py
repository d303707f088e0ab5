"""The docks' rim and vein numbers (stats/marker_view.py): the same as ``qsm-ms stats`` writes,
the same on a crop around one lesion as on the whole volume, and the overlay pictures agree with
the measures (roi/marker_overlay.py)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from napari_qsm_ms.io.nifti import load_volume
from napari_qsm_ms.roi import marker_overlay
from napari_qsm_ms.stats import marker_view
from napari_qsm_ms.stats.marker_view import (
    NO_MAGNITUDE,
    NO_QSM,
    MarkerInputs,
    dock_marker_table,
    first_echo,
    lesion_marker_view,
)
from napari_qsm_ms.stats.markers import MARKER_LESION_COLUMNS

from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.stats.marker_view import marker_decisions
from napari_qsm_ms.stats.markers import read_rated_markers

from ..widgets._markers_study import exported_lesions, marker_study, marker_subject, rate_rims, same_value

TRUTH = "derivatives/simulation/sub-01/anat/sub-01_desc-truth{}.nii.gz"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return StudyFiles.at(marker_study(tmp_path_factory))


def _inputs(study, *, extras: bool = False, rated: bool = False) -> MarkerInputs:
    sub = study.subject("01")
    les = load_volume(sub.lesions)
    inputs = MarkerInputs(
        les.data.astype(np.int64), les.affine, load_volume(sub.chimap, allow_nan=True).data,
        first_echo(load_volume(sub.magnitude).data), load_volume(sub.tissue).data.astype(np.int64),
        rated=read_rated_markers(sub) if rated else None,
    )
    if extras:  # a brain mask and vessels, as a study with them passes them
        inputs.brain = load_volume(study.root / TRUTH.format("brain_mask")).data.astype(np.int64)
        inputs.vessels = load_volume(study.root / TRUTH.format("vessels_mask")).data.astype(np.int64)
    return inputs


def test_dock_table_equals_the_exported_lesions_tsv(study):
    exported = exported_lesions(study.subject("01"))
    table = dock_marker_table(_inputs(study)).set_index("lesion_id")
    assert list(table.index) == list(exported.index)
    for col in MARKER_LESION_COLUMNS:
        for lid in table.index:
            assert same_value(table.loc[lid, col], exported.loc[lid, col]), (lid, col)


def test_rated_decisions_equal_the_exported_lesions_tsv(tmp_path_factory, tmp_path):
    """The rim round's consensus (MarkerInputs(rated=...)) decides in the dock as in qsm-ms stats:
    a measured non-PRL rated yes, a measured CVS rated absent, a lesion rated excluded."""
    sub = marker_subject(tmp_path_factory, tmp_path)
    before = exported_lesions(sub)
    not_prl = int(before.index[~before["prl_suggested"].astype(bool) & np.isfinite(before["rim_score_ppm"])][0])
    cvs = int(before.index[before["cvs_suggested"].astype(bool)][0])
    other = int(next(i for i in before.index if i not in (not_prl, cvs)))
    rate_rims(sub, prl={not_prl: "yes"}, cvs={cvs: "absent", other: "excluded"})
    exported = exported_lesions(sub)
    study = StudyFiles.at(sub.study)
    table = dock_marker_table(_inputs(study, rated=True)).set_index("lesion_id")
    for col in MARKER_LESION_COLUMNS:
        for lid in table.index:
            assert same_value(table.loc[lid, col], exported.loc[lid, col]), (lid, col)
    assert bool(exported.loc[not_prl, "prl"]) and exported.loc[not_prl, "prl_source"] == "rated"
    assert not exported.loc[cvs, "cvs"] and exported.loc[other, "cvs_exclusion_reason"] == "rated"
    decided = {lid: marker_decisions(table.loc[lid]) for lid in (not_prl, cvs, other)}
    assert decided[not_prl]["prl"][0] == "yes" and "rim round" in decided[not_prl]["prl"][1]
    assert decided[cvs]["cvs"][0] == "no" and decided[other]["cvs"][0] == "excl"
    # without the consensus (rated=None) the measure decides: the dock would differ from stats
    assert not dock_marker_table(_inputs(study)).set_index("lesion_id").loc[not_prl, "prl"]


@pytest.mark.parametrize("extras", [False, True])
def test_one_lesion_on_a_crop_equals_the_whole_volume(study, extras):
    inputs = _inputs(study, extras=extras)
    whole = dock_marker_table(inputs).set_index("lesion_id")
    n_para = 0
    for lid in whole.index:
        view = lesion_marker_view(inputs, int(lid))
        for col in MARKER_LESION_COLUMNS:
            assert same_value(view.values[col], whole.loc[lid, col]), (lid, col)
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
    assert doctest.testmod(marker_view).failed == 0
