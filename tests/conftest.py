"""Test-wide settings: keep napari/Qt/Mesa state inside the test run, never in $HOME."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_RUN_DIR = Path(tempfile.mkdtemp(prefix="qsm-ms-tests-"))
for _var, _sub in [
    ("XDG_CONFIG_HOME", "config"),
    ("XDG_CACHE_HOME", "cache"),
    ("XDG_DATA_HOME", "data"),
    ("XDG_RUNTIME_DIR", "runtime"),
    ("MPLCONFIGDIR", "mpl"),
]:
    _path = _RUN_DIR / _sub
    _path.mkdir(parents=True, exist_ok=True)
    os.environ[_var] = str(_path)
os.chmod(_RUN_DIR / "runtime", 0o700)
os.environ.pop("QT_QPA_PLATFORM", None)  # napari needs a real GL context: run under Xvfb
os.environ.setdefault("NAPARI_STRICT_QT", "raise")
os.environ.setdefault("MPLBACKEND", "Agg")
