"""Nothing is lost: autosave, crash recovery (a real SIGKILL), save and reopen."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import nibabel as nib
import numpy as np
import pytest

from napari_qsm_ms._widgets._autosave import (
    clear_autosave,
    pending_recovery,
    read_autosave,
    recovered_arrays,
    write_autosave,
)
from napari_qsm_ms._widgets._layers import find_layer, load_subject_into_viewer
from napari_qsm_ms._widgets.annotation import AnnotationWidget
from napari_qsm_ms.io.nifti import to_canonical
from napari_qsm_ms.roi.annotation import AnnotationState

from .test_annotation_support import AFFINE, SHAPE, ball_indices, make_subject


def open_dock(viewer, subject, recovery="always"):
    load_subject_into_viewer(viewer, subject)
    widget = AnnotationWidget(viewer, recovery=recovery, autosave_delay_ms=100)
    viewer.window.add_dock_widget(widget, name="Lesions and references")
    return widget


# ------------------------------------------------------------------------------ pure functions
def test_write_read_clear_autosave_roundtrip(tmp_path):
    sub = make_subject(tmp_path, with_tissue=False)
    data = np.zeros(SHAPE, np.int32)
    data[3:6, 4:7, 2:4] = 9
    state = AnnotationState()
    state.exclude(9, "artefact")
    snap = write_autosave(sub.autosave_dir, {"lesions": (data, AFFINE)}, state, subject_label="01")
    back = read_autosave(sub.autosave_dir)
    assert back is not None and set(back.files) == {"lesions"} and back.annotation is not None
    assert back.time == pytest.approx(snap.time)
    img = nib.load(str(back.files["lesions"]))
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)  # source orientation, as saved files
    np.testing.assert_allclose(img.affine, AFFINE)
    canon, view = recovered_arrays(back)["lesions"]
    np.testing.assert_array_equal(canon, to_canonical(data, AFFINE)[0])
    assert AnnotationState.load(back.annotation).lesion(9).excluded
    # a later snapshot of another layer keeps the lesions entry
    write_autosave(sub.autosave_dir, {"refwm": (data * 0, AFFINE)}, None)
    assert set(read_autosave(sub.autosave_dir).files) == {"lesions", "refwm"}
    manifest = json.loads((sub.autosave_dir / "manifest.json").read_text())
    assert manifest["version"] == 1 and manifest["subject"] == "01"
    clear_autosave(sub)
    assert read_autosave(sub.autosave_dir) is None and not sub.autosave_dir.exists()


def test_pending_only_when_newer_than_saved_files(tmp_path):
    sub = make_subject(tmp_path)
    assert pending_recovery(sub) is None
    data = np.ones(SHAPE, np.int32)
    write_autosave(sub.autosave_dir, {"lesions": (data, AFFINE)}, None)
    assert pending_recovery(sub) is not None
    time.sleep(0.05)
    nib.save(nib.Nifti1Image(data, AFFINE), str(sub.lesions))  # saved after the autosave
    assert pending_recovery(sub) is None


def test_unreadable_manifest_is_ignored(tmp_path):
    sub = make_subject(tmp_path)
    sub.autosave_dir.mkdir(parents=True)
    (sub.autosave_dir / "manifest.json").write_text("{not json")
    assert read_autosave(sub.autosave_dir) is None
    assert pending_recovery(sub) is None


# ------------------------------------------------------------------------------ GUI
def test_autosave_is_debounced_and_only_writes_changed_layers(make_napari_viewer, qtbot, tmp_path):
    sub = make_subject(tmp_path)
    viewer = make_napari_viewer()
    widget = open_dock(viewer, sub)
    lesions = find_layer(viewer, "lesions")
    assert read_autosave(sub.autosave_dir) is None  # nothing changed yet
    lesions.data_setitem(ball_indices((20, 18, 5), 2, lesions.data.shape), 1)
    assert widget.autosaver.is_scheduled  # a write is pending, not done at once
    qtbot.waitUntil(lambda: read_autosave(sub.autosave_dir) is not None, timeout=5000)
    widget.autosaver.wait()
    assert set(read_autosave(sub.autosave_dir).files) == {"lesions"}  # tissue unchanged: not rewritten
    widget.shutdown()


def test_drop_widget_without_saving_then_recover(make_napari_viewer, qtbot, tmp_path):
    sub = make_subject(tmp_path)
    viewer = make_napari_viewer()
    widget = open_dock(viewer, sub)
    lesions = find_layer(viewer, "lesions")
    lesions.data_setitem(ball_indices((20, 18, 5), 2.5, lesions.data.shape), 3)
    tissue = find_layer(viewer, "tissue")
    tissue.data_setitem(ball_indices((8, 8, 8), 1, tissue.data.shape), 4)  # a deep-GM edit
    widget.refresh_table()
    widget.exclude_lesions([3], "artefact")
    drawn_lesions = np.array(lesions.data, copy=True)
    drawn_tissue = np.array(tissue.data, copy=True)
    qtbot.waitUntil(lambda: (s := read_autosave(sub.autosave_dir)) is not None and {"lesions", "tissue"} <= set(s.files)
                    and s.annotation is not None, timeout=5000)
    widget.autosaver.wait()
    widget.shutdown()  # the user closes without saving
    assert not sub.lesions.exists()

    viewer2 = make_napari_viewer()
    widget2 = open_dock(viewer2, sub, recovery="always")
    assert widget2.last_recovery is not None
    np.testing.assert_array_equal(find_layer(viewer2, "lesions").data, drawn_lesions)
    np.testing.assert_array_equal(find_layer(viewer2, "tissue").data, drawn_tissue)
    assert widget2.state.lesion(3).excluded
    assert widget2.table.row_texts()[0][0] == "3"
    assert widget2.table.row_texts()[0][7].startswith("excluded (artefact")
    widget2.shutdown()


def test_recovery_never_keeps_saved_files(make_napari_viewer, qtbot, tmp_path):
    sub = make_subject(tmp_path)
    write_autosave(sub.autosave_dir, {"lesions": (np.full(SHAPE, 2, np.int32), AFFINE)}, None)
    viewer = make_napari_viewer()
    widget = open_dock(viewer, sub, recovery="never")
    assert widget.last_recovery is None
    assert not find_layer(viewer, "lesions").data.any()
    widget.shutdown()


CRASH_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    import napari
    from qtpy.QtWidgets import QApplication
    from napari_qsm_ms._widgets._layers import find_layer, load_subject_into_viewer
    from napari_qsm_ms._widgets.annotation import AnnotationWidget
    from napari_qsm_ms.io.layout import SubjectFiles

    sub = SubjectFiles(Path(sys.argv[1]), "01")
    viewer = napari.Viewer(show=False)
    load_subject_into_viewer(viewer, sub)
    widget = AnnotationWidget(viewer, recovery="never", autosave_delay_ms=100)
    lesions = find_layer(viewer, "lesions")
    idx = tuple(np.asarray(a) for a in np.load(sys.argv[2]))
    lesions.data_setitem(idx, 5)
    widget.refresh_table()
    widget.exclude_lesions([5], "eroded by QSM mask")
    app = QApplication.instance()
    deadline = time.time() + 60
    while time.time() < deadline:
        app.processEvents()
        snap = widget.autosaver.last_snapshot
        if snap is not None and "lesions" in snap.files and snap.annotation is not None:
            break
        time.sleep(0.02)
    print("AUTOSAVED", flush=True)
    while True:  # keep drawing... until killed
        app.processEvents()
        time.sleep(0.05)
    """
)


def test_sigkill_after_autosave_loses_nothing(make_napari_viewer, qtbot, tmp_path):
    sub = make_subject(tmp_path)
    shape = to_canonical(np.zeros(SHAPE), AFFINE)[0].shape
    idx = ball_indices((20, 18, 5), 2.5, shape)
    np.save(tmp_path / "idx.npy", np.stack(idx))
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), str(tmp_path / "idx.npy")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    try:
        line = ""
        deadline = time.time() + 120
        while time.time() < deadline and "AUTOSAVED" not in line:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        assert "AUTOSAVED" in line, proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert not sub.lesions.exists()  # never saved: only the autosave holds the drawing

    viewer = make_napari_viewer()
    widget = open_dock(viewer, sub, recovery="always")
    lesions = find_layer(viewer, "lesions")
    expected = np.zeros(shape, np.int32)
    expected[idx] = 5
    np.testing.assert_array_equal(lesions.data, expected)
    assert widget.state.lesion(5).exclusion_reason == "eroded by QSM mask"
    assert [r[0] for r in widget.table.row_texts()] == ["5"]
    # saving makes the recovered work permanent and clears the autosave
    widget.save()
    assert pending_recovery(sub) is None
    widget.shutdown()


def test_save_and_reopen_restores_everything(make_napari_viewer, qtbot, tmp_path):
    sub = make_subject(tmp_path)
    viewer = make_napari_viewer()
    widget = open_dock(viewer, sub)
    lesions = find_layer(viewer, "lesions")
    lesions.data_setitem(ball_indices((20, 18, 5), 2.5, lesions.data.shape), 1)
    lesions.data_setitem(ball_indices((34, 18, 6), 1.2, lesions.data.shape), 2)
    tissue = find_layer(viewer, "tissue")
    tissue.data_setitem(ball_indices((8, 8, 8), 1, tissue.data.shape), 4)
    widget.refresh_table()
    widget.minvox_spin.setValue(5000)  # every reference "too small": flags to restore
    worker = widget.build_references(start=False)
    with qtbot.waitSignal(worker.finished, timeout=20000):
        worker.start()
    widget.exclude_lesions([2], "vessel")
    before = {role: np.array(find_layer(viewer, role).data, copy=True) for role in ("lesions", "tissue", "refwm", "refgm")}
    rows_before = widget.table.row_texts()
    widget.save()
    for path in (sub.lesions, sub.tissue, sub.refwm, sub.refgm, sub.annotation_json):
        assert path.exists()
    widget.shutdown()

    viewer2 = make_napari_viewer()
    widget2 = open_dock(viewer2, sub, recovery="always")
    assert widget2.last_recovery is None
    for role, data in before.items():
        np.testing.assert_array_equal(find_layer(viewer2, role).data, data, err_msg=role)
    assert widget2.state.lesion(2).excluded
    assert widget2.state.parameters["min_voxels"] == 5000
    assert widget2.table.row_texts() == rows_before
    assert "refwm_too_small" in rows_before[0][7]
    widget2.shutdown()


@pytest.mark.parametrize("answer", ["yes", "no"])
def test_recovery_dialog(make_napari_viewer, qtbot, tmp_path, monkeypatch, answer):
    from qtpy.QtWidgets import QMessageBox

    sub = make_subject(tmp_path)
    drawn = np.zeros(SHAPE, np.int32)
    drawn[18:22, 16:20, 5] = 6
    write_autosave(sub.autosave_dir, {"lesions": (drawn, AFFINE)}, None)
    asked = []

    def fake_question(parent, title, text, *args, **kwargs):  # the user's click
        asked.append(text)
        return QMessageBox.StandardButton.Yes if answer == "yes" else QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", fake_question)
    viewer = make_napari_viewer()
    widget = open_dock(viewer, sub, recovery="ask")
    assert len(asked) == 1 and "unsaved annotations autosaved at" in asked[0]
    lesions = find_layer(viewer, "lesions")
    if answer == "yes":
        np.testing.assert_array_equal(lesions.data, to_canonical(drawn, AFFINE)[0])
    else:
        assert not lesions.data.any()
        assert read_autosave(sub.autosave_dir) is None  # declined: discarded
    widget.shutdown()


def test_loading_another_subject_autosaves_pending_edits_first(make_napari_viewer, qtbot, tmp_path):
    sub1 = make_subject(tmp_path)
    sub2 = make_subject(tmp_path, label="02")
    viewer = make_napari_viewer()
    widget = AnnotationWidget(viewer, recovery="never", autosave_delay_ms=60000)  # timer would not fire
    viewer.window.add_dock_widget(widget, name="Lesions and references")
    load_subject_into_viewer(viewer, sub1)
    qtbot.waitUntil(lambda: widget.subject == sub1, timeout=3000)
    assert len([lay for lay in viewer.layers if lay.metadata.get("role") == "lesions"]) == 1
    lesions = find_layer(viewer, "lesions")
    lesions.data_setitem(ball_indices((20, 18, 5), 2, lesions.data.shape), 1)
    expected = np.array(lesions.data, copy=True)
    load_subject_into_viewer(viewer, sub2)  # replaces sub-01's layers within the debounce delay
    qtbot.waitUntil(lambda: widget.subject == sub2, timeout=3000)
    snap = pending_recovery(sub1)
    assert snap is not None and set(snap.files) == {"lesions"}  # unchanged layers not rewritten
    np.testing.assert_array_equal(recovered_arrays(snap)["lesions"][0], expected)
    assert pending_recovery(sub2) is None
    widget.shutdown()
