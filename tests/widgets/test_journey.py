"""End to end on the user's path (issue 12, Must show): a subject of the sample study through QSM,
coregistration, a lesion drawn with the mouse, references, three blinded raters, consensus and the
Statistics export, all in the workspace dock; the exported table equals what the dock showed."""

from __future__ import annotations


import pandas as pd
import pytest
from qtpy.QtCore import Qt

from napari_qsm_ms._widgets.stats import TABLE_COLUMNS, _fmt
from napari_qsm_ms.rating.signin import RATER_CONTRASTS

from ._journey import RATERS, Journey


@pytest.mark.slow
def test_one_subject_through_the_whole_workflow(make_napari_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("QSM_MS_SAMPLE_DIR", str(tmp_path / "sample"))
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    journey = Journey(viewer)
    journey.open_sample()
    journey.reconstruct()
    journey.coregister()
    new_id = journey.draw_lesion()
    journey.build_references()
    for rater, keys in zip(RATERS, ([Qt.Key_1], [Qt.Key_1, Qt.Key_3], [Qt.Key_1, Qt.Key_2])):
        seen = journey.rate(rater, keys)
        assert sorted(seen["images"]) == sorted(t for _, t in RATER_CONTRASTS), seen
        assert seen["titles_on_canvas"] and seen["vote_buttons"] and seen["dock_visible"]
        assert "MISSING" not in seen["legend"]
        assert seen["votes"] >= 12  # the sample's 11 lesions and the one drawn here
    table = journey.consensus()
    assert new_id in set(table["lesion_id"])
    headers, shown, page = journey.statistics(tmp_path / "report")
    exported = pd.read_csv(tmp_path / "report" / "lesions.tsv", sep="\t", keep_default_na=False)
    exported = exported[exported["subject"] == journey.subject.sub] if "subject" in exported else exported
    shown_sub = [row for row in shown if row[0] == journey.subject.sub]
    cols = [c for c, _ in TABLE_COLUMNS]
    expect = [[_fmt(v, c) for c, v in zip(cols, row)] for row in page.lesions[cols].itertuples(index=False)]
    assert [r for r in expect if r[0] == journey.subject.sub] == shown_sub
    assert len(shown_sub) == len(exported)
    print("clicks per subject:", journey.steps)
