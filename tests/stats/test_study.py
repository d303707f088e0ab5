"""run_study_stats and ``qsm-ms stats`` on small studies written to disk."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd
import pytest

from napari_qsm_ms.cli import main
from napari_qsm_ms.errors import CancelledError, ParameterError, StudyLayoutError
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.stats.study import run_study_stats
from napari_qsm_ms.stats.synthetic import write_synthetic_study

from .conftest import make_arrays, write_subject

SMALL = dict(shape=(56, 56, 16), voxel_size_mm=(0.8, 0.8, 1.5))


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    truth = write_synthetic_study(root, [(2, 4, 1), (1, 3, 1), (0, 2, 0), (0, 0, 0)], seed=4, **SMALL)
    return root, truth


def _read(path):
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=["n/a"], dtype={"subject": str})


def test_study_outputs_and_traceability(small_study, tmp_path):
    root, truth = small_study
    out = tmp_path / "stats"
    messages = []
    res = run_study_stats(root, out, progress=lambda f, m: messages.append((f, m)))
    for name in (
        "lesions.tsv",
        "subjects.tsv",
        "summary.tsv",
        "model.tsv",
        "bootstrap.tsv",
        "inputs.tsv",
        "figure2.png",
        "figure2.svg",
        "report.html",
    ):
        assert (out / name).is_file(), name
    assert list(out.glob("roi_sub-*_lesion-*.png")) and list(out.glob("roi_sub-*_lesion-*.svg"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    assert messages[-1][0] == 1.0 and all(0 <= f <= 1 for f, _ in messages)

    lesions = _read(out / "lesions.tsv")
    assert len(lesions) == len(truth) + 2  # two mixed lesions give two rows each
    subjects = _read(out / "subjects.tsv")
    assert subjects["subject"].tolist() == ["01", "02", "03", "04"]
    assert subjects["n_lesions"].tolist() == [7, 5, 2, 0]
    summary = _read(out / "summary.tsv")
    assert summary[["set", "level"]].head(6).values.tolist() == [
        ["wm", "lesion"],
        ["cortical", "lesion"],
        ["mixed_wm", "lesion"],
        ["mixed_cortical", "lesion"],
        ["wm", "subject"],
        ["cortical", "subject"],
    ]
    assert summary.loc[0, "n"] == 9 and summary.loc[1, "n"] == 3

    # every input file is listed with its true SHA-256, and each appears in the report
    inputs = _read(out / "inputs.tsv")
    report = (out / "report.html").read_text()
    sub = StudyFiles.at(root).subject("01")
    for path in (sub.chimap, sub.lesions, sub.refwm, sub.refgm, sub.tissue, sub.lesions_tsv):
        rel = str(path.relative_to(root))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert inputs.loc[inputs["file"] == rel, "sha256"].item() == digest
        assert digest in report
    # each lesion row names the files its numbers come from
    assert (lesions["chimap_file"].str.endswith("_Chimap.nii.gz")).all()
    for v in ("numpy", "scipy", "statsmodels", "nibabel", "napari-qsm-ms"):
        assert v in report
    assert "data:image/png;base64," in report
    assert re.search(r"Table 3", report)
    np.testing.assert_allclose(
        lesions["relative_ppm"].to_numpy(dtype=float),
        res.lesions["relative_ppm"].to_numpy(dtype=float),
        rtol=1e-6,
    )


def test_default_out_dir_and_rerun_replaces(small_study):
    root, _ = small_study
    run_study_stats(root, progress=None)
    out = StudyFiles.at(root).stats_dir
    (out / "stale.txt").write_text("old")
    run_study_stats(root)
    assert (out / "summary.tsv").exists() and not (out / "stale.txt").exists()


def test_cancel_leaves_no_partial_output(small_study, tmp_path):
    root, _ = small_study
    out = tmp_path / "stats"

    def cancel_late(fraction, message):
        if fraction > 0.7:
            raise CancelledError("cancelled by the user")

    with pytest.raises(CancelledError):
        run_study_stats(root, out, progress=cancel_late)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_no_chimap_anywhere_is_an_error(tmp_path):
    write_subject(tmp_path, skip=("chimap",))
    with pytest.raises(StudyLayoutError, match="no subject has a Chimap"):
        run_study_stats(tmp_path)


def test_subject_with_bad_file_is_left_out_with_a_note(tmp_path):
    write_subject(tmp_path, "01")
    sub = write_subject(tmp_path, "02")
    sub.refwm.write_bytes(b"not a nifti")
    res = run_study_stats(tmp_path, tmp_path / "out")
    s = res.subjects.set_index("subject")
    assert s.loc["02", "status"] == "error" and str(sub.refwm) in s.loc["02", "message"]
    assert any("sub-02 left out" in n for n in res.notes)
    assert set(res.lesions["subject"]) == {"01"}


def test_cli_stats(small_study, tmp_path, capsys):
    root, _ = small_study
    out = tmp_path / "cli"
    assert main(["stats", str(root), "--out", str(out), "--bootstrap", "200", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "wm" in text and str(out) in text
    assert _read(out / "bootstrap.tsv")["n_resamples"].eq(200).all()


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "study folder not found" in err
    write_subject(tmp_path, skip=("chimap",))
    assert main(["stats", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no subject has a Chimap" in err
    assert main(["stats", str(tmp_path), "--bootstrap", "0"]) == 2


def test_figures_for_study_without_cortical_lesions(tmp_path):
    arrays = make_arrays()
    arrays["lesions"][arrays["lesions"] >= 2] = 0
    write_subject(tmp_path, "01", arrays=arrays, classes=("wm",))
    write_subject(tmp_path, "02", arrays=arrays, classes=("wm",))
    res = run_study_stats(tmp_path, tmp_path / "out")
    s = res.summary.set_index(["set", "level"])
    assert s.loc[("cortical", "lesion"), "n"] == 0
    assert (tmp_path / "out" / "figure2.png").stat().st_size > 1000


def test_refuses_to_replace_a_folder_it_did_not_write(small_study, tmp_path, capsys):
    root, _ = small_study
    precious = tmp_path / "Documents"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(ParameterError, match="not written by qsm-ms stats"):
        run_study_stats(root, precious)
    assert main(["stats", str(root), "--out", str(precious), "--quiet"]) == 2
    assert "choose a new or empty folder" in capsys.readouterr().err
    assert (precious / "thesis.tex").read_text() == "do not delete"
    # an empty folder, or a previous output (marker file), is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    run_study_stats(root, empty, n_resamples=50)
    assert (empty / ".qsm-ms-stats").exists() and (empty / "summary.tsv").exists()
    summary = _read(empty / "summary.tsv")
    assert summary.loc[0, "subjects"] == "01,02,03"


def test_stale_reference_labels_reported(tmp_path):
    arrays = make_arrays()
    arrays["refwm"][20:23, 28:31, 9] = 7  # a reference left behind by a deleted lesion 7
    write_subject(tmp_path, "01", arrays=arrays)
    res = run_study_stats(tmp_path, tmp_path / "out", n_resamples=20)
    msg = res.subjects.set_index("subject").loc["01", "message"]
    assert "refwm has labels without a lesion: 7" in msg
    assert any("stale references" in n for n in res.notes)
    assert set(res.lesions["lesion_id"]) == {1, 2, 3}


def test_cli_unknown_subject(small_study, capsys):
    root, _ = small_study
    assert main(["stats", str(root), "--subject", "99", "--quiet"]) == 2
    assert "sub-99" in capsys.readouterr().err


def test_report_recompute_snippet_reproduces_rows(small_study, tmp_path, monkeypatch):
    from napari_qsm_ms.stats.report import RECOMPUTE_SNIPPET

    root, _ = small_study
    run_study_stats(root, tmp_path / "out", n_resamples=20)
    lesions = _read(tmp_path / "out" / "lesions.tsv")
    monkeypatch.chdir(root)
    for part in ("whole", "wm", "cortical"):
        row = lesions[lesions["part"] == part].iloc[0]
        code = RECOMPUTE_SNIPPET.replace("row = ...", "pass").replace(
            "BRAIN_MASK_FILE",
            repr(f"derivatives/qsm-ms/sub-{row['subject']}/anat/sub-{row['subject']}_desc-brain_mask.nii.gz"),
        )
        scope = {"row": row}
        exec(code, scope)
        assert scope["relative_ppm"] == pytest.approx(row["relative_ppm"], abs=1e-6)
