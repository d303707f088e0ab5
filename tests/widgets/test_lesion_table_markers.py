"""Rim score and CVS in the lesion table of "Lesions and references" (issue 14, Build 4): the
values are those ``qsm-ms stats`` exports, the columns sort as numbers by a click on the header,
a click on a row still goes to its lesion, and missing inputs show a dash that says what to run."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QPoint, Qt

from napari_qsm_ms._widgets._layers import find_layer
from napari_qsm_ms._widgets._lesion_table import COLUMNS, MISSING
from napari_qsm_ms.stats.marker_view import NO_MAGNITUDE, NO_QSM
from napari_qsm_ms.stats.markers import MARKER_LESION_COLUMNS

from ._markers_study import exported_lesions, marker_subject, rate_rims, same_value
from ._user_path import add_dock

HEADERS = [h for _, h, _ in COLUMNS]


def _open(make_napari_viewer, subject, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open(str(subject.study / subject.sub), plugin="napari-qsm-ms")
    _, widget = add_dock(viewer, "Lesions and references")
    panel = widget.lesions_panel
    qtbot.waitUntil(lambda: panel._marker_worker is None and panel._marker_key is not None, timeout=60000)
    return viewer, widget, panel


def _column(table, header: str) -> list[str]:
    c = HEADERS.index(header)
    return [row[c] for row in table.row_texts()]


def _tooltip(table, row: int, header: str):
    proxy = table.proxy
    return proxy.data(proxy.index(row, HEADERS.index(header)), Qt.ItemDataRole.ToolTipRole)


def _click_header(table, qtbot, header: str) -> None:
    head = table.horizontalHeader()
    c = HEADERS.index(header)
    x = head.sectionViewportPosition(c) + head.sectionSize(c) // 2
    qtbot.mouseClick(head.viewport(), Qt.LeftButton, pos=QPoint(x, head.height() // 2))


def _click_row(table, qtbot, row: int) -> None:
    rect = table.visualRect(table.proxy.index(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.LeftButton, pos=rect.center())


def test_table_shows_the_exported_values_sorts_numerically_and_navigates(make_napari_viewer, tmp_path_factory,
                                                                         tmp_path, qtbot):
    subject = marker_subject(tmp_path_factory, tmp_path)
    exported = exported_lesions(subject)
    viewer, widget, panel = _open(make_napari_viewer, subject, qtbot)
    table = widget.table
    # ONE answer: the dock's numbers are the ones qsm-ms stats wrote
    frame = panel.marker_frame.set_index("lesion_id")
    assert list(frame.index) == list(exported.index)
    for col in ("rim_score_ppm", "rim_coverage", "vein_score"):
        np.testing.assert_array_equal(frame[col].to_numpy(float), exported[col].to_numpy(float))
    for col in ("prl_suggested", "prl", "cvs_eligible", "cvs_suggested", "cvs"):
        assert frame[col].astype(bool).tolist() == exported[col].astype(bool).tolist()
    ids = [int(t) for t in _column(table, "ID")]
    shown = dict(zip(ids, zip(_column(table, "Rim ppm"), _column(table, "Vein"), _column(table, "CVS"),
                              _column(table, "PRL"))))
    for lid, row in exported.iterrows():
        excluded = "small" if row.cvs_exclusion_reason == "small" else "excl"
        cvs = "yes" if row.cvs else ("no" if row.cvs_eligible else excluded)
        assert shown[lid] == (f"{row.rim_score_ppm:.3f}", f"{row.vein_score:.2f}", cvs,
                              "yes" if row.prl else "no")
    assert {"yes", "no"} <= set(_column(table, "PRL")) and "yes" in _column(table, "CVS")

    # a click on the header sorts by the numbers (ascending, then descending)
    _click_header(table, qtbot, "Rim ppm")
    ascending = [float(t) for t in _column(table, "Rim ppm")]
    assert ascending == sorted(ascending)
    _click_header(table, qtbot, "Rim ppm")
    descending = [float(t) for t in _column(table, "Rim ppm")]
    assert descending == sorted(ascending, reverse=True)
    top = int(_column(table, "ID")[0])
    assert top == int(exported["rim_score_ppm"].idxmax())
    _click_header(table, qtbot, "Vein")
    veins = [float(t) for t in _column(table, "Vein")]
    assert veins == sorted(veins)
    # sorting on a numeric column is by value, not by text: volumes with 2 and 3 digits
    _click_header(table, qtbot, "Vol mm³")
    volumes = [float(t) for t in _column(table, "Vol mm³")]
    assert volumes == sorted(volumes) and len({len(t.split(".")[0]) for t in _column(table, "Vol mm³")}) > 1

    # after sorting, a click on a row goes to that row's lesion
    _click_header(table, qtbot, "Rim ppm")
    _click_header(table, qtbot, "Rim ppm")
    _click_row(table, qtbot, 0)
    lesions = find_layer(viewer, "lesions")
    assert lesions.selected_label == top
    rec = panel.lesion_frame.set_index("lesion_id").loc[top]
    z = int(round(lesions.world_to_data(viewer.dims.point)[2]))
    assert z == int(rec["central_slice"])
    assert table.selected_ids() == [top]

    # no QSM (the Chimap layer closed), then no T2* magnitude: dashes that say what to run
    viewer.layers.remove(find_layer(viewer, "qsm"))
    qtbot.waitUntil(lambda: set(_column(table, "Rim ppm")) == {MISSING}, timeout=30000)
    assert set(_column(table, "PRL")) == {MISSING} and _tooltip(table, 0, "Rim ppm") == NO_QSM
    assert "Reconstruct" in NO_QSM and MISSING not in _column(table, "Vein")  # veins need the magnitude only
    _click_header(table, qtbot, "PRL")  # sorting a column of dashes is harmless
    viewer.layers.remove(find_layer(viewer, "magnitude"))
    qtbot.waitUntil(lambda: set(_column(table, "Vein")) == {MISSING}, timeout=30000)
    assert _tooltip(table, 0, "CVS") == NO_MAGNITUDE and set(_column(table, "CVS")) == {MISSING}


def test_table_shows_prl_and_cvs_as_the_rim_round_decided_them(make_napari_viewer, tmp_path_factory, tmp_path,
                                                               qtbot):
    """ONE answer with a rim round: a lesion the measure does not call a PRL, rated PRL yes by three
    raters (their consensus file written by run_round_consensus), shows "yes" in the table opened
    through the Plugins menu, and every marker value of the dock equals stats/lesions.tsv."""
    subject = marker_subject(tmp_path_factory, tmp_path)
    before = exported_lesions(subject)
    lid = int(before.index[~before["prl_suggested"].astype(bool) & np.isfinite(before["rim_score_ppm"])][0])
    vein = int(before.index[before["cvs_suggested"].astype(bool)][0])
    assert vein != lid
    rate_rims(subject, prl={lid: "yes"}, cvs={vein: "absent"})
    exported = exported_lesions(subject)
    assert bool(exported.loc[lid, "prl"]) and exported.loc[lid, "prl_source"] == "rated"
    viewer, widget, panel = _open(make_napari_viewer, subject, qtbot)
    frame = panel.marker_frame.set_index("lesion_id")
    assert list(frame.index) == list(exported.index)
    for col in MARKER_LESION_COLUMNS:
        for i in frame.index:
            assert same_value(frame.loc[i, col], exported.loc[i, col]), (i, col, frame.loc[i, col])
    table = widget.table
    ids = [int(t) for t in _column(table, "ID")]
    row, vrow = ids.index(lid), ids.index(vein)
    assert _column(table, "PRL")[row] == "yes" and "rim round's consensus: yes" in _tooltip(table, row, "PRL")
    assert _column(table, "CVS")[vrow] == "no" and "rim round's consensus: absent" in _tooltip(table, vrow, "CVS")
    for i, text in zip(ids, _column(table, "PRL")):
        assert text == ("yes" if exported.loc[i, "prl"] else "no"), i
    # the rated decision stays when the measure behind it is gone (no QSM): the rim score is a dash
    viewer.layers.remove(find_layer(viewer, "qsm"))
    qtbot.waitUntil(lambda: set(_column(table, "Rim ppm")) == {MISSING}, timeout=30000)
    ids = [int(t) for t in _column(table, "ID")]
    prl = dict(zip(ids, _column(table, "PRL")))
    assert prl[lid] == "yes" and {t for i, t in prl.items() if i != lid} == {MISSING}
