"""Layers -> the inputs of the rim and vein measures (``stats.marker_view.MarkerInputs``).

The docks read the subject's layers through THE layer -> volume adapter (``_layers.layer_to_volume``)
so the arrays are in the files' voxel order, exactly what ``qsm-ms stats`` reads from the files
(only layers on the lesion grid take part; any other is reported missing with what to run).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from ..io.layout import round_consensus_tsv
from ..stats.marker_view import NO_MAGNITUDE, NO_QSM, MarkerInputs, first_echo
from ..stats.markers import ROUND, read_rated_markers
from ._layers import layer_grid, layer_to_volume

#: (MarkerInputs field, layer role)
_OPTIONAL = (("chi_ppm", "qsm"), ("magnitude", "magnitude"), ("tissue", "tissue"), ("vessels", "vessels"),
             ("brain", "mask"))


def _on_grid(layer, grid) -> bool:
    other = layer_grid(layer)
    return other.shape[:3] == grid.shape[:3] and np.allclose(other.affine, grid.affine, atol=1e-3)


def marker_inputs(layer: Callable[[str], object], subject=None) -> MarkerInputs | None:
    """The measures' inputs from the layers ``layer(role)`` returns and the rim round's consensus
    of ``subject`` (its file; raises ``InputFileError`` if unreadable); None without lesions."""
    lesions = layer("lesions")
    if lesions is None or not np.any(lesions.data):
        return None
    grid = layer_grid(lesions)
    les = layer_to_volume(lesions)
    arrays = {}
    for name, role in _OPTIONAL:
        lay = layer(role)
        if lay is None or not _on_grid(lay, grid) or (role in ("tissue", "vessels", "mask") and not np.any(lay.data)):
            arrays[name] = None
            continue
        data = np.asarray(layer_to_volume(lay).data)
        if name == "chi_ppm":
            data = data.astype(np.float32, copy=False)
        elif name == "magnitude":
            data = first_echo(data)
        else:
            data = data.astype(np.int64, copy=False)
        arrays[name] = data
    rated = None if subject is None else read_rated_markers(subject)
    return MarkerInputs(np.asarray(les.data).astype(np.int64, copy=False), np.asarray(les.affine, float), **arrays,
                        rated=rated)


def marker_fingerprint(layer: Callable[[str], object], subject=None) -> tuple:
    """Changes when an input of the measures changes: the label layers' contents (checksums), the
    image layers' arrays (identity) and the rim round's consensus file (time stamp)."""
    path = None if subject is None else round_consensus_tsv(subject, ROUND)
    key = [path.stat().st_mtime_ns if path is not None and path.exists() else None]
    for role in ("lesions", "tissue", "vessels", "mask"):
        lay = layer(role)
        key.append(None if lay is None else zlib.crc32(np.ascontiguousarray(lay.data).view(np.uint8)))
    for role in ("qsm", "magnitude"):
        lay = layer(role)
        key.append(None if lay is None else id(lay.data))
    return tuple(key)


__all__ = ["NO_MAGNITUDE", "NO_QSM", "marker_fingerprint", "marker_inputs"]
