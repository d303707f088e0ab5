"""The second blinded reading round: paramagnetic rim (PRL) and central vein sign (CVS) per lesion.

The class round stays blinded to QSM (as in the paper); this round needs QSM for the rim and the
T2* magnitude (or FLAIR*) for the vein, so it is a separate round with its own files
(docs/markers.md)::

    derivatives/qsm-ms/sub-<label>/anat/sub-<label>_rater-<name>_round-rim_votes.tsv

one row per lesion the rater has read, columns :data:`MARKER_VOTE_COLUMNS`:

``lesion_id``      the lesion's id in the consensus label map (int > 0), required
``round``          the round's name (``rim``), the marker of these files
``prl``            ``yes`` | ``no`` | ``uncertain`` | empty (not read yet)
``cvs``            ``present`` | ``absent`` | ``excluded`` | empty
``cvs_exclusion``  the reason when ``cvs`` is ``excluded`` (:data:`CVS_EXCLUSIONS`), else empty
``comment``        free text, one line
``timestamp``      UTC ISO 8601 time of the last change
``history``        earlier answers ``prl/cvs/reason@timestamp`` joined by ``;``

The same guarantees as the class round: one file per rater, rewritten atomically on every
answer (:func:`napari_qsm_ms.io.atomic_write_tsv`), nothing of other raters read by a session.

Consensus per lesion and marker is the majority of the panel (more than half; otherwise
``disputed``); agreement per marker is Fleiss' kappa over the lesions every panel rater answered
and Cohen's kappa per pair (:func:`napari_qsm_ms.rating.agreement.fleiss_kappa`,
:func:`~napari_qsm_ms.rating.agreement.cohen_kappa`), written to
``derivatives/qsm-ms/agreement_round-rim.tsv``.

Criteria the raters apply (Sati et al., Nat Rev Neurol 2016;12:714-722, NAIMS): a central vein is
a thin hypointense line or dot, seen in at least two perpendicular planes, running partly or
entirely through the lesion, central (about equidistant from the edges whatever the shape), a
single vein; lesions under 3 mm in any plane, confluent lesions, lesions with several distinct
veins and poorly visible lesions are excluded. A PRL shows a paramagnetic (bright on QSM) rim at
the lesion edge, at least partly around it, with the magnitude beside it to tell veins from rims.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import find_objects as ndi_find_objects

from ..display import QSM_PRESETS_PPM, window_presets
from ..errors import InputFileError, ParameterError
from ..io.atomic import atomic_write_tsv
from ..io.layout import (
    StudyFiles,
    SubjectFiles,
    check_round,
    round_agreement_tsv,
    round_consensus_tsv,
    round_votes_tsv,
)
from ..io.nifti import Volume
from ..progress import report
from .agreement import AGREEMENT_COLUMNS, cohen_kappa, fleiss_kappa
from .session import rater_seed
from .votes import _one_line, _read_table_text, check_rater, now_utc

ROUND = "rim"
PRL_VOTES = ("yes", "no", "uncertain")
CVS_VOTES = ("present", "absent", "excluded")
CVS_EXCLUSIONS = ("small", "confluent", "multiple_veins", "not_visible", "other")
MARKERS = {"prl": PRL_VOTES, "cvs": CVS_VOTES}
MARKER_VOTE_COLUMNS = ["lesion_id", "round", "prl", "cvs", "cvs_exclusion", "comment", "timestamp", "history"]
CONSENSUS_COLUMNS = ["lesion_id", "marker", "value", "consensus", "votes", "n_raters", "n_votes", "agreement"]


def empty_marker_votes() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series([], dtype="int64" if c == "lesion_id" else "object") for c in MARKER_VOTE_COLUMNS}
    )


def _check_answer(prl: str, cvs: str, reason: str) -> None:
    if prl not in ("", *PRL_VOTES):
        raise ParameterError(f"invalid PRL answer {prl!r}: use one of {', '.join(PRL_VOTES)}")
    if cvs not in ("", *CVS_VOTES):
        raise ParameterError(f"invalid CVS answer {cvs!r}: use one of {', '.join(CVS_VOTES)}")
    if cvs == "excluded" and reason not in CVS_EXCLUSIONS:
        raise ParameterError(f"an excluded CVS needs a reason: one of {', '.join(CVS_EXCLUSIONS)}")
    if cvs != "excluded" and reason:
        raise ParameterError("a CVS exclusion reason is only given with cvs = excluded")


def read_marker_votes_file(path, round_name: str = ROUND) -> pd.DataFrame:
    """Read and validate one rater's votes of a marker round; a missing file is an empty table.

    Raises
    ------
    InputFileError
        One line naming the file: missing ``lesion_id``, non-integer ids, a lesion listed twice,
        another round's file, unknown answers, or an exclusion without a reason.
    """
    p = Path(path)
    if not p.exists():
        return empty_marker_votes()
    frame = _read_table_text(p)
    if "lesion_id" not in frame.columns:
        raise InputFileError(p, "missing column lesion_id")
    for col in MARKER_VOTE_COLUMNS[1:]:
        if col not in frame.columns:
            frame[col] = ""
    frame = frame[frame["lesion_id"].str.strip() != ""].reset_index(drop=True)
    try:
        ids = frame["lesion_id"].astype(float)
    except ValueError:
        raise InputFileError(p, "lesion_id must be integers") from None
    if ((ids != ids.round()) | (ids <= 0)).any():
        raise InputFileError(p, "lesion_id must be positive integers")
    frame["lesion_id"] = ids.astype("int64")
    if frame["lesion_id"].duplicated().any():
        raise InputFileError(p, "a lesion is listed twice")
    rounds = set(frame["round"].replace("", round_name))
    if rounds - {round_name}:
        other = ", ".join(sorted(rounds - {round_name}))
        raise InputFileError(p, f"holds round(s) {other}, expected {round_name}")
    frame["round"] = round_name
    for col in ("prl", "cvs", "cvs_exclusion"):
        words = frame[col].str.strip().str.lower().str.replace(r"[\s-]+", "_", regex=True)
        frame[col] = words.replace("n/a", "")
    for rec in frame.itertuples(index=False):
        try:
            _check_answer(rec.prl, rec.cvs, rec.cvs_exclusion)
        except ParameterError as exc:
            raise InputFileError(p, f"lesion {rec.lesion_id}: {exc}") from None
    return frame[MARKER_VOTE_COLUMNS].reset_index(drop=True)


def record_marker_vote(
    subject: SubjectFiles,
    rater: str,
    lesion_id: int,
    *,
    prl: str | None = None,
    cvs: str | None = None,
    cvs_exclusion: str = "",
    comment: str | None = None,
    round_name: str = ROUND,
    timestamp: str | None = None,
) -> pd.DataFrame:
    """Record one rater's answer(s) on one lesion: read the rater's own file, update the row, rewrite.

    ``prl`` / ``cvs`` left at None keep their earlier value; the earlier answer moves to
    ``history``. Returns the rater's votes after the write.
    """
    path = round_votes_tsv(subject, check_rater(rater), check_round(round_name))
    lesion_id = int(lesion_id)
    if lesion_id <= 0:
        raise ParameterError(f"invalid lesion id {lesion_id}: must be positive")
    frame = read_marker_votes_file(path, round_name)
    row = frame["lesion_id"] == lesion_id
    old = frame.loc[row].iloc[0] if row.any() else None
    new_prl = prl if prl is not None else ("" if old is None else old["prl"])
    new_cvs = cvs if cvs is not None else ("" if old is None else old["cvs"])
    if cvs_exclusion or cvs is not None or old is None:
        reason = cvs_exclusion  # given with this answer (checked below)
    else:
        reason = old["cvs_exclusion"]  # unchanged CVS answer keeps its reason
    _check_answer(new_prl, new_cvs, reason)
    kept_comment = comment if comment is not None else ("" if old is None else old["comment"])
    history = ""
    if old is not None:
        earlier = f"{old['prl']}/{old['cvs']}/{old['cvs_exclusion']}@{old['timestamp']}"
        history = ";".join(h for h in (str(old["history"]), earlier) if h)
    rec = {
        "lesion_id": lesion_id,
        "round": round_name,
        "prl": new_prl,
        "cvs": new_cvs,
        "cvs_exclusion": reason,
        "comment": _one_line(kept_comment).replace(";", ","),
        "timestamp": timestamp or now_utc(),
        "history": history,
    }
    new = pd.DataFrame([rec])
    frame = pd.concat([frame.loc[~row], new], ignore_index=True) if len(frame) else new
    frame = frame.sort_values("lesion_id", kind="stable").reset_index(drop=True)
    atomic_write_tsv(path, frame[MARKER_VOTE_COLUMNS])
    return frame


def reading_order(subject_label: str, rater: str, lesion_ids, round_name: str = ROUND) -> list[int]:
    """The lesions in this rater's own shuffled order for the round (reproducible, differs from
    the class round's order and between raters)."""
    salt = int.from_bytes(check_round(round_name).encode(), "little")
    rng = np.random.default_rng([rater_seed(subject_label, check_rater(rater)), salt])
    ids = sorted(int(i) for i in lesion_ids)
    return [ids[k] for k in rng.permutation(len(ids))]


def list_round_raters(subject: SubjectFiles, round_name: str = ROUND) -> list[str]:
    """Raters with a votes file of the round for ``subject``, sorted."""
    template = round_votes_tsv(subject, "RATERX", round_name).name
    prefix, suffix = template.split("RATERX")
    if not subject.deriv.is_dir():
        return []
    names = [p.name[len(prefix) : -len(suffix)] for p in subject.deriv.iterdir()
             if p.name.startswith(prefix) and p.name.endswith(suffix)]
    return sorted(n for n in names if n.isalnum())


def read_round_votes(
    subject: SubjectFiles, raters: Sequence[str] | None = None, round_name: str = ROUND
) -> pd.DataFrame:
    """Every rater's answers of the round on ``subject``, long, with a ``rater`` column."""
    raters = list_round_raters(subject, round_name) if raters is None else [check_rater(r) for r in raters]
    frames = [read_marker_votes_file(round_votes_tsv(subject, r, round_name), round_name).assign(rater=r)
              for r in raters]
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_marker_votes().assign(rater=pd.Series([], dtype="object"))
    return pd.concat(frames, ignore_index=True)


def marker_majority(answers: Sequence[str], n_raters: int) -> tuple[str, str, float]:
    """(value, ``agreed`` | ``disputed``, fraction of the panel) under the majority rule.

    Examples
    --------
    >>> marker_majority(["yes", "yes", "uncertain"], 3)
    ('yes', 'agreed', 0.6666666666666666)
    >>> marker_majority(["present", "absent"], 3)
    ('disputed', 'disputed', 0.3333333333333333)
    """
    if n_raters < 2:
        raise ParameterError(f"consensus needs at least 2 raters, got {n_raters}")
    tally = Counter(a for a in answers if a)
    for value, k in tally.most_common(1):
        if 2 * k > n_raters:
            return value, "agreed", k / n_raters
    return "disputed", "disputed", (max(tally.values()) / n_raters) if tally else 0.0


def round_consensus(votes: pd.DataFrame, panel: Sequence[str]) -> pd.DataFrame:
    """Per lesion and marker: majority value, state, ``value:count`` votes, agreement."""
    rows = []
    n = len(panel)
    votes = votes[votes["rater"].isin(panel)]
    for lid, group in votes.groupby("lesion_id", sort=True):
        for marker, vocab in MARKERS.items():
            answers = [a for a in group[marker] if a]
            value, state, frac = marker_majority(answers, n)
            tally = Counter(answers)
            rows.append(
                {
                    "lesion_id": int(lid), "marker": marker, "value": value, "consensus": state,
                    "votes": ";".join(f"{v}:{tally[v]}" for v in vocab if tally[v]),
                    "n_raters": n, "n_votes": len(answers), "agreement": frac,
                }
            )
    return pd.DataFrame(rows, columns=CONSENSUS_COLUMNS)


def marker_agreement(votes: pd.DataFrame, panel: Sequence[str], subjects: str = "") -> pd.DataFrame:
    """Fleiss' kappa (lesions every panel rater answered) and Cohen's kappa per pair, per marker.

    ``votes`` is long (``subject`` optional, ``lesion_id``, ``rater``, ``prl``, ``cvs``). Rows:
    ``marker`` + :data:`~napari_qsm_ms.rating.agreement.AGREEMENT_COLUMNS`.
    """
    frame = votes.copy()
    if "subject" not in frame:
        frame["subject"] = ""
    rows = []
    for marker, vocab in MARKERS.items():
        answered = frame[frame[marker] != ""]
        wide = answered.pivot_table(
            index=["subject", "lesion_id"], columns="rater", values=marker, aggfunc="first"
        )
        wide = wide.reindex(columns=list(panel))
        complete = wide.dropna()
        counts = np.array([[int((row == v).sum()) for v in vocab] for row in complete.to_numpy()])
        counts = counts.reshape(-1, len(vocab))
        fk = fleiss_kappa(counts) if len(panel) >= 2 and len(counts) else float("nan")
        rows.append({"marker": marker, "measure": "fleiss_kappa", "raters": ";".join(panel), "value": fk,
                     "n_items": len(counts), "subjects": subjects})
        for a, b in itertools.combinations(panel, 2):
            both = wide[[a, b]].dropna()
            table = pd.crosstab(pd.Categorical(both[a], vocab), pd.Categorical(both[b], vocab), dropna=False)
            rows.append({"marker": marker, "measure": "cohen_kappa", "raters": f"{a};{b}",
                         "value": cohen_kappa(table.to_numpy()), "n_items": len(both), "subjects": subjects})
    out = pd.DataFrame(rows, columns=["marker", *AGREEMENT_COLUMNS])
    out["value"] = out["value"].astype(float).round(6)
    return out


def run_round_consensus(
    study: StudyFiles | str,
    subjects: Sequence[SubjectFiles],
    raters: Sequence[str] | None = None,
    round_name: str = ROUND,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Consensus per subject (``sub-*_round-<round>_consensus.tsv``) and pooled kappas
    (``agreement_round-<round>.tsv``); subjects with fewer than two raters are skipped.

    Returns ``({label: consensus table}, agreement table)``.
    """
    study = study if isinstance(study, StudyFiles) else StudyFiles.at(study)
    check_round(round_name)
    done, pooled = {}, []
    for subject in subjects:
        panel = list(raters) if raters else list_round_raters(subject, round_name)
        if len(panel) < 2:
            continue
        votes = read_round_votes(subject, panel, round_name)
        table = round_consensus(votes, panel)
        atomic_write_tsv(round_consensus_tsv(subject, round_name), table)
        done[subject.label] = table
        pooled.append(votes.assign(subject=subject.label))
    if not done:
        raise ParameterError(f"{study.root}: no subject has {round_name}-round votes from at least 2 raters")
    votes = pd.concat(pooled, ignore_index=True)
    panel = list(raters) if raters else sorted(votes["rater"].unique())
    table = marker_agreement(votes, panel, subjects=";".join(done))
    atomic_write_tsv(round_agreement_tsv(study, round_name), table)
    return done, table


# --- a rater's session of the round (pure; the dock shows it) ---------------------------------
#: Window of the QSM panels (ppm): the display module's "lesions" preset.
QSM_WINDOW_PPM = QSM_PRESETS_PPM["lesions (+-0.10 ppm)"]
#: Window preset (percentiles of the non-zero voxels) of the magnitude panels: veins dark in the
#: brain's grey scale. FLAIR* takes the same low end and a high end that keeps the lesions
#: themselves unsaturated (:func:`flair_star_window`), so a vein inside a bright lesion stays visible.
MAGNITUDE_WINDOW = "brain (5-99 %)"
LESION_PERCENTILE = 99.0


@dataclass
class RoundSession:
    """What the rim-round dock needs for one rater on one subject (no other rater's file is read).

    The volumes are in the canonical RAS+ voxel order (:func:`napari_qsm_ms.io.nifti.to_canonical`)
    for the linked orthogonal planes (:mod:`napari_qsm_ms.rating.orthogonal`): ``contrasts`` is
    ``[(title, data, (low, high))]`` -- QSM (for the PRL question), T2* magnitude and, when the
    subject has a coregistered FLAIR, FLAIR* (for the CVS question). ``order`` is the rater's
    shuffled reading order of the lesion ids; ``centres[lid]`` the voxel the planes cross at first
    (the lesion's central axial slice by the project's rule, its centroid in that slice);
    ``answers`` the rater's own answers so far. Nothing measured on QSM (rim score, suggestions)
    is in the session: the rater reads the images only.
    """

    subject: SubjectFiles
    rater: str
    round_name: str
    contrasts: list
    lesions: np.ndarray
    voxel_size_mm: tuple
    order: list[int]
    centres: dict[int, tuple[int, int, int]]
    answers: pd.DataFrame = field(default_factory=empty_marker_votes)

    def answered(self, lesion_id: int) -> dict:
        row = self.answers[self.answers["lesion_id"] == int(lesion_id)]
        return {} if row.empty else row.iloc[0].to_dict()

    @property
    def n_done(self) -> int:
        """Lesions with both markers answered."""
        a = self.answers
        return int(((a["prl"] != "") & (a["cvs"] != "")).sum()) if len(a) else 0


def lesion_centres(labels: np.ndarray, slice_axis: int = 2) -> dict[int, tuple[int, int, int]]:
    """Per lesion id: its central slice across ``slice_axis`` (the project's rule) and the
    centroid of the lesion in that slice, as a voxel index (labels in canonical RAS+ order)."""
    from ..roi.rules import lesion_central_slice

    centres = {}
    for lid, sl in enumerate(ndi_find_objects(labels), start=1):
        if sl is None:
            continue
        m = labels[sl] == lid
        k = lesion_central_slice(m, slice_axis)
        idx = [int(round(float(np.mean(i)))) for i in np.nonzero(np.take(m, k, axis=slice_axis))]
        idx.insert(slice_axis, k)
        centres[lid] = tuple(int(s.start) + v for s, v in zip(sl, idx))
    return centres


def flair_star_window(flair_star: np.ndarray, lesions: np.ndarray) -> tuple[float, float]:
    """Contrast limits of FLAIR*: the magnitude preset's low end; the high end at least the
    :data:`LESION_PERCENTILE` of the lesion voxels (bright on FLAIR*, where the vein is sought)."""
    low, high = window_presets("image", flair_star)[MAGNITUDE_WINDOW]
    inside = flair_star[np.asarray(lesions, bool) & (flair_star > 0)]
    if inside.size:
        high = max(high, float(np.percentile(inside, LESION_PERCENTILE)))
    return low, high


def prepare_round(subject: SubjectFiles, rater: str, round_name: str = ROUND, progress=None) -> RoundSession:
    """Read the subject's Chimap, T2* magnitude, FLAIR* (when FLAIR is coregistered) and lesions,
    and the rater's own answers (nothing of other raters).

    Raises
    ------
    InputFileError
        A missing file (one line naming it: the round needs QSM, magnitude and the lesions), or a
        file not on the T2* grid.
    """
    from ..io.nifti import check_same_grid, load_volume, to_canonical
    from ..registration.flair_star import subject_flair_star

    rater = check_rater(rater)
    for path, what in ((subject.chimap, "QSM (Chimap)"), (subject.magnitude, "T2* magnitude"),
                       (subject.lesions, "lesion label map")):
        if not path.exists():
            raise InputFileError(path, f"missing: the {round_name} round needs the {what}")
    report(progress, 0.1, "reading QSM, magnitude and lesions")
    mag = load_volume(subject.magnitude, ndim=(3, 4))
    if mag.data.ndim == 4:
        mag = Volume(mag.data[..., 0], mag.affine, mag.path, mag.header)
    chi = load_volume(subject.chimap, allow_nan=True)
    les = load_volume(subject.lesions, dtype=None)
    for other in (chi, les):
        check_same_grid(mag, other)
    report(progress, 0.5, "FLAIR*")
    star = subject_flair_star(subject, mag)

    def canonical(data):
        return to_canonical(np.asarray(data), mag.affine)[0]

    magnitude = canonical(mag.data).astype(np.float32)
    contrasts = [
        ("QSM (ppm)", np.nan_to_num(canonical(chi.data).astype(np.float32)), QSM_WINDOW_PPM),
        ("T2* magnitude", magnitude, window_presets("magnitude", magnitude)[MAGNITUDE_WINDOW]),
    ]
    labels = canonical(les.data).astype(np.int32)
    if star is not None:
        data = canonical(star.data).astype(np.float32)
        contrasts.append(("FLAIR*", data, flair_star_window(data, labels > 0)))
    view = to_canonical(labels, mag.affine)[1]
    vs = tuple(float(v) for v in np.linalg.norm(view.canonical_affine[:3, :3], axis=0))
    centres = lesion_centres(labels)
    answers = read_marker_votes_file(round_votes_tsv(subject, rater, round_name), round_name)
    report(progress, 1.0, "ready")
    return RoundSession(
        subject, rater, round_name, contrasts, labels, vs,
        reading_order(subject.label, rater, centres, round_name), centres, answers,
    )
