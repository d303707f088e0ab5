"""Screenshots of every step of one subject's journey through the workspace dock (docs/workspace.md).

The sample study's sub-01, from File > Open Sample to the Statistics export, driven exactly as
tests/widgets/test_journey.py drives it (same driver: tests/widgets/_journey.py), with a
screenshot of the whole window after each step: docs/screenshots/journey_NN_<step>.png.
Also prints the clicks per step (see docs/workspace.md).

Run under Xvfb: ``xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_journey.py``
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import napari
from qtpy.QtCore import Qt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.widgets._journey import RATERS, Journey  # noqa: E402


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="journey-shots-"))
    os.environ["QSM_MS_SAMPLE_DIR"] = str(tmp / "sample")
    viewer = napari.Viewer(title="napari-qsm-ms: one subject, all steps")
    viewer.window._qt_window.resize(1600, 1000)
    journey = Journey(viewer, shots=HERE)
    journey.open_sample()
    journey.reconstruct()
    journey.coregister()
    journey.draw_lesion()
    journey.build_references()
    for rater, keys in zip(RATERS, ([Qt.Key_1], [Qt.Key_1, Qt.Key_3], [Qt.Key_1, Qt.Key_2])):
        journey.rate(rater, keys)
    journey.consensus()
    journey.statistics(tmp / "report")
    previous = 0
    for name, total in journey.steps:
        print(f"{name:20s} {total - previous:4d} clicks/keys (total {total})")
        previous = total
    viewer.close()


if __name__ == "__main__":
    main()
