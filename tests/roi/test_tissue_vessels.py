"""Tissue import mappings, the first tissue estimate, vessel candidates on a synthetic tube."""

from __future__ import annotations

import numpy as np
import pytest

from napari_qsm_ms.errors import ParameterError
from napari_qsm_ms.io.layout import TISSUE_CORTEX, TISSUE_CSF, TISSUE_DEEP_GM, TISSUE_WM
from napari_qsm_ms.roi.tissue import (
    ASEG_TO_TISSUE,
    estimate_tissue,
    import_segmentation,
    separate_deep_gm,
    unmapped_labels,
)
from napari_qsm_ms.roi.vessels import remove_voxels, vessel_candidates

# (FreeSurfer code, expected tissue) straight from the issue's list
ASEG_CASES = [
    (3, 2), (42, 2), (1000, 2), (1035, 2), (2035, 2), (2999, 2),
    (2, 3), (41, 3), (77, 3), (251, 3), (255, 3),
    (10, 4), (49, 4), (11, 4), (50, 4), (12, 4), (51, 4), (13, 4), (52, 4), (26, 4), (58, 4), (28, 4), (60, 4),
    (4, 1), (5, 1), (14, 1), (15, 1), (43, 1), (44, 1), (24, 1),
    (7, 3), (46, 3), (8, 4), (47, 4),
    (0, 0), (30, 0), (62, 0), (999, 0),
]


@pytest.mark.parametrize("kind", ["aseg", "aparc+aseg", "synthseg"])
def test_freesurfer_and_synthseg_mapping(kind):
    codes = np.array([c for c, _ in ASEG_CASES]).reshape(1, 1, -1)
    out = import_segmentation(codes, kind)
    assert out.dtype == np.uint8
    assert out[0, 0].tolist() == [t for _, t in ASEG_CASES]
    assert unmapped_labels(codes, kind) == [30, 62, 999]


def test_float_label_maps_are_accepted_when_whole():
    out = import_segmentation(np.array([[[2.0, 3.0]]]), "aseg")
    assert out[0, 0].tolist() == [3, 2]
    with pytest.raises(ParameterError, match="whole numbers"):
        import_segmentation(np.array([[[2.5]]]), "aseg")
    with pytest.raises(ParameterError, match="unknown segmentation kind"):
        import_segmentation(np.zeros((2, 2, 2), int), "spm")


def _shell_phantom(shape=(48, 48, 48)):
    """A ball: CSF rim, a 3-voxel cortical shell, WM, a GM 'thalamus' around a CSF 'ventricle'."""
    zz, yy, xx = np.indices(shape)
    r = np.sqrt((zz - 24) ** 2 + (yy - 24) ** 2 + (xx - 24) ** 2)
    mask = r <= 22
    truth = np.zeros(shape, np.uint8)
    truth[mask] = TISSUE_WM
    truth[(r > 17) & mask] = TISSUE_CORTEX
    truth[(r > 20) & mask] = TISSUE_CSF
    truth[(r <= 8) & (r > 4)] = TISSUE_DEEP_GM
    truth[r <= 4] = TISSUE_CSF
    return truth, mask


def test_fast_hard_and_pve_with_deep_gm_split():
    truth, mask = _shell_phantom()
    fast = np.zeros(truth.shape, np.int32)
    fast[truth == TISSUE_CSF] = 1
    fast[(truth == TISSUE_CORTEX) | (truth == TISSUE_DEEP_GM)] = 2
    fast[truth == TISSUE_WM] = 3
    plain = import_segmentation(fast, "fast")
    assert set(np.unique(plain[truth == TISSUE_DEEP_GM])) == {TISSUE_CORTEX}  # not separable
    split = import_segmentation(fast, "fast", voxel_size_mm=(1, 1, 1), brain_mask=mask)
    assert np.array_equal(split, truth)
    pve = np.zeros(truth.shape + (3,), np.float32)
    for k in range(3):
        pve[..., k] = (fast == k + 1) * 0.7
    pve[..., 0] += 0.1 * (fast > 0)
    assert np.array_equal(import_segmentation(pve, "fast_pve"), plain)
    with pytest.raises(ParameterError, match="0-3"):
        import_segmentation(fast + 3, "fast")


def test_separate_deep_gm_depth_rule():
    truth, mask = _shell_phantom()
    gm_all = truth.copy()
    gm_all[truth == TISSUE_DEEP_GM] = TISSUE_CORTEX
    out = separate_deep_gm(gm_all, mask, (1, 1, 1), deep_gm_depth_mm=3.0)
    # the cortical shell lies 2-5 mm deep: with a 3 mm depth limit its inner layers become deep GM
    assert np.all(out[(truth == TISSUE_CORTEX)] != TISSUE_WM)
    assert (out[truth == TISSUE_CORTEX] == TISSUE_DEEP_GM).any()
    assert np.all(out[truth == TISSUE_DEEP_GM] == TISSUE_DEEP_GM)


def test_estimate_tissue_recovers_a_three_class_phantom():
    truth, mask = _shell_phantom()
    rng = np.random.default_rng(0)
    level = {0: 0.0, TISSUE_CSF: 0.1, TISSUE_CORTEX: 0.5, TISSUE_DEEP_GM: 0.55, TISSUE_WM: 0.9}
    csfn = np.vectorize(level.get)(truth).astype(np.float32) + rng.normal(0, 0.03, truth.shape)
    mag = (1.0 - 0.6 * csfn + rng.normal(0, 0.03, truth.shape)).astype(np.float32)
    est = estimate_tissue(csfn, mag, mask, (1, 1, 1))
    assert est.dtype == np.uint8
    assert np.all(est[~mask] == 0)
    agreement = (est[mask] == truth[mask]).mean()
    assert agreement > 0.97
    for code in (TISSUE_CSF, TISSUE_CORTEX, TISSUE_WM, TISSUE_DEEP_GM):
        assert (est[truth == code] == code).mean() > 0.9
    # without the magnitude, csfn alone gives the same classes here
    assert (estimate_tissue(csfn, None, mask, (1, 1, 1))[mask] == truth[mask]).mean() > 0.97
    with pytest.raises(ParameterError, match="same grid"):
        estimate_tissue(csfn, mag, mask[:-1], (1, 1, 1))


def test_aseg_table_uses_only_valid_codes():
    assert set(ASEG_TO_TISSUE.values()) <= {1, 2, 3, 4}


def _tube_phantom():
    shape = (40, 40, 24)
    vs = (0.5, 0.5, 1.0)
    rng = np.random.default_rng(1)
    chi = rng.normal(0.0, 0.01, shape).astype(np.float32)
    tissue = np.full(shape, TISSUE_WM, np.uint8)
    yy, xx = np.mgrid[:40, :40]
    tube = np.zeros(shape, bool)
    tube[((yy - 12) * 0.5) ** 2 + ((xx - 12) * 0.5) ** 2 <= 0.6**2, :] = True  # 1.2 mm vein along z
    chi[tube] += 0.35
    zz = np.arange(24)[None, None, :]
    blob = ((yy[..., None] - 28) * 0.5) ** 2 + ((xx[..., None] - 28) * 0.5) ** 2 + ((zz - 12) * 1.0) ** 2 <= 3.0**2
    chi[blob] += 0.15  # a round paramagnetic lesion
    return chi, tissue, vs, tube, blob


def test_vessel_candidates_find_a_tube_and_spare_a_round_lesion():
    chi, tissue, vs, tube, blob = _tube_phantom()
    cand = vessel_candidates(chi, tissue, vs, threshold_ppm=0.1)
    inner = tube.copy()
    inner[:, :, [0, 1, 2, -3, -2, -1]] = False  # ends of the volume
    assert cand[inner].mean() > 0.9
    assert cand[blob].mean() < 0.1
    false_pos = cand & ~tube & ~blob
    assert false_pos.sum() < 0.01 * tube.sum()
    # the threshold alone (no vesselness, no shape rule) also takes the round lesion
    plain = vessel_candidates(chi, tissue, vs, threshold_ppm=0.1, use_vesselness=False, min_elongation=1)
    assert plain[blob].mean() > 0.5 and plain[inner].mean() > 0.9
    # a brighter round lesion (as bright as the vein) is still spared by the shape rule
    chi[blob] += 0.25
    assert vessel_candidates(chi, tissue, vs, threshold_ppm=0.1)[blob].mean() < 0.1
    # a higher threshold than the vein's excess finds nothing
    assert not vessel_candidates(chi, tissue, vs, threshold_ppm=0.5).any()


def test_remove_voxels():
    chi, tissue, vs, tube, blob = _tube_phantom()
    labels = np.zeros(chi.shape, np.int32)
    labels[8:16, 8:16, 10] = 3
    cleaned = remove_voxels(labels, tube)
    assert not (cleaned[tube] > 0).any()
    assert np.array_equal(cleaned[~tube], labels[~tube])
    assert (labels[tube] > 0).any()  # input unchanged
    with pytest.raises(ParameterError, match="mask shape"):
        remove_voxels(labels, tube[:-1])


def test_local_background_follows_a_smooth_field_and_ignores_a_vein():
    from napari_qsm_ms.roi.vessels import local_background_ppm

    shape, vs = (64, 64, 20), (0.47, 0.47, 1.0)
    x = np.arange(shape[0])[:, None, None] * vs[0]
    chi = np.broadcast_to(0.004 * x, shape).astype(np.float32).copy()  # 0.004 ppm/mm gradient
    tissue = np.full(shape, TISSUE_WM, np.uint8)
    tissue[:, :, :4] = TISSUE_CORTEX
    chi[:, :, :4] += 0.05  # cortex brighter than WM
    vein = np.zeros(shape, bool)
    vein[30:32, 30:32, 4:] = True
    chi_v = chi.copy()
    chi_v[vein] += 0.4
    bg = local_background_ppm(chi_v, tissue, vs)
    inner = np.zeros(shape, bool)
    inner[10:-10, 10:-10, 6:-4] = True
    assert np.abs(bg - chi)[inner & ~vein].max() < 0.01
    assert np.abs(bg - chi)[vein & inner].max() < 0.01  # the vein does not lift its background
    # the cortex is averaged over cortex only
    assert np.abs(bg - chi)[10:-10, 10:-10, :4].max() < 0.01


def test_tubeness_in_slabs_matches_one_piece():
    from napari_qsm_ms.roi.vessels import tubeness

    chi, tissue, vs, tube, blob = _tube_phantom()
    whole = tubeness(chi, vs, max_slab_voxels=10**9)
    slabs = tubeness(chi, vs, max_slab_voxels=40 * 40 * 2 * 14)  # slabs of a few slices
    inner = np.s_[:, :, 1:-1]  # zoom edge effects aside
    assert np.abs(slabs - whole)[inner].max() < 0.05
    assert np.corrcoef(slabs[inner].ravel(), whole[inner].ravel())[0, 1] > 0.99


def test_tubeness_on_tiles_matches_the_whole_volume(monkeypatch):
    from napari_qsm_ms.roi import vessels

    chi, tissue, vs, tube, blob = _tube_phantom()
    cand = tube | blob
    monkeypatch.setattr(vessels, "_TILE_MM", 1000.0)
    whole = vessels._tubeness_at(chi, np.array(vs), cand, (0.5, 1.0), 0.1)
    monkeypatch.setattr(vessels, "_TILE_MM", 4.0)  # many small tiles
    tiled = vessels._tubeness_at(chi, np.array(vs), cand, (0.5, 1.0), 0.1)
    inner = np.zeros(chi.shape, bool)
    inner[:, :, 1:-1] = True
    assert not tiled[~cand].any()
    assert np.abs(tiled - whole)[cand & inner].max() < 0.05 * whole[cand].max()


def test_vessel_candidates_report_progress_and_can_be_cancelled():
    from napari_qsm_ms.errors import CancelledError

    chi, tissue, vs, tube, blob = _tube_phantom()
    seen = []
    vessel_candidates(chi, tissue, vs, progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)

    def cancel(fraction, message):
        if fraction > 0.1:
            raise CancelledError("cancelled by the user")

    with pytest.raises(CancelledError):
        vessel_candidates(chi, tissue, vs, progress=cancel)
