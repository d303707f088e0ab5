"""``qsm-ms consensus``: lesions.tsv per subject, agreement.tsv, summary, resolve, propose, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd

from napari_qsm_ms.cli import main
from napari_qsm_ms.io.layout import StudyFiles
from napari_qsm_ms.rating.consensus import read_lesion_classes
from napari_qsm_ms.rating.votes import record_vote

from ._helpers import make_subject


def _study(tmp_path):
    s1 = make_subject(tmp_path, "01", n_lesions=3)
    s2 = make_subject(tmp_path, "02", n_lesions=2)
    plan = {
        s1: {"ann": ["wm", "mixed", "not_lesion"], "ben": ["wm", "cortical", "not_lesion"], "cat": ["wm", "wm", "wm"]},
        s2: {"ann": ["cortical", "wm"], "ben": ["cortical", "wm"]},
    }
    for subject, by_rater in plan.items():
        for rater, votes in by_rater.items():
            for lid, v in enumerate(votes, start=1):
                record_vote(subject, rater, lid, v)
    return s1, s2


def test_consensus_command(tmp_path, capsys):
    s1, s2 = _study(tmp_path)
    assert main(["consensus", str(s1.study)]) == 0
    out = capsys.readouterr().out
    assert "sub-01: 3 candidates, raters ann, ben, cat: wm 1, cortical 0, mixed 0, rejected 1, disputed 1" in out
    assert "disputed: drawn 2: wm:1;cortical:1;mixed:1" in out
    assert "sub-02: 2 candidates, raters ann, ben: wm 1, cortical 1" in out
    assert "fleiss_kappa [ann, ben, cat]" in out and "cohen_kappa [ann, ben]" in out
    assert list(read_lesion_classes(s1)["class"]) == ["wm", "disputed", "rejected"]
    assert list(read_lesion_classes(s2)["class"]) == ["cortical", "wm"]
    agreement = pd.read_csv(StudyFiles.at(s1.study).agreement_tsv, sep="\t")
    ab = agreement[agreement["raters"] == "ann;ben"].iloc[0]
    assert ab["n_items"] == 5  # pooled over both subjects

    assert main(["consensus", str(s1.study), "--subject", "01", "--resolve", "2", "mixed", "crosses the boundary"]) == 0
    row = read_lesion_classes(s1).set_index("lesion_id").loc[2]
    assert (row["class"], row["consensus"], row["resolution_reason"]) == ("mixed", "resolved", "crosses the boundary")
    assert main(["consensus", str(s1.study), "--subject", "01"]) == 0  # re-run keeps the resolution
    assert read_lesion_classes(s1).set_index("lesion_id").loc[2, "class"] == "mixed"


def test_consensus_errors_are_one_line(tmp_path, capsys):
    s1, _ = _study(tmp_path)
    assert main(["consensus", str(s1.study), "--subject", "01", "--resolve", "1", "mixed", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lesions.tsv" in err and "run the consensus" in err
    main(["consensus", str(s1.study), "--subject", "01"])
    capsys.readouterr()
    assert main(["consensus", str(s1.study), "--subject", "01", "--resolve", "1", "mixed", "x"]) == 2
    assert "is agreed" in capsys.readouterr().err
    assert main(["consensus", str(s1.study), "--resolve", "2", "mixed", "x"]) == 2
    assert "exactly one --subject" in capsys.readouterr().err
    assert main(["consensus", str(s1.study), "--subject", "09"]) == 2
    assert "sub-09" in capsys.readouterr().err
    lonely = make_subject(tmp_path / "other", "01")
    record_vote(lonely, "solo", 1, "wm")
    assert main(["consensus", str(lonely.study)]) == 2
    captured = capsys.readouterr()
    assert "skipped (1 rater(s)" in captured.out and "at least 2" in captured.err
    bad = s1.votes_tsv("cat")
    bad.write_text("lesion_id\tcomment\n1\twm\n")  # a two-column lesion_id, vote file is valid (issue 11)
    assert main(["consensus", str(s1.study), "--subject", "01"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "missing column" in err


def test_help_documents_options():
    out = subprocess.run(
        [sys.executable, "-m", "napari_qsm_ms.cli", "consensus", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for opt in ("--subject", "--raters", "--resolve", "--propose", "--z-threshold", "--min-extent-mm"):
        assert opt in out
    assert "default 2.5" in out and "mm, default 2.0" in out


def test_propose_option(tmp_path, capsys):
    from .test_proposals import _scene
    from ._helpers import save_nifti

    imgs, brain, tissue, drawn, _ = _scene()
    subject = make_subject(tmp_path)
    save_nifti(subject.lesions, drawn)
    save_nifti(subject.magnitude, imgs["mag"])
    save_nifti(subject.brain_mask, brain.astype(np.uint8))
    save_nifti(subject.tissue, tissue)
    save_nifti(subject.coreg_series("flair"), imgs["flair"])
    save_nifti(subject.coreg_series("csfn"), imgs["csfn"])
    assert main(["consensus", str(subject.study), "--propose"]) == 0
    assert "proposals written" in capsys.readouterr().out
    assert (subject.deriv / "sub-01_desc-proposals_dseg.nii.gz").exists()
