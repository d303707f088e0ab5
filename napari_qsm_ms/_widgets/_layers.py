"""Finding, adding and saving the subject's layers in a viewer (shared by every widget)."""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np

from .._reader import ROLE_STYLE, subject_layer_data, volume_layer_data
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


def set_axial_view(viewer: napari.Viewer) -> None:
    """Axial slices in radiological convention: slider over S, anterior up, patient right on the left."""
    if viewer.dims.ndim >= 3:
        order = list(range(viewer.dims.ndim))
        lead = order[:-3]
        viewer.dims.order = tuple(lead + [order[-1], order[-2], order[-3]])
        viewer_camera(viewer).orientation2d = ("up", "left")


def add_layer_data(viewer: napari.Viewer, data, kwargs: dict, kind: str):
    """Add one LayerData tuple from the reader, applying what constructors cannot (contours)."""
    layer = getattr(viewer, f"add_{kind}")(data, **kwargs)
    contour = (layer.metadata or {}).get("contour")
    if contour and kind == "labels":
        layer.contour = contour
    return layer


def apply_display_hints(layer) -> None:
    """Contours for ROI layers opened through ``viewer.open`` (reader LayerData)."""
    contour = (layer.metadata or {}).get("contour")
    if contour and layer._type_string == "labels" and layer.contour != contour:
        layer.contour = contour


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


def save_layer_to_subject(layer, path: str | Path | None = None) -> Path:
    """Write a layer to its file (``metadata['path']`` unless ``path``) atomically, source orientation."""
    target = Path(path) if path is not None else layer.metadata.get("path")
    if target is None:
        raise ValueError(f"layer {layer.name!r} has no file to save to")
    arr, affine = layer_array_for_file(layer.data, layer.metadata, layer.scale, layer.translate)
    if layer._type_string == "labels":
        arr = np.asarray(arr)
        dtype = np.uint8 if arr.size and arr.min() >= 0 and arr.max() < 256 else np.int32
    else:
        dtype = np.float32
    return save_volume(target, arr, affine, dtype=dtype)
