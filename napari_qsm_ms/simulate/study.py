"""Write a whole simulated 7 T MS study in the layout of docs/study_layout.md, with ground truth.

Per subject:

* ``sub-<label>/anat``: T2* GRE magnitude (int16) and wrapped phase at TE 17.7 ms (raw integers
  -4096..4095 as dcm2niix writes them, or float radians, alternating between subjects) with its
  JSON sidecar; WM-nulled MPRAGE, CSF-nulled MPRAGE and FLAIR on their own coronal grids (LIA
  orientation, isotropic voxels, whole-head field of view) after a small random rigid head
  movement relative to the T2* session;
* ``derivatives/qsm-ms/sub-<label>/anat``: tissue classes and lesion labels "already drawn" on
  the T2* grid (the truth), optionally three raters' votes;
* ``derivatives/simulation/sub-<label>/anat``: ground truth (see :mod:`.truth`).

The study is built in a temporary folder beside ``out_study`` and renamed into place at the end,
so a failed or cancelled run leaves nothing half written.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from .. import __version__
from ..errors import ParameterError, StudyLayoutError
from ..io.atomic import atomic_path, atomic_write_json, atomic_write_text, atomic_write_tsv
from ..io.layout import COREG_SERIES, DERIVATIVES, StudyFiles, SubjectFiles
from ..io.nifti import save_volume
from ..progress import ProgressCallback, report, scaled
from .forward import DEFAULT_B0_T, DEFAULT_SNR, DEFAULT_TE_S, gre_signal
from .markers import MarkerSpec, add_markers
from .phantom import ANATOMIES, Phantom, contrasts, make_phantom, validate_geometry
from .truth import SIMULATION_DERIVATIVES, TruthFiles

DEFAULT_SHAPE = (144, 176, 80)
DEFAULT_VOXEL_SIZE_MM = (1.0, 1.0, 1.4)
DEFAULT_RAW_VOXEL_MM = {"wmn": 1.0, "csfn": 0.8, "flair": 0.8}
DEFAULT_N_LESIONS = (6, 3, 2)
RATERS = ("r1", "r2", "r3")
RAW_PHASE_MAX = 4096  # raw phase integers span -4096..4095 (12-bit signed, as dcm2niix)
CONVENTIONAL_SNR = 30.0  # brightest tissue over noise SD in the MPRAGE/FLAIR series
MAX_VOXELS = 64_000_000  # refuse grids beyond ~ 64 M voxels (memory)
BIDS_VERSION = "1.9.0"

#: Nominal sequence parameters written into the sidecars (the paper's protocol).
SERIES_SIDECAR = {
    "wmn": {"InversionTime": 0.68, "MRAcquisitionType": "3D", "SeriesDescription": "WM-nulled MPRAGE"},
    "csfn": {"InversionTime": 1.2, "MRAcquisitionType": "3D", "SeriesDescription": "CSF-nulled MPRAGE"},
    "flair": {"InversionTime": 2.135, "MRAcquisitionType": "3D", "SeriesDescription": "MPFLAIR"},
}


# --- geometry of the raw series ------------------------------------------------------------------


def rotation_matrix(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotation by ``angle_deg`` about ``axis`` (Rodrigues)."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    t = np.deg2rad(angle_deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


def random_misalignment(
    rng: np.random.Generator, max_rotation_deg: float = 3.0, max_shift_mm: float = 3.0
) -> tuple[np.ndarray, float, np.ndarray]:
    """A random rigid world transform: rotation of 1..max degrees, shift of 1..max mm.

    Returns ``(matrix 4x4, rotation_deg, translation_mm)``.
    """
    axis = rng.normal(size=3)
    angle = float(rng.uniform(1.0, max_rotation_deg)) * (1 if rng.random() < 0.5 else -1)
    direction = rng.normal(size=3)
    shift = direction / np.linalg.norm(direction) * rng.uniform(1.0, max_shift_mm)
    m = np.eye(4)
    m[:3, :3] = rotation_matrix(axis, angle)
    m[:3, 3] = shift
    return m, abs(angle), shift


def coronal_grid(
    half_extent_mm: np.ndarray, center_mm: np.ndarray, voxel_mm: float
) -> tuple[tuple, np.ndarray]:
    """A coronal (LIA: left, inferior, anterior) isotropic grid covering a world box.

    Parameters
    ----------
    half_extent_mm : array (3,)
        Half size of the box along world x, y, z.
    center_mm : array (3,)
        Box centre (world).
    voxel_mm : float
        Voxel edge.

    Returns
    -------
    shape, affine
    """
    directions = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]).T  # columns: L, I, A
    world_axis = [0, 2, 1]  # array axis i runs along world axis world_axis[i]
    shape = tuple(int(np.ceil(2 * half_extent_mm[w] / voxel_mm)) + 1 for w in world_axis)
    affine = np.eye(4)
    affine[:3, :3] = directions * voxel_mm
    center_idx = (np.asarray(shape) - 1) / 2.0
    affine[:3, 3] = np.asarray(center_mm) - affine[:3, :3] @ center_idx
    return shape, affine


def raw_series_grid(
    phantom: Phantom, voxel_mm: float, misalignment: np.ndarray, *, margin_mm: float = 5.0
) -> tuple[tuple[int, int, int], np.ndarray]:
    """Coronal grid of a conventional series covering the whole head (plus ``margin_mm``).

    The anatomy at head-frame point ``h`` lies, in that session, at world
    ``inv(misalignment) @ head_to_world @ h``, so ``misalignment`` maps the series' world to the
    T2* session's world.
    """
    head_to_series = np.linalg.inv(misalignment) @ phantom.head_to_world
    rot = head_to_series[:3, :3]
    half = np.sqrt(((rot * phantom.model.head_semi_mm[None, :]) ** 2).sum(axis=1)) + margin_mm
    center = (head_to_series @ np.append(phantom.model.head_center_mm, 1.0))[:3]
    shape, affine = coronal_grid(half, center, voxel_mm)
    if int(np.prod(shape)) > MAX_VOXELS:
        raise ParameterError(f"series grid {shape} at {voxel_mm} mm is too large")
    return shape, affine


def sample_model(
    phantom: Phantom, shape, affine: np.ndarray, misalignment: np.ndarray, voxel_mm: float
) -> dict[str, np.ndarray]:
    """Evaluate the phantom's analytic anatomy on another grid of the (moved) head.

    Returns the model ``region`` codes, ``lesion_ids`` and the four noise-free contrasts
    (``t2star_magnitude``, ``t1_wmn``, ``t1_csfn``, ``flair``) on that grid.
    """
    model = phantom.model
    series_to_head = np.linalg.inv(np.linalg.inv(misalignment) @ phantom.head_to_world) @ affine
    idx = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij", sparse=True)
    m = series_to_head.astype(np.float32)
    x, y, z = (m[i, 0] * idx[0] + m[i, 1] * idx[1] + m[i, 2] * idx[2] + m[i, 3] for i in range(3))
    region, _depth = model.regions(x, y, z)
    x, y, z = (np.broadcast_to(c, tuple(shape)) for c in (x, y, z))
    vein_pv, _ = model.vein_partial_volume(x, y, z, region, voxel_mm)
    lesion_ids = model.lesion_map(x, y, z, region)
    out = contrasts(model, region, lesion_ids, vein_pv, phantom.te_s)
    out["region"] = region
    out["lesion_ids"] = lesion_ids
    return out


SERIES_CONTRAST = {"wmn": "t1_wmn", "csfn": "t1_csfn", "flair": "flair"}


def raw_series(
    phantom: Phantom, key: str, voxel_mm: float, misalignment: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A conventional series (``key`` in 'wmn', 'csfn', 'flair') on its own coronal grid.

    Returns
    -------
    data : ndarray, int16
        Noisy (Rician) magnitude image.
    affine : ndarray (4, 4)
    """
    shape, affine = raw_series_grid(phantom, voxel_mm, misalignment)
    image = sample_model(phantom, shape, affine, misalignment, voxel_mm)[SERIES_CONTRAST[key]]
    sd = float(image.max()) / CONVENTIONAL_SNR
    noisy = np.hypot(
        image + sd * rng.standard_normal(shape, dtype=np.float32),
        sd * rng.standard_normal(shape, dtype=np.float32),
    )
    return np.clip(np.round(noisy), 0, 32767).astype(np.int16), affine


# --- writing helpers -----------------------------------------------------------------------------


def save_scaled_int16(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """Save a float map as int16 with scl_slope/scl_inter chosen by nibabel (about 1e-5 of the range).

    Used for the compact sample study; :func:`napari_qsm_ms.io.load_volume` returns the scaled
    float values.
    """
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), np.asarray(affine, dtype=float))
    img.set_data_dtype(np.int16)
    img.set_sform(img.affine, code=1)
    img.set_qform(img.affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)


def phase_to_raw_int16(phase_rad: np.ndarray) -> np.ndarray:
    """Wrapped radians ``[-pi, pi)`` to raw integers ``-4096..4095``."""
    raw = np.round(np.asarray(phase_rad, dtype=np.float64) / np.pi * RAW_PHASE_MAX).astype(np.int32)
    raw[raw >= RAW_PHASE_MAX] -= 2 * RAW_PHASE_MAX
    raw[raw < -RAW_PHASE_MAX] += 2 * RAW_PHASE_MAX
    return raw.astype(np.int16)


def rater_votes(
    lesions: pd.DataFrame, rng: np.random.Generator, raters: Sequence[str] = RATERS
) -> dict[str, pd.DataFrame]:
    """Three raters' blinded votes: mostly the true class, with a few plausible disagreements."""
    alternatives = {
        "wm": ["mixed", "not_lesion"],
        "cortical": ["mixed", "not_lesion"],
        "mixed": ["wm", "cortical"],
    }
    base = _dt.datetime(2016, 5, 2, 9, 0, 0, tzinfo=_dt.timezone.utc)
    out = {}
    for r, rater in enumerate(raters):
        rows = []
        for k, les in enumerate(lesions.to_dict("records")):
            cls = les["class"]
            vote, comment = cls, ""
            if rng.random() < 0.15:
                vote = str(rng.choice(alternatives[cls]))
                comment = {
                    "mixed": "boundary unclear on CSF-nulled MPRAGE",
                    "wm": "mostly juxtacortical white matter",
                    "cortical": "looks intracortical",
                    "not_lesion": "could be a vessel or artefact",
                }[vote]
            stamp = base + _dt.timedelta(days=r, minutes=3 * k)
            rows.append(
                {
                    "lesion_id": int(les["lesion_id"]),
                    "vote": vote,
                    "comment": comment,
                    "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "candidate_source": "drawn",
                    "history": "",
                }
            )
        out[rater] = pd.DataFrame(
            rows, columns=["lesion_id", "vote", "comment", "timestamp", "candidate_source", "history"]
        )
    return out


def _truth_lesion_frame(phantom: Phantom) -> pd.DataFrame:
    t = phantom.lesion_table.copy()
    for col in ("center_vox", "center_mm", "semi_axes_mm"):
        t[col] = [" ".join(str(v) for v in tup) for tup in t[col]]
    # realised mean susceptibility per part (truth), for convenience
    for part, code in (("wm", 3), ("cortical", 2)):
        vals = []
        for lid in t["lesion_id"]:
            m = (phantom.lesion_ids == lid) & (phantom.tissue == code)
            vals.append(float(phantom.chi_ppm[m].mean()) if m.any() else float("nan"))
        t[f"true_mean_chi_{part}_part_ppm"] = vals
    return t


def _dataset_description(name: str, dataset_type: str, generated: bool) -> dict:
    desc = {"Name": name, "BIDSVersion": BIDS_VERSION, "DatasetType": dataset_type, "License": "CC0"}
    if generated:
        desc["GeneratedBy"] = [
            {
                "Name": "napari-qsm-ms simulate",
                "Version": __version__,
                "Description": "numerical 7 T head phantom",
            }
        ]
    return desc


# --- subject and study ---------------------------------------------------------------------------


def simulate_subject(
    root: Path,
    label: str,
    seed: np.random.SeedSequence,
    *,
    shape,
    voxel_size_mm,
    oblique_deg: float,
    n_lesions,
    phase_units: str,
    raw_voxel_mm: dict,
    te_s: float,
    b0_t: float,
    snr: float,
    compact_truth: bool,
    raters: Sequence[str] | None,
    anatomy: str = "synthetic",
    progress: ProgressCallback | None = None,
    markers: MarkerSpec | None = None,
) -> dict:
    """Simulate and write one subject under ``root``; return its simulation parameters."""
    s_phantom, s_noise, s_raw, s_raters = seed.spawn(4)
    subject = SubjectFiles(root, label)
    truth = TruthFiles(root, label)
    phantom = make_phantom(
        shape,
        voxel_size_mm,
        seed=s_phantom,
        n_lesions=n_lesions,
        oblique_deg=oblique_deg,
        te_s=te_s,
        anatomy=anatomy,
        progress=scaled(progress, 0.0, 0.15),
    )
    if markers is not None:  # rims and central veins (simulate/markers.py); own seed, others unchanged
        phantom = add_markers(phantom, markers, seed.spawn(1)[0])
    gre = gre_signal(
        phantom, te_s=te_s, b0_t=b0_t, snr=snr, seed=s_noise, progress=scaled(progress, 0.15, 0.55)
    )
    aff = phantom.affine
    report(progress, 0.55, "writing T2* magnitude and phase")
    save_volume(subject.magnitude, np.clip(np.round(gre.magnitude), 0, 32767), aff, dtype=np.int16)
    if phase_units == "raw":
        save_volume(subject.phase, phase_to_raw_int16(gre.phase_rad), aff, dtype=np.int16)
    else:
        # radians on the 12-bit grid of a real scanner (pi/4096 steps): realistic and compressible
        save_volume(
            subject.phase,
            phase_to_raw_int16(gre.phase_rad).astype(np.float32) * np.float32(np.pi / RAW_PHASE_MAX),
            aff,
            dtype=np.float32,
        )
    atomic_write_json(
        subject.phase_json,
        {
            "EchoTime": te_s,
            "MagneticFieldStrength": b0_t,
            "RepetitionTime": 1.2,
            "FlipAngle": 60,
            "MRAcquisitionType": "2D",
            "ImageType": ["ORIGINAL", "PRIMARY", "P", "ND"],
            "Units": "rad" if phase_units == "rad" else "arbitrary",
            "Manufacturer": "napari-qsm-ms simulation",
            "SeriesDescription": "T2* SPGR phase (simulated)",
        },
    )
    rng_raw = np.random.default_rng(s_raw)
    transforms = {}
    for i, key in enumerate(COREG_SERIES):
        report(progress, 0.6 + 0.08 * i, f"{key} on its own grid")
        matrix, angle, shift = random_misalignment(rng_raw)
        data, raffine = raw_series(phantom, key, float(raw_voxel_mm[key]), matrix, rng_raw)
        save_volume(subject.raw_series(key), data, raffine, dtype=np.int16)
        atomic_write_json(
            subject.raw_series(key).with_name(subject.raw_series(key).name.replace(".nii.gz", ".json")),
            {
                **SERIES_SIDECAR[key],
                "MagneticFieldStrength": b0_t,
                "Manufacturer": "napari-qsm-ms simulation",
            },
        )
        transforms[key] = {
            "matrix": matrix,
            "inverse": np.linalg.inv(matrix),
            "rotation_deg": angle,
            "translation_mm": shift,
            "from": subject.raw_series(key).name,
            "to": subject.magnitude.name,
            "convention": "x_T2starw_world = matrix @ x_series_world (homogeneous, scanner RAS+ mm)",
        }
        atomic_write_json(truth.transform(key), transforms[key])
    report(progress, 0.85, "writing truth and labels")
    save_truth = (
        save_scaled_int16 if compact_truth else (lambda p, d, a: save_volume(p, d, a, dtype=np.float32))
    )
    save_truth(truth.chimap, phantom.chi_ppm, aff)
    # compact truth keeps the fields inside the brain only (zero outside) so that they compress
    field_mask = phantom.brain_mask if compact_truth else np.ones(phantom.shape, dtype=bool)
    save_truth(truth.local_field, np.where(field_mask, gre.local_field_ppm, 0.0), aff)
    save_truth(truth.background_field, np.where(field_mask, gre.background_field_ppm, 0.0), aff)
    label_dtype = np.uint8 if len(phantom.lesion_table) <= 255 else np.int16
    save_volume(truth.tissue, phantom.tissue, aff, dtype=np.uint8)
    save_volume(truth.lesions, phantom.lesion_ids, aff, dtype=label_dtype)
    save_volume(truth.vessels, phantom.vessels, aff, dtype=np.uint8)
    save_volume(truth.brain_mask, phantom.brain_mask, aff, dtype=np.uint8)
    atomic_write_tsv(truth.lesions_tsv, _truth_lesion_frame(phantom))
    # consensus tissue classes and lesion labels "already drawn" (here: the truth)
    save_volume(subject.tissue, phantom.tissue, aff, dtype=np.uint8)
    save_volume(subject.lesions, phantom.lesion_ids, aff, dtype=label_dtype)
    if raters:
        for rater, votes in rater_votes(
            phantom.lesion_table, np.random.default_rng(s_raters), raters
        ).items():
            atomic_write_tsv(subject.votes_tsv(rater), votes)
    params = {
        "subject": f"sub-{label}",
        "anatomy": anatomy,
        "shape": list(phantom.shape),
        "voxel_size_mm": list(phantom.voxel_size_mm),
        "oblique_deg": oblique_deg,
        "affine": aff,
        "b0_dir_voxel": gre.b0_dir,
        "echo_time_s": te_s,
        "field_strength_t": b0_t,
        "snr_wm": snr,
        "noise_sd": gre.noise_sd,
        "phase_offset_rad": gre.phase_offset_rad,
        "phase_units": phase_units,
        "n_lesions": {"wm": int(n_lesions[0]), "cortical": int(n_lesions[1]), "mixed": int(n_lesions[2])},
        "raw_voxel_mm": dict(raw_voxel_mm),
        "truth_storage": "int16 with scl_slope, fields zero outside the brain"
        if compact_truth
        else "float32",
        "chi_reference": "CSF (ppm); background sources relative to air, air - tissue = 9.4 ppm",
        "field_convention": "field_ppm = IFFT(D * FFT(chi_ppm)), D = 1/3 - (k.b0)^2/k^2, zero padded x2",
    }
    if markers is not None:
        params["markers"] = dataclasses.asdict(markers)
    atomic_write_json(truth.parameters_json, params)
    report(progress, 1.0, f"sub-{label} done")
    return params


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise StudyLayoutError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise StudyLayoutError(f"{out}: folder exists and is not empty (use --overwrite to replace it)")
    if out.parent.exists() and not out.parent.is_dir():
        raise StudyLayoutError(f"{out.parent}: is a file, cannot create the study folder in it")
    if not out.parent.exists():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StudyLayoutError(
                f"{out.parent}: cannot create the folder ({exc.strerror or exc})"
            ) from None


def simulate_study(
    out_study: str | os.PathLike,
    n_subjects: int = 2,
    *,
    seed: int = 0,
    voxel_size_mm=DEFAULT_VOXEL_SIZE_MM,
    shape=DEFAULT_SHAPE,
    oblique_deg: float | Sequence[float] = 0.0,
    n_lesions=DEFAULT_N_LESIONS,
    raw_voxel_mm: dict | None = None,
    phase_units: str | Sequence[str] = ("raw", "rad"),
    te_s: float = DEFAULT_TE_S,
    b0_t: float = DEFAULT_B0_T,
    snr: float = DEFAULT_SNR,
    compact_truth: bool = False,
    raters: Sequence[str] | None = RATERS,
    anatomy: str = "synthetic",
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    markers: MarkerSpec | None = None,
) -> StudyFiles:
    """Simulate a study of ``n_subjects`` MS patients at 7 T and write it to ``out_study``.

    Parameters
    ----------
    out_study : path
        Output folder; must not exist, be empty, or ``overwrite`` must be set.
    n_subjects : int
        Number of subjects (``sub-01`` ...), 1..99.
    seed : int
        Seed of everything (anatomy, lesions, deltas, noise, misalignments, votes).
    voxel_size_mm : 3 floats
        T2* voxel size, mm (the paper: 0.47 x 0.47 x 1).
    shape : 3 ints
        T2* matrix (the paper: 384 x 384 x 90).
    oblique_deg : float or sequence of float
        Slab tilt about the left-right axis per subject (a single value applies to all), degrees.
    n_lesions : 3 ints
        (WM, cortical, mixed) lesions per subject.
    raw_voxel_mm : dict, optional
        Isotropic voxel edge (mm) of the 'wmn', 'csfn', 'flair' series; default 1.0, 0.8, 0.8.
    phase_units : 'raw' or 'rad', or a sequence cycled over subjects
        How the phase is stored (default: raw integers for odd, radians for even subjects).
    te_s, b0_t : float
        Echo time (s) and field (T): 0.0177 and 7.
    snr : float
        Magnitude SNR of normal WM.
    compact_truth : bool
        Store truth maps as int16 with scale factors (resolution ~1e-5 of their range) instead of
        float32.
    raters : sequence of str or None
        Names of the raters whose simulated votes are written (None: no votes).
    anatomy : {'synthetic', 'mni'}
        Analytic head, or real brain anatomy from the MNI ICBM152 2009 templates (then a
        ``NOTICE`` with the templates' copyright is written into the study).
    overwrite : bool
        Replace a non-empty ``out_study``.
    progress : callable, optional
        ``progress(fraction, message)``; may raise CancelledError.
    markers : MarkerSpec, optional
        Paramagnetic rims and central veins (:mod:`.markers`); their truth joins the lesions TSV.

    Returns
    -------
    StudyFiles
    """
    out = Path(out_study)
    if not isinstance(n_subjects, (int, np.integer)) or not 1 <= n_subjects <= 99:
        raise ParameterError(f"number of subjects must be between 1 and 99, got {n_subjects}")
    try:
        shape_t = tuple(int(v) for v in shape)
        vs = tuple(float(v) for v in voxel_size_mm)
    except (TypeError, ValueError):
        raise ParameterError(
            f"shape and voxel size must be 3 numbers each, got {shape} and {voxel_size_mm}"
        ) from None
    if len(shape_t) != 3 or len(vs) != 3:
        raise ParameterError(f"shape and voxel size must be 3 numbers each, got {shape} and {voxel_size_mm}")
    if int(np.prod(shape_t)) > MAX_VOXELS:
        raise ParameterError(f"shape {shape_t} has more than {MAX_VOXELS} voxels")
    raw_vox = dict(DEFAULT_RAW_VOXEL_MM if raw_voxel_mm is None else raw_voxel_mm)
    if set(raw_vox) != set(COREG_SERIES) or not all(0.3 <= float(v) <= 3.0 for v in raw_vox.values()):
        raise ParameterError(f"raw voxel sizes must give 'wmn', 'csfn', 'flair' in 0.3..3 mm, got {raw_vox}")
    units = [phase_units] if isinstance(phase_units, str) else list(phase_units)
    if not units or any(u not in ("raw", "rad") for u in units):
        raise ParameterError(f"phase units must be 'raw' or 'rad', got {phase_units}")
    obliques = [float(oblique_deg)] if np.isscalar(oblique_deg) else [float(v) for v in oblique_deg]
    if not obliques:
        raise ParameterError("oblique angle list is empty")
    for ob in obliques:
        validate_geometry(shape_t, vs, n_lesions, ob)
    if anatomy not in ANATOMIES:
        raise ParameterError(f"unknown anatomy {anatomy!r} (use {' or '.join(ANATOMIES)})")
    _check_output(out, overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        subject_seeds = np.random.SeedSequence(int(seed)).spawn(n_subjects)
        labels = [f"{i + 1:02d}" for i in range(n_subjects)]
        participants = []
        rng_demo = np.random.default_rng(np.random.SeedSequence([int(seed), 99]))
        for i, (label, ss) in enumerate(zip(labels, subject_seeds)):
            sub_progress = scaled(progress, i / n_subjects, (i + 1) / n_subjects)
            report(sub_progress, 0.0, f"sub-{label}")
            simulate_subject(
                tmp,
                label,
                ss,
                shape=shape_t,
                voxel_size_mm=vs,
                oblique_deg=obliques[i % len(obliques)],
                n_lesions=n_lesions,
                phase_units=units[i % len(units)],
                raw_voxel_mm=raw_vox,
                te_s=te_s,
                b0_t=b0_t,
                snr=snr,
                compact_truth=compact_truth,
                raters=raters,
                anatomy=anatomy,
                progress=sub_progress,
                markers=markers,
            )
            participants.append(
                {
                    "participant_id": f"sub-{label}",
                    "age": int(rng_demo.integers(25, 60)),
                    "sex": str(rng_demo.choice(["F", "M"], p=[0.7, 0.3])),
                    "group": "MS",
                }
            )
        atomic_write_json(
            tmp / "dataset_description.json", _dataset_description("Simulated 7 T MS QSM study", "raw", True)
        )
        if anatomy == "mni":
            from .mni import MNI_NOTICE

            atomic_write_text(tmp / "NOTICE", MNI_NOTICE)
        atomic_write_tsv(tmp / "participants.tsv", pd.DataFrame(participants))
        atomic_write_text(
            tmp / "README",
            "Simulated 7 T MS study written by `qsm-ms simulate` (napari-qsm-ms). Ground truth is in "
            "derivatives/simulation; consensus tissue classes and lesion labels in derivatives/qsm-ms.\n",
        )
        atomic_write_json(
            tmp / DERIVATIVES / "dataset_description.json",
            _dataset_description("napari-qsm-ms derivatives", "derivative", True),
        )
        atomic_write_json(
            tmp / SIMULATION_DERIVATIVES / "dataset_description.json",
            {
                **_dataset_description("Simulation ground truth", "derivative", True),
                "Parameters": {
                    "seed": int(seed),
                    "n_subjects": n_subjects,
                    "shape": list(shape_t),
                    "voxel_size_mm": list(vs),
                    "oblique_deg": obliques,
                    "n_lesions": list(n_lesions),
                    "echo_time_s": te_s,
                    "anatomy": anatomy,
                    "field_strength_t": b0_t,
                    "snr_wm": snr,
                },
            },
        )
        report(progress, 1.0, "moving the study into place")
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return StudyFiles.at(out)


def _move_into_place(tmp: Path, out: Path) -> None:
    old = None
    if out.is_dir():
        if any(out.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            old.rmdir()
            os.replace(out, old)
        else:
            out.rmdir()
    os.replace(tmp, out)
    os.chmod(out, 0o755)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_transform(path: str | os.PathLike) -> np.ndarray:
    """The 4x4 matrix of a truth transform JSON (see :mod:`.truth`)."""
    obj = json.loads(Path(path).read_text(encoding="utf-8"))
    return np.asarray(obj["matrix"], dtype=float)
