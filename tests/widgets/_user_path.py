"""Helpers for GUI tests that take the user's path: docks from the Plugins menu, File > Open."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QDockWidget

PLUGIN = "napari-qsm-ms"


def add_dock(viewer, name: str):
    """Add a dock as the Plugins menu does (napari hands the widget a PublicOnlyProxy viewer).

    Returns (QDockWidget, widget)."""
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return dock, getattr(widget, "__wrapped__", widget)


def dock_visible(dock: QDockWidget) -> bool:
    return not dock.isHidden()


def canvas_widget(viewer):
    return viewer.window._qt_viewer.canvas.native


def sign_in(widget, name: str, qtbot) -> None:
    """Sign in as a rater does (type the name, click Sign in), wait for the background preparation."""
    widget.rater_edit.setText(name)
    widget.sign_in_button.click()
    qtbot.waitUntil(lambda: not widget.signing_in, timeout=60000)


def quadrant_changes(before: np.ndarray, after: np.ndarray) -> dict[tuple[int, int], float]:
    """Mean absolute change of a screenshot per quadrant (row, column)."""
    h, w = before.shape[:2]
    diff = np.abs(before[..., :3].astype(float) - after[..., :3].astype(float)).mean(axis=2)
    cells = [(r, c) for r in (0, 1) for c in (0, 1)]
    return {
        (r, c): float(diff[r * h // 2 : (r + 1) * h // 2, c * w // 2 : (c + 1) * w // 2].mean())
        for r, c in cells
    }


def subject_copy(study_root, tmp_path, label: str = "01"):
    """A fresh copy of a module-scoped study for one test; returns its SubjectFiles."""
    import shutil

    from napari_qsm_ms.io.layout import SubjectFiles

    shutil.copytree(study_root, tmp_path / "study")
    return SubjectFiles(tmp_path / "study", label)


def phantom_study(tmp_path_factory, name: str, **kwargs):
    """A study with one small phantom subject (``tests.rating._helpers.make_phantom_subject``)."""
    from ..rating._helpers import make_phantom_subject

    root = tmp_path_factory.mktemp(name) / "study"
    make_phantom_subject(root, **kwargs)
    return root
