"""``qsm-ms run``: skipping what is up to date, failures, crash recovery, parallel and Dask runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from napari_qsm_ms.cli import main
from napari_qsm_ms.cohort.record import leftover_temporaries, step_state
from napari_qsm_ms.cohort.resources import default_jobs, subject_peak_bytes
from napari_qsm_ms.cohort.run import plan_study, run_study
from napari_qsm_ms.cohort.steps import SUBJECT_STEPS, step_parameters
from napari_qsm_ms.errors import ParameterError
from napari_qsm_ms.io.atomic import atomic_path

from ._study import FAST, FAST_ARGS, SUBJECT_AND_AGREEMENT, copy_study, derivative_contents, hidden_files

ROOT = Path(__file__).resolve().parents[2]


def _states(study, only=None):
    return {t: [s.state for s in states] for t, states in plan_study(study.root, FAST, only=only).items()}


def test_a_second_run_skips_everything_and_a_change_reruns_only_what_depends(serial, tmp_path):
    study = copy_study(serial, tmp_path / "study")
    assert _states(study, SUBJECT_AND_AGREEMENT)["01"] == ["done"] * 4
    again = run_study(study.root, params=FAST, only=SUBJECT_AND_AGREEMENT, jobs=1)
    assert again.ok and [t.ran for t in again.subjects] == [[], [], []] and again.study.ran == []

    # a new TKD threshold: recon re-runs, but its mask is the same file content, so rois does not
    changed = {**FAST, "recon": {"inversion": "tkd", "tkd_threshold": 0.15}}
    plan = plan_study(study.root, changed, only=["recon"])
    assert all("parameters changed: tkd_threshold" in p[0].reason for t, p in plan.items() if t != "study")
    rerun = run_study(study.root, params=changed, only=SUBJECT_AND_AGREEMENT, jobs=1)
    assert [t.ran for t in rerun.subjects] == [["recon"]] * 3
    # a new erosion changes the QSM mask that the references stay inside: rois follows
    changed["recon"]["erode_mm"] = 4.0
    rerun = run_study(study.root, params=changed, only=SUBJECT_AND_AGREEMENT, jobs=1)
    assert [t.ran for t in rerun.subjects] == [["recon", "rois"]] * 3
    assert rerun.study.ran == []  # the votes did not change

    # an edited input (a rater's votes of sub-02): consensus, rois of sub-02 and the agreement only
    votes = study.subject("02").votes_tsv("r1")
    table = pd.read_csv(votes, sep="\t")
    table.loc[0, "vote"] = "cortical" if table.loc[0, "vote"] != "cortical" else "wm"
    table.to_csv(votes, sep="\t", index=False)
    third = run_study(study.root, params=changed, only=SUBJECT_AND_AGREEMENT, jobs=1)
    assert [t.ran for t in third.subjects] == [[], ["consensus", "rois"], []]
    assert third.study.ran == ["agreement"]


def test_an_output_edited_by_hand_is_kept_and_force_redoes_it(serial, tmp_path):
    study = copy_study(serial, tmp_path / "study")
    sub = study.subject("01")
    img = nib.load(str(sub.refwm))
    data = np.asanyarray(img.dataobj).copy()
    data[data == data.max()] = 0  # the user removed a reference ROI in napari
    nib.save(nib.Nifti1Image(data, img.affine, img.header), str(sub.refwm))
    state = step_state(sub, "rois", step_parameters(FAST)["rois"])
    assert state.state == "edited" and sub.refwm.name in state.reason
    kept = run_study(study.root, params=FAST, only=["rois"], jobs=1)
    assert kept.subjects[0].ran == []
    assert np.array_equal(np.asanyarray(nib.load(str(sub.refwm)).dataobj), data)
    forced = run_study(study.root, params=FAST, only=["rois"], force=True, subjects=["01"], jobs=1)
    assert forced.subjects[0].ran == ["rois"]
    assert not np.array_equal(np.asanyarray(nib.load(str(sub.refwm)).dataobj), data)


def test_a_truncated_phase_fails_its_subject_on_one_line_and_the_others_go_on(pristine, tmp_path, capsys):
    study = copy_study(pristine, tmp_path / "study")
    phase = study.subject("02").phase
    phase.write_bytes(phase.read_bytes()[: phase.stat().st_size // 2])
    code = main(["run", str(study.root), "--jobs", "1", "--only", "recon", "rois", *FAST_ARGS])
    out, err = capsys.readouterr()
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("qsm-ms run: error:")]
    assert len(errors) == 1, err
    assert "sub-02 recon" in errors[0] and phase.name in errors[0]
    assert "1 failed: sub-02" in out.splitlines()[-1]
    for label in ("01", "03"):
        assert study.subject(label).chimap.exists() and study.subject(label).refwm.exists()
    assert not study.subject("02").chimap.exists()
    assert not study.subject("02").refwm.exists()  # its later steps were not run on a partial subject
    assert main(["run", str(study.root), "--plan", "--only", "recon", "rois", *FAST_ARGS]) == 0
    plan = capsys.readouterr().out.splitlines()
    assert "sub-01: recon done (" in plan[0] and "sub-02: recon missing (not run yet)" in plan[1]


def test_unknown_parameters_are_one_line_errors(pristine, capsys):
    with pytest.raises(ParameterError, match="recon has no parameter 'invert'"):
        step_parameters({"recon": {"invert": "tkd"}})
    assert main(["run", str(pristine.root), "--set", "recon=tkd"]) == 2
    assert "expected STEP.NAME=VALUE" in capsys.readouterr().err


def test_default_jobs_follow_cores_and_memory(pristine):
    labels = pristine.subject_labels()
    per = subject_peak_bytes(48 * 48 * 24)
    assert default_jobs(pristine, labels, memory_bytes=100 * per, cores=2)[0] == 2
    jobs, why = default_jobs(pristine, labels, memory_bytes=1.5 * per, cores=8)
    assert jobs == 1 and "48x48x24" in why
    assert default_jobs(pristine, labels[:1], memory_bytes=100 * per, cores=8)[0] == 1


def test_a_killed_run_leaves_no_partial_file_and_the_rerun_does_only_the_rest(pristine, tmp_path):
    study = copy_study(pristine, tmp_path / "study")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "napari_qsm_ms.cli", "run", str(study.root), "--jobs", "1",
           "--only", *SUBJECT_STEPS, *FAST_ARGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    seen = []
    for line in proc.stdout:  # kill it while sub-02 is being coregistered
        seen.append(line)
        if line.startswith("sub-02") and "coregister started" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    # a write interrupted by a kill leaves atomic_path's temporary name, never a partial final file
    _killed_inside_atomic_write(study.subject("02").coreg_series("flair"))
    assert leftover_temporaries(study.subject("02").deriv)

    states = _states(study, SUBJECT_STEPS)
    assert states["01"] == ["done"] * 4
    assert states["02"][0] == "done" and states["02"][1] == "missing"
    assert states["03"] == ["missing"] * 4
    rerun = run_study(study.root, params=FAST, only=SUBJECT_STEPS, jobs=1)
    assert rerun.ok, rerun.failures
    assert [t.ran for t in rerun.subjects] == [[], ["coregister", "consensus", "rois"], list(SUBJECT_STEPS)]
    assert hidden_files(study.root) == []
    for path in study.root.rglob("*.nii.gz"):
        np.asanyarray(nib.load(str(path)).dataobj)  # every NIfTI complete and readable


def _killed_inside_atomic_write(path: Path) -> None:
    """A child process killed by SIGKILL in the middle of an atomic write of ``path``."""
    code = (
        "import os, signal, sys\n"
        "from napari_qsm_ms.io.atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_bytes(b'half a file')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code, str(path)], env=env, check=False)
    assert done.returncode == -signal.SIGKILL


def test_leftover_temporaries_match_atomic_path_names(tmp_path):
    final = tmp_path / "sub-01_Chimap.nii.gz"
    with atomic_path(final) as tmp:
        assert leftover_temporaries(tmp_path) == [tmp]
    (tmp_path / ".hidden_notes.txt").write_text("not ours")
    assert leftover_temporaries(tmp_path) == []


def test_two_processes_give_the_serial_outputs(serial, pristine, tmp_path):
    study = copy_study(pristine, tmp_path / "study")
    result = run_study(study.root, params=FAST, only=["recon", "consensus", "rois", "agreement"], jobs=2)
    assert result.ok, result.failures
    assert len({t.worker for t in result.subjects}) >= 1 and all(t.peak_rss_mb > 0 for t in result.subjects)
    _assert_same(serial, study, skip=("space-T2starw",))


def _assert_same(a, b, skip=()):
    left, right = derivative_contents(a), derivative_contents(b)
    left = {k: v for k, v in left.items() if not any(s in k for s in skip)}
    right = {k: v for k, v in right.items() if not any(s in k for s in skip)}
    assert sorted(left) == sorted(right)
    for key, value in left.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, right[key], obj=key)
        else:
            assert np.array_equal(value, right[key]), key


def test_fail_fast_stops_at_the_first_failing_subject(pristine, tmp_path, capsys):
    study = copy_study(pristine, tmp_path / "study")
    study.subject("01").phase_json.write_text('{"EchoTime": 17.7, "MagneticFieldStrength": 7}')  # ms, not s
    code = main(["run", str(study.root), "--jobs", "1", "--only", "recon", "--fail-fast", *FAST_ARGS])
    out, err = capsys.readouterr()
    assert code == 2 and "sub-01 recon" in err and "milliseconds" in err
    assert out.splitlines()[-1] == "qsm-ms run: 1 subject, 0 steps run, 1 failed: sub-01"
    assert not any(study.subject(label).chimap.exists() for label in ("02", "03"))


def test_a_chimap_from_qsm_ms_recon_is_adopted_when_its_sidecar_matches(pristine, tmp_path, capsys):
    study = copy_study(pristine, tmp_path / "study")
    assert main(["recon", str(study.root), "--subject", "01", "02", "--inversion", "tkd"]) == 0
    phase = study.subject("02").phase
    phase.write_bytes(phase.read_bytes())  # same content, new time: still the same input
    assert main(["recon", str(study.root), "--subject", "03", "--inversion", "tkd", "--erode-mm", "3"]) == 0
    capsys.readouterr()
    states = plan_study(study.root, FAST, only=["recon"])
    assert states["01"][0].state == "done" and "made by qsm-ms recon" in states["01"][0].reason
    assert states["02"][0].state == "done"
    assert states["03"][0].state == "missing"  # another erosion: not the requested parameters
    result = run_study(study.root, params=FAST, only=["recon"], jobs=1)
    assert [t.ran for t in result.subjects] == [[], [], ["recon"]]
    assert step_state(study.subject("01"), "recon", step_parameters(FAST)["recon"]).adopted is False  # recorded


def test_inversion_auto_adopts_the_chimap_of_the_method_it_resolves_to(pristine, tmp_path, capsys):
    # the sidecar records the method that ran; "auto" is MEDI for a subject (it has a magnitude)
    import json

    from napari_qsm_ms.io.sidecar import sidecar_path

    study = copy_study(pristine, tmp_path / "study")
    assert main(["recon", str(study.root), "--subject", "01", "--inversion", "tkd"]) == 0
    capsys.readouterr()
    wanted = {**FAST, "recon": {**FAST.get("recon", {}), "inversion": "tkd"}}
    assert plan_study(study.root, wanted, only=["recon"])["01"][0].state == "done"
    wanted["recon"]["inversion"] = "auto"  # MEDI: not what the sidecar says ran
    assert plan_study(study.root, wanted, only=["recon"])["01"][0].state == "missing"
    side = sidecar_path(study.subject("01").chimap)
    meta = json.loads(side.read_text(encoding="utf-8"))
    meta["Parameters"]["inversion"] = "medi"  # as a MEDI run records it, with MEDI's own keys
    meta["Parameters"].update({k: v for k, v in step_parameters(wanted)["recon"].items() if k.startswith("medi_")})
    side.write_text(json.dumps(meta), encoding="utf-8")
    assert plan_study(study.root, wanted, only=["recon"])["01"][0].state == "done"
    del meta["Parameters"]["medi_prior_region"]  # made before MEDI had this option: not today's method
    side.write_text(json.dumps(meta), encoding="utf-8")
    assert plan_study(study.root, wanted, only=["recon"])["01"][0].state == "missing"
