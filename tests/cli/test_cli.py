"""The qsm-ms entry point: help for every command, one-line errors, manifest validity."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from napari_qsm_ms.cli import SUBCOMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as info:
            parser.parse_args([name, "--help"])
        assert info.value.code == 0
    assert "qsm-ms" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, text",
    [
        (["view", "/nonexistent/study"], "/nonexistent/study: not found"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(argv, text, capsys, tmp_path):
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and text in err


def test_view_refuses_a_folder_without_subjects(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["view", str(tmp_path)]) == 2
    assert "not a NIfTI file, a sub-* folder or a study" in capsys.readouterr().err
    assert main(["view", str(tmp_path / "notes.txt")]) == 2
    assert "not a NIfTI file" in capsys.readouterr().err


def test_console_script_runs_without_traceback(tmp_path):
    exe = Path(sys.executable).with_name("qsm-ms")
    proc = subprocess.run([str(exe), "view", str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0


def test_manifest_is_valid_and_names_importable_commands():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(ROOT / "napari_qsm_ms" / "napari.yaml")
    manifest.validate_imports()
