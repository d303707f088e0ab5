"""The pure part of signing a rater in: read the contrasts, tissue and candidates, open the session.

No Qt and no viewer: :func:`prepare_sign_in` runs in a worker thread of the "Rate lesions" dock
(:mod:`napari_qsm_ms._widgets.rating`), which then builds the blinded view on the Qt thread. Layers
the user has already loaded are passed in as :class:`LayerInput` so nothing is read twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..display import robust_range
from ..errors import QSMMSError
from ..io.layout import SubjectFiles
from ..io.nifti import load_volume, to_canonical
from ..progress import ProgressCallback, report
from .proposals import proposals_path
from .session import RaterSession, candidates_from_labels
from .votes import check_rater

#: Contrasts shown to a rater (role, title), in grid order.
RATER_CONTRASTS: tuple[tuple[str, str], ...] = (
    ("magnitude", "T2* magnitude"),
    ("wmn", "WM-nulled MPRAGE"),
    ("csfn", "CSF-nulled MPRAGE"),
    ("flair", "FLAIR"),
)


def _canonical_file(path, *, labels: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Canonical data and canonical affine of a file, or None if missing."""
    if path is None or not path.exists():
        return None
    vol = load_volume(path, dtype=None if labels else np.float32)
    data, view = to_canonical(np.asarray(vol.data), vol.affine)
    return data, view.canonical_affine


def _geometry(affine: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    scale = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    return scale, tuple(float(t) for t in affine[:3, 3])


@dataclass(frozen=True)
class LayerInput:
    """What sign-in takes from a loaded layer (collected on the Qt thread, read in the worker)."""

    data: np.ndarray
    contrast_limits: tuple[float, float] | None = None
    on_reference_grid: bool = True
    scale: tuple[float, ...] | None = None
    translate: tuple[float, ...] | None = None


@dataclass(frozen=True)
class SignInData:
    """Everything rater mode needs, prepared off the Qt thread by :func:`prepare_sign_in`.

    ``contrasts`` are ``(role, title, data, contrast_limits)`` in :data:`RATER_CONTRASTS` order;
    ``boundary`` is the binary WM-class mask of the tissue map (or None); ``candidate_mask`` the
    (empty) binary array the candidate layers show; ``geometry`` ``(scale, translate)``.
    """

    subject: SubjectFiles
    session: RaterSession
    contrasts: list
    boundary: np.ndarray | None
    candidate_mask: np.ndarray
    geometry: tuple[tuple[float, ...], tuple[float, ...]]


def prepare_sign_in(
    subject: SubjectFiles,
    rater: str,
    layers: dict[str, LayerInput] | None = None,
    progress: ProgressCallback | None = None,
) -> SignInData:
    """The slow, pure part of signing in (no Qt, no viewer; runs in a worker thread).

    Reads what is not loaded as a layer (contrasts on the T2* grid, tissue, drawn lesions,
    proposals), computes display limits and the grey/white boundary, finds the candidates and opens
    the rater's session (own votes file, shuffled order).

    Parameters
    ----------
    subject : SubjectFiles
    rater : str
    layers : dict, optional
        ``{role: LayerInput}`` of the subject's loaded layers (``magnitude``, ``wmn``, ``csfn``,
        ``flair``, ``tissue``, ``lesions``); files are read for the others.
    progress : callable, optional

    Raises
    ------
    QSMMSError
        No T2* magnitude, none of the contrasts, or no candidates.
    """
    layers = dict(layers or {})
    rater = check_rater(rater)
    report(progress, 0.0, "reading the T2* magnitude")
    ref = layers.get("magnitude")
    if ref is not None and ref.scale is not None:
        shape = tuple(ref.data.shape[-3:])
        geometry = (tuple(ref.scale[-3:]), tuple(ref.translate[-3:]))
    else:
        loaded = _canonical_file(subject.magnitude, labels=False)
        if loaded is None:
            raise QSMMSError(f"{subject.magnitude}: T2* magnitude not found")
        shape = loaded[0].shape[:3]
        geometry = _geometry(loaded[1])
        if ref is None:
            layers["magnitude"] = LayerInput(loaded[0])
    contrasts = []
    for k, (role, title) in enumerate(RATER_CONTRASTS):
        report(progress, 0.05 + 0.6 * k / len(RATER_CONTRASTS), f"reading {title}")
        layer = layers.get(role)
        data = limits = None
        if layer is not None and layer.on_reference_grid:
            data, limits = layer.data, layer.contrast_limits
        else:
            path = subject.magnitude if role == "magnitude" else subject.coreg_series(role)
            loaded = _canonical_file(path, labels=False)
            if loaded is not None:
                data = loaded[0]
        if data is None or data.shape[-3:] != shape:
            continue
        if limits is None:
            limits = robust_range(data) if np.isfinite(data).any() else (0.0, 1.0)
        contrasts.append((role, title, data, tuple(float(v) for v in limits)))
    if not contrasts:
        raise QSMMSError(f"{subject.sub}: none of {', '.join(t for _, t in RATER_CONTRASTS)} found")
    report(progress, 0.65, "reading the tissue map")
    tissue = layers["tissue"].data if "tissue" in layers else None
    if tissue is None:
        loaded = _canonical_file(subject.tissue, labels=True)
        tissue = loaded[0] if loaded is not None else None
    boundary = None
    if tissue is not None and tuple(tissue.shape) == shape:
        boundary = (np.asarray(tissue) == 3).astype(np.uint8)
    report(progress, 0.75, "reading the lesion candidates")
    labels: dict[str, np.ndarray] = {}
    drawn = layers["lesions"].data if "lesions" in layers else None
    if drawn is None:
        loaded = _canonical_file(subject.lesions, labels=True)
        drawn = loaded[0] if loaded is not None else None
    if drawn is not None and tuple(drawn.shape) == shape:
        labels["drawn"] = np.asarray(drawn).astype(np.int32, copy=False)
    loaded = _canonical_file(proposals_path(subject), labels=True)
    if loaded is not None and loaded[0].shape == shape:
        labels["proposed"] = loaded[0].astype(np.int32, copy=False)
    candidates = []
    for source, arr in labels.items():
        candidates += candidates_from_labels(arr, source)
    if not candidates:
        raise QSMMSError(f"{subject.lesions}: no lesion candidates (draw lesions or propose candidates first)")
    report(progress, 0.9, "reading your votes")
    session = RaterSession(subject, rater, candidates, labels=labels)
    report(progress, 1.0, "building the rater view")
    return SignInData(subject, session, contrasts, boundary, np.zeros(shape, dtype=np.uint8), geometry)
