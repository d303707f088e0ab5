"""Figure and screenshot of the rim and vein markers (docs/markers.md).

Run under Xvfb from the repository root::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_markers.py

Writes ``markers_rim_profiles.png`` (rim profiles of PRL vs non-PRL lesions, from
:func:`napari_qsm_ms.stats.markers.rim_profile_figure`) and ``markers_prl_lesion.png`` (a
simulated PRL with a central vein: susceptibility with the lesion outline, T2* magnitude beside it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from napari_qsm_ms.roi.rim import rim_metrics, rim_profiles  # noqa: E402
from napari_qsm_ms.roi.vessels import vessel_candidates  # noqa: E402
from napari_qsm_ms.simulate.forward import gre_signal  # noqa: E402
from napari_qsm_ms.simulate.markers import MarkerSpec, add_markers  # noqa: E402
from napari_qsm_ms.simulate.phantom import make_phantom  # noqa: E402
from napari_qsm_ms.stats.markers import rim_profile_figure  # noqa: E402

CHI_NOISE_PPM = 0.0037  # white matter noise SD of the end-to-end QSM of this phantom (benchmark)


def cohort(seeds=(0, 1)):
    parts, prl, subjects = [], [], []
    for seed in seeds:
        ph = make_phantom((160, 192, 96), (1.0, 1.0, 1.0), seed=seed, n_lesions=(14, 3, 3))
        spec = MarkerSpec(prl_fraction=0.4, cvs_fraction=0.4, eccentric_fraction=0.2)
        ph = add_markers(ph, spec, seed=1000 + seed)
        rng = np.random.default_rng(3000 + seed)
        chi = (ph.chi_ppm + rng.normal(0, CHI_NOISE_PPM, ph.shape).astype(np.float32)) * ph.brain_mask
        wm = ph.tissue == 3
        keep = ph.lesion_table["class"].isin(["wm", "mixed"]).to_numpy()
        ids = ph.lesion_table["lesion_id"].to_numpy()[keep]
        labels = np.where(np.isin(ph.lesion_ids, ids), ph.lesion_ids, 0)
        ves = vessel_candidates(chi, ph.tissue, ph.voxel_size_mm)
        prof = rim_profiles(chi, labels, ph.voxel_size_mm, valid=wm, vessels=ves,
                            bins_mm=np.arange(-3.0, 4.01, 0.5))
        parts.append(prof.assign(subject=f"{seed:02d}"))
        prl += [(f"{seed:02d}", int(i)) for i in ph.lesion_table.loc[ph.lesion_table["prl"], "lesion_id"]]
        subjects.append((ph, chi))
    import pandas as pd

    return pd.concat(parts, ignore_index=True), prl, subjects


def screenshot(ph, chi, path: Path) -> None:
    """Axial crop around a PRL: QSM | T2* magnitude, lesion outline on both (2-D layers)."""
    import napari

    t = ph.lesion_table
    pick = t[t["prl"] & (t["vein"] == "none")]
    pick = pick if len(pick) else t[t["prl"]]
    row = pick.sort_values("rim_coverage").iloc[-1]
    lid = int(row["lesion_id"])
    les3 = ph.lesion_ids == lid
    z = int(np.argmax(les3.sum(axis=(0, 1))))
    cx, cy = (int(np.mean(a)) for a in np.nonzero(les3[:, :, z]))
    box = (slice(cx - 14, cx + 15), slice(cy - 14, cy + 15), z)
    sig = gre_signal(ph, seed=5)
    viewer = napari.Viewer(title="napari-qsm-ms: a simulated PRL")
    viewer.window.resize(1400, 800)
    les = les3[box].astype(np.uint8)
    viewer.add_image(chi[box], name="QSM (ppm)", colormap="gray", contrast_limits=(-0.06, 0.06))
    mag = sig.magnitude[box]
    viewer.add_image(mag, name="T2* magnitude", colormap="gray", translate=(0, 31),
                     contrast_limits=(float(np.percentile(mag, 1)), float(np.percentile(mag, 99))))
    for tr in ((0, 0), (0, 31)):
        lab = viewer.add_labels(les, name="lesion outline", translate=tr, opacity=0.45)
        lab.contour = 1
    viewer.reset_view()
    m = rim_metrics(chi, ph.lesion_ids, ph.voxel_size_mm, valid=ph.tissue == 3)
    m = m.set_index("lesion_id").loc[lid]
    overlay = viewer.canvas.overlays.text if hasattr(viewer, "canvas") else viewer.text_overlay
    overlay.visible = True
    overlay.text = (
        f"PRL {lid} (truth: rim {row['rim_chi_ppm']:.3f} ppm, coverage {row['rim_coverage']:.2f}, "
        f"vein {row['vein']}); "
        f"measured: coverage {m['rim_coverage']:.2f}, rim score {m['rim_score_ppm']:.4f} ppm"
    )
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()


def round_screenshot(path: Path) -> None:
    """The rim and vein round dock signed in on a simulated subject with markers."""
    import tempfile

    import napari

    from napari_qsm_ms._widgets._layers import load_subject_into_viewer
    from napari_qsm_ms.io.layout import StudyFiles
    from napari_qsm_ms.io.nifti import save_volume

    ph = make_phantom((128, 144, 80), (1.0, 1.0, 1.0), seed=4, n_lesions=(6, 1, 1))
    ph = add_markers(ph, MarkerSpec(prl_fraction=0.6, cvs_fraction=0.5), seed=4)
    sig = gre_signal(ph, seed=4)
    root = Path(tempfile.mkdtemp(prefix="markers-shots-")) / "study"
    (root / "sub-01" / "anat").mkdir(parents=True)
    sub = StudyFiles.at(root).subject("01")
    for path_, data in ((sub.magnitude, sig.magnitude), (sub.chimap, ph.chi_ppm), (sub.tissue, ph.tissue),
                        (sub.lesions, ph.lesion_ids), (sub.brain_mask, ph.brain_mask)):
        save_volume(path_, np.asarray(data), ph.affine)
    viewer = napari.Viewer(title="napari-qsm-ms: rim and vein round")
    load_subject_into_viewer(viewer, sub)
    _, dock = viewer.window.add_plugin_dock_widget("napari-qsm-ms", "Rim and vein round (blinded)")
    dock.sign_in("ann", blocking=True)  # as typing "ann" and clicking Sign in
    t = ph.lesion_table.set_index("lesion_id")
    both = t["prl"] & (t["vein"] == "central")
    target = int(t.index[both][0]) if both.any() else int(t.index[0])
    dock.go(dock.session.order.index(target))
    dock.answer(prl="yes")
    from napari_qsm_ms._widgets._layers import viewer_camera

    from qtpy.QtWidgets import QApplication

    viewer.window.resize(1500, 900)
    QApplication.processEvents()
    viewer_camera(viewer).zoom = 9.0
    QApplication.processEvents()
    viewer.screenshot(str(path), canvas_only=False)
    dock.sign_out()
    viewer.close()


def main() -> None:
    if "--round-only" in sys.argv:
        round_screenshot(HERE / "markers_round_dock.png")
        return
    prof, prl, subjects = cohort()
    fig = rim_profile_figure(prof, prl, title="Rim profiles, simulated 1 mm cohort (true chi + QSM noise)")
    fig.savefig(HERE / "markers_rim_profiles.png")
    screenshot(*subjects[0], HERE / "markers_prl_lesion.png")
    round_screenshot(HERE / "markers_round_dock.png")
    print("written", HERE / "markers_rim_profiles.png", HERE / "markers_prl_lesion.png")


if __name__ == "__main__":
    main()
