"""Figure of the sample study for docs/simulate.md: every series of sub-02 and its ground truth.

Run: ``python docs/screenshots/make_simulate.py`` (writes docs/screenshots/simulate_sample.png).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from napari_qsm_ms.io import StudyFiles, load_volume, phase_to_radians, to_canonical
from napari_qsm_ms.simulate.truth import TruthFiles

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "simulate_sample.png"


def _canonical(path, **kw):
    vol = load_volume(path, **kw)
    data, view = to_canonical(vol.data, vol.affine)
    return data, view.canonical_affine


def _axial_at(path, world_z, **kw):
    data, aff = _canonical(path, **kw)
    k = round(np.linalg.solve(aff, [0, 0, world_z, 1])[2]) if aff[2, 2] != 0 else data.shape[2] // 2
    k = int(np.clip(k, 0, data.shape[2] - 1))
    return data[:, :, k]


def main() -> None:
    study = StudyFiles.at(ROOT / "sample_data" / "study")
    sub = study.subject("01")
    truth = TruthFiles(study.root, "01")
    mag, aff = _canonical(sub.magnitude)
    lesions, _ = _canonical(sub.lesions, dtype=None)
    # the axial slice (of the T2* grid) holding the most lesion voxels
    k = int(np.argmax((lesions > 0).sum(axis=(0, 1))))
    world_z = float((aff @ [0, 0, k, 1])[2])
    phase = phase_to_radians(_canonical(sub.phase, dtype=None)[0])
    local = _canonical(truth.local_field)[0][:, :, k]
    brain = _canonical(truth.brain_mask)[0][:, :, k] > 0
    panels = [
        ("T2* magnitude (TE 17.7 ms)", mag[:, :, k], "gray", None),
        ("wrapped phase (raw int -> rad)", phase[:, :, k], "gray", (-np.pi, np.pi)),
        ("true chi (ppm)", _canonical(truth.chimap)[0][:, :, k], "gray", (-0.1, 0.15)),
        ("true local field - median (ppm)", local - np.median(local[brain]), "RdBu_r", (-0.03, 0.03)),
        (
            "true background field (ppm)",
            _canonical(truth.background_field)[0][:, :, k],
            "viridis",
            (0.7, 1.3),
        ),
        (
            "tissue + lesions (derivatives)",
            _canonical(sub.tissue, dtype=None)[0][:, :, k] + 5 * (lesions[:, :, k] > 0),
            "tab10",
            (0, 9),
        ),
        ("WM-nulled MPRAGE (own grid)", _axial_at(sub.raw_series("wmn"), world_z), "gray", None),
        ("CSF-nulled MPRAGE (own grid)", _axial_at(sub.raw_series("csfn"), world_z), "gray", None),
        ("FLAIR (own grid)", _axial_at(sub.raw_series("flair"), world_z), "gray", None),
    ]
    fig, axes = plt.subplots(3, 3, figsize=(12, 13.5))
    for ax, (title, img, cmap, lim) in zip(axes.ravel(), panels):
        kw = {} if lim is None else {"vmin": lim[0], "vmax": lim[1]}
        ax.imshow(np.asarray(img).T, origin="lower", cmap=cmap, interpolation="nearest", **kw)
        ax.set_title(title, fontsize=11)
        ax.set_axis_off()
    fig.suptitle(
        f"sample study sub-01, axial slice z = {world_z:.0f} mm (conventional series: nearest slice of their "
        "own, slightly misaligned grids)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(OUT, dpi=70)
    print(OUT)


if __name__ == "__main__":
    main()
