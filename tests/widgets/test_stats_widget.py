"""The Statistics dock in a real napari viewer (Xvfb): table, jump to lesion, live values, export."""

from __future__ import annotations

import numpy as np

from napari_qsm_ms.roi.rules import lesion_central_slice
import pandas as pd
import pytest

from napari_qsm_ms._widgets._layers import find_layer, load_subject_into_viewer
from napari_qsm_ms._widgets.stats import StatsWidget
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.stats.synthetic import write_synthetic_study


@pytest.fixture(scope="module")
def study_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("gui-study")
    write_synthetic_study(
        root, [(1, 3, 1), (1, 2, 0)], shape=(48, 48, 16), voxel_size_mm=(0.8, 0.8, 1.5), seed=2
    )
    return root


def test_stats_dock_table_jump_live_and_export(make_napari_viewer, qtbot, study_root, tmp_path):
    viewer = make_napari_viewer()
    sub = StudyFiles.at(study_root).subject("01")
    load_subject_into_viewer(viewer, sub)
    widget = StatsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Statistics")
    assert widget.path_edit.text() == str(study_root)  # study taken from the loaded subject

    worker = widget.compute()
    qtbot.waitUntil(lambda: not widget.lesions.empty and not widget._workers, timeout=30000)
    assert worker is not None
    qtbot.waitUntil(lambda: widget.live_subject == "01", timeout=20000)  # live refresh after compute
    n_rows = len(widget.lesions)
    assert widget.table.rowCount() == n_rows == 5 + 1 + 3  # (1 cortical + 3 wm + 1 mixed x 2 parts) + 3
    assert len(widget.figure.axes) == 2
    assert "WM: n=5" in widget.summary_label.text()

    # click a WM lesion of the loaded subject: slider on its central slice, camera on its centre
    rows = widget.lesions
    r = int(np.flatnonzero((rows["subject"] == "01") & (rows["class"] == "wm"))[0])
    lid = int(rows.iloc[r]["lesion_id"])
    widget.table.cellClicked.emit(r, 0)
    lesions = find_layer(viewer, "lesions")
    coords = np.argwhere(np.asarray(lesions.data) == lid)
    axis = 2
    central = lesion_central_slice(np.asarray(lesions.data) == lid, axis)  # roi.rules (issue 11)
    world = np.asarray(
        lesions.data_to_world(np.r_[coords[coords[:, axis] == central].mean(axis=0)[:2], central])
    )
    step_world = viewer.dims.point[axis]
    assert step_world == pytest.approx(world[axis], abs=lesions.scale[axis] / 2)
    assert lesions.selected_label == lid
    camera = getattr(getattr(viewer, "scene", None), "camera", None) or viewer.camera
    displayed = list(viewer.dims.displayed)
    np.testing.assert_allclose(np.asarray(camera.center)[-2:], world[displayed], atol=lesions.scale[0])
    # a lesion of another subject cannot be shown until that subject is loaded
    r2 = int(np.flatnonzero(rows["subject"] == "02")[0])
    widget.table.cellClicked.emit(r2, 0)
    assert "sub-02" in widget.status_label.text()

    # edit the lesion layer (undoable API): the row updates from the layers
    before = float(rows.iloc[r]["relative_ppm"])
    chi = np.asarray(find_layer(viewer, "qsm").data, dtype=np.float64)
    refwm = np.asarray(find_layer(viewer, "refwm").data)
    mask = np.asarray(find_layer(viewer, "mask").data) > 0
    drop = coords[: len(coords) // 2]
    lesions.data_setitem(tuple(drop.T), 0)
    widget._debounce.setInterval(10)
    qtbot.waitUntil(lambda: _value(widget, lid) != before, timeout=20000)
    keep = (np.asarray(lesions.data) == lid) & mask
    expected = chi[keep].mean() - chi[(refwm == lid) & mask].mean()
    assert _value(widget, lid) == pytest.approx(expected, abs=1e-6)
    assert (
        "from_layers"
        in widget.lesions.loc[
            (widget.lesions["subject"] == "01") & (widget.lesions["lesion_id"] == lid), "flags"
        ].item()
    )
    assert widget.table.rowCount() == n_rows

    # the table shown (with the live values) and Figure 2 can be saved
    table_path = widget.save_table(tmp_path / "shown.tsv")
    shown = pd.read_csv(table_path, sep="\t", dtype={"subject": str})
    assert len(shown) == n_rows and shown["flags"].fillna("").str.contains("from_layers").any()
    fig_paths = widget.save_figure(tmp_path / "fig2.png")
    assert fig_paths["png"].stat().st_size > 10000 and fig_paths["svg"].is_file()

    # export: run_study_stats in a worker writes the report
    out = tmp_path / "stats"
    worker = widget.export(study_root, out, start=False)
    with qtbot.waitSignal(worker.finished, timeout=60000):
        worker.start()
    qtbot.waitUntil(lambda: "report written" in widget.status_label.text(), timeout=5000)
    assert (out / "report.html").is_file() and (out / "summary.tsv").is_file()
    qtbot.waitUntil(lambda: not widget._debounce.isActive() and not widget._workers, timeout=20000)


def _value(widget, lid):
    sel = widget.lesions[(widget.lesions["subject"] == "01") & (widget.lesions["lesion_id"] == lid)]
    return float(sel["relative_ppm"].iloc[0])


def test_stats_dock_from_the_plugin_menu_without_study(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Statistics")
    assert isinstance(widget, StatsWidget)
    assert widget.compute(blocking=True) is None
    assert widget.status_label.text().startswith("error")
    # rows out of the tests are greyed, flagged rows in the tests highlighted
    widget.lesions = pd.DataFrame(
        {
            "subject": ["01", "01", "01"],
            "lesion_id": [1, 2, 3],
            "class": ["wm", "wm", "cortical"],
            "part": "whole",
            "lesion_type": ["wm", "wm", "cortical"],
            "included": [True, False, True],
            "relative_ppm": [0.01, np.nan, -0.02],
            "flags": ["", "no_reference", "outside_qsm_mask:2"],
        }
    )
    widget._show_table()
    assert widget.table.rowCount() == 3
    assert widget.table.item(1, 0).foreground().color().getRgb()[:3] == (140, 140, 140)
    assert widget.table.item(2, 0).background().color().getRgb()[:3] == (255, 170, 60)
    assert widget.table.item(0, 0).background().style() == 0  # no brush
    assert "n=1" in widget.summary_label.text()
