"""The ROI layer on the simulator's head phantom (designed lesion classes and positions)."""

from __future__ import annotations

import pytest

from napari_qsm_ms.roi.lesions import lesion_table
from napari_qsm_ms.roi.references import DEFAULT_GAP_MM, DEFAULT_RING_MM, build_references

from .test_references import _check_invariants

make_phantom = pytest.importorskip("napari_qsm_ms.simulate.phantom").make_phantom


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(seed=3)


def test_suggested_classes_match_the_designed_classes(phantom):
    table = lesion_table(phantom.lesion_ids, phantom.tissue, phantom.voxel_size_mm)
    designed = dict(zip(phantom.lesion_table.lesion_id, phantom.lesion_table["class"]))
    assert dict(zip(table.lesion_id, table.suggested_class)) == designed


def test_every_phantom_lesion_gets_its_references_and_the_rules_hold(phantom):
    designed = {int(k): str(c) for k, c in zip(phantom.lesion_table.lesion_id, phantom.lesion_table["class"])}
    res = build_references(phantom.lesion_ids, phantom.tissue, phantom.voxel_size_mm, lesion_classes=designed,
                           max_distance_px=5)
    for k, cls in designed.items():
        if cls in ("wm", "mixed"):
            assert (res.refwm == k).any(), f"lesion {k} ({cls}) has no WM reference"
        if cls in ("cortical", "mixed"):
            assert (res.refgm == k).any(), f"lesion {k} ({cls}) has no cortical reference"
    _check_invariants(phantom.lesion_ids, phantom.tissue, res, designed, gap_mm=DEFAULT_GAP_MM,
                      ring_mm=DEFAULT_RING_MM, max_px=5, all_slices=False, voxel=phantom.voxel_size_mm)
