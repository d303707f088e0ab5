"""Rim and vein round (blinded): one rater answers PRL and CVS for every lesion, one at a time.

The class round stays blinded to QSM; this round needs it. While a rater is signed in, every
layer that was in the viewer is taken out (and put back at sign-out), and the dock shows only
layers built for the round, side by side on the canvas: the susceptibility map (PRL) and the
T2* magnitude (CVS), each with the current lesion as a single-colour contour of a binary mask (no
lesion id anywhere: the dock says "lesion i of n" in the rater's own shuffled order). Both views
are layers of one canvas, so slice, zoom and pan stay linked; the buttons Axial / Coronal / Sagittal (keys
A, C, S) turn both to the other orthogonal planes, as the CVS criteria ask.

Answers: PRL Yes / No / Uncertain (keys Y, N, U) and CVS Present / Absent / Excluded (keys P, B,
E; an exclusion takes the reason chosen beside it); each answer is written at once to the rater's
own file (:func:`napari_qsm_ms.rating.markers.record_marker_vote`). Back / Next (Left / Right),
a comment, a progress bar of lesions with both answers. Nothing of other raters is read.
Science and files live in :mod:`napari_qsm_ms.rating.markers`; this module only shows.
"""

from __future__ import annotations

import napari
import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QLineEdit
from qtpy.QtWidgets import QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..errors import QSMMSError, one_line
from ..rating.markers import CVS_EXCLUSIONS, CVS_VOTES, PRL_VOTES, RoundSession, prepare_round
from ..rating.markers import record_marker_vote
from ._layers import centre_viewer_on, current_subject, viewer_camera
from ._worker import ProgressPanel, run_with_progress

PRL_KEYS = {Qt.Key_Y: "yes", Qt.Key_N: "no", Qt.Key_U: "uncertain"}
CVS_KEYS = {Qt.Key_P: "present", Qt.Key_B: "absent", Qt.Key_E: "excluded"}
PLANE_KEYS = {Qt.Key_A: "axial", Qt.Key_C: "coronal", Qt.Key_S: "sagittal"}
_LAYER_PREFIX = "rim round: "
VIEW_FOV_MM = 40.0
"""Edge of the box shown around a lesion (mm)."""


class MarkerRaterWidget(QWidget):
    """Dock of the rim and vein reading round (see module docstring)."""

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.session: RoundSession | None = None
        self.position = 0
        self._hidden: list = []
        self._layers: list = []

        self.rater_edit = QLineEdit()
        self.rater_edit.setPlaceholderText("your rater name (letters and digits)")
        self.sign_in_button = QPushButton("Sign in")
        self.sign_in_button.clicked.connect(lambda: self.sign_in(self.rater_edit.text()))
        self.sign_out_button = QPushButton("Sign out")
        self.sign_out_button.clicked.connect(self.sign_out)
        self.panel = ProgressPanel()
        self.status = QLabel("Load a subject (QSM, T2* magnitude, lesions), then sign in.")
        self.status.setWordWrap(True)
        self.position_label = QLabel("")
        self.progress_bar = QProgressBar()

        self.prl_buttons = {v: QPushButton(v.capitalize()) for v in PRL_VOTES}
        self.cvs_buttons = {v: QPushButton(v.capitalize()) for v in CVS_VOTES}
        for v, b in self.prl_buttons.items():
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, v=v: self.answer(prl=v))
        for v, b in self.cvs_buttons.items():
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, v=v: self.answer(cvs=v))
        self.reason_combo = QComboBox()
        self.reason_combo.addItems(CVS_EXCLUSIONS)
        self.comment_edit = QLineEdit()
        self.comment_edit.setPlaceholderText("comment (optional)")
        self.plane_buttons = {p: QPushButton(p.capitalize()) for p in ("axial", "coronal", "sagittal")}
        for p, b in self.plane_buttons.items():
            b.clicked.connect(lambda _=False, p=p: self.show_plane(p))
        self.back_button = QPushButton("Back")
        self.back_button.clicked.connect(lambda: self.go(self.position - 1))
        self.next_button = QPushButton("Next")
        self.next_button.clicked.connect(lambda: self.go(self.position + 1))

        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.rater_edit, 1)
        row.addWidget(self.sign_in_button)
        row.addWidget(self.sign_out_button)
        form.addRow("Rater", row)
        grid = QGridLayout()
        grid.addWidget(QLabel("PRL (QSM)"), 0, 0)
        for j, b in enumerate(self.prl_buttons.values(), start=1):
            grid.addWidget(b, 0, j)
        grid.addWidget(QLabel("CVS (T2*)"), 1, 0)
        for j, b in enumerate(self.cvs_buttons.values(), start=1):
            grid.addWidget(b, 1, j)
        grid.addWidget(QLabel("excluded because"), 2, 0)
        grid.addWidget(self.reason_combo, 2, 1, 1, 3)
        planes = QHBoxLayout()
        for b in self.plane_buttons.values():
            planes.addWidget(b)
        nav = QHBoxLayout()
        nav.addWidget(self.back_button)
        nav.addWidget(self.next_button)
        lay = QVBoxLayout(self)
        for item in (form, self.panel, self.status, self.position_label, self.progress_bar, grid,
                     self.comment_edit, planes, nav):
            (lay.addWidget if isinstance(item, QWidget) else lay.addLayout)(item)
        lay.addStretch(1)
        self.setFocusPolicy(Qt.StrongFocus)
        self._set_enabled(False)

    # --- sign in / out ----------------------------------------------------------------------
    def _set_enabled(self, signed_in: bool) -> None:
        for b in [*self.prl_buttons.values(), *self.cvs_buttons.values(), *self.plane_buttons.values(),
                  self.back_button, self.next_button, self.sign_out_button, self.reason_combo,
                  self.comment_edit]:
            b.setEnabled(signed_in)
        self.sign_in_button.setEnabled(not signed_in)
        self.rater_edit.setEnabled(not signed_in)

    def sign_in(self, rater: str, *, blocking: bool = False) -> None:
        """Read the subject's files and the rater's own answers (in a worker unless ``blocking``)."""
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
        self._hidden = [layer for layer in self.viewer.layers if layer.visible]
        for layer in self._hidden:
            layer.visible = False
        scale = session.voxel_size_mm
        positive = session.magnitude[session.magnitude > 0]
        lo, hi = np.percentile(positive, [1, 99]) if positive.size else (0, 1)
        empty = np.zeros((2, 2, 2), np.float32)
        qsm = self.viewer.add_image(empty, name=_LAYER_PREFIX + "QSM (ppm)", scale=scale,
                                    colormap="gray", contrast_limits=(-0.1, 0.15))
        c1 = self.viewer.add_labels(empty.astype(np.uint8), name=_LAYER_PREFIX + "lesion", scale=scale)
        mag = self.viewer.add_image(empty, name=_LAYER_PREFIX + "T2* magnitude", scale=scale,
                                    colormap="gray", contrast_limits=(float(lo), float(hi)))
        c2 = self.viewer.add_labels(empty.astype(np.uint8), name=_LAYER_PREFIX + "lesion ", scale=scale)
        for c in (c1, c2):
            c.contour = 1
            c.opacity = 0.9
        self._layers = [qsm, c1, mag, c2]
        self.status.setText(f"{session.rater}: {len(session.order)} lesions of sub-{session.subject.label}, "
                            f"round '{session.round_name}'.")
        self._set_enabled(True)
        self.position = next((i for i, lid in enumerate(session.order) if not self._complete(lid)), 0)
        self.show_plane("axial")  # also shows the first lesion not answered yet
        self.setFocus()

    def sign_out(self) -> None:
        """Remove the round's layers, show the viewer's layers again, forget the session."""
        for layer in self._layers:
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        for layer in self._hidden:
            if layer in self.viewer.layers:
                layer.visible = True
        self._layers, self._hidden = [], []
        self.session = None
        self.position_label.setText("")
        self.status.setText("Signed out.")
        self._set_enabled(False)

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
        """Show the lesion at ``position`` of the rater's order (clipped to the list).

        The views hold a box of :data:`VIEW_FOV_MM` around the lesion's centre (QSM and lesion
        contour, magnitude and contour beside it along the horizontal screen axis).
        """
        if self.session is None or not self.session.order:
            return
        s = self.session
        self.position = int(np.clip(position, 0, len(s.order) - 1))
        lid = self.current_lesion
        vs = np.asarray(s.voxel_size_mm)
        centre = np.asarray(s.centres[lid])
        half = np.ceil(0.5 * VIEW_FOV_MM / vs).astype(int)
        lo = np.maximum(centre - half, 0)
        hi = np.minimum(centre + half + 1, s.lesions.shape)
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        origin = lo * vs
        beside = np.zeros(3)
        horizontal = self.viewer.dims.order[-1]
        beside[horizontal] = (hi[horizontal] - lo[horizontal]) * vs[horizontal] + 2.0
        mask = (s.lesions[box] == lid).astype(np.uint8)
        qsm, c1, mag, c2 = self._layers
        views = ((qsm, s.chi_ppm[box], 0), (c1, mask, 0), (mag, s.magnitude[box], 1), (c2, mask, 1))
        for layer, data, shift in views:
            layer.data = data
            layer.translate = tuple(origin + shift * beside)
        centre_viewer_on(self.viewer, qsm, centre - lo)
        camera = viewer_camera(self.viewer)
        mid = list(camera.center)
        mid[-1] += 0.5 * beside[horizontal]
        camera.center = tuple(mid)
        self._show_answers()

    def _show_answers(self) -> None:
        s = self.session
        a = s.answered(self.current_lesion)
        for v, b in self.prl_buttons.items():
            b.setChecked(a.get("prl") == v)
        for v, b in self.cvs_buttons.items():
            b.setChecked(a.get("cvs") == v)
        self.comment_edit.setText(str(a.get("comment", "")))
        self.position_label.setText(f"lesion {self.position + 1} of {len(s.order)}")
        self.progress_bar.setRange(0, len(s.order))
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
        except QSMMSError as exc:
            self.status.setText(one_line(exc))
            return
        if self._complete(self.current_lesion) and self.position < len(self.session.order) - 1:
            self.go(self.position + 1)
        else:
            self._show_answers()

    def show_plane(self, plane: str) -> None:
        """Show the axial, coronal or sagittal planes in both views (the slider crosses the rest)."""
        if self.session is None:
            return
        axis = {"axial": self.session.slice_axis}.get(plane)
        if axis is None:
            others = [a for a in range(3) if a != self.session.slice_axis]
            axis = others[0] if plane == "sagittal" else others[1]
        rest = [a for a in range(3) if a != axis]
        self.viewer.dims.order = (axis, *rest)
        self.go(self.position)  # the magnitude goes beside the QSM along the new horizontal axis

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt API)
        key = event.key()
        if self.session is not None:
            if key in PRL_KEYS:
                return self.answer(prl=PRL_KEYS[key])
            if key in CVS_KEYS:
                return self.answer(cvs=CVS_KEYS[key])
            if key in PLANE_KEYS:
                return self.show_plane(PLANE_KEYS[key])
            if key == Qt.Key_Right:
                return self.go(self.position + 1)
            if key == Qt.Key_Left:
                return self.go(self.position - 1)
        super().keyPressEvent(event)
