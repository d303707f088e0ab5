"""Regenerate the shipped sample study: ``python -m napari_qsm_ms.simulate.sample_study sample_data/study``.

Two subjects with real brain anatomy (the MNI ICBM152 2009 templates shipped with nilearn, see
:mod:`.mni`; their licence notice is written as ``NOTICE``), T2* grid 120 x 148 x 60 at
1.2 x 1.2 x 1.5 mm (the whole brain in-plane, a 90 mm supratentorial slab; sub-02 tilted by 12
degrees), raw-integer phase for sub-01 and radians for sub-02, conventional series at
2.5 / 2.4 / 2.4 mm (coarse, to keep the sample small), 11 lesions each (6 WM, 3 cortical, 2 mixed), three raters' votes, compact
truth. The output is byte-for-byte reproducible (nibabel writes gzip without a timestamp) and
under 20 MB.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..progress import TextProgress
from .study import simulate_study

SAMPLE_SEED = 2016
SAMPLE_SHAPE = (120, 148, 60)
SAMPLE_VOXEL_SIZE_MM = (1.2, 1.2, 1.5)
SAMPLE_ANATOMY = "mni"
SAMPLE_OBLIQUE_DEG = (0.0, 12.0)
SAMPLE_RAW_VOXEL_MM = {"wmn": 2.5, "csfn": 2.4, "flair": 2.4}  # coarse: the whole head fits the size budget


def make_sample_study(out: str | Path, progress=None):
    """Write the sample study to ``out`` (replacing it)."""
    return simulate_study(
        out,
        2,
        seed=SAMPLE_SEED,
        shape=SAMPLE_SHAPE,
        voxel_size_mm=SAMPLE_VOXEL_SIZE_MM,
        oblique_deg=SAMPLE_OBLIQUE_DEG,
        raw_voxel_mm=SAMPLE_RAW_VOXEL_MM,
        phase_units=("raw", "rad"),
        compact_truth=True,
        anatomy=SAMPLE_ANATOMY,
        overwrite=True,
        progress=progress,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m napari_qsm_ms.simulate.sample_study", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "out",
        type=Path,
        nargs="?",
        default=Path("sample_data/study"),
        help="output folder (default: sample_data/study)",
    )
    args = parser.parse_args(argv)
    bar = TextProgress("sample ")
    try:
        study = make_sample_study(args.out, progress=bar)
    finally:
        bar.close()
    print(f"wrote {study.root}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
