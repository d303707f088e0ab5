"""BIDS JSON sidecars: EchoTime (s) and MagneticFieldStrength (T), checked for sense."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputFileError, ParameterError

B0_RANGE_T = (0.5, 14.0)
TE_RANGE_S = (1e-4, 0.2)


@dataclass(frozen=True)
class AcquisitionParams:
    """What QSM needs from the acquisition.

    Attributes
    ----------
    echo_times_s : tuple of float
        Echo time(s) in seconds (one per echo).
    b0_t : float
        Main field strength in tesla.
    """

    echo_times_s: tuple[float, ...]
    b0_t: float

    @property
    def te_s(self) -> float:
        """The (first) echo time in seconds."""
        return self.echo_times_s[0]


def sidecar_path(nifti_path: str | os.PathLike) -> Path:
    """``x.nii.gz`` -> ``x.json``."""
    from .nifti import strip_nifti_suffix

    p = Path(nifti_path)
    return p.with_name(strip_nifti_suffix(p.name) + ".json")


def read_sidecar(path: str | os.PathLike) -> dict:
    """Read a JSON sidecar; raise :class:`InputFileError` naming the file if unreadable."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(p, "sidecar not found")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(p, f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise InputFileError(p, "sidecar must be a JSON object")
    return obj


def check_te_s(te_s: float, source: str | os.PathLike | None = None, name: str = "EchoTime") -> float:
    """Check an echo time in seconds; milliseconds by mistake give a clear error. ``name`` is what
    the value is called where it came from (a sidecar's ``EchoTime``, an option's ``--te``)."""
    try:
        te = float(te_s)
    except (TypeError, ValueError):
        _raise(source, f"{name} {te_s!r} is not a number")
    if not te > 0:
        _raise(source, f"{name} {te} s must be > 0")
    if te > TE_RANGE_S[1]:
        hint = f" (milliseconds given? {name} is in seconds)" if te < 200 else ""
        _raise(source, f"{name} {te} s is implausible, expected {TE_RANGE_S[0]}-{TE_RANGE_S[1]} s{hint}")
    if te < TE_RANGE_S[0]:
        _raise(source, f"{name} {te} s is implausible, expected {TE_RANGE_S[0]}-{TE_RANGE_S[1]} s")
    return te


def check_b0_t(b0_t: float, source: str | os.PathLike | None = None,
               name: str = "MagneticFieldStrength") -> float:
    """Check a field strength in tesla (0.5-14 T); ``name`` as in :func:`check_te_s`."""
    try:
        b0 = float(b0_t)
    except (TypeError, ValueError):
        _raise(source, f"{name} {b0_t!r} is not a number")
    if not (B0_RANGE_T[0] <= b0 <= B0_RANGE_T[1]):
        _raise(source, f"{name} {b0} T is outside {B0_RANGE_T[0]:g}-{B0_RANGE_T[1]:g} T")
    return b0


def acquisition_from_sidecar(path: str | os.PathLike) -> AcquisitionParams:
    """EchoTime (s, a number or a list for multi-echo) and MagneticFieldStrength (T) from a sidecar."""
    p = Path(path)
    meta = read_sidecar(p)
    if "EchoTime" not in meta:
        raise InputFileError(p, "sidecar has no EchoTime (seconds)")
    if "MagneticFieldStrength" not in meta:
        raise InputFileError(p, "sidecar has no MagneticFieldStrength (tesla)")
    raw_te = meta["EchoTime"]
    tes = raw_te if isinstance(raw_te, list) else [raw_te]
    if not tes:
        raise InputFileError(p, "EchoTime list is empty")
    return AcquisitionParams(
        echo_times_s=tuple(check_te_s(t, p) for t in tes),
        b0_t=check_b0_t(meta["MagneticFieldStrength"], p),
    )


def _raise(source, problem: str):
    if source is None:
        raise ParameterError(problem)
    raise InputFileError(source, problem)
