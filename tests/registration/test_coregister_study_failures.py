"""`qsm-ms coregister STUDY` keeps going past a failing series or subject (real files, real SimpleITK).

A simulated study of three small subjects (64 x 64 x 32 T2* at 2 x 2 x 3 mm, 2.5 mm series, as in
test_study.py) is made once per module and copied for each test; the tests damage files on disk
(a truncated .nii.gz, a constant FLAIR, a truncated T2* magnitude) and run the real command.
"""

from __future__ import annotations

import gzip
import json
import shutil
import zlib

import numpy as np
import pytest

from napari_qsm_ms._cli import coregister as coregister_cli
from napari_qsm_ms.cli import main
from napari_qsm_ms.errors import CancelledError
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.io.nifti import check_same_grid, load_volume, save_volume
from napari_qsm_ms.registration.study import coregister_subject
from napari_qsm_ms.simulate.study import simulate_study

ERROR = "qsm-ms coregister: error: "


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine") / "study"
    simulate_study(root, 3, seed=3, shape=(64, 64, 32), voxel_size_mm=(2.0, 2.0, 3.0),
                   raw_voxel_mm={"wmn": 2.5, "csfn": 2.5, "flair": 2.5}, oblique_deg=10, raters=None)
    return root


@pytest.fixture
def study(pristine, tmp_path):
    root = tmp_path / "study"
    shutil.copytree(pristine, root)
    return StudyFiles.at(root)


def subjects(study):
    return {s.label: s for s in study.subjects()}


def truncate(path) -> None:
    """Cut a .nii.gz in the middle of its compressed stream (a copy interrupted mid-way)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises((EOFError, OSError, zlib.error)):
        gzip.decompress(path.read_bytes())


def make_constant(path, value: float = 100.0) -> None:
    raw = load_volume(path)
    save_volume(path, np.full(raw.shape, value, dtype=np.float32), raw.affine)


def derivative_files(study) -> set[str]:
    deriv = study.root / "derivatives" / "qsm-ms"
    return {str(p.relative_to(deriv)) for p in deriv.rglob("*") if p.is_file()}


def coreg_files(subject, key) -> set[str]:
    deriv = subject.study / "derivatives" / "qsm-ms"
    paths = (subject.coreg_series(key), subject.coreg_transform(key, ".tfm"),
             subject.coreg_transform(key, ".json"))
    return {str(p.relative_to(deriv)) for p in paths}


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error" in line]


def test_failing_series_are_reported_and_the_rest_of_the_study_is_registered(study, capsys):
    sub = subjects(study)
    truncate(sub["02"].raw_series("flair"))
    make_constant(sub["03"].raw_series("flair"))
    before = derivative_files(study)

    assert main(["coregister", str(study.root), "--series", "csfn", "flair"]) == 2
    captured = capsys.readouterr()

    # one line per failure on stderr, naming the file and the problem
    errors = error_lines(captured.err)
    assert len(errors) == 2 and all(line.startswith(ERROR) for line in errors)
    assert "sub-02_FLAIR.nii.gz" in errors[0] and "cannot be read as NIfTI" in errors[0]
    assert "sub-03_FLAIR.nii.gz" in errors[1] and "constant" in errors[1]
    # every successful series written (atomically: nothing else appears, no temporary files)
    expected = (coreg_files(sub["01"], "csfn") | coreg_files(sub["01"], "flair")
                | coreg_files(sub["02"], "csfn") | coreg_files(sub["03"], "csfn"))
    assert derivative_files(study) - before == expected
    for label, key in (("01", "csfn"), ("01", "flair"), ("02", "csfn"), ("03", "csfn")):
        check_same_grid(load_volume(sub[label].magnitude), load_volume(sub[label].coreg_series(key)))
        meta = json.loads(sub[label].coreg_transform(key, ".json").read_text())
        assert meta["mutual_information"] > 0.1
        assert meta["moving_image"].endswith(sub[label].raw_series(key).name)
        assert f"sub-{label} {key}: MI" in captured.out
    # the summary ends the run
    assert captured.out.strip().splitlines()[-1] == (
        "qsm-ms coregister: 4 series registered, 2 failed: sub-02 flair, sub-03 flair")


def test_no_failure_exits_zero_with_a_summary(study, capsys):
    sub = subjects(study)
    sub["02"].raw_series("csfn").unlink()  # missing series are skipped, not failures
    assert main(["coregister", str(study.root), "--series", "csfn"]) == 0
    captured = capsys.readouterr()
    assert error_lines(captured.err) == []
    assert "sub-02_acq-csfn_T1w.nii.gz not found, csfn skipped" in captured.out
    assert captured.out.strip().splitlines()[-1] == (
        "qsm-ms coregister: 2 series registered, 1 skipped (not found), none failed")
    for label in ("01", "03"):
        assert sub[label].coreg_transform("csfn", ".json").exists()


def test_fail_fast_stops_at_the_first_failure(study, capsys):
    sub = subjects(study)
    truncate(sub["02"].raw_series("flair"))
    before = derivative_files(study)

    assert main(["coregister", str(study.root), "--series", "flair", "csfn", "--fail-fast"]) == 2
    captured = capsys.readouterr()
    errors = error_lines(captured.err)
    assert errors == [captured.err.strip().splitlines()[-1]]
    assert errors[0].startswith(ERROR) and "sub-02_FLAIR.nii.gz" in errors[0]
    # sub-01 was done before the failure; sub-02's csfn (after its flair) and sub-03 never ran
    done_before = coreg_files(sub["01"], "flair") | coreg_files(sub["01"], "csfn")
    assert derivative_files(study) - before == done_before
    assert "series registered" not in captured.out


def test_unusable_magnitude_fails_the_subject_and_the_run_goes_on(study, capsys):
    sub = subjects(study)
    truncate(sub["01"].magnitude)
    assert main(["coregister", str(study.root), "--series", "csfn", "--subject", "01", "02"]) == 2
    captured = capsys.readouterr()
    errors = error_lines(captured.err)
    assert len(errors) == 1 and errors[0].startswith(ERROR)
    assert "sub-01_part-mag_T2starw.nii.gz" in errors[0]
    assert sub["02"].coreg_transform("csfn", ".json").exists()
    assert not sub["01"].coreg_transform("csfn", ".json").exists()
    assert captured.out.strip().splitlines()[-1] == (
        "qsm-ms coregister: 1 series registered, 1 failed: sub-01 (all series)")


def test_debug_shows_each_traceback_and_still_goes_on(study, capsys):
    sub = subjects(study)
    truncate(sub["02"].raw_series("flair"))
    make_constant(sub["03"].raw_series("flair"), value=0.0)
    argv = ["--debug", "coregister", str(study.root), "--series", "flair", "--subject", "02", "03"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("Traceback (most recent call last)") == 2
    lines = [line for line in captured.err.splitlines() if line.startswith(ERROR)]
    assert len(lines) == 2
    assert "sub-02_FLAIR.nii.gz" in lines[0] and "sub-03_FLAIR.nii.gz" in lines[1] and "empty" in lines[1]
    assert captured.out.strip().splitlines()[-1].endswith("2 failed: sub-02 flair, sub-03 flair")


def test_keyboard_interrupt_stops_the_whole_run(study, capsys, monkeypatch):
    """Ctrl+C (here raised from the progress bar while sub-01's csfn loads) is never 'kept going'."""

    class InterruptingBar(coregister_cli.TextProgress):
        def __call__(self, fraction, message):
            if "csfn: loading" in message:
                raise KeyboardInterrupt
            super().__call__(fraction, message)

    monkeypatch.setattr(coregister_cli, "TextProgress", InterruptingBar)
    before = derivative_files(study)
    assert main(["coregister", str(study.root), "--series", "csfn", "flair"]) == 130
    captured = capsys.readouterr()
    assert "qsm-ms coregister: interrupted" in captured.err
    assert error_lines(captured.err) == [] and "series registered" not in captured.out
    assert derivative_files(study) == before


def test_cancel_is_not_collected_as_a_failure(study):
    subject = subjects(study)["01"]

    def cancel_on_flair(fraction, message):
        if "flair: loading" in message:
            raise CancelledError("cancelled by the user")

    with pytest.raises(CancelledError):
        coregister_subject(subject, keys=("flair", "csfn"), progress=cancel_on_flair, keep_going=True)
    assert not subject.coreg_transform("csfn", ".json").exists()
