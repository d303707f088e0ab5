"""File > Open and File > Open Sample as the user meets them (issue 12, items 3, 4 and 9).

napari's File > Open calls ``viewer.open(paths, plugin=None)`` (``QtViewer._qt_open``); a
``MultipleReaderError`` there is what pops the "choose a reader" dialog.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.errors import MultipleReaderError, NoAvailableReaderError

from napari_qsm_ms import _sample_data
from napari_qsm_ms._widgets._layers import find_layer
from napari_qsm_ms.errors import QSMMSError
from napari_qsm_ms.io.layout import StudyFiles
from tests.io.test_study import make_study, save

SAMPLE_READY = _sample_data.SAMPLE_STUDY.joinpath("sub-01").is_dir()


def _axial_radiological(viewer) -> bool:
    from napari_qsm_ms._widgets._layers import viewer_camera

    return tuple(viewer.dims.order) == (2, 1, 0) and tuple(viewer_camera(viewer).orientation2d) == ("up", "left")


def _add_native_flair(study: StudyFiles) -> None:
    """A FLAIR on its own, larger grid (not coregistered), as a raw study has it."""
    affine = np.diag([1.2, 1.2, 1.2, 1.0])
    affine[:3, 3] = -30.0
    save(study.subject("01").raw_series("flair"), np.ones((50, 50, 50), np.float32), affine)


def test_file_open_of_a_study_folder_gives_the_study_docks_view(make_napari_viewer, tmp_path):
    """Item 3: axial radiological view, outlines, no native grid stretching the slider."""
    study = make_study(tmp_path / "study")
    _add_native_flair(study)
    viewer = make_napari_viewer()
    viewer.open(str(study.root), plugin="napari-qsm-ms")
    assert _axial_radiological(viewer)
    assert find_layer(viewer, "lesions").contour == 1
    assert find_layer(viewer, "flair") is None  # native grid left out (coregistered copies only)
    magnitude = find_layer(viewer, "magnitude")
    assert viewer.dims.nsteps[2] == magnitude.data.shape[2]  # slider spans the T2* slab only
    assert BATCH_KEY_ABSENT(viewer)


def BATCH_KEY_ABSENT(viewer) -> bool:  # noqa: N802 - reads as a statement
    from napari_qsm_ms._widgets._opening import BATCH_KEY

    return all(BATCH_KEY not in (layer.metadata or {}) for layer in viewer.layers)


def test_file_open_of_a_nifti_file_is_axial_without_a_reader_choice(make_napari_viewer, tmp_path):
    """Item 9: ours is the only working NIfTI reader, so File > Open does not ask."""
    from napari_qsm_ms._widgets._opening import claim_nifti_reader

    study = make_study(tmp_path / "study")
    viewer = make_napari_viewer()
    claim_nifti_reader()  # what activating the plugin does (napari.yaml on_activate)
    viewer.open(str(study.subject("01").lesions), plugin=None)  # File > Open
    layer = viewer.layers[-1]
    assert layer.metadata["role"] == "lesions" and layer.contour == 1
    assert _axial_radiological(viewer)


def test_reader_claims_only_what_it_reads(make_napari_viewer, tmp_path):
    """Item 9: patterns NIfTI only; a .txt never reaches us; a PNG is not offered to us."""
    from napari.plugins import _npe2

    from napari_qsm_ms._reader import get_reader

    assert "napari-qsm-ms" in _npe2.get_readers(str(tmp_path / "a.nii.gz"))
    assert "napari-qsm-ms" in _npe2.get_readers(str(tmp_path / "a.nii"))
    assert "napari-qsm-ms" not in _npe2.get_readers(str(tmp_path / "a.png"))
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    assert "napari-qsm-ms" not in _npe2.get_readers(str(txt))
    assert get_reader(str(txt)) is None
    viewer = make_napari_viewer()
    with pytest.raises(NoAvailableReaderError):
        viewer.open(str(txt), plugin=None)


def test_a_folder_that_is_not_a_study_gets_a_one_line_reason(make_napari_viewer, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    viewer = make_napari_viewer()
    with pytest.raises(QSMMSError) as info:
        viewer.open(str(tmp_path), plugin="napari-qsm-ms")
    text = str(info.value)
    assert f"{tmp_path}: not a NIfTI file, a sub-* folder or a study with sub-* folders" in text


def test_a_corrupt_nifti_gives_our_one_line_message(make_napari_viewer, tmp_path):
    bad = tmp_path / "sub-01_part-mag_T2starw.nii.gz"
    bad.write_bytes(b"not gzip at all")
    viewer = make_napari_viewer()
    with pytest.raises(QSMMSError) as info:
        viewer.open(str(bad), plugin="napari-qsm-ms")
    text = str(info.value)
    assert str(bad) in text and "\n" not in text


def test_claim_respects_the_users_choice(make_napari_viewer):
    from napari.settings import get_settings

    from napari_qsm_ms._widgets._opening import claim_nifti_reader

    settings = get_settings()
    saved = dict(settings.plugins.extension2reader)
    try:
        settings.plugins.extension2reader = {"*.nii.gz": "napari"}
        assert claim_nifti_reader() == ["*.nii"]
        assert settings.plugins.extension2reader["*.nii.gz"] == "napari"
        assert settings.plugins.extension2reader["*.nii"] == "napari-qsm-ms"
    finally:
        settings.plugins.extension2reader = saved


def test_plain_file_open_of_nifti_does_not_ask_after_activation(make_napari_viewer, tmp_path, monkeypatch):
    """The GUI path: ``QtViewer._qt_open`` pops the reader dialog only on MultipleReaderError."""
    from napari._qt import qt_viewer

    from napari_qsm_ms._widgets._opening import claim_nifti_reader

    study = make_study(tmp_path / "study")
    viewer = make_napari_viewer()
    claim_nifti_reader()
    asked = []
    monkeypatch.setattr(qt_viewer, "handle_gui_reading", lambda *a, **k: asked.append(a))
    viewer.window._qt_viewer._qt_open([str(study.subject("01").magnitude)], stack=False)
    assert not asked
    assert viewer.layers[-1].metadata["role"] == "magnitude"
    try:
        viewer.open(str(study.subject("01").phase), plugin=None)
    except MultipleReaderError:  # pragma: no cover - the failure this test guards against
        pytest.fail("File > Open of a .nii.gz asked to choose a reader")


@pytest.mark.skipif(not SAMPLE_READY, reason="sample study not generated")
def test_open_sample_copies_the_study_and_shows_it_axially(make_napari_viewer, tmp_path, monkeypatch):
    """Items 3 and 4: Open Sample never points into the package; axial view, outlines."""
    monkeypatch.setenv(_sample_data.SAMPLE_DIR_ENV, str(tmp_path / "user"))
    shipped = {p: p.stat().st_mtime_ns for p in _sample_data.SAMPLE_STUDY.rglob("*") if p.is_file()}
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-qsm-ms", "subject")
    package = _sample_data.SAMPLE_STUDY.resolve()
    for layer in layers:
        path = layer.metadata["path"].resolve()
        assert package not in path.parents, f"{layer.name} points into the package: {path}"
        assert (tmp_path / "user").resolve() in path.parents
    assert _axial_radiological(viewer)
    lesions = find_layer(viewer, "lesions")
    assert lesions.contour == 1 and lesions.data.max() == 11
    magnitude = find_layer(viewer, "magnitude")
    assert viewer.dims.nsteps[2] == magnitude.data.shape[2]
    # the Lesions dock saves where the layer points: into the copy
    from napari_qsm_ms._widgets._layers import save_layer_to_subject

    written = save_layer_to_subject(lesions)
    assert (tmp_path / "user").resolve() in written.resolve().parents
    assert {p: p.stat().st_mtime_ns for p in _sample_data.SAMPLE_STUDY.rglob("*") if p.is_file()} == shipped
    # a second Open Sample reuses the copy (the user's edits stay)
    assert _sample_data.sample_study_copy() == written.parents[4]


@pytest.mark.skipif(not SAMPLE_READY, reason="sample study not generated")
def test_qsm_ms_view_sample_opens_the_user_copy(make_napari_viewer, tmp_path, monkeypatch):
    """`qsm-ms view --sample` (what `make run` should call): the Study dock gets the copy."""
    import argparse

    import napari

    from napari_qsm_ms._cli import view

    monkeypatch.setenv(_sample_data.SAMPLE_DIR_ENV, str(tmp_path / "user"))
    viewer = make_napari_viewer()
    monkeypatch.setattr(napari, "Viewer", lambda **kw: viewer)
    monkeypatch.setattr(napari, "run", lambda: None)
    assert view.run(argparse.Namespace(paths=[], no_docks=True, sample=True)) == 0
    lesions = find_layer(viewer, "lesions")
    assert (tmp_path / "user").resolve() in lesions.metadata["path"].resolve().parents
    assert _axial_radiological(viewer)


def test_activating_the_plugin_claims_the_nifti_patterns(make_napari_viewer):
    """napari activates a plugin when one of its commands first runs (a dock, a read, a sample)."""
    from napari.settings import get_settings
    from npe2 import PluginManager

    make_napari_viewer()
    settings = get_settings()
    settings.plugins.extension2reader = {}
    pm = PluginManager.instance()
    assert pm.get_manifest("napari-qsm-ms").on_activate.endswith("_opening:on_activate")
    pm.deactivate("napari-qsm-ms")
    pm.activate("napari-qsm-ms")
    assert settings.plugins.extension2reader.get("*.nii.gz") == "napari-qsm-ms"
    assert settings.plugins.extension2reader.get("*.nii") == "napari-qsm-ms"
