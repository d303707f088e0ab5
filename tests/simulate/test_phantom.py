"""Invariants of the head phantom on several seeds and grids."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_qsm_ms.errors import ParameterError
from napari_qsm_ms.io.geometry import b0_direction_voxel
from napari_qsm_ms.io.layout import TISSUE_CORTEX, TISSUE_WM
from napari_qsm_ms.simulate.phantom import CORTEX, WM, make_phantom

GRIDS = [
    {"shape": (96, 96, 48), "voxel_size_mm": (1.0, 1.0, 2.0), "seed": 0},
    {"shape": (96, 96, 48), "voxel_size_mm": (1.0, 1.0, 2.0), "seed": 7},
    {"shape": (80, 96, 56), "voxel_size_mm": (1.2, 1.0, 1.5), "seed": 123, "oblique_deg": 15.0},
    {
        "shape": (80, 96, 36),
        "voxel_size_mm": (2.0, 2.0, 2.5),
        "seed": 4,
        "anatomy": "mni",
        "oblique_deg": -8.0,
    },
]


@pytest.fixture(
    scope="module", params=range(len(GRIDS)), ids=lambda i: f"grid{i}-{GRIDS[i].get('anatomy', 'synthetic')}"
)
def phantom(request):
    if GRIDS[request.param].get("anatomy") == "mni":
        pytest.importorskip("nilearn")
    return make_phantom(**GRIDS[request.param])


def _ring(mask, voxel_size_mm, inner_mm, outer_mm):
    dist = ndimage.distance_transform_edt(~mask, sampling=voxel_size_mm)
    return (dist > inner_mm) & (dist <= outer_mm)


def test_labels_consistent(phantom):
    p = phantom
    n = len(p.lesion_table)
    assert n == 11
    assert sorted(np.unique(p.lesion_ids[p.lesion_ids > 0]).tolist()) == list(range(1, n + 1))
    assert p.lesion_table["lesion_id"].tolist() == list(range(1, n + 1))
    assert np.array_equal(p.brain_mask, p.tissue > 0)
    assert not np.any(p.vessels & ~p.brain_mask)
    assert np.all(p.chi_ppm[~p.brain_mask] == 0)
    assert set(np.unique(p.tissue).tolist()) == {0, 1, 2, 3, 4}
    # every lesion voxel is on cortex or WM
    assert set(np.unique(p.tissue[p.lesion_ids > 0]).tolist()) <= {TISSUE_CORTEX, TISSUE_WM}
    for arr in (p.chi_ppm, p.t1_wmn, p.t1_csfn, p.flair, p.t2star_magnitude):
        assert arr.shape == p.shape and arr.dtype == np.float32 and np.isfinite(arr).all()


def test_lesion_class_rules_and_size(phantom):
    p = phantom
    vs = np.asarray(p.voxel_size_mm)
    for row in p.lesion_table.itertuples():
        m = p.lesion_ids == row.lesion_id
        frac = float(np.mean(p.tissue[m] == TISSUE_CORTEX))
        if row._2 == "wm":
            assert np.all(p.tissue[m] == TISSUE_WM)
        elif row._2 == "cortical":
            assert frac > 0.75
        else:
            assert 0.25 <= frac <= 0.75
        ii = np.nonzero(m)
        for axis in (0, 1):  # in-plane extent of every lesion at least 2 mm
            assert (np.ptp(ii[axis]) + 1) * vs[axis] >= 2.0
        assert abs(frac - row.cortex_fraction) < 1e-9
    assert p.lesion_table["class"].value_counts().to_dict() == {"wm": 6, "cortical": 3, "mixed": 2}


def test_designed_deltas_are_realised(phantom):
    """Lesion minus adjacent normal tissue equals the designed offset (per part for mixed lesions)."""
    p = phantom
    vs = np.asarray(p.voxel_size_mm)
    lesion_any = p.lesion_ids > 0
    for row in p.lesion_table.itertuples():
        m = p.lesion_ids == row.lesion_id
        # adjacent tissue: a 1-4 mm shell around the lesion, same tissue, no lesion, no vessel
        shell = _ring(m, vs, 1.0, 4.0) & ~lesion_any & ~p.vessels
        parts = []
        if row._2 in ("wm", "mixed"):
            sel = m & (p.tissue == TISSUE_WM) if row._2 == "mixed" else m
            parts.append((sel, shell & (p.tissue == TISSUE_WM), row.designed_delta_wm_ppm, WM))
        if row._2 in ("cortical", "mixed"):
            sel = m & (p.tissue == TISSUE_CORTEX) if row._2 == "mixed" else m
            parts.append((sel, shell & (p.tissue == TISSUE_CORTEX), row.designed_delta_cortical_ppm, CORTEX))
        for lesion_part, ref, delta, code in parts:
            assert lesion_part.sum() > 0 and ref.sum() >= 5
            measured = float(p.chi_ppm[lesion_part].mean() - p.chi_ppm[ref].mean())
            # smooth normal-tissue variation (<= 0.004 ppm over >= 60 mm) limits the agreement
            assert abs(measured - delta) < 1.5e-3, (row.lesion_id, measured, delta)
        # exactly: chi in the lesion = normal-appearing value there + designed delta
        if row._2 != "mixed":
            x, y, z = _head_coords(p, m)
            code = WM if row._2 == "wm" else CORTEX
            delta = row.designed_delta_wm_ppm if row._2 == "wm" else row.designed_delta_cortical_ppm
            np.testing.assert_allclose(p.chi_ppm[m], p.model.base_chi_ppm(code, x, y, z) + delta, atol=1e-6)


def _head_coords(p, mask):
    vs = np.asarray(p.voxel_size_mm)
    idx = np.stack(np.nonzero(mask), axis=1).astype(float)
    pts = (idx - (np.asarray(p.shape) - 1) / 2.0) * vs
    return pts[:, 0].astype(np.float32), pts[:, 1].astype(np.float32), pts[:, 2].astype(np.float32)


def test_lesion_contrasts_follow_the_paper(phantom):
    """Hyperintense on T2* magnitude, WM-nulled MPRAGE and FLAIR; hypointense on CSF-nulled MPRAGE."""
    p = phantom
    vs = np.asarray(p.voxel_size_mm)
    for row in p.lesion_table.itertuples():
        m = p.lesion_ids == row.lesion_id
        tissue = TISSUE_CORTEX if row._2 == "cortical" else TISSUE_WM
        m_part = m & (p.tissue == tissue)
        ref = _ring(m, vs, 1.0, 4.0) & (p.tissue == tissue) & (p.lesion_ids == 0) & ~p.vessels
        for img, sign in ((p.t2star_magnitude, 1), (p.t1_wmn, 1), (p.flair, 1), (p.t1_csfn, -1)):
            assert sign * (img[m_part].mean() - img[ref].mean()) > 0


def test_tissue_susceptibility_values(phantom):
    p = phantom
    med = {
        t: float(np.median(p.chi_ppm[(p.tissue == t) & ~p.vessels & (p.lesion_ids == 0)])) for t in (1, 2, 3)
    }
    assert abs(med[1]) < 1e-6 and 0.01 <= med[2] <= 0.02 and -0.035 <= med[3] <= -0.025
    assert p.chi_ppm[p.vessels].mean() > 0.1  # veins paramagnetic
    assert p.t2star_magnitude[p.vessels].mean() < p.t2star_magnitude[p.tissue == TISSUE_WM].mean()


def test_deterministic_and_seed_dependent():
    a = make_phantom((64, 64, 40), (1.5, 1.5, 2.0), seed=3, n_lesions=(2, 1, 1))
    b = make_phantom((64, 64, 40), (1.5, 1.5, 2.0), seed=3, n_lesions=(2, 1, 1))
    c = make_phantom((64, 64, 40), (1.5, 1.5, 2.0), seed=4, n_lesions=(2, 1, 1))
    assert np.array_equal(a.chi_ppm, b.chi_ppm) and np.array_equal(a.lesion_ids, b.lesion_ids)
    assert not np.array_equal(a.chi_ppm, c.chi_ppm)


def test_oblique_affine_gives_oblique_b0():
    p = make_phantom((64, 64, 40), (1.5, 1.5, 2.0), seed=1, n_lesions=(1, 1, 1), oblique_deg=20.0)
    b0 = b0_direction_voxel(p.affine)
    np.testing.assert_allclose(np.abs(b0), [0.0, np.sin(np.deg2rad(20)), np.cos(np.deg2rad(20))], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(p.affine[:3, :3], axis=0), [1.5, 1.5, 2.0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shape": (8, 64, 64)},
        {"shape": (64, 64)},
        {"voxel_size_mm": (1.0, -1.0, 1.0)},
        {"voxel_size_mm": (1.0, 1.0, 0.0)},
        {"shape": (20, 20, 20), "voxel_size_mm": (1.0, 1.0, 1.0)},
        {"n_lesions": (1, -1, 0)},
        {"anatomy": "brainweb"},
        {"anatomy": "MNI"},
        {"oblique_deg": 80.0},
        {"shape": (48, 48, 32), "voxel_size_mm": (1.0, 1.0, 1.5), "n_lesions": (200, 0, 0)},
    ],
)
def test_bad_parameters(kwargs):
    with pytest.raises(ParameterError):
        make_phantom(**kwargs)


def test_mni_anatomy_is_real_brain():
    """The MNI phantom: deep nuclei where the atlas puts them, cortex/WM proportions of a brain."""
    pytest.importorskip("nilearn")
    p = make_phantom((80, 96, 36), (2.0, 2.0, 2.5), seed=1, anatomy="mni", n_lesions=(2, 1, 1))
    from napari_qsm_ms.simulate.phantom import CAUDATE, PALLIDUM, PUTAMEN, THALAMUS

    for code in (CAUDATE, PUTAMEN, PALLIDUM, THALAMUS):
        sel = p.region == code
        assert sel.sum() > 10
        # both hemispheres (array axis 0 is left-right; the grid is centred on MNI x = 0)
        xs = np.nonzero(sel)[0]
        assert (xs < 40).any() and (xs >= 40).any()
    counts = np.bincount(p.tissue[p.brain_mask], minlength=5)
    assert 0.3 < counts[TISSUE_CORTEX] / counts[1:].sum() < 0.7
    assert 0.2 < counts[TISSUE_WM] / counts[1:].sum() < 0.6
    assert p.t2star_magnitude[p.region == PALLIDUM].mean() < p.t2star_magnitude[p.region == PUTAMEN].mean()
