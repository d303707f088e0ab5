"""The steps of ``qsm-ms run``: what each reads and writes, its parameters, and the call it makes.

Each step calls the same public function as its own subcommand (``qsm-ms recon`` ... ``stats``);
nothing here computes. Subject steps run in the order of :data:`SUBJECT_STEPS` (QSM,
coregistration, the per-subject consensus that gives lesion classes, then the reference ROIs that
read those classes and the QSM mask); study steps (:data:`STUDY_STEPS`) run once every subject is
through.

Parameters of a step are the keyword arguments of the function it calls; their defaults are read
from that function's signature (each default is stated once, there), and the record of a step
holds the full set (defaults included), so a changed default re-runs the step too.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from ..io.layout import COREG_SERIES, StudyFiles, SubjectFiles
from ..progress import ProgressCallback

SUBJECT_STEPS = ("recon", "coregister", "consensus", "rois")
STUDY_STEPS = ("agreement", "stats")
ALL_STEPS = SUBJECT_STEPS + STUDY_STEPS
#: Settings of how a step runs, not of what it computes (kept out of the records).
RUNTIME_KEYS = frozenset({"threads"})


@dataclass(frozen=True)
class Step:
    """One step of the cohort run.

    Attributes
    ----------
    name : str
    level : {'subject', 'study'}
    defaults : callable () -> dict
        Every parameter with its default (from the called function's signature).
    inputs : callable (target, params) -> dict
        Name -> path of the files the step reads that exist now, or name -> a JSON-able value
        for what it reads from a file that it also writes (the lesions excluded in the annotation).
    outputs : callable (target, params) -> list of Path
        The files the step writes (all present after a successful run).
    blocked : callable (target, params) -> str or None
        Why the step cannot run for this target (a required input is missing), else None.
    call : callable (target, params, progress) -> str
        Runs the step; returns a one-line summary.
    adopt : callable (target, params) -> str or None, optional
        Without a step record: whether outputs made by the single-step command are up to date,
        judged from the provenance they carry (the Chimap sidecar); the reason, else None.
    """

    name: str
    level: str
    defaults: Callable[[], dict]
    inputs: Callable[[Any, dict], dict[str, Path]]
    outputs: Callable[[Any, dict], list[Path]]
    blocked: Callable[[Any, dict], str | None]
    call: Callable[[Any, dict, ProgressCallback | None], str]
    adopt: Callable[[Any, dict], str | None] | None = None


def _keyword_defaults(func: Callable, exclude: set[str]) -> dict:
    """Defaults of ``func``'s parameters that have one, except ``exclude``."""
    out = {}
    for name, p in inspect.signature(func).parameters.items():
        if name in exclude or p.default is inspect.Parameter.empty:
            continue
        out[name] = list(p.default) if isinstance(p.default, tuple) else p.default
    return out


def _existing(paths: dict[str, Path]) -> dict[str, Path]:
    return {k: p for k, p in paths.items() if p.exists()}


# ---- recon -------------------------------------------------------------------------------------

def _recon_defaults() -> dict:
    from ..qsm.pipeline import reconstruct_from, reconstruct_subject

    # what reconstruct_subject passes to reconstruct_from itself (data, geometry, TE, B0, ...)
    skip = {"data", "entry", "magnitude", "affine", "te_s", "b0_t", "mask", "field_units", "names",
            "keep_intermediates", "progress"}
    return {**_keyword_defaults(reconstruct_subject, {"progress"}),
            **_keyword_defaults(reconstruct_from, skip)}


def _recon_inputs(s: SubjectFiles, params: dict) -> dict[str, Path]:
    return _existing({"magnitude": s.magnitude, "phase": s.phase, "phase_sidecar": s.phase_json})


def _recon_outputs(s: SubjectFiles, params: dict) -> list[Path]:
    from ..io.sidecar import sidecar_path

    return [s.chimap, sidecar_path(s.chimap), s.brain_mask]


def _recon_blocked(s: SubjectFiles, params: dict) -> str | None:
    missing = [p.name for p in (s.magnitude, s.phase, s.phase_json) if not p.exists()]
    return f"no {', '.join(missing)}" if missing else None


def _recon_call(s: SubjectFiles, params: dict, progress) -> str:
    from ..qsm.pipeline import reconstruct_subject

    result = reconstruct_subject(s, progress=progress, **params)
    return f"{int(result.mask.sum())} voxels in the QSM mask"


def _recon_adopt(s: SubjectFiles, params: dict) -> str | None:
    """A Chimap made by ``qsm-ms recon`` counts as done when its sidecar's ``Sources`` hold the
    SHA-256 of today's inputs and its ``Parameters`` agree with every parameter that it records
    (methods not chosen record none of theirs)."""
    import json

    from ..io.checksum import sha256_file
    from ..io.sidecar import sidecar_path
    from ..qsm.pipeline import choose_inversion, erosion_for

    if not (s.chimap.exists() and s.brain_mask.exists()):
        return None
    try:
        meta = json.loads(sidecar_path(s.chimap).read_text(encoding="utf-8"))
        sources, recorded = meta["Sources"], meta["Parameters"]
        for role, path in _recon_inputs(s, params).items():
            if sources[role]["sha256"] != sha256_file(path):
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    wanted = dict(params, erode_mm=erosion_for("phase", params.get("erode_mm")))
    if "inversion" in wanted:  # the sidecar records the method that ran ("auto" resolved; a subject has a magnitude)
        wanted["inversion"] = choose_inversion(wanted["inversion"], True)[0]
    if any(k not in recorded for k in ("inversion", "unwrap", "bfr")):
        return None
    method = f"{recorded['inversion']}_"  # a parameter of the method that ran, not recorded: an older version
    if any(k.startswith(method) and k not in recorded for k in wanted):
        return None
    for key, value in wanted.items():
        if key in recorded and json.loads(json.dumps(value)) != recorded[key]:
            return None
    return f"made by qsm-ms recon from the same inputs and parameters ({sidecar_path(s.chimap).name})"


# ---- coregister --------------------------------------------------------------------------------

def _coreg_defaults() -> dict:
    from ..registration.rigid import RigidParameters
    from ..registration.study import DEFAULT_KEYS

    rigid = dataclasses.asdict(RigidParameters())
    d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in rigid.items()}
    return {"series": list(DEFAULT_KEYS), **d}


def _coreg_present(s: SubjectFiles, params: dict) -> list[str]:
    return [k for k in params["series"] if k in COREG_SERIES and s.raw_series(k).exists()]


def _coreg_inputs(s: SubjectFiles, params: dict) -> dict[str, Path]:
    return _existing({"magnitude": s.magnitude, **{k: s.raw_series(k) for k in _coreg_present(s, params)}})


def _coreg_outputs(s: SubjectFiles, params: dict) -> list[Path]:
    out = []
    for k in _coreg_present(s, params):
        out += [s.coreg_series(k), s.coreg_transform(k, ".tfm"), s.coreg_transform(k, ".json")]
    return out


def _coreg_blocked(s: SubjectFiles, params: dict) -> str | None:
    if not s.magnitude.exists():
        return f"no {s.magnitude.name}"
    return None if _coreg_present(s, params) else "no MPRAGE or FLAIR to coregister"


def _coreg_call(s: SubjectFiles, params: dict, progress) -> str:
    from ..registration.rigid import RigidParameters
    from ..registration.study import coregister_subject

    rigid = dict(params)
    keys = rigid.pop("series")
    for name in ("shrink_factors", "smoothing_sigmas_mm"):
        rigid[name] = tuple(rigid[name])
    done = coregister_subject(s, keys=keys, progress=progress, params=RigidParameters(**rigid))
    return ", ".join(f"{k} MI {r.mutual_information:.3f}" for k, r in done.results.items())


# ---- consensus (per subject) -----------------------------------------------------------------

def _consensus_defaults() -> dict:
    from ..rating.consensus import run_consensus

    return _keyword_defaults(run_consensus, {"write"})


def _panel(s: SubjectFiles, params: dict) -> list[str]:
    """The raters whose votes pool for ``s`` (rating.panel's rule, without recording a choice)."""
    from ..rating.panel import decide_panel, read_panel
    from ..rating.votes import list_raters

    return decide_panel(read_panel(StudyFiles.at(s.study)), params.get("raters"), list_raters(s)).raters


def _consensus_inputs(s: SubjectFiles, params: dict) -> dict[str, Path]:
    files = {f"votes_{r}": s.votes_tsv(r) for r in _panel(s, params)}
    panel_file = StudyFiles.at(s.study).raters_tsv
    return _existing({**files, "lesions": s.lesions, "proposals": s.proposals, "panel": panel_file})


def _consensus_outputs(s: SubjectFiles, params: dict) -> list[Path]:
    return [s.lesions_tsv]


def _consensus_blocked(s: SubjectFiles, params: dict) -> str | None:
    panel = [r for r in _panel(s, params) if s.votes_tsv(r).exists()]
    return None if len(panel) >= 2 else f"{len(panel)} rater(s) with votes (consensus needs 2)"


def _consensus_call(s: SubjectFiles, params: dict, progress) -> str:
    from ..rating.consensus import run_consensus

    table = run_consensus(s, params.get("raters") or None, include_unvoted=params["include_unvoted"])
    counts = table["class"].value_counts()
    classes = ("wm", "cortical", "mixed", "rejected", "disputed")
    return ", ".join(f"{c} {int(counts.get(c, 0))}" for c in classes)


# ---- rois --------------------------------------------------------------------------------------

def _rois_defaults() -> dict:
    from ..roi.study import build_subject_references, compute_subject_references

    return {**_keyword_defaults(build_subject_references, {"write", "progress"}),
            **_keyword_defaults(compute_subject_references, {"built_at", "progress"})}


def _rois_inputs(s: SubjectFiles, params: dict) -> dict:
    from ..roi.study import excluded_lesions

    files = {"lesions": s.lesions, "tissue": s.tissue, "classes": s.lesions_tsv}
    if params["use_brain_mask"]:
        files["brain_mask"] = s.brain_mask
    if params["exclude_vessels"]:
        files["vessels"] = s.vessels
    # the annotation file is read (exclusions) and written (flags, time): only its exclusions count
    return {**_existing(files), "excluded_lesions": {str(k): v for k, v in excluded_lesions(s).items()}}


def _rois_outputs(s: SubjectFiles, params: dict) -> list[Path]:
    return [s.refwm, s.refgm]


def _rois_blocked(s: SubjectFiles, params: dict) -> str | None:
    missing = [p.name for p in (s.lesions, s.tissue) if not p.exists()]
    return f"no {', '.join(missing)}" if missing else None


def _rois_call(s: SubjectFiles, params: dict, progress) -> str:
    from ..roi.study import build_subject_references

    result = build_subject_references(s, progress=progress, **params)
    table = result.table
    return f"{table['lesion_id'].nunique()} lesions, {len(table)} references"


# ---- agreement (study) -------------------------------------------------------------------------

def _rated_subjects(study: StudyFiles) -> list[SubjectFiles]:
    return [s for s in study.subjects() if _consensus_blocked(s, {"raters": None}) is None]


def _agreement_defaults() -> dict:
    from ..rating.agreement import write_agreement

    return _keyword_defaults(write_agreement, {"subjects"})


def _agreement_inputs(study: StudyFiles, params: dict) -> dict[str, Path]:
    from ..rating.votes import list_raters

    files = {"panel": study.raters_tsv}
    for s in _rated_subjects(study):
        files.update({f"{s.sub}_votes_{r}": s.votes_tsv(r) for r in list_raters(s)})
    return _existing(files)


def _agreement_outputs(study: StudyFiles, params: dict) -> list[Path]:
    return [study.agreement_tsv]


def _agreement_blocked(study: StudyFiles, params: dict) -> str | None:
    return None if _rated_subjects(study) else "no subject has votes from 2 raters"


def _agreement_call(study: StudyFiles, params: dict, progress) -> str:
    from ..rating.agreement import write_agreement
    from ..rating.panel import read_panel

    raters = params.get("raters") or read_panel(study)  # as qsm-ms consensus: the study's panel
    table, _ = write_agreement(study, [s.label for s in _rated_subjects(study)], raters)
    return "; ".join(f"{r.measure} {r.value:.3f}" for r in table.itertuples(index=False))


# ---- stats (study) -----------------------------------------------------------------------------
#: The subject files statistics read when present (stats.study.subject_stats).
STATS_SUBJECT_FILES = ("chimap", "lesions", "refwm", "refgm", "tissue", "brain_mask", "vessels",
                       "lesions_tsv", "annotation_json")
STATS_TABLES = ("lesions.tsv", "subjects.tsv", "summary.tsv", "inputs.tsv")


def _stats_defaults() -> dict:
    from ..stats.study import run_study_stats

    return _keyword_defaults(run_study_stats, {"out_dir", "progress", "subjects"})


def _stats_inputs(study: StudyFiles, params: dict) -> dict[str, Path]:
    files = {}
    for s in study.subjects():
        files.update({f"{s.sub}_{name}": getattr(s, name) for name in STATS_SUBJECT_FILES})
    return _existing(files)


def _stats_outputs(study: StudyFiles, params: dict) -> list[Path]:
    return [study.stats_dir / name for name in STATS_TABLES]


def _stats_blocked(study: StudyFiles, params: dict) -> str | None:
    return None if any(s.chimap.exists() for s in study.subjects()) else "no subject has a Chimap"


def _stats_call(study: StudyFiles, params: dict, progress) -> str:
    from ..stats.study import run_study_stats

    result = run_study_stats(study.root, None, progress, **params)
    return f"{len(result.subjects)} subjects, {len(result.lesions)} lesion parts"


STEPS: dict[str, Step] = {
    "recon": Step("recon", "subject", _recon_defaults, _recon_inputs, _recon_outputs, _recon_blocked,
                  _recon_call, _recon_adopt),
    "coregister": Step("coregister", "subject", _coreg_defaults, _coreg_inputs, _coreg_outputs,
                       _coreg_blocked,
                       _coreg_call),
    "consensus": Step("consensus", "subject", _consensus_defaults, _consensus_inputs, _consensus_outputs,
                      _consensus_blocked, _consensus_call),
    "rois": Step("rois", "subject", _rois_defaults, _rois_inputs, _rois_outputs, _rois_blocked, _rois_call),
    "agreement": Step("agreement", "study", _agreement_defaults, _agreement_inputs, _agreement_outputs,
                      _agreement_blocked, _agreement_call),
    "stats": Step("stats", "study", _stats_defaults, _stats_inputs, _stats_outputs, _stats_blocked,
                  _stats_call),
}


def step_parameters(overrides: dict[str, dict] | None = None) -> dict[str, dict]:
    """Every step's full parameters: the called function's defaults updated with ``overrides``.

    Parameters
    ----------
    overrides : dict, optional
        ``{step: {name: value}}``, e.g. ``{"recon": {"inversion": "tkd"}}``.

    Raises
    ------
    ParameterError
        An unknown step or parameter name (one line, listing the valid ones).
    """
    overrides = overrides or {}
    out = {}
    for name in overrides:
        if name not in STEPS:
            raise ParameterError(f"unknown step {name!r} (choose from {', '.join(ALL_STEPS)})")
    for name, step in STEPS.items():
        params = step.defaults()
        for key, value in overrides.get(name, {}).items():
            if key not in params:
                valid = ", ".join(params)
                raise ParameterError(f"step {name} has no parameter {key!r} (choose from {valid})")
            params[key] = value
        out[name] = params
    return out


def recorded_parameters(params: dict) -> dict:
    """What a step record keeps of ``params`` (runtime settings such as threads left out)."""
    return {k: v for k, v in params.items() if k not in RUNTIME_KEYS}
