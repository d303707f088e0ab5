"""Screenshot for docs/viewing.md: File > Open Sample, linked orthogonal views, Drawing tools dock.

Run: ``python docs/screenshots/make_viewing.py`` under a display (writes viewing_orthogonal.png).
The sample is copied to a temporary folder first (the Open Sample copy-on-open, redirected).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import napari
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_viewer import shoot_later  # noqa: E402

OUT = Path(__file__).resolve().parent / "viewing_orthogonal.png"


def main() -> None:
    os.environ["QSM_MS_SAMPLE_DIR"] = tempfile.mkdtemp(prefix="qsm-ms-sample-")
    viewer = napari.Viewer(title="napari-qsm-ms")
    viewer.window.resize(1600, 1000)
    viewer.open_sample("napari-qsm-ms", "subject")
    lesions = next(layer for layer in viewer.layers if layer.metadata.get("role") == "lesions")
    viewer.layers["tissue"].visible = False
    viewer.layers.selection.active = lesions
    # the crosshair on lesion 4 (a WM lesion): its centre voxel
    centre = np.argwhere(np.asarray(lesions.data) == 4).mean(axis=0)
    viewer.dims.current_step = tuple(int(round(c)) for c in centre)
    _, tools = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Drawing tools")
    _, views = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Orthogonal views")
    views.show_check.setChecked(True)
    viewer.dims.current_step = tuple(int(round(c)) for c in centre)

    shoot_later(viewer, OUT, 3500, before_close=views.release)
    napari.run()


if __name__ == "__main__":
    main()
