"""Anatomical directions of a 2-D view of canonical (RAS+) volumes (pure: no napari, no Qt).

Every layer this plugin shows is in the closest RAS+ orientation
(:func:`~napari_qsm_ms.io.nifti.to_canonical`):
index axis 0 increases towards the patient's Right, axis 1 Anterior, axis 2 Superior.
"""

from __future__ import annotations

#: canonical axis -> (letter at the end where the index increases, letter at the other end)
AXIS_ENDS: tuple[tuple[str, str], ...] = (("R", "L"), ("A", "P"), ("S", "I"))
#: names of the canonical axes (slider labels), from the low to the high end of the index
AXIS_LABELS: tuple[str, ...] = ("L→R (mm)", "P→A (mm)", "I→S (mm)")
#: what a slider over each canonical axis moves through
SLICE_NAMES: tuple[str, ...] = ("sagittal slice", "coronal slice", "axial slice")


def screen_edge_letters(displayed: tuple[int, int], orientation2d: tuple[str, str]) -> dict[str, str]:
    """The anatomical letter at each edge of a 2-D view.

    ``displayed`` are the canonical axes shown (vertical, horizontal) and ``orientation2d`` the
    camera's (vertical 'up'/'down', horizontal 'left'/'right'): where increasing indices point.
    Returns ``{'top_center': ..., 'bottom_center': ..., 'middle_left': ..., 'middle_right': ...}``.
    """
    v_pos, v_neg = AXIS_ENDS[displayed[0]]
    h_pos, h_neg = AXIS_ENDS[displayed[1]]
    top, bottom = (v_pos, v_neg) if orientation2d[0] == "up" else (v_neg, v_pos)
    left, right = (h_pos, h_neg) if orientation2d[1] == "left" else (h_neg, h_pos)
    return {"top_center": top, "bottom_center": bottom, "middle_left": left, "middle_right": right}


def format_position_mm(world_xyz) -> str:
    """A scanner (RAS+) position as a radiologist reads it: ``"R 12.3  A 4.0  S 20.0 mm"``."""
    parts = []
    for (pos, neg), value in zip(AXIS_ENDS, world_xyz):
        parts.append(f"{pos if value >= 0 else neg} {abs(float(value)):.1f}")
    return "  ".join(parts) + " mm"
