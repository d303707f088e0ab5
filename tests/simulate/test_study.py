"""The study writer: layout, files, phase units, truth, misalignment, atomicity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from napari_qsm_ms.errors import CancelledError, ParameterError, StudyLayoutError
from napari_qsm_ms.io import (
    StudyFiles,
    acquisition_from_sidecar,
    check_same_grid,
    load_volume,
    phase_to_radians,
)
from napari_qsm_ms.io.geometry import b0_direction_voxel
from napari_qsm_ms.io.units import detect_phase_units
from napari_qsm_ms.qsm.dipole import ppm_per_radian
from napari_qsm_ms.simulate.phantom import make_phantom
from napari_qsm_ms.simulate.study import (
    phase_to_raw_int16,
    random_misalignment,
    raw_series_grid,
    read_transform,
    sample_model,
    simulate_study,
)
from napari_qsm_ms.simulate.truth import TruthFiles

SMALL = {
    "shape": (64, 72, 40),
    "voxel_size_mm": (1.5, 1.5, 2.0),
    "n_lesions": (3, 2, 1),
    "raw_voxel_mm": {"wmn": 2.0, "csfn": 1.8, "flair": 1.8},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> StudyFiles:
    out = tmp_path_factory.mktemp("sim") / "study"
    return simulate_study(out, 2, seed=5, oblique_deg=(0.0, 15.0), **SMALL)


def test_layout(study):
    assert study.subject_labels() == ["01", "02"]
    root = study.root
    assert json.loads((root / "dataset_description.json").read_text())["DatasetType"] == "raw"
    assert (
        json.loads((study.derivatives / "dataset_description.json").read_text())["DatasetType"]
        == "derivative"
    )
    participants = pd.read_csv(root / "participants.tsv", sep="\t")
    assert participants["participant_id"].tolist() == ["sub-01", "sub-02"]
    for sub in study.subjects():
        mag = load_volume(sub.magnitude)
        for path in (sub.phase, sub.tissue, sub.lesions):
            check_same_grid(mag, load_volume(path, dtype=None))
        truth = TruthFiles(root, sub.label)
        for path in (
            truth.chimap,
            truth.local_field,
            truth.background_field,
            truth.tissue,
            truth.lesions,
            truth.vessels,
            truth.brain_mask,
        ):
            check_same_grid(mag, load_volume(path))
        for key in ("wmn", "csfn", "flair"):
            raw = load_volume(sub.raw_series(key), dtype=None)
            assert raw.data.dtype == np.int16
            assert not np.allclose(raw.affine, mag.affine)  # its own grid
            assert "".join(__import__("nibabel").aff2axcodes(raw.affine)) == "LIA"  # coronal
        acq = acquisition_from_sidecar(sub.phase_json)
        assert acq.te_s == pytest.approx(0.0177) and acq.b0_t == pytest.approx(7.0)
        labels = load_volume(sub.lesions, dtype=None).data
        assert labels.dtype == np.uint8
        assert sorted(np.unique(labels[labels > 0]).tolist()) == list(range(1, 7))
        assert np.array_equal(labels, load_volume(truth.lesions, dtype=None).data)
        votes = [pd.read_csv(sub.votes_tsv(r), sep="\t", keep_default_na=False) for r in ("r1", "r2", "r3")]
        for v in votes:
            assert v.columns.tolist()[:5] == ["lesion_id", "vote", "comment", "timestamp", "candidate_source"]
            assert sorted(v["lesion_id"]) == list(range(1, 7))
            assert set(v["vote"]) <= {"wm", "cortical", "mixed", "not_lesion"}
    # no temporary folders left beside the study
    assert [p.name for p in root.parent.iterdir()] == ["study"]


def test_phase_units_and_wrapping(study):
    sub1, sub2 = study.subjects()
    raw = load_volume(sub1.phase, dtype=None).data
    assert raw.dtype == np.int16 and raw.min() >= -4096 and raw.max() <= 4095
    assert detect_phase_units(raw) == "raw"
    rad = load_volume(sub2.phase).data
    assert detect_phase_units(rad) == "rad"
    assert rad.min() >= -np.pi and rad.max() < np.pi
    # the unwrapped total phase inside the brain spans well over 2 pi: the data really wrap
    for sub in (sub1, sub2):
        truth = TruthFiles(study.root, sub.label)
        brain = load_volume(truth.brain_mask).data > 0
        total = load_volume(truth.local_field).data + load_volume(truth.background_field).data
        phase_span = np.ptp(total[brain]) / ppm_per_radian(0.0177, 7.0)
        assert phase_span > 2 * np.pi


def test_raw_and_radian_twins_agree(tmp_path):
    """The same subject stored as raw integers and as radians gives the same phase."""
    a = simulate_study(tmp_path / "raw", 1, seed=11, phase_units="raw", raters=None, **SMALL)
    b = simulate_study(tmp_path / "rad", 1, seed=11, phase_units="rad", raters=None, **SMALL)
    pa = phase_to_radians(load_volume(a.subject("01").phase, dtype=None).data)
    pb = phase_to_radians(load_volume(b.subject("01").phase).data)
    diff = np.angle(np.exp(1j * (pa.astype(np.float64) - pb)))
    assert np.abs(diff).max() < 1e-5
    np.testing.assert_array_equal(
        load_volume(a.subject("01").magnitude).data, load_volume(b.subject("01").magnitude).data
    )


def test_phase_matches_truth_fields(study):
    """Noise-free parts: wrapped phase = truth total field / ppm_per_radian + offset where SNR is high."""
    sub = study.subject("02")
    truth = TruthFiles(study.root, "02")
    params = json.loads(truth.parameters_json.read_text())
    phase = load_volume(sub.phase).data.astype(np.float64)
    total = load_volume(truth.local_field).data + load_volume(truth.background_field).data
    expected = total / ppm_per_radian(0.0177, 7.0) + params["phase_offset_rad"]
    mag = load_volume(sub.magnitude).data
    wm = load_volume(truth.tissue).data == 3
    sel = wm & (mag > 20 * params["noise_sd"])
    err = np.angle(np.exp(1j * (phase[sel] - expected[sel])))
    assert sel.sum() > 1000
    assert np.abs(err).max() < 0.3  # noise SD ~ 1/SNR ~ 0.03 rad
    # phase noise SD = noise SD / magnitude: about 1/SNR (40) in white matter
    expected_sd = float(np.mean(params["noise_sd"] / mag[sel]))
    assert 0.8 * expected_sd < np.std(err) < 1.2 * expected_sd, (np.std(err), expected_sd)
    # the affine's B0 direction is the one the field was computed with
    np.testing.assert_allclose(
        b0_direction_voxel(load_volume(sub.magnitude).affine), params["b0_dir_voxel"], atol=1e-6
    )


def test_truth_deltas_realised_in_files(study):
    truth = TruthFiles(study.root, "01")
    chi = load_volume(truth.chimap).data
    lesions = load_volume(truth.lesions, dtype=None).data
    tissue = load_volume(truth.tissue, dtype=None).data
    vessels = load_volume(truth.vessels).data > 0
    table = pd.read_csv(truth.lesions_tsv, sep="\t")
    vs = load_volume(truth.chimap).voxel_size_mm
    for row in table.to_dict("records"):
        if row["class"] != "wm":
            continue
        m = lesions == row["lesion_id"]
        dist = ndimage.distance_transform_edt(~m, sampling=vs)
        ring = (dist > 1.0) & (dist <= 4.0) & (tissue == 3) & (lesions == 0) & ~vessels
        measured = chi[m].mean() - chi[ring].mean()
        assert abs(measured - row["designed_delta_wm_ppm"]) < 1.5e-3


def test_misalignment_transform_maps_anatomy(tmp_path):
    """A lesion's centroid on a raw grid maps, through the recorded matrix, onto its T2* centroid."""
    phantom = make_phantom((64, 72, 40), (1.5, 1.5, 2.0), seed=2, n_lesions=(3, 1, 1), oblique_deg=10.0)
    matrix, angle, shift = random_misalignment(np.random.default_rng(0))
    assert 1.0 <= angle <= 3.0 and 1.0 <= np.linalg.norm(shift) <= 3.0
    np.testing.assert_allclose(matrix[:3, :3] @ matrix[:3, :3].T, np.eye(3), atol=1e-12)
    shape, affine = raw_series_grid(phantom, 1.0, matrix)
    sampled = sample_model(phantom, shape, affine, matrix, 1.0)
    for lid in (1, 2):
        idx_raw = np.mean(np.nonzero(sampled["lesion_ids"] == lid), axis=1)
        idx_t2 = np.mean(np.nonzero(phantom.lesion_ids == lid), axis=1)
        world_raw = affine @ np.append(idx_raw, 1.0)
        world_t2 = phantom.affine @ np.append(idx_t2, 1.0)
        # within the larger voxel edge (discretisation of two different grids)
        assert np.linalg.norm((matrix @ world_raw)[:3] - world_t2[:3]) < 1.5
        assert np.linalg.norm(world_raw[:3] - world_t2[:3]) > 0.3  # the misalignment is real


def test_truth_transform_file_is_rigid(study):
    m = read_transform(TruthFiles(study.root, "01").transform("csfn"))
    assert m.shape == (4, 4)
    np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-9)
    assert np.linalg.det(m[:3, :3]) == pytest.approx(1.0)


def test_lesion_contrast_in_raw_series(study):
    """On the coronal grids, lesions stay bright on FLAIR and dark on CSF-nulled MPRAGE (noise-free check)."""
    phantom = make_phantom((64, 72, 40), (1.5, 1.5, 2.0), seed=3, n_lesions=(3, 1, 1))
    matrix, _, _ = random_misalignment(np.random.default_rng(1))
    shape, affine = raw_series_grid(phantom, 1.2, matrix)
    s = sample_model(phantom, shape, affine, matrix, 1.2)
    les = s["lesion_ids"] > 0
    wm = (s["region"] == 30) & ~les
    assert les.sum() > 20
    assert s["flair"][les & (s["region"] == 30)].mean() > s["flair"][wm].mean()
    assert s["t1_csfn"][les & (s["region"] == 30)].mean() < s["t1_csfn"][wm].mean()


def test_phase_to_raw_int16_round_trip():
    phase = np.linspace(-np.pi, np.pi, 10001, endpoint=False).astype(np.float32)
    raw = phase_to_raw_int16(phase)
    assert raw.min() >= -4096 and raw.max() <= 4095
    back = phase_to_radians(raw, "raw")
    assert np.abs(np.angle(np.exp(1j * (back - phase)))).max() <= np.pi / 4096 + 1e-6


def test_existing_output_and_cancel(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(StudyLayoutError, match="not empty"):
        simulate_study(out, 1, **SMALL)
    assert (out / "keep.txt").exists()

    def cancel(fraction, message):
        if fraction > 0.3:
            raise CancelledError("stop")

    with pytest.raises(CancelledError):
        simulate_study(tmp_path / "c", 1, progress=cancel, **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # nothing half-written
    # overwrite replaces the folder
    simulate_study(out, 1, overwrite=True, raters=None, **SMALL)
    assert not (out / "keep.txt").exists() and StudyFiles.at(out).subject_labels() == ["01"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_subjects": 0},
        {"n_subjects": 100},
        {"shape": (5000, 5000, 5000)},
        {"voxel_size_mm": (1, 1, -1)},
        {"phase_units": "deg"},
        {"raw_voxel_mm": {"wmn": 1.0}},
        {"oblique_deg": 60.0},
    ],
)
def test_bad_parameters(tmp_path, kwargs):
    args = {**SMALL, **kwargs}
    n = args.pop("n_subjects", 1)
    with pytest.raises(ParameterError):
        simulate_study(tmp_path / "x", n, **args)
    assert not any(tmp_path.iterdir())


SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "study"


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample study not generated")
def test_shipped_sample_study():
    size = sum(p.stat().st_size for p in SAMPLE.parent.rglob("*") if p.is_file())
    assert size < 20e6
    study = StudyFiles.at(SAMPLE)
    assert study.subject_labels() == ["01", "02"]
    s1, s2 = study.subjects()
    assert load_volume(s1.phase, dtype=None).data.dtype == np.int16
    assert detect_phase_units(load_volume(s2.phase).data) == "rad"
    assert abs(b0_direction_voxel(load_volume(s2.magnitude).affine)[1]) > 0.1  # sub-02 oblique
    for sub in (s1, s2):
        assert load_volume(sub.lesions, dtype=None).data.max() == 11
        for r in ("r1", "r2", "r3"):
            assert sub.votes_tsv(r).is_file()
        truth = TruthFiles(SAMPLE, sub.label)
        brain = load_volume(truth.brain_mask).data > 0
        total = load_volume(truth.local_field).data + load_volume(truth.background_field).data
        assert np.ptp(total[brain]) / ppm_per_radian(0.0177, 7.0) > 2 * np.pi


def test_mni_study_writes_notice(tmp_path):
    pytest.importorskip("nilearn")
    study = simulate_study(
        tmp_path / "mni",
        1,
        seed=1,
        anatomy="mni",
        shape=(72, 88, 32),
        voxel_size_mm=(2.0, 2.0, 2.5),
        n_lesions=(2, 1, 1),
        raw_voxel_mm={"wmn": 2.5, "csfn": 2.5, "flair": 2.5},
        raters=None,
    )
    assert "McConnell Brain Imaging Centre" in (study.root / "NOTICE").read_text()
    params = json.loads(TruthFiles(study.root, "01").parameters_json.read_text())
    assert params["anatomy"] == "mni"
    assert load_volume(study.subject("01").raw_series("csfn")).shape[0] > 60  # whole head, real size
