"""FLAIR* (registration/flair_star.py): unit-free product, mask, grid checks, doctest."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from napari_qsm_ms.errors import InputFileError, ParameterError
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.io.nifti import save_volume
from napari_qsm_ms.registration import flair_star as flair_star_mod
from napari_qsm_ms.registration.flair_star import flair_star, normalise_in_mask, subject_flair_star


def _pair(seed=0, shape=(12, 10, 8)):
    rng = np.random.default_rng(seed)
    flair = rng.uniform(100, 400, shape).astype(np.float32)
    mag = rng.uniform(5, 50, shape).astype(np.float32)
    mask = np.zeros(shape, bool)
    mask[2:-2, 2:-2, 1:-1] = True
    return flair, mag, mask


@pytest.mark.parametrize("a,b", [(1.0, 1.0), (7.5, 0.01), (1e-3, 4096.0)])
def test_unit_free_whatever_the_scaling(a, b):
    flair, mag, mask = _pair()
    ref = flair_star(flair, mag, mask)
    np.testing.assert_allclose(flair_star(a * flair, b * mag, mask), ref, rtol=1e-5)
    # each factor is normalised by its own median inside the brain
    expected = flair / np.median(flair[mask]) * mag / np.median(mag[mask])
    np.testing.assert_allclose(ref[mask], expected[mask], rtol=1e-5)


def test_zero_outside_the_mask_and_medians_from_inside_only():
    flair, mag, mask = _pair(1)
    flair[~mask] = 1e6  # bright skull/fat outside the brain must not change the normalisation
    star = flair_star(flair, mag, mask)
    assert (star[~mask] == 0).all()
    np.testing.assert_allclose(np.median(normalise_in_mask(flair, mask)[mask]), 1.0, rtol=1e-6)
    # default mask: voxels where both images are positive
    mag2 = mag.copy()
    mag2[0] = 0
    assert (flair_star(flair, mag2)[0] == 0).all()


def test_vein_dark_lesion_bright():
    flair, mag = np.full((9, 9, 9), 200.0), np.full((9, 9, 9), 30.0)
    flair[3:6, 3:6, 3:6] = 400.0  # lesion: bright on FLAIR
    mag[4, 4, :] = 6.0  # a vein through it: dark on T2*
    star = flair_star(flair, mag)
    assert star[3, 3, 4] == pytest.approx(2.0) and star[4, 4, 4] == pytest.approx(0.4)
    assert star[0, 0, 0] == pytest.approx(1.0)


def test_bad_input():
    flair, mag, mask = _pair()
    with pytest.raises(ParameterError, match="shape"):
        flair_star(flair, mag[:-1])
    with pytest.raises(ParameterError, match="no positive voxel"):
        flair_star(flair, mag, np.zeros_like(mask))


def _subject(tmp_path, flair_affine=None, flair_shape=None):
    subject = StudyFiles.at(tmp_path / "study").subject("01")
    subject.anat.mkdir(parents=True)
    flair, mag, mask = _pair(2)
    aff = np.diag([0.5, 0.5, 1.0, 1.0])
    save_volume(subject.magnitude, mag, aff)
    save_volume(subject.brain_mask, mask.astype(np.uint8), aff)
    if flair_shape is not None:
        flair = np.resize(flair, flair_shape)
    save_volume(subject.coreg_series("flair"), flair, aff if flair_affine is None else flair_affine)
    return subject, flair, mag, mask


def test_subject_flair_star_reads_the_coregistered_flair(tmp_path):
    subject, flair, mag, mask = _subject(tmp_path)
    vol = subject_flair_star(subject)
    np.testing.assert_allclose(vol.data, flair_star(flair, mag, mask), rtol=1e-6)
    np.testing.assert_allclose(vol.affine, np.diag([0.5, 0.5, 1.0, 1.0]))
    subject.coreg_series("flair").unlink()
    assert subject_flair_star(subject) is None  # no FLAIR: no FLAIR*


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(flair_shape=(12, 10, 7)), "shape"),
        (dict(flair_affine=np.diag([1.0, 1.0, 1.0, 1.0])), "affine"),
    ],
)
def test_refuses_another_grid_naming_the_file(tmp_path, kwargs, match):
    subject, *_ = _subject(tmp_path, **kwargs)
    with pytest.raises(InputFileError, match=match) as info:
        subject_flair_star(subject)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(subject.coreg_series("flair")))
    assert "coregister" in text


def test_module_examples():
    result = doctest.testmod(flair_star_mod)
    assert result.failed == 0 and result.attempted > 0
