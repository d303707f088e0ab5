"""What napari runs for File > Open and File > Open Sample: our layers, shown like the Study dock.

A reader or sample function only returns LayerData; napari adds the layers afterwards. So the
functions here return the reader's LayerData unchanged except for a one-off tag, and arrange the
viewer once napari has inserted the last tagged layer: ROI layers as outlines
(:func:`._layers.apply_display_hints`) and the axial radiological view
(:func:`._layers.set_axial_view`, the one set-up the Study dock and ``qsm-ms view`` use).

:func:`claim_nifti_reader` makes this plugin napari's preferred reader for ``*.nii``/``*.nii.gz``
when no other installed plugin but napari's builtin (whose imageio fallback cannot read NIfTI)
claims them and the user has no preference of their own, so File > Open of a NIfTI file does not
ask to choose a reader. It runs when the plugin is activated (any of its docks, readers or
samples is used).
"""

from __future__ import annotations

import itertools

import napari

from .. import _reader, _sample_data
from ._layers import apply_display_hints, set_axial_view

PLUGIN = "napari-qsm-ms"
NIFTI_PATTERNS = ("*.nii", "*.nii.gz")
BATCH_KEY = "_qsm_ms_open_batch"
_batches = itertools.count(1)


def arrange_when_added(viewer, layer_data: list) -> list:
    """Tag ``layer_data``; when ``viewer`` has inserted all of it, show it like the Study dock."""
    if viewer is None or not layer_data:
        return layer_data
    batch = next(_batches)
    for _data, kwargs, _kind in layer_data:
        kwargs.setdefault("metadata", {})[BATCH_KEY] = batch
    arrived: list = []

    def on_inserted(event) -> None:
        layer = event.value
        if (layer.metadata or {}).get(BATCH_KEY) != batch:
            return
        layer.metadata.pop(BATCH_KEY, None)
        apply_display_hints(layer)
        arrived.append(layer)
        if len(arrived) == len(layer_data):
            viewer.layers.events.inserted.disconnect(on_inserted)
            set_axial_view(viewer)
            viewer.reset_view()

    viewer.layers.events.inserted.connect(on_inserted)
    return layer_data


def get_reader(path):
    """npe2 reader command: :func:`napari_qsm_ms._reader.get_reader`, arranged in the viewer."""
    read = _reader.get_reader(path)
    if read is None:
        return None

    def read_and_arrange(p):
        return arrange_when_added(napari.current_viewer(), read(p))

    return read_and_arrange


def sample_subject():
    """npe2 sample command: sub-01 of a user copy of the sample study, arranged in the viewer."""
    return arrange_when_added(napari.current_viewer(), _sample_data.sample_subject())


def claim_nifti_reader(settings=None) -> list[str]:
    """Prefer this plugin for NIfTI patterns nobody else reads and the user has not assigned.

    Returns the patterns claimed now.
    """
    from napari.plugins import _npe2

    if settings is None:
        from napari.settings import get_settings

        settings = get_settings()
    preferences = dict(settings.plugins.extension2reader)
    claimed = []
    for pattern in NIFTI_PATTERNS:
        others = set(_npe2.get_readers("x" + pattern[1:])) - {PLUGIN, "napari"}
        if pattern not in preferences and not others:
            preferences[pattern] = PLUGIN
            claimed.append(pattern)
    if claimed:
        settings.plugins.extension2reader = preferences
    return claimed


def on_activate(context=None) -> None:
    """npe2 activation hook (the manifest's ``on_activate``)."""
    claim_nifti_reader()
