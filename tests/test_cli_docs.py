"""docs/cli.md is what ``docs/make_cli_doc.py`` writes from each ``qsm-ms`` subcommand's ``--help``
(80 columns): an option added or changed without regenerating it fails here
(``--medi-prior-region`` had gone stale there once)."""

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_cli_is_the_current_help(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    spec = importlib.util.spec_from_file_location("make_cli_doc", DOCS / "make_cli_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == module.render(), \
        "docs/cli.md is stale: run COLUMNS=80 python docs/make_cli_doc.py"
