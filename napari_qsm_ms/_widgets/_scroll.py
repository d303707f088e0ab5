"""Docks that fit a small screen: a widget's contents moved into a scroll area."""

from __future__ import annotations

from qtpy.QtWidgets import QFrame, QScrollArea, QVBoxLayout, QWidget


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
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.NoFrame)
    scroll.setWidget(body)
    scroll.setMinimumHeight(48)  # a few lines; below its default (two scroll bars) so nine docks fit
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    return scroll
