"""The "Orthogonal views" dock: axial, coronal and sagittal views of the same point, one crosshair.

The views come from the napari-orthogonal-views plugin (0.5, BSD-3; install it with
``pip install napari-orthogonal-views`` or the ``views`` extra): it splits the canvas into the
main view plus two side views whose layers are synchronised copies, and draws a crosshair at the
viewer's current point in every view; a click in any view moves the point (and so the slices
of the other two). This dock turns them on with the crosshair, zoom and centre synchronised, and
says what to install when the package is missing. Two fixes for 0.5 are applied here: the
crosshair is drawn at the world point (0.5 ignores the layers' translation) and the side views
are shown (0.5 leaves them hidden when the window is already on screen).
"""

from __future__ import annotations

import warnings

import napari
import numpy as np
from qtpy.QtWidgets import QCheckBox, QLabel, QVBoxLayout, QWidget

SIDE_FRACTION = 0.4
"""Share of the canvas width (and height) given to the side views."""
INSTALL_HINT = "Orthogonal views need the napari-orthogonal-views package: pip install napari-orthogonal-views"


def _crosshair_at_world_point(overlay) -> None:
    """Draw the crosshair at the viewer's world point (``dims.point``).

    napari-orthogonal-views 0.5 places it at ``current_step * step``, which ignores where the
    world range starts: with layers translated to their scanner position (ours are), the
    crosshair is drawn tens of millimetres away from the slices it marks.
    """
    dims = overlay.viewer.dims
    point = np.asarray(dims.point, dtype=float)
    displayed = list(dims.displayed[::-1])
    not_displayed = list(dims.not_displayed[::-1]) or [0]
    if len(displayed) == 2:
        displayed = [*displayed, not_displayed[0]]
    overlay.node.set_position(point[displayed])


def orthogonal_view_manager(viewer):
    """The napari-orthogonal-views manager of ``viewer`` (created on first use), or None if missing."""
    try:
        from napari_orthogonal_views import cross_hair_overlay
        from napari_orthogonal_views.ortho_view_manager import _get_manager
    except ImportError:
        return None
    cross_hair_overlay.VispyCrosshairOverlay._move_crosshairs = _crosshair_at_world_point
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # it reaches into the Qt window
        return _get_manager(viewer)


class OrthogonalViewsWidget(QWidget):
    """Show or hide the linked axial / coronal / sagittal views with one crosshair."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.show_check = QCheckBox("Show axial, coronal and sagittal views (linked, one crosshair)")
        self.show_check.toggled.connect(self.set_shown)
        self.status = QLabel("Click in any view to move the crosshair; the other views follow.")
        self.status.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.show_check)
        lay.addWidget(self.status)
        lay.addStretch(1)

    def _manager(self):
        # the manager needs the real viewer (its Qt window), not the dock's public proxy
        viewer = napari.current_viewer() or self.viewer
        return orthogonal_view_manager(viewer)

    def set_shown(self, show: bool) -> bool:
        """Show (or hide) the orthogonal views; False if the package is missing."""
        manager = self._manager()
        if manager is None:
            self.status.setText(INSTALL_HINT)
            self.show_check.blockSignals(True)
            self.show_check.setChecked(False)
            self.show_check.blockSignals(False)
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            if show:
                manager.show()
                # 0.5 leaves the side views hidden when the window is already shown: show them
                for side in (manager.right_widget, manager.bottom_widget):
                    side.show()
                manager.set_splitter_sizes(SIDE_FRACTION, SIDE_FRACTION)
                manager.set_cross_hairs(True)
                manager.set_zoom_sync(True)
                manager.set_center_sync(True)
            else:
                manager.hide()
        return True

    def release(self) -> None:
        """Hide the views and give the canvas back to napari (frees the side views' widgets)."""
        manager = self._manager()
        if manager is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                manager.cleanup()
        self.show_check.blockSignals(True)
        self.show_check.setChecked(False)
        self.show_check.blockSignals(False)
