"""The "Consensus and agreement" dock on round 2 (rim and vein): the values it shows are those of
``qsm-ms consensus --round rim`` (same library function, same files) and statsmodels' kappas; it
blanks while a rater is signed in to any round."""

from __future__ import annotations

import pandas as pd
import pytest
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from napari_qsm_ms._widgets.rating import rater_mode
from napari_qsm_ms.cli import main
from napari_qsm_ms.io.layout import StudyFiles, round_agreement_tsv
from napari_qsm_ms.rating.markers import CVS_VOTES, PRL_VOTES, read_round_votes

from ..rating.test_markers_round import _random_round
from ._user_path import add_dock

PANEL = ["ann", "ben", "cat"]


def test_round_two_in_the_consensus_dock_equals_cli_and_statsmodels(make_napari_viewer, tmp_path):
    sub = _random_round(tmp_path, 3, n=12)
    assert main(["consensus", str(sub.study), "--round", "rim"]) == 0
    path = round_agreement_tsv(StudyFiles.at(sub.study), "rim")
    cli = pd.read_csv(path, sep="\t").set_index(["marker", "measure", "raters"])["value"].sort_index()
    viewer = make_napari_viewer()
    _, dock = add_dock(viewer, "Consensus and agreement")
    dock.set_subject(sub)
    assert [dock.round_combo.itemData(k) for k in range(dock.round_combo.count())] == ["class", "rim"]
    dock.round_combo.setCurrentIndex(1)
    assert not dock.propose_button.isEnabled() and not dock.dispute_box.isEnabled()  # class round only
    dock.run_button.click()
    shown = dock.round_agreement.set_index(["marker", "measure", "raters"])["value"].sort_index()
    pd.testing.assert_series_equal(shown, cli)  # the dock's values are the CLI file's
    again = pd.read_csv(path, sep="\t").set_index(["marker", "measure", "raters"])["value"].sort_index()
    pd.testing.assert_series_equal(again, cli)  # and the dock rewrote the same file
    votes = read_round_votes(sub, PANEL)
    text = dock.kappa_label.text()
    for marker, vocab in (("prl", PRL_VOTES), ("cvs", CVS_VOTES)):
        wide = votes.pivot(index="lesion_id", columns="rater", values=marker)[PANEL]
        codes = wide.apply(lambda col: col.map({v: i for i, v in enumerate(vocab)})).to_numpy()
        fleiss = sm_fleiss(aggregate_raters(codes, n_cat=len(vocab))[0])
        assert shown[(marker, "fleiss_kappa", "ann;ben;cat")] == pytest.approx(fleiss, abs=1e-6)
        assert f"Fleiss' kappa <b>{fleiss:.3f}</b>" in text
        for a, b in (("ann", "ben"), ("ann", "cat"), ("ben", "cat")):
            ct = pd.crosstab(pd.Categorical(wide[a], vocab), pd.Categorical(wide[b], vocab), dropna=False)
            assert shown[(marker, "cohen_kappa", f"{a};{b}")] == pytest.approx(cohens_kappa(ct.to_numpy()).kappa,
                                                                            abs=1e-6)
    # one row per lesion, with each rater's answers; counts per rater and for the consensus
    assert dock.lesion_table.rowCount() == 12 and dock.counts_table.rowCount() == 4
    # a rater signing in (either round) blanks the dock
    rater_mode().set(viewer, True)
    try:
        assert dock.blinded and dock.lesion_table.rowCount() == 0 and dock.round_agreement is None
        assert not dock.run_button.isEnabled()
    finally:
        rater_mode().set(viewer, False)
