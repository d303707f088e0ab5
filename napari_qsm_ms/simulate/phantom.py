"""A numerical 7 T head phantom with MS lesions (synthetic or MNI anatomy, any grid and voxel size).

:func:`make_phantom` assembles the parts: the anatomy (:mod:`.head_model`, or real anatomy from
:mod:`.mni`), the lesions (:mod:`.lesion_placement`), then samples susceptibility and contrasts on
the grid. The names of those modules stay importable from here.

Susceptibility (ppm) is relative to CSF. Normal tissue varies smoothly (a few 1e-3 ppm over tens
of mm). The whole of a cortical lesion takes the NAGM value plus its designed offset (also its few
WM voxels), so "mean chi in the lesion minus mean chi of the adjacent cortex" is the designed
offset; likewise for WM lesions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..progress import ProgressCallback, report
from .head_model import (  # noqa: F401 - public names of the phantom, re-exported
    AIR,
    CAUDATE,
    CAVITY,
    CHI_AIR_MINUS_WATER_PPM,
    CHI_PPM,
    CHI_SKULL_PPM,
    CONVENTIONAL,
    CORTEX,
    CSF,
    INTENSITY_SCALE,
    LESION_CONVENTIONAL,
    LESION_PD_GAIN,
    LESION_R2S_DROP,
    PALLIDUM,
    PUTAMEN,
    REGION_TISSUE,
    SCALP,
    SKULL,
    T2STAR,
    THALAMUS,
    VEIN_R2S,
    VENTRICLE,
    WM,
    HeadModel,
    Lesion,
    Vein,
    build_head_model,
    head_shell_regions,
    make_veins,
    tissue_variation_waves,
)
from .lesion_placement import (  # noqa: F401 - public names of the phantom, re-exported
    CORTICAL_MIN_FRACTION,
    LESION_CLASSES,
    MIN_LESION_EXTENT_MM,
    MIXED_FRACTION_RANGE,
    TABLE3_PPM,
    lesion_table,
    place_lesions,
)
from .mni import DEFAULT_CENTER_MNI_MM, build_mni_head_model

ANATOMIES = ("synthetic", "mni")

@dataclass
class Phantom:
    """A phantom sampled on one grid (the T2* grid of a simulated subject).

    Attributes
    ----------
    chi_ppm : ndarray, float32
        Susceptibility relative to CSF (ppm) inside the brain, 0 outside.
    chi_background_ppm : ndarray, float32
        Sources outside the brain, relative to air: everything in the head is -9.4 ppm (tissue
        relative to air), the skull a further -1.5 ppm, air cavities 0. The total field is the
        field of ``chi_ppm + chi_background_ppm``.
    tissue : ndarray, uint8
        0 outside the brain, 1 CSF, 2 cortex, 3 WM, 4 deep GM (veins and lesions keep their host).
    brain_mask, head_mask, vessels : ndarray, bool
    lesion_ids : ndarray, int32
        0 none, 1..N.
    lesion_table : pandas.DataFrame
        lesion_id, class, designed_delta_wm_ppm, designed_delta_cortical_ppm (NaN where the
        lesion has no such part), center_vox (tuple), center_mm (head frame), semi_axes_mm,
        voxels, cortex_fraction, extent_mm (smaller of the two in-plane extents).
    region : ndarray, uint8
        Fine region codes of the model (see module constants).
    t1_wmn, t1_csfn, flair, t2star_magnitude : ndarray, float32
        Noise-free contrasts on the same grid (T2* magnitude at the echo time ``te_s``).
    voxel_size_mm : tuple of 3 float
    affine : ndarray (4, 4)
        Voxel to world (scanner RAS+, mm); the oblique tilt is in it.
    head_to_world : ndarray (4, 4)
        Head-frame mm to world mm.
    model : HeadModel
    oblique_deg, te_s : float
    head_chi_ppm : float
        Uniform susceptibility of the head ellipsoid relative to air (-9.4 ppm) inside
        ``chi_background_ppm``; the forward model treats it analytically.
    """

    chi_ppm: np.ndarray
    chi_background_ppm: np.ndarray
    tissue: np.ndarray
    brain_mask: np.ndarray
    head_mask: np.ndarray
    lesion_ids: np.ndarray
    lesion_table: pd.DataFrame
    vessels: np.ndarray
    region: np.ndarray
    t1_wmn: np.ndarray
    t1_csfn: np.ndarray
    flair: np.ndarray
    t2star_magnitude: np.ndarray
    voxel_size_mm: tuple
    affine: np.ndarray
    head_to_world: np.ndarray
    model: HeadModel
    oblique_deg: float = 0.0
    te_s: float = 0.0177
    head_chi_ppm: float = -CHI_AIR_MINUS_WATER_PPM

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.chi_ppm.shape)


# --- construction -------------------------------------------------------------------------------


def rotation_x(deg: float) -> np.ndarray:
    """Rotation matrix about the first (left-right) axis by ``deg`` degrees."""
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def grid_geometry(shape, voxel_size_mm, oblique_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Affine (voxel -> world) and head-to-world transform of a grid centred on the head.

    The head frame is aligned with the array axes (x = axis 0, left to right; y = axis 1,
    posterior to anterior; z = axis 2, inferior to superior), its origin at the grid centre. The
    head is tilted in the scanner by ``oblique_deg`` about the left-right axis, so the slab (aligned
    with the head) is oblique and B0 has an in-plane component along the array's axis 1.
    """
    vs = np.asarray(voxel_size_mm, dtype=float)
    center_idx = (np.asarray(shape, dtype=float) - 1.0) / 2.0
    head_to_world = np.eye(4)
    head_to_world[:3, :3] = rotation_x(oblique_deg)
    idx_to_head = np.eye(4)
    idx_to_head[:3, :3] = np.diag(vs)
    idx_to_head[:3, 3] = -vs * center_idx
    return head_to_world @ idx_to_head, head_to_world


def head_coordinates(shape, voxel_size_mm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full (not broadcast) head-frame coordinates (mm, float32) of every voxel."""
    vs = np.asarray(voxel_size_mm, dtype=float)
    axes = [((np.arange(n) - (n - 1) / 2.0) * v).astype(np.float32) for n, v in zip(shape, vs)]
    return tuple(np.meshgrid(*axes, indexing="ij", sparse=False))


def validate_geometry(
    shape, voxel_size_mm, n_lesions=(0, 0, 0), oblique_deg: float = 0.0
) -> tuple[tuple, np.ndarray, tuple]:
    """Check grid, voxel size, lesion counts and tilt; return them normalised or raise ParameterError."""
    if not np.isfinite(oblique_deg) or abs(oblique_deg) > 45:
        raise ParameterError(f"oblique angle must be within +-45 degrees, got {oblique_deg}")
    try:
        shape = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise ParameterError(f"shape must be 3 integers, got {shape!r}") from None
    if len(shape) != 3 or min(shape) < 16 or max(shape) > 1024:
        raise ParameterError(f"shape must be 3 integers between 16 and 1024, got {shape}")
    vs = np.asarray(voxel_size_mm, dtype=float)
    if vs.shape != (3,) or not np.all(np.isfinite(vs)) or not np.all(vs > 0) or vs.max() > 5.0:
        raise ParameterError(f"voxel size must be 3 numbers in (0, 5] mm, got {tuple(voxel_size_mm)}")
    fov = np.asarray(shape) * vs
    if fov.min() < 48.0:
        raise ParameterError(
            f"field of view {tuple(np.round(fov, 1))} mm is too small for a head (need >= 48 mm)"
        )
    n = tuple(int(v) for v in n_lesions)
    if len(n) != 3 or min(n) < 0:
        raise ParameterError(
            f"n_lesions must be 3 non-negative counts (wm, cortical, mixed), got {n_lesions}"
        )
    return shape, vs, n


def tissue_from_region(region: np.ndarray) -> np.ndarray:
    """Tissue classes (layout codes) from model region codes."""
    lut = np.zeros(256, dtype=np.uint8)
    for code, tissue in REGION_TISSUE.items():
        lut[code] = tissue
    return lut[region]


def susceptibility_ppm(model: HeadModel, region, lesion_ids, vein_pv, vein_chi, x, y, z) -> np.ndarray:
    """Brain susceptibility (ppm relative to CSF) from regions, lesions and veins."""
    chi = np.zeros(region.shape, dtype=np.float32)
    for code, value in CHI_PPM.items():
        sel = region == code
        if not sel.any():
            continue
        if code in model.variation:
            chi[sel] = value + model.smooth_variation_ppm(code, x[sel], y[sel], z[sel])
        else:
            chi[sel] = value
    for les in model.lesions:
        sel = lesion_ids == les.lesion_id
        if not sel.any():
            continue
        xs, ys, zs = x[sel], y[sel], z[sel]
        host = region[sel]
        if les.lesion_class == "wm":
            chi[sel] = model.base_chi_ppm(WM, xs, ys, zs) + les.delta_wm_ppm
        elif les.lesion_class == "cortical":
            chi[sel] = model.base_chi_ppm(CORTEX, xs, ys, zs) + les.delta_cortical_ppm
        else:
            chi[sel] = np.where(
                host == WM,
                model.base_chi_ppm(WM, xs, ys, zs) + les.delta_wm_ppm,
                model.base_chi_ppm(CORTEX, xs, ys, zs) + les.delta_cortical_ppm,
            )
    chi = chi * (1.0 - vein_pv) + vein_chi * vein_pv
    chi[region < CSF] = 0.0
    return chi.astype(np.float32)


def background_chi_ppm(region: np.ndarray) -> np.ndarray:
    """Sources outside the brain relative to air (see :class:`Phantom`)."""
    chi = np.zeros(region.shape, dtype=np.float32)
    chi[region != AIR] = -CHI_AIR_MINUS_WATER_PPM
    chi[region == SKULL] += CHI_SKULL_PPM
    chi[region == CAVITY] = 0.0
    return chi


def contrasts(model: HeadModel, region, lesion_ids, vein_pv, te_s: float = 0.0177) -> dict[str, np.ndarray]:
    """Noise-free T2* magnitude at ``te_s`` and WM-nulled, CSF-nulled MPRAGE and FLAIR intensities."""
    lut = np.zeros((256, 5), dtype=np.float32)
    for code, (pd_, r2s) in T2STAR.items():
        lut[code, 0], lut[code, 1] = pd_, r2s
    for code, vals in CONVENTIONAL.items():
        lut[code, 2:] = vals
    table = lut[region]
    pdens, r2s = table[..., 0], table[..., 1]
    wmn, csfn, flair = table[..., 2], table[..., 3], table[..., 4]
    classes = {les.lesion_id: les.lesion_class for les in model.lesions}
    for lid, cls in classes.items():
        sel = lesion_ids == lid
        if not sel.any():
            continue
        pdens[sel] += LESION_PD_GAIN
        r2s[sel] -= LESION_R2S_DROP
        w, c, f = LESION_CONVENTIONAL[cls]
        wmn[sel], csfn[sel], flair[sel] = w, c, f
    r2s = r2s * (1.0 - vein_pv) + VEIN_R2S * vein_pv
    mag = pdens * np.exp(-te_s * r2s)
    return {
        "t2star_magnitude": (INTENSITY_SCALE * mag).astype(np.float32),
        "t1_wmn": (INTENSITY_SCALE * (wmn * (1.0 - 0.5 * vein_pv))).astype(np.float32),
        "t1_csfn": (INTENSITY_SCALE * (csfn * (1.0 - 0.5 * vein_pv))).astype(np.float32),
        "flair": (INTENSITY_SCALE * (flair * (1.0 - 0.5 * vein_pv))).astype(np.float32),
    }


def make_phantom(
    shape=(96, 96, 48),
    voxel_size_mm=(1.0, 1.0, 2.0),
    *,
    seed: int | np.random.SeedSequence | None = 0,
    n_lesions=(6, 3, 2),
    anatomy: str = "synthetic",
    oblique_deg: float = 0.0,
    te_s: float = 0.0177,
    mni_center_mm=None,
    progress: ProgressCallback | None = None,
) -> Phantom:
    """Build a head phantom with MS lesions on a grid.

    Parameters
    ----------
    shape : tuple of 3 int
        Matrix (voxels along the array axes: left-right, posterior-anterior, inferior-superior).
    voxel_size_mm : tuple of 3 float
        Voxel size (mm). The head is scaled to fit the field of view (at most 156 x 192 x 160 mm).
    seed : int or SeedSequence
        Seed of the anatomy details (folds, veins), lesion placement and designed deltas.
    n_lesions : tuple of 3 int
        Numbers of (WM, cortical, mixed) lesions.
    anatomy : {'synthetic', 'mni'}
        'synthetic': the analytic head, scaled to fit the field of view. 'mni': real brain
        anatomy from the MNI ICBM152 2009 templates shipped with nilearn (:mod:`.mni`), at its
        real size, the grid centred on MNI ``mni_center_mm`` (default (0, -18, 18)).
    oblique_deg : float
        Tilt of the head (and slab) about the left-right axis, degrees; written into the affine,
        so B0 along the array axes is ``(0, sin, cos)`` of this angle.
    te_s : float
        Echo time of the T2*-weighted magnitude (s).
    mni_center_mm : 3 floats, optional
        MNI coordinates of the grid centre (``anatomy='mni'`` only).
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    Phantom

    Raises
    ------
    ParameterError
        Bad geometry, or the lesions cannot be placed on this grid.
    """
    shape, vs, n_les = validate_geometry(shape, voxel_size_mm, n_lesions, oblique_deg)
    if anatomy not in ANATOMIES:
        raise ParameterError(f"unknown anatomy {anatomy!r} (use {' or '.join(ANATOMIES)})")
    rng = np.random.default_rng(seed)
    report(progress, 0.0, "anatomy")
    if anatomy == "mni":
        model = build_mni_head_model(
            vs, rng, DEFAULT_CENTER_MNI_MM if mni_center_mm is None else mni_center_mm
        )
    else:
        model = build_head_model(shape, vs, rng)
    x, y, z = head_coordinates(shape, vs)
    region, depth = model.regions(x, y, z)
    report(progress, 0.25, "veins")
    vein_pv, vein_chi = model.vein_partial_volume(x, y, z, region, float(np.mean(vs)))
    vessels = vein_pv >= 0.25
    report(progress, 0.4, "lesions")
    model.lesions = place_lesions(model, region, depth, vessels, x, y, z, vs, n_les, rng)
    del depth
    lesion_ids = model.lesion_map(x, y, z, region)
    report(progress, 0.6, "susceptibility")
    chi = susceptibility_ppm(model, region, lesion_ids, vein_pv, vein_chi, x, y, z)
    del x, y, z
    report(progress, 0.8, "contrasts")
    con = contrasts(model, region, lesion_ids, vein_pv, te_s)
    affine, head_to_world = grid_geometry(shape, vs, oblique_deg)
    tissue = tissue_from_region(region)
    phantom = Phantom(
        chi_ppm=chi,
        chi_background_ppm=background_chi_ppm(region),
        tissue=tissue,
        brain_mask=tissue > 0,
        head_mask=region != AIR,
        lesion_ids=lesion_ids,
        lesion_table=lesion_table(model, region, lesion_ids, vs),
        vessels=vessels & (tissue > 0),
        region=region,
        voxel_size_mm=tuple(float(v) for v in vs),
        affine=affine,
        head_to_world=head_to_world,
        model=model,
        oblique_deg=float(oblique_deg),
        te_s=float(te_s),
        **con,
    )
    report(progress, 1.0, "phantom done")
    return phantom
