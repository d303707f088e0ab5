"""A numerical 7 T head phantom with MS lesions (synthetic anatomy, any grid and voxel size).

The anatomy is an analytic model in millimetres (:class:`HeadModel`), so it can be sampled on
the T2* grid and on the other series' own grids alike:

* head ellipsoid: scalp (4 mm), skull (5 mm), brain; air-filled cavities (a frontal sinus and two
  ear canals) dent the brain and carry the air/tissue susceptibility step (9.4 ppm);
* a folded cortical ribbon (2.5 mm thick by default) under a thin CSF layer: the pial depth below
  the brain ellipsoid varies with a sum of four random plane waves (wavelengths 15-22 mm), so
  CSF-filled sulci up to ``fold_depth_mm`` deep alternate with gyral crowns;
* white matter beneath, with lateral ventricles, caudate, putamen, globus pallidus and thalamus;
* veins as thin paramagnetic tubes (medullary, internal cerebral and cortical veins) with partial
  volume;
* MS lesions of three classes placed with a seed: white-matter lesions entirely in WM, cortical
  lesions more than 75 % (by design 80 %) in cortex, mixed lesions 25-75 % (by design 30-70 %)
  in cortex, every lesion at least 2 mm across in-plane and away from veins and other lesions.

Susceptibility (ppm) is relative to CSF. Normal tissue varies smoothly (a few 1e-3 ppm over tens
of mm). A lesion's susceptibility is the normal-appearing tissue value at the same place plus a
designed offset drawn per lesion from the paper's Table 3 (Bian et al., AJNR 2016):
WM lesions +0.014 +/- 0.014 ppm relative to NAWM; cortical lesions -0.018 +/- 0.013 relative to
NAGM; mixed lesions +0.014 +/- 0.018 (WM part) and -0.009 +/- 0.012 (cortical part). The whole of
a cortical lesion takes the NAGM value plus its offset (also its few WM voxels), so "mean chi in
the lesion minus mean chi of the adjacent cortex" is the designed offset; likewise for WM lesions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage

from ..errors import ParameterError
from ..io.layout import TISSUE_CORTEX, TISSUE_CSF, TISSUE_DEEP_GM, TISSUE_WM
from ..progress import ProgressCallback, report

# --- region codes of the model (finer than the tissue classes) --------------------------------
AIR, SCALP, SKULL, CAVITY = 0, 1, 2, 3
CSF, VENTRICLE, CORTEX, WM = 10, 11, 20, 30
CAUDATE, PUTAMEN, PALLIDUM, THALAMUS = 40, 41, 42, 43

REGION_TISSUE = {
    CSF: TISSUE_CSF,
    VENTRICLE: TISSUE_CSF,
    CORTEX: TISSUE_CORTEX,
    WM: TISSUE_WM,
    CAUDATE: TISSUE_DEEP_GM,
    PUTAMEN: TISSUE_DEEP_GM,
    PALLIDUM: TISSUE_DEEP_GM,
    THALAMUS: TISSUE_DEEP_GM,
}

#: Susceptibility relative to CSF (ppm) of normal tissue (smooth variation added for WM, cortex).
CHI_PPM = {
    CSF: 0.0,
    VENTRICLE: 0.0,
    CORTEX: 0.015,
    WM: -0.030,
    CAUDATE: 0.060,
    PUTAMEN: 0.070,
    PALLIDUM: 0.150,
    THALAMUS: 0.020,
}
CHI_AIR_MINUS_WATER_PPM = 9.4
"""Air is paramagnetic relative to water/tissue by about 9.4 ppm (SI)."""
CHI_SKULL_PPM = -1.5
"""Skull (cortical bone and marrow) relative to water, ppm."""

#: (proton density, R2* in 1/s) for the T2*-weighted GRE magnitude.
T2STAR = {
    AIR: (0.0, 0.0),
    CAVITY: (0.0, 0.0),
    SCALP: (0.75, 35.0),
    SKULL: (0.08, 200.0),
    CSF: (1.0, 8.0),
    VENTRICLE: (1.0, 8.0),
    CORTEX: (0.86, 28.0),
    WM: (0.72, 34.0),
    CAUDATE: (0.84, 40.0),
    PUTAMEN: (0.83, 45.0),
    PALLIDUM: (0.78, 70.0),
    THALAMUS: (0.80, 36.0),
}
#: Normalised intensities of WM-nulled MPRAGE, CSF-nulled MPRAGE and FLAIR.
CONVENTIONAL = {
    #            wmn   csfn  flair
    AIR: (0.0, 0.0, 0.0),
    CAVITY: (0.0, 0.0, 0.0),
    SCALP: (0.50, 0.80, 0.50),
    SKULL: (0.05, 0.05, 0.05),
    CSF: (0.35, 0.02, 0.05),
    VENTRICLE: (0.35, 0.02, 0.05),
    CORTEX: (0.65, 0.45, 0.55),
    WM: (0.04, 0.80, 0.40),
    CAUDATE: (0.60, 0.50, 0.50),
    PUTAMEN: (0.60, 0.50, 0.50),
    PALLIDUM: (0.45, 0.55, 0.42),
    THALAMUS: (0.50, 0.60, 0.48),
}
#: Lesion intensities: bright on WM-nulled MPRAGE and FLAIR, dark on CSF-nulled MPRAGE.
LESION_CONVENTIONAL = {"wm": (0.40, 0.25, 0.90), "cortical": (0.82, 0.28, 0.85), "mixed": (0.60, 0.26, 0.88)}
LESION_PD_GAIN = 0.10  # extra proton density in lesions (T2* hyperintense)
LESION_R2S_DROP = 9.0  # 1/s less R2* in lesions (demyelination)
VEIN_R2S = 120.0  # 1/s: veins are dark on T2* magnitude
INTENSITY_SCALE = 1000.0  # contrasts are returned in these units (WM T2* ~ 400)

#: Table 3 of the paper: (mean, SD) of relative susceptibility (ppm) per lesion class and part.
TABLE3_PPM = {
    ("wm", "wm"): (0.014, 0.014),
    ("cortical", "cortical"): (-0.018, 0.013),
    ("mixed", "wm"): (0.014, 0.018),
    ("mixed", "cortical"): (-0.009, 0.012),
}
LESION_CLASSES = ("wm", "cortical", "mixed")
ANATOMIES = ("synthetic", "mni")
MIN_LESION_EXTENT_MM = 2.0
#: Design margins inside the paper's class rules (cortical > 0.75, mixed 0.25-0.75).
CORTICAL_MIN_FRACTION = 0.80
MIXED_FRACTION_RANGE = (0.30, 0.70)


@dataclass
class Lesion:
    """One lesion of the model: an ellipsoid clipped to its host tissue."""

    lesion_id: int
    lesion_class: str
    center_mm: np.ndarray
    semi_axes_mm: np.ndarray
    delta_wm_ppm: float = float("nan")
    delta_cortical_ppm: float = float("nan")


@dataclass
class Vein:
    """A straight tube from ``p0_mm`` to ``p1_mm`` (head frame)."""

    p0_mm: np.ndarray
    p1_mm: np.ndarray
    radius_mm: float
    chi_ppm: float


def head_shell_regions(x, y, z, semi_mm, center_mm, scalp_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Air outside an ellipsoidal head, scalp in its outer ``scalp_mm``, skull elsewhere inside.

    Parameters
    ----------
    x, y, z : ndarray
        Point coordinates, mm (broadcastable).
    semi_mm, center_mm : sequence of 3 float
        Semi-axes and centre of the head ellipsoid, mm.
    scalp_mm : float
        Scalp thickness, mm (radial depth below the ellipsoid surface).

    Returns
    -------
    region : ndarray of uint8
        ``AIR``, ``SCALP`` or ``SKULL`` (callers overwrite the brain inside).
    inside : ndarray of bool
        Points inside the head ellipsoid.
    """
    shape = np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z))
    a = np.asarray(semi_mm, dtype=float)
    c = np.asarray(center_mm, dtype=float)
    dx, dy, dz = x - c[0], y - c[1], z - c[2]
    rho_head = np.sqrt((dx / a[0]) ** 2 + (dy / a[1]) ** 2 + (dz / a[2]) ** 2)
    r = np.sqrt(dx**2 + dy**2 + dz**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth_head = np.where(rho_head > 1e-6, r * (1.0 / np.maximum(rho_head, 1e-6) - 1.0), a.min())
    region = np.full(shape, AIR, dtype=np.uint8)
    inside = rho_head < 1.0
    region[inside] = SKULL
    region[inside & (depth_head < scalp_mm)] = SCALP
    return region, inside


@dataclass
class HeadModel:
    """Analytic anatomy in the head frame (mm; x left->right, y posterior->anterior, z up).

    Use :meth:`regions` and friends on coordinate arrays of any grid.
    """

    head_semi_mm: np.ndarray
    scalp_mm: float = 4.0
    skull_mm: float = 5.0
    csf_mm: float = 1.2
    cortex_mm: float = 2.5
    fold_depth_mm: float = 7.0
    fold_waves: list = field(default_factory=list)  # (k vector rad/mm, phase)
    cavities: list = field(default_factory=list)  # (center_mm, radius_mm, wall_mm)
    nuclei: list = field(default_factory=list)  # (region, center_mm, semi_mm)
    variation: dict = field(default_factory=dict)  # region -> list of (k rad/mm, phase, amp ppm)
    veins: list = field(default_factory=list)
    lesions: list = field(default_factory=list)
    head_center_mm: np.ndarray = field(default_factory=lambda: np.zeros(3))  # centre of the head ellipsoid

    @property
    def brain_semi_mm(self) -> np.ndarray:
        return self.head_semi_mm - (self.scalp_mm + self.skull_mm)

    # --- geometry ------------------------------------------------------------------------------
    def depth_mm(self, x, y, z) -> np.ndarray:
        """Approximate depth below the brain surface (mm; negative outside the brain)."""
        b = self.brain_semi_mm
        rho = np.sqrt((x / b[0]) ** 2 + (y / b[1]) ** 2 + (z / b[2]) ** 2)
        r = np.sqrt(x**2 + y**2 + z**2)
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.where(rho > 1e-6, r * (1.0 / np.maximum(rho, 1e-6) - 1.0), b.min())
        for center, radius, wall in self.cavities:
            d = np.sqrt((x - center[0]) ** 2 + (y - center[1]) ** 2 + (z - center[2]) ** 2) - (radius + wall)
            depth = np.minimum(depth, d)
        return depth.astype(np.float32)

    def pial_depth_mm(self, x, y, z) -> np.ndarray:
        """Depth of the pial surface: thin CSF layer plus sulci up to ``fold_depth_mm``."""
        g = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), dtype=np.float32)
        for k, phase in self.fold_waves:
            g += np.sin(k[0] * x + k[1] * y + k[2] * z + phase).astype(np.float32)
        s = ((g / max(len(self.fold_waves), 1)) + 1.0) / 2.0
        return (self.csf_mm + self.fold_depth_mm * s**2).astype(np.float32)

    def regions(self, x, y, z) -> tuple[np.ndarray, np.ndarray]:
        """Region code (uint8) and depth (mm) at the given points (lesions and veins not included)."""
        region, inside = head_shell_regions(x, y, z, self.head_semi_mm, np.zeros(3), self.scalp_mm)
        depth = self.depth_mm(x, y, z)
        pial = self.pial_depth_mm(x, y, z)
        brain = depth > 0
        region[brain] = CSF
        region[brain & (depth >= pial)] = CORTEX
        white = depth >= pial + self.cortex_mm
        region[white] = WM
        for code, center, semi in self.nuclei:
            q = (
                ((x - center[0]) / semi[0]) ** 2
                + ((y - center[1]) / semi[1]) ** 2
                + ((z - center[2]) / semi[2]) ** 2
            )
            region[white & (q < 1.0)] = code
        for center, semi in self._ventricles():
            q = (
                ((x - center[0]) / semi[0]) ** 2
                + ((y - center[1]) / semi[1]) ** 2
                + ((z - center[2]) / semi[2]) ** 2
            )
            region[white & (q < 1.0)] = VENTRICLE
        for center, radius, _wall in self.cavities:
            d2 = (x - center[0]) ** 2 + (y - center[1]) ** 2 + (z - center[2]) ** 2
            region[inside & (d2 < radius**2)] = CAVITY
        return region, depth

    def _ventricles(self):
        b = self.brain_semi_mm
        return [
            (np.array([s * 0.11 * b[0], 0.02 * b[1], 0.16 * b[2]]), np.array([0.07, 0.33, 0.11]) * b)
            for s in (-1.0, 1.0)
        ]

    def smooth_variation_ppm(self, region_code: int, x, y, z) -> np.ndarray:
        """Low-amplitude smooth variation of normal tissue susceptibility (ppm)."""
        out = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), dtype=np.float32)
        for k, phase, amp in self.variation.get(region_code, []):
            out += np.float32(amp) * np.sin(k[0] * x + k[1] * y + k[2] * z + phase).astype(np.float32)
        return out

    def base_chi_ppm(self, region_code: int, x, y, z) -> np.ndarray:
        """Normal-appearing susceptibility of tissue ``region_code`` at the given points."""
        return np.float32(CHI_PPM[region_code]) + self.smooth_variation_ppm(region_code, x, y, z)

    def vein_partial_volume(self, x, y, z, region, voxel_mm: float) -> tuple[np.ndarray, np.ndarray]:
        """Partial volume (0..1) of veins and the vein susceptibility at each point (brain only)."""
        shape = region.shape
        pv = np.zeros(shape, dtype=np.float32)
        chi = np.zeros(shape, dtype=np.float32)
        xs, ys, zs = (np.broadcast_to(c, shape) for c in (x, y, z))
        in_brain = region >= CSF
        for vein in self.veins:
            lo = np.minimum(vein.p0_mm, vein.p1_mm) - vein.radius_mm - voxel_mm
            hi = np.maximum(vein.p0_mm, vein.p1_mm) + vein.radius_mm + voxel_mm
            sel = (
                in_brain
                & (xs >= lo[0])
                & (xs <= hi[0])
                & (ys >= lo[1])
                & (ys <= hi[1])
                & (zs >= lo[2])
                & (zs <= hi[2])
            )
            if not sel.any():
                continue
            pts = np.stack([xs[sel], ys[sel], zs[sel]], axis=1).astype(np.float64)
            d = _distance_to_segment(pts, vein.p0_mm, vein.p1_mm)
            frac = np.clip(0.5 + (vein.radius_mm - d) / voxel_mm, 0.0, 1.0).astype(np.float32)
            old = pv[sel]
            better = frac > old
            newpv = np.where(better, frac, old)
            newchi = np.where(better, np.float32(vein.chi_ppm), chi[sel])
            pv[sel] = newpv
            chi[sel] = newchi
        return pv, chi

    def lesion_map(self, x, y, z, region) -> np.ndarray:
        """Lesion id (int32, 0 = none) at the given points."""
        shape = region.shape
        out = np.zeros(shape, dtype=np.int32)
        xs, ys, zs = (np.broadcast_to(c, shape) for c in (x, y, z))
        for les in self.lesions:
            c, s = les.center_mm, les.semi_axes_mm
            sel = (np.abs(xs - c[0]) <= s[0]) & (np.abs(ys - c[1]) <= s[1]) & (np.abs(zs - c[2]) <= s[2])
            if not sel.any():
                continue
            q = (
                ((xs[sel] - c[0]) / s[0]) ** 2
                + ((ys[sel] - c[1]) / s[1]) ** 2
                + ((zs[sel] - c[2]) / s[2]) ** 2
            )
            host = region[sel]
            allowed = (host == WM) if les.lesion_class == "wm" else ((host == WM) | (host == CORTEX))
            hit = (q <= 1.0) & allowed
            vals = out[sel]
            vals[hit] = les.lesion_id
            out[sel] = vals
        return out


def _distance_to_segment(pts: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    d = np.asarray(p1, float) - np.asarray(p0, float)
    t = np.clip(((pts - p0) @ d) / max(float(d @ d), 1e-12), 0.0, 1.0)
    nearest = p0 + t[:, None] * d
    return np.linalg.norm(pts - nearest, axis=1)


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


def tissue_variation_waves(rng: np.random.Generator) -> dict[int, list]:
    """Smooth within-tissue susceptibility variation: three plane waves per tissue.

    Wavelengths 60-100 mm, total amplitude 0.004 ppm in WM and 0.003 ppm in cortex, as
    ``{region code: [(wave vector (rad/mm), phase (rad), amplitude (ppm)), ...]}``.
    """
    variation = {}
    for code, amp in ((WM, 0.004), (CORTEX, 0.003)):
        waves = []
        for _ in range(3):
            u = rng.normal(size=3)
            u /= np.linalg.norm(u)
            waves.append((2 * np.pi / rng.uniform(60.0, 100.0) * u, rng.uniform(0, 2 * np.pi), amp / 3.0))
        variation[code] = waves
    return variation


def build_head_model(shape, voxel_size_mm, rng: np.random.Generator) -> HeadModel:
    """Anatomy scaled to fit the grid's field of view (veins, no lesions yet)."""
    vs = np.asarray(voxel_size_mm, dtype=float)
    fov = np.asarray(shape) * vs
    head = np.minimum(np.array([78.0, 96.0, 80.0]), 0.46 * fov)
    scale = float(np.clip(head.min() / 75.0, 0.35, 1.0))
    model = HeadModel(
        head_semi_mm=head,
        scalp_mm=max(4.0 * scale, 1.5 * vs.max()),
        skull_mm=max(5.0 * scale, 1.5 * vs.max()),
        csf_mm=max(1.2, 0.6 * vs.min()),
        cortex_mm=max(2.5, 1.25 * vs.max()),
    )
    b = model.brain_semi_mm
    model.fold_depth_mm = float(min(8.0, 0.12 * np.median(b)))
    for _ in range(4):
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        wavelength = rng.uniform(15.0, 22.0) * max(scale, 0.6)
        model.fold_waves.append((2 * np.pi / wavelength * u, rng.uniform(0, 2 * np.pi)))
    a = head
    sinus_r = min(14.0, 0.2 * a.min())
    ear_r = min(6.0, 0.1 * a.min())
    wall = max(3.0 * scale, 1.5 * vs.max())
    model.cavities = [
        (np.array([0.0, 0.80 * a[1], -0.45 * a[2]]), sinus_r, wall),
        (np.array([-0.86 * a[0], 0.0, -0.45 * a[2]]), ear_r, wall),
        (np.array([0.86 * a[0], 0.0, -0.45 * a[2]]), ear_r, wall),
    ]
    for sgn in (-1.0, 1.0):
        model.nuclei += [
            (THALAMUS, np.array([sgn * 0.10, -0.16, 0.0]) * b, np.array([0.08, 0.14, 0.11]) * b),
            (CAUDATE, np.array([sgn * 0.19, 0.20, 0.13]) * b, np.array([0.05, 0.13, 0.09]) * b),
            (PUTAMEN, np.array([sgn * 0.33, 0.04, -0.04]) * b, np.array([0.055, 0.18, 0.13]) * b),
            (PALLIDUM, np.array([sgn * 0.255, 0.0, -0.05]) * b, np.array([0.035, 0.09, 0.08]) * b),
        ]
    model.variation.update(tissue_variation_waves(rng))
    model.veins = _make_veins(model, rng, scale)
    return model


def _surface_point(direction: np.ndarray, semi: np.ndarray) -> np.ndarray:
    d = direction / np.linalg.norm(direction)
    return d / np.sqrt(np.sum((d / semi) ** 2))


def _make_veins(model: HeadModel, rng: np.random.Generator, scale: float) -> list[Vein]:
    b = model.brain_semi_mm
    c0 = np.asarray(model.head_center_mm, dtype=float)
    veins: list[Vein] = []
    for _ in range(10):  # medullary veins: radial, through the WM towards the ventricles
        u = rng.normal(size=3)
        u[2] = abs(u[2]) + 0.3
        s = _surface_point(u, b)
        veins.append(Vein(c0 + 0.88 * s, c0 + 0.50 * s, 0.45, 0.35))
    for sgn in (-1.0, 1.0):  # internal cerebral veins
        veins.append(
            Vein(
                c0 + np.array([sgn * 0.035, 0.10, 0.08]) * b,
                c0 + np.array([sgn * 0.03, -0.40, 0.14]) * b,
                0.9 * max(scale, 0.7),
                0.45,
            )
        )
    for _ in range(8):  # cortical veins: chords just below the surface
        u = rng.normal(size=3)
        u[2] = abs(u[2]) + 0.2
        p = c0 + 0.985 * _surface_point(u, b)
        t = np.cross(u, rng.normal(size=3))
        t /= np.linalg.norm(t)
        half = 12.0 * scale
        veins.append(Vein(p - half * t, p + half * t, 0.7, 0.40))
    return veins


def _draw_delta(rng: np.random.Generator, lesion_class: str, part: str) -> float:
    mean, sd = TABLE3_PPM[(lesion_class, part)]
    return float(rng.normal(mean, sd))


def _bounding_box(mask: np.ndarray, margin: int = 1) -> tuple[slice, slice, slice]:
    """Slices of the bounding box of ``mask`` grown by ``margin`` voxels (clipped to the array)."""
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(int(hits[0]) - margin, 0), min(int(hits[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)


def _place_lesions(
    model: HeadModel,
    region: np.ndarray,
    depth: np.ndarray,
    vessels: np.ndarray,
    x,
    y,
    z,
    vs: np.ndarray,
    n_lesions: tuple[int, int, int],
    rng: np.random.Generator,
) -> list[Lesion]:
    """Place lesions on the grid by rejection sampling; each satisfies its class rule here."""
    wm = region == WM
    ctx = region == CORTEX
    brain = region >= CSF
    # Distance maps on the brain's bounding box plus one voxel: exact for every voxel of the brain
    # (the box is convex and its margin is outside the brain), which is all that is used below.
    crop = _bounding_box(brain, margin=1)

    def edt(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(mask.shape, dtype=np.float32)
        out[crop] = ndimage.distance_transform_edt(mask[crop], sampling=vs)
        return out

    dist_in_wm = edt(wm)
    dist_to_wm = edt(~wm)
    dist_vessel = edt(~vessels) if vessels.any() else None
    dist_out = edt(brain)
    shape = np.asarray(region.shape)
    edge = np.maximum(np.ceil(4.0 / vs).astype(int), 3)
    interior = np.zeros(region.shape, dtype=bool)
    interior[edge[0] : shape[0] - edge[0], edge[1] : shape[1] - edge[1], edge[2] : shape[2] - edge[2]] = True
    vox_diag = float(np.linalg.norm(vs))
    semi_ranges = {"wm": (2.0, 4.0), "cortical": (1.6, 2.6), "mixed": (2.4, 4.0)}
    candidates = {
        "wm": np.flatnonzero(interior & wm & (dist_in_wm >= 3.0)),
        "cortical": np.flatnonzero(interior & ctx & (depth >= model.csf_mm + 2.0) & (dist_out >= 2.0)),
        "mixed": np.flatnonzero(interior & ctx & (dist_to_wm <= vs.max() * 1.01) & (dist_out >= 2.0)),
    }
    lesions: list[Lesion] = []
    order = ["mixed"] * n_lesions[2] + ["cortical"] * n_lesions[1] + ["wm"] * n_lesions[0]
    for cls in order:
        cand = candidates[cls]
        placed = False
        for _attempt in range(600):
            if cand.size == 0:
                break
            idx = np.unravel_index(int(cand[rng.integers(cand.size)]), region.shape)
            center = np.array([x[idx], y[idx], z[idx]], dtype=float) + rng.uniform(-0.3, 0.3, 3) * vs
            semi = rng.uniform(*semi_ranges[cls], size=3)
            semi = np.maximum(semi, 0.75 * vs)  # at least 1.5 voxels across on every axis
            if any(
                np.linalg.norm(center - o.center_mm) < semi.max() + o.semi_axes_mm.max() + 6.0
                for o in lesions
            ):
                continue
            lo = np.maximum(np.floor((center - semi) / vs + (shape - 1) / 2.0).astype(int) - 1, 0)
            hi = np.minimum(np.ceil((center + semi) / vs + (shape - 1) / 2.0).astype(int) + 2, shape)
            box = tuple(slice(lo[i], hi[i]) for i in range(3))
            q = (
                ((x[box] - center[0]) / semi[0]) ** 2
                + ((y[box] - center[1]) / semi[1]) ** 2
                + ((z[box] - center[2]) / semi[2]) ** 2
            )
            host = region[box]
            blob = q <= 1.0
            if cls == "wm":
                if np.any(blob & (host != WM)):
                    continue  # a WM lesion lies entirely in WM
                les_mask = blob
            else:
                les_mask = blob & ((host == WM) | (host == CORTEX))
            n_vox = int(les_mask.sum())
            if n_vox < 4:
                continue
            frac = float(np.sum(les_mask & (host == CORTEX)) / n_vox)
            if cls == "cortical" and frac < CORTICAL_MIN_FRACTION:
                continue
            if cls == "mixed" and not (MIXED_FRACTION_RANGE[0] <= frac <= MIXED_FRACTION_RANGE[1]):
                continue
            if cls == "wm" and frac > 0:
                continue
            ii = np.nonzero(les_mask)
            extent = min((np.ptp(ii[a]) + 1) * vs[a] for a in (0, 1))
            if extent < MIN_LESION_EXTENT_MM:
                continue
            if dist_vessel is not None and float(dist_vessel[box][les_mask].min()) < 3.0 + 0.5 * vox_diag:
                continue
            if float(dist_out[box][les_mask].min()) < 1.0:
                continue
            les = Lesion(len(lesions) + 1, cls, center, semi)
            if cls in ("wm", "mixed"):
                les.delta_wm_ppm = _draw_delta(rng, cls, "wm")
            if cls in ("cortical", "mixed"):
                les.delta_cortical_ppm = _draw_delta(rng, cls, "cortical")
            lesions.append(les)
            placed = True
            break
        if not placed:
            raise ParameterError(
                f"could not place a {cls} lesion on a grid of {tuple(region.shape)} voxels of "
                f"{tuple(round(float(v), 3) for v in vs)} mm: use a larger grid, finer voxels or fewer lesions"
            )
    # ids in a stable anatomical order (WM first, then cortical, then mixed) for readability
    rank = {c: i for i, c in enumerate(LESION_CLASSES)}
    lesions.sort(key=lambda les: (rank[les.lesion_class], les.lesion_id))
    for new_id, les in enumerate(lesions, start=1):
        les.lesion_id = new_id
    return lesions


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


def lesion_table(
    model: HeadModel, region: np.ndarray, lesion_ids: np.ndarray, vs: np.ndarray
) -> pd.DataFrame:
    """The designed lesions with their realised size and cortex fraction on this grid."""
    shape = np.asarray(region.shape)
    rows = []
    objs = ndimage.find_objects(lesion_ids)
    for les in model.lesions:
        sl = objs[les.lesion_id - 1] if les.lesion_id - 1 < len(objs) else None
        if sl is None:
            n_vox, frac, extent = 0, float("nan"), 0.0
        else:
            m = lesion_ids[sl] == les.lesion_id
            host = region[sl][m]
            n_vox = int(m.sum())
            frac = float(np.mean(host == CORTEX))
            ii = np.nonzero(m)
            extent = float(min((np.ptp(ii[a]) + 1) * vs[a] for a in (0, 1)))
        center_vox = tuple(round(v) for v in les.center_mm / vs + (shape - 1) / 2.0)
        rows.append(
            {
                "lesion_id": les.lesion_id,
                "class": les.lesion_class,
                "designed_delta_wm_ppm": les.delta_wm_ppm,
                "designed_delta_cortical_ppm": les.delta_cortical_ppm,
                "center_vox": center_vox,
                "center_mm": tuple(round(float(v), 3) for v in les.center_mm),
                "semi_axes_mm": tuple(round(float(v), 3) for v in les.semi_axes_mm),
                "voxels": n_vox,
                "cortex_fraction": frac,
                "extent_mm": extent,
            }
        )
    columns = [
        "lesion_id",
        "class",
        "designed_delta_wm_ppm",
        "designed_delta_cortical_ppm",
        "center_vox",
        "center_mm",
        "semi_axes_mm",
        "voxels",
        "cortex_fraction",
        "extent_mm",
    ]
    return pd.DataFrame(rows, columns=columns)


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
        from .mni import DEFAULT_CENTER_MNI_MM, build_mni_head_model

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
    model.lesions = _place_lesions(model, region, depth, vessels, x, y, z, vs, n_les, rng)
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
