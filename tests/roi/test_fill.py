"""Region-grow fill: invariants (range, connectivity, seed, slice, never another lesion)."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_qsm_ms.errors import ParameterError
from napari_qsm_ms.roi.fill import fill_voxels, range_around, region_grow


def _image(seed=0):
    rng = np.random.default_rng(seed)
    img = ndi.gaussian_filter(rng.normal(size=(24, 22, 12)), 1.5)
    return (img - img.min()) / np.ptp(img) * 100.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_region_is_connected_in_range_and_holds_the_seed(seed):
    img = _image(seed)
    point = (12, 11, 6)
    lo, hi = img[point] - 8, img[point] + 8
    region = region_grow(img, point, lo, hi)
    assert region[point]
    assert np.all((img[region] >= lo) & (img[region] <= hi))
    assert ndi.label(region)[1] == 1
    # maximal: no in-range voxel touches the region from outside
    grown = ndi.binary_dilation(region, ndi.generate_binary_structure(3, 1))
    ring = grown & ~region
    assert not np.any((img[ring] >= lo) & (img[ring] <= hi))


def test_wider_range_gives_a_superset():
    img = _image()
    point = (10, 10, 5)
    small = region_grow(img, point, img[point] - 5, img[point] + 5)
    large = region_grow(img, point, img[point] - 10, img[point] + 10)
    assert np.all(large[small]) and large.sum() >= small.sum()


def test_plane_fill_stays_in_the_clicked_slice_and_within_mask():
    img = _image()
    point = (12, 5, 6)
    within = np.zeros(img.shape, bool)
    within[:, :11, :] = True
    region = region_grow(img, point, img.min(), img.max(), plane_axis=2, within=within)
    assert np.flatnonzero(region.any(axis=(0, 1))).tolist() == [6]
    assert not region[:, 11:, :].any()
    assert region[:, :11, 6].all()


def test_seed_outside_the_range_gives_nothing_and_bad_input_is_one_line():
    img = _image()
    assert not region_grow(img, (1, 1, 1), img[1, 1, 1] + 1, img[1, 1, 1] + 2).any()
    with pytest.raises(ParameterError, match="outside the image"):
        region_grow(img, (99, 0, 0), 0, 1)
    with pytest.raises(ParameterError, match="low <= high"):
        region_grow(img, (1, 1, 1), 2, 1)
    with pytest.raises(ParameterError, match="narrow the intensity range"):
        region_grow(img, (1, 1, 1), img.min(), img.max(), max_voxels=100)


def test_nan_voxels_never_join():
    img = _image()
    img[5, :, :] = np.nan
    region = region_grow(img, (2, 2, 2), np.nanmin(img), np.nanmax(img))
    assert not region[5].any() and not region[6:].any()


def test_fill_never_takes_another_lesion():
    labels = np.zeros((6, 6, 3), np.int32)
    labels[0, :, :] = 7
    labels[1, :, :] = 3
    region = np.ones(labels.shape, bool)
    idx = fill_voxels(labels, region, 3)
    out = labels.copy()
    out[idx] = 3
    assert np.all(out[0] == 7)  # the other lesion is untouched
    assert np.all(out[1:] == 3)
    assert len(idx[0]) == 4 * 6 * 3  # only changed voxels are returned
    with pytest.raises(ParameterError):
        fill_voxels(labels, region, 0)


def test_range_around_is_centred_on_the_click():
    img = _image()
    lo, hi = range_around(img, (3, 4, 5))
    assert lo < img[3, 4, 5] < hi
    assert np.isclose((lo + hi) / 2, img[3, 4, 5])
