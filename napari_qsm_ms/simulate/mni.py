"""Real brain anatomy for the phantom: the MNI ICBM152 2009 templates shipped inside nilearn.

``make_phantom(..., anatomy='mni')`` uses the 1 mm ICBM152 2009 (nonlinear symmetric) grey- and
white-matter probability maps and brain mask that the nilearn wheel ships (loaded offline):

* CSF, cortex and WM: the most probable of GM, WM and 1 - GM - WM inside the brain mask; CSF
  deeper than 12 mm is ventricle;
* deep grey nuclei: caudate, putamen, globus pallidus and thalamus from ellipsoids at their MNI
  positions, restricted to grey matter (the pallidum, pale on the GM map, to non-CSF);
* head: an ellipsoid 9 mm (scalp 4, skull 5) larger than the smallest ellipsoid holding the brain,
  the space between brain and skull counted as skull; air cavities (sphenoid sinus, ear canals).

The grid is centred on MNI ``center_mni_mm`` (default (0, -18, 18), a supratentorial slab for a
90 mm field of view); anatomy outside the grid is simply not sampled (but the head's uniform
susceptibility still enters the background field analytically).

License of the templates (:data:`MNI_NOTICE`, written as ``NOTICE`` into every study simulated
with this anatomy): Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal
Neurological Institute, McGill University; use, copy, modification and distribution are permitted
provided the copyright notice appears in all copies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..errors import ParameterError
from .head_model import (
    AIR,
    CAUDATE,
    CAVITY,
    CORTEX,
    CSF,
    PALLIDUM,
    PUTAMEN,
    SCALP,
    SKULL,
    THALAMUS,
    VENTRICLE,
    WM,
    HeadModel,
    head_shell_regions,
    make_veins,
    tissue_variation_waves,
)

MNI_NOTICE = """\
Brain anatomy derived from the MNI ICBM152 2009 nonlinear symmetric templates (1 mm grey- and
white-matter probability maps and brain mask, as shipped with nilearn).

Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological
Institute, McGill University. Permission to use, copy, modify, and distribute this software and its
documentation for any purpose and without fee is hereby granted, provided that the above copyright
notice appear in all copies. The authors and McGill University make no representations about the
suitability of this software for any purpose. It is provided "as is" without express or implied
warranty. The authors are not responsible for any data loss, equipment damage, property loss, or
injury to subjects or patients resulting from the use or misuse of this software package.

References: VS Fonov, AC Evans, RC McKinstry, CR Almli, DL Collins, Unbiased nonlinear average
age-appropriate brain templates from birth to adulthood, NeuroImage 47 (2009) S102; VS Fonov et al.,
Unbiased average age-appropriate atlases for pediatric studies, NeuroImage 54 (2011) 313-327.
"""

DEFAULT_CENTER_MNI_MM = (0.0, -18.0, 18.0)
MIN_CSF_ISLAND_VOXELS = 30  # smaller CSF specks inside the parenchyma become GM or WM
VENTRICLE_DEPTH_MM = 12.0
#: (region, centre in MNI mm for the left side (x < 0), semi-axes mm, needs GM)
NUCLEI_MNI = [
    (THALAMUS, (-11.0, -18.0, 7.0), (8.0, 12.0, 8.0), True),
    (CAUDATE, (-13.0, 12.0, 10.0), (5.0, 9.0, 8.0), True),
    (CAUDATE, (-16.0, -6.0, 19.0), (4.0, 10.0, 5.0), True),
    (PUTAMEN, (-25.0, 2.0, 1.0), (6.5, 14.0, 9.0), True),
    (PALLIDUM, (-19.0, -4.0, -1.0), (4.0, 8.0, 5.0), False),
]
CAVITIES_MNI = [((0.0, 48.0, -36.0), 10.0), ((-72.0, -22.0, -40.0), 6.0), ((72.0, -22.0, -40.0), 6.0)]


@dataclass(frozen=True)
class MNIAtlas:
    """Region codes and depth (mm below the brain-mask surface) on the 1 mm MNI grid."""

    region: np.ndarray
    depth_mm: np.ndarray
    affine: np.ndarray
    brain_center_mni: np.ndarray
    brain_semi_mm: np.ndarray


@functools.lru_cache(maxsize=1)
def load_atlas() -> MNIAtlas:
    """Build (once per process) the region map from nilearn's ICBM152 2009 templates."""
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from nilearn import datasets

            gm_img = datasets.load_mni152_gm_template(resolution=1)
            wm_img = datasets.load_mni152_wm_template(resolution=1)
            mask_img = datasets.load_mni152_brain_mask(resolution=1)
    except Exception as exc:  # noqa: BLE001 - ImportError, or a nilearn without the bundled templates
        raise ParameterError(
            f"MNI anatomy needs nilearn with its bundled ICBM152 templates ({exc})"
        ) from None
    gm = np.asarray(gm_img.dataobj, dtype=np.float32)
    wm = np.asarray(wm_img.dataobj, dtype=np.float32)
    mask = np.asarray(mask_img.dataobj) > 0
    affine = np.asarray(gm_img.affine, dtype=float)
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    region = np.zeros(gm.shape, dtype=np.uint8)
    region[mask] = CSF
    region[mask & (gm >= wm) & (gm >= csf)] = CORTEX
    region[mask & (wm > gm) & (wm >= csf)] = WM
    # tiny CSF islands in the parenchyma (template blur) become the likelier of GM and WM
    labels, n = ndimage.label(region == CSF)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    specks = (labels > 0) & (sizes[labels] < MIN_CSF_ISLAND_VOXELS)
    region[specks & (gm >= wm)] = CORTEX
    region[specks & (wm > gm)] = WM
    del labels
    depth = ndimage.distance_transform_edt(mask).astype(np.float32)  # 1 mm voxels
    region[(region == CSF) & (depth >= VENTRICLE_DEPTH_MM)] = VENTRICLE
    ijk = np.indices(gm.shape, sparse=True)
    mni = [affine[a, a] * ijk[a] + affine[a, 3] for a in range(3)]  # axis-aligned template
    for code, center, semi, needs_gm in NUCLEI_MNI:
        for side in (-1.0, 1.0):
            c = (side * -center[0], center[1], center[2]) if side > 0 else center
            q = sum(((mni[a] - c[a]) / semi[a]) ** 2 for a in range(3))
            sel = (q <= 1.0) & mask & (region != CSF) & (region != VENTRICLE)
            if needs_gm:
                sel &= gm >= 0.3
            region[sel] = code
    pts = np.argwhere(mask)
    pts_mm = pts @ affine[:3, :3].T + affine[:3, 3]
    lo, hi = pts_mm.min(axis=0), pts_mm.max(axis=0)
    center = (lo + hi) / 2.0
    half = (hi - lo) / 2.0 + 0.5
    factor = float(np.sqrt((((pts_mm - center) / half) ** 2).sum(axis=1)).max())
    return MNIAtlas(region, depth, affine, center, half * max(factor, 1.0) + 1.0)


@dataclass
class MNIHeadModel(HeadModel):
    """Head model whose brain comes from the MNI atlas (head frame = MNI mm - ``mni_offset_mm``)."""

    mni_offset_mm: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def _lookup(self, x, y, z):
        atlas = load_atlas()
        shape = np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z))
        inv = np.linalg.inv(atlas.affine)
        coords = []
        for a, c in enumerate((x, y, z)):
            # axis-aligned template affine: index = (mni - t) / scale
            mni = np.asarray(c, dtype=np.float32) + np.float32(self.mni_offset_mm[a])
            coords.append(np.rint(inv[a, a] * mni + inv[a, 3]).astype(np.int32))
        idx = [np.broadcast_to(c, shape) for c in coords]
        valid = np.ones(shape, dtype=bool)
        for a in range(3):
            valid &= (idx[a] >= 0) & (idx[a] < atlas.region.shape[a])
        safe = [np.where(valid, idx[a], 0) for a in range(3)]
        region = np.where(valid, atlas.region[safe[0], safe[1], safe[2]], 0).astype(np.uint8)
        depth = np.where(valid, atlas.depth_mm[safe[0], safe[1], safe[2]], -1.0).astype(np.float32)
        return region, depth

    def regions(self, x, y, z) -> tuple[np.ndarray, np.ndarray]:
        region, inside = head_shell_regions(x, y, z, self.head_semi_mm, self.head_center_mm, self.scalp_mm)
        brain_region, depth = self._lookup(x, y, z)
        brain = inside & (brain_region >= CSF)
        region[brain] = brain_region[brain]
        for center, radius, _wall in self.cavities:
            d2 = (x - center[0]) ** 2 + (y - center[1]) ** 2 + (z - center[2]) ** 2
            region[inside & ~brain & (d2 < radius**2)] = CAVITY
        return region, depth


def build_mni_head_model(
    voxel_size_mm, rng: np.random.Generator, center_mni_mm=DEFAULT_CENTER_MNI_MM
) -> MNIHeadModel:
    """Head model with MNI anatomy; the head frame origin is the MNI point ``center_mni_mm``."""
    atlas = load_atlas()
    vs = np.asarray(voxel_size_mm, dtype=float)
    offset = np.asarray(center_mni_mm, dtype=float)
    scalp, skull = max(4.0, 1.5 * vs.max()), max(5.0, 1.5 * vs.max())
    model = MNIHeadModel(
        head_semi_mm=atlas.brain_semi_mm + scalp + skull,
        scalp_mm=scalp,
        skull_mm=skull,
        csf_mm=1.2,
        cortex_mm=2.5,
        mni_offset_mm=offset,
    )
    model.head_center_mm = atlas.brain_center_mni - offset
    model.cavities = [(np.asarray(c) - offset, r, 0.0) for c, r in CAVITIES_MNI]
    model.variation.update(tissue_variation_waves(rng))
    model.veins = make_veins(model, rng, 1.0)
    return model
