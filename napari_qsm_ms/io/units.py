"""Phase units: radians or raw scanner integers (e.g. -4096..4095), detected and scaled."""

from __future__ import annotations

import os
from typing import Literal

import numpy as np

from ..errors import InputFileError

PhaseUnits = Literal["auto", "rad", "raw"]
_RAD_TOLERANCE = 0.05  # radians beyond +-pi still accepted as radians (rounding, float32)


def detect_phase_units(phase: np.ndarray) -> Literal["rad", "raw"]:
    """Guess whether a phase array is in radians or raw integer units.

    Radians: every value within ``[-pi, pi]`` (plus a small tolerance), or ``[0, 2 pi]``.
    Raw: integer-valued with a range well beyond 2 pi (dcm2niix writes e.g. -4096..4095).

    Raises
    ------
    ValueError
        If the values are neither (for example an unwrapped phase, or a field map in Hz).
    """
    finite = phase[np.isfinite(phase)]
    if finite.size == 0:
        raise ValueError("phase has no finite values")
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= -np.pi - _RAD_TOLERANCE and hi <= np.pi + _RAD_TOLERANCE:
        return "rad"
    if lo >= -_RAD_TOLERANCE and hi <= 2 * np.pi + _RAD_TOLERANCE:
        return "rad"
    integer_valued = np.array_equal(finite, np.round(finite))
    if integer_valued and hi - lo > 20:
        return "raw"
    raise ValueError(
        f"phase range {lo:.4g}..{hi:.4g} is neither radians (-pi..pi) nor raw integers; "
        "it may already be unwrapped or a field map"
    )


def phase_to_radians(
    phase: np.ndarray, units: PhaseUnits = "auto", *, source: str | os.PathLike | None = None
) -> np.ndarray:
    """Return the phase in radians, wrapped to ``[-pi, pi)``, as float32.

    Raw integers are scaled by ``2 pi / (max - min + 1)`` over the integer range the data span,
    rounded out to the enclosing power of two (a 12-bit -4096..4095 range gives ``pi / 4096``),
    so that a raw file and its radian twin give the same phase.

    Parameters
    ----------
    phase : ndarray
        Phase as stored.
    units : {'auto', 'rad', 'raw'}
        Override detection with 'rad' or 'raw'.
    source : str or PathLike, optional
        File name used in error messages.

    Raises
    ------
    InputFileError
        If units cannot be detected, or 'rad' is forced on values far outside a 2 pi range.
    """
    arr = np.asarray(phase)
    if units == "auto":
        try:
            units = detect_phase_units(arr)
        except ValueError as exc:
            raise InputFileError(source, str(exc)) from None
    if units == "rad":
        data = arr.astype(np.float32)
        span = float(np.nanmax(data) - np.nanmin(data))
        if span > 2 * np.pi + 0.5:
            raise InputFileError(source, f"phase spans {span:.3g} rad, more than 2 pi: not wrapped radians")
    elif units == "raw":
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        half_range = 2.0 ** np.ceil(np.log2(max(abs(lo), abs(hi) + 1, 2)))
        if lo >= 0:  # unsigned storage 0..2^n-1
            full = 2.0 ** np.ceil(np.log2(hi + 1))
            data = (arr.astype(np.float64) / full * 2 * np.pi).astype(np.float32)
        else:
            data = (arr.astype(np.float64) / half_range * np.pi).astype(np.float32)
    else:
        raise InputFileError(source, f"unknown phase units {units!r} (use auto, rad or raw)")
    return wrap_to_pi(data)


def wrap_to_pi(phase_rad: np.ndarray) -> np.ndarray:
    """Wrap radians into ``[-pi, pi)``."""
    return ((phase_rad + np.pi) % (2 * np.pi) - np.pi).astype(phase_rad.dtype, copy=False)
