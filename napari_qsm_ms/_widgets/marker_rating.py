"""Rim and vein round (blinded): one rater answers PRL and CVS for every lesion, one at a time.

The class round stays blinded to QSM; this round needs it. While a rater is signed in:

* every layer that was in the viewer is taken out (and put back at sign-out; a layer added
  meanwhile is taken out too), every other dock is hidden (the lesion table, Review and
  Statistics could show rim scores or suggestions, the consensus dock the other raters), and
  :func:`napari_qsm_ms._widgets.rating.rater_mode` is set so docks that show votes blank
  themselves;
* the canvas shows only the round's mosaic (:mod:`napari_qsm_ms.rating.orthogonal`): one row per
  contrast -- QSM (PRL), T2* magnitude and FLAIR* (CVS) -- and one column per plane -- axial,
  coronal, sagittal -- all three planes through ONE point (ticks at the panels' edges mark it),
  with the current lesion as a single-colour outline (binary mask, no id anywhere; the dock says
  "lesion i of n" in the rater's own shuffled order). A click on any panel moves the point there,
  and the other planes follow; Up / Down step the point through the slices of the chosen plane
  (A, C, S choose it); O shows or hides the outline (it can cover a thin rim).

Why a mosaic of 2-D panels and not napari's own 3-D slicing (or the napari-orthogonal-views
side canvases of the "Orthogonal views" dock): one napari canvas slices all layers along the
same axis, so three planes at once need either extra canvases (napari-orthogonal-views: copies
of every layer in side views of the real viewer's Qt window, reached past the dock's public
proxy, with a patched crosshair) or 2-D cuts. The cuts are computed here by a pure function,
cost a few milliseconds per lesion, need nothing but the wrapped viewer, zoom and pan together,
and keep every panel in the same mm scale whatever the voxel size.

Answers: PRL Yes / No / Uncertain (keys Y, N, U) and CVS Present / Absent / Excluded (keys P, B,
E; an exclusion takes the reason chosen beside it); each answer is written at once to the
rater's own file (:func:`napari_qsm_ms.rating.markers.record_marker_vote`). Back / Next
(Left / Right), a comment, a progress bar of lesions with both answers. Keys work with the dock
or the canvas focused. Nothing of other raters is read, and nothing measured on QSM (rim score,
suggested PRL) is shown. Science and files live in :mod:`napari_qsm_ms.rating`; this module
only shows.
"""

from __future__ import annotations

import weakref

import napari
import numpy as np
from napari.layers import Image, Labels, Points, Vectors
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtCore import QEvent, Qt, QTimer
from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGridLayout, QHBoxLayout, QLabel
from qtpy.QtWidgets import QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..errors import QSMMSError, one_line
from ..rating.markers import CVS_EXCLUSIONS, CVS_VOTES, PRL_VOTES, RoundSession, prepare_round
from ..rating.markers import record_marker_vote
from ..rating.orthogonal import GAP_PX, PLANE_SIDES, PLANES, PlaneGrid, mosaic_row, panel_at, panel_voxel
from ..rating.orthogonal import step_point
from ._layers import current_subject, viewer_camera
from ._worker import ProgressPanel, run_with_progress
from .rating import _one_gc_pass, dock_of, rater_mode

PRL_KEYS = {"y": "yes", "n": "no", "u": "uncertain"}
CVS_KEYS = {"p": "present", "b": "absent", "e": "excluded"}
PLANE_KEYS = {"a": "axial", "c": "coronal", "s": "sagittal"}
_QT_KEYS = {getattr(Qt, f"Key_{k.upper()}"): k for k in (*PRL_KEYS, *CVS_KEYS, *PLANE_KEYS, "o")}
_QT_KEYS.update({Qt.Key_Left: "Left", Qt.Key_Right: "Right", Qt.Key_Up: "Up", Qt.Key_Down: "Down"})
_LAYER_PREFIX = "rim round: "
VIEW_FOV_MM = 40.0
"""Edge of every panel around the point (mm)."""
PIXELS_PER_VOXEL = 3
"""Screen pixels per smallest voxel edge: the lesion outline (one pixel) covers a third of a voxel."""
_OUTLINE = (1.0, 0.85, 0.0, 1.0)
_TICK = "cyan"
_TICK_MM = 6.0


class MarkerRaterWidget(QWidget):
    """Dock of the rim and vein reading round (see module docstring)."""

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session: RoundSession | None = None
        self.position = 0
        self.point: tuple[int, int, int] | None = None
        self.active_plane = "axial"
        self.grid: PlaneGrid | None = None
        self._parked: list = []
        self._layers: list = []
        self._images: list = []
        self._hidden_docks: list = []
        self._saved_keys: dict = {}
        self._saved_view: dict = {}

        self.rater_edit = QLineEdit()
        self.rater_edit.setPlaceholderText("your rater name (letters and digits)")
        self.rater_edit.returnPressed.connect(lambda: self.sign_in(self.rater_edit.text()))
        self.sign_in_button = QPushButton("Sign in")
        self.sign_in_button.clicked.connect(lambda: self.sign_in(self.rater_edit.text()))
        self.sign_out_button = QPushButton("Sign out")
        self.sign_out_button.clicked.connect(self.sign_out)
        self.panel = ProgressPanel()
        self.status = QLabel("Load a subject (QSM, T2* magnitude, lesions; FLAIR for FLAIR*), then sign in.")
        self.status.setWordWrap(True)
        self.position_label = QLabel("")
        font = self.position_label.font()
        font.setPointSize(font.pointSize() + 3)
        font.setBold(True)
        self.position_label.setFont(font)
        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("%v of %m lesions answered")

        self.prl_buttons = {v: QPushButton(f"{v.capitalize()} ({k.upper()})") for k, v in PRL_KEYS.items()}
        self.cvs_buttons = {v: QPushButton(f"{v.capitalize()} ({k.upper()})") for k, v in CVS_KEYS.items()}
        for v, b in self.prl_buttons.items():
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, v=v: self.answer(prl=v))
        for v, b in self.cvs_buttons.items():
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, v=v: self.answer(cvs=v))
        self.reason_combo = QComboBox()
        self.reason_combo.addItems(CVS_EXCLUSIONS)
        self.comment_edit = QLineEdit()
        self.comment_edit.setPlaceholderText("comment (optional, saved with the answer)")
        self.plane_buttons = {p: QPushButton(f"{p.capitalize()} ({p[0].upper()})") for p in PLANES}
        for p, b in self.plane_buttons.items():
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, p=p: self.set_active_plane(p))
        self.outline_check = QCheckBox("lesion outline (O)")
        self.outline_check.setChecked(True)
        self.outline_check.toggled.connect(self._on_outline_toggled)
        self.back_button = QPushButton("< Back")
        self.back_button.clicked.connect(lambda: self.go(self.position - 1))
        self.next_button = QPushButton("Next >")
        self.next_button.clicked.connect(lambda: self.go(self.position + 1))
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self._build_layout()
        self.setFocusPolicy(Qt.StrongFocus)
        self._set_enabled(False)

    def _build_layout(self) -> None:
        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.rater_edit, 1)
        row.addWidget(self.sign_in_button)
        row.addWidget(self.sign_out_button)
        form.addRow("Rater", row)
        grid = QGridLayout()
        grid.addWidget(QLabel("PRL"), 0, 0)
        for j, b in enumerate(self.prl_buttons.values(), start=1):
            grid.addWidget(b, 0, j)
        grid.addWidget(QLabel("CVS"), 1, 0)
        for j, b in enumerate(self.cvs_buttons.values(), start=1):
            grid.addWidget(b, 1, j)
        grid.addWidget(QLabel("reason"), 2, 0)
        grid.addWidget(self.reason_combo, 2, 1, 1, 3)
        planes = QHBoxLayout()
        planes.addWidget(QLabel("Up/Down step"))
        for b in self.plane_buttons.values():
            planes.addWidget(b)
        nav = QHBoxLayout()
        nav.addWidget(self.back_button)
        nav.addWidget(self.next_button)
        lay = QVBoxLayout(self)
        for item in (form, self.panel, self.status, self.position_label, self.progress_bar, grid,
                     self.comment_edit, planes, self.outline_check, nav, self.legend):
            (lay.addWidget if isinstance(item, QWidget) else lay.addLayout)(item)
        lay.addStretch(1)

    # --- sign in / out ----------------------------------------------------------------------
    def _set_enabled(self, signed_in: bool) -> None:
        for b in [*self.prl_buttons.values(), *self.cvs_buttons.values(), *self.plane_buttons.values(),
                  self.back_button, self.next_button, self.sign_out_button, self.reason_combo,
                  self.comment_edit, self.outline_check]:
            b.setEnabled(signed_in)
        self.sign_in_button.setEnabled(not signed_in)
        self.rater_edit.setEnabled(not signed_in)

    def sign_in(self, rater: str, *, blocking: bool = False) -> None:
        """Read the subject's files and the rater's own answers (in a worker unless ``blocking``)."""
        if self.session is not None:
            return
        subject = current_subject(self.viewer)
        if subject is None:
            self.status.setText("No subject in the viewer: open a subject folder first.")
            return
        self.sign_in_button.setEnabled(False)
        if blocking:
            try:
                self._signed_in(prepare_round(subject, rater))
            except QSMMSError as exc:
                self._failed(exc)
            return
        run_with_progress(prepare_round, self.panel, on_returned=self._signed_in, on_error=self._failed,
                          subject=subject, rater=rater)

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(f"Cannot sign in: {one_line(exc)}")
        self._set_enabled(False)

    def _signed_in(self, session: RoundSession) -> None:
        self.session = session
        self.grid = PlaneGrid(session.voxel_size_mm, VIEW_FOV_MM, PIXELS_PER_VOXEL)
        try:
            self._blind()
        except Exception:  # undo whatever was done: a viewer is never left half blinded
            self.sign_out()
            raise
        rater_mode().set(self.viewer, True)
        titles = [t for t, _, _ in session.contrasts]
        missing = "" if "FLAIR*" in titles else " No FLAIR*: the subject has no coregistered FLAIR."
        self.status.setText(f"{session.rater}: {len(session.order)} lesions of sub-{session.subject.label}, "
                            f"round '{session.round_name}'.{missing}")
        self.legend.setText("rows: " + ", ".join(titles) + "; columns: axial, coronal, sagittal through "
                            "one point (ticks). Click a panel to move the point; Up/Down step slices.")
        self._set_enabled(True)
        self.position = next((i for i, lid in enumerate(session.order) if not self._complete(lid)), 0)
        self.set_active_plane("axial")
        self.go(self.position)
        self.setFocus()

    def sign_out(self) -> None:
        """Remove the round's layers, put the viewer's layers and docks back, forget the session."""
        was_signed_in = self.session is not None
        self._unbind_keys()
        try:
            self.viewer.layers.events.inserted.disconnect(self._on_layer_inserted)
        except (TypeError, ValueError):
            pass
        if self._on_click in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_click)
        with _one_gc_pass():
            for layer in self._layers:
                if layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
            parked, self._parked = self._parked, []
            for layer, visible in parked:
                if layer not in self.viewer.layers:
                    self.viewer.layers.append(layer)
                layer.visible = visible
        self._restore_view()
        for ref in self._hidden_docks:
            if ref() is not None:
                ref().show()
        self._layers, self._images, self._hidden_docks = [], [], []
        self.session = self.point = None
        if was_signed_in:
            rater_mode().set(self.viewer, False)
        self.position_label.setText("")
        self.legend.setText("")
        self.rater_edit.clear()  # the next rater types their own name
        self.status.setText("Signed out; answers are saved.")
        self._set_enabled(False)

    # --- blinding -----------------------------------------------------------------------------
    def _blind(self) -> None:
        """Take the viewer's layers out, show the round's, hide the other docks, bind the keys."""
        with _one_gc_pass():
            self._park_all()
            self._build_layers()
        self._hide_other_docks()
        self._bind_keys()

    def _park_all(self) -> None:
        camera = viewer_camera(self.viewer)
        self._saved_view = {"order": tuple(self.viewer.dims.order), "point": tuple(self.viewer.dims.point),
                            "center": tuple(camera.center), "zoom": float(camera.zoom),
                            "orientation2d": tuple(camera.orientation2d)}
        for layer in list(self.viewer.layers):
            self._parked.append((layer, bool(layer.visible)))
            self.viewer.layers.remove(layer)
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)  # and keep it so

    def _on_layer_inserted(self, event) -> None:
        layer = event.value
        if layer in self._layers:
            return
        self._parked.append((layer, bool(layer.visible)))
        self.status.setText(f"'{layer.name}' is kept out of the round; it comes back at sign-out")
        QTimer.singleShot(0, lambda ref=weakref.ref(layer): self._evict(ref()))

    def _evict(self, layer) -> None:
        if layer is not None and self.session is not None and layer in self.viewer.layers:
            self.viewer.layers.remove(layer)

    def _restore_view(self) -> None:
        saved, self._saved_view = self._saved_view, {}
        if not saved:
            return
        camera = viewer_camera(self.viewer)
        camera.orientation2d = saved["orientation2d"]
        if len(saved["order"]) == self.viewer.dims.ndim:
            self.viewer.dims.order = saved["order"]
            self.viewer.dims.point = saved["point"]
            camera.center, camera.zoom = saved["center"], saved["zoom"]

    def _hide_other_docks(self) -> None:
        own = dock_of(self)
        try:
            docked = dict(self.viewer.window.dock_widgets)
        except AttributeError:  # pragma: no cover - a viewer without a window
            return
        for widget in docked.values():
            wrapper = dock_of(getattr(widget, "native", widget))
            if wrapper is not None and wrapper is not own and not wrapper.isHidden():
                wrapper.hide()
                self._hidden_docks.append(weakref.ref(wrapper))

    # --- the mosaic ---------------------------------------------------------------------------
    def _build_layers(self) -> None:
        s, g = self.session, self.grid
        step = (g.n + GAP_PX) * g.pixel_mm
        common = {"scale": (g.pixel_mm, g.pixel_mm), "metadata": {"role": "round_view"}}
        blank = np.zeros((g.n, 3 * g.n + 2 * GAP_PX), np.float32)
        for k, (title, _data, limits) in enumerate(s.contrasts):
            image = Image(blank, name=_LAYER_PREFIX + title, colormap="gray", contrast_limits=limits,
                          translate=(k * step, 0.0), **common)
            self._add(image)
            self._images.append(image)
        outline = DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), 1: _OUTLINE})
        rows = len(s.contrasts)
        mask = np.zeros((rows * g.n + (rows - 1) * GAP_PX, blank.shape[1]), np.uint8)
        self._outline = self._add(Labels(mask, name=_LAYER_PREFIX + "lesion outline", colormap=outline,
                                         opacity=0.8, **common))
        self._outline.contour = 1
        self._outline.editable = False
        self._ticks = self._add(Vectors(np.zeros((0, 2, 2)), name=_LAYER_PREFIX + "point", edge_width=0.4,
                                        edge_color=_TICK, vector_style="line", metadata={"role": "round_view"}))
        self._titles = self._add(self._title_layer(step))
        self.viewer.layers.selection.active = self._images[0]
        self.viewer.mouse_drag_callbacks.append(self._on_click)
        viewer_camera(self.viewer).orientation2d = ("down", "right")  # the panels carry their own orientation
        self.viewer.reset_view()

    def _title_layer(self, step: float) -> Points:
        """Panel titles and edge letters (R/L, A/P, S) as text on invisible points."""
        g, pos, text = self.grid, [], []
        width = (g.n - 1) * g.pixel_mm
        for k, (title, _, _) in enumerate(self.session.contrasts):
            for j, plane in enumerate(PLANES):
                y0, x0 = k * step, j * step
                left, right, top = PLANE_SIDES[plane]
                pos += [(y0 + 1.5, x0 + 0.5 * width), (y0 + 0.5 * width + 3.0, x0 + 1.0),
                        (y0 + 0.5 * width + 3.0, x0 + width - 1.0), (y0 + width - 1.5, x0 + 0.5 * width)]
                text += [f"{title} {plane}" if top else plane, left, right, ""]
        return Points(np.asarray(pos), name=_LAYER_PREFIX + "titles", size=0.01, face_color="transparent",
                      border_width=0, features={"text": text},
                      text={"string": "{text}", "color": "yellow", "size": 9}, metadata={"role": "round_view"})

    def _add(self, layer):
        """A layer of the round (registered before insertion, so the guard lets it in); the
        round's keys are bound on it too (a layer's own bindings win over the viewer's)."""
        for key in self._key_actions():
            layer.bind_key(key, lambda _layer, k=key: self._on_key(k), overwrite=True)
        self._layers.append(layer)
        self.viewer.add_layer(layer)
        return layer

    def show_point(self, point) -> None:
        """Cut the three planes of every contrast through ``point`` (voxel, canonical order)."""
        s, g = self.session, self.grid
        self.point = tuple(int(v) for v in point)
        for image, (_, data, limits) in zip(self._images, s.contrasts):
            image.data = mosaic_row(data, self.point, g, fill=limits[0])  # black gaps and outside
        lesion = mosaic_row((s.lesions == self.current_lesion).view(np.uint8), self.point, g)
        rows = len(s.contrasts)
        mask = np.zeros(self._outline.data.shape, np.uint8)
        for k in range(rows):
            mask[k * (g.n + GAP_PX): k * (g.n + GAP_PX) + g.n] = lesion
        self._outline.data = mask
        self._ticks.data = self._tick_vectors(rows)

    def _tick_vectors(self, rows: int) -> np.ndarray:
        """Short lines from each panel's edges towards the point, clear of the lesion itself."""
        g = self.grid
        step, c, edge = (g.n + GAP_PX) * g.pixel_mm, (g.n // 2) * g.pixel_mm, (g.n - 1) * g.pixel_mm
        out = []
        for k in range(rows):
            for j in range(len(PLANES)):
                y0, x0 = k * step, j * step
                out += [[(y0 + c, x0), (0, _TICK_MM)], [(y0 + c, x0 + edge), (0, -_TICK_MM)],
                        [(y0, x0 + c), (_TICK_MM, 0)], [(y0 + edge, x0 + c), (-_TICK_MM, 0)]]
        return np.asarray(out, float)

    def _on_click(self, viewer, event):
        """A click (not a drag) on a panel moves the point to the voxel under the mouse."""
        if event.type != "mouse_press" or event.button != 1 or self.session is None:
            return
        start = tuple(event.pos)
        yield
        while event.type == "mouse_move":
            yield
        if np.hypot(*(np.asarray(event.pos) - start)) <= 3:
            self.click_at(event.position)

    def click_at(self, world_position) -> None:
        """Move the point to the voxel at ``world_position`` (mm on the canvas), if on a panel."""
        g = self.grid
        y, x = (float(v) for v in world_position[-2:])
        step = (g.n + GAP_PX) * g.pixel_mm
        k, row_mm = divmod(y + 0.5 * g.pixel_mm, step)
        if not 0 <= k < len(self.session.contrasts):
            return
        hit = panel_at(g, row_mm / g.pixel_mm - 0.5, x / g.pixel_mm)
        if hit is None:
            return
        plane, r, c = hit
        self.active_plane = plane
        self._check_plane(plane)
        self.show_point(panel_voxel(g, self.point, plane, r, c, self.session.lesions.shape))

    # --- navigation and answers -------------------------------------------------------------
    def _complete(self, lid: int) -> bool:
        a = self.session.answered(lid) if self.session else {}
        return bool(a.get("prl")) and bool(a.get("cvs"))

    @property
    def current_lesion(self) -> int | None:
        if self.session is None or not self.session.order:
            return None
        return self.session.order[self.position]

    def go(self, position: int) -> None:
        """Show the lesion at ``position`` of the rater's order (clipped), planes through its centre."""
        if self.session is None or not self.session.order:
            return
        s = self.session
        self.position = int(np.clip(position, 0, len(s.order) - 1))
        self.show_point(s.centres[self.current_lesion])
        self._show_answers()

    def _show_answers(self) -> None:
        s = self.session
        a = s.answered(self.current_lesion)
        for v, b in self.prl_buttons.items():
            b.setChecked(a.get("prl") == v)
        for v, b in self.cvs_buttons.items():
            b.setChecked(a.get("cvs") == v)
        if a.get("cvs_exclusion"):
            self.reason_combo.setCurrentText(a["cvs_exclusion"])
        self.comment_edit.setText(str(a.get("comment", "")))
        done = " - all answered, thank you" if s.n_done == len(s.order) else ""
        self.position_label.setText(f"lesion {self.position + 1} of {len(s.order)}{done}")
        self.progress_bar.setRange(0, max(len(s.order), 1))
        self.progress_bar.setValue(s.n_done)

    def answer(self, *, prl: str | None = None, cvs: str | None = None) -> None:
        """Record an answer for the current lesion (written at once); moves on when both are given."""
        if self.session is None:
            return
        reason = self.reason_combo.currentText() if cvs == "excluded" else ""
        try:
            self.session.answers = record_marker_vote(
                self.session.subject, self.session.rater, self.current_lesion, prl=prl, cvs=cvs,
                cvs_exclusion=reason, comment=self.comment_edit.text(), round_name=self.session.round_name,
            )
        except (QSMMSError, OSError) as exc:
            self.status.setText(f"answer NOT saved: {one_line(exc)}")
            self._show_answers()
            return
        if self._complete(self.current_lesion) and self.position < len(self.session.order) - 1:
            self.go(self.position + 1)
        else:
            self._show_answers()

    def set_active_plane(self, plane: str) -> None:
        """The plane whose slices Up / Down step through."""
        self.active_plane = plane
        self._check_plane(plane)

    def _check_plane(self, plane: str) -> None:
        for p, b in self.plane_buttons.items():
            b.setChecked(p == plane)

    def step(self, steps: int) -> None:
        """Move the point ``steps`` slices along the active plane's normal."""
        if self.session is not None:
            self.show_point(step_point(self.point, self.active_plane, steps, self.session.lesions.shape))

    def _on_outline_toggled(self, on: bool) -> None:
        if self.session is not None:
            self._outline.visible = bool(on)

    # --- keys ---------------------------------------------------------------------------------
    def _key_actions(self) -> dict:
        actions = {k.upper(): (lambda v=v: self.answer(prl=v)) for k, v in PRL_KEYS.items()}
        actions.update({k.upper(): (lambda v=v: self.answer(cvs=v)) for k, v in CVS_KEYS.items()})
        actions.update({k.upper(): (lambda p=p: self.set_active_plane(p)) for k, p in PLANE_KEYS.items()})
        actions.update({
            "O": lambda: self.outline_check.setChecked(not self.outline_check.isChecked()),
            "Left": lambda: self.go(self.position - 1), "Right": lambda: self.go(self.position + 1),
            "Up": lambda: self.step(1), "Down": lambda: self.step(-1),
        })
        return actions

    def _on_key(self, key: str) -> None:
        if self.session is not None:
            self._key_actions()[key]()

    def _bind_keys(self) -> None:
        self._saved_keys = {
            key: self.viewer.bind_key(key, lambda _v, k=key: self._on_key(k), overwrite=True)
            for key in self._key_actions()
        }

    def _unbind_keys(self) -> None:
        for key, previous in self._saved_keys.items():
            self.viewer.bind_key(key, previous, overwrite=True)
        self._saved_keys = {}

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        key = _QT_KEYS.get(event.key())
        if self.session is not None and key is not None and not event.modifiers() & ~Qt.KeypadModifier:
            self._on_key(key.upper() if len(key) == 1 else key)
            event.accept()
            return
        super().keyPressEvent(event)

    # --- closing the dock signs out -----------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.sign_out()
        super().closeEvent(event)

    def event(self, event) -> bool:
        """Taken out of its dock (the dock's close button): sign out once Qt has settled, so the
        layers taken out of the viewer come back rather than being lost with the widget."""
        if event.type() == QEvent.ParentChange:
            QTimer.singleShot(0, lambda: self.session is not None and self.parentWidget() is None and self.sign_out())
        return super().event(event)
