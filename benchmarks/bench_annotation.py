"""Benchmark of the annotation dock: lesion-table refresh, undoable edits and autosave.

Grid 384 x 384 x 90 (0.47 x 0.47 x 1.5 mm, the paper's in-plane pixel), 150 lesions (random
ellipsoids, 2-8 mm) on a synthetic tissue map. Run under Xvfb (a real viewer is created)::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python benchmarks/bench_annotation.py

Prints each figure next to the yardstick measured in the same run (one complex 3-D FFT of the
same grid), so numbers from a loaded machine can still be compared. Targets from issue 4:
table refresh < 100 ms for 150 lesions.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import timeit  # benchmarks/ is on sys.path when run as a script

SHAPE = (384, 384, 90)
VOXEL_MM = (0.47, 0.47, 1.5)
N_LESIONS = 150


def make_volumes(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, y = np.ogrid[: SHAPE[0], : SHAPE[1]]
    r = np.sqrt(((x - 191.5) / 180.0) ** 2 + ((y - 191.5) / 185.0) ** 2)
    plane = np.zeros(SHAPE[:2], np.uint8)
    plane[r < 1.0] = 1
    plane[r < 0.95] = 2
    plane[r < 0.85] = 3
    tissue = np.repeat(plane[:, :, None], SHAPE[2], axis=2)
    lesions = np.zeros(SHAPE, np.int32)
    vs = np.asarray(VOXEL_MM)
    placed = 0
    while placed < N_LESIONS:
        radius_mm = rng.uniform(1.0, 4.0, 3)
        half = np.ceil(radius_mm / vs).astype(int)
        c = [int(rng.integers(h + 1, s - h - 1)) for h, s in zip(half, SHAPE)]
        sl = tuple(slice(ci - h, ci + h + 1) for ci, h in zip(c, half))
        if tissue[c[0], c[1], c[2]] < 2 or lesions[sl].any():
            continue
        g = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
        ell = sum((gi * v / rm) ** 2 for gi, v, rm in zip(g, vs, radius_mm)) <= 1.0
        placed += 1
        lesions[sl][ell] = placed
    return lesions, tissue


def main() -> int:
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_qsm_ms._widgets._autosave import fingerprint, write_autosave
    from napari_qsm_ms._widgets._lesion_table import LesionTableView, display_frame
    from napari_qsm_ms._widgets.annotation import AnnotationWidget, apply_labels_edit
    from napari_qsm_ms.io.nifti import to_canonical
    from napari_qsm_ms.roi.lesions import lesion_table
    from napari_qsm_ms.roi.references import build_references

    lesions, tissue = make_volumes()
    print(f"grid {SHAPE}, voxel {VOXEL_MM} mm, {int(lesions.max())} lesions, "
          f"{int((lesions > 0).sum())} lesion voxels")
    cplx = (np.random.default_rng(1).standard_normal(SHAPE) + 0j).astype(np.complex64)
    t_fft = timeit(lambda: np.fft.fftn(cplx), 3)
    print(f"yardstick: one complex64 3-D FFT of the grid: {1e3 * t_fft:7.1f} ms")

    def line(name, seconds, target=None):
        extra = f"  (target < {1e3 * target:.0f} ms: {'OK' if seconds < target else 'MISSED'})" if target else ""
        print(f"{name:<58s} {1e3 * seconds:8.1f} ms  = {seconds / t_fft:5.2f} FFT{extra}")

    t_table = timeit(lambda: lesion_table(lesions, tissue, VOXEL_MM, slice_axis=2))
    line("roi.lesions.lesion_table (150 lesions)", t_table)
    table = lesion_table(lesions, tissue, VOXEL_MM, slice_axis=2)

    app = QApplication.instance() or QApplication(sys.argv)
    view = LesionTableView()
    frame = display_frame(table)
    t_model = timeit(lambda: view.set_frame(display_frame(table)))
    line("display_frame + Qt model reset (150 rows)", t_model)
    view.deleteLater()
    del frame

    # full dock refresh on a real viewer (layers in canonical orientation, as the reader makes)
    viewer = napari.Viewer(show=False)
    affine = np.diag([*VOXEL_MM, 1.0])
    with tempfile.TemporaryDirectory(prefix="qsm-ms-bench-") as tmp:
        from napari_qsm_ms._reader import volume_layer_data
        from napari_qsm_ms.io.layout import SubjectFiles
        from napari_qsm_ms.io.nifti import Volume

        sub = SubjectFiles(Path(tmp), "01")
        for role, data in (("magnitude", tissue.astype(np.float32) * 300), ("tissue", tissue), ("lesions", lesions),
                           ("refwm", np.zeros_like(lesions)), ("refgm", np.zeros_like(lesions))):
            arr, kwargs, kind = volume_layer_data(Volume(data, affine, getattr(sub, role, None)), role, subject=sub)
            getattr(viewer, f"add_{kind}")(arr, **kwargs)
        dock = AnnotationWidget(viewer, recovery="never")
        t_dock = timeit(dock.refresh_table)
        line("AnnotationWidget.refresh_table (full, 150 lesions)", t_dock, 0.100)

        lesions_layer = [lay for lay in viewer.layers if lay.metadata.get("role") == "lesions"][0]
        t_crc = timeit(lambda: fingerprint(np.asarray(lesions_layer.data)))
        line("autosave change check (CRC-32 of one 384x384x90 int32)", t_crc)

        result = build_references(lesions, tissue, VOXEL_MM, slice_axis=2)
        refwm = [lay for lay in viewer.layers if lay.metadata.get("role") == "refwm"][0]
        t0 = time.perf_counter()
        apply_labels_edit(refwm, to_canonical(result.refwm, affine)[0])
        line("apply refwm as one undoable edit (data_setitem)", time.perf_counter() - t0)
        t0 = time.perf_counter()
        refwm.undo()
        line("undo of that edit (layer.undo)", time.perf_counter() - t0)

        vols = {"lesions": (lesions, affine)}
        t_one = timeit(lambda: write_autosave(sub.autosave_dir, vols, None), 3)
        line("autosave write, lesions only (gzip NIfTI + manifest)", t_one)
        vols4 = {"lesions": (lesions, affine), "tissue": (tissue.astype(np.int32), affine),
                 "refwm": (result.refwm, affine), "refgm": (result.refgm, affine)}
        t_all = timeit(lambda: write_autosave(sub.autosave_dir, vols4, None), 3)
        line("autosave write, all 4 annotation layers", t_all)
        dock.autosaver.flush(wait=True, check_all=True)
        lesions_layer.data_setitem((np.array([10]), np.array([10]), np.array([10])), 999)  # one stroke
        t0 = time.perf_counter()
        dock.autosaver.flush(wait=False)  # what the GUI thread pays: CRC + copy, write in background
        t_gui = time.perf_counter() - t0
        dock.autosaver.wait()
        line("autosave cost on the GUI thread after a lesion stroke", t_gui)
        dock.shutdown()
        dock.deleteLater()
    viewer.close()
    app.processEvents()
    print("note: wall times on a shared 2-core machine (other jobs running); compare the FFT ratios")
    return 0


if __name__ == "__main__":
    sys.exit(main())
