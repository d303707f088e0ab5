"""Rater mode (blinded): one rater votes on the subject's lesion candidates, one at a time.

While a rater is signed in:

* every layer that was in the viewer is taken out ("parked") and put back at sign-out, so QSM and
  every layer derived from it, the lesion id map, the reference ROIs and anything else cannot be
  seen; a layer added while signed in (File > Open of a Chimap, a plugin, a script) is hidden at
  once and parked too, and a parked layer refuses ``visible = True``;
* the viewer shows only layers built for the rater: the T2* magnitude, WM-nulled MPRAGE,
  CSF-nulled MPRAGE and FLAIR side by side (napari grid mode, linked zoom), each with the grey/white
  boundary (contour of the WM class of the tissue map) and the current candidate as a single-colour
  contour of a BINARY mask (no lesion id anywhere: not in layer names, values or the dock);
* other docked widgets (which may show QSM values, lesion tables or statistics) are hidden until
  sign-out; docks that can show votes or consensus also listen to :func:`rater_mode`;
* candidates come in the rater's own shuffled order (:class:`~napari_qsm_ms.rating.session.RaterSession`),
  labelled "candidate i of n"; other raters' votes and the consensus are never read, and the
  consensus dock hides its data (:data:`RATER_MODE`).

Votes: buttons or keys 1-4 (WM, cortical, mixed, not a lesion); each vote is written at once to the
rater's own votes file. Back, Skip, Next and a comment field; the progress bar counts the rater's
votes.

Signing in reads the files, finds the candidates and opens the session in a worker thread
(:func:`~napari_qsm_ms.rating.signin.prepare_sign_in`, pure), with progress in the dock and the sign-in controls disabled; the
viewer is touched only when it returns, on the Qt thread. An error in the worker is shown in the dock
and leaves the viewer as it was (nothing parked, nothing hidden).
"""

from __future__ import annotations

import contextlib
import gc
import weakref

import napari
import numpy as np
from napari.components.overlays import TextOverlay
from napari.layers import Image, Labels
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtCore import QEvent, QObject, Qt, QTimer, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import QSMMSError, one_line
from ..io.layout import SubjectFiles, subject_from_path
from ..rating.session import RaterSession
from ..rating.signin import RATER_CONTRASTS, LayerInput, SignInData, prepare_sign_in
from ..rating.view import missing_contrasts, outline_outside, view_point
from ..rating.votes import check_rater
from ..roi.rules import VOTE_CLASSES, slice_axis_of_affine
from ._layers import current_subject, find_layer, orientation_sides_only, set_axial_view
from ._worker import ProgressPanel, run_with_progress
from ._scroll import scroll_contents

VOTE_TITLES = {"wm": "WM", "cortical": "Cortical", "mixed": "Mixed", "not_lesion": "Not a lesion"}
#: Field of view around a candidate (mm), at least.
ZOOM_FOV_MM = 60.0
_CANDIDATE_COLOR = (1.0, 0.85, 0.0, 1.0)
_CANVAS_OVERLAY = "qsm_ms_rater"
_MISSING_HINT = "run Coregister onto T2* for this subject, then sign in again"
_BOUNDARY_COLOR = (0.0, 0.9, 1.0, 0.8)


def is_blinded_layer(layer) -> bool:
    """Whether a layer shows QSM or something derived from it (never shown to a rater)."""
    meta = layer.metadata or {}
    return meta.get("role") == "qsm" or bool(meta.get("derived_from_qsm"))


class _RaterModeRegistry(QObject):
    """Which viewers have a rater signed in; ``changed(viewer, signed_in)`` on every change."""

    changed = Signal(object, bool)

    def __init__(self) -> None:
        super().__init__()
        self._viewers: weakref.WeakSet = weakref.WeakSet()

    def active(self, viewer) -> bool:
        return _unwrapped(viewer) in self._viewers

    def set(self, viewer, active: bool) -> None:
        viewer = _unwrapped(viewer)
        if active:
            self._viewers.add(viewer)
        else:
            self._viewers.discard(viewer)
        self.changed.emit(viewer, active)


_REGISTRY: _RaterModeRegistry | None = None


def _unwrapped(obj):
    """The object behind napari's ``PublicOnlyProxy`` (docks from the Plugins menu get proxies:
    two docks of one viewer hold different proxy objects of the same viewer)."""
    return getattr(obj, "__wrapped__", obj)


def dock_of(widget):
    """The QDockWidget that holds ``widget`` (directly or inside a workspace page), or None."""
    widget = _unwrapped(widget)
    parent = widget.parentWidget() if widget is not None else None
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def rater_mode() -> _RaterModeRegistry:
    """The process-wide registry of viewers in rater mode (created on first use, on the GUI thread)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _RaterModeRegistry()
    return _REGISTRY


@contextlib.contextmanager
def _one_gc_pass():
    """Collect garbage once instead of at every layer removal.

    napari runs ``gc.collect()`` after removing each layer from the canvas (about 0.5 s each in a
    full session); entering or leaving rater mode removes tens of layers. The module-level
    ``gc.collect`` is made a no-op for the duration of the block and called once at its end.
    """
    original = gc.collect
    gc.collect = lambda *args, **kwargs: 0
    try:
        yield
    finally:
        gc.collect = original
        gc.collect()


def grid_legend(titles) -> str:
    """The dock's legend of the grid, and which contrasts are missing (and what to do)."""
    all_titles = [t for _, t in RATER_CONTRASTS]
    missing = missing_contrasts(titles, all_titles)
    if len(titles) == 4:
        text = (
            f"grid: top left {titles[0]}, top right {titles[1]}, "
            f"bottom left {titles[2]}, bottom right {titles[3]}"
        )
    else:
        text = "shown: " + ", ".join(titles) + " (left to right)"
    if missing:
        text += f". MISSING: {', '.join(missing)} (not on the T2* grid yet: {_MISSING_HINT})"
    return text


class RaterWidget(QWidget):
    """Blinded rater mode: sign in, vote on each candidate, sign out.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self._subject: SubjectFiles | None = None  # chosen by the user; else the loaded layers'
        self._active_subject: SubjectFiles | None = None
        self._session: RaterSession | None = None
        self._parked: list[tuple[object, bool]] = []
        self._rater_layers: list = []
        self._candidate_layers: list = []
        self._boundary_layers: list = []
        self._candidate_mask: np.ndarray | None = None
        self._saved_view: dict = {}
        self._saved_keys: dict = {}
        self._base_zoom = 1.0
        self._base_extent_mm = 1.0
        self._geometry = ((1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
        self._sign_in_worker = None
        self._docked_at_sign_in = False
        self._build_ui()
        self._update_enabled()
        scroll_contents(self)  # fits a small screen: the dock's contents scroll
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        self.viewer.layers.events.removed.connect(self._on_layers_changed)

    # ------------------------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        self.subject_label = QLabel("subject: (none loaded)")
        self.subject_label.setWordWrap(True)
        self.choose_subject_button = QPushButton("Choose subject folder...")
        self.choose_subject_button.clicked.connect(self._on_choose_subject)
        self.rater_edit = QLineEdit()
        self.rater_edit.setPlaceholderText("your name (letters and digits)")
        self.rater_edit.returnPressed.connect(self._on_sign_in)
        self.sign_in_button = QPushButton("Sign in")
        self.sign_in_button.clicked.connect(self._on_sign_in)
        self.sign_out_button = QPushButton("Sign out")
        self.sign_out_button.clicked.connect(self.sign_out)

        self.candidate_label = QLabel("")
        font = self.candidate_label.font()
        font.setPointSize(font.pointSize() + 3)
        font.setBold(True)
        self.candidate_label.setFont(font)
        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("")
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)

        self.vote_buttons: dict[str, QPushButton] = {}
        votes = QGridLayout()
        for k, vote in enumerate(VOTE_CLASSES):
            button = QPushButton(f"{k + 1}  {VOTE_TITLES[vote]}")
            button.setCheckable(True)
            button.setToolTip(f"vote '{VOTE_TITLES[vote]}' (key {k + 1}); written at once")
            button.clicked.connect(lambda _=False, v=vote: self.vote(v))
            self.vote_buttons[vote] = button
            votes.addWidget(button, k // 2, k % 2)
        self.comment_edit = QLineEdit()
        self.comment_edit.setPlaceholderText("comment (optional, saved with the vote)")
        nav = QHBoxLayout()
        self.back_button = QPushButton("< Back")
        self.skip_button = QPushButton("Skip")
        self.next_button = QPushButton("Next >")
        self.back_button.clicked.connect(self._on_back)
        self.skip_button.clicked.connect(self._on_skip)
        self.next_button.clicked.connect(self._on_next)
        for b in (self.back_button, self.skip_button, self.next_button):
            nav.addWidget(b)
        self.boundary_checkbox = QCheckBox("grey/white boundary (tissue contour)")
        self.boundary_checkbox.setChecked(True)
        self.boundary_checkbox.toggled.connect(self._on_boundary_toggled)
        self.grid_label = QLabel("")
        self.grid_label.setWordWrap(True)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.panel = ProgressPanel()  # sign-in progress (shown while the session is prepared)
        self.panel.hide()

        form = QFormLayout()
        form.addRow(self.subject_label)
        form.addRow(self.choose_subject_button)
        form.addRow("Rater", self.rater_edit)
        signs = QHBoxLayout()
        signs.addWidget(self.sign_in_button)
        signs.addWidget(self.sign_out_button)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(signs)
        lay.addWidget(self.panel)
        lay.addWidget(self.candidate_label)
        lay.addWidget(self.progress_bar)
        lay.addLayout(votes)
        lay.addWidget(self.comment_edit)
        lay.addLayout(nav)
        lay.addWidget(self.boundary_checkbox)
        lay.addWidget(self.grid_label)
        lay.addWidget(self.status_label)
        lay.addStretch(1)
        self.setFocusPolicy(Qt.StrongFocus)
        self._refresh_subject_label()

    def _update_enabled(self) -> None:
        signed = self._session is not None
        has = signed and self._session.total > 0
        for w in (*self.vote_buttons.values(), self.comment_edit, self.back_button, self.skip_button, self.next_button):
            w.setEnabled(has)
        self.boundary_checkbox.setEnabled(signed and bool(self._boundary_layers))
        busy = signed or self._sign_in_worker is not None
        self.sign_out_button.setEnabled(signed)
        self.sign_in_button.setEnabled(not busy)
        self.rater_edit.setEnabled(not busy)
        self.choose_subject_button.setEnabled(not busy)

    def _on_layers_changed(self, event=None) -> None:
        self._refresh_subject_label()

    def _refresh_subject_label(self) -> None:
        subject = self._active_subject if self._session is not None else self._subject or current_subject(self.viewer)
        self.subject_label.setText(f"subject: {subject.sub}" if subject else "subject: (none loaded)")

    def _on_choose_subject(self) -> None:  # pragma: no cover - file dialog
        folder = QFileDialog.getExistingDirectory(self, "Subject folder (sub-<label>)")
        if folder:
            subject = subject_from_path(folder)
            if subject is None:
                self._status(f"{folder}: not a sub-<label> folder")
                return
            self.set_subject(subject)

    def set_subject(self, subject: SubjectFiles) -> None:
        """Rate ``subject`` (otherwise the subject of the loaded layers)."""
        if self._session is not None or self._sign_in_worker is not None:
            raise QSMMSError("sign out before changing the subject")
        self._subject = subject
        self._refresh_subject_label()

    def _status(self, text: str) -> None:
        self.status_label.setText(text)

    # ------------------------------------------------------------------------------ sign in/out
    @property
    def signed_in(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> RaterSession | None:
        return self._session

    @property
    def signing_in(self) -> bool:
        """Whether a sign-in is being prepared in the background (controls disabled meanwhile)."""
        return self._sign_in_worker is not None

    def _on_sign_in(self) -> None:
        try:
            self.sign_in(self.rater_edit.text())
        except QSMMSError as exc:
            self._status(f"error: {exc}")

    def _layer_inputs(self, subject: SubjectFiles) -> dict[str, LayerInput]:
        """References to the subject's loaded layers for :func:`prepare_sign_in` (Qt thread, cheap).

        The drawn lesions are copied: the worker must not see edits made while it runs."""
        inputs: dict[str, LayerInput] = {}
        for role in (*(r for r, _ in RATER_CONTRASTS), "tissue", "lesions"):
            layer = find_layer(self.viewer, role, subject)
            if layer is None:
                continue
            data = np.array(layer.data) if role == "lesions" else np.asarray(layer.data)
            limits = tuple(layer.contrast_limits) if role in dict(RATER_CONTRASTS) else None
            inputs[role] = LayerInput(
                data,
                limits,
                bool((layer.metadata or {}).get("on_reference_grid", True)),
                tuple(float(v) for v in layer.scale[-3:]),
                tuple(float(v) for v in layer.translate[-3:]),
            )
        return inputs

    def sign_in(self, rater: str, *, blocking: bool = False, start: bool = True):
        """Enter rater mode for ``rater`` on the current subject.

        The files are read and the session is prepared in a worker thread (:func:`prepare_sign_in`,
        progress in the dock, sign-in controls disabled); only the layer work is done on the Qt
        thread when it returns. Returns the worker (None if ``blocking`` or nothing to do).
        Errors found before the worker starts (rater name, no subject) raise :class:`QSMMSError`;
        errors in the worker are shown in the dock and leave the viewer as it was.
        """
        if self._session is not None or self._sign_in_worker is not None:
            return None
        rater = check_rater(rater)
        subject = self._subject or current_subject(self.viewer)
        if subject is None:
            raise QSMMSError("no subject: open a subject folder or choose one first")
        inputs = self._layer_inputs(subject)
        if blocking:
            self._enter_rater_mode(prepare_sign_in(subject, rater, inputs))
            return None
        self._status(f"signing in as {rater}...")
        self._docked_at_sign_in = self.parentWidget() is not None
        self.panel.show()
        worker = run_with_progress(
            prepare_sign_in, self.panel, on_returned=self._on_sign_in_returned, on_error=self._on_sign_in_error,
            start=False, subject=subject, rater=rater, layers=inputs,
        )
        worker.finished.connect(self._on_sign_in_finished)
        self._sign_in_worker = worker
        self._update_enabled()
        if start:
            worker.start()
        return worker

    def _on_sign_in_returned(self, data: SignInData) -> None:
        if self._docked_at_sign_in and self.parentWidget() is None:  # the dock was closed meanwhile
            self._status("sign-in abandoned: the dock was closed")
            return
        if (self._subject or current_subject(self.viewer)) != data.subject:
            self._status("error: the subject changed while signing in; sign in again")
            return
        try:
            self._enter_rater_mode(data)
        except Exception as exc:  # noqa: BLE001 - shown in the dock; the viewer is restored
            self._status(f"error: {one_line(exc)}")

    def _on_sign_in_error(self, exc: BaseException) -> None:
        self._status(f"error: {one_line(exc)}")

    def _on_sign_in_finished(self) -> None:
        self._sign_in_worker = None
        self.panel.hide()
        if self._session is None and self.status_label.text().startswith("signing in"):
            self._status("sign-in cancelled")
        self._update_enabled()

    def _enter_rater_mode(self, data: SignInData) -> None:
        """The Qt-thread part of signing in: park every layer, build the rater's layers."""
        session = data.session
        # -- from here on the viewer is blinded
        self._active_subject = data.subject
        self._session = session
        self._geometry = data.geometry
        try:
            with _one_gc_pass():
                self._park_all()
                self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
                self._build_rater_layers(data)
            self._hide_other_docks()
            self._bind_keys()
        except Exception:  # never leave the viewer half blinded
            self.sign_out()
            raise
        rater_mode().set(self.viewer, True)
        self._update_enabled()
        self._refresh_subject_label()
        missing = missing_contrasts([t for _, t, _, _ in data.contrasts], [t for _, t in RATER_CONTRASTS])
        missing_note = f" MISSING contrasts: {', '.join(missing)} ({_MISSING_HINT})." if missing else ""
        self._status(
            f"signed in as {session.rater}: {session.total} candidates, {session.n_rated} already rated by you. "
            "QSM and lesion ids are hidden until you sign out."
            + missing_note
        )
        self._show_current()
        self.setFocus()

    def sign_out(self) -> None:
        """Leave rater mode: remove the rater's layers and put every parked layer back."""
        if self._session is None:
            return
        rater = self._session.rater
        self._unbind_keys()
        try:
            self.viewer.layers.events.inserted.disconnect(self._on_layer_inserted)
        except (TypeError, ValueError):  # pragma: no cover
            pass
        with _one_gc_pass():
            for layer in list(self._rater_layers):
                if layer in self.viewer.layers:
                    self.viewer.layers.remove(layer)
            self._rater_layers, self._candidate_layers, self._boundary_layers = [], [], []
            self._candidate_mask = None
            self._restore_view()
            parked, self._parked = self._parked, []
            for layer, visible in parked:
                try:
                    layer.events.visible.disconnect(self._refuse_visible)
                except (TypeError, ValueError):  # pragma: no cover
                    pass
                if layer not in self.viewer.layers:
                    self.viewer.layers.append(layer)
                layer.visible = visible
        self._restore_docks()
        orientation_sides_only(self.viewer, False)
        self._session = None
        rater_mode().set(self.viewer, False)
        self._active_subject = None
        self._refresh_subject_label()
        self.candidate_label.setText("")
        self.grid_label.setText("")
        self.progress_bar.setFormat("")
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.comment_edit.clear()
        self.rater_edit.clear()  # the next rater types their own name
        self._show_on_canvas("")
        for b in self.vote_buttons.values():
            b.setChecked(False)
        self._update_enabled()
        self._status(f"{rater} signed out; votes are saved.")

    # ------------------------------------------------------------------------ blinding guards
    def _park_all(self) -> None:
        self._saved_view = {
            "grid": (self.viewer.canvas.grid.enabled, self.viewer.canvas.grid.stride, self.viewer.canvas.grid.shape),
            "order": tuple(self.viewer.dims.order),
            "point": tuple(self.viewer.dims.point),
            "center": tuple(self.viewer.scene.camera.center),
            "zoom": float(self.viewer.scene.camera.zoom),
            "orientation": tuple(self.viewer.scene.camera.orientation),
        }
        for layer in list(self.viewer.layers):
            visible = bool(layer.visible)
            self.viewer.layers.remove(layer)  # before hiding: hiding a layer on the canvas redraws it
            self._park(layer, visible)

    def _park(self, layer, visible: bool | None = None) -> None:
        self._parked.append((layer, bool(layer.visible) if visible is None else visible))
        if layer.visible:
            layer.visible = False
        layer.events.visible.connect(self._refuse_visible)

    def _hide_other_docks(self) -> None:
        """Hide every other docked widget (QSM values, lesion tables, statistics) until sign-out."""
        self._hidden_docks = []
        try:
            docked = dict(self.viewer.window.dock_widgets)
        except AttributeError:  # pragma: no cover - headless viewer without a window
            return
        own = dock_of(self)
        for widget in docked.values():
            wrapper = dock_of(getattr(widget, "native", widget))
            if wrapper is None or wrapper is own:
                continue
            if not wrapper.isHidden():
                wrapper.hide()
                self._hidden_docks.append(weakref.ref(wrapper))

    def _restore_docks(self) -> None:
        for ref in getattr(self, "_hidden_docks", []):
            wrapper = ref()
            if wrapper is not None:
                wrapper.show()
        self._hidden_docks = []

    def _refuse_visible(self, event) -> None:
        layer = event.source
        if layer.visible:
            layer.visible = False
            self._status(f"'{layer.name}' cannot be shown while a rater is signed in")

    def _on_layer_inserted(self, event) -> None:
        layer = event.value
        if layer in self._rater_layers:
            return
        self._park(layer)
        what = "QSM-derived layer" if is_blinded_layer(layer) else "layer"
        self._status(f"{what} '{layer.name}' hidden in rater mode; it comes back at sign-out")
        QTimer.singleShot(0, lambda ref=weakref.ref(layer): self._evict(ref()))

    def _evict(self, layer) -> None:
        if layer is not None and self._session is not None and layer in self.viewer.layers:
            with _one_gc_pass():
                self.viewer.layers.remove(layer)

    def _restore_view(self) -> None:
        saved = self._saved_view
        if not saved:
            return
        enabled, stride, shape = saved["grid"]
        self.viewer.canvas.grid.enabled = False
        self.viewer.canvas.grid.stride = stride
        self.viewer.canvas.grid.shape = shape
        self._saved_view = {}
        self._pending_view = saved  # applied once the parked layers are back (dims need them)
        QTimer.singleShot(0, self._apply_pending_view)
        self.viewer.canvas.grid.enabled = enabled

    def _apply_pending_view(self) -> None:
        saved = getattr(self, "_pending_view", None)
        self._pending_view = None
        if not saved or self._session is not None:
            return
        try:
            if len(saved["order"]) == self.viewer.dims.ndim:
                self.viewer.dims.order = saved["order"]
                self.viewer.dims.point = saved["point"]
            self.viewer.scene.camera.orientation = saved["orientation"]
            self.viewer.scene.camera.center = saved["center"]
            self.viewer.scene.camera.zoom = saved["zoom"]
        except (ValueError, TypeError):  # pragma: no cover - a viewer whose dims changed meanwhile
            pass

    # ---------------------------------------------------------------------------- rater layers
    def _build_rater_layers(self, data: SignInData) -> None:
        contrasts, boundary = data.contrasts, data.boundary
        scale, translate = self._geometry
        shape = data.candidate_mask.shape
        self._candidate_mask = data.candidate_mask
        # grid settings while the viewer is empty: each change rebuilds the canvas's scene graph
        self.viewer.canvas.grid.stride = 3 if boundary is not None else 2
        self.viewer.canvas.grid.shape = (-1, -1)
        self.viewer.canvas.grid.spacing = 4
        cand_cmap = DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), 1: _CANDIDATE_COLOR})
        edge_cmap = DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), 1: _BOUNDARY_COLOR})
        common = {"scale": scale, "translate": translate, "metadata": {"role": "rater_view"}}
        # napari's grid puts the FIRST layer group of the list in the top-left cell (measured in
        # tests/widgets/test_rater_view.py by blanking each layer), so the contrasts go in in order
        for _role, title, data, limits in contrasts:
            image = Image(data, name=title, colormap="gray", contrast_limits=limits, **common)
            self._add_rater_layer(image)
            image.name_overlay.visible = True  # the panel's title, drawn on the canvas
            image.name_overlay.font_size = 12
            if boundary is not None:
                edge = Labels(boundary, name=f"grey/white boundary ({title})", opacity=0.7, colormap=edge_cmap, **common)
                self._boundary_layers.append(self._add_rater_layer(edge, edge_cmap))
            cand = Labels(self._candidate_mask, name=f"candidate ({title})", opacity=1.0, colormap=cand_cmap, **common)
            cand.contour = 0  # the mask already is an outline drawn outside the candidate
            self._candidate_layers.append(self._add_rater_layer(cand, cand_cmap))
        self.viewer.layers.selection.active = self._rater_layers[0]  # the T2* magnitude
        self.grid_label.setText(grid_legend([t for _, t, _, _ in contrasts]))
        set_axial_view(self.viewer)
        self.viewer.canvas.grid.enabled = len(contrasts) > 1
        self.viewer.reset_view()
        self._base_zoom = float(self.viewer.scene.camera.zoom)
        self._base_extent_mm = float(max(n * s for n, s in zip(shape, scale)))
        self._on_boundary_toggled(self.boundary_checkbox.isChecked())
        orientation_sides_only(self.viewer, True)  # A would run into the panels' titles

    def _add_rater_layer(self, layer, colormap=None):
        """Register a layer as the rater's BEFORE inserting it (the insertion guard lets it in).

        Keys 1-4 are bound on the layer itself too: a layer's own bindings win over napari's
        layer-type shortcuts (1/2 switch an Image layer to pan-zoom/transform mode).
        """
        if colormap is not None:
            layer.contour = 1
            layer.editable = False
        for k, vote in enumerate(VOTE_CLASSES):
            layer.bind_key(str(k + 1), lambda _layer, v=vote: self.vote(v), overwrite=True)
        self._rater_layers.append(layer)
        self.viewer.add_layer(layer)
        return layer

    def _on_boundary_toggled(self, checked: bool) -> None:
        for layer in self._boundary_layers:
            if layer.visible != bool(checked):  # napari redraws the canvas even for an unchanged value
                layer.visible = bool(checked)

    # ---------------------------------------------------------------------------------- keys
    def _bind_keys(self) -> None:
        self._saved_keys = {}
        for k, vote in enumerate(VOTE_CLASSES):
            key = str(k + 1)
            self._saved_keys[key] = self.viewer.bind_key(key, lambda _v, v=vote: self.vote(v), overwrite=True)

    def _unbind_keys(self) -> None:
        for key, previous in self._saved_keys.items():
            self.viewer.bind_key(key, previous, overwrite=True)
        self._saved_keys = {}

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        keys = {Qt.Key_1: 0, Qt.Key_2: 1, Qt.Key_3: 2, Qt.Key_4: 3}
        if self._session is not None and event.key() in keys and not event.modifiers() & ~Qt.KeypadModifier:
            self.vote(VOTE_CLASSES[keys[event.key()]])
            event.accept()
            return
        super().keyPressEvent(event)

    # ------------------------------------------------------------------------------- voting
    def vote(self, vote: str) -> None:
        """Vote ``vote`` on the current candidate with the comment field's text."""
        if self._session is None or not self._session.total:
            return
        shown = self._session.current.index
        try:
            self._session.vote(vote, self.comment_edit.text())
        except (QSMMSError, OSError) as exc:
            self._status(f"error: vote NOT saved: {exc}")
            self._show_current()
            return
        self._status(f"saved: candidate {shown} -> {VOTE_TITLES[vote]}")
        self._show_current(saved=f"candidate {shown}: {VOTE_TITLES[vote]} saved")

    def _on_back(self) -> None:
        if self._session is not None:
            self._session.back()
            self._show_current()

    def _on_next(self) -> None:
        if self._session is not None:
            self._session.next()
            self._show_current()

    def _on_skip(self) -> None:
        if self._session is not None:
            self._session.skip()
            self._show_current()

    def _show_current(self, saved: str = "") -> None:
        session = self._session
        if session is None:
            return
        self.progress_bar.setFormat("%v of %m rated")
        self.progress_bar.setRange(0, max(session.total, 1))
        self.progress_bar.setValue(session.n_rated)
        view = session.current
        if view is None:
            self.candidate_label.setText("no candidates")
            return
        done = " - all rated, thank you" if session.finished else ""
        self.candidate_label.setText(f"{view.label}{done}")
        voted = f": your vote {VOTE_TITLES[view.vote]}" if view.vote else ": not rated yet (keys 1-4)"
        self._show_on_canvas(f"{saved + '  >  ' if saved else ''}{view.label}{voted}{done}")
        self.comment_edit.setText(view.comment)
        for vote, button in self.vote_buttons.items():
            button.setChecked(vote == view.vote)
        mask = session.current_mask()
        if mask is not None and self._candidate_mask is not None:
            self._candidate_mask[...] = outline_outside(mask)
            for layer in self._candidate_layers:
                layer.refresh()
        axis = slice_axis_of_affine(np.diag([*self._geometry[0], 1.0])).axis  # canonical RAS layers
        self._zoom_to(view_point(mask, view.center_vox, axis), view.bbox)

    def _show_on_canvas(self, text: str) -> None:
        """The candidate and the rater's vote, on the canvas above the grid (feedback for keys 1-4)."""
        overlays = self.viewer.canvas.overlays
        if _CANVAS_OVERLAY not in overlays:
            if not text:
                return
            # bottom right: clear of the panels' titles and of the R/L letters
            overlays[_CANVAS_OVERLAY] = TextOverlay(position="bottom_right", font_size=12, color="yellow")
        overlay = overlays[_CANVAS_OVERLAY]
        overlay.text = text
        overlay.visible = bool(text)

    def _zoom_to(self, center_vox, bbox) -> None:
        scale, translate = self._geometry
        world = [t + s * c for t, s, c in zip(translate, scale, center_vox)]
        self.viewer.dims.set_point(2, world[2])
        displayed = self.viewer.dims.displayed
        self.viewer.scene.camera.center = tuple(world[d] for d in displayed)
        size_mm = max((hi - lo) * scale[a] for a, (lo, hi) in enumerate(bbox)) if bbox else 0.0
        fov = max(ZOOM_FOV_MM, 3.0 * size_mm)
        self.viewer.scene.camera.zoom = self._base_zoom * self._base_extent_mm / fov

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.sign_out()
        super().closeEvent(event)

    def event(self, event) -> bool:
        """Closing the dock (napari takes the widget out of it) signs the rater out, so that the
        layers taken out of the viewer come back rather than being lost with the widget."""
        if event.type() == QEvent.ParentChange and self._session is not None and self.parentWidget() is None:
            QTimer.singleShot(0, self._sign_out_if_undocked)
        return super().event(event)

    def _sign_out_if_undocked(self) -> None:
        if self._session is not None and self.parentWidget() is None:
            self.sign_out()
