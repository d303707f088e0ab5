"""Reference ROIs of normal-appearing tissue around each lesion (Bian et al., AJNR 2016).

The paper measures each lesion against normal-appearing parenchyma drawn on the lesion's single
central slice: a donut-shaped ring of white matter (WM) around a WM lesion, a strip of cortex
continuous with both sides of a cortical lesion, one of each for a mixed lesion; the reference
lies within 10 pixels of the lesion and is separated from it by a small gap to limit partial
volume effects. :func:`build_references` draws these rules reproducibly, with physical (mm)
distances, in the style of :func:`skimage.segmentation.expand_labels`.

Defaults (paper: 0.47 mm in-plane pixels, "a small gap", "within a 10-pixel vicinity"):

===================  ==========  ==============================  ===========================
parameter            default     at 0.47 mm pixels               meaning
===================  ==========  ==============================  ===========================
``gap_mm``           1.0 mm      2 px (0.47 and 0.94 mm out)     lesion-to-reference gap
``ring_mm``          3.7 mm      ~8 px (1.41 .. 4.7 mm)          width beyond the gap
``max_distance_px``  10 px       4.7 mm                          hard outer limit, in pixels
``min_voxels``       10 voxels   --                              fewer: ``reference_too_small``
===================  ==========  ==============================  ===========================
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..errors import ParameterError
from ..io.layout import TISSUE_CORTEX, TISSUE_WM
from ..progress import ProgressCallback, report
from .lesions import check_lesions, check_slice_axis, check_voxel_size, class_mapping
from .rules import central_slice, reference_class, suggest_class

#: Gap between lesion and reference (mm): 2 pixels at the paper's 0.47 mm.
DEFAULT_GAP_MM = 1.0
#: Width of the reference beyond the gap (mm): gap + ring = 4.7 mm = 10 pixels of 0.47 mm.
DEFAULT_RING_MM = 3.7
#: Outer limit in in-plane pixels (the paper's "10-pixel vicinity").
DEFAULT_MAX_DISTANCE_PX = 10
#: References with fewer voxels are flagged ``reference_too_small`` for manual editing.
DEFAULT_MIN_VOXELS = 10
#: In-plane pixel size of the paper's T2* images (mm), for stating defaults in pixels.
PAPER_PIXEL_MM = 0.47

#: Which reference kinds each lesion class gets: (kind, tissue code); ``wm`` goes to ``refwm``,
#: ``cortical`` to ``refgm`` (the map of :data:`napari_qsm_ms.roi.rules.REFERENCE_PARTS`).
_PARTS = {"wm": (("wm", TISSUE_WM),), "cortical": (("cortical", TISSUE_CORTEX),),
          "mixed": (("wm", TISSUE_WM), ("cortical", TISSUE_CORTEX))}

TABLE_COLUMNS = ["lesion_id", "class", "part", "slices", "voxels", "flags"]

_STRUCTURE_8 = np.ones((3, 3), dtype=bool)


class ReferenceResult(NamedTuple):
    """Output of :func:`build_references`.

    Attributes
    ----------
    refwm : ndarray of int32
        NAWM references; the reference of lesion ``k`` has value ``k``.
    refgm : ndarray of int32
        Normal-appearing cortex references; value ``k`` for lesion ``k``.
    table : pandas.DataFrame
        One row per lesion and reference part: ``lesion_id, class, part (wm | cortical | none),
        slices (e.g. "45" or "43-47"), voxels, flags`` (``;``-joined: ``reference_too_small``,
        ``reference_empty``, ``no_reference_for_class_<c>``).
    """

    refwm: np.ndarray
    refgm: np.ndarray
    table: pd.DataFrame


def build_references(
    lesions: np.ndarray,
    tissue: np.ndarray,
    voxel_size_mm,
    *,
    lesion_classes=None,
    gap_mm: float = DEFAULT_GAP_MM,
    ring_mm: float = DEFAULT_RING_MM,
    max_distance_px: float = DEFAULT_MAX_DISTANCE_PX,
    slice_axis: int = 2,
    all_slices: bool = False,
    min_voxels: int = DEFAULT_MIN_VOXELS,
    exclude: np.ndarray | None = None,
    gap_3d: bool = False,
    only_ids=None,
    increasing_superior: bool = True,
    progress: ProgressCallback | None = None,
) -> ReferenceResult:
    """Reference ROIs of normal-appearing WM and cortex for every lesion.

    For a lesion ``k`` on slice ``s`` (its central slice, or each of its slices with
    ``all_slices``), with in-plane distance ``d_k`` (mm, from the lesion's voxels on that slice),
    a pixel of slice ``s`` belongs to the reference of kind T (WM: tissue 3, cortex: tissue 2)
    when all of these hold:

    1. ``gap_mm < d_k <= gap_mm + ring_mm`` and ``d_k`` in pixels ``<= max_distance_px``;
    2. its tissue is T;
    3. it is not on any lesion nor within ``gap_mm`` (in-plane) of any lesion voxel on slice ``s``,
       nor one of the 8 in-plane neighbours of a lesion voxel (at least one whole pixel separates
       lesion and reference in every in-plane direction, whatever the pixel size: at 1 mm pixels
       the 1.0 mm default alone would let the reference touch the lesion diagonally), and not in
       ``exclude`` (e.g. vessels);
    4. it is connected (8-connectivity, in-plane) to lesion ``k`` through tissue T within the
       distance limit: tissue across a sulcus or beyond a CSF space is not "continuous with the
       lesion". For a cortical lesion cutting the cortical ribbon this keeps the two flanks;
    5. lesion ``k`` is its nearest lesion among the lesions that need a reference of kind T
       (competition between neighbours; an exact tie goes to the smaller lesion id), so
       references of different lesions never overlap.

    WM lesions get a WM ring (``refwm``), cortical lesions a cortical strip (``refgm``), mixed
    lesions one of each.

    Parameters
    ----------
    lesions : ndarray of int, 3-D
        Lesion ids, 0 = background.
    tissue : ndarray of int, 3-D
        Tissue classes on the same grid: 0 outside, 1 CSF, 2 cortex, 3 WM, 4 deep GM.
    voxel_size_mm : sequence of 3 float
        Voxel size (mm) along the array axes; in-plane distances use the two axes other than
        ``slice_axis``.
    lesion_classes : mapping, Series or DataFrame, optional
        ``{lesion_id: class}`` or a table with ``lesion_id`` and ``class``: consensus classes,
        plus ``excluded`` for lesions excluded in the annotation. The class policy is
        :func:`~napari_qsm_ms.roi.rules.reference_class`: ``wm``/``cortical``/``mixed`` as given;
        missing, empty or ``disputed``: the class suggested by the cortex fraction; ``rejected``,
        ``not_lesion`` and ``excluded``: no reference, but their voxels and gap stay excluded.
    gap_mm : float
        Gap between lesion and reference (mm, >= 0). Default 1.0 mm = 2 px of 0.47 mm.
    ring_mm : float
        Width of the reference beyond the gap (mm, > 0). Default 3.7 mm.
    max_distance_px : float
        Outer limit from the lesion, in in-plane pixels (> 0). Default 10 (the paper).
    slice_axis : int
        Array axis across slices (the axial axis on which lesions were drawn).
    all_slices : bool
        Build references on every slice of the lesion instead of its central slice only.
    min_voxels : int
        References with fewer voxels are flagged ``reference_too_small``.
    exclude : ndarray of bool, optional
        Voxels never used as reference (vessels, artefacts).
    gap_3d : bool
        Also keep the gap through-plane: leave out voxels within ``gap_mm`` (3-D, physical
        spacing) of lesion voxels on the neighbouring slices. Default False (the paper's
        single-slice rule).
    only_ids : iterable of int, optional
        Build references for these lesions only (all lesions still exclude their voxels and gap
        and still compete for tissue). Default: every lesion.
    progress : callable, optional
        ``progress(fraction, message)``; may raise ``CancelledError``.

    Returns
    -------
    ReferenceResult
        ``(refwm, refgm, table)``, int32 arrays of the input shape.

    Notes
    -----
    The central slice is the rule of :mod:`napari_qsm_ms.roi.rules` (most lesion voxels, ties to
    the middle of the lesion, then to the inferior slice; ``increasing_superior``).
    Distances are Euclidean in mm
    with the slice's pixel spacing (``scipy.ndimage.distance_transform_edt(sampling=...)``),
    measured between pixel centres; the pixel limit uses unit spacing. Each lesion is processed
    on a crop around its bounding box wide enough (twice the reach plus the gap) for every
    distance, gap zone and nearest-lesion decision to be exact, so the cost grows with the number
    of lesions, not with the volume. Gaps and competition are in-plane, like the paper's
    single-slice drawing: a lesion on the next slice only does not push the reference away.

    References
    ----------
    .. [1] Bian W, Tranvinh E, Tourdias T, et al. In vivo 7T MR quantitative susceptibility
       mapping reveals opposite susceptibility contrast between cortical and white matter
       lesions in multiple sclerosis. AJNR 2016;37:1808-1815. doi:10.3174/ajnr.A4830
    .. [2] scikit-image ``skimage.segmentation.expand_labels`` (the model for this function).

    Examples
    --------
    A one-voxel WM lesion in WM with 1 mm pixels: the gap leaves out the 8 neighbours (the 1 mm
    gap the edge neighbours, the one-pixel rule the diagonal ones), a 1.3 mm ring keeps the pixels
    at 2 and sqrt(5) mm.

    >>> les = np.zeros((9, 9, 1), int); les[4, 4, 0] = 1
    >>> tis = np.full(les.shape, 3, np.uint8)
    >>> res = build_references(les, tis, (1, 1, 1), gap_mm=1.0, ring_mm=1.3, min_voxels=1)
    >>> print((res.refwm[:, :, 0] > 0).astype(int)[2:7, 2:7])
    [[0 1 1 1 0]
     [1 0 0 0 1]
     [1 0 0 0 1]
     [1 0 0 0 1]
     [0 1 1 1 0]]
    >>> res.table[["lesion_id", "class", "part", "voxels"]].values.tolist()
    [[1, 'wm', 'wm', 12]]
    """
    les = check_lesions(lesions)
    vs = check_voxel_size(voxel_size_mm)
    axis = check_slice_axis(slice_axis)
    tis = np.asarray(tissue)
    if tis.shape != les.shape:
        raise ParameterError(f"tissue shape {tis.shape} differs from lesions shape {les.shape}")
    excl = None
    if exclude is not None:
        excl = np.asarray(exclude).astype(bool, copy=False)
        if excl.shape != les.shape:
            raise ParameterError(f"exclude mask shape {excl.shape} differs from lesions shape {les.shape}")
    gap_mm, ring_mm, max_distance_px, min_voxels = check_reference_parameters(
        gap_mm, ring_mm, max_distance_px, min_voxels
    )

    # work with the slice axis last: [row, col, slice]
    les_m = np.moveaxis(les, axis, -1)
    tis_m = np.moveaxis(tis, axis, -1)
    excl_m = None if excl is None else np.moveaxis(excl, axis, -1)
    refwm = np.zeros(les.shape, dtype=np.int32)
    refgm = np.zeros(les.shape, dtype=np.int32)
    out_m = {"wm": np.moveaxis(refwm, axis, -1), "cortical": np.moveaxis(refgm, axis, -1)}
    px = np.array([vs[a] for a in range(3) if a != axis])
    thickness = float(vs[axis])

    objects = ndi.find_objects(les_m)
    present = [k for k, sl in enumerate(objects, start=1) if sl is not None]
    given = class_mapping(lesion_classes)
    classes = _resolve_classes(les_m, tis_m, objects, given)
    needers = {
        "wm": np.array([k for k in present if classes[k] in ("wm", "mixed")], dtype=np.int64),
        "cortical": np.array([k for k in present if classes[k] in ("cortical", "mixed")], dtype=np.int64),
    }
    targets = present if only_ids is None else [k for k in sorted({int(i) for i in only_ids}) if k in classes]

    # crop margin (px per in-plane axis): twice the reach, plus the gap, plus one for safety
    reach_mm = min(gap_mm + ring_mm, max_distance_px * float(px.max()))
    margin = [2 * math.ceil(reach_mm / p) + math.ceil(gap_mm / p) + 2 for p in px]

    rows = []
    for n_done, k in enumerate(targets):
        report(progress, n_done / max(len(targets), 1), f"references of lesion {k}")
        cls = classes[k]
        sl = objects[k - 1]
        counts = (les_m[sl] == k).sum(axis=(0, 1))
        if all_slices:
            slices = [sl[2].start + i for i in np.flatnonzero(counts)]
        else:
            slices = [central_slice(counts, sl[2].start, increasing_superior=increasing_superior)]
        slice_text = str(slices[0]) if len(slices) == 1 else f"{slices[0]}-{slices[-1]}"
        if cls is None:
            why = given.get(k, "")
            rows.append((k, why, "none", slice_text, 0, f"no_reference_for_class_{why}"))
            continue
        crop = tuple(
            slice(max(sl[a].start - margin[a], 0), min(sl[a].stop + margin[a], les_m.shape[a]))
            for a in range(2)
        )
        n_vox = {part: 0 for part, _ in _PARTS[cls]}
        for s in slices:
            lab = les_m[crop[0], crop[1], s]
            tis2 = tis_m[crop[0], crop[1], s]
            ex2 = None if excl_m is None else excl_m[crop[0], crop[1], s]
            if gap_3d:
                near = _near_lesions_on_other_slices(les_m, crop, s, px, thickness, gap_mm)
                ex2 = near if ex2 is None else (ex2 | near)
            masks = _slice_references(
                lab, tis2, ex2, k, [(part, code, needers[part]) for part, code in _PARTS[cls]],
                px, gap_mm, ring_mm, max_distance_px,
            )
            for part, ref in masks.items():
                target = out_m[part][crop[0], crop[1], s]
                ref &= target == 0
                target[ref] = k
                n_vox[part] += int(ref.sum())
        for part, _ in _PARTS[cls]:
            flags = []
            if n_vox[part] < min_voxels:
                flags.append("reference_too_small")
            if n_vox[part] == 0:
                flags.append("reference_empty")
            rows.append((k, cls, part, slice_text, n_vox[part], ";".join(flags)))
    report(progress, 1.0, "references done")
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table = table.astype({"lesion_id": "int64", "voxels": "int64"})
    return ReferenceResult(refwm, refgm, table)


def check_reference_parameters(
    gap_mm, ring_mm, max_distance_px, min_voxels
) -> tuple[float, float, float, int]:
    """Validate the reference parameters; a :class:`ParameterError` names the bad one."""
    gap_mm, ring_mm, max_distance_px = float(gap_mm), float(ring_mm), float(max_distance_px)
    if not math.isfinite(gap_mm) or gap_mm < 0:
        raise ParameterError(f"gap_mm must be >= 0 mm, got {gap_mm}")
    if not math.isfinite(ring_mm) or ring_mm <= 0:
        raise ParameterError(f"ring_mm must be > 0 mm, got {ring_mm}")
    if not math.isfinite(max_distance_px) or max_distance_px <= 0:
        raise ParameterError(f"max_distance_px must be > 0 pixels, got {max_distance_px}")
    if int(min_voxels) != min_voxels or min_voxels < 0:
        raise ParameterError(f"min_voxels must be a whole number >= 0, got {min_voxels}")
    return gap_mm, ring_mm, max_distance_px, int(min_voxels)


def _resolve_classes(les_m, tis_m, objects, given: dict[int, str]) -> dict[int, str | None]:
    """Reference class of every present lesion (:func:`~napari_qsm_ms.roi.rules.reference_class`;
    None: no reference). ``given`` may say ``excluded`` (an annotation exclusion)."""
    classes = {}
    for k, sl in enumerate(objects, start=1):
        if sl is None:
            continue
        t = tis_m[sl][les_m[sl] == k]
        n_ctx, n_wm = int((t == TISSUE_CORTEX).sum()), int((t == TISSUE_WM).sum())
        suggested = suggest_class(n_ctx / (n_ctx + n_wm) if n_ctx + n_wm else float("nan"))
        excluded = given.get(k) == "excluded"
        classes[k] = reference_class(None if excluded else given.get(k), suggested, excluded=excluded)
    return classes


def _near_lesions_on_other_slices(les_m, crop, s, px, thickness, gap_mm) -> np.ndarray:
    """Pixels of slice ``s`` within ``gap_mm`` (3-D) of a lesion voxel on another slice."""
    near = np.zeros((crop[0].stop - crop[0].start, crop[1].stop - crop[1].start), dtype=bool)
    reach = int(math.floor(gap_mm / thickness))
    for other in range(max(s - reach, 0), min(s + reach, les_m.shape[2] - 1) + 1):
        dz = abs(other - s) * thickness
        if other == s or dz > gap_mm:
            continue
        lab = les_m[crop[0], crop[1], other]
        if lab.any():
            d = ndi.distance_transform_edt(lab == 0, sampling=px)
            near |= d * d + dz * dz <= gap_mm * gap_mm
    return near


def _slice_references(
    lab: np.ndarray,
    tis2: np.ndarray,
    ex2: np.ndarray | None,
    k: int,
    parts: list[tuple[str, int, np.ndarray]],
    px: np.ndarray,
    gap_mm: float,
    ring_mm: float,
    max_distance_px: float,
) -> dict[str, np.ndarray]:
    """The reference masks of lesion ``k`` on one cropped slice (see :func:`build_references`)."""
    lesion = lab == k
    d_mm = ndi.distance_transform_edt(~lesion, sampling=px)
    if np.allclose(px, px[0]):
        d_px = d_mm / px[0]
    else:
        d_px = ndi.distance_transform_edt(~lesion)
    within = d_px <= max_distance_px * (1 + 1e-6)
    any_lesion = lab > 0
    # outside every gap zone: farther than gap_mm AND not 8-adjacent to a lesion pixel
    free = ndi.distance_transform_edt(~any_lesion, sampling=px) > gap_mm
    free &= ~ndi.binary_dilation(any_lesion, structure=_STRUCTURE_8)
    band = free & (d_mm <= (gap_mm + ring_mm) * (1 + 1e-6)) & within
    if ex2 is not None:
        band &= ~ex2
    out = {}
    for part, code, needing in parts:
        on_tissue = tis2 == code
        # continuity with the lesion through tissue of this kind, within the distance limit
        comp, _ = ndi.label((on_tissue | lesion) & within, structure=_STRUCTURE_8)
        touching = np.unique(comp[lesion])
        connected = np.isin(comp, touching[touching > 0])
        ref = band & on_tissue & connected
        if ref.any():
            others = np.isin(lab, needing) & ~lesion
            if others.any():
                # nearest lesion wins; an exact tie (to rounding) goes to the smaller id
                d_other, idx = ndi.distance_transform_edt(~others, sampling=px, return_indices=True)
                tol = 1e-6 * float(px.max())
                ref &= (d_mm < d_other - tol) | ((np.abs(d_mm - d_other) <= tol) & (k < lab[idx[0], idx[1]]))
        out[part] = ref
    return out


def reference_parameter_record(
    *, gap_mm=DEFAULT_GAP_MM, ring_mm=DEFAULT_RING_MM, max_distance_px=DEFAULT_MAX_DISTANCE_PX,
    slice_axis=2, all_slices=False, min_voxels=DEFAULT_MIN_VOXELS, gap_3d=False,
) -> dict:
    """The parameters as a JSON-ready dict (recorded in the annotation JSON)."""
    return {
        "gap_mm": float(gap_mm), "ring_mm": float(ring_mm), "max_distance_px": float(max_distance_px),
        "slice_axis": int(slice_axis), "all_slices": bool(all_slices), "min_voxels": int(min_voxels),
        "gap_3d": bool(gap_3d),
    }


__all__ = [
    "DEFAULT_GAP_MM",
    "DEFAULT_MAX_DISTANCE_PX",
    "DEFAULT_MIN_VOXELS",
    "DEFAULT_RING_MM",
    "PAPER_PIXEL_MM",
    "ReferenceResult",
    "build_references",
    "check_reference_parameters",
    "reference_parameter_record",
]


def reference_exclusion(vessels: np.ndarray | None = None, brain_mask: np.ndarray | None = None) -> np.ndarray | None:
    """Voxels no reference may use: vessel candidates and voxels outside the QSM brain mask.

    Parameters
    ----------
    vessels : ndarray of bool or int, optional
        Vessel voxels (non-zero) to keep out.
    brain_mask : ndarray of bool or int, optional
        The mask QSM was computed in (after erosion); chi is undefined outside it.

    Returns
    -------
    ndarray of bool or None
        ``None`` when there is nothing to exclude.
    """
    exclude = None if vessels is None else np.asarray(vessels) > 0
    if brain_mask is not None:
        outside = np.asarray(brain_mask) == 0
        exclude = outside if exclude is None else (exclude | outside)
    return exclude
