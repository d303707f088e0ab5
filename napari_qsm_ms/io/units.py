"""Phase units: radians, degrees or raw scanner levels (e.g. -4096..4095), detected or stated, and
checked so that a phase in the wrong units is refused instead of silently giving a wrong chi.

The rule (:func:`interpret_phase`): under ``auto`` a phase is accepted as radians only if it looks
like a wrapped phase, i.e. it covers at least half the circle (:data:`MIN_WRAPPED_SPAN_RAD`) and it
wraps somewhere (at least :data:`MIN_WRAP_FRACTION` of the neighbour pairs step by more than pi);
integer levels filling a power-of-two range (dcm2niix's -4096..4095 or 0..4095) are scaled to
radians and the scaling recorded. Anything else is refused with one line naming the likely cause
and the option that fixes it (``--phase-units``, ``--phase-range``, or entering at a later stage with
``--field``/``--local-field``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from ..errors import InputFileError, ParameterError

PhaseUnits = Literal["auto", "rad", "deg", "raw"]
PHASE_UNITS = ("auto", "rad", "deg", "raw")
_RAD_TOLERANCE = 0.05  # radians beyond +-pi still accepted as radians (rounding, float32)
MIN_WRAPPED_SPAN_RAD = np.pi
"""A wrapped phase covers (nearly) the whole circle: noise outside the head spreads over all of it, and
the wraps inside the head reach both ends. One covering less than half of it (pi) is refused under
``auto``: the 12-bit phase of the ROMEO test crop stored as +-0.0037, or a local field in ppm (+-0.2),
span 100 to 1000 times less."""
MIN_WRAP_FRACTION = 1e-5
"""Under ``auto``, a wrapped phase must step by more than pi between at least this fraction of its
neighbouring non-zero voxel pairs (a wrap or noise). A smooth field map (ppm, or radians unwrapped)
has none; the simulated phantoms have 1e-3 to 1e-2, the real ROMEO crop (scaled) 1e-2."""
MIN_STATED_RAD_SPAN = 0.1
"""A phase stated to be radians that spans less than this (rad) over the whole image carries no usable
field at all: it is refused as scaled values even under an explicit ``rad``."""


@dataclass(frozen=True)
class PhaseScaling:
    """How a stored phase was turned into radians (recorded in the Chimap sidecar).

    ``radians = (stored - offset) * rad_per_unit``, then wrapped to ``[-pi, pi)``.
    """

    units: str  # 'rad', 'deg', 'raw' or 'range'
    rad_per_unit: float
    offset: float = 0.0
    detected: bool = False  # chosen by 'auto' (True) or stated by the user (False)
    levels: int | None = None  # raw: number of levels one turn spans (e.g. 8192 for -4096..4095)

    def as_record(self) -> dict:
        return asdict(self)


def _finite_nonzero(phase: np.ndarray) -> np.ndarray:
    arr = np.asarray(phase)
    flat = arr.ravel()
    if np.issubdtype(arr.dtype, np.floating):
        flat = flat[np.isfinite(flat)]
    return flat[flat != 0]


def wrap_fraction(phase: np.ndarray) -> float:
    """Fraction of neighbouring non-zero voxel pairs (6-neighbourhood, every echo of a 4-D array)
    whose values differ by more than pi: how often a phase in radians wraps (or is pure noise)."""
    arr = np.asarray(phase, dtype=np.float32)
    vols = [arr] if arr.ndim != 4 else [arr[..., e] for e in range(arr.shape[3])]
    jumps = pairs = 0
    for v in vols:
        nz = v != 0
        for ax in range(v.ndim):
            a, m = np.moveaxis(v, ax, 0), np.moveaxis(nz, ax, 0)
            both = m[1:] & m[:-1]
            pairs += int(np.count_nonzero(both))
            step = np.subtract(a[1:], a[:-1])
            np.abs(step, out=step)
            jumps += int(np.count_nonzero((step > np.pi) & both))
    return jumps / pairs if pairs else 0.0


def level_lattice(values: np.ndarray) -> tuple[float, int] | None:
    """``(step, n_levels)`` if the values sit on an evenly spaced grid of levels (a scaled integer
    phase, e.g. 4096 levels of 1.79e-6), else None. ``n_levels`` spans min..max."""
    u = np.unique(np.asarray(values, dtype=np.float64))
    if u.size < 16 or u.size > 65536:
        return None
    span = float(u[-1] - u[0])
    typical = float(np.median(np.diff(u)))  # float32 storage jitters single steps by ~1e-3
    if typical <= 0 or span / typical > 70000:
        return None
    n_steps = int(round(span / typical))
    step = span / n_steps
    k = (u - u[0]) / step
    if np.abs(k - np.round(k)).max() > 0.05:
        return None
    return step, n_steps + 1


def _pow2_at_least(n: float) -> int:
    return int(2 ** np.ceil(np.log2(max(n, 2))))


def _integer_turn(lo: float, hi: float) -> int:
    """Levels in one turn of an integer phase: 2^n for unsigned 0..2^n-1, 2 * 2^(n-1) for signed
    -2^(n-1)..2^(n-1)-1 (the top value may also be 2^(n-1), the same angle as the bottom one)."""
    return _pow2_at_least(hi) if lo >= 0 else 2 * _pow2_at_least(max(abs(lo), hi))


def _raw_scaling(values: np.ndarray, detected: bool, source) -> PhaseScaling:
    """Levels of an n-bit phase: integers (signed -2^(n-1)..2^(n-1)-1 or unsigned 0..2^n-1), or a
    float grid of evenly spaced levels; 2^n levels are one turn."""
    lo, hi = float(values.min()), float(values.max())
    if np.array_equal(values, np.round(values)):
        full = _integer_turn(lo, hi)
        return PhaseScaling("raw", 2 * np.pi / full, detected=detected, levels=full)
    lattice = level_lattice(values)
    if lattice is None:
        raise InputFileError(source, f"phase values {lo:.4g}..{hi:.4g} are neither integers nor evenly spaced "
                             "levels, so --phase-units raw cannot scale them: give --phase-range LOW HIGH "
                             "(the values one full turn spans)")
    step, n = lattice
    full = _pow2_at_least(n)
    return PhaseScaling("raw", 2 * np.pi / (full * step), detected=detected, levels=full)


def _not_wrapped_message(values: np.ndarray) -> str:
    """The one line that says why a phase under 'auto' does not look like radians, and what to do."""
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo
    lattice = level_lattice(values)
    if lattice is not None and span < MIN_WRAPPED_SPAN_RAD:
        step, n = lattice
        full = _pow2_at_least(n)
        half = full * step / 2
        return (f"phase values span only {lo:.5g}..{hi:.5g} on {n} evenly spaced levels of {step:.4g}: a "
                f"{int(np.log2(full))}-bit phase scaled to a non-radian range, not radians; if {full} levels are one "
                f"turn pass --phase-units raw (or --phase-range {-half:.6g} {half:.6g})")
    if span < MIN_WRAPPED_SPAN_RAD:
        return (f"phase values span only {lo:.4g}..{hi:.4g} ({span / (2 * np.pi):.2g} of a turn): not a wrapped "
                "phase in radians; a field map (e.g. ppm)? pass it with --field or --local-field and --field-units; "
                "a scaled phase? pass --phase-range LOW HIGH (or --phase-units rad if it is radians after all)")
    return (f"phase values {lo:.4g}..{hi:.4g} never wrap (no neighbour step > pi): an unwrapped phase or a "
            "field map, not a wrapped phase; pass it with --field or --local-field and --field-units "
            "(or --phase-units rad if it is a wrapped phase after all)")


def detect_phase_units(phase: np.ndarray) -> Literal["rad", "raw"]:
    """Guess whether a phase array is in radians or raw integer units.

    Radians: every value within ``[-pi, pi]`` (plus a small tolerance), or ``[0, 2 pi]``, covering at
    least :data:`MIN_WRAPPED_SPAN_RAD` and wrapping (:func:`wrap_fraction` at least
    :data:`MIN_WRAP_FRACTION`). Raw: integer-valued, filling at least 90 % of a power-of-two range
    (dcm2niix writes e.g. -4096..4095 or 0..4095).

    Raises
    ------
    ValueError
        If the values are neither, with the likely cause and the option to fix it (a scaled phase,
        a field map in ppm or Hz, an unwrapped phase, degrees).
    """
    return _detect(phase, _finite_nonzero(phase))


def _detect(phase: np.ndarray, values: np.ndarray) -> Literal["rad", "raw"]:
    if values.size == 0:
        raise ValueError("phase has no finite non-zero values")
    lo, hi = float(values.min()), float(values.max())
    in_rad = (lo >= -np.pi - _RAD_TOLERANCE and hi <= np.pi + _RAD_TOLERANCE) or (
        lo >= -_RAD_TOLERANCE and hi <= 2 * np.pi + _RAD_TOLERANCE)
    if in_rad:
        if hi - lo < MIN_WRAPPED_SPAN_RAD or wrap_fraction(phase) < MIN_WRAP_FRACTION:
            raise ValueError(_not_wrapped_message(values))
        return "rad"
    if np.array_equal(values, np.round(values)) and hi - lo > 20:
        if hi - lo + 1 >= 0.9 * _integer_turn(lo, hi):
            return "raw"
    if lo >= -181 and hi <= 361 and 300 <= hi - lo <= 361:
        raise ValueError(f"phase range {lo:.4g}..{hi:.4g} looks like degrees: pass --phase-units deg")
    raise ValueError(
        f"phase range {lo:.4g}..{hi:.4g} is neither radians (-pi..pi) nor raw integers; it may be an unwrapped "
        "phase or a field map (Hz?): pass it with --field FILE --field-units hz|ppm|rad, or state the scale "
        "with --phase-units or --phase-range"
    )


def interpret_phase(
    phase: np.ndarray,
    units: str = "auto",
    *,
    phase_range: tuple[float, float] | None = None,
    source: str | os.PathLike | None = None,
) -> tuple[np.ndarray, PhaseScaling]:
    """The phase in radians, wrapped to ``[-pi, pi)`` (float32), and how it was scaled.

    Parameters
    ----------
    phase : ndarray
        Phase as stored (3-D, or 4-D with echoes last).
    units : {'auto', 'rad', 'deg', 'raw'}
        'auto' detects radians or raw integers and refuses anything that does not look like a
        wrapped phase (:func:`detect_phase_units`). 'rad' and 'deg' state the units. 'raw' states
        that the values are the levels of an n-bit phase (integers, or evenly spaced floats such as
        a 12-bit phase stored as +-0.0037), 2^n levels being one turn.
    phase_range : (low, high), optional
        State the scale instead: the stored values ``low..high`` span one full turn (2 pi). Only
        with ``units`` 'auto'.
    source : str or PathLike, optional
        File name used in error messages.

    Raises
    ------
    InputFileError
        Units that cannot be detected, or stated units that the values contradict.
    """
    arr = np.asarray(phase)
    values = _finite_nonzero(arr)
    if values.size == 0:
        raise InputFileError(source, "phase has no finite non-zero values")
    lo, hi = float(values.min()), float(values.max())
    if phase_range is not None:
        if units != "auto":
            raise ParameterError(f"give either --phase-units {units} or --phase-range, not both")
        low, high = (float(v) for v in phase_range)
        if not high > low:
            raise ParameterError(f"--phase-range {low:g} {high:g}: HIGH must be greater than LOW")
        tol = 0.01 * (high - low)
        if lo < low - tol or hi > high + tol:
            raise InputFileError(source, f"phase values {lo:.4g}..{hi:.4g} fall outside --phase-range "
                                 f"{low:g} {high:g}")
        scaling = PhaseScaling("range", 2 * np.pi / (high - low), offset=(low + high) / 2)
    elif units == "auto":
        try:
            detected = _detect(arr, values)
        except ValueError as exc:
            raise InputFileError(source, str(exc)) from None
        scaling = (PhaseScaling("rad", 1.0, detected=True) if detected == "rad"
                   else _raw_scaling(values, True, source))
    elif units == "rad":
        if hi - lo > 2 * np.pi + 0.5:
            raise InputFileError(source, f"phase spans {hi - lo:.3g} rad, more than 2 pi: not wrapped radians "
                                 "(an unwrapped phase or a field map? pass it with --field)")
        if hi - lo < MIN_STATED_RAD_SPAN:
            raise InputFileError(source, _not_wrapped_message(values))
        scaling = PhaseScaling("rad", 1.0)
    elif units == "deg":
        if hi - lo > 360 + 30:
            raise InputFileError(source, f"phase spans {hi - lo:.4g}, more than 360 degrees: not wrapped degrees")
        scaling = PhaseScaling("deg", np.pi / 180)
    elif units == "raw":
        scaling = _raw_scaling(values, False, source)
    else:
        raise ParameterError(f"unknown phase units {units!r} (use {', '.join(PHASE_UNITS)})")
    if scaling.units == "rad" and scaling.offset == 0:
        data = arr.astype(np.float32)
        if lo >= -np.pi and hi < np.pi and values.size == data.size - np.count_nonzero(data == 0):
            return data, scaling  # already wrapped to [-pi, pi)
    else:
        data = ((arr.astype(np.float64) - scaling.offset) * scaling.rad_per_unit).astype(np.float32)
    return wrap_to_pi(data), scaling


def phase_to_radians(
    phase: np.ndarray, units: str = "auto", *, source: str | os.PathLike | None = None
) -> np.ndarray:
    """Return the phase in radians, wrapped to ``[-pi, pi)``, as float32 (see :func:`interpret_phase`).

    Raw integers are scaled by ``2 pi / 2^n`` for the power-of-two range the data span (a 12-bit
    -4096..4095 range gives ``pi / 4096``), so that a raw file and its radian twin give the same phase.
    """
    return interpret_phase(phase, units, source=source)[0]


def wrap_to_pi(phase_rad: np.ndarray) -> np.ndarray:
    """Wrap radians into ``[-pi, pi)``."""
    return ((phase_rad + np.pi) % (2 * np.pi) - np.pi).astype(phase_rad.dtype, copy=False)

