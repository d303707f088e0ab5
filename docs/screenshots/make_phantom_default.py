"""Default QSM on the simulated 7 T phantoms beside the truth and the former default (prior on the
whole grid, the cone's weight): three orthogonal central slices, grey, -0.1..0.1 ppm, demeaned in
the QSM mask. Writes qsm_phantom_default_<geometry>.png for the 0.94 mm grid and the oblique slab.

Run: .venv/bin/python docs/screenshots/make_phantom_default.py   (about 2 minutes per geometry)
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_qsm as b  # noqa: E402

from napari_qsm_ms.qsm.pipeline import reconstruct  # noqa: E402
from napari_qsm_ms.simulate.forward import gre_signal  # noqa: E402
from napari_qsm_ms.simulate.phantom import make_phantom  # noqa: E402

OUT = Path(__file__).resolve().parent
RUNS = (("default (prior inside the mask, lambda auto: the magnitude's noise)", {}),
        ("former default (prior on the whole grid, lambda auto-cone)",
         dict(medi_prior_region="grid", medi_lambda="auto-cone")))


def figure(geometry: str, seed: int = 1) -> None:
    spec = dict(b.GEOMETRIES[geometry])
    shape, vs = spec.pop("shape"), spec.pop("voxel_size_mm")
    ph = make_phantom(shape, vs, seed=seed, n_lesions=(16, 8, 4), **spec)
    sig = gre_signal(ph, seed=seed, te_s=b.TE_S, b0_t=b.B0_T)
    rows = []
    for title, kw in RUNS:
        r = reconstruct(sig.magnitude, sig.phase_rad, affine=ph.affine, te_s=b.TE_S, b0_t=b.B0_T,
                        keep_intermediates=False, **kw)
        m = r.mask & ph.brain_mask
        rows.append((f"{title}: NRMSE {b.nrmse(r.chi_ppm, ph.chi_ppm, m):.1f} %",
                     np.where(r.mask, r.chi_ppm - r.chi_ppm[m].mean(), 0)))
    m = r.mask & ph.brain_mask
    rows.insert(0, ("truth (in the QSM mask)", np.where(r.mask, ph.chi_ppm - ph.chi_ppm[m].mean(), 0)))
    fig, ax = plt.subplots(3, 3, figsize=(10, 10))
    c = [n // 2 for n in shape]
    for i, (title, v) in enumerate(rows):
        for j, s in enumerate((v[:, :, c[2]].T, v[:, c[1], :].T, v[c[0], :, :].T)):
            ax[i, j].imshow(s, origin="lower", cmap="gray", vmin=-0.1, vmax=0.1, aspect="auto")
            ax[i, j].set_axis_off()
        ax[i, 0].set_title(title, fontsize=9, loc="left")
    fig.suptitle(f"phantom {geometry}, seed {seed}: axial, coronal, sagittal (grey -0.1..0.1 ppm)", fontsize=10)
    fig.tight_layout()
    fig.savefig(OUT / f"qsm_phantom_default_{geometry}.png", dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    for geometry in ("0.94", "oblique"):
        figure(geometry)
