"""Measured NAIMS exclusions of the central vein sign (roi/veins.py): confluent lesions, several
veins, small lesions; and the closed-form eigenvalues the vesselness uses.

Synthetic lesions drawn in mm on 1 mm and 0.47 x 0.47 x 1 mm grids; expectations from the
geometry, not from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_qsm_ms.errors import ParameterError
from napari_qsm_ms.rating.markers import CVS_EXCLUSIONS
from napari_qsm_ms.roi.veins import (
    CVS_MEASURED_EXCLUSIONS,
    confluent_lesions,
    cvs_exclusions,
    symmetric_eigenvalues_3x3,
    vein_metrics,
)

GRIDS = [(1.0, 1.0, 1.0), (0.47, 0.47, 1.0)]


def _grid(vs, size_mm=24.0):
    vs = np.asarray(vs, float)
    shape = tuple(int(np.ceil(size_mm / v)) for v in vs)
    idx = np.indices(shape).reshape(3, -1).T.astype(float)
    return shape, ((idx - (np.asarray(shape) - 1) / 2.0) * vs).reshape(*shape, 3)


def _lesion_with_veins(vs, offsets_mm, direction=(0, 0, 1), radius_mm=0.5, seed=0):
    """A 4.5 mm-radius lesion with dark veins parallel to ``direction``, offset sideways (mm)."""
    shape, pts = _grid(vs)
    lesion = np.linalg.norm(pts, axis=-1) <= 4.5
    mag = np.where(lesion, 520.0, 400.0)
    u = np.asarray(direction, float) / np.linalg.norm(direction)
    side = np.cross(u, [0.0, 0.0, 1.0] if abs(u[2]) < 0.9 else [1.0, 0.0, 0.0])
    side /= np.linalg.norm(side)
    h = float(np.mean(vs))
    for off in offsets_mm:
        p = pts - off * side
        dist = np.linalg.norm(p - (p @ u)[..., None] * u, axis=-1)
        pv = np.clip(0.5 + (radius_mm - dist) / h, 0, 1)
        mag = mag * (1 - pv) + 0.15 * mag * pv
    mag = mag + np.random.default_rng(seed).normal(0, 10.0, shape)
    return mag.astype(np.float32), lesion.astype(np.int32)


@pytest.mark.parametrize("vs", GRIDS)
@pytest.mark.parametrize("direction", [(0, 0, 1), (1, 0, 0)])
def test_two_parallel_veins_are_multiple_veins(vs, direction):
    one = vein_metrics(*_lesion_with_veins(vs, [0.0], direction), vs).iloc[0]
    two = vein_metrics(*_lesion_with_veins(vs, [-2.0, 2.0], direction), vs).iloc[0]
    assert one["n_veins"] == 1 and not one["cvs_excluded"] and one["cvs_suggested"]
    assert two["n_veins"] == 2
    assert two["cvs_excluded"] and "multiple_veins" in two["cvs_exclusion_reason"].split(";")
    assert not two["cvs_eligible"] and not two["cvs_suggested"]


@pytest.mark.parametrize("vs", GRIDS)
def test_no_vein_counts_zero(vs):
    row = vein_metrics(*_lesion_with_veins(vs, []), vs).iloc[0]
    assert row["n_veins"] == 0 and not row["cvs_excluded"]


def _two_spheres(vs, gap_mm):
    """Two 3.5 mm-radius spheres along axis 0 whose surfaces are ``gap_mm`` apart (mm)."""
    shape, pts = _grid(vs, 30.0)
    c = 3.5 + gap_mm / 2.0
    lab = np.zeros(shape, np.int32)
    lab[np.linalg.norm(pts - [c, 0, 0], axis=-1) <= 3.5] = 2
    lab[np.linalg.norm(pts + [c, 0, 0], axis=-1) <= 3.5] = 1
    return lab


@pytest.mark.parametrize("vs", GRIDS)
def test_touching_lesions_are_confluent_separate_ones_not(vs):
    touching = _two_spheres(vs, 0.0)  # the surfaces meet: voxels of both share faces
    apart = _two_spheres(vs, 4.0)
    assert confluent_lesions(touching, vs) == {1: [2], 2: [1]}
    assert confluent_lesions(apart, vs) == {1: [], 2: []}
    assert confluent_lesions(apart, vs, gap_mm=4.0 + 2 * max(vs))[1] == [2]
    table = cvs_exclusions(touching, vs).set_index("lesion_id")
    assert table["cvs_excluded"].all() and (table["cvs_exclusion_reason"] == "confluent").all()
    assert table.loc[1, "confluent_with"] == "2"
    assert not cvs_exclusions(apart, vs)["cvs_excluded"].any()


def test_merged_label_touching_diagonally_is_confluent():
    lab = np.zeros((12, 12, 12), np.int32)
    lab[2:6, 2:6, 2:6] = 1
    lab[6:10, 6:10, 6:10] = 2  # corner to corner
    assert confluent_lesions(lab, (1, 1, 1)) == {1: [2], 2: [1]}


def test_small_and_several_reasons_and_vocabulary():
    lab = np.zeros((20, 20, 20), np.int32)
    lab[5:7, 5:7, 5:7] = 1  # 2 mm: small
    lab[7:12, 5:10, 5:10] = 2  # touches 1
    table = cvs_exclusions(lab, (1, 1, 1), n_veins={1: 0, 2: 3}).set_index("lesion_id")
    assert table.loc[1, "cvs_exclusion_reason"] == "small;confluent"
    assert table.loc[2, "cvs_exclusion_reason"] == "confluent;multiple_veins"
    assert set(CVS_MEASURED_EXCLUSIONS) <= set(CVS_EXCLUSIONS)  # the raters' vocabulary
    with pytest.raises(ParameterError):
        confluent_lesions(lab, (1, 1, 1), gap_mm=-1.0)


@pytest.mark.parametrize("seed", range(3))
def test_closed_form_eigenvalues_equal_lapack(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(500, 3, 3))
    h = a + a.transpose(0, 2, 1)
    h[:5] = np.diag([1.0, 1.0, 1.0])  # repeated eigenvalues
    h[5:10] = 0.0
    np.testing.assert_allclose(symmetric_eigenvalues_3x3(h), np.linalg.eigvalsh(h), atol=1e-9)
