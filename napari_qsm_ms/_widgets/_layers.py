"""Finding, adding and saving the subject's layers in a viewer (shared by every widget)."""

from __future__ import annotations

import weakref
from pathlib import Path

import napari
import numpy as np
from qtpy.QtCore import QTimer

from napari.components.overlays import TextOverlay
from napari.utils.colormaps import CyclicLabelColormap

from .._reader import ROLE_STYLE, subject_layer_data, volume_layer_data
from ..io.nifti import CanonicalView
from ..io.orientation import AXIS_LABELS, format_position_mm, screen_edge_letters
from ..roi.palette import LESION_PALETTE
from ..roi.study import axial_axis
from .._writer import layer_array_for_file
from ..io.layout import SubjectFiles
from ..io.nifti import Volume, save_volume


def find_layer(viewer: napari.Viewer, role: str, subject: SubjectFiles | None = None):
    """The first layer with ``metadata['role'] == role`` (of ``subject`` if given), else None."""
    for layer in viewer.layers:
        meta = layer.metadata or {}
        if meta.get("role") != role:
            continue
        if subject is not None and meta.get("subject") not in (None, subject):
            continue
        return layer
    return None


def current_subject(viewer: napari.Viewer) -> SubjectFiles | None:
    """The subject of the magnitude layer (or of any layer that has one)."""
    mag = find_layer(viewer, "magnitude")
    if mag is not None and mag.metadata.get("subject") is not None:
        return mag.metadata["subject"]
    for layer in viewer.layers:
        subject = (layer.metadata or {}).get("subject")
        if subject is not None:
            return subject
    return None


def viewer_camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    camera = getattr(scene, "camera", None)
    return camera if camera is not None else viewer.camera


def centre_viewer_on(viewer, layer, index_vox) -> None:
    """Move the viewer to a voxel of ``layer``: slider axes set, displayed axes centred."""
    world = np.asarray(layer.data_to_world(np.asarray(index_vox, dtype=float)), dtype=float)
    offset = viewer.dims.ndim - world.size
    displayed = [d - offset for d in viewer.dims.displayed]
    for ax in range(world.size):
        if ax not in displayed:
            viewer.dims.set_point(offset + ax, world[ax])
    camera = viewer_camera(viewer)
    center = list(camera.center)
    values = [world[d] for d in displayed]
    center[-len(values):] = values
    camera.center = tuple(center)


def show_lesion(viewer, layer, lesion_id: int) -> int | None:
    """Show lesion ``lesion_id`` of the labels ``layer``: its central slice (``roi.rules``, the one
    rule), centred on its voxels there, its label selected. Returns the slice, None if absent."""
    from ..roi.rules import lesion_central_slice

    data = np.asarray(layer.data)
    coords = np.argwhere(data == lesion_id)
    if coords.size == 0:
        return None
    axis = slice_axis_of(layer)  # as the ROI layer draws references
    central = lesion_central_slice(data == lesion_id, axis)  # canonical layers run upward
    centre = coords[coords[:, axis] == central].mean(axis=0)
    centre[axis] = central
    centre_viewer_on(viewer, layer, centre)
    layer.selected_label = int(lesion_id)
    return int(central)


def set_axial_view(viewer: napari.Viewer) -> None:
    """Axial slices in radiological convention: slider over S, anterior up, patient right on the left.

    Also: L/R/A/P letters at the canvas edges (kept right when the view changes), the cursor's
    position in mm, named slider axes and, if a reference or other derived layer is the active one, the
    lesions layer selected instead (what the user draws on)."""
    if viewer.dims.ndim >= 3:
        order = list(range(viewer.dims.ndim))
        lead = order[:-3]
        viewer.dims.order = tuple(lead + [order[-1], order[-2], order[-3]])
        viewer_camera(viewer).orientation2d = ("up", "left")
    name_axes(viewer)
    show_orientation(viewer)
    show_cursor_mm(viewer)
    select_drawing_layer(viewer)


def name_axes(viewer: napari.Viewer) -> None:
    """Anatomical axis names (slider labels, in mm) on every 3-D layer of ours.

    ``layer.units`` stays 'pixel': with ``units='mm'`` napari 0.9.2 draws nothing (measured: a
    black canvas and black thumbnails), so the scale bar cannot say mm; the cursor read-out
    (:func:`show_cursor_mm`) gives positions in mm instead."""
    for layer in viewer.layers:
        ours = (layer.metadata or {}).get("role") is not None and layer.ndim == 3
        if ours and tuple(layer.axis_labels) != AXIS_LABELS:
            layer.axis_labels = AXIS_LABELS


def show_cursor_mm(viewer: napari.Viewer) -> None:
    """The cursor's scanner position in mm with its anatomical direction, at the canvas's bottom left."""
    overlays = viewer.canvas.overlays
    if _CURSOR_KEY in overlays:
        return
    overlays[_CURSOR_KEY] = TextOverlay(position="bottom_left", font_size=10, color="white")

    def update(_event=None) -> None:
        position = viewer.cursor.position
        ok = len(position) >= 3 and any((layer.metadata or {}).get("role") for layer in viewer.layers)
        overlays[_CURSOR_KEY].text = format_position_mm(position[-3:]) if ok else ""

    viewer.cursor.events.position.connect(update)


def select_drawing_layer(viewer: napari.Viewer) -> None:
    """Make the lesions layer the active one if the active layer is not for drawing (references...)."""
    active = viewer.layers.selection.active
    lesions = find_layer(viewer, "lesions")
    if lesions is not None and (active is None or (active.metadata or {}).get("role") in NOT_FOR_DRAWING):
        viewer.layers.selection.active = lesions
        # napari selects a layer it has just added after its ``inserted`` event: check again then
        QTimer.singleShot(0, lambda: _select_lesions_if_still_derived(viewer))


def _select_lesions_if_still_derived(viewer) -> None:
    active = viewer.layers.selection.active
    lesions = find_layer(viewer, "lesions")
    if lesions is not None and active is not None and (active.metadata or {}).get("role") in NOT_FOR_DRAWING:
        viewer.layers.selection.active = lesions


def show_orientation(viewer: napari.Viewer) -> None:
    """Anatomical letters at the canvas edges of a 2-D view of our (canonical RAS+) layers."""
    overlays = viewer.canvas.overlays
    letters = _edge_letters(viewer)
    for position, key in _ORIENTATION_KEYS.items():
        if key not in overlays:
            if letters is None:
                continue
            overlays[key] = TextOverlay(position=position, font_size=14, color="orange", gridded=True)
        overlays[key].text = letters[position] if letters else ""
        sides_only = _unwrapped(viewer) in _sides_only
        overlays[key].visible = letters is not None and not (sides_only and position.endswith("center"))
    if _unwrapped(viewer) not in _oriented_viewers:
        _oriented_viewers.add(_unwrapped(viewer))
        viewer.dims.events.order.connect(lambda _e=None: show_orientation(viewer))
        viewer.dims.events.ndisplay.connect(lambda _e=None: show_orientation(viewer))
        viewer_camera(viewer).events.orientation.connect(lambda _e=None: show_orientation(viewer))


def orientation_sides_only(viewer: napari.Viewer, sides_only: bool) -> None:
    """Only R / L (no A / P) at the edges, e.g. in the rater's small grid cells where A would run
    into each panel's title; ``False`` shows all four again."""
    if sides_only:
        _sides_only.add(_unwrapped(viewer))
    else:
        _sides_only.discard(_unwrapped(viewer))
    show_orientation(viewer)


def _edge_letters(viewer) -> dict | None:
    if viewer.dims.ndim < 3 or viewer.dims.ndisplay != 2:
        return None
    if not any((layer.metadata or {}).get("role") for layer in viewer.layers):
        return None
    displayed = tuple(d - (viewer.dims.ndim - 3) for d in viewer.dims.displayed)
    if min(displayed) < 0:
        return None
    orientation = viewer_camera(viewer).orientation2d
    return screen_edge_letters(displayed, tuple(str(getattr(o, "value", o)) for o in orientation))


#: Roles whose layers the Lesions dock builds: painting on them is undone with a message.
DERIVED_ROLES = ("refwm", "refgm")
#: Roles that must not stay the active layer after loading (the user would paint on them).
NOT_FOR_DRAWING = ("refwm", "refgm", "tissue", "vessels", "mask", "qsm")
_EDGES = ("top_center", "bottom_center", "middle_left", "middle_right")
_ORIENTATION_KEYS = {pos: f"qsm_ms_orientation_{pos}" for pos in _EDGES}
_CURSOR_KEY = "qsm_ms_cursor_mm"
_programmatic = [0]
_guarded_layers: weakref.WeakSet = weakref.WeakSet()
_oriented_viewers: weakref.WeakSet = weakref.WeakSet()
_sides_only: weakref.WeakSet = weakref.WeakSet()


def _unwrapped(obj):
    """The object behind napari's ``PublicOnlyProxy`` (what docks from the Plugins menu hold)."""
    return getattr(obj, "__wrapped__", obj)


def add_layer_data(viewer: napari.Viewer, data, kwargs: dict, kind: str):
    """Add one LayerData tuple from the reader, applying what constructors cannot (contours)."""
    if (kwargs.get("metadata") or {}).get("role") and np.ndim(data) == 3:
        kwargs = {"axis_labels": AXIS_LABELS, **kwargs}
    layer = getattr(viewer, f"add_{kind}")(data, **kwargs)
    apply_display_hints(layer)
    return layer


def lesion_colormap() -> CyclicLabelColormap:
    """The fixed lesion outline colours (:data:`~napari_qsm_ms.roi.palette.LESION_PALETTE`), cycled by id."""
    colors = [(0.0, 0.0, 0.0, 0.0), *[(*c, 1.0) for c in LESION_PALETTE]]
    return CyclicLabelColormap(colors=colors, name="qsm_ms_lesions")


def apply_display_hints(layer) -> None:
    """What the constructors cannot do for our layers (from the reader or a dock): contours, the
    fixed lesion colours, and a guard against painting on references. (Units and axis names are
    set for all layers at once by :func:`set_axial_view`: napari warns about mixed units.)"""
    meta = layer.metadata or {}
    is_labels = layer.__class__.__name__ == "Labels"
    contour = meta.get("contour")
    if contour and is_labels and layer.contour != contour:
        layer.contour = contour
    if meta.get("role") is None or layer.ndim != 3:
        return
    if meta.get("role") == "lesions" and is_labels:
        layer.colormap = lesion_colormap()
    if meta.get("role") in DERIVED_ROLES and is_labels and _unwrapped(layer) not in _guarded_layers:
        _guarded_layers.add(_unwrapped(layer))
        layer.events.paint.connect(_refuse_paint)


class programmatic_edit:
    """Context in which a dock edits a derived layer (the paint guard lets it through)."""

    def __enter__(self):
        _programmatic[0] += 1

    def __exit__(self, *exc):
        _programmatic[0] -= 1


def _refuse_paint(event) -> None:
    """Undo a brush stroke on a reference layer and say where to draw instead."""
    if _programmatic[0]:
        return
    layer = event.source
    from napari.utils.notifications import show_warning

    QTimer.singleShot(0, layer.undo)  # after napari has finished recording the stroke
    show_warning(
        f"'{layer.name}' is built by the Lesions dock (Build references): the stroke was undone. "
        "Select the 'lesions' layer to draw lesions."
    )


def show_subject_layers(viewer: napari.Viewer, layer_data, *, replace: bool = True) -> list:
    """Add a subject's LayerData (from ``_reader.subject_layer_data``) in the axial view.

    With ``replace``, layers of another subject loaded by this plugin are removed first.
    """
    if replace:
        for layer in list(viewer.layers):
            if (layer.metadata or {}).get("role") in ROLE_STYLE:
                viewer.layers.remove(layer)
    layers = [add_layer_data(viewer, data, kwargs, kind) for data, kwargs, kind in layer_data]
    set_axial_view(viewer)
    viewer.reset_view()
    return layers


def load_subject_into_viewer(viewer: napari.Viewer, subject: SubjectFiles, *, replace: bool = True) -> list:
    """Read every layer of ``subject`` and show it (see :func:`show_subject_layers`)."""
    return show_subject_layers(viewer, subject_layer_data(subject), replace=replace)


def add_volume_layer(viewer: napari.Viewer, volume: Volume, role: str, *, subject=None, name=None):
    """Add a computed volume (source orientation + affine) as a layer with full metadata."""
    data, kwargs, kind = volume_layer_data(volume, role, subject=subject, name=name)
    existing = find_layer(viewer, role, subject)
    if existing is not None and existing.data.shape == data.shape:
        existing.data = data
        existing.metadata.update(kwargs["metadata"])
        return existing
    return add_layer_data(viewer, data, kwargs, kind)


def source_affine(layer) -> np.ndarray:
    """The voxel-to-world affine of a layer's array in its file's voxel order.

    Layers of the plugin's reader carry ``metadata['canonical']`` (the source affine) and
    ``metadata['affine']``; layers the docks add on a file's grid carry ``metadata['affine']``;
    any other layer has its napari data-to-world transform (scale, translate, rotate, shear, affine).
    """
    meta = layer.metadata or {}
    view: CanonicalView | None = meta.get("canonical")
    if view is not None:
        return np.asarray(view.source_affine, dtype=float)
    if meta.get("affine") is not None:
        return np.asarray(meta["affine"], dtype=float)
    from napari.utils.transforms import Affine

    nd = np.ndim(layer.data)
    inner = Affine(scale=layer.scale, translate=layer.translate, rotate=layer.rotate, shear=layer.shear, ndim=nd)
    full = np.asarray(layer.affine.affine_matrix) @ inner.affine_matrix
    aff = np.eye(4)
    aff[:3, :3] = full[nd - 3:nd, nd - 3:nd]
    aff[:3, 3] = full[nd - 3:nd, nd]
    return aff


def layer_to_volume(layer) -> Volume:
    """THE layer -> volume adapter: a layer's array in its file's voxel order, with its affine
    (:func:`source_affine`) and file (``metadata['path']``).

    Plugin layers go back from the canonical RAS+ display order to the source order (echoes of a
    4-D layer, first on napari's slider, go last); other layers are taken as they are.
    """
    meta = layer.metadata or {}
    if meta.get("canonical") is not None:
        data = layer_array_for_file(layer.data, meta)[0]
    else:
        data = np.asarray(layer.data)
    path = meta.get("path")
    return Volume(data, source_affine(layer), Path(path) if path else None)


def layer_grid(layer) -> Volume:
    """A data-less :class:`Volume` with the source shape and affine of a layer (grid checks)."""
    view: CanonicalView | None = (layer.metadata or {}).get("canonical")
    shape = view.source_shape[:3] if view is not None else layer.data.shape[-3:]
    path = (layer.metadata or {}).get("path")
    return Volume(np.broadcast_to(np.zeros((), np.uint8), shape), source_affine(layer), Path(path) if path else None)


def save_layer_to_subject(layer, path: str | Path | None = None) -> Path:
    """Write a layer to its file (``metadata['path']`` unless ``path``) atomically, source orientation."""
    target = Path(path) if path is not None else layer.metadata.get("path")
    if target is None:
        raise ValueError(f"layer {layer.name!r} has no file to save to")
    arr = np.asarray(layer_to_volume(layer).data)
    if layer._type_string == "labels":
        dtype = np.uint8 if arr.size and arr.min() >= 0 and arr.max() < 256 else np.int32
    else:
        dtype = np.float32
    return save_volume(target, arr, source_affine(layer), dtype=dtype)


def slice_axis_of(layer) -> int:
    """Array axis across the axial slices of a layer (2 for the canonical RAS layers of the plugin).

    Same rule as ``qsm-ms rois`` (:func:`napari_qsm_ms.roi.study.axial_axis`): the axis nearest
    the world S-I axis, from the layer's canonical affine.
    """
    view: CanonicalView | None = (layer.metadata or {}).get("canonical")
    if view is None:
        return 2
    return axial_axis(view.canonical_affine)


def voxel_size_of(layer) -> tuple[float, float, float]:
    """Voxel size (mm) of a layer's canonical array (its napari ``scale``)."""
    return tuple(float(s) for s in layer.scale[-3:])
