"""Run every benchmarks/bench_*.py in turn, each in its own process, and print their output.

Figures are printed, never asserted: each benchmark states its own yardstick measured in the same
run (for example the time of one 3-D FFT of the same size) and its target from the issue.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    status = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n===== {script.name} =====", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script), *sys.argv[1:]])
        print(f"===== {script.name}: exit {proc.returncode}, {time.perf_counter() - t0:.1f} s wall", flush=True)
        status = status or proc.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
