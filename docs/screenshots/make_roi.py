"""Figure of the reference-ROI rules on one synthetic slice: docs/screenshots/roi_references.png.

Run: .venv/bin/python docs/screenshots/make_roi.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from napari_qsm_ms.roi.references import build_references  # noqa: E402

OUT = Path(__file__).resolve().parent / "roi_references.png"
VOXEL = (0.47, 0.47, 1.0)


def scene():
    """WM below a wavy cortical ribbon (2.4 mm), CSF above; five lesions on the middle slice."""
    ny, nx, nz = 150, 220, 5
    y, x = np.mgrid[:ny, :nx]
    surface = 58 + 14 * np.sin(x / 30.0)  # CSF / cortex boundary (pixels)
    tissue2d = np.full((ny, nx), 3, np.uint8)
    tissue2d[y < surface + 5] = 2
    tissue2d[y < surface] = 1
    tissue2d[(y - 120) ** 2 / 12**2 + (x - 40) ** 2 / 18**2 < 1] = 1  # a ventricle horn
    tissue = np.repeat(tissue2d[:, :, None], nz, axis=2)
    les = np.zeros((ny, nx, nz), np.int32)

    def blob(k, cy, cx, ry, rx, z=(1, 2, 3)):
        m = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1
        for zz in z:
            les[:, :, zz][m] = k

    blob(1, 105, 110, 7, 9)  # WM lesion: ring
    blob(2, 110, 160, 5, 6)  # two neighbouring WM lesions: they share the WM between them
    blob(3, 110, 178, 5, 5)
    s = int(surface[0, 75])
    blob(4, s + 2, 75, 4, 5)  # cortical lesion cutting the ribbon: strip on both flanks
    s = int(surface[0, 195])
    blob(5, s + 6, 195, 6, 6)  # mixed lesion on the cortex/WM border: both references
    blob(6, 122, 64, 3, 3)  # WM lesion beside the ventricle: small ring, flagged
    classes = {1: "wm", 2: "wm", 3: "wm", 4: "cortical", 5: "mixed", 6: "wm"}
    return les, tissue, classes


def main() -> None:
    les, tissue, classes = scene()
    res = build_references(les, tissue, VOXEL, lesion_classes=classes)
    s = 2
    fig, ax = plt.subplots(figsize=(11, 7.8), dpi=110)
    grey = ListedColormap(["black", "#2b2b2b", "#8a8a8a", "#d9d9d9", "#b0b0b0"])
    ax.imshow(tissue[:, :, s], cmap=grey, vmin=0, vmax=4, interpolation="nearest")
    overlay = np.zeros(tissue.shape[:2] + (4,))
    overlay[res.refwm[:, :, s] > 0] = (0.12, 0.45, 0.95, 0.85)
    overlay[res.refgm[:, :, s] > 0] = (0.1, 0.75, 0.25, 0.85)
    overlay[les[:, :, s] > 0] = (0.9, 0.1, 0.1, 1.0)
    ax.imshow(overlay, interpolation="nearest")
    for k in np.unique(res.refwm[:, :, s]):
        if k:
            ax.contour(res.refwm[:, :, s] == k, levels=[0.5], colors="navy", linewidths=0.8)
    for k in np.unique(res.refgm[:, :, s]):
        if k:
            ax.contour(res.refgm[:, :, s] == k, levels=[0.5], colors="darkgreen", linewidths=0.8)
    table = res.table.set_index(["lesion_id", "part"])
    labels = {1: "WM lesion: ring", 2: "neighbours\nshare the WM", 4: "cortical lesion:\nstrip on both flanks",
              5: "mixed lesion:\nring + strip", 6: "beside a ventricle:\nthe ring stops at CSF"}
    for k, text in labels.items():
        cy, cx = np.argwhere(les[:, :, s] == k).mean(axis=0)
        ax.annotate(text, (cx, cy), xytext=(cx - 10, cy + 26 if k != 4 and k != 5 else cy - 34),
                    color="black", fontsize=9, ha="center", arrowprops=dict(arrowstyle="-", color="black"),
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.85))
    flagged = [k for (k, part), row in table.iterrows() if "too_small" in row["flags"]]
    ax.set_title(
        "Reference ROIs on the central slice (0.47 mm pixels): gap 1.0 mm (2 px), ring to 4.7 mm (10 px)\n"
        "red lesion, blue NAWM reference (refwm), green cortex reference (refgm)"
        + (f"; flagged too small: {flagged}" if flagged else ""),
        fontsize=10,
    )
    ax.legend(
        handles=[Patch(color=c, label=t) for c, t in [
            ("#2b2b2b", "CSF"), ("#8a8a8a", "cortex"), ("#d9d9d9", "WM"), ((0.9, 0.1, 0.1), "lesion"),
            ((0.12, 0.45, 0.95), "refwm"), ((0.1, 0.75, 0.25), "refgm")]],
        loc="lower right", fontsize=8, framealpha=0.9,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(OUT)
    print(res.table.to_string())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
