"""Small Qt-side helpers shared by the panels of the Lesions dock (:mod:`.annotation`)."""

from __future__ import annotations

import napari
import numpy as np
from qtpy.QtWidgets import QPushButton, QWidget

from ..errors import ParameterError
from ..roi.palette import REFERENCE_COLORS
from ._layers import programmatic_edit


def apply_labels_edit(layer, new_data: np.ndarray) -> int:
    """Make ``layer.data`` equal ``new_data`` as ONE undoable step; returns the voxels changed.

    Only the changed voxels go through ``layer.data_setitem`` inside ``layer.block_history()``,
    so ``layer.undo()`` (Ctrl-Z) restores the previous content in one step.
    """
    new = np.asarray(new_data)
    if new.shape != layer.data.shape:
        raise ParameterError(f"edit of layer {layer.name!r}: shape {new.shape} differs from {layer.data.shape}")
    changed = np.nonzero(np.asarray(layer.data) != new)
    if changed[0].size == 0:
        return 0
    hidden = not layer.visible
    if hidden:  # napari 0.9 data_setitem indexes the displayed slice, which a hidden layer lacks
        layer.visible = True
    try:
        with programmatic_edit(), layer.block_history():  # the paint event comes at block_history exit
            layer.data_setitem(changed, new[changed])
    finally:
        if hidden:
            layer.visible = False
    return int(changed[0].size)


def style_reference_layer(layer, role: str) -> None:
    """Contour display and one colour for all ids of a reference layer (cyan NAWM, green NAGM);
    the colours are shared with the review view."""
    from napari.utils.colormaps import DirectLabelColormap

    layer.contour = 1
    color = REFERENCE_COLORS.get(role)
    if color is not None:
        layer.colormap = DirectLabelColormap(color_dict={None: color, 0: "transparent"})


def without_progress(func, **kwargs):
    """Wrap a pure function without ``progress=`` for :func:`._worker.run_with_progress`."""

    def _call(progress=None):
        if progress is not None:
            progress(0.05, "working...")
        out = func(**kwargs)
        if progress is not None:
            progress(1.0, "done")
        return out

    return _call


def raise_or_notify(widget, message: str) -> None:
    """Show a user mistake (nothing selected, no layer) in the dock's summary line and as a napari
    notification. ``widget`` is the dock (anything with a ``summary_label``)."""
    widget.summary_label.setText(message)
    napari.utils.notifications.show_warning(message)


class DockPanel(QWidget):
    """A panel of the Lesions dock; ``dock`` is the :class:`.annotation.AnnotationWidget` it belongs
    to (its layers, annotation state, worker and summary line)."""

    def __init__(self, dock):
        super().__init__()
        self.dock = dock


def button(text: str, tooltip: str, slot) -> QPushButton:
    """A push button with its tooltip, calling ``slot()`` when clicked."""
    out = QPushButton(text)
    out.setToolTip(tooltip)
    out.clicked.connect(lambda: slot())
    return out
