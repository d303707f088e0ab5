"""A fast synthetic study for the statistics layer (tests, benchmark, screenshots).

Not a physical phantom (see :mod:`napari_qsm_ms.simulate` for that): each subject is an
ellipsoidal "brain" with a cortical shell (tissue 2) around white matter (tissue 3), a chi map with
noise, and lesions placed as small blobs with their reference ROIs drawn as the paper describes
(a ring of WM around WM lesions with a gap, a strip of cortex beside cortical lesions, one of each
for mixed lesions). Each lesion part gets a known susceptibility shift, so the expected relative
susceptibility is known.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..io.atomic import atomic_write_text, atomic_write_tsv
from ..io.layout import StudyFiles
from ..io.nifti import save_volume

#: Table 1 of Bian et al. 2016: (cortical, wm, mixed) lesions per patient.
PAPER_TABLE1 = [
    (2, 6, 1),
    (1, 11, 0),
    (0, 2, 0),
    (5, 23, 1),
    (7, 13, 1),
    (3, 30, 4),
    (1, 5, 0),
    (0, 4, 0),
    (0, 4, 1),
    (0, 12, 0),
    (2, 15, 1),
    (6, 7, 0),
    (0, 15, 0),
    (0, 0, 0),
]

#: Table 3 of the paper: mean and SD (ppm) of the relative susceptibility per lesion type.
PAPER_EFFECTS_PPM = {
    "wm": (0.014, 0.014),
    "cortical": (-0.018, 0.013),
    "mixed_wm": (0.014, 0.018),
    "mixed_cortical": (-0.009, 0.012),
}

_BACKGROUND_PPM = {2: 0.02, 3: -0.03}


def _ellipsoid_radius(shape: tuple[int, int, int]) -> np.ndarray:
    axes = [np.arange(n) - (n - 1) / 2 for n in shape]
    semi = [0.46 * n for n in shape]
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    return np.sqrt(sum((g / s) ** 2 for g, s in zip(grids, semi, strict=True)))


def make_subject(
    counts: tuple[int, int, int],
    *,
    shape: tuple[int, int, int] = (96, 96, 40),
    seed: int = 0,
    effects_ppm: dict[str, tuple[float, float]] | None = None,
    noise_ppm: float = 0.01,
) -> dict:
    """Arrays of one synthetic subject.

    Parameters
    ----------
    counts : (int, int, int)
        Numbers of cortical, WM and mixed lesions.
    shape : tuple of int
        Grid shape (slices along the last axis).
    seed : int
        Random seed.
    effects_ppm : dict, optional
        ``{lesion_type: (mean, sd)}`` of the designed shift of each lesion part (ppm); default
        :data:`PAPER_EFFECTS_PPM`.
    noise_ppm : float
        SD of the voxel noise added to chi (ppm).

    Returns
    -------
    dict
        ``chi_ppm, tissue, brain_mask, lesions, refwm, refgm, magnitude, csfn, wmn, flair`` arrays
        and ``table`` (lesion_id, class, designed shifts per part).
    """
    effects = dict(PAPER_EFFECTS_PPM if effects_ppm is None else effects_ppm)
    rng = np.random.default_rng(seed)
    r = _ellipsoid_radius(shape)
    brain = r < 1.0
    tissue = np.zeros(shape, np.uint8)
    tissue[brain] = 3
    tissue[brain & (r > 0.84)] = 2
    lesions = np.zeros(shape, np.int32)
    refwm = np.zeros(shape, np.int32)
    refgm = np.zeros(shape, np.int32)
    shift = np.zeros(shape, np.float32)
    used = np.zeros(shape, bool)
    nx, ny, nz = shape
    ii, jj = np.meshgrid(np.arange(-7, 8), np.arange(-7, 8), indexing="ij")
    d_in = np.sqrt(ii**2 + jj**2)
    rows = []
    kinds = ["cortical"] * counts[0] + ["wm"] * counts[1] + ["mixed"] * counts[2]
    lid = 0
    for kind in kinds:
        for _attempt in range(4000):
            k = int(rng.integers(int(0.25 * nz), int(0.75 * nz)))
            i = int(rng.integers(10, nx - 10))
            j = int(rng.integers(10, ny - 10))
            rc = r[i, j, k]
            target = {"wm": (0.0, 0.68), "cortical": (0.9, 0.95), "mixed": (0.82, 0.87)}[kind]
            if not (target[0] <= rc <= target[1]):
                continue
            box = (slice(i - 7, i + 8), slice(j - 7, j + 8))
            if used[box + (slice(k - 1, k + 2),)].any():
                continue
            break
        else:  # pragma: no cover - only for absurd counts
            raise ValueError(f"cannot place {len(kinds)} lesions on a {shape} grid")
        lid += 1
        radius = 2.6 if kind != "mixed" else 3.2
        blob2d = d_in <= radius
        sl = slice(k - 1, k + 2)
        tis = tissue[box + (sl,)]
        lesion_box = np.repeat(blob2d[:, :, None], 3, axis=2)
        lesion_box[:, :, [0, 2]] &= (d_in <= radius - 0.8)[:, :, None]
        if kind == "wm":
            lesion_box &= tis == 3
        elif kind == "cortical":
            lesion_box &= tis == 2
        else:
            lesion_box &= tis > 1
        lesions[box + (sl,)][lesion_box] = lid
        centre_t = tissue[box + (k,)]
        ring = (d_in > radius + 1.5) & (d_in <= radius + 4.0)
        strip = (d_in > radius + 1.0) & (d_in <= radius + 4.4)
        row = dict(lesion_id=lid, **{"class": kind})
        if kind in ("wm", "mixed"):
            refwm[box + (k,)][ring & (centre_t == 3)] = lid
        if kind in ("cortical", "mixed"):
            refgm[box + (k,)][strip & (centre_t == 2)] = lid
        for part, t_code, key in (
            ("wm", 3, "wm" if kind == "wm" else "mixed_wm"),
            ("cortical", 2, "cortical" if kind == "cortical" else "mixed_cortical"),
        ):
            if kind in ("wm", "cortical") and part != kind:
                continue
            m, s = effects[key]
            delta = float(rng.normal(m, s))
            row[f"designed_delta_{part}_ppm"] = delta
            shift[box + (sl,)][lesion_box & (tis == t_code)] = delta
        used[box + (slice(k - 1, k + 2),)] = True
        rows.append(row)
    chi = np.zeros(shape, np.float32)
    for code, val in _BACKGROUND_PPM.items():
        chi[tissue == code] = val
    chi += shift
    chi += rng.normal(0, noise_ppm, shape).astype(np.float32)
    chi[~brain] = 0.0
    contrast = {
        "magnitude": {2: 0.8, 3: 0.6, "lesion": 1.0},
        "csfn": {2: 0.55, 3: 0.9, "lesion": 0.35},
        "wmn": {2: 0.7, 3: 0.15, "lesion": 0.6},
        "flair": {2: 0.6, 3: 0.45, "lesion": 1.0},
    }
    images = {}
    for name, c in contrast.items():
        img = np.zeros(shape, np.float32)
        img[tissue == 2] = c[2]
        img[tissue == 3] = c[3]
        img[lesions > 0] = c["lesion"]
        img += rng.normal(0, 0.04, shape).astype(np.float32)
        img[~brain] = rng.normal(0, 0.02, int((~brain).sum())).astype(np.float32)
        images[name] = img
    table = pd.DataFrame(rows)
    for col in ("designed_delta_wm_ppm", "designed_delta_cortical_ppm"):
        if col not in table:
            table[col] = np.nan
    return dict(
        chi_ppm=chi,
        tissue=tissue,
        brain_mask=brain,
        lesions=lesions,
        refwm=refwm,
        refgm=refgm,
        table=table,
        **images,
    )


def write_synthetic_study(
    root: str | os.PathLike,
    counts: list[tuple[int, int, int]] | None = None,
    *,
    shape: tuple[int, int, int] = (96, 96, 40),
    voxel_size_mm: tuple[float, float, float] = (0.75, 0.75, 1.5),
    seed: int = 0,
    effects_ppm: dict[str, tuple[float, float]] | None = None,
    write_classes: bool = True,
    series: bool = True,
) -> pd.DataFrame:
    """Write a synthetic study in the layout of docs/study_layout.md.

    Parameters
    ----------
    root : path
        Study folder to create.
    counts : list of (cortical, wm, mixed)
        Lesions per subject (default :data:`PAPER_TABLE1`, 14 subjects).
    shape, voxel_size_mm : tuple
        Grid of every subject.
    seed : int
        Base seed (subject k uses ``seed + k``).
    effects_ppm : dict, optional
        Designed shifts (default :data:`PAPER_EFFECTS_PPM`).
    write_classes : bool
        Write ``sub-*_lesions.tsv`` with the classes (agreed by 3 raters).
    series : bool
        Also write magnitude and coregistered MPRAGEs / FLAIR (for the ROI panels).

    Returns
    -------
    DataFrame
        The designed lesions of every subject (subject, lesion_id, class, designed shifts).
    """
    counts = PAPER_TABLE1 if counts is None else counts
    study = StudyFiles.at(root)
    study.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        study.root / "dataset_description.json",
        '{"Name": "synthetic QSM-MS statistics study", "BIDSVersion": "1.8.0"}\n',
    )
    affine = np.diag([*voxel_size_mm, 1.0])
    affine[:3, 3] = [-(n - 1) * v / 2 for n, v in zip(shape, voxel_size_mm, strict=True)]
    tables = []
    for k, c in enumerate(counts):
        label = f"{k + 1:02d}"
        (study.root / f"sub-{label}" / "anat").mkdir(parents=True, exist_ok=True)
        sub = study.subject(label)
        d = make_subject(tuple(c), shape=shape, seed=seed + k, effects_ppm=effects_ppm)
        save_volume(sub.chimap, d["chi_ppm"], affine)
        save_volume(sub.brain_mask, d["brain_mask"], affine)
        save_volume(sub.tissue, d["tissue"], affine)
        save_volume(sub.lesions, d["lesions"], affine)
        save_volume(sub.refwm, d["refwm"], affine)
        save_volume(sub.refgm, d["refgm"], affine)
        if series:
            save_volume(sub.magnitude, d["magnitude"], affine)
            for key in ("csfn", "wmn", "flair"):
                save_volume(sub.coreg_series(key), d[key], affine)
        table = d["table"].assign(subject=label)
        if write_classes and len(table):
            cls = pd.DataFrame(
                {
                    "lesion_id": table["lesion_id"],
                    "class": table["class"],
                    "consensus": "agreed",
                    "votes": table["class"] + ":3",
                    "n_raters": 3,
                    "agreement": 1.0,
                    "resolution_reason": "",
                }
            )
            atomic_write_tsv(sub.lesions_tsv, cls)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
