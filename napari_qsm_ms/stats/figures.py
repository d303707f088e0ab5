"""Figures of the study: Figure 2 (relative susceptibility by lesion type) and ROI overlay panels.

Figures are built as :class:`matplotlib.figure.Figure` objects without pyplot, so they work with
the Agg backend (command line, tests) and embed in Qt (the Statistics dock) alike.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..io.layout import TISSUE_CORTEX
from ..roi.rules import LESION_CLASSES
from .tests import N_COMPARISONS, included_rows, mixed_pairs, paper_tests

TYPE_STYLE = {
    "wm": ("WM\nlesions", "#1f77b4"),
    "cortical": ("cortical\nlesions", "#d62728"),
    "mixed_wm": ("mixed:\nWM part", "#6baed6"),
    "mixed_cortical": ("mixed:\ncortical part", "#fc9272"),
}
ROI_COLOURS = {"lesion": "#ff3030", "refwm": "#00e5ff", "refgm": "#ffd700"}


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "P n/a"
    if p < 1e-4:
        return f"P={p:.1e}"
    return f"P={p:.3f}" if p >= 0.001 else f"P={p:.4f}"


def _patients(n: int) -> str:
    return f"{n} patient" if n == 1 else f"{n} patients"


def _mean_sd_bar(ax, x: float, values: np.ndarray) -> None:
    if values.size == 0:
        return
    m = values.mean()
    sd = values.std(ddof=1) if values.size > 1 else 0.0
    ax.errorbar([x + 0.28], [m], yerr=[[sd], [sd]], fmt="s", color="black", ms=5, capsize=4, lw=1.4, zorder=5)


def figure2(lesions: pd.DataFrame, *, seed: int = 0, fig: Figure | None = None) -> Figure:
    """Figure 2 of the paper: (A) every lesion part by type, (B) per-patient means.

    Parameters
    ----------
    lesions : DataFrame
        Lesion table (only ``included`` rows are drawn).
    seed : int
        Seed of the horizontal jitter (the figure is reproducible).
    fig : Figure, optional
        Figure to draw into (cleared); a new 10 x 4.5 inch figure by default.

    Returns
    -------
    Figure
        Panel A: jittered points per lesion type with mean +/- SD (black square and bars), a grey
        line joining the WM and cortical part of each mixed lesion, n and the one-sample t-test P
        (uncorrected) under each group. Panel B: each subject's mean of WM and of cortical lesions,
        joined per subject, with mean +/- SD.
    """
    if fig is None:
        fig = Figure(figsize=(10, 4.5), dpi=110)
    fig.clear()
    ax_a, ax_b = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1.25]})
    rows = included_rows(lesions)
    summary = paper_tests(lesions)
    p_of = {(r.set, r.level): r.p for r in summary.itertuples()}
    rng = np.random.default_rng(seed)
    jitter: dict[tuple, float] = {}
    types = list(TYPE_STYLE)
    for x, t in enumerate(types):
        sub = rows[rows["lesion_type"] == t] if not rows.empty else rows
        vals = sub["relative_ppm"].to_numpy(dtype=float) if not sub.empty else np.array([])
        j = rng.uniform(-0.15, 0.15, size=vals.size)
        if not sub.empty:
            for (s, lid), dx in zip(zip(sub["subject"], sub["lesion_id"], strict=True), j, strict=True):
                jitter[(t, s, int(lid))] = dx
        ax_a.scatter(x + j, vals, s=14, color=TYPE_STYLE[t][1], alpha=0.75, edgecolors="none", zorder=3)
        _mean_sd_bar(ax_a, x, vals)
    pairs = mixed_pairs(lesions)
    for r in pairs.itertuples():
        x0 = 2 + jitter.get(("mixed_wm", r.subject, int(r.lesion_id)), 0.0)
        x1 = 3 + jitter.get(("mixed_cortical", r.subject, int(r.lesion_id)), 0.0)
        ax_a.plot([x0, x1], [r.wm, r.cortical], color="0.55", lw=0.8, zorder=2)
    labels = []
    for t in types:
        n = int((rows["lesion_type"] == t).sum()) if not rows.empty else 0
        labels.append(f"{TYPE_STYLE[t][0]}\nn={n}\n{_p_text(p_of.get((t, 'lesion'), np.nan))}")
    ax_a.set_xticks(range(len(types)), labels, fontsize=8)
    ax_a.axhline(0, color="0.3", lw=0.8, ls="--", zorder=1)
    ax_a.set_ylabel("relative susceptibility (ppm)")
    ax_a.set_title("A   per lesion", loc="left", fontsize=10)
    ax_a.set_xlim(-0.6, len(types) - 0.3)

    means = {}
    for t in ("wm", "cortical"):
        sub = rows[rows["lesion_type"] == t] if not rows.empty else rows
        means[t] = sub.groupby("subject")["relative_ppm"].mean() if not sub.empty else pd.Series(dtype=float)
    both = sorted(set(means["wm"].index) & set(means["cortical"].index))
    for s in both:
        ax_b.plot([0, 1], [means["wm"][s], means["cortical"][s]], color="0.7", lw=0.8, zorder=2)
    for x, t in enumerate(("wm", "cortical")):
        v = means[t].to_numpy(dtype=float)
        ax_b.scatter(
            np.full(v.size, x), v, s=22, color=TYPE_STYLE[t][1], alpha=0.85, edgecolors="none", zorder=3
        )
        _mean_sd_bar(ax_b, x, v)
    ax_b.set_xticks(
        [0, 1],
        [
            f"WM\n{_patients(means['wm'].size)}\n{_p_text(p_of.get(('wm', 'subject'), np.nan))}",
            f"cortical\n{_patients(means['cortical'].size)}\n{_p_text(p_of.get(('cortical', 'subject'), np.nan))}",
        ],
        fontsize=7.5,
    )
    ax_b.axhline(0, color="0.3", lw=0.8, ls="--", zorder=1)
    ax_b.set_xlim(-0.5, 1.6)
    ax_b.set_title("B   per patient", loc="left", fontsize=10)
    ax_b.set_ylabel("relative susceptibility (ppm)")
    for ax in (ax_a, ax_b):
        ax.spines[["top", "right"]].set_visible(False)
    fig.text(
        0.99,
        0.005,
        f"mean \u00b1 SD in black; P: one-sample t-test vs 0, uncorrected (Bonferroni: x{N_COMPARISONS})",
        ha="right",
        va="bottom",
        fontsize=7,
        color="0.35",
    )
    fig.subplots_adjust(left=0.085, right=0.985, top=0.93, bottom=0.2, wspace=0.3)
    return fig


def save_figure(fig: Figure, stem: str | Path) -> dict[str, Path]:
    """Save ``fig`` as ``stem.png`` (150 dpi) and ``stem.svg``; returns the paths by format."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    stem = Path(stem)
    if fig.canvas is None or type(fig.canvas).__name__ == "FigureCanvasBase":
        FigureCanvasAgg(fig)
    out = {}
    for ext, kw in (("png", {"dpi": 150}), ("svg", {})):
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, format=ext, facecolor="white", **kw)
        out[ext] = path
    return out


def choose_example_lesions(lesions: pd.DataFrame, n: int = 3) -> pd.DataFrame:
    """The largest included lesion of each class (wm, cortical, mixed), up to ``n`` lesions."""
    rows = included_rows(lesions)
    if rows.empty or n <= 0:
        return pd.DataFrame(columns=["subject", "lesion_id", "class"])
    size = rows.groupby(["subject", "lesion_id", "class"], sort=False)["lesion_voxels"].sum().reset_index()
    picks = []
    for klass in LESION_CLASSES:
        sub = size[size["class"] == klass]
        if not sub.empty:
            picks.append(sub.sort_values(["lesion_voxels", "subject"], ascending=[False, True]).iloc[0])
    return pd.DataFrame(picks).head(n).reset_index(drop=True)


def _canonical_slice(data: np.ndarray, affine: np.ndarray, index_vox: tuple[int, int, int], axis: int = 2):
    """Slice of ``data`` through ``index_vox`` across the source array axis ``axis``.

    Returns the 2-D slice in canonical (RAS+) in-plane order and the in-plane voxel sizes.
    """
    from ..io.nifti import to_canonical

    can, view = to_canonical(data, affine)
    ax_target = int(view.ornt[axis, 0])
    idx = np.array(index_vox, dtype=int)
    # index in canonical order: apply the permutation and flips of the orientation transform
    can_idx = np.zeros(3, dtype=int)
    for src_axis in range(3):
        tgt, flip = int(view.ornt[src_axis, 0]), view.ornt[src_axis, 1]
        can_idx[tgt] = idx[src_axis] if flip > 0 else data.shape[src_axis] - 1 - idx[src_axis]
    sl = np.take(can, can_idx[ax_target], axis=ax_target)
    sizes = np.sqrt((view.canonical_affine[:3, :3] ** 2).sum(axis=0))
    inplane = [a for a in range(3) if a != ax_target]
    return sl, (float(sizes[inplane[0]]), float(sizes[inplane[1]])), ax_target


@lru_cache(maxsize=12)
def _cached_volume(path: str, mtime_ns: int, size: int, dtype_name: str | None):
    """Volumes read for the ROI panels, cached while the file is unchanged (several lesions of
    one subject share them)."""
    from ..io.nifti import load_volume

    vol = load_volume(path, dtype=None if dtype_name is None else np.dtype(dtype_name), allow_nan=True)
    vol.data.setflags(write=False)
    return vol


def load_volume(path, dtype=np.float32, allow_nan: bool = True):
    """Read-only, cached :func:`napari_qsm_ms.io.nifti.load_volume` for the figures."""
    st = Path(path).stat()
    return _cached_volume(
        str(path), st.st_mtime_ns, st.st_size, None if dtype is None else np.dtype(dtype).name
    )


def roi_panel_figure(
    subject, lesion_id: int, *, pad_vox: int = 12, fig: Figure | None = None, label: str = ""
) -> Figure | None:
    """ROI outlines on every available series, on the lesion's central slice (paper Figs 1, 3).

    Parameters
    ----------
    subject : SubjectFiles
        The subject.
    lesion_id : int
        Lesion to show.
    pad_vox : int
        Margin (voxels) around the lesion and its references in the crop.
    fig : Figure, optional
        Figure to draw into.
    label : str
        Added to the title (e.g. the lesion class).

    Returns
    -------
    Figure or None
        Panels (whichever exist): T2* magnitude, QSM, WM-nulled MPRAGE, CSF-nulled MPRAGE and FLAIR
        (coregistered onto the T2* grid), with the lesion (red), WM reference (cyan) and cortical
        reference (yellow) outlined, on the central slice of :mod:`napari_qsm_ms.roi.rules` (where
        the reference is drawn), in radiological convention like the review dock (patient's right
        on the left; the sides are labelled); None when the lesion map or the lesion is missing.
    """
    where = _panel_slice(subject, lesion_id)
    if where is None:
        return None
    panels = _panel_series(subject, where.mask.shape)
    if not panels:
        return None
    outlines, cortex = _panel_outlines(subject, lesion_id, where)
    crop, lo, hi = _panel_crop(outlines, pad_vox)
    if fig is None:
        fig = Figure(figsize=(max(2.3 * len(panels), 5.2), 3.1), dpi=110)
    fig.clear()
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, data, cmap) in zip(axes, panels, strict=True):
        _draw_panel(ax, title, data, cmap, where, outlines, cortex, crop, lo, hi)
    fig.suptitle(
        f"sub-{subject.label}, lesion {lesion_id}{' (' + label + ')' if label else ''}, "
        f"central slice {where.slice} (file voxel axis {where.axis}), radiological (R on the left)\n"
        "red: lesion, cyan: WM reference, yellow: cortical reference, dotted: cortex boundary",
        fontsize=8,
    )
    fig.subplots_adjust(left=0.01, right=0.99, top=0.76, bottom=0.02, wspace=0.05)
    return fig


class _PanelSlice(NamedTuple):
    """Where a lesion's panel is cut: its mask, the file's affine, slice axis and index, a centre voxel."""

    mask: np.ndarray
    affine: np.ndarray
    axis: int
    slice: int
    centre: tuple[int, int, int]


def _panel_slice(subject, lesion_id: int) -> _PanelSlice | None:
    """The lesion's central slice (roi.rules) and the centre of its voxels there."""
    from ..roi.rules import lesion_central_slice, slice_axis_of_affine

    if not subject.lesions.exists():
        return None
    les_vol = load_volume(subject.lesions, dtype=None)
    mask = np.rint(np.asarray(les_vol.data)).astype(np.int64) == lesion_id
    if not mask.any():
        return None
    direction = slice_axis_of_affine(les_vol.affine)
    k = lesion_central_slice(mask, direction.axis, increasing_superior=direction.increasing_superior)
    centre = np.argwhere(np.take(mask, k, axis=direction.axis)).mean(axis=0).round().astype(int).tolist()
    centre.insert(direction.axis, k)
    return _PanelSlice(mask, les_vol.affine, direction.axis, k, tuple(int(v) for v in centre))


def _panel_series(subject, shape) -> list[tuple[str, np.ndarray, str]]:
    """(title, data, colormap) of every series on the lesion's grid that can be read."""
    series = [
        ("T2* magnitude", subject.magnitude),
        ("QSM (ppm)", subject.chimap),
        ("WM-nulled MPRAGE", subject.coreg_series("wmn")),
        ("CSF-nulled MPRAGE", subject.coreg_series("csfn")),
        ("FLAIR", subject.coreg_series("flair")),
    ]
    panels = []
    for title, path in series:
        if path.exists():
            try:
                vol = load_volume(path, allow_nan=True)
            except Exception:  # a broken optional series must not stop the report
                continue
            if vol.shape[:3] == shape:
                panels.append((title, vol.data, "gray"))
    return panels


def _panel_outlines(subject, lesion_id: int, where: _PanelSlice):
    """The lesion's and its references' masks on the slice (canonical in-plane order), and cortex."""
    outlines = {"lesion": where.mask}
    for name in ("refwm", "refgm"):
        path = getattr(subject, name)
        if path.exists():
            labels = np.rint(np.asarray(load_volume(path, dtype=None).data)).astype(np.int64)
            outlines[name] = labels == lesion_id
    cortex = None
    if subject.tissue.exists():
        tissue = np.rint(np.asarray(load_volume(subject.tissue, dtype=None).data)).astype(np.int64)
        if tissue.shape == where.mask.shape:
            cortex = _on_slice((tissue == TISSUE_CORTEX).astype(np.uint8), where) > 0
    return {n: _on_slice(m.astype(np.uint8), where) > 0 for n, m in outlines.items()}, cortex


def _on_slice(data: np.ndarray, where: _PanelSlice):
    return _canonical_slice(data, where.affine, where.centre, where.axis)[0]


def _panel_crop(outlines: dict[str, np.ndarray], pad_vox: int):
    union = np.zeros_like(outlines["lesion"])
    for m in outlines.values():
        union |= m
    pts = np.argwhere(union)
    lo = np.maximum(pts.min(axis=0) - pad_vox, 0)
    hi = np.minimum(pts.max(axis=0) + pad_vox + 1, union.shape)
    return (slice(lo[0], hi[0]), slice(lo[1], hi[1])), lo, hi


def _draw_panel(ax, title, data, cmap, where, outlines, cortex, crop, lo, hi) -> None:
    """One series: image, outlines, radiological orientation (patient's right on the left), sides."""
    img, (dx, dy), _ = _canonical_slice(data, where.affine, where.centre, where.axis)
    img = img[crop]
    extent = (lo[0] * dx, hi[0] * dx, lo[1] * dy, hi[1] * dy)
    finite = img[np.isfinite(img)]
    if title.startswith("QSM"):
        vmax = float(np.percentile(np.abs(finite), 99)) if finite.size else 0.1
        vmin, vmax = -max(vmax, 0.02), max(vmax, 0.02)
        title = f"QSM [{vmin:.2f}, {vmax:.2f}] ppm"
    else:
        vmin, vmax = np.percentile(finite, [1, 99.5]) if finite.size else (0, 1)
    ax.imshow(img.T, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
    show_cortex = cortex is not None and cortex[crop].any() and not cortex[crop].all()
    contours = [(cortex, "white", 0.6, ":")] if show_cortex else []
    contours += [(m, ROI_COLOURS[name], 1.0, "-") for name, m in outlines.items() if m[crop].any()]
    for m, colour, width, style in contours:
        ax.contour(m[crop].T.astype(float), levels=[0.5], colors=[colour], linewidths=width, linestyles=style,
                   origin="lower", extent=extent)
    ax.set_xlim(extent[1], extent[0])  # radiological: canonical x runs toward the patient's right
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.02, 0.02, "R", color="white", fontsize=7, transform=ax.transAxes)
    ax.text(0.93, 0.02, "L", color="white", fontsize=7, transform=ax.transAxes)
