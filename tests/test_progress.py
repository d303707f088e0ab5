"""Command-line progress (issue 13): a few lines per stage in a log, the redrawn bar on a terminal."""

from __future__ import annotations

import io
import re

import nibabel as nib
import numpy as np

from napari_qsm_ms.cli import main
from napari_qsm_ms.progress import TextProgress, scaled, stage_of
from tests.qsm.test_pipeline import B0T, TE, _acquire, _affine


class _Tty(io.StringIO):
    def isatty(self):
        return True


def _many_updates(bar):
    """A run as the pipeline reports it: four stages, about a hundred updates."""
    bar(0.0, "mask: brain mask")
    unwrap = scaled(bar, 0.03, 0.08, "unwrapping")
    for i in range(10):
        unwrap(i / 10, "region-growing unwrapping")
    bfr = scaled(bar, 0.08, 0.3, "background removal")
    for i in range(30):
        bfr(i / 30, f"PDF iteration {i}")
    inv = scaled(bar, 0.3, 1.0, "inversion")
    for it in range(1, 6):
        for cg in range(12):
            inv((it - 1 + cg / 12) / 5, f"MEDI: Gauss-Newton {it}, CG iteration {cg}")
    bar(1.0, "QSM done")
    bar.close()


def test_stage_of_groups_messages():
    assert stage_of("inversion: MEDI: Gauss-Newton 3, CG iteration 4") == "inversion"
    assert stage_of("PDF iteration 12") == "PDF iteration"
    assert stage_of("sub-01: loading the T2* magnitude") == "sub-01"


def test_non_terminal_progress_is_a_few_lines_per_stage():
    log = io.StringIO()
    _many_updates(TextProgress(prefix="recon ", stream=log))
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 * 4 + 1, lines  # started + done per stage, and the closing line
    for stage in ("mask", "unwrapping", "background removal", "inversion"):
        assert sum(line.startswith(f"recon {stage}: started") for line in lines) == 1
        assert sum(bool(re.match(rf"recon {stage}: done in \d+\.\d s", line)) for line in lines) == 1
    assert re.match(r"recon QSM done \(\d+\.\d s\)", lines[-1])


def test_terminal_progress_is_redrawn_in_place():
    tty = _Tty()
    _many_updates(TextProgress(prefix="recon ", stream=tty))
    out = tty.getvalue()
    assert out.count("\r") > 100 and out.count("\n") == 1


def test_cli_log_without_a_terminal(tmp_path, capsys):
    aff = _affine()
    chi, brain, mag, phase = _acquire(aff, noise=0.02)
    nib.save(nib.Nifti1Image(mag, aff), tmp_path / "mag.nii.gz")
    nib.save(nib.Nifti1Image(phase, aff), tmp_path / "phase.nii.gz")
    nib.save(nib.Nifti1Image(brain.astype(np.uint8), aff), tmp_path / "mask.nii.gz")
    code = main(["recon", "--magnitude", str(tmp_path / "mag.nii.gz"), "--phase", str(tmp_path / "phase.nii.gz"),
                 "--mask", str(tmp_path / "mask.nii.gz"), "--te", str(TE), "--b0", str(B0T),
                 "--out", str(tmp_path / "chi.nii.gz"), "--inversion", "tv"])
    err = capsys.readouterr().err.splitlines()
    assert code == 0
    assert 5 <= len(err) <= 12, err  # was one line per iteration (about 100) before issue 13
    assert all(line.startswith("recon ") for line in err)
    assert any("inversion: done in" in line for line in err)
