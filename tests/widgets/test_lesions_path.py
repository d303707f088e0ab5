"""The Lesions dock as the user meets it (issue 12 items 6, 7, 8): the dock from the Plugins menu,
the subject from File > Open, Ctrl-Z and strokes on the canvas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from qtpy.QtCore import Qt

from napari_qsm_ms._widgets._layers import find_layer

from ._user_path import add_dock, canvas_widget
from .test_annotation_support import ball_indices, make_subject


@pytest.fixture
def subject(tmp_path):
    return make_subject(tmp_path)


@pytest.fixture
def lesions_dock(make_napari_viewer, subject):
    viewer = make_napari_viewer(show=True)
    viewer.open(str(subject.study / subject.sub), plugin="napari-qsm-ms")
    _, widget = add_dock(viewer, "Lesions and references")
    yield viewer, widget
    widget.shutdown()


def stroke(layer, lesion_id, center, radius=2.5):
    """One brush stroke: one undo step, and the paint event napari emits after a stroke."""
    idx = ball_indices(center, radius, layer.data.shape)
    layer.data_setitem(idx, lesion_id)
    return idx


def build_refs(widget, qtbot):
    worker = widget.build_references(start=False)
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=30000):
        worker.start()


def test_ctrl_z_after_build_references_undoes_them_in_one_step(lesions_dock, qtbot):
    viewer, widget = lesions_dock
    lesions = find_layer(viewer, "lesions")
    assert viewer.layers.selection.active is lesions  # item 7: the layer to draw on is selected
    stroke(lesions, 1, (20, 18, 5), 2.5)
    stroke(lesions, 2, (34, 18, 6), 1.2)
    drawn = np.array(lesions.data)
    build_refs(widget, qtbot)
    refwm, refgm = find_layer(viewer, "refwm"), find_layer(viewer, "refgm")
    assert refwm.data.any() and refgm.data.any()
    assert viewer.layers.selection.active is lesions
    canvas = canvas_widget(viewer)
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key_Z, Qt.ControlModifier)
    assert not refwm.data.any() and not refgm.data.any(), "Ctrl-Z must undo the references"
    assert (np.asarray(lesions.data) == drawn).all(), "... not the user's last stroke"
    qtbot.waitUntil(lambda: not any("ref" in f for f in widget.lesion_frame.get("flags", [])), timeout=3000)
    # the next Ctrl-Z is napari's own again: the user's last stroke
    qtbot.keyClick(canvas, Qt.Key_Z, Qt.ControlModifier)
    assert not (np.asarray(lesions.data) == 2).any() and (np.asarray(lesions.data) == 1).any()


def test_a_stroke_on_a_reference_layer_is_undone(lesions_dock, qtbot):
    viewer, widget = lesions_dock
    lesions = find_layer(viewer, "lesions")
    stroke(lesions, 1, (20, 18, 5), 2.5)
    build_refs(widget, qtbot)
    refgm = find_layer(viewer, "refgm")
    before = np.array(refgm.data)
    viewer.layers.selection.active = refgm
    stroke(refgm, 7, (30, 30, 5), 2.0)  # the user paints on the NAGM reference by mistake
    qtbot.waitUntil(lambda: (np.asarray(refgm.data) == before).all(), timeout=3000)


def test_stale_references_are_flagged_and_consensus_shows_without_reload(lesions_dock, qtbot, subject):
    viewer, widget = lesions_dock
    lesions = find_layer(viewer, "lesions")
    stroke(lesions, 1, (20, 18, 5), 2.5)  # a WM lesion: built as WM
    build_refs(widget, qtbot)
    assert not any("stale" in str(f) for f in widget.table.row_texts())
    # the consensus meeting resolves it as mixed (written by the Consensus dock or qsm-ms consensus)
    pd.DataFrame(
        {"lesion_id": [1], "class": ["mixed"], "consensus": ["resolved"], "votes": ["wm:1;mixed:2"],
         "n_raters": [3], "agreement": [0.67], "resolution_reason": ["meeting"]}
    ).to_csv(subject.lesions_tsv, sep="\t", index=False)
    rows = widget.table.row_texts
    qtbot.waitUntil(lambda: rows() and rows()[0][6] == "mixed", timeout=5000)
    assert "reference_stale_built_for_wm_now_mixed" in widget.table.row_texts()[0][7]
