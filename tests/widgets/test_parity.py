"""Issue 11: the docks, the command line and Python give the same references, numbers and consensus.

One subject (stored LPS, so the layers are flipped against the files) with a WM lesion, a
cortical lesion, a mixed lesion, a rejected lesion, an excluded lesion next to the WM lesion (its
territory is contested), a drawn lesion whose id is also a proposal's id in the consensus table (a
rejected proposal drawn right beside it), a vessel and a brain mask. The study is copied three
times: the docks (real viewer, docks from the plugin menu, buttons pressed) work on one,
``qsm-ms rois`` + ``qsm-ms stats`` on another, Python on the third; the references must be equal
voxel for voxel and ``stats/lesions.tsv`` value for value.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from napari_qsm_ms._widgets._layers import load_subject_into_viewer
from napari_qsm_ms.cli import main
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.io.nifti import load_volume
from napari_qsm_ms.rating.proposals import proposals_path
from napari_qsm_ms.rating.votes import record_vote
from napari_qsm_ms.roi.annotation import AnnotationState
from napari_qsm_ms.roi.study import build_subject_references
from napari_qsm_ms.stats.lesions import LESION_COLUMNS
from napari_qsm_ms.stats.study import run_study_stats

from .test_annotation_support import SHAPE, make_subject, write


def _disc(arr, lid, cx, cy, zs, r):
    x, y = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for z in zs:
        arr[:, :, z][((x - cx) ** 2 + (y - cy) ** 2 <= r * r) & (arr[:, :, z] == 0)] = lid


def make_parity_subject(root):
    sub = make_subject(root)
    chi = np.asarray(load_volume(sub.chimap).data)
    chi = chi + np.random.default_rng(1).normal(0, 0.01, SHAPE).astype(np.float32) * (chi != 0)
    write(sub.chimap, chi.astype(np.float32))  # every voxel counts: a wrong voxel changes the means
    les = np.zeros(SHAPE, np.int16)  # file (LPS) voxel order
    _disc(les, 1, 16, 17, (4, 5, 6), 2.5)  # WM
    _disc(les, 5, 21, 17, (5, 6), 1.2)  # excluded, inside lesion 1's ring
    _disc(les, 2, 34, 17, (5, 6), 1.2)  # cortical
    les[29:33, 22:25, 7:9] = 3  # mixed (7 of 12 voxels per slice on cortex)
    _disc(les, 4, 12, 26, (7, 8), 1.5)  # rejected
    _disc(les, 6, 24, 26, (8, 9), 1.5)  # drawn, unrated; a rejected proposal has the same id
    write(sub.lesions, les, np.int16)
    proposals = np.zeros(SHAPE, np.int16)
    _disc(proposals, 6, 27, 26, (8, 9), 1.2)  # beside drawn lesion 6, its territory
    write(proposals_path(sub), proposals, np.int16)
    vessels = np.zeros(SHAPE, np.uint8)
    vessels[10, 8:24, 5] = 1
    write(sub.vessels, vessels, np.uint8)
    pd.DataFrame({
        "lesion_id": [1, 2, 3, 4, 5, 6],
        "candidate_source": ["drawn"] * 5 + ["proposed"],
        "class": ["wm", "cortical", "mixed", "rejected", "wm", "rejected"],
        "consensus": ["agreed"] * 6,
    }).to_csv(sub.lesions_tsv, sep="\t", index=False)
    state = AnnotationState()
    state.exclude(5, "artefact")
    state.save(sub.annotation_json)
    return sub


@pytest.fixture
def studies(tmp_path):
    sub = make_parity_subject(tmp_path / "dock")
    for name in ("cli", "python"):
        shutil.copytree(tmp_path / "dock", tmp_path / name)
    return {name: StudyFiles.at(tmp_path / name).subject(sub.label) for name in ("dock", "cli", "python")}


def _refs(sub):
    return [np.asarray(load_volume(p, dtype=None).data).astype(np.int32) for p in (sub.refwm, sub.refgm)]


def _lesions_tsv(sub):
    frame = pd.read_csv(StudyFiles.at(sub.study).stats_dir / "lesions.tsv", sep="\t", dtype={"subject": str},
                        keep_default_na=False, na_values=["n/a", ""])
    return frame[LESION_COLUMNS]


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a[LESION_COLUMNS].sort_values(["lesion_id", "part"], kind="stable").reset_index(drop=True)
    b = b[LESION_COLUMNS].sort_values(["lesion_id", "part"], kind="stable").reset_index(drop=True)
    assert list(a["lesion_id"]) == list(b["lesion_id"]) and list(a["part"]) == list(b["part"])
    for col in LESION_COLUMNS:
        x, y = a[col], b[col]
        if col in ("flags", "votes", "consensus", "class", "part", "lesion_type", "reference_roi", "subject"):
            def text(col_values):
                return ["" if pd.isna(v) else str(v) for v in col_values]

            assert text(x) == text(y), col
        else:
            np.testing.assert_allclose(pd.to_numeric(x, errors="coerce").astype(float),
                                       pd.to_numeric(y, errors="coerce").astype(float), rtol=1e-12, atol=0,
                                       equal_nan=True, err_msg=col)


def test_references_and_lesion_table_same_from_docks_cli_and_python(make_napari_viewer, qtbot, studies):
    # command line
    cli = studies["cli"]
    assert main(["rois", str(cli.study), "--exclude-vessels"]) == 0
    assert main(["stats", str(cli.study), "--quiet", "--bootstrap", "50"]) == 0
    # Python
    py = studies["python"]
    build_subject_references(py, exclude_vessels=True)
    run_study_stats(py.study, n_resamples=50)
    # the docks, as a user: load the subject, press Build references, Save, then Compute
    dock = studies["dock"]
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, dock)
    _, lesions_dock = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Lesions and references")
    lesions_dock.build_refs_button.click()
    qtbot.waitUntil(lambda: lesions_dock.reference_table is not None, timeout=30000)
    lesions_dock.save_button.click()
    _, stats_dock = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Statistics")
    stats_dock.path_edit.setText(str(dock.study))
    stats_dock.compute_button.click()
    qtbot.waitUntil(lambda: stats_dock.live_subject == dock.label and not stats_dock._workers, timeout=60000)

    cli_wm, cli_gm = _refs(cli)
    for other in (dock, py):
        wm, gm = _refs(other)
        np.testing.assert_array_equal(wm, cli_wm)
        np.testing.assert_array_equal(gm, cli_gm)
    # what the rules say: the drawn lesion 6 keeps a reference (the proposal's 'rejected' does not
    # leak), rejected 4 and excluded 5 get none, the mixed lesion gets both, lesion 1 its ring
    assert (cli_wm == 6).any() and not (cli_wm == 4).any() and not (cli_wm == 5).any()
    assert (cli_wm == 3).any() and (cli_gm == 3).any() and (cli_wm == 1).any() and (cli_gm == 2).any()
    # one provenance record, built by the pure step (brain_mask and built_at included)
    rec_cli = AnnotationState.load(cli.annotation_json).parameters
    rec_dock = AnnotationState.load(dock.annotation_json).parameters
    assert rec_cli["brain_mask"] == rec_dock["brain_mask"] == dock.brain_mask.name
    assert rec_cli["excluded"] == [5] and rec_cli["exclude_vessels"] is True
    assert {k: v for k, v in rec_cli.items() if k != "built_at"} == {
        k: v for k, v in rec_dock.items() if k != "built_at"}
    assert "built_at" in rec_dock

    assert stats_dock.unsaved == [] and "= the saved files" in stats_dock.status_label.text()
    table_cli = _lesions_tsv(cli)
    _same_rows(_lesions_tsv(py), table_cli)
    shown = stats_dock.lesions[stats_dock.lesions["subject"].astype(str) == dock.label]
    _same_rows(shown, table_cli)
    row6 = table_cli[table_cli["lesion_id"] == 6].iloc[0]
    assert row6["class"] == "wm" and "class_from_tissue" in row6["flags"] and row6["reference_voxels"] > 0
    assert set(table_cli["reference_roi"]) == {"refwm", "refgm"}


def test_consensus_same_from_dock_and_cli_with_a_panel_of_raters(make_napari_viewer, qtbot, studies):
    """Six raters vote (r1-r3 and anna, ben, cat); the panel is anna, ben, cat."""
    votes = {"r1": ["wm", "wm"], "r2": ["wm", "mixed"], "r3": ["wm", "mixed"],
             "anna": ["cortical", "wm"], "ben": ["cortical", "wm"], "cat": ["wm", "cortical"]}
    for sub in (studies["dock"], studies["cli"]):
        sub.lesions_tsv.unlink()
        for rater, (v1, v2) in votes.items():
            record_vote(sub, rater, 1, v1, timestamp="2026-01-01T00:00:00Z")
            record_vote(sub, rater, 2, v2, timestamp="2026-01-01T00:00:00Z")
    cli = studies["cli"]
    assert main(["consensus", str(cli.study), "--raters", "anna", "ben", "cat"]) == 0
    assert StudyFiles.at(cli.study).raters_tsv.exists()  # the choice is recorded
    # a contradicting choice is refused with one line
    assert main(["consensus", str(cli.study), "--raters", "r1", "r2"]) == 2

    dock = studies["dock"]
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, dock)
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Consensus and agreement")
    widget.panel_edit.setText("anna, ben, cat")
    widget.panel_button.click()
    widget.run_button.click()
    qtbot.waitUntil(lambda: widget.table_frame is not None, timeout=20000)
    a = pd.read_csv(dock.lesions_tsv, sep="\t", keep_default_na=False)
    b = pd.read_csv(cli.lesions_tsv, sep="\t", keep_default_na=False)
    pd.testing.assert_frame_equal(a, b)
    assert a.set_index("lesion_id").loc[1, "class"] == "cortical"  # 2 of anna, ben, cat
    assert a.set_index("lesion_id").loc[1, "raters"] == "anna;ben;cat"
    # and a dock opened later (or a CLI run without --raters) keeps the stored panel
    assert main(["consensus", str(dock.study)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(dock.lesions_tsv, sep="\t", keep_default_na=False), b)


def test_statistics_dock_says_when_its_numbers_are_not_the_exported_ones(make_napari_viewer, qtbot, studies):
    """A Chimap reconstructed in the dock but not written: the live values come from it, the export
    reads the files (no Chimap): the dock must say so before the user exports."""
    dock = studies["dock"]
    make_subject(dock.study, label="02")  # another subject with a Chimap file
    viewer = make_napari_viewer()
    load_subject_into_viewer(viewer, dock)
    dock.chimap.unlink()  # the map is now only in memory (as after Reconstruct without writing)
    _, stats_dock = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Statistics")
    stats_dock.path_edit.setText(str(dock.study))
    stats_dock.compute_button.click()
    qtbot.waitUntil(lambda: stats_dock.live_subject == dock.label and not stats_dock._workers, timeout=60000)
    assert any(u.startswith("Chimap (only in memory") for u in stats_dock.unsaved)
    text = stats_dock.status_label.text()
    assert "NOT what Export writes" in text and "Chimap" in text
    live = stats_dock.lesions[stats_dock.lesions["subject"].astype(str) == dock.label]
    assert live["flags"].str.contains("from_layers").all() and not live["flags"].str.contains("no_qsm").any()
