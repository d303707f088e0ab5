"""The whole analysis, end to end, on a small simulated study: what `make run` does without a display."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_qsm_ms.demo import run_demo
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.io.nifti import load_volume
from napari_qsm_ms.simulate.study import simulate_study


@pytest.mark.slow
def test_demo_runs_every_step_and_writes_traceable_outputs(tmp_path, capsys):
    source = simulate_study(
        tmp_path / "source",
        2,
        seed=7,
        shape=(72, 84, 36),
        voxel_size_mm=(1.5, 1.5, 2.0),
        oblique_deg=(0.0, 10.0),
    )
    assert run_demo(source.root, tmp_path / "out") == 0
    out = capsys.readouterr().out
    study = StudyFiles.at(tmp_path / "out" / "study")
    assert str(study.stats_dir / "summary.tsv") in out
    for sub in study.subjects():
        chi = load_volume(sub.chimap)
        mag = load_volume(sub.magnitude)
        np.testing.assert_allclose(chi.affine, mag.affine)
        assert chi.data.dtype == np.float32 and np.isfinite(chi.data).all()
        for key in ("wmn", "csfn", "flair"):
            assert load_volume(sub.coreg_series(key)).shape == mag.shape
        assert load_volume(sub.refwm, dtype=None).data.max() > 0
        assert sub.lesions_tsv.exists()
    lesions = pd.read_csv(study.stats_dir / "lesions.tsv", sep="\t")
    summary = pd.read_csv(study.stats_dir / "summary.tsv", sep="\t")
    assert {"subject", "lesion_id", "class", "part", "lesion_ppm", "reference_ppm", "relative_ppm"} <= set(lesions)
    assert set(summary["set"]) >= {"wm", "cortical"}
    assert (study.stats_dir / "report.html").exists()
    assert study.agreement_tsv.exists()
    # the shipped source study is untouched
    assert not (source.derivatives / "stats").exists()
