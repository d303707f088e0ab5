"""Study-level statistics: every subject's lesion table, the tests, figures and the report.

:func:`compute_study` reads the derivatives of every subject and returns a :class:`StudyStats`
(nothing written); :func:`write_study_stats` writes it; :func:`run_study_stats` does both, as
``qsm-ms stats STUDY`` does. Output (``derivatives/qsm-ms/stats/`` by default)::

    lesions.tsv      one row per lesion part (see stats.lesions.LESION_COLUMNS), with source files
    subjects.tsv     one row per subject, also those without lesions or without QSM
    summary.tsv      the paper's Table 3: six one-sample t-tests, Bonferroni over six, + Welch
    model.tsv        linear mixed-effects model (beyond the paper)
    bootstrap.tsv    subject-bootstrap confidence intervals (beyond the paper)
    inputs.tsv       every input file used, with its SHA-256
    figure2.png/.svg, roi_*.png/.svg, report.html

The folder is replaced as a whole (built beside it, then renamed), so a reader never sees a mix
of old and new results.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputFileError, ParameterError, QSMMSError, StudyLayoutError
from ..io.atomic import atomic_write_tsv
from ..io.checksum import sha256_file
from ..io.layout import StudyFiles, SubjectFiles
from ..io.nifti import Volume, check_same_grid, load_volume
from ..progress import ProgressCallback, report, scaled
from ..rating.consensus import read_lesion_classes
from ..roi.annotation import AnnotationState
from ..roi.study import axial_axis
from .lesions import LESION_COLUMNS, empty_lesion_table, relative_susceptibility
from .markers import MARKER_LESION_COLUMNS, MARKER_SUBJECT_COLUMNS, add_subject_markers
from .model import bootstrap_means, mixed_model
from .tests import paper_tests

#: Defaults of the study run (written into the report).
DEFAULT_N_RESAMPLES = 2000
DEFAULT_SEED = 0
#: File marking a folder as stats output (only such folders, or empty ones, are replaced).
MARKER = ".qsm-ms-stats"
SLICE_AXIS = 2  # default for arrays without an affine (canonical RAS layers)

SUBJECT_COLUMNS = [
    "subject",
    "status",
    "has_qsm",
    "n_lesions",
    "n_wm",
    "n_cortical",
    "n_mixed",
    "n_rejected",
    "n_disputed",
    "n_excluded",
    "n_included_parts",
    "n_flagged",
    "mean_wm_ppm",
    "mean_cortical_ppm",
    "class_source",
    "voxel_size_mm",
    "qsm_mask",
    "reference_parameters",
    "message",
    *MARKER_SUBJECT_COLUMNS,
]
SOURCE_COLUMNS = ["chimap_file", "lesions_file", "reference_file", "tissue_file", "classes_file"]


@dataclass
class SubjectStats:
    """One subject's lesion table and the files it came from."""

    label: str
    lesions: pd.DataFrame
    info: dict
    inputs: list[Path] = field(default_factory=list)


@dataclass
class StudyStats:
    """Everything ``qsm-ms stats`` computes, before writing."""

    root: Path
    lesions: pd.DataFrame
    subjects: pd.DataFrame
    summary: pd.DataFrame
    model: pd.DataFrame
    bootstrap: pd.DataFrame
    inputs: pd.DataFrame
    parameters: dict
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# one subject
# ----------------------------------------------------------------------------------------------
def read_classes(subject: SubjectFiles) -> pd.DataFrame | None:
    """Consensus classes of the drawn lesions of ``subject`` (``sub-*_lesions.tsv``), or None.

    Automatic proposals (``candidate_source == 'proposed'``) are left out: their ids are not in the
    lesion map until a user adds them there.
    """
    if not subject.lesions_tsv.exists():
        return None
    frame = read_lesion_classes(subject)
    if "candidate_source" in frame:
        frame = frame[frame["candidate_source"].fillna("drawn").astype(str) != "proposed"]
    return frame


def read_annotation(subject: SubjectFiles) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Exclusions ``{id: reason}`` and extra flags ``{id: [flag, ...]}`` from the annotation file.

    Read with ``roi.annotation.AnnotationState.load``; no file means nothing is excluded.
    """
    if not subject.annotation_json.exists():
        return {}, {}
    state = AnnotationState.load(subject.annotation_json)
    exclude: dict[int, str] = {}
    flags: dict[int, list[str]] = {}
    for lid, entry in state.lesions.items():
        if entry.excluded:
            reason = " ".join((entry.exclusion_reason or "no reason given").split())
            exclude[int(lid)] = reason.replace(";", ",")
        if entry.flags:
            flags[int(lid)] = [f"annotation:{f}" for f in entry.flags]
    return exclude, flags


def reference_parameters(subject: SubjectFiles) -> str:
    """The reference-ROI parameters recorded in the annotation file (JSON text), or ''."""
    if not subject.annotation_json.exists():
        return ""
    params = AnnotationState.load(subject.annotation_json).parameters
    return json.dumps(params, sort_keys=True, default=str) if params else ""


def _load_labels(path: Path, grid: Volume | None) -> Volume:
    vol = load_volume(path, dtype=None)
    if np.issubdtype(vol.data.dtype, np.floating):
        if not np.isfinite(vol.data).all():
            raise InputFileError(path, "label map contains NaN or infinite values")
        rounded = np.rint(vol.data)
        if not np.array_equal(rounded, vol.data):
            raise InputFileError(path, "label map has non-integer values")
        vol.data = rounded
    vol.data = vol.data.astype(np.int64, copy=False)
    if (vol.data < 0).any():
        raise InputFileError(path, "label map has negative values")
    if grid is not None:
        check_same_grid(grid, vol)
    return vol


def subject_stats(subject: SubjectFiles) -> SubjectStats:
    """Relative susceptibility of every lesion part of one subject, from its saved files.

    Missing files are reported in the rows' flags (``no_qsm``, ``no_refwm_file``, ...), and a
    subject without a lesion file or without lesions has an empty table and ``n_lesions = 0``.

    Raises
    ------
    InputFileError
        A file that exists but is unusable (unreadable, not on the T2* grid, non-integer labels):
        one line naming the file.
    """
    root = subject.study
    inputs: list[Path] = []
    info = dict(subject=subject.label, status="ok", has_qsm=subject.chimap.exists(), message="")

    chi = None
    grid: Volume | None = None
    if subject.chimap.exists():
        chi = load_volume(subject.chimap, allow_nan=True)
        grid = chi
        inputs.append(subject.chimap)
    if not subject.lesions.exists():
        info.update(
            status="no lesion file" if chi is not None else "no QSM, no lesion file",
            n_lesions=0,
            class_source="",
            voxel_size_mm=_fmt_voxel(grid),
        )
        return SubjectStats(subject.label, empty_lesion_table(), info, inputs)
    lesions = _load_labels(subject.lesions, grid)
    grid = grid or lesions
    inputs.append(subject.lesions)
    optional = {}
    for name in ("refwm", "refgm", "tissue", "brain_mask", "vessels"):
        path = getattr(subject, name)
        if path.exists():
            optional[name] = _load_labels(path, grid).data
            inputs.append(path)
        else:
            optional[name] = None
    classes = read_classes(subject)
    if classes is not None:
        inputs.append(subject.lesions_tsv)
    exclude, extra_flags = read_annotation(subject)
    if subject.annotation_json.exists():
        inputs.append(subject.annotation_json)

    table = relative_susceptibility(
        None if chi is None else chi.data,
        lesions.data,
        optional["refwm"],
        optional["refgm"],
        optional["tissue"],
        classes,
        exclude=exclude,
        qsm_mask=_qsm_mask(chi, optional["brain_mask"], info),
        voxel_size_mm=grid.voxel_size_mm,
        subject=subject.label,
        lesion_flags=extra_flags,
        slice_axis=axial_axis(grid.affine),
    )
    if optional["vessels"] is not None and not table.empty:
        _flag_vessels(table, lesions.data, optional, optional["vessels"] > 0)
    inputs += add_subject_markers(table, info, subject, chi, lesions, optional, axial_axis(grid.affine))
    if chi is None:
        info["status"] = "no QSM"
    orphans = []
    present = set(np.unique(lesions.data[lesions.data > 0]).tolist())
    for name in ("refwm", "refgm"):
        ref = optional[name]
        if ref is not None:
            stray = sorted(set(np.unique(ref[ref > 0]).tolist()) - present)
            if stray:
                orphans.append(f"{name} has labels without a lesion: {', '.join(str(i) for i in stray)}")
    if orphans:
        info["message"] = "; ".join(orphans) + " (stale references, not used)"
    _add_sources(table, subject, root, chi is not None, classes is not None, optional)
    ids = table.drop_duplicates("lesion_id") if not table.empty else table
    klass = ids["class"].value_counts() if not table.empty else pd.Series(dtype=int)
    inc = table[table["included"].astype(bool)] if not table.empty else table
    info.update(
        n_lesions=int(len(ids)),
        **{f"n_{c}": int(klass.get(c, 0)) for c in ("wm", "cortical", "mixed", "rejected", "disputed")},
        n_excluded=len(exclude),
        n_included_parts=int(len(inc)),
        n_flagged=int((table["flags"].astype(str) != "").sum()) if not table.empty else 0,
        mean_wm_ppm=_mean(inc, "wm"),
        mean_cortical_ppm=_mean(inc, "cortical"),
        class_source=("consensus" if classes is not None else "tissue (no lesions.tsv)"),
        reference_parameters=reference_parameters(subject),
        voxel_size_mm=_fmt_voxel(grid),
    )
    return SubjectStats(subject.label, table, info, inputs)


def _qsm_mask(chi: Volume | None, brain_mask: np.ndarray | None, info: dict) -> np.ndarray | None:
    """Where chi is valid: the brain-mask file, else (no file) the voxels where chi is not exactly 0.

    QSM pipelines write 0 outside their mask; an exact 0.0 inside a reconstructed brain does not
    occur in float data, so without a mask file exact zeros are treated as outside (and counted in
    the ``outside_qsm_mask`` flags) rather than averaged in as values.
    """
    if brain_mask is not None:
        info["qsm_mask"] = "desc-brain_mask file"
        return brain_mask > 0
    if chi is None:
        return None
    info["qsm_mask"] = "no brain-mask file: chi == 0 treated as outside"
    return chi.data != 0


def _mean(inc: pd.DataFrame, lesion_type: str) -> float:
    if inc.empty:
        return float("nan")
    v = inc.loc[inc["lesion_type"] == lesion_type, "relative_ppm"].astype(float)
    return float(v.mean()) if len(v) else float("nan")


def _fmt_voxel(grid: Volume | None) -> str:
    return "" if grid is None else "x".join(f"{v:.3g}" for v in grid.voxel_size_mm)


def _flag_vessels(table: pd.DataFrame, lesions: np.ndarray, optional: dict, vessels: np.ndarray) -> None:
    """Flag ROIs that still contain vessel-mask voxels (vessels are removed by editing ROIs)."""
    n = int(max(lesions.max(), 0)) + 1
    in_les = np.bincount(lesions[vessels & (lesions > 0)], minlength=n)
    refs = {}
    for name in ("refwm", "refgm"):
        ref = optional[name]
        if ref is not None:
            sel = vessels & (ref > 0) & (ref < n)
            refs[name] = np.bincount(ref[sel], minlength=n)
    for i, row in table.iterrows():
        lid = int(row["lesion_id"])
        extra = []
        if lid < n and in_les[lid]:
            extra.append(f"vessel_voxels_in_lesion:{int(in_les[lid])}")
        ref_name = (
            "refgm"
            if row["part"] == "cortical" or (row["part"] == "whole" and row["class"] == "cortical")
            else "refwm"
        )
        if ref_name in refs and lid < n and refs[ref_name][lid]:
            extra.append(f"vessel_voxels_in_reference:{int(refs[ref_name][lid])}")
        if extra:
            table.at[i, "flags"] = ";".join(f for f in [str(row["flags"]), *extra] if f)


def _add_sources(
    table: pd.DataFrame, subject: SubjectFiles, root: Path, has_chi: bool, has_classes: bool, optional: dict
) -> None:
    def rel(p: Path) -> str:
        try:
            return str(p.relative_to(root))
        except ValueError:
            return str(p)

    if table.empty:
        for c in SOURCE_COLUMNS:
            table[c] = pd.Series(dtype=object)
        return
    table["chimap_file"] = rel(subject.chimap) if has_chi else ""
    table["lesions_file"] = rel(subject.lesions)
    ref_file = []
    for _, row in table.iterrows():
        name = (
            "refgm"
            if row["part"] == "cortical" or (row["part"] == "whole" and row["class"] == "cortical")
            else "refwm"
        )
        ref_file.append(rel(getattr(subject, name)) if optional[name] is not None else "")
    table["reference_file"] = ref_file
    table["tissue_file"] = rel(subject.tissue) if optional["tissue"] is not None else ""
    table["classes_file"] = rel(subject.lesions_tsv) if has_classes else ""


# ----------------------------------------------------------------------------------------------
# study
# ----------------------------------------------------------------------------------------------
def compute_study(
    study_root: str | os.PathLike,
    *,
    subjects: list[str] | None = None,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
    progress: ProgressCallback | None = None,
) -> StudyStats:
    """Compute every table of the study statistics (nothing is written).

    Parameters
    ----------
    study_root : path
        Study folder (layout of docs/ARCHITECTURE.md).
    subjects : list of str, optional
        Subject labels (default: all).
    n_resamples, seed : int
        Bootstrap resamples and seed.
    progress : callable, optional
        ``progress(fraction, message)``; may raise CancelledError.

    Returns
    -------
    StudyStats

    Raises
    ------
    StudyLayoutError
        No subject folder, or no subject has a Chimap.
    """
    study = StudyFiles.at(study_root)
    subs = study.subjects(subjects)
    if not subs:
        raise StudyLayoutError(f"{study.root}: no sub-* folders")
    tables, infos, inputs, notes = [], [], [], []
    for k, sub in enumerate(subs):
        report(progress, 0.8 * k / len(subs), f"sub-{sub.label}: relative susceptibility")
        try:
            res = subject_stats(sub)
        except QSMMSError as exc:
            notes.append(f"sub-{sub.label} left out: {exc}")
            infos.append(
                dict(
                    subject=sub.label,
                    status="error",
                    has_qsm=sub.chimap.exists(),
                    n_lesions=0,
                    message=str(exc),
                )
            )
            continue
        if not res.lesions.empty:
            tables.append(res.lesions)
        infos.append(res.info)
        inputs.extend(res.inputs)
        if res.info.get("message"):
            notes.append(f"sub-{sub.label}: {res.info['message']}")
        if res.info["status"] == "no QSM" and res.info.get("n_lesions", 0):
            notes.append(
                f"sub-{sub.label}: no Chimap, its {res.info['n_lesions']} lesions are flagged no_qsm"
            )
    subjects_df = pd.DataFrame(infos)
    for c in SUBJECT_COLUMNS:
        if c not in subjects_df:
            subjects_df[c] = np.nan
    subjects_df = subjects_df[SUBJECT_COLUMNS]
    if not subjects_df["has_qsm"].astype(bool).any():
        raise StudyLayoutError(f"{study.root}: no subject has a Chimap (run qsm-ms recon first)")
    cols = LESION_COLUMNS + MARKER_LESION_COLUMNS + SOURCE_COLUMNS
    lesions = pd.concat(tables, ignore_index=True)[cols] if tables else pd.DataFrame(columns=cols)
    report(progress, 0.8, "t-tests")
    summary = paper_tests(lesions)
    report(progress, 0.85, "mixed-effects model")
    model = mixed_model(lesions)
    report(progress, 0.92, "bootstrap")
    boot = bootstrap_means(lesions, n_resamples=n_resamples, seed=seed)
    report(progress, 0.97, "checksums")
    seen: dict[Path, None] = dict.fromkeys(inputs)
    inputs_df = pd.DataFrame(
        [dict(file=_rel(p, study.root), bytes=p.stat().st_size, sha256=sha256_file(p)) for p in seen],
        columns=["file", "bytes", "sha256"],
    )
    params = dict(
        study=str(study.root.resolve()),
        subjects=[s.label for s in subs],
        bootstrap_resamples=n_resamples,
        bootstrap_seed=seed,
        central_slice_axis="array axis nearest to world S-I (roi.study.axial_axis)",
        bonferroni_comparisons=6,
        alpha=0.05,
    )
    report(progress, 1.0, "statistics computed")
    return StudyStats(study.root, lesions, subjects_df, summary, model, boot, inputs_df, params, notes)


def _rel(p: Path, root: Path) -> str:
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)


def write_study_stats(
    result: StudyStats,
    out_dir: str | os.PathLike,
    *,
    progress: ProgressCallback | None = None,
    roi_lesions: int = 3,
) -> Path:
    """Write the tables, figures and report of ``result`` into ``out_dir`` (replaced as a whole).

    Returns
    -------
    Path
        ``out_dir``.
    """
    from .figures import choose_example_lesions, figure2, roi_panel_figure, save_figure
    from .report import write_report

    out = Path(out_dir)
    check_output_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / MARKER).write_text("written by napari-qsm-ms stats; this folder is replaced as a whole\n")
        atomic_write_tsv(tmp / "lesions.tsv", result.lesions)
        atomic_write_tsv(tmp / "subjects.tsv", result.subjects)
        atomic_write_tsv(tmp / "summary.tsv", result.summary)
        atomic_write_tsv(tmp / "model.tsv", result.model)
        atomic_write_tsv(tmp / "bootstrap.tsv", result.bootstrap)
        atomic_write_tsv(tmp / "inputs.tsv", result.inputs)
        report(progress, 0.2, "figure 2")
        figures = {}
        fig = figure2(result.lesions)
        figures["figure2"] = save_figure(fig, tmp / "figure2")
        examples = choose_example_lesions(result.lesions, n=roi_lesions)
        for k, (_, row) in enumerate(examples.iterrows()):
            report(
                progress,
                0.3 + 0.5 * k / max(len(examples), 1),
                f"ROI panels sub-{row['subject']} lesion {row['lesion_id']}",
            )
            sub = StudyFiles.at(result.root).subject(str(row["subject"]))
            fig = roi_panel_figure(sub, int(row["lesion_id"]), label=f"{row['class']} lesion")
            if fig is not None:
                name = f"roi_sub-{row['subject']}_lesion-{int(row['lesion_id'])}"
                figures[name] = save_figure(fig, tmp / name)
        report(progress, 0.85, "report")
        write_report(result, tmp / "report.html", figures)
        for f in tmp.iterdir():  # temporary files are created 0600; results are for sharing
            os.chmod(f, 0o644)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report(progress, 1.0, f"written {out}")
    return out


def check_output_dir(out: Path) -> None:
    """Refuse to replace a folder that is not a previous stats output (or empty).

    The output folder is replaced as a whole; a typo such as ``--out ~/Documents`` must not delete
    anything else.

    Raises
    ------
    ParameterError
        ``out`` is a file, or a non-empty folder without the stats marker file.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise ParameterError(f"{out}: output exists and is not a folder")
    entries = [p for p in out.iterdir()]
    if entries and not (out / MARKER).exists():
        raise ParameterError(
            f"{out}: folder is not empty and was not written by qsm-ms stats (no {MARKER}); "
            "choose a new or empty folder"
        )


def _replace_dir(new: Path, final: Path) -> None:
    """Put ``new`` in place of ``final``: the old folder is renamed away, then removed."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    try:
        os.replace(new, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    os.chmod(final, 0o755)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_study_stats(
    study_root: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    *,
    subjects: list[str] | None = None,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> StudyStats:
    """Compute and write the study statistics (``qsm-ms stats``).

    Parameters
    ----------
    study_root : path
        Study folder.
    out_dir : path, optional
        Output folder (default ``derivatives/qsm-ms/stats``).
    progress : callable, optional
        ``progress(fraction, message)``.
    subjects : list of str, optional
        Subject labels (default all).
    n_resamples, seed : int
        Bootstrap resamples (default 2000) and seed (default 0).

    Returns
    -------
    StudyStats
        What was written; ``result.parameters['out_dir']`` is the folder.
    """
    result = compute_study(
        study_root, subjects=subjects, n_resamples=n_resamples, seed=seed, progress=scaled(progress, 0.0, 0.6)
    )
    out = Path(out_dir) if out_dir is not None else StudyFiles.at(study_root).stats_dir
    check_output_dir(out)  # before the work, not after
    result.parameters["out_dir"] = str(out)
    write_study_stats(result, out, progress=scaled(progress, 0.6, 1.0))
    return result


def subject_stats_from_arrays(
    subject: SubjectFiles,
    *,
    chi_ppm: np.ndarray | None,
    lesions: np.ndarray,
    refwm: np.ndarray | None,
    refgm: np.ndarray | None,
    tissue: np.ndarray | None,
    qsm_mask: np.ndarray | None = None,
    voxel_size_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
    slice_axis: int = SLICE_AXIS,
    progress: ProgressCallback | None = None,
) -> pd.DataFrame:
    """One subject's lesion table from arrays in memory (the GUI's edited layers).

    Classes and exclusions are read from the subject's files (``sub-*_lesions.tsv`` and the
    annotation JSON) as in :func:`subject_stats`; the arrays must share one grid (any axis order,
    e.g. the canonical layers of the viewer: means do not depend on it). Rows are flagged
    ``from_layers`` because they may differ from the saved files until the layers are saved.
    """
    report(progress, 0.1, f"sub-{subject.label}: relative susceptibility from layers")
    classes = read_classes(subject)
    exclude, extra_flags = read_annotation(subject)
    if qsm_mask is None and chi_ppm is not None:  # same rule as subject_stats without a mask file
        qsm_mask = np.asarray(chi_ppm) != 0
    table = relative_susceptibility(
        chi_ppm,
        lesions,
        refwm,
        refgm,
        tissue,
        classes,
        exclude=exclude,
        qsm_mask=qsm_mask,
        voxel_size_mm=voxel_size_mm,
        subject=subject.label,
        lesion_flags=extra_flags,
        slice_axis=slice_axis,
    )
    if not table.empty:
        table["flags"] = [";".join(f for f in (str(x), "from_layers") if f) for x in table["flags"]]
    report(progress, 1.0, "done")
    return table
