"""Paramagnetic rim lesions and central-vein lesions in the phantom (docs/markers.md).

:func:`add_markers` takes a built :class:`~.phantom.Phantom` and returns a new one in which

* a fraction of the WM and mixed lesions carry a **paramagnetic rim**: a shell of width
  ``rim_width_mm`` straddling the lesion boundary (signed distance ``|d| <= width / 2``, see
  :func:`napari_qsm_ms.roi.rim.signed_distance_mm`), covering the fraction ``rim_coverage`` of the
  circumference (an arc of in-plane angle about the lesion centre, the same on every slice), with
  ``rim_chi_ppm`` added to the susceptibility there;
* a fraction of the lesions carry a **central vein**: a thin paramagnetic, T2*-dark tube (the
  phantom's own vein model) through the lesion centre in a random direction, extending 3 mm past
  the lesion on both sides; and a fraction of the others an **eccentric vein** (a mimic: the tube
  passes at 75-90 % of the lesion's smallest semi-axis from the centre).

By default no lesion gets either (``MarkerSpec()`` leaves the phantom unchanged), so the paper's
phantom and its invariants are untouched. The truth goes into the lesion table: ``prl``,
``rim_width_mm``, ``rim_chi_ppm``, ``rim_coverage``, ``rim_start_deg``, ``vein`` ('central',
'eccentric' or 'none'), ``vein_radius_mm``, ``vein_offset_mm`` (75-90 % of the
smallest semi-axis), ``vein_direction`` (unit vector, head frame, as "x y z").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ParameterError
from ..roi.rim import signed_distance_mm
from .phantom import WM, CORTEX, Phantom, Vein, contrasts, head_coordinates, susceptibility_ppm

MARKER_COLUMNS = [
    "prl",
    "rim_width_mm",
    "rim_chi_ppm",
    "rim_coverage",
    "rim_start_deg",
    "vein",
    "vein_radius_mm",
    "vein_offset_mm",
    "vein_direction",
]
VEIN_KINDS = ("central", "eccentric", "none")
VEIN_CHI_PPM = 0.40
VEIN_PAST_LESION_MM = 3.0


@dataclass(frozen=True)
class MarkerSpec:
    """What :func:`add_markers` adds (fractions of the eligible lesions; ranges drawn uniformly)."""

    prl_fraction: float = 0.0
    cvs_fraction: float = 0.0
    eccentric_fraction: float = 0.0
    rim_width_mm: tuple = (1.0, 2.0)
    rim_chi_ppm: tuple = (0.03, 0.06)
    rim_coverage: tuple = (0.4, 1.0)
    vein_radius_mm: tuple = (0.3, 0.5)

    def __post_init__(self) -> None:
        for name in ("prl_fraction", "cvs_fraction", "eccentric_fraction"):
            v = float(getattr(self, name))
            if not 0.0 <= v <= 1.0:
                raise ParameterError(f"{name} must be within 0..1, got {v}")
        if self.cvs_fraction + self.eccentric_fraction > 1.0:
            raise ParameterError("cvs_fraction + eccentric_fraction must not exceed 1")
        for name in ("rim_width_mm", "rim_chi_ppm", "rim_coverage", "vein_radius_mm"):
            lo, hi = (float(v) for v in getattr(self, name))
            if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
                raise ParameterError(f"{name} must be a range (low, high) with 0 < low <= high")
        if self.rim_coverage[1] > 1.0:
            raise ParameterError("rim_coverage must lie within (0, 1]")

    @property
    def active(self) -> bool:
        return self.prl_fraction > 0 or self.cvs_fraction > 0 or self.eccentric_fraction > 0


def _choose(rng: np.random.Generator, ids: list[int], fraction: float) -> list[int]:
    n = int(round(fraction * len(ids)))
    return sorted(int(i) for i in rng.choice(ids, size=n, replace=False)) if n else []


def plan_markers(table: pd.DataFrame, spec: MarkerSpec, rng: np.random.Generator) -> pd.DataFrame:
    """The marker truth per lesion (columns :data:`MARKER_COLUMNS`, index = lesion id), not yet drawn."""
    ids = [int(i) for i in table["lesion_id"]]
    rim_ok = [int(i) for i, c in zip(table["lesion_id"], table["class"]) if c in ("wm", "mixed")]
    prl = set(_choose(rng, rim_ok, spec.prl_fraction))
    order = [int(i) for i in rng.permutation(ids)]
    n_c = int(round(spec.cvs_fraction * len(ids)))
    n_e = int(round(spec.eccentric_fraction * len(ids)))
    kind = {i: "none" for i in ids}
    kind.update({i: "central" for i in order[:n_c]})
    kind.update({i: "eccentric" for i in order[n_c : n_c + n_e]})
    smallest = {int(i): float(np.min(a)) for i, a in zip(table["lesion_id"], table["semi_axes_mm"])}
    rows = {}
    for lid in ids:
        has_rim = lid in prl
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        rows[lid] = {
            "prl": has_rim,
            "rim_width_mm": float(rng.uniform(*spec.rim_width_mm)) if has_rim else 0.0,
            "rim_chi_ppm": float(rng.uniform(*spec.rim_chi_ppm)) if has_rim else 0.0,
            "rim_coverage": float(rng.uniform(*spec.rim_coverage)) if has_rim else 0.0,
            "rim_start_deg": float(rng.uniform(0.0, 360.0)) if has_rim else 0.0,
            "vein": kind[lid],
            "vein_radius_mm": float(rng.uniform(*spec.vein_radius_mm)) if kind[lid] != "none" else 0.0,
            "vein_offset_mm": (
                float(rng.uniform(0.75, 0.9)) * smallest[lid] if kind[lid] == "eccentric" else 0.0
            ),
            "vein_direction": " ".join(f"{float(v):.4f}" for v in u),
        }
    return pd.DataFrame.from_dict(rows, orient="index", columns=MARKER_COLUMNS)


def marker_veins(phantom: Phantom, plan: pd.DataFrame) -> list[Vein]:
    """Vein tubes (head frame) of the lesions planned with a central or eccentric vein."""
    veins = []
    for les in phantom.model.lesions:
        row = plan.loc[les.lesion_id]
        if row["vein"] == "none":
            continue
        u = np.array(str(row["vein_direction"]).split(), dtype=float)
        centre = np.asarray(les.center_mm, dtype=float)
        if row["vein"] == "eccentric":
            side = np.cross(u, [1.0, 0.0, 0.0] if abs(u[0]) < 0.9 else [0.0, 1.0, 0.0])
            side /= np.linalg.norm(side)
            centre = centre + side * float(row["vein_offset_mm"])
        half = float(np.max(les.semi_axes_mm)) + VEIN_PAST_LESION_MM
        veins.append(Vein(centre - half * u, centre + half * u, float(row["vein_radius_mm"]), VEIN_CHI_PPM))
    return veins


def rim_shell(phantom: Phantom, lesion_id: int, row: pd.Series, box: tuple) -> np.ndarray:
    """Partial volume (0..1, on ``box`` of the grid) of lesion ``lesion_id``'s planned rim.

    A voxel of extent ``h`` (geometric mean voxel size) across the boundary at signed distance
    ``d`` holds the overlap of ``[d - h/2, d + h/2]`` with the shell ``[-w/2, w/2]``, so a rim
    thinner than a voxel keeps its susceptibility times width (its mass) on any grid.
    """
    vs = np.asarray(phantom.voxel_size_mm, dtype=float)
    les = phantom.lesion_ids[box] == lesion_id
    d = signed_distance_mm(les, vs)
    half = 0.5 * float(row["rim_width_mm"])
    h = float(np.prod(vs) ** (1.0 / 3.0))
    pv = np.clip(np.minimum(d + h / 2, half) - np.maximum(d - h / 2, -half), 0.0, None) / h
    host = phantom.region[box]
    pv *= ((host == WM) | (host == CORTEX) | les) & ((phantom.lesion_ids[box] == 0) | les)
    idx = np.indices(les.shape).astype(float)
    centre_vox = np.array([np.mean(np.nonzero(les)[a]) for a in range(3)])
    dx = (idx[0] - centre_vox[0]) * vs[0]
    dy = (idx[1] - centre_vox[1]) * vs[1]
    ang = np.mod(np.degrees(np.arctan2(dy, dx)) - row["rim_start_deg"], 360.0)
    return (pv * (ang < 360.0 * float(row["rim_coverage"]))).astype(np.float32)


def _lesion_box(phantom: Phantom, lesion_id: int, margin_mm: float) -> tuple:
    ii = np.nonzero(phantom.lesion_ids == lesion_id)
    vs = np.asarray(phantom.voxel_size_mm, dtype=float)
    m = np.ceil(margin_mm / vs).astype(int) + 1
    return tuple(
        slice(max(int(ii[a].min()) - m[a], 0), min(int(ii[a].max()) + 1 + m[a], phantom.shape[a]))
        for a in range(3)
    )


def add_markers(phantom: Phantom, spec: MarkerSpec, seed: int | np.random.SeedSequence | None = 0) -> Phantom:
    """A new phantom with paramagnetic rims and central (or eccentric) veins as planned by ``spec``.

    The veins enter susceptibility, T2* magnitude and the other contrasts through the phantom's
    own vein model (partial volume); the rims enter the susceptibility only. The lesion table
    gains the columns :data:`MARKER_COLUMNS` (also when ``spec`` adds nothing).
    """
    rng = np.random.default_rng(seed)
    plan = plan_markers(phantom.lesion_table, spec, rng)
    table = phantom.lesion_table.merge(plan, left_on="lesion_id", right_index=True, how="left")
    if not spec.active:
        return dataclasses.replace(phantom, lesion_table=table)
    model = dataclasses.replace(phantom.model, veins=list(phantom.model.veins) + marker_veins(phantom, plan))
    model.lesions = phantom.model.lesions
    vs = np.asarray(phantom.voxel_size_mm, dtype=float)
    x, y, z = head_coordinates(phantom.shape, vs)
    vein_pv, vein_chi = model.vein_partial_volume(x, y, z, phantom.region, float(np.mean(vs)))
    chi = susceptibility_ppm(model, phantom.region, phantom.lesion_ids, vein_pv, vein_chi, x, y, z)
    del x, y, z
    for lid, row in plan[plan["prl"]].iterrows():
        box = _lesion_box(phantom, int(lid), 0.5 * float(row["rim_width_mm"]) + 1.0)
        shell = rim_shell(phantom, int(lid), row, box)
        chi[box] += np.float32(row["rim_chi_ppm"]) * shell * (1.0 - vein_pv[box])
    con = contrasts(model, phantom.region, phantom.lesion_ids, vein_pv, phantom.te_s)
    return dataclasses.replace(
        phantom,
        chi_ppm=chi,
        vessels=(vein_pv >= 0.25) & phantom.brain_mask,
        lesion_table=table,
        model=model,
        **con,
    )
