"""The fixed colours of ROI outlines, one table for the viewer, the review dock and the report.

* References: NAWM cyan, NAGM green (:data:`REFERENCE_COLORS`).
* Lesions: :data:`LESION_PALETTE`, cycled by lesion id (lesion ``i`` gets colour ``(i - 1) % 8``):
  warm and purple hues only, every one at least 45 degrees of hue away from the reference cyan and
  green, saturated and bright enough to stand out on a grey MR image (no dark green, no grey-blue).
* The blinded rater's candidate: :data:`CANDIDATE_COLOR` (yellow, drawn as a ring outside it).
"""

from __future__ import annotations

import colorsys

#: role -> colour of a reference ROI (hex).
REFERENCE_COLORS: dict[str, str] = {"refwm": "#00e5ff", "refgm": "#39ff14"}

#: Lesion outline colours (RGB 0-1), cycled by lesion id.
LESION_PALETTE: tuple[tuple[float, float, float], ...] = (
    (1.00, 0.15, 0.15),  # red
    (1.00, 0.55, 0.00),  # orange
    (1.00, 0.20, 0.85),  # magenta
    (0.70, 0.45, 1.00),  # violet
    (1.00, 0.50, 0.55),  # salmon pink
    (0.95, 0.35, 0.00),  # rust
    (1.00, 0.45, 0.75),  # rose
    (0.85, 0.25, 1.00),  # purple
)

#: The rater's current candidate (RGBA).
CANDIDATE_COLOR: tuple[float, float, float, float] = (1.0, 0.85, 0.0, 1.0)


def lesion_color(lesion_id: int) -> tuple[float, float, float]:
    """The outline colour of lesion ``lesion_id`` (ids from 1)."""
    return LESION_PALETTE[(int(lesion_id) - 1) % len(LESION_PALETTE)]


def hue_distance_deg(rgb_a, rgb_b) -> float:
    """Distance of two colours' hues on the colour wheel, in degrees (0-180)."""
    ha = colorsys.rgb_to_hsv(*rgb_a[:3])[0] * 360.0
    hb = colorsys.rgb_to_hsv(*rgb_b[:3])[0] * 360.0
    d = abs(ha - hb) % 360.0
    return min(d, 360.0 - d)


def hex_to_rgb(color: str) -> tuple[float, float, float]:
    color = color.lstrip("#")
    return tuple(int(color[k : k + 2], 16) / 255.0 for k in (0, 2, 4))
