"""Lesion table values against direct numpy computation; label edits."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_qsm_ms.errors import ParameterError
from napari_qsm_ms.io.layout import TISSUE_CORTEX, TISSUE_WM
from napari_qsm_ms.roi.lesions import (
    TABLE_COLUMNS,
    central_slices,
    delete_lesions,
    feret_extent_mm,
    lesion_parts,
    lesion_table,
    merge_lesions,
    next_free_id,
    relabel_sequential,
    split_lesion,
    suggest_class,
)

from ._synthetic import random_lesions, tissue_map

VOXEL = (0.47, 0.5, 1.1)


def _feret_brute(pts, vs):
    """Largest distance between corners of two voxel cubes, over every pair and corner."""
    corners = np.array(list(itertools.product([-0.5, 0.5], repeat=3)))
    allc = ((pts[:, None, :] + corners[None]) * np.asarray(vs)).reshape(-1, 3)
    d = np.sqrt(((allc[:, None] - allc[None]) ** 2).sum(-1))
    return d.max()


@pytest.mark.parametrize("seed", range(5))
def test_lesion_table_matches_direct_numpy(seed):
    les = random_lesions(seed, shape=(64, 40, 12), n=10)
    tis = tissue_map(les.shape)
    tis[les == 3] = 0  # some lesion voxels outside cortex/WM
    qsm_mask = np.ones(les.shape, bool)
    qsm_mask[:, :5] = False  # an eroded edge
    table = lesion_table(les, tis, VOXEL, min_extent_mm=2.0, mask=qsm_mask)
    assert list(table.columns) == TABLE_COLUMNS
    ids = sorted(int(i) for i in np.unique(les) if i)
    assert table.lesion_id.tolist() == ids
    for row in table.itertuples(index=False):
        m = les == row.lesion_id
        pts = np.argwhere(m)
        assert row.voxels == m.sum()
        assert row.volume_mm3 == pytest.approx(m.sum() * np.prod(VOXEL))
        z = np.flatnonzero(m.any(axis=(0, 1)))
        assert (row.first_slice, row.last_slice) == (z[0], z[-1])
        counts = m.sum(axis=(0, 1))
        assert counts[row.central_slice] == counts.max()
        n_ctx, n_wm = (tis[m] == TISSUE_CORTEX).sum(), (tis[m] == TISSUE_WM).sum()
        if n_ctx + n_wm:
            assert row.cortex_fraction == pytest.approx(n_ctx / (n_ctx + n_wm))
        else:
            assert np.isnan(row.cortex_fraction)
        assert row.suggested_class == suggest_class(row.cortex_fraction)
        assert row.centroid_vox == pytest.approx(tuple(pts.mean(axis=0)))
        if len(pts) <= 150:
            exact = _feret_brute(pts, VOXEL)
            tol = 1e-9 if len(pts) <= 64 else 0.01 * exact
            assert exact - tol <= row.extent_mm <= exact + 1e-9
        flags = set(row.flags.split(";")) - {""}
        assert ("small" in flags) == (row.extent_mm < 2.0)
        assert ("single_slice" in flags) == (z[0] == z[-1])
        assert ("disconnected" in flags) == (ndi.label(m, structure=np.ones((3, 3, 3)))[1] > 1)
        assert ("off_tissue" in flags) == ((m.sum() - n_ctx - n_wm) / m.sum() > 0.10)
        assert ("outside_mask" in flags) == ((m & ~qsm_mask).sum() / m.sum() > 0.10)


def test_large_lesion_extent_within_one_percent_of_exact():
    rng = np.random.default_rng(1)
    for _ in range(5):
        les = np.zeros((40, 40, 12), np.int32)
        grid = np.ogrid[:40, :40, :12]
        c = rng.uniform([15, 15, 4], [25, 25, 8])
        r = rng.uniform([4, 2, 1.5], [12, 6, 4])
        les[sum(((g - cc) / rr) ** 2 for g, cc, rr in zip(grid, c, r)) <= 1] = 1
        pts = np.argwhere(les == 1)
        assert len(pts) > 64
        exact = feret_extent_mm(pts, VOXEL)
        got = lesion_table(les, None, VOXEL).extent_mm.iloc[0]
        assert exact * 0.99 <= got <= exact + 1e-9


def test_feret_extent_small_cases():
    assert feret_extent_mm(np.array([[0, 0, 0]]), (1, 1, 1)) == pytest.approx(np.sqrt(3))
    assert feret_extent_mm(np.array([[0, 0, 0], [0, 0, 4]]), (0.5, 0.5, 1.0)) == pytest.approx(
        np.sqrt(0.25 + 0.25 + 25)
    )
    pts = np.argwhere(np.ones((3, 2, 2)))
    assert feret_extent_mm(pts, (1, 1, 1)) == pytest.approx(_feret_brute(pts, (1, 1, 1)))


def test_small_flag_uses_the_extent_threshold():
    les = np.zeros((20, 20, 5), np.int32)
    les[5:8, 5, 2] = 1  # 3 x 0.47 = 1.41 mm long, diagonal < 2 mm
    les[10:16, 10, 1:3] = 2  # 6 x 0.47 = 2.82 mm
    t = lesion_table(les, None, (0.47, 0.47, 1.0)).set_index("lesion_id")
    assert "small" in t.loc[1, "flags"] and "single_slice" in t.loc[1, "flags"]
    assert "small" not in t.loc[2, "flags"]
    t3 = lesion_table(les, None, (0.47, 0.47, 1.0), min_extent_mm=4.0).set_index("lesion_id")
    assert "small" in t3.loc[2, "flags"]


def test_central_slice_ties_go_to_the_middle():
    les = np.zeros((5, 5, 9), np.int32)
    les[1:3, 1:3, 1:8] = 4  # 7 equal slices 1..7 -> middle is 4
    assert central_slices(les) == {4: 4}
    assert lesion_table(les, None, (1, 1, 1)).central_slice.iloc[0] == 4
    les[1:4, 1:4, 2] = 4  # a fuller slice wins
    assert central_slices(les) == {4: 2}
    les2 = np.zeros((5, 5, 9), np.int32)
    les2[1:3, 1:3, 3:5] = 1  # two tied slices 3, 4: middle 3.5 -> lower index
    assert central_slices(les2) == {1: 3}
    assert central_slices(np.moveaxis(les, 2, 0), slice_axis=0) == {4: 2}


def test_empty_table_has_the_columns():
    t = lesion_table(np.zeros((4, 4, 4), np.int32), np.zeros((4, 4, 4), np.uint8), (1, 1, 1))
    assert t.empty and list(t.columns) == TABLE_COLUMNS


def test_suggest_class_thresholds():
    assert [suggest_class(f) for f in (0.0, 0.249, 0.25, 0.5, 0.75, 0.751, 1.0)] == [
        "wm", "wm", "mixed", "mixed", "mixed", "cortical", "cortical"]
    assert suggest_class(float("nan")) == "wm"


def test_merge_split_relabel_delete_next_free_id():
    les = np.zeros((10, 10, 3), np.int32)
    les[1:3, 1:3, 1] = 2
    les[6:8, 6:8, 1] = 5
    les[1, 8, 0] = 7
    assert next_free_id(les) == 8
    merged = merge_lesions(les, [7, 5])
    assert set(np.unique(merged)) == {0, 2, 5}
    flags = lesion_table(merged, None, (1, 1, 1)).set_index("lesion_id")["flags"]
    assert "disconnected" in flags[5] and "disconnected" not in flags[2]
    assert (merged == 5).sum() == (les == 5).sum() + (les == 7).sum()
    assert (les == 7).sum() == 1  # input untouched
    # splitting the merged lesion gives back the two parts; the larger keeps the id
    split, new_ids = split_lesion(merged, 5)
    assert new_ids == [6]
    assert np.array_equal(split == 5, les == 5) and np.array_equal(split == 6, les == 7)
    # diagonal (26-) neighbours stay one lesion
    diag = np.zeros((4, 4, 4), np.int32)
    diag[0, 0, 0] = diag[1, 1, 1] = 3
    assert split_lesion(diag, 3)[1] == []
    with pytest.raises(ParameterError, match="not in the array"):
        split_lesion(les, 9)
    relabelled, mapping = relabel_sequential(les)
    assert mapping == {2: 1, 5: 2, 7: 3}
    for old, new in mapping.items():
        assert np.array_equal(relabelled == new, les == old)
    assert set(np.unique(delete_lesions(les, [2, 7]))) == {0, 5}
    with pytest.raises(ParameterError):
        merge_lesions(les, [])


def test_split_orders_new_ids_by_size():
    les = np.zeros((3, 3, 12), np.int32)
    les[1, 1, [0]] = 1
    les[1, 1, 2:5] = 1
    les[1, 1, 6:8] = 1
    les[1, 1, 9:11] = 2
    out, new_ids = split_lesion(les, 1)
    assert new_ids == [3, 4]
    assert out[1, 1, 2:5].tolist() == [1, 1, 1]
    assert out[1, 1, 6:8].tolist() == [3, 3]
    assert out[1, 1, 0] == 4


def test_lesion_parts_follow_the_architecture_rule():
    les = np.zeros((6, 6, 2), np.int32)
    les[1:5, 2:4, 0] = 1
    tis = np.full(les.shape, TISSUE_WM, np.uint8)
    tis[3:, :, :] = TISSUE_CORTEX
    wm, ctx = lesion_parts(les, tis, 1, "mixed")
    assert np.array_equal(wm, (les == 1) & (tis == TISSUE_WM))
    assert np.array_equal(ctx, (les == 1) & (tis == TISSUE_CORTEX))
    wm, ctx = lesion_parts(les, tis, 1, "wm")
    assert np.array_equal(wm, les == 1) and not ctx.any()
    wm, ctx = lesion_parts(les, tis, 1, "cortical")
    assert np.array_equal(ctx, les == 1) and not wm.any()
    with pytest.raises(ParameterError, match="unknown lesion class"):
        lesion_parts(les, tis, 1, "deep")


def test_bad_inputs():
    with pytest.raises(ParameterError, match="3-D"):
        lesion_table(np.zeros((4, 4)), None, (1, 1, 1))
    with pytest.raises(ParameterError, match="negative"):
        lesion_table(-np.ones((2, 2, 2), int), None, (1, 1, 1))
    with pytest.raises(ParameterError, match="tissue shape"):
        lesion_table(np.ones((2, 2, 2), int), np.ones((2, 2, 3)), (1, 1, 1))
    with pytest.raises(ParameterError, match="voxel_size_mm"):
        lesion_table(np.ones((2, 2, 2), int), None, (1, 1))


def test_interpolate_slices_fills_gaps_by_shape():
    from napari_qsm_ms.roi.lesions import interpolate_slices

    yy, xx = np.mgrid[:30, :30]
    disc = (yy - 15) ** 2 + (xx - 15) ** 2 <= 36
    les = np.zeros((30, 30, 9), np.int32)
    les[:, :, 1][disc] = 3
    les[:, :, 5][disc] = 3
    les[:, :, 6][disc] = 3  # contiguous with 5: nothing between
    les[14:17, 14:17, 3] = 8  # another lesion in the gap is kept
    new, filled = interpolate_slices(les, 3, voxel_size_mm=(0.5, 0.5, 1.0))
    assert filled == [2, 3, 4]
    for s in (2, 4):
        assert np.array_equal(new[:, :, s] == 3, disc)
    assert np.array_equal(new[:, :, 3] == 3, disc & (les[:, :, 3] != 8))
    assert np.array_equal(new[:, :, 3] == 8, les[:, :, 3] == 8)
    assert not new[:, :, [0, 7, 8]].any() and (les[:, :, 2] == 0).all()  # input untouched
    # an overlapping shifted disc moves smoothly: the middle slice's centre lies halfway
    les2 = np.zeros((30, 40, 5), np.int32)
    yy, xx = np.mgrid[:30, :40]
    les2[:, :, 0][(yy - 15) ** 2 + (xx - 10) ** 2 <= 25] = 1
    les2[:, :, 4][(yy - 15) ** 2 + (xx - 16) ** 2 <= 25] = 1
    out, _ = interpolate_slices(les2, 1)
    assert np.argwhere(out[:, :, 2] == 1)[:, 1].mean() == pytest.approx(13, abs=0.5)
    # slice axis 0 gives the same result on transposed arrays
    moved, filled0 = interpolate_slices(np.moveaxis(les, 2, 0), 3, slice_axis=0, voxel_size_mm=(1.0, 0.5, 0.5))
    assert filled0 == [2, 3, 4] and np.array_equal(np.moveaxis(moved, 0, 2), new)
    with pytest.raises(ParameterError, match="not in the array"):
        interpolate_slices(les, 99)
