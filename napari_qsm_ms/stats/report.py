"""A self-contained HTML study report: tables, figures (embedded), parameters, versions, checksums.

Every number is traceable: each lesion row names its Chimap, lesion, reference, tissue and class
files (paths relative to the study root), whose SHA-256 is listed in the inputs table; each
summary row says which lesion rows it was computed from.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import atomic_write_text
from .tests import ALPHA, N_COMPARISONS, PAPER_COMPARISONS, PUBLISHED_TABLE3, SET_LABELS

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;vertical-align:top}
th{background:#f0f0f0}td.l,th.l{text-align:left}
tr.sig td{background:#eef7ee}.note{color:#8a5a00}.small{font-size:.8em;color:#555}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}code{font-size:.9em}
details summary{cursor:pointer;color:#03c}
"""

RECOMPUTE_SNIPPET = """import nibabel as nib, numpy as np
row = ...  # one row of lesions.tsv: lesion_id, part, chimap_file, lesions_file, reference_file, tissue_file
chi = nib.load(row.chimap_file).get_fdata()
lesion = np.asarray(nib.load(row.lesions_file).dataobj) == row.lesion_id
if row.part != "whole":  # mixed lesion: its voxels on WM (3) or cortex (2)
    tissue = np.asarray(nib.load(row.tissue_file).dataobj)
    lesion &= tissue == (3 if row.part == "wm" else 2)
ref = np.asarray(nib.load(row.reference_file).dataobj) == row.lesion_id
valid = np.isfinite(chi) & (np.asarray(nib.load(BRAIN_MASK_FILE).dataobj) > 0)  # desc-brain_mask, if any
relative_ppm = chi[lesion & valid].mean() - chi[ref & valid].mean()
"""

VERSION_PACKAGES = ["napari-qsm-ms", "numpy", "scipy", "pandas", "statsmodels", "nibabel", "matplotlib"]


def software_versions() -> dict[str, str]:
    """Versions of Python and the packages the numbers depend on."""
    out = {"python": platform.python_version()}
    for name in VERSION_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _fmt(v, col: str = "") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if col in ("p", "p_bonferroni"):
            return f"{v:.3g}" if v >= 1e-4 else f"{v:.2e}"
        if col.endswith("_ppm") or col in ("t", "z"):
            return f"{v:.4f}" if abs(v) >= 1e-4 or v == 0 else f"{v:.3e}"
        if col.startswith("pct"):
            return f"{v:.1f}"
        return f"{v:.4g}"
    if isinstance(v, str) and v.strip() == "":
        return ""
    if pd.isna(v) if not isinstance(v, (list, tuple, dict)) else False:
        return "n/a"
    return html.escape(str(v))


def table_html(frame: pd.DataFrame, *, left: tuple[str, ...] = (), highlight: str | None = None) -> str:
    """A pandas table as HTML with per-column number formatting."""
    if frame is None or frame.empty:
        return "<p><em>(empty)</em></p>"
    cols = list(frame.columns)
    head = "".join(f"<th class='{'l' if c in left else ''}'>{html.escape(str(c))}</th>" for c in cols)
    columns = []
    for c in cols:
        td = "<td class='l'>" if c in left else "<td>"
        columns.append([f"{td}{_fmt(v, c)}</td>" for v in frame[c].tolist()])
    flags = frame[highlight].tolist() if highlight and highlight in frame else [False] * len(frame)
    body = []
    for r, cells in enumerate(zip(*columns, strict=True)):
        cls = " class='sig'" if flags[r] is True or flags[r] is np.True_ else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def table3(summary: pd.DataFrame) -> pd.DataFrame:
    """The readable Table 3: set, n, mean +/- SD, t, P, P (Bonferroni), positives, negatives."""
    rows = []
    for r in summary.itertuples():
        label = SET_LABELS.get(r.set, r.set) + (", per patient" if r.level == "subject" else ", per lesion")
        ms = (
            f"{r.mean_ppm:.4f} \u00b1 {r.sd_ppm:.4f}"
            if np.isfinite(r.sd_ppm)
            else (f"{r.mean_ppm:.4f}" if np.isfinite(r.mean_ppm) else "n/a")
        )
        in_six = (r.set, r.level) in PAPER_COMPARISONS
        pos = "" if not np.isfinite(r.pct_positive) else f"{int(r.n_positive)} ({r.pct_positive:.0f}%)"
        neg = "" if not np.isfinite(r.pct_negative) else f"{int(r.n_negative)} ({r.pct_negative:.0f}%)"
        rows.append(
            {
                "comparison": label,
                "test": r.test,
                "n": r.n,
                "mean \u00b1 SD (ppm)": ms,
                "t": r.t,
                "df": r.df,
                "p": r.p,
                "p_bonferroni": r.p_bonferroni,
                # the six: Bonferroni (highlighted); others: uncorrected, as text
                "significant": bool(r.significant)
                if in_six
                else ("yes, uncorrected" if r.significant else "no"),
                "positive": pos,
                "negative": neg,
                "note": r.note,
                "Bian et al. 2016: n, mean \u00b1 SD, P": (
                    "{}, {}, P {}".format(*PUBLISHED_TABLE3[(r.set, r.level)]) if in_six else ""
                ),
            }
        )
    return pd.DataFrame(rows)


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"<img alt='{html.escape(Path(path).stem)}' src='data:image/png;base64,{data}'>"


def build_report(result, figures: dict[str, dict[str, Path]]) -> str:
    """The report's HTML text for a :class:`~napari_qsm_ms.stats.study.StudyStats`."""
    versions = software_versions()
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subj = result.subjects
    n_qsm = int(subj["has_qsm"].astype(bool).sum()) if not subj.empty else 0
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>QSM-MS study statistics</title>"
        f"<style>{_CSS}</style></head><body>"
    ]
    parts.append("<h1>Relative susceptibility of MS lesions: study statistics</h1>")
    parts.append(
        f"<p>Study <code>{html.escape(str(result.parameters.get('study', result.root)))}</code>; "
        f"{len(subj)} subjects ({n_qsm} with QSM); {len(result.lesions)} lesion parts in "
        f"<code>lesions.tsv</code>, {int(result.lesions['included'].astype(bool).sum()) if not result.lesions.empty else 0}"
        f" included in the tests. Generated {now} by napari-qsm-ms {versions.get('napari-qsm-ms')}.</p>"
    )
    parts.append(
        "<p class='small'>Method (Bian et al., AJNR 2016): relative susceptibility = mean \u03c7 in the lesion "
        "ROI (or its WM / cortical part for mixed lesions: lesion voxels on tissue 3 / tissue 2) minus mean "
        "\u03c7 in its reference ROI (column <code>reference_roi</code>: desc-refwm for WM parts, desc-refgm "
        "for cortical parts), from the "
        "Chimap and ROI files as saved (vessel removal is an edit of the ROI files). Voxels outside the QSM "
        f"brain mask are left out and counted in the flags. One-sample two-sided t-tests against 0; "
        f"{N_COMPARISONS} comparisons corrected together by Bonferroni (significant when p &lt; "
        f"{ALPHA}/{N_COMPARISONS} = {ALPHA / N_COMPARISONS:.4f}).</p>"
    )
    if result.notes:
        parts.append(
            "<h2>Warnings</h2><ul>"
            + "".join(f"<li class='note'>{html.escape(n)}</li>" for n in result.notes)
            + "</ul>"
        )
    parts.append(
        "<h2>Table 3: one-sample t-tests (the paper's six comparisons) and comparisons between types</h2>"
    )
    parts.append(
        table_html(
            table3(result.summary),
            left=("comparison", "test", "note", "Bian et al. 2016: n, mean \u00b1 SD, P"),
            highlight="significant",
        )
    )
    parts.append(
        "<p class='small'>Source: <code>summary.tsv</code>. Each per-lesion row uses the rows of "
        "<code>lesions.tsv</code> with that <code>lesion_type</code> and <code>included</code> = true; "
        "per-patient rows use each subject's mean of those rows. Welch and paired rows are not part of the "
        "six and are not corrected. The last column gives the published values for comparison.</p>"
    )
    for name, paths in figures.items():
        if name == "figure2":
            parts.append("<h2>Figure 2: relative susceptibility by lesion type</h2>")
            parts.append(_img(paths["png"]))
            parts.append(
                f"<p class='small'>Files: <code>{paths['png'].name}</code>, <code>{paths['svg'].name}</code>; "
                "data: <code>lesions.tsv</code> (included rows).</p>"
            )
    parts.append("<h2>Beyond the paper: lesions nested in patients</h2>")
    parts.append("<h3>Linear mixed-effects model</h3>")
    parts.append(table_html(result.model, left=("term", "method", "note")))
    parts.append(
        "<p class='small'>Source: <code>model.tsv</code>. Per-type means with a random intercept per "
        "subject (statsmodels MixedLM, REML; Wald z tests and 95% CIs). Notes record convergence "
        "warnings, e.g. a subject variance estimated at 0 (the model then equals pooled means).</p>"
    )
    parts.append("<h3>Subject-bootstrap confidence intervals of the means</h3>")
    parts.append(table_html(result.bootstrap, left=("set", "level", "method", "note")))
    parts.extend(_markers_section(result, figures))
    rois = {k: v for k, v in figures.items() if k.startswith("roi_")}
    if rois:
        parts.append("<h2>ROI overlays of example lesions (largest of each class)</h2>")
        for name, paths in rois.items():
            parts.append(f"<h3>{html.escape(name)}</h3>{_img(paths['png'])}")
    parts.append("<h2>Subjects</h2>")
    parts.append(
        table_html(result.subjects, left=("subject", "status", "class_source", "voxel_size_mm", "message"))
    )
    parts.append("<h2>Lesion parts</h2>")
    parts.append(
        "<details open><summary>lesions.tsv (every lesion part, with flags and source files)</summary>"
    )
    parts.append(
        table_html(
            result.lesions,
            left=(
                "subject",
                "class",
                "part",
                "lesion_type",
                "reference_roi",
                "consensus",
                "votes",
                "flags",
                "chimap_file",
                "lesions_file",
                "reference_file",
                "tissue_file",
                "classes_file",
            ),
        )
    )
    parts.append("</details>")
    parts.append(
        "<p class='small'>Flags: <code>no_qsm</code> subject without Chimap; <code>no_reference</code> "
        "reference ROI missing or empty (relative value n/a); <code>outside_qsm_mask:N</code> N lesion "
        "voxels outside the QSM mask, left out of the mean; <code>excluded:REASON</code> excluded in the "
        "annotation; <code>class:rejected|disputed</code> rater consensus; <code>class_from_tissue</code> "
        "no consensus class, class suggested from the cortex fraction; "
        "<code>vessel_voxels_in_*</code> the ROI still overlaps the vessel mask. Rows with "
        "<code>included</code> = no stay out of every test.</p>"
    )
    parts.append("<h2>Recomputing a value by hand</h2>")
    parts.append(
        "<p class='small'>Every row of <code>lesions.tsv</code> can be recomputed from the files it names "
        "(paths relative to the study folder), e.g. with nibabel and numpy:</p><pre>"
        + html.escape(RECOMPUTE_SNIPPET)
        + "</pre>"
    )
    parts.append("<h2>Input files (SHA-256)</h2>")
    parts.append(table_html(result.inputs, left=("file", "sha256")))
    parts.append("<h2>Parameters</h2>")
    parts.append(
        table_html(
            pd.DataFrame(
                {"parameter": list(result.parameters), "value": [str(v) for v in result.parameters.values()]}
            ),
            left=("parameter", "value"),
        )
    )
    parts.append("<h2>Software</h2>")
    parts.append(
        table_html(
            pd.DataFrame({"package": list(versions), "version": list(versions.values())}),
            left=("package", "version"),
        )
    )
    parts.append("</body></html>\n")
    return "".join(parts)


def _markers_section(result, figures: dict[str, dict[str, Path]]) -> list[str]:
    """Lesion markers beyond the paper: per-subject PRL count and CVS fraction, rim profiles."""
    from .markers import CVS_FRACTION_RULE, SELECT3_N, SELECT6_N, marker_summary

    summary = marker_summary(result.subjects)
    if summary.empty:
        return []
    out = ["<h2>Beyond the paper: paramagnetic rim lesions and the central vein sign</h2>",
           table_html(summary, left=("subject", "prl_source", "cvs_source"))]
    out.append(
        "<p class='small'>Source: <code>subjects.tsv</code> (per lesion: <code>lesions.tsv</code> columns "
        "<code>prl</code>, <code>cvs</code>, <code>cvs_excluded</code>, <code>cvs_exclusion_reason</code>). "
        "Which lesions count: the consensus of the rim round (<code>sub-*_round-rim_consensus.tsv</code>) where "
        "the raters agreed, else the measured suggestion; <code>prl_source</code> / <code>cvs_source</code> say "
        "which. Eligible for the CVS: not excluded (NAIMS: under 3 mm, confluent, several veins; measured, or "
        f"the raters' 'excluded'). Rules: <code>cvs_40pct</code> CVS in at least {CVS_FRACTION_RULE:.0%} of the "
        f"eligible lesions; <code>cvs_select3</code> at least {SELECT3_N} CVS-positive lesions (Select-3*, Solomon "
        f"et al., Mult Scler 2018); <code>cvs_select6</code> at least {SELECT6_N} (Select-6*, Mult Scler 2024;30:25-34)."
        " Every eligible lesion counts here; in Select-n* the reader looks for n lesions.</p>"
    )
    if "rim_profiles" in figures:
        paths = figures["rim_profiles"]
        out.append("<h3>Rim profiles of PRL and non-PRL lesions</h3>")
        out.append(_img(paths["png"]))
        out.append(
            f"<p class='small'>Files: <code>{paths['png'].name}</code>, <code>{paths['svg'].name}</code>; data: "
            "<code>rim_profiles.tsv</code> (median χ per 0.5 mm of signed distance to the lesion boundary, in "
            "white matter) and the <code>prl</code> column of <code>lesions.tsv</code>.</p>"
        )
    return out


def write_report(result, path: str | Path, figures: dict[str, dict[str, Path]]) -> Path:
    """Write :func:`build_report` atomically to ``path``."""
    return atomic_write_text(path, build_report(result, figures))
