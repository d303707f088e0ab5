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
    rim_profiles.tsv radial susceptibility profile of every lesion (stats/markers.py)
    figure2.png/.svg, roi_*.png/.svg, rim_profiles.png/.svg (PRL vs non-PRL), report.html

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
from ..roi.annotation import AnnotationState
from ..roi.rules import CONSENSUS_CLASSES, drawn_consensus, read_consensus_table, slice_axis_of_affine
from .lesions import LESION_COLUMNS, empty_lesion_table, relative_susceptibility
from .markers import MARKER_LESION_COLUMNS, MARKER_SUBJECT_COLUMNS, add_subject_markers
from .model import bootstrap_means, mixed_model
from .tests import ALPHA, N_COMPARISONS, paper_tests

#: Defaults of the study run (written into the report).
DEFAULT_N_RESAMPLES = 2000
DEFAULT_SEED = 0
#: File marking a folder as stats output (only such folders, or empty ones, are replaced).
MARKER = ".qsm-ms-stats"

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
    rim_profiles: pd.DataFrame = field(default_factory=pd.DataFrame)


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
    rim_profiles: pd.DataFrame = field(default_factory=pd.DataFrame)


# ----------------------------------------------------------------------------------------------
# one subject
# ----------------------------------------------------------------------------------------------
def read_classes(subject: SubjectFiles) -> pd.DataFrame | None:
    """Consensus classes of the drawn lesions of ``subject`` (``sub-*_lesions.tsv``), or None.

    Automatic proposals (``candidate_source == 'proposed'``) are left out: their ids are not in the
    lesion map (:func:`napari_qsm_ms.roi.rules.drawn_consensus`).
    """
    return drawn_consensus(read_consensus_table(subject))


def read_annotation(subject: SubjectFiles) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Exclusions ``{id: reason}`` and extra flags ``{id: [flag, ...]}`` from the annotation file.

    Read with ``roi.annotation.AnnotationState.load``; no file means nothing is excluded.
    """
    if not subject.annotation_json.exists():
        return {}, {}
    state = AnnotationState.load(subject.annotation_json)
    exclude = {lid: " ".join((why or "no reason given").split()).replace(";", ",")
               for lid, why in state.excluded().items()}
    flags = {int(lid): [f"annotation:{f}" for f in e.flags] for lid, e in state.lesions.items() if e.flags}
    return exclude, flags


def recorded_reference_parameters(subject: SubjectFiles) -> str:
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


#: The optional label maps of a subject's statistics, by attribute of SubjectFiles.
OPTIONAL_MAPS = ("refwm", "refgm", "tissue", "brain_mask", "vessels")


@dataclass
class StatsInputs:
    """Everything one subject's lesion table depends on, in the files' voxel order.

    ``chi_ppm`` None: no QSM. ``maps`` holds the optional label maps (:data:`OPTIONAL_MAPS`; None
    when absent). ``classes`` are the drawn lesions' consensus rows (None: no ``lesions.tsv``);
    ``excluded`` and ``annotation_flags`` come from the annotation.
    """

    label: str
    affine: np.ndarray
    lesions: np.ndarray
    chi_ppm: np.ndarray | None = None
    maps: dict[str, np.ndarray | None] = field(default_factory=dict)
    classes: pd.DataFrame | None = None
    excluded: dict[int, str] = field(default_factory=dict)
    annotation_flags: dict[int, list[str]] = field(default_factory=dict)
    reference_record: str = ""

    def map(self, name: str) -> np.ndarray | None:
        return self.maps.get(name)


def read_stats_inputs(
    subject: SubjectFiles, chi: Volume | None, lesions: Volume
) -> tuple[StatsInputs, list[Path]]:
    """Read the optional maps, classes and annotation of a subject (its Chimap and lesions given)."""
    grid = chi or lesions
    inputs = StatsInputs(subject.label, grid.affine, lesions.data, None if chi is None else chi.data)
    used = [p for p in (subject.chimap if chi is not None else None, subject.lesions) if p is not None]
    for name in OPTIONAL_MAPS:
        path = getattr(subject, name)
        inputs.maps[name] = _load_labels(path, grid).data if path.exists() else None
        if path.exists():
            used.append(path)
    inputs.classes = read_classes(subject)
    if inputs.classes is not None:
        used.append(subject.lesions_tsv)
    inputs.excluded, inputs.annotation_flags = read_annotation(subject)
    if subject.annotation_json.exists():
        used.append(subject.annotation_json)
    inputs.reference_record = recorded_reference_parameters(subject)
    return inputs, used


def compute_subject_stats(inputs: StatsInputs) -> tuple[pd.DataFrame, dict]:
    """One subject's lesion table and summary from its inputs (pure; the Statistics dock and
    ``qsm-ms stats`` both call it).

    The QSM mask rule (:func:`_qsm_mask`), the relative susceptibility of every part
    (:func:`~napari_qsm_ms.stats.lesions.relative_susceptibility`), the vessel flags
    (:func:`_flag_vessels`) and stale reference labels are all decided here.
    """
    info: dict = {}
    chi = inputs.chi_ppm
    direction = slice_axis_of_affine(inputs.affine)
    voxel = tuple(float(v) for v in np.sqrt((np.asarray(inputs.affine)[:3, :3] ** 2).sum(axis=0)))
    table = relative_susceptibility(
        chi, inputs.lesions, inputs.map("refwm"), inputs.map("refgm"), inputs.map("tissue"), inputs.classes,
        exclude=inputs.excluded, qsm_mask=_qsm_mask(chi, inputs.map("brain_mask"), info), voxel_size_mm=voxel,
        subject=inputs.label, lesion_flags=inputs.annotation_flags, slice_axis=direction.axis,
        increasing_superior=direction.increasing_superior,
    )
    if inputs.map("vessels") is not None and not table.empty:
        _flag_vessels(table, inputs.lesions, inputs.maps, inputs.map("vessels") > 0)
    info["message"] = _stale_references(inputs)
    ids = table.drop_duplicates("lesion_id") if not table.empty else table
    klass = ids["class"].value_counts() if not table.empty else pd.Series(dtype=int)
    inc = table[table["included"].astype(bool)] if not table.empty else table
    info.update(
        status="ok" if chi is not None else "no QSM",
        n_lesions=int(len(ids)),
        **{f"n_{c}": int(klass.get(c, 0)) for c in CONSENSUS_CLASSES},
        n_excluded=len(inputs.excluded),
        n_included_parts=int(len(inc)),
        n_flagged=int((table["flags"].astype(str) != "").sum()) if not table.empty else 0,
        mean_wm_ppm=_mean(inc, "wm"),
        mean_cortical_ppm=_mean(inc, "cortical"),
        class_source=("consensus" if inputs.classes is not None else "tissue (no lesions.tsv)"),
        reference_parameters=inputs.reference_record,
        voxel_size_mm="x".join(f"{v:.3g}" for v in voxel),
    )
    return table, info


def _stale_references(inputs: StatsInputs) -> str:
    present = set(np.unique(inputs.lesions[inputs.lesions > 0]).tolist())
    orphans = []
    for name in ("refwm", "refgm"):
        ref = inputs.map(name)
        if ref is not None:
            stray = sorted(set(np.unique(ref[ref > 0]).tolist()) - present)
            if stray:
                orphans.append(f"{name} has labels without a lesion: {', '.join(str(i) for i in stray)}")
    return "; ".join(orphans) + " (stale references, not used)" if orphans else ""


def subject_stats(subject: SubjectFiles) -> SubjectStats:
    """Relative susceptibility of every lesion part of one subject, from its saved files.

    :func:`read_stats_inputs` -> :func:`compute_subject_stats` -> source columns. Missing files
    are reported in the rows' flags (``no_qsm``, ``no_refwm_file``, ...), and a subject without a
    lesion file or without lesions has an empty table and ``n_lesions = 0``.

    Raises
    ------
    InputFileError
        A file that exists but is unusable (unreadable, not on the T2* grid, non-integer labels):
        one line naming the file.
    """
    chi = load_volume(subject.chimap, allow_nan=True) if subject.chimap.exists() else None
    if not subject.lesions.exists():
        status = "no lesion file" if chi is not None else "no QSM, no lesion file"
        info = dict(subject=subject.label, status=status, has_qsm=chi is not None, message="", n_lesions=0,
                    class_source="", voxel_size_mm=_fmt_voxel(chi))
        used = [subject.chimap] if chi is not None else []
        return SubjectStats(subject.label, empty_lesion_table(), info, used)
    lesions = _load_labels(subject.lesions, chi)
    inputs, used = read_stats_inputs(subject, chi, lesions)
    table, info = compute_subject_stats(inputs)
    axis = slice_axis_of_affine(inputs.affine).axis
    profiles: list = []
    used += add_subject_markers(table, info, subject, chi, lesions, inputs.maps, axis, profiles=profiles)
    info.update(subject=subject.label, has_qsm=chi is not None)
    _add_sources(table, subject, subject.study, chi is not None, inputs.classes is not None, inputs.maps)
    return SubjectStats(subject.label, table, info, used, profiles[0] if profiles else pd.DataFrame())


def _qsm_mask(chi: np.ndarray | None, brain_mask: np.ndarray | None, info: dict) -> np.ndarray | None:
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
    return np.asarray(chi) != 0


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
        ref_name = row["reference_roi"]
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
    table["reference_file"] = [rel(getattr(subject, name)) if optional[name] is not None else ""
                               for name in table["reference_roi"]]
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
        Study folder (layout of docs/study_layout.md).
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
    tables, infos, inputs, notes, profiles = [], [], [], [], []
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
        if not res.rim_profiles.empty:
            profiles.append(res.rim_profiles)
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
        central_slice="roi.rules: most voxels across the axis nearest world S-I, ties to the middle, "
        "then inferior",
        bonferroni_comparisons=N_COMPARISONS,
        alpha=ALPHA,
    )
    report(progress, 1.0, "statistics computed")
    return StudyStats(study.root, lesions, subjects_df, summary, model, boot, inputs_df, params, notes,
                      pd.concat(profiles, ignore_index=True) if profiles else pd.DataFrame())


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
    from .markers import study_rim_figure
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
        if not result.rim_profiles.empty:  # lesion markers (stats/markers.py)
            atomic_write_tsv(tmp / "rim_profiles.tsv", result.rim_profiles)
            fig = study_rim_figure(result.rim_profiles, result.lesions)
            figures["rim_profiles"] = save_figure(fig, tmp / "rim_profiles")
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
    affine: np.ndarray,
    lesions: np.ndarray,
    chi_ppm: np.ndarray | None = None,
    maps: dict[str, np.ndarray | None] | None = None,
) -> pd.DataFrame:
    """One subject's lesion table from arrays in memory (the viewer's layers, in the files' voxel
    order on the grid ``affine``), by the same :func:`compute_subject_stats` as ``qsm-ms stats``.

    Classes and exclusions are read from the subject's files (``sub-*_lesions.tsv`` and the
    annotation JSON) as in :func:`subject_stats`. Use :func:`unsaved_inputs` to tell whether the
    arrays are the files the export reads.
    """
    inputs = StatsInputs(subject.label, np.asarray(affine), np.asarray(lesions), chi_ppm,
                         {k: (maps or {}).get(k) for k in OPTIONAL_MAPS})
    inputs.classes = read_classes(subject)
    inputs.excluded, inputs.annotation_flags = read_annotation(subject)
    inputs.reference_record = recorded_reference_parameters(subject)
    return compute_subject_stats(inputs)[0]


def unsaved_inputs(
    subject: SubjectFiles, *, lesions: np.ndarray, chi_ppm: np.ndarray | None, maps: dict, **_ignored
) -> list[str]:
    """Which of the arrays differ from the subject's files (what the export and report read).

    Returns one short phrase per input, e.g. ``"Chimap (only in memory, no file)"`` or
    ``"refwm (edited, not saved)"``; empty when the arrays are the files.
    """
    arrays = {"lesions": lesions, "chimap": chi_ppm, **(maps or {})}
    out = []
    for name, arr in arrays.items():
        path = getattr(subject, name)
        label = "Chimap" if name == "chimap" else name
        if arr is None:
            if path.exists():
                out.append(f"{label} (file not loaded)")
            continue
        if not path.exists():
            out.append(f"{label} (only in memory, no file)")
            continue
        data = np.asarray(load_volume(path, dtype=None, allow_nan=name == "chimap").data)
        arr = np.asarray(arr)
        if name in ("brain_mask", "vessels"):
            data, arr = data > 0, arr > 0
        same = data.shape == arr.shape and (
            np.array_equal(data, arr, equal_nan=True) if name == "chimap" else np.array_equal(data, arr)
        )
        if not same:
            out.append(f"{label} (edited, not saved)")
    return out


def live_subject_stats(subject: SubjectFiles, **arrays) -> tuple[pd.DataFrame, list[str]]:
    """The Statistics dock's live values: :func:`subject_stats_from_arrays` and, when the arrays
    are not the files the export reads (:func:`unsaved_inputs`), rows flagged ``from_layers`` and
    the list of what differs (the dock says it before export)."""
    table = subject_stats_from_arrays(subject, **arrays)
    unsaved = unsaved_inputs(subject, **arrays)
    if unsaved and not table.empty:
        table["flags"] = [";".join(f for f in (str(x), "from_layers") if f) for x in table["flags"]]
    return table, unsaved
