"""`qsm-ms simulate`: success and one-line errors with a non-zero exit."""

from __future__ import annotations

import pytest

from napari_qsm_ms.cli import main
from napari_qsm_ms.io import StudyFiles, load_volume

SMALL = [
    "--shape",
    "64",
    "72",
    "40",
    "--voxel-size",
    "1.5",
    "1.5",
    "2",
    "--raw-voxel-size",
    "2",
    "2",
    "2",
    "--lesions",
    "2",
    "1",
    "1",
]


def test_simulate_cli_writes_study(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["simulate", str(out), "--subjects", "1", "--seed", "3", "--oblique-deg", "10", *SMALL]) == 0
    assert "wrote 1 simulated subject" in capsys.readouterr().out
    study = StudyFiles.at(out)
    assert study.subject_labels() == ["01"]
    vol = load_volume(study.subject("01").magnitude)
    assert vol.shape == (64, 72, 40)
    assert vol.voxel_size_mm == pytest.approx((1.5, 1.5, 2.0))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--subjects", "0"], "number of subjects"),
        (["--voxel-size", "1", "-1", "1"], "voxel size must be positive"),
        (["--shape", "4000", "4000", "4000"], "shape"),
        (["--shape", "8", "8", "8"], "shape must be"),
        (["--oblique-deg", "70"], "oblique"),
        (["--lesions", "400", "0", "0"], "could not place"),
        (["--snr", "0"], "SNR"),
    ],
)
def test_simulate_cli_bad_input(tmp_path, capsys, extra, message):
    out = tmp_path / "study"
    args = ["simulate", str(out), "--subjects", "1", *SMALL, *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("qsm-ms simulate: error:") and message in err
    assert not any(tmp_path.iterdir())  # nothing left behind


def test_simulate_cli_refuses_non_empty_folder(tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["simulate", str(out), "--subjects", "1", *SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err and "--overwrite" in err
    assert (out / "notes.txt").read_text() == "mine"
    assert main(["simulate", str(out), "--subjects", "1", "--overwrite", "--no-votes", *SMALL]) == 0
    assert not (out / "notes.txt").exists()


def test_simulate_cli_bad_number_is_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(tmp_path / "s"), "--seed", "abc"])
    assert exc.value.code == 2


def test_simulate_cli_creates_parents_or_says_why(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "study"
    assert main(["simulate", str(out), "--subjects", "1", "--no-votes", *SMALL]) == 0
    assert (out / "sub-01").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["simulate", str(blocker / "study"), "--subjects", "1", *SMALL]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(blocker) in err and "cannot create" in err
    assert main(["simulate", str(blocker / "x" / "study"), "--subjects", "1", *SMALL]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(blocker) in err and "cannot create" in err
