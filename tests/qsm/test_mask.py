import numpy as np
from scipy import ndimage as ndi

from napari_qsm_ms.qsm.mask import brain_mask, erode_mask_mm

from ._spheres import ball


def test_brain_mask_from_noisy_magnitude_with_dark_holes():
    vs = (1.0, 1.0, 2.0)
    shape = (64, 64, 32)
    brain = ball(shape, vs, (32, 30, 16), 24.0)
    rng = np.random.default_rng(0)
    mag = np.where(brain, 100.0, 0.0) + np.abs(rng.normal(0, 5, shape))
    mag[ball(shape, vs, (30, 30, 16), 5.0)] = 8.0  # dark nucleus inside: must stay in the mask
    scalp = ball(shape, vs, (32, 30, 16), 31.0) & ~ball(shape, vs, (32, 30, 16), 28.0)
    mag[scalp] = 40.0  # bright scalp beyond a 4 mm dark skull
    m = brain_mask(mag.astype(np.float32), vs)
    dice = 2 * (m & brain).sum() / (m.sum() + brain.sum())
    assert dice > 0.93
    assert m[ball(shape, vs, (30, 30, 16), 5.0)].all()
    assert ndi.label(m)[1] == 1
    assert not (m & scalp).any()


def test_brain_mask_empty_magnitude():
    assert not brain_mask(np.zeros((8, 8, 8), np.float32), (1, 1, 1)).any()


def test_erosion_is_euclidean_in_mm_with_anisotropic_voxels():
    vs = (0.5, 0.5, 2.0)
    shape = (100, 100, 30)
    center = (50, 50, 15)
    m = ball(shape, vs, center, 20.0)
    e = erode_mask_mm(m, vs, 2.5)
    # every kept voxel lies at more than 2.5 mm from the outside; every voxel deeper than 2.5 mm + a voxel is kept
    dist = ndi.distance_transform_edt(m, sampling=vs)
    assert np.all(dist[e] > 2.5)
    assert np.all(e[dist > 2.5 + 2.0])
    # the extent shrinks by ~2.5 mm along every axis, i.e. by 5 voxels in-plane and ~1 voxel in z
    for ax, h in enumerate(vs):
        ext_m = np.ptp(np.nonzero(m.any(axis=tuple(a for a in range(3) if a != ax)))[0]) * h
        ext_e = np.ptp(np.nonzero(e.any(axis=tuple(a for a in range(3) if a != ax)))[0]) * h
        assert abs((ext_m - ext_e) / 2 - 2.5) <= h + 1e-6
    assert erode_mask_mm(m, vs, 0).sum() == m.sum()


def test_brain_only_crop_and_skull_stripped_magnitude_keep_every_tissue_voxel():
    """Without a dark background (the real ROMEO crop is brain only), Otsu would split grey from white
    matter (the crop kept 7.4 %); every non-zero voxel is tissue there."""
    from napari_qsm_ms.qsm.mask import has_background

    rng = np.random.default_rng(4)
    shape, vs = (40, 40, 30), (0.5, 0.5, 1.0)
    crop = np.where(rng.random(shape) < 0.5, 0.6, 1.0) + 0.05 * rng.standard_normal(shape)  # GM/WM texture
    crop[18:22, 5:35, :] *= 0.4  # a vein, dark but not air
    crop = crop.astype(np.float32)
    assert not has_background(crop)
    assert brain_mask(crop, vs).all()
    head = ball(shape, vs, [n / 2 for n in shape], 9.0)
    stripped = np.where(head, crop, 0).astype(np.float32)  # zeros outside, as BET writes
    assert not has_background(stripped)
    np.testing.assert_array_equal(brain_mask(stripped, vs), head)
    in_air = np.where(head, crop, 0.02 + 0.01 * rng.random(shape)).astype(np.float32)
    assert has_background(in_air)
