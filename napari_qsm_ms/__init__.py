"""napari-qsm-ms: quantitative susceptibility mapping of MS lesions at 7 T, as a napari plugin.

The pure layers (``io``, ``qsm``, ``roi``, ``rating``, ``stats``, ``registration``, ``simulate``)
never import Qt or napari; widgets live in ``_widgets``.
"""

from __future__ import annotations

try:
    from importlib.metadata import version as _version

    __version__ = _version("napari-qsm-ms")
except Exception:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

from .errors import CancelledError, InputFileError, ParameterError, QSMMSError, StudyLayoutError

__all__ = [
    "__version__",
    "QSMMSError",
    "InputFileError",
    "ParameterError",
    "StudyLayoutError",
    "CancelledError",
]
