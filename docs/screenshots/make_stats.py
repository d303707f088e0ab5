"""Screenshots of the Statistics dock and the study figures (run under Xvfb).

xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_stats.py
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import napari
from qtpy.QtCore import QTimer

from napari_qsm_ms._widgets._layers import load_subject_into_viewer
from napari_qsm_ms._widgets.stats import StatsWidget
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.stats.study import run_study_stats
from napari_qsm_ms.stats.synthetic import PAPER_TABLE1, write_synthetic_study

HERE = Path(__file__).parent


def add_some_problems(sub) -> None:
    """An excluded lesion and an emptied reference, so the dock shows greyed and flagged rows."""
    import json

    import numpy as np

    from napari_qsm_ms.io.nifti import load_volume, save_volume

    sub.annotation_json.write_text(json.dumps({"lesions": {"30": {"excluded": True, "exclusion_reason": "artefact"}}}))
    ref = load_volume(sub.refwm, dtype=None)
    data = np.asarray(ref.data).copy()
    data[data == 31] = 0
    save_volume(sub.refwm, data, ref.affine)


def phantom_panels(tmp: Path) -> None:
    """ROI panels of a mixed lesion of the shipped simulated study (true chi as the QSM map)."""
    from napari_qsm_ms.rating.consensus import run_consensus
    from napari_qsm_ms.roi.study import build_subject_references
    from napari_qsm_ms.stats.figures import roi_panel_figure, save_figure

    root = tmp / "phantom"
    shutil.copytree(HERE.parents[1] / "sample_data" / "study", root)
    sub = StudyFiles.at(root).subject("01")
    sim = root / "derivatives" / "simulation" / sub.sub / "anat"
    shutil.copy(sim / f"{sub.sub}_desc-truth_Chimap.nii.gz", sub.chimap)
    build_subject_references(sub)
    run_consensus(sub)
    fig = roi_panel_figure(sub, 10, label="mixed lesion, simulated phantom")
    paths = save_figure(fig, tmp / "phantom_roi")
    shutil.copy(paths["png"], HERE / "stats_roi_phantom.png")


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="stats-shots-"))
    root = tmp / "study"
    write_synthetic_study(root, PAPER_TABLE1, shape=(96, 96, 40), voxel_size_mm=(0.75, 0.75, 1.5), seed=0)
    add_some_problems(StudyFiles.at(root).subject("06"))
    result = run_study_stats(root)
    out = StudyFiles.at(root).stats_dir
    shutil.copy(out / "figure2.png", HERE / "stats_figure2.png")
    for png in sorted(out.glob("roi_sub-*_lesion-*.png")):
        klass = result.lesions.loc[result.lesions["lesion_id"] == int(png.stem.split("-")[-1]), "class"]
        shutil.copy(png, HERE / f"stats_{png.stem}.png")
    print("figures copied", klass.empty)
    phantom_panels(tmp)

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1550, 950)
    sub = StudyFiles.at(root).subject("06")
    load_subject_into_viewer(viewer, sub)
    widget = StatsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Statistics", area="right")
    widget.compute(blocking=True)
    rows = widget.lesions
    row = int(rows.index[(rows["subject"] == "06") & (rows["class"] == "mixed")][0])
    widget.table.selectRow(row)
    widget.table.cellClicked.emit(row, 0)
    widget.table.scrollToItem(widget.table.item(row, 0))

    def shoot() -> None:
        viewer.screenshot(str(HERE / "stats_dock_viewer.png"), canvas_only=False, flash=False)
        widget.grab().save(str(HERE / "stats_dock.png"))
        viewer.close()
        shutil.rmtree(tmp, ignore_errors=True)

    QTimer.singleShot(2500, shoot)
    napari.run()


if __name__ == "__main__":
    main()
