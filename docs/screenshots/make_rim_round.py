"""Screenshots of the rim and vein round (docs/markers.md) and of its consensus (docs/rating.md).

Run under Xvfb from the repository root::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_rim_round.py

Writes ``rim_round.png`` (a rater signed in to the round on a simulated subject with paramagnetic
rims and central veins: QSM, T2* magnitude and FLAIR* in three linked planes) and
``consensus_rim.png`` (the "Consensus and agreement" dock on round 2 after three raters). The
three raters' answers of the second picture are written with ``rating.markers.record_marker_vote``
(what the dock calls for each key press), from the simulated truth with a few disagreements.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from napari_qsm_ms.io.layout import StudyFiles  # noqa: E402
from napari_qsm_ms.io.nifti import save_volume  # noqa: E402
from napari_qsm_ms.rating.markers import record_marker_vote  # noqa: E402
from napari_qsm_ms.simulate.forward import gre_signal  # noqa: E402
from napari_qsm_ms.simulate.markers import MarkerSpec, add_markers  # noqa: E402
from napari_qsm_ms.simulate.phantom import make_phantom  # noqa: E402

CHI_NOISE_PPM = 0.0037  # white-matter noise SD of the end-to-end QSM of the 1 mm phantom (benchmarks)
SIZE = (1600, 1000)


def simulated_subject():
    """A 0.5 x 0.5 x 1 mm phantom with rims and central veins, written as a study subject."""
    ph = make_phantom((256, 288, 80), (0.5, 0.5, 1.0), seed=4, n_lesions=(8, 1, 1))
    ph = add_markers(ph, MarkerSpec(prl_fraction=0.6, cvs_fraction=0.6, eccentric_fraction=0.2), seed=4)
    sig = gre_signal(ph, seed=4)
    rng = np.random.default_rng(4)
    chi = (ph.chi_ppm + rng.normal(0, CHI_NOISE_PPM, ph.shape).astype(np.float32)) * ph.brain_mask
    root = Path(tempfile.mkdtemp(prefix="rim-round-shots-")) / "study"
    (root / "sub-01" / "anat").mkdir(parents=True)
    sub = StudyFiles.at(root).subject("01")
    files = ((sub.magnitude, sig.magnitude), (sub.chimap, chi), (sub.tissue, ph.tissue),
             (sub.lesions, ph.lesion_ids), (sub.brain_mask, ph.brain_mask),
             (sub.coreg_series("flair"), ph.flair))
    for path, data in files:
        save_volume(path, np.asarray(data), ph.affine)
    return sub, ph


def _settle(viewer, rounds: int = 5) -> None:
    """Let Qt draw, and close napari's notification toasts (they would cover the canvas)."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification
    from qtpy.QtWidgets import QApplication

    for _ in range(rounds):
        QApplication.processEvents()
    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()
    QApplication.processEvents()


def round_screenshot(sub, ph, path: Path) -> None:
    import napari

    from napari_qsm_ms._widgets._layers import load_subject_into_viewer

    viewer = napari.Viewer(title="napari-qsm-ms: rim and vein round")
    viewer.window.resize(*SIZE)
    load_subject_into_viewer(viewer, sub)
    _, dock = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Rim and vein round (blinded)")
    dock.sign_in("ann", blocking=True)  # as typing "ann" and clicking Sign in
    t = ph.lesion_table.set_index("lesion_id")
    both = t["prl"] & (t["vein"] == "central")
    target = int(t.index[both][0]) if both.any() else int(t.index[t["prl"]][0])
    dock.go(dock.session.order.index(target))
    dock.answer(prl="yes")  # the first answer; CVS still to come
    _settle(viewer)
    viewer.screenshot(str(path), canvas_only=False)
    dock.sign_out()
    viewer.close()


def consensus_screenshot(sub, ph, path: Path) -> None:
    import napari

    from napari_qsm_ms._widgets._layers import load_subject_into_viewer

    rng = np.random.default_rng(7)
    truth = ph.lesion_table.set_index("lesion_id")
    for rater in ("ann", "ben", "cat"):
        for lid, rec in truth.iterrows():
            prl = "yes" if rec["prl"] else "no"
            cvs = "present" if rec["vein"] == "central" else "absent"
            if rng.random() < 0.2:
                prl = str(rng.choice(["yes", "no", "uncertain"]))
            if rng.random() < 0.2:
                cvs = str(rng.choice(["present", "absent", "excluded"]))
            record_marker_vote(sub, rater, int(lid), prl=prl, cvs=cvs,
                               cvs_exclusion="small" if cvs == "excluded" else "")
    viewer = napari.Viewer(title="napari-qsm-ms: consensus of the rim and vein round")
    viewer.window.resize(*SIZE)
    load_subject_into_viewer(viewer, sub)
    dock_widget, dock = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Consensus and agreement")
    dock_widget.setMinimumWidth(760)
    dock.round_combo.setCurrentIndex(dock.round_combo.findData("rim"))
    dock.run_consensus()
    dock.lesion_table.selectRow(0)  # centres the viewer on that lesion
    _settle(viewer)
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()


def main() -> None:
    sub, ph = simulated_subject()
    round_screenshot(sub, ph, HERE / "rim_round.png")
    consensus_screenshot(sub, ph, HERE / "consensus_rim.png")
    print("written", HERE / "rim_round.png", HERE / "consensus_rim.png")


if __name__ == "__main__":
    main()
