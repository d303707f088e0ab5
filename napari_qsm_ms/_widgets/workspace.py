"""The workspace: every step of the workflow in ONE dock, one page per step, that fits a 1600 x 1000 screen.

Pages follow the workflow (:data:`~napari_qsm_ms.io.workflow.STEPS`): Study, QSM, Coregister,
Lesions, Review, Rate, Consensus, Stats. Each page is the step's own dock widget (the same class the
Plugins menu opens on its own), built the first time the page is shown, in a scroll area. The
workspace opens on the step the loaded subject needs next (:func:`~napari_qsm_ms.io.workflow.next_step`)
and moves there again when another subject is loaded. While a rater is signed in, only the Rate
page can be reached.
"""

from __future__ import annotations

from importlib import import_module

import napari
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..io.workflow import STEPS, next_step
from ._layers import current_subject
from ._scroll import VerticalScrollArea, scroll_contents
from .rating import rater_mode

#: step -> "module:Class" of its page (each also a dock of its own in napari.yaml).
PAGE_CLASSES: dict[str, str] = {
    "Study": "napari_qsm_ms._widgets.workspace:StudyDock",
    "QSM": "napari_qsm_ms._widgets.workspace:ReconDock",
    "Coregister": "napari_qsm_ms._widgets.coregister:CoregisterWidget",
    "Lesions": "napari_qsm_ms._widgets.annotation:AnnotationWidget",
    "Review": "napari_qsm_ms._widgets.review:ReviewWidget",
    "Rate": "napari_qsm_ms._widgets.rating:RaterWidget",
    "Consensus": "napari_qsm_ms._widgets.consensus:ConsensusWidget",
    "Stats": "napari_qsm_ms._widgets.stats:StatsWidget",
}
#: A page is never made wider than this (px): the canvas keeps most of a 1600 px screen.
MAX_PAGE_WIDTH_PX = 700
STEP_HINTS: dict[str, str] = {
    "Study": "open a study, pick a subject",
    "QSM": "reconstruct the susceptibility map",
    "Coregister": "bring MPRAGEs and FLAIR onto the T2* grid",
    "Lesions": "draw lesions, build references",
    "Review": "check each lesion and its references",
    "Rate": "blinded rating (one rater at a time)",
    "Consensus": "pool the raters' votes",
    "Stats": "relative susceptibility, report",
}


def _page_class(step: str):
    module, name = PAGE_CLASSES[step].split(":")
    return getattr(import_module(module), name)


def _scrolled(cls):
    """A subclass of a dock widget whose contents scroll (for docks whose module is not ours to edit)."""

    class Scrolled(cls):
        def __init__(self, napari_viewer: napari.Viewer) -> None:
            super().__init__(napari_viewer)
            scroll_contents(self)

    Scrolled.__name__ = Scrolled.__qualname__ = f"{cls.__name__.removesuffix('Widget')}Dock"
    Scrolled.__doc__ = cls.__doc__
    return Scrolled


def _study_dock():
    from .study import StudyWidget

    return _scrolled(StudyWidget)


def _recon_dock():
    from .recon import ReconWidget

    return _scrolled(ReconWidget)


StudyDock = _study_dock()
ReconDock = _recon_dock()


class WorkspaceWidget(QWidget):
    """All steps in one dock: a step list on the left, the step's page on the right."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.pages: dict[str, QWidget] = {}
        self._last_subject = current_subject(napari_viewer)
        self.steps = QListWidget()
        for k, step in enumerate(STEPS):
            item = QListWidgetItem(f"{k + 1} {step}")
            item.setToolTip(STEP_HINTS[step])
            self.steps.addItem(item)
        self.steps.setFixedWidth(self.steps.sizeHintForColumn(0) + 16)
        self.steps.setMinimumHeight(60)
        self.stack = QStackedWidget()
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.hint)
        right.addWidget(self.stack, 1)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.steps, 0, Qt.AlignTop)
        lay.addLayout(right, 1)
        self.steps.currentRowChanged.connect(self._on_row)
        self.viewer.layers.events.inserted.connect(self._on_layers_changed)
        rater_mode().changed.connect(self._on_rater_mode)
        self.show_step(next_step(current_subject(self.viewer)))

    # ------------------------------------------------------------------------------- pages
    def page(self, step: str) -> QWidget:
        """The page of ``step`` (built on first use)."""
        if step not in self.pages:
            widget = _page_class(step)(self.viewer)  # each scrolls on its own (see _scroll)
            self.pages[step] = widget
            # a page asks for the width of its contents (tables keep their Flags in view), which the
            # stack follows as they change, up to MAX_PAGE_WIDTH_PX; beyond that it scrolls sideways
            for area in widget.findChildren(VerticalScrollArea):
                area.max_min_width = MAX_PAGE_WIDTH_PX
                area.updateGeometry()
            self.stack.addWidget(widget)
        return self.pages[step]

    def show_step(self, step: str) -> QWidget:
        """Show the page of ``step`` (one of :data:`STEPS`) and select it in the list."""
        row = STEPS.index(step)
        if self.steps.currentRow() != row:
            self.steps.setCurrentRow(row)  # -> _on_row
        return self.page(step)

    @property
    def current_step(self) -> str:
        return STEPS[max(self.steps.currentRow(), 0)]

    def _on_row(self, row: int) -> None:
        if row < 0:
            return
        step = STEPS[row]
        self.stack.setCurrentWidget(self.page(step))
        self.hint.setText(f"<b>{row + 1}. {step}</b>: {STEP_HINTS[step]}")

    # ------------------------------------------------------------------------------ events
    def _on_layers_changed(self, event=None) -> None:
        subject = current_subject(self.viewer)
        if subject is not None and subject != self._last_subject and not rater_mode().active(self.viewer):
            self._last_subject = subject
            self.show_step(next_step(subject))

    def _on_rater_mode(self, viewer, active: bool) -> None:
        if getattr(viewer, "__wrapped__", viewer) is not getattr(self.viewer, "__wrapped__", self.viewer):
            return
        for row in range(self.steps.count()):
            item = self.steps.item(row)
            enabled = not active or STEPS[row] == "Rate"
            flags = item.flags()
            item.setFlags(flags | Qt.ItemIsEnabled if enabled else flags & ~Qt.ItemIsEnabled)
        if active and "Rate" in self.pages and self.current_step != "Rate":
            self.show_step("Rate")
