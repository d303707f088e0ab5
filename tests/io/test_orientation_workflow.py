"""Anatomical letters and mm read-out of the viewer (issue 12 item 10), table column widths, Qt-free."""

from __future__ import annotations

from napari_qsm_ms.io.orientation import format_position_mm, screen_edge_letters


def test_axial_radiological_view_letters():
    # dims order (2, 1, 0): canonical y vertical, x horizontal; camera ("up", "left")
    letters = screen_edge_letters((1, 0), ("up", "left"))
    assert letters == {"top_center": "A", "bottom_center": "P", "middle_left": "R", "middle_right": "L"}
    # napari's default camera on the same axes: neurological, anterior down
    assert screen_edge_letters((1, 0), ("down", "right")) == {
        "top_center": "P", "bottom_center": "A", "middle_left": "L", "middle_right": "R"}
    assert screen_edge_letters((2, 1), ("up", "right"))["top_center"] == "S"


def test_position_in_mm_with_directions():
    assert format_position_mm((12.34, -4.0, 20.0)) == "R 12.3  P 4.0  S 20.0 mm"


def test_column_widths_keep_flags_visible():
    from napari_qsm_ms._widgets._tables import MIN_FLAGS_PX, column_widths

    natural = [40, 80, 60, 70, 50, 60, 60, 300]
    fitted = column_widths(natural, 800, 7)
    assert fitted[:7] == natural[:7] and sum(fitted) == 800
    narrow = column_widths(natural, 400, 7)
    assert narrow[7] == MIN_FLAGS_PX and sum(narrow) <= 400 + 8


def test_column_widths_never_narrow_a_column_below_its_floor():
    from napari_qsm_ms._widgets._tables import MIN_FLAGS_PX, column_widths

    natural, floors = [40, 120, 90, 90, 300], [30, 60, 50, 24, 0]
    widths = column_widths(natural, 320, 4, floors=floors)
    assert all(widths[k] >= floors[k] for k in range(4))
    assert widths[4] == MIN_FLAGS_PX and sum(widths) <= 320 + 4
    # Floors that cannot fit are kept (the view scrolls) rather than cut.
    tight = column_widths(natural, 200, 4, floors=floors)
    assert tight[:4] == floors[:4]
