"""Fixed outline colours (issue 12 item 11) and stale references (item 8), Qt-free."""

from __future__ import annotations

import colorsys

import numpy as np

from napari_qsm_ms.roi.palette import (
    LESION_PALETTE,
    REFERENCE_COLORS,
    hex_to_rgb,
    hue_distance_deg,
    lesion_color,
)
from napari_qsm_ms.roi.stale import stale_reference_flags


def test_lesion_colours_avoid_the_reference_colours_and_are_visible_on_grey():
    refs = [hex_to_rgb(c) for c in REFERENCE_COLORS.values()]
    for rgb in LESION_PALETTE:
        assert min(hue_distance_deg(rgb, ref) for ref in refs) >= 45, rgb
        _, saturation, value = colorsys.rgb_to_hsv(*rgb)
        assert saturation >= 0.4 and value >= 0.9, rgb
    assert len(set(LESION_PALETTE)) == len(LESION_PALETTE) == 8
    assert lesion_color(1) == LESION_PALETTE[0] and lesion_color(9) == LESION_PALETTE[0]


def test_references_built_for_another_class_are_flagged():
    refwm = np.zeros((8, 8, 2), int)
    refgm = np.zeros((8, 8, 2), int)
    refwm[0, 0, 0] = 12  # lesion 12 built as WM
    refwm[1, 1, 0] = 3
    refgm[1, 2, 0] = 3  # lesion 3 built as mixed
    consensus = {12: "mixed", 3: "mixed", 5: "wm"}
    flags = stale_reference_flags(consensus, {12: "wm", 3: "mixed", 5: "wm"}, refwm, refgm)
    assert flags == {12: "reference_stale_built_for_wm_now_mixed"}  # 5 has no reference yet: not stale
    rejected = stale_reference_flags({3: "rejected"}, {3: "mixed"}, refwm, refgm)
    assert rejected == {3: "reference_stale_built_for_mixed_now_none"}
