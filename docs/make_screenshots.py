"""Run every docs/screenshots/make_*.py (each builds a viewer under the current X display and saves PNGs).

Use through `make screenshots` (which wraps it in xvfb-run). Look at the PNGs afterwards.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "screenshots"

if __name__ == "__main__":
    status = 0
    for script in sorted(HERE.glob("make_*.py")):
        print(f"== {script.name}", flush=True)
        status |= subprocess.run([sys.executable, str(script)]).returncode
    sys.exit(status)
