"""AnnotationState JSON round trip, unknown keys, atomic writes, bad files."""

from __future__ import annotations

import json
import os

import pytest

from napari_qsm_ms.errors import InputFileError
from napari_qsm_ms.roi.annotation import AnnotationState


def test_round_trip_and_unknown_keys_are_kept(tmp_path):
    path = tmp_path / "sub-01_desc-annotation.json"
    state = AnnotationState()
    state.exclude(4, "eroded by QSM mask")
    state.add_flag(4, "small")
    state.add_flag(4, "small")
    state.lesion(7).note = "check on FLAIR"
    state.parameters = {"gap_mm": 1.0}
    state.save(path)
    raw = json.loads(path.read_text())
    raw["written_by"] = "a newer version"
    raw["lesions"]["4"]["confidence"] = 0.8
    path.write_text(json.dumps(raw))
    back = AnnotationState.load(path)
    assert back.lesion(4).excluded and back.lesion(4).exclusion_reason == "eroded by QSM mask"
    assert back.lesion(4).flags == ["small"]
    assert back.lesion(7).note == "check on FLAIR"
    assert back.parameters == {"gap_mm": 1.0}
    assert back.excluded_ids() == [4]
    back.include(4)
    back.save(path)
    again = json.loads(path.read_text())
    assert again["written_by"] == "a newer version"
    assert again["lesions"]["4"]["confidence"] == 0.8
    assert again["lesions"]["4"]["excluded"] is False


def test_missing_file_is_an_empty_state(tmp_path):
    state = AnnotationState.load(tmp_path / "none.json")
    assert state.lesions == {} and state.parameters == {}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"lesions": {"x": {}}}', '{"lesions": []}'])
def test_bad_files_raise_one_line_errors(tmp_path, text):
    path = tmp_path / "a.json"
    path.write_text(text)
    with pytest.raises(InputFileError, match="a.json: not a valid annotation file") as info:
        AnnotationState.load(path)
    assert "\n" not in str(info.value)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    AnnotationState(parameters={"gap_mm": 1.0}).save(path)
    before = path.read_text()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    state = AnnotationState.load(path)
    state.exclude(1, "artefact")
    with pytest.raises(OSError):
        state.save(path)
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temporary left behind


def test_reference_flags_are_replaced_on_rebuild():
    state = AnnotationState()
    state.add_flag(1, "small")
    state.set_reference_flags({1: ["refwm_too_small"], 2: ["refgm_empty"]}, {"gap_mm": 1.0})
    assert state.lesion(1).flags == ["small", "refwm_too_small"]
    state.set_reference_flags({2: ["refwm_too_small"]}, {"gap_mm": 0.5})
    assert state.lesion(1).flags == ["small"]
    assert state.lesion(2).flags == ["refwm_too_small"]
    assert state.parameters == {"gap_mm": 0.5}
    state.renumber({2: 1})
    assert list(state.lesions) == [1] and state.lesion(1).flags == ["refwm_too_small"]
