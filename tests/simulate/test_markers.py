"""Paramagnetic rims and central veins of the phantom (simulate/markers.py) and their truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from napari_qsm_ms.errors import ParameterError
from napari_qsm_ms.roi.rim import signed_distance_mm
from napari_qsm_ms.simulate.markers import MARKER_COLUMNS, MarkerSpec, add_markers
from napari_qsm_ms.simulate.phantom import make_phantom
from napari_qsm_ms.simulate.study import simulate_study
from napari_qsm_ms.simulate.truth import TruthFiles

SPEC = MarkerSpec(prl_fraction=1.0, cvs_fraction=0.5, eccentric_fraction=0.25)


@pytest.fixture(scope="module")
def phantoms():
    ph = make_phantom((96, 112, 64), (1.0, 1.0, 1.0), seed=3, n_lesions=(6, 2, 2))
    return ph, add_markers(ph, SPEC, seed=5)


def test_default_spec_changes_nothing_but_adds_truth_columns(phantoms):
    ph, _ = phantoms
    same = add_markers(ph, MarkerSpec(), seed=1)
    assert np.array_equal(same.chi_ppm, ph.chi_ppm)
    assert np.array_equal(same.t2star_magnitude, ph.t2star_magnitude)
    assert list(same.lesion_table.columns) == list(ph.lesion_table.columns) + MARKER_COLUMNS
    assert not same.lesion_table["prl"].any() and set(same.lesion_table["vein"]) == {"none"}


def test_rims_on_wm_and_mixed_lesions_with_their_mass(phantoms):
    ph, _ = phantoms
    mk = add_markers(ph, MarkerSpec(prl_fraction=1.0), seed=5)
    t = mk.lesion_table.set_index("lesion_id")
    assert t["prl"].equals(t["class"].isin(["wm", "mixed"]))
    vs = np.asarray(ph.voxel_size_mm)
    added = mk.chi_ppm - ph.chi_ppm
    near_any = np.zeros(ph.shape, bool)
    for lid, row in t[t["prl"]].iterrows():
        d = signed_distance_mm(ph.lesion_ids == lid, vs)
        near = np.abs(d) <= 0.5 * row["rim_width_mm"] + 1.0
        near_any |= near
        assert added[near].max() <= row["rim_chi_ppm"] + 1e-6
        assert added[near].min() >= -1e-7
        # rim "mass" (ppm x mm^3) ~ rim ppm x width x covered boundary area (voxels at 1 mm)
        area = np.sum(np.abs(d) <= 0.5)
        expected = row["rim_chi_ppm"] * row["rim_width_mm"] * row["rim_coverage"] * area
        assert added[near].sum() == pytest.approx(expected, rel=0.5)
    assert not np.any(np.abs(added[~near_any]) > 1e-7)  # nothing changes elsewhere
    assert np.array_equal(mk.t2star_magnitude, ph.t2star_magnitude)  # rims: susceptibility only


def test_central_veins_pass_the_lesion_centre_and_are_dark(phantoms):
    ph, mk = phantoms
    t = mk.lesion_table.set_index("lesion_id")
    assert (t["vein"] == "central").sum() == 5 and (t["vein"] == "eccentric").sum() == 2
    for lid, row in t.iterrows():
        centre = tuple(int(v) for v in row["center_vox"])
        if row["vein"] == "central":
            assert mk.vessels[centre] or mk.t2star_magnitude[centre] < 0.8 * ph.t2star_magnitude[centre]
        else:
            assert mk.t2star_magnitude[centre] == pytest.approx(ph.t2star_magnitude[centre], rel=0.05)


def test_spec_is_checked():
    with pytest.raises(ParameterError):
        MarkerSpec(prl_fraction=1.5)
    with pytest.raises(ParameterError):
        MarkerSpec(cvs_fraction=0.7, eccentric_fraction=0.5)
    with pytest.raises(ParameterError):
        MarkerSpec(rim_width_mm=(2.0, 1.0))


def test_truth_tsv_keeps_old_columns_and_adds_markers(tmp_path):
    simulate_study(
        tmp_path / "s", 1, seed=2, shape=(96, 112, 64), voxel_size_mm=(1.0, 1.0, 1.0),
        n_lesions=(3, 1, 1), raters=None, markers=MarkerSpec(prl_fraction=1.0, cvs_fraction=0.4),
    )
    truth = TruthFiles(tmp_path / "s", "01")
    marked = pd.read_csv(truth.lesions_tsv, sep="\t")
    old = ["lesion_id", "class", "designed_delta_wm_ppm", "designed_delta_cortical_ppm", "center_vox",
           "center_mm", "semi_axes_mm", "voxels", "cortex_fraction", "extent_mm",
           "true_mean_chi_wm_part_ppm", "true_mean_chi_cortical_part_ppm"]
    assert [c for c in marked.columns if c in old] == old
    assert set(MARKER_COLUMNS) <= set(marked.columns)
    assert marked["prl"].sum() == 4 and (marked["vein"] == "central").sum() == 2
    params = json.loads(truth.parameters_json.read_text())
    assert params["markers"]["prl_fraction"] == 1.0


SMALL_CLI = ["--subjects", "1", "--seed", "2", "--shape", "96", "112", "64", "--voxel-size", "1", "1", "1",
             "--raw-voxel-size", "2", "2", "2", "--lesions", "3", "1", "1", "--no-votes"]


def test_cli_marker_options_write_the_truth(tmp_path):
    from napari_qsm_ms.cli import main

    out = tmp_path / "s"
    args = ["simulate", str(out), *SMALL_CLI, "--prl-fraction", "1", "--cvs-fraction", "0.4",
            "--eccentric-vein-fraction", "0.2", "--rim-chi-ppm", "0.05", "0.05", "--rim-width-mm", "1.5", "2",
            "--rim-coverage", "1", "1", "--vein-radius-mm", "0.4", "0.4"]
    assert main(args) == 0
    truth = TruthFiles(out, "01")
    t = pd.read_csv(truth.lesions_tsv, sep="\t")
    rims = t[t["prl"].astype(bool)]
    assert len(rims) == 4 and set(rims["class"]) <= {"wm", "mixed"}  # 3 WM + 1 mixed
    assert np.allclose(rims["rim_chi_ppm"], 0.05) and np.allclose(rims["rim_coverage"], 1.0)
    assert rims["rim_width_mm"].between(1.5, 2.0).all()
    assert (t["vein"] == "central").sum() == 2 and (t["vein"] == "eccentric").sum() == 1
    assert np.allclose(t.loc[t["vein"] != "none", "vein_radius_mm"], 0.4)
    params = json.loads(truth.parameters_json.read_text())
    assert params["markers"]["rim_chi_ppm"] == [0.05, 0.05]


@pytest.mark.parametrize(
    "extra, message",
    [(["--prl-fraction", "1.5"], "prl_fraction"), (["--rim-width-mm", "2", "1"], "rim_width_mm"),
     (["--cvs-fraction", "0.8", "--eccentric-vein-fraction", "0.5"], "must not exceed 1")],
)
def test_cli_marker_options_bad_input_one_line(tmp_path, capsys, extra, message):
    from napari_qsm_ms.cli import main

    assert main(["simulate", str(tmp_path / "s"), *SMALL_CLI, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("qsm-ms simulate: error:") and message in err
    assert not any(tmp_path.iterdir())


def test_cli_without_marker_options_passes_no_spec(monkeypatch, tmp_path):
    from napari_qsm_ms.cli import main

    seen = {}
    monkeypatch.setattr("napari_qsm_ms.simulate.study.simulate_study",
                        lambda *a, **k: seen.update(k) or (_ for _ in ()).throw(ParameterError("stop")))
    assert main(["simulate", str(tmp_path / "s"), *SMALL_CLI]) == 2
    assert seen["markers"] is None  # the study is the same as before the marker options existed
