"""docs/cli.md shows each ``qsm-ms`` subcommand's ``--help`` as it is (80 columns): an option added
or changed without its docs fails here (``--medi-prior-region`` had gone stale there once)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _sections() -> dict:
    text = DOC.read_text()
    return dict(re.findall(r"^## qsm-ms (\w+)\n.*?```\n(.*?)```\n", text, flags=re.S | re.M))


@pytest.mark.parametrize("command", sorted(_sections()))
def test_docs_cli_shows_the_current_help(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = subprocess.run([sys.executable, "-m", "napari_qsm_ms.cli", command, "--help"], capture_output=True,
                         text=True, check=True, cwd=DOC.parents[1]).stdout
    assert _sections()[command] == out, f"docs/cli.md: regenerate the {command} section from 'qsm-ms {command} --help'"


def test_every_subcommand_has_a_section():
    assert set(_sections()) >= {"recon", "coregister", "rois", "consensus", "stats", "simulate", "view", "run"}
