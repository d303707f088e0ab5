"""Docks that fit a small screen: a widget's contents moved into a scroll area."""

from __future__ import annotations

from qtpy.QtCore import QEvent
from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget


class VerticalScrollArea(QScrollArea):
    """A scroll area as wide as its contents plus the vertical scroll bar: when a long page shows that
    bar, the contents do not lose its width to a horizontal bar that hides their right edge (a
    button, the end of a line of status text)."""

    #: Cap (px) of the minimum width asked for; beyond it the contents scroll sideways (None: no cap).
    max_min_width: int | None = None

    def setWidget(self, body):  # noqa: N802 - Qt's name
        super().setWidget(body)
        body.installEventFilter(self)

    def eventFilter(self, obj, event):  # noqa: N802 - Qt's name
        if obj is self.widget() and event.type() == QEvent.LayoutRequest:
            self.updateGeometry()  # the contents' width changed (e.g. a combo box filled): pass it on
        return super().eventFilter(obj, event)

    def _with_bar(self, hint, contents_width: int):
        bar = self.verticalScrollBar().sizeHint().width()
        width = max(hint.width(), contents_width + bar + 2 * self.frameWidth())
        hint.setWidth(width if self.max_min_width is None else min(width, self.max_min_width))
        return hint

    def minimumSizeHint(self):  # noqa: N802 - Qt's name
        body = self.widget()
        hint = super().minimumSizeHint()
        return hint if body is None else self._with_bar(hint, body.minimumSizeHint().width())

    def sizeHint(self):  # noqa: N802 - Qt's name
        body = self.widget()
        hint = super().sizeHint()
        return hint if body is None else self._with_bar(hint, body.sizeHint().width())


def scroll_contents(widget: QWidget) -> QScrollArea:
    """Move ``widget``'s layout (and the widgets in it) into a vertical scroll area filling ``widget``.

    The dock's minimum height then no longer adds up the heights of its controls: docks stacked in
    napari's window (or pages of the workspace) fit a 1,000 px screen, and a long page scrolls.
    Call once, at the end of the widget's ``__init__``.
    """
    body = QWidget()
    body.setObjectName("qsm_ms_scroll_body")
    layout = widget.layout()
    if layout is not None:
        body.setLayout(layout)  # Qt takes the layout (and reparents its widgets) from ``widget``
    scroll = VerticalScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.NoFrame)
    scroll.setWidget(body)
    scroll.setMinimumHeight(48)  # a few lines; below its default (two scroll bars) so nine docks fit
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    return scroll
