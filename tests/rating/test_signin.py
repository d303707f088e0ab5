"""The pure part of signing in (no Qt): what a blinded rater is given, read from the files."""

import nibabel as nib
import numpy as np
import pytest

from napari_qsm_ms.errors import QSMMSError
from napari_qsm_ms.rating.signin import RATER_CONTRASTS, LayerInput, prepare_sign_in

from ._helpers import make_phantom_subject


def test_prepare_sign_in_reads_contrasts_and_candidates_but_never_qsm(tmp_path):
    subject, ph = make_phantom_subject(tmp_path / "study")
    steps = []
    data = prepare_sign_in(subject, "ann", progress=lambda f, msg: steps.append(f))
    assert [c[0] for c in data.contrasts] == [role for role, _ in RATER_CONTRASTS]
    assert all(c[2].shape == ph.lesion_ids.shape and c[3][0] < c[3][1] for c in data.contrasts)
    # every drawn lesion is a candidate; the boundary is the WM class; the candidate mask is empty
    assert data.session.total == np.unique(ph.lesion_ids[ph.lesion_ids > 0]).size
    np.testing.assert_array_equal(data.boundary, (ph.tissue == 3))
    assert not data.candidate_mask.any()
    assert steps == sorted(steps) and steps[-1] == 1.0
    # no QSM reaches the rater: the subject has a Chimap, and no contrast is it
    assert subject.chimap.exists()
    chi = np.asarray(nib.load(subject.chimap).dataobj)
    assert all(c[2].shape == chi.shape and not np.allclose(c[2], chi) for c in data.contrasts)


def test_loaded_layers_are_used_instead_of_the_files(tmp_path):
    subject, ph = make_phantom_subject(tmp_path / "study")
    edited = ph.lesion_ids.astype(np.int32).copy()
    edited[edited == edited.max()] = 0  # a lesion deleted in the viewer, not yet saved
    full = prepare_sign_in(subject, "ann")
    data = prepare_sign_in(subject, "bob", layers={"lesions": LayerInput(edited)})
    assert data.session.total == full.session.total - 1


def test_no_candidates_is_a_one_line_error_naming_the_lesion_file(tmp_path):
    subject, ph = make_phantom_subject(tmp_path / "study")
    with pytest.raises(QSMMSError, match="no lesion candidates") as info:
        prepare_sign_in(subject, "ann", layers={"lesions": LayerInput(np.zeros(ph.lesion_ids.shape, np.int32))})
    assert str(subject.lesions) in str(info.value) and "\n" not in str(info.value)
