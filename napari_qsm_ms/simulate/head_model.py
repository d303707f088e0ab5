"""The analytic head model of the phantom: region codes, tissue properties, anatomy (mm).

The anatomy is an analytic model in millimetres (:class:`HeadModel`), so it can be sampled on
the T2* grid and on the other series' own grids alike:

* head ellipsoid: scalp (4 mm), skull (5 mm), brain; air-filled cavities (a frontal sinus and two
  ear canals) dent the brain and carry the air/tissue susceptibility step (9.4 ppm);
* a folded cortical ribbon (2.5 mm thick by default) under a thin CSF layer: the pial depth below
  the brain ellipsoid varies with a sum of four random plane waves (wavelengths 15-22 mm), so
  CSF-filled sulci up to ``fold_depth_mm`` deep alternate with gyral crowns;
* white matter beneath, with lateral ventricles, caudate, putamen, globus pallidus and thalamus;
* veins as thin paramagnetic tubes (medullary, internal cerebral and cortical veins) with partial
  volume.

Lesions are placed by :mod:`.lesion_placement`; :mod:`.phantom` samples everything on a grid.
Real anatomy (a subclass of :class:`HeadModel`) is in :mod:`.mni`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io.layout import TISSUE_CORTEX, TISSUE_CSF, TISSUE_DEEP_GM, TISSUE_WM

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
    model.veins = make_veins(model, rng, scale)
    return model


def _surface_point(direction: np.ndarray, semi: np.ndarray) -> np.ndarray:
    d = direction / np.linalg.norm(direction)
    return d / np.sqrt(np.sum((d / semi) ** 2))


def make_veins(model: HeadModel, rng: np.random.Generator, scale: float) -> list[Vein]:
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
