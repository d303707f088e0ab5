"""Invariants of the reference ROIs on random lesion sets (model: skimage expand_labels tests).

The checks below are computed independently on whole slices (no crops), so they also verify that
the per-lesion crops of :func:`build_references` are wide enough.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from napari_qsm_ms.errors import ParameterError
from napari_qsm_ms.io.layout import TISSUE_CORTEX, TISSUE_CSF, TISSUE_WM
from napari_qsm_ms.roi.lesions import lesion_table
from napari_qsm_ms.roi.references import (
    DEFAULT_GAP_MM,
    DEFAULT_RING_MM,
    build_references,
)

from ._synthetic import random_lesions, tissue_map

SEEDS = range(8)
VOXEL = (0.47, 0.47, 1.0)


def _central_slice_numpy(les, k):
    counts = (les == k).sum(axis=(0, 1))
    present = np.flatnonzero(counts)
    first, last = present[0], present[-1]
    best = np.flatnonzero(counts == counts.max())
    return int(best[np.argmin(np.abs(best - (first + last) / 2))])


def _expected_reference(les, tis, classes, k, part, s, px, gap_mm, ring_mm, max_px, exclude=None):
    """Whole-slice brute force: (voxels that must be in the reference, voxels that may be (ties))."""
    code = TISSUE_WM if part == "wm" else TISSUE_CORTEX
    need = {"wm": ("wm", "mixed"), "cortical": ("cortical", "mixed")}[part]
    lab = les[:, :, s]
    lesion = lab == k
    d_mm = ndi.distance_transform_edt(~lesion, sampling=px)
    d_px = ndi.distance_transform_edt(~lesion)
    d_any = ndi.distance_transform_edt(lab == 0, sampling=px)
    within = d_px <= max_px + 1e-9
    comp, _ = ndi.label(((tis[:, :, s] == code) | lesion) & within, structure=np.ones((3, 3)))
    connected = np.isin(comp, [c for c in np.unique(comp[lesion]) if c > 0])
    touching = ndi.binary_dilation(lab > 0, structure=np.ones((3, 3), bool))  # one whole pixel apart
    ok = (
        (d_mm > gap_mm) & (d_mm <= gap_mm + ring_mm + 1e-9) & within & (d_any > gap_mm) & ~touching
        & (tis[:, :, s] == code) & connected
    )
    if exclude is not None:
        ok &= ~exclude[:, :, s]
    must, may = ok.copy(), ok.copy()
    for j in np.unique(lab):
        if j in (0, k) or classes.get(int(j)) not in need:
            continue
        d_j = ndi.distance_transform_edt(lab != j, sampling=px)
        must &= d_mm < d_j - 1e-9
        may &= d_mm <= d_j + 1e-9
    return must, may


def _check_invariants(les, tis, res, classes, *, gap_mm, ring_mm, max_px, all_slices, exclude=None,
                      voxel=VOXEL):
    px = np.array(voxel[:2])
    for part, ref in (("wm", res.refwm), ("cortical", res.refgm)):
        code = TISSUE_WM if part == "wm" else TISSUE_CORTEX
        assert np.all(tis[ref > 0] == code), "reference off its tissue"
        assert np.all(les[ref > 0] == 0), "reference on a lesion"
        if exclude is not None:
            assert not np.any(exclude & (ref > 0)), "reference on an excluded voxel"
        for s in range(les.shape[2]):
            d_any = ndi.distance_transform_edt(les[:, :, s] == 0, sampling=px)
            on = ref[:, :, s] > 0
            assert np.all(d_any[on] > gap_mm), "reference inside a lesion's gap zone"
            touching = ndi.binary_dilation(les[:, :, s] > 0, structure=np.ones((3, 3), bool))
            assert not np.any(on & touching), "reference 8-connected to a lesion on its slice"
        for k in np.unique(ref[ref > 0]):
            assert classes[int(k)] in (("wm", "mixed") if part == "wm" else ("cortical", "mixed"))
            slices = np.flatnonzero((ref == k).any(axis=(0, 1)))
            if all_slices:
                assert set(slices) <= set(np.flatnonzero((les == k).any(axis=(0, 1))))
            else:
                assert list(slices) == [_central_slice_numpy(les, k)], "not on the central slice"
        for k, cls in classes.items():
            if part == "wm" and cls not in ("wm", "mixed") or part == "cortical" and cls not in ("cortical", "mixed"):
                assert not np.any(ref == k)
                continue
            slices = (
                np.flatnonzero((les == k).any(axis=(0, 1))) if all_slices else [_central_slice_numpy(les, k)]
            )
            for s in slices:
                must, may = _expected_reference(les, tis, classes, k, part, s, px, gap_mm, ring_mm, max_px, exclude)
                got = ref[:, :, s] == k
                assert np.all(got[must]), f"lesion {k} {part}: eligible voxels missing on slice {s}"
                assert not np.any(got & ~may), f"lesion {k} {part}: voxels beyond the rules on slice {s}"
            row = res.table[(res.table.lesion_id == k) & (res.table.part == part)]
            assert len(row) == 1
            assert int(row.voxels.iloc[0]) == int((ref == k).sum())


@pytest.mark.parametrize("seed", SEEDS)
def test_invariants_central_slice_default_parameters(seed):
    les = random_lesions(seed)
    tis = tissue_map(les.shape)
    les_before, tis_before = les.copy(), tis.copy()
    res = build_references(les, tis, VOXEL)
    assert np.array_equal(les, les_before) and np.array_equal(tis, tis_before)  # inputs untouched
    assert res.refwm.dtype == np.int32 and res.refgm.dtype == np.int32 and res.refwm.shape == les.shape
    classes = dict(zip(res.table.lesion_id, res.table["class"]))
    assert set(classes) == set(np.unique(les[les > 0]))
    _check_invariants(les, tis, res, classes, gap_mm=DEFAULT_GAP_MM, ring_mm=DEFAULT_RING_MM, max_px=10,
                      all_slices=False)
    # the random sets do produce references of both kinds somewhere
    assert (res.refwm > 0).any()


@pytest.mark.parametrize("voxel", [(1.0, 1.0, 1.5), (0.47, 0.47, 1.0)])
@pytest.mark.parametrize("seed", range(4))
def test_no_reference_pixel_touches_a_lesion_even_diagonally_at_1mm_and_047mm(seed, voxel):
    """Issue 11: at least one whole pixel separates lesion and reference in every in-plane
    direction (no 8-connected contact on the slice), whatever the pixel size; the 1.0 mm default
    alone let references touch lesions diagonally at 1 mm pixels (sqrt 2 > 1.0)."""
    les = random_lesions(seed)
    tis = tissue_map(les.shape)
    res = build_references(les, tis, voxel)
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[:, :, 1] = True  # the 8-neighbourhood on the same slice only
    touching = ndi.binary_dilation(les > 0, structure=in_plane)
    for ref in (res.refwm, res.refgm):
        assert not np.any((ref > 0) & touching), "reference 8-connected to a lesion on its slice"
    assert (res.refwm > 0).any()
    classes = dict(zip(res.table.lesion_id, res.table["class"]))
    _check_invariants(les, tis, res, classes, gap_mm=DEFAULT_GAP_MM, ring_mm=DEFAULT_RING_MM, max_px=10,
                      all_slices=False, voxel=voxel)


@pytest.mark.parametrize("seed", SEEDS)
def test_invariants_all_slices_given_classes_and_exclusion(seed):
    rng = np.random.default_rng(100 + seed)
    les = random_lesions(seed, n=10)
    tis = tissue_map(les.shape)
    ids = np.unique(les[les > 0])
    classes = {int(k): str(rng.choice(["wm", "cortical", "mixed"])) for k in ids}
    exclude = rng.random(les.shape) < 0.05
    gap, ring, max_px = float(rng.uniform(0.3, 1.5)), float(rng.uniform(0.5, 3.0)), float(rng.integers(3, 9))
    if seed % 2:  # odd seeds: a gap larger than the slice thickness, kept through-plane too
        gap, ring = float(rng.uniform(1.05, 1.4)), float(rng.uniform(1.5, 3.0))
    res = build_references(les, tis, VOXEL, lesion_classes=classes, gap_mm=gap, ring_mm=ring,
                           max_distance_px=max_px, all_slices=True, exclude=exclude, gap_3d=bool(seed % 2))
    if seed % 2:
        # brute force: pixels within the gap (3-D) of a lesion voxel on the neighbouring slices
        for s in range(les.shape[2]):
            for other in (s - 1, s + 1):
                if 0 <= other < les.shape[2]:
                    d = ndi.distance_transform_edt(les[:, :, other] == 0, sampling=VOXEL[:2])
                    exclude[:, :, s] |= d**2 + VOXEL[2] ** 2 <= gap**2
    _check_invariants(les, tis, res, classes, gap_mm=gap, ring_mm=ring, max_px=max_px, all_slices=True,
                      exclude=exclude)
    assert (res.refgm > 0).any() and (res.refwm > 0).any()


def test_wm_ring_is_a_donut_with_the_expected_radii():
    les = np.zeros((41, 41, 3), np.int32)
    yy, xx = np.mgrid[:41, :41]
    les[(yy - 20) ** 2 + (xx - 20) ** 2 <= 9, 1] = 1
    tis = np.full(les.shape, TISSUE_WM, np.uint8)
    res = build_references(les, tis, (0.5, 0.5, 1.0), gap_mm=1.0, ring_mm=2.0)
    ring = res.refwm[:, :, 1] == 1
    d = ndi.distance_transform_edt(les[:, :, 1] == 0, sampling=(0.5, 0.5))
    assert np.array_equal(ring, (d > 1.0) & (d <= 3.0))
    # a donut: one component around a hole that holds the lesion and the gap
    assert ndi.label(ring)[1] == 1
    holes = ndi.label(~ring)[0]
    assert holes[20, 20] != holes[0, 0]
    assert not res.refwm[:, :, [0, 2]].any()


def test_cortical_strip_touches_both_sides_of_a_lesion_cutting_a_straight_ribbon():
    shape = (40, 60, 5)
    tis = np.full(shape, TISSUE_WM, np.uint8)
    tis[15:21] = TISSUE_CORTEX  # ribbon along axis 1
    tis[21:] = TISSUE_CSF
    les = np.zeros(shape, np.int32)
    les[15:21, 28:32, 1:4] = 1  # cuts the ribbon across its whole thickness
    res = build_references(les, tis, (0.5, 0.5, 1.0), lesion_classes={1: "cortical"})
    strip = res.refgm[:, :, 2] == 1
    assert not res.refwm.any()
    labels, n = ndi.label(strip)
    assert n == 2
    # one flank on each side of the lesion, each touching the edge of the gap
    assert strip[:, :28].any() and strip[:, 32:].any()
    d = ndi.distance_transform_edt(les[:, :, 2] == 0, sampling=(0.5, 0.5))
    for side in (np.s_[:, :28], np.s_[:, 32:]):
        assert d[side][strip[side]].min() <= DEFAULT_GAP_MM + 0.5
    assert np.all(tis[:, :, 2][strip] == TISSUE_CORTEX)
    # strips follow the ribbon and never cross the CSF to anything else
    assert np.all(np.flatnonzero(strip.any(axis=1)) >= 15) and np.all(np.flatnonzero(strip.any(axis=1)) < 21)


def test_cortex_across_a_sulcus_is_not_continuous_with_the_lesion():
    shape = (40, 40, 3)
    tis = np.full(shape, TISSUE_WM, np.uint8)
    tis[10:16] = TISSUE_CORTEX
    tis[16:18] = TISSUE_CSF  # 1 mm sulcus at 0.5 mm pixels
    tis[18:24] = TISSUE_CORTEX  # the facing bank, within 10 px of the lesion
    tis[24:] = TISSUE_WM
    les = np.zeros(shape, np.int32)
    les[11:15, 18:22, 1] = 1
    res = build_references(les, tis, (0.5, 0.5, 1.0), lesion_classes={1: "cortical"})
    strip = res.refgm[:, :, 1] == 1
    assert strip[10:16].any()
    assert not strip[18:24].any()


def test_mixed_lesion_gets_both_references_and_wm_lesions_only_a_ring():
    shape = (48, 48, 3)
    tis = np.full(shape, TISSUE_WM, np.uint8)
    tis[20:26] = TISSUE_CORTEX
    tis[26:] = TISSUE_CSF
    les = np.zeros(shape, np.int32)
    les[16:24, 10:16, 1] = 1  # straddles the WM/cortex border
    les[6:10, 30:34, 1] = 2  # deep in WM
    res = build_references(les, tis, (0.5, 0.5, 1.0))
    t = res.table.set_index(["lesion_id", "part"])
    assert t.loc[(1, "wm"), "class"] == "mixed"
    assert t.loc[(1, "wm"), "voxels"] > 0 and t.loc[(1, "cortical"), "voxels"] > 0
    assert (res.refwm == 1).any() and (res.refgm == 1).any()
    assert (res.refwm == 2).any() and not (res.refgm == 2).any()
    assert (2, "cortical") not in t.index


def test_neighbouring_lesions_split_the_tissue_between_them():
    les = np.zeros((30, 60, 3), np.int32)
    les[13:17, 20:24, 1] = 1
    les[13:17, 34:38, 1] = 2  # 10 px apart: their rings compete
    tis = np.full(les.shape, TISSUE_WM, np.uint8)
    res = build_references(les, tis, (0.5, 0.5, 1.0), gap_mm=0.5, ring_mm=4.0, max_distance_px=10)
    r1, r2 = res.refwm[:, :, 1] == 1, res.refwm[:, :, 1] == 2
    assert r1.any() and r2.any()
    d1 = ndi.distance_transform_edt(les[:, :, 1] != 1)
    d2 = ndi.distance_transform_edt(les[:, :, 1] != 2)
    assert np.all(d1[r1] <= d2[r1]) and np.all(d2[r2] <= d1[r2])
    # without the neighbour, lesion 1's ring reaches further towards it
    alone = build_references(np.where(les == 2, 0, les), tis, (0.5, 0.5, 1.0), gap_mm=0.5, ring_mm=4.0)
    assert (alone.refwm == 1).sum() > r1.sum()


def test_too_small_reference_is_flagged():
    les = np.zeros((30, 30, 3), np.int32)
    les[14:16, 14:16, 1] = 1
    tis = np.full(les.shape, TISSUE_CSF, np.uint8)
    tis[12:18, 12:18] = TISSUE_WM  # barely any WM beyond the gap
    res = build_references(les, tis, (0.5, 0.5, 1.0), gap_mm=1.0, min_voxels=20)
    row = res.table.iloc[0]
    assert row.voxels == 12  # the corners of the 6x6 WM square beyond the 1 mm gap
    assert "reference_too_small" in row["flags"].split(";")
    res = build_references(les, tis, (0.5, 0.5, 1.0), gap_mm=1.0, min_voxels=12)
    assert res.table.iloc[0]["flags"] == ""
    res = build_references(les, tis, (0.5, 0.5, 1.0), gap_mm=1.0, min_voxels=13)
    assert res.table.iloc[0]["flags"] == "reference_too_small"
    tis[:] = TISSUE_CSF
    res = build_references(les, tis, (0.5, 0.5, 1.0), lesion_classes={1: "wm"})
    assert set(res.table.iloc[0]["flags"].split(";")) == {"reference_too_small", "reference_empty"}


def test_rejected_lesions_get_no_reference_but_keep_their_gap():
    les = np.zeros((40, 40, 3), np.int32)
    les[10:14, 18:22, 1] = 1
    les[18:20, 18:20, 1] = 2
    tis = np.full(les.shape, TISSUE_WM, np.uint8)
    res = build_references(les, tis, (0.5, 0.5, 1.0), lesion_classes={1: "wm", 2: "rejected"})
    assert not (res.refwm == 2).any()
    assert res.table.set_index("lesion_id").loc[2, "flags"] == "no_reference_for_class_rejected"
    d2 = ndi.distance_transform_edt(les[:, :, 1] != 2, sampling=(0.5, 0.5))
    assert np.all(d2[res.refwm[:, :, 1] == 1] > DEFAULT_GAP_MM)


def test_slice_axis_and_anisotropic_pixels_follow_the_geometry():
    les = random_lesions(3, shape=(48, 48, 8), n=8)
    tis = tissue_map(les.shape)
    res = build_references(les, tis, (0.4, 0.6, 1.2))
    moved = build_references(
        np.moveaxis(les, 2, 0), np.moveaxis(tis, 2, 0), (1.2, 0.4, 0.6), slice_axis=0
    )
    assert np.array_equal(np.moveaxis(moved.refwm, 0, 2), res.refwm)
    assert np.array_equal(np.moveaxis(moved.refgm, 0, 2), res.refgm)
    # anisotropic in-plane pixels: the 1 mm gap is 2.5 px along axis 0 but ~1.7 px along axis 1
    one = np.zeros((40, 40, 3), np.int32)
    one[20, 20, 1] = 1
    r = build_references(one, np.full(one.shape, TISSUE_WM, np.uint8), (0.4, 0.6, 1.0), gap_mm=1.0,
                         ring_mm=1.0).refwm[:, :, 1]
    assert r[23, 20] == 1 and r[22, 20] == 0  # 1.2 mm in, 0.8 mm out (axis 0)
    assert r[20, 22] == 1 and r[20, 21] == 0  # 1.2 mm in, 0.6 mm out (axis 1)


def test_only_ids_builds_a_subset_with_the_same_result():
    les = random_lesions(5)
    tis = tissue_map(les.shape)
    full = build_references(les, tis, VOXEL)
    part = build_references(les, tis, VOXEL, only_ids=[2, 4])
    for k in (2, 4):
        assert np.array_equal(part.refwm == k, full.refwm == k)
        assert np.array_equal(part.refgm == k, full.refgm == k)
    assert set(np.unique(part.refwm)) <= {0, 2, 4}


def test_suggested_classes_match_the_lesion_table():
    les = random_lesions(7)
    tis = tissue_map(les.shape)
    res = build_references(les, tis, VOXEL)
    table = lesion_table(les, tis, VOXEL)
    got = res.table.drop_duplicates("lesion_id").set_index("lesion_id")["class"]
    assert got.to_dict() == dict(zip(table.lesion_id, table.suggested_class))


def test_empty_lesion_array_gives_empty_references():
    les = np.zeros((10, 10, 4), np.int32)
    res = build_references(les, np.full(les.shape, 3, np.uint8), VOXEL)
    assert not res.refwm.any() and not res.refgm.any() and res.table.empty
    assert list(res.table.columns) == ["lesion_id", "class", "part", "slices", "voxels", "flags"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"gap_mm": -1}, "gap_mm"),
        ({"ring_mm": 0}, "ring_mm"),
        ({"max_distance_px": float("nan")}, "max_distance_px"),
        ({"min_voxels": -2}, "min_voxels"),
        ({"slice_axis": 3}, "slice_axis"),
        ({"exclude": np.zeros((2, 2, 2), bool)}, "exclude"),
    ],
)
def test_bad_parameters_raise_one_line_errors(kwargs, message):
    les = np.zeros((8, 8, 4), np.int32)
    les[3, 3, 1] = 1
    with pytest.raises(ParameterError, match=message):
        build_references(les, np.full(les.shape, 3, np.uint8), VOXEL, **kwargs)


def test_bad_arrays_raise():
    les = np.zeros((8, 8, 4), np.int32)
    with pytest.raises(ParameterError, match="tissue shape"):
        build_references(les, np.zeros((8, 8, 3), np.uint8), VOXEL)
    with pytest.raises(ParameterError, match="voxel_size_mm"):
        build_references(les, np.zeros_like(les), (0.5, 0, 1))
    with pytest.raises(ParameterError, match="whole numbers"):
        build_references(les + 0.5, np.zeros_like(les), VOXEL)


def test_gap_3d_keeps_the_gap_through_plane():
    les = np.zeros((40, 40, 5), np.int32)
    les[15:25, 15:25, 2] = 1  # central slice of lesion 1 (one slice)
    les[30:33, 18:22, 3] = 2  # lesion 2 on the next slice only, inside lesion 1's ring
    tis = np.full(les.shape, TISSUE_WM, np.uint8)
    vs = (0.5, 0.5, 0.8)
    plain = build_references(les, tis, vs, gap_mm=1.0, lesion_classes={1: "wm", 2: "rejected"})
    above = les[:, :, 3] == 2
    assert (plain.refwm[:, :, 2][above] == 1).all()  # the paper's rule: in-plane gap only
    res = build_references(les, tis, vs, gap_mm=1.0, gap_3d=True, lesion_classes={1: "wm", 2: "rejected"})
    ring = res.refwm[:, :, 2] == 1
    d_in = ndi.distance_transform_edt(~above, sampling=vs[:2])
    blocked = d_in**2 + 0.8**2 <= 1.0
    assert not ring[blocked].any()
    assert np.array_equal(ring, (plain.refwm[:, :, 2] == 1) & ~blocked)
    assert blocked.sum() > above.sum()  # 0.6 mm of in-plane margin beyond lesion 2's outline


def test_lesion_classes_as_a_table_or_mapping_any_case():
    les = random_lesions(2)
    tis = tissue_map(les.shape)
    ids = [int(i) for i in np.unique(les[les > 0])]
    classes = {k: ("WM" if k % 2 else " Cortical") for k in ids}
    a = build_references(les, tis, VOXEL, lesion_classes=classes)
    b = build_references(les, tis, VOXEL, lesion_classes=pd.DataFrame(
        {"lesion_id": ids, "class": [classes[k] for k in ids]}))
    assert np.array_equal(a.refwm, b.refwm) and np.array_equal(a.refgm, b.refgm)
    assert set(a.table["class"]) == {"wm", "cortical"}
    with pytest.raises(ParameterError, match="lesion_classes"):
        build_references(les, tis, VOXEL, lesion_classes=[1, 2])
    with pytest.raises(ParameterError, match="'lesion_id' and 'class'"):
        build_references(les, tis, VOXEL, lesion_classes=pd.DataFrame({"id": [1]}))


def test_reference_exclusion_combines_vessels_and_outside_of_brain_mask():
    from napari_qsm_ms.roi.references import reference_exclusion

    rng = np.random.default_rng(3)
    vessels = rng.random((6, 7, 5)) > 0.8
    brain = (rng.random((6, 7, 5)) > 0.3).astype(np.uint8)
    assert reference_exclusion() is None
    np.testing.assert_array_equal(reference_exclusion(vessels), vessels)
    np.testing.assert_array_equal(reference_exclusion(None, brain), brain == 0)
    np.testing.assert_array_equal(reference_exclusion(vessels.astype(np.int32), brain), vessels | (brain == 0))
