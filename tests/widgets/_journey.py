"""One subject of the sample study through the whole workflow, the way a user does it, in the
workspace dock: File > Open Sample, QSM, coregistration, a lesion drawn with the mouse, references,
three blinded raters voting with keys, consensus, statistics and the exported table.

Used by tests/widgets/test_journey.py (checks) and docs/screenshots/make_journey.py (screenshots).
Every step counts the user's clicks and key presses (:attr:`Journey.clicks`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from qtpy.QtCore import QEvent, QPoint, QPointF, Qt
from qtpy.QtGui import QMouseEvent
from qtpy.QtTest import QTest
from qtpy.QtWidgets import QApplication

from napari_qsm_ms._widgets._layers import find_layer, viewer_camera

PLUGIN = "napari-qsm-ms"
RATERS = ("anna", "ben", "cat")


def wait_until(condition, timeout_s: float = 300.0) -> None:
    t0 = time.monotonic()
    while not condition():
        QApplication.processEvents()
        time.sleep(0.02)
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError("condition not met in time")


def wait_worker(worker, timeout_s: float = 300.0, *, start: bool = True) -> None:
    """Wait for a dock's worker to finish (started here unless ``start`` is False: already running)."""
    done = []
    worker.finished.connect(lambda: done.append(True))
    if start:
        worker.start()
    wait_until(lambda: bool(done), timeout_s)
    QApplication.processEvents()


class Journey:
    def __init__(self, viewer, shots: Path | None = None) -> None:
        self.viewer = viewer
        self.shots = shots
        self.clicks = 0
        self.steps: list[tuple[str, int]] = []
        self.dock, workspace = viewer.window.add_plugin_dock_widget(PLUGIN, "Workspace (all steps)")
        self.workspace = getattr(workspace, "__wrapped__", workspace)
        self.canvas = viewer.window._qt_viewer.canvas.native

    # ---------------------------------------------------------------------------- helpers
    def click(self, button) -> None:
        self.clicks += 1
        button.click()
        QApplication.processEvents()

    def key(self, key, modifier=Qt.NoModifier, widget=None) -> None:
        self.clicks += 1
        QTest.keyClick(widget or self.canvas, key, modifier)
        QApplication.processEvents()

    def go(self, step: str):
        self.clicks += 1  # one click in the step list
        return self.workspace.show_step(step)

    def done(self, name: str) -> None:
        self.steps.append((name, self.clicks))
        if self.shots is not None:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.8:  # debounced tables and redraws settle
                QApplication.processEvents()
                time.sleep(0.02)
            path = self.shots / f"journey_{len(self.steps):02d}_{name}.png"
            self.viewer.screenshot(str(path), canvas_only=False, flash=False)

    def world_to_canvas(self, world) -> QPointF:
        """Canvas pixel of a world point on the displayed slice (2-D view)."""
        camera = viewer_camera(self.viewer)
        displayed = self.viewer.dims.displayed
        center = camera.center[-2:]
        v_sign = -1.0 if camera.orientation2d[0] == "up" else 1.0
        h_sign = -1.0 if camera.orientation2d[1] == "left" else 1.0
        x = self.canvas.width() / 2 + h_sign * (world[displayed[1]] - center[1]) * camera.zoom
        y = self.canvas.height() / 2 + v_sign * (world[displayed[0]] - center[0]) * camera.zoom
        return QPointF(x, y)

    def drag(self, points) -> None:
        """A mouse drag on the canvas through canvas points (press, moves, release)."""
        self.clicks += 1
        canvas = self.canvas

        def send(kind, p, buttons):
            button = Qt.LeftButton if kind != QEvent.MouseMove else Qt.NoButton
            event = QMouseEvent(kind, p, canvas.mapToGlobal(p.toPoint()), button, buttons, Qt.NoModifier)
            QApplication.sendEvent(canvas, event)
            QApplication.processEvents()

        send(QEvent.MouseButtonPress, points[0], Qt.LeftButton)
        for p in points[1:]:
            send(QEvent.MouseMove, p, Qt.LeftButton)
        send(QEvent.MouseButtonRelease, points[-1], Qt.NoButton)

    # ---------------------------------------------------------------------------- steps
    def open_sample(self):
        self.clicks += 2  # File > Open Sample > QSM for MS lesions > sub-01
        self.viewer.open_sample(PLUGIN, "subject")
        wait_until(lambda: find_layer(self.viewer, "lesions") is not None)
        wait_until(lambda: self.workspace.current_step == "QSM", 30)
        self.subject = (find_layer(self.viewer, "magnitude").metadata or {})["subject"]
        self.done("sample_opened")

    def reconstruct(self, inversion_label: str = "TKD (fast)"):
        page = self.workspace.page("QSM")  # the workspace opened here
        self.clicks += 1
        page.inversion_combo.setCurrentText(inversion_label)
        self.click(page.save_check)
        worker = page.run(start=False)
        self.clicks += 1  # Reconstruct
        wait_worker(worker)
        assert self.subject.chimap.exists(), page.status.text()
        self.done("qsm")

    def coregister(self):
        page = self.go("Coregister")
        self.clicks += 1  # Run
        worker = page._on_run()  # the Run button's handler (starts the worker)
        wait_worker(worker, start=False)
        wait_until(lambda: all(self.subject.coreg_series(k).exists() for k in page.series_boxes), 10)
        self.done("coregistered")

    def draw_lesion(self) -> int:
        page = self.go("Lesions")
        lesions = find_layer(self.viewer, "lesions")
        tissue = find_layer(self.viewer, "tissue")
        z = int(round(lesions.world_to_data(self.viewer.dims.point)[2]))
        ids = np.asarray(lesions.data)
        wm = np.asarray(tissue.data)[:, :, z] == 3
        from scipy import ndimage

        far = ndimage.distance_transform_edt(ids[:, :, z] == 0) > 8
        inner = ndimage.binary_erosion(wm, iterations=4) & far
        xs, ys = np.nonzero(inner)
        k = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
        before = set(np.unique(ids).tolist())
        self.click(page.new_button)  # next free id, paint mode
        new_id = int(lesions.selected_label)
        lesions.brush_size = 3
        start = np.asarray(lesions.data_to_world((xs[k], ys[k], z)))
        step = np.array([lesions.scale[0], 0.0, 0.0])
        pts = [self.world_to_canvas(start + dx * step) for dx in (0, 1, 2, 3)]
        self.drag(pts)
        wait_until(lambda: (np.asarray(lesions.data) == new_id).sum() > 0, 10)
        assert new_id not in before
        self.new_id = new_id
        self.done("lesion_drawn")
        return new_id

    def build_references(self):
        page = self.workspace.page("Lesions")
        self.clicks += 1
        worker = page.build_references(start=False)
        wait_worker(worker)
        self.click(page.save_button)  # lesions and references to the subject's files
        assert self.subject.refwm.exists() and self.subject.lesions.exists()
        self.done("references")

    def rate(self, rater: str, keys) -> dict:
        page = self.go("Rate")
        self.clicks += 2  # name field + typing, then Sign in
        page.rater_edit.setText(rater)
        page.sign_in_button.click()
        wait_until(lambda: not page.signing_in, 120)
        assert page.signed_in, page.status_label.text()
        seen = {
            "images": [layer.name for layer in self.viewer.layers if layer.__class__.__name__ == "Image"],
            "titles_on_canvas": all(
                layer.name_overlay.visible
                for layer in self.viewer.layers
                if layer.__class__.__name__ == "Image"
            ),
            "vote_buttons": all(b.isEnabled() and b.isVisible() for b in page.vote_buttons.values()),
            "dock_visible": not self.dock.isHidden(),
            "legend": page.grid_label.text(),
        }
        if rater == RATERS[0]:
            self.done("rater_signed_in")
        self.canvas.setFocus()
        k = 0
        for _ in range(3 * page.session.total):
            if page.session.finished:
                break
            if page.session.current.vote is None:
                self.key(keys[k % len(keys)])  # votes and moves on
                k += 1
            else:
                self.click(page.next_button)  # e.g. back at a candidate voted before
        assert page.session.finished, page.status_label.text()
        seen["votes"] = page.session.n_rated
        self.click(page.sign_out_button)
        return seen

    def consensus(self) -> pd.DataFrame:
        page = self.go("Consensus")
        self.clicks += 2  # panel: type names, Set panel
        page.set_panel(list(RATERS))
        self.clicks += 1
        table = page.run_consensus()
        self.done("consensus")
        return table

    def statistics(self, out_dir: Path):
        page = self.go("Stats")
        self.clicks += 1
        page.compute(blocking=True)
        table = page.table
        shown = [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]
        headers = [page.table.horizontalHeaderItem(c).text() for c in range(page.table.columnCount())]
        self.clicks += 2  # Export report..., choose folder
        wait_worker(page.export(Path(self.subject.study), out_dir, start=False))
        wait_until(lambda: "Last report" in page.report_label.text(), 30)
        self.done("statistics")
        return headers, shown, page
