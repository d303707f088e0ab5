"""The Review dock's rim and vein overlay (issue 14, Build 4): for the current lesion the rim band
coloured by paramagnetic sector and the vein voxels as napari layers the user can toggle, the
radial profile, and the rim score, coverage, vein score and CVS suggestion equal to what
``qsm-ms stats`` exports; the overlay follows the lesion when the user steps on."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt

from napari_qsm_ms._widgets._layers import find_layer
from napari_qsm_ms._widgets._review_markers import RIM_LAYER, VEIN_LAYER
from napari_qsm_ms.roi.marker_overlay import SECTOR_PARAMAGNETIC, SECTOR_QUIET
from napari_qsm_ms.stats.markers import MARKER_LESION_COLUMNS

from ._markers_study import exported_lesions, marker_subject, same_value
from ._user_path import add_dock


def _settled(section) -> bool:
    return section._worker is None and not section._timer.isActive() and section.view is not None


def _wait_for(section, lesion_id, qtbot) -> None:
    qtbot.waitUntil(lambda: _settled(section) and section.view.lesion_id == lesion_id, timeout=60000)


def _near(layer_mask: np.ndarray, lesion_mask: np.ndarray, margin: int) -> bool:
    """All voxels of ``layer_mask`` lie within ``margin`` voxels of the lesion's bounding box."""
    lo = np.argwhere(lesion_mask).min(axis=0) - margin
    hi = np.argwhere(lesion_mask).max(axis=0) + margin
    pts = np.argwhere(layer_mask)
    return bool(len(pts)) and bool(((pts >= lo) & (pts <= hi)).all())


def test_review_overlay_follows_the_lesion_with_the_exported_numbers(make_napari_viewer, tmp_path_factory,
                                                                     tmp_path, qtbot):
    subject = marker_subject(tmp_path_factory, tmp_path)
    exported = exported_lesions(subject)
    viewer = make_napari_viewer(show=True)
    viewer.open(str(subject.study / subject.sub), plugin="napari-qsm-ms")
    _, review = add_dock(viewer, "Review lesions")
    section = review.markers
    lesions = find_layer(viewer, "lesions")
    _wait_for(section, review.lesion_ids()[0], qtbot)
    seen_para = False
    steps = 3  # the first lesions (PRL and CVS among them); all lesions: tests/stats/test_marker_view.py
    for step in range(steps):
        lid = review.current_id
        view = section.view
        row = exported.loc[lid]
        # ONE answer: the numbers shown are the exported ones (same function, same arguments)
        for col in MARKER_LESION_COLUMNS:
            got, want = view.values[col], row[col]
            assert same_value(got, want), (lid, col, got, want)
        text = section.text.text()
        assert f"Lesion {lid}" in text and f"vein score {row.vein_score:.2f}" in text
        if np.isfinite(row.rim_score_ppm):
            assert f"rim score {row.rim_score_ppm:.3f} ppm" in text
            assert f"rim coverage {100 * row.rim_coverage:.0f} %" in text
            assert f"<b>PRL {'yes' if row.prl else 'no'}</b>" in text  # as qsm-ms stats counts it
        # the layers show this lesion's rim band and vein, nowhere else
        rim = viewer.layers[RIM_LAYER]
        mask = np.asarray(lesions.data) == lid
        assert _near(np.asarray(rim.data) > 0, mask, 4)
        assert set(np.unique(rim.data)) <= {0, SECTOR_QUIET, SECTOR_PARAMAGNETIC}
        if row.rim_coverage > 0:
            assert (np.asarray(rim.data) == SECTOR_PARAMAGNETIC).any()
            seen_para = True
        pts = np.round(viewer.layers[VEIN_LAYER].data).astype(int)
        assert all(mask[tuple(p)] for p in pts)  # vein voxels lie in the lesion (its centre)
        if row.cvs_suggested:
            assert len(pts) > 0
        # the radial profile is drawn
        assert section.figure.axes and section.figure.axes[0].lines
        review.setFocus()
        qtbot.keyClick(review, Qt.Key_N)  # the next lesion, as the user presses it
        _wait_for(section, review.lesion_ids()[step + 1], qtbot)
    assert seen_para
    # the user can hide the overlay (napari's eye) or take it out of the viewer (the check box)
    viewer.layers[RIM_LAYER].visible = False
    section.layers_check.setChecked(False)
    assert RIM_LAYER not in viewer.layers and VEIN_LAYER not in viewer.layers
    section.layers_check.setChecked(True)
    assert RIM_LAYER in viewer.layers and VEIN_LAYER in viewer.layers
    assert viewer.layers.selection.active is not viewer.layers[RIM_LAYER]  # drawing layer kept
    # without a QSM map the section says what to run, and the vein is still measured
    viewer.layers.remove(find_layer(viewer, "qsm"))
    qtbot.waitUntil(lambda: _settled(section) and "rim: —" in section.text.text(), timeout=30000)
    assert "Reconstruct" in section.text.text() and "vein score" in section.text.text()
    assert not np.asarray(viewer.layers[RIM_LAYER].data).any()
