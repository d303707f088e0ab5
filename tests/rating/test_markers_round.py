"""The rim/vein reading round (rating/markers.py): files, vocabularies, consensus, kappas, CLI."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from napari_qsm_ms.cli import main
from napari_qsm_ms.errors import InputFileError, ParameterError, StudyLayoutError
from napari_qsm_ms.io.layout import StudyFiles, round_agreement_tsv, round_consensus_tsv, round_votes_tsv
from napari_qsm_ms.rating import markers as markers_mod
from napari_qsm_ms.rating.markers import (
    CVS_VOTES,
    PRL_VOTES,
    list_round_raters,
    marker_agreement,
    read_marker_votes_file,
    read_round_votes,
    reading_order,
    record_marker_vote,
    round_consensus,
)
from napari_qsm_ms.rating.votes import list_raters

from ._helpers import make_subject


def test_record_and_read_back_with_history(tmp_path):
    sub = make_subject(tmp_path, "01", n_lesions=3)
    record_marker_vote(sub, "ann", 2, prl="yes", timestamp="t1")
    record_marker_vote(sub, "ann", 2, cvs="excluded", cvs_exclusion="confluent", timestamp="t2")
    frame = read_marker_votes_file(round_votes_tsv(sub, "ann", "rim"))
    row = frame.set_index("lesion_id").loc[2]
    got = (row["prl"], row["cvs"], row["cvs_exclusion"], row["round"])
    assert got == ("yes", "excluded", "confluent", "rim")
    assert row["history"] == "yes//@t1"
    assert round_votes_tsv(sub, "ann", "rim").name == "sub-01_rater-ann_round-rim_votes.tsv"
    # the class round does not see the marker round's files, and vice versa
    assert list_raters(sub) == [] and list_round_raters(sub) == ["ann"]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(prl="maybe"), "PRL"),
        (dict(cvs="present", cvs_exclusion="small"), "only given"),
        (dict(cvs="excluded"), "needs a reason"),
        (dict(cvs="excluded", cvs_exclusion="blurry"), "needs a reason"),
    ],
)
def test_bad_answers_are_refused(tmp_path, kwargs, match):
    sub = make_subject(tmp_path, "01", n_lesions=1)
    with pytest.raises(ParameterError, match=match):
        record_marker_vote(sub, "ann", 1, **kwargs)
    assert not round_votes_tsv(sub, "ann", "rim").exists()


def test_bad_files_one_line_errors(tmp_path):
    p = tmp_path / "v.tsv"
    p.write_text("lesion_id\tround\tprl\n1\trim\tyes\n1\trim\tno\n")
    with pytest.raises(InputFileError, match="twice"):
        read_marker_votes_file(p)
    p.write_text("lesion_id\tround\tcvs\n1\tother\tpresent\n")
    with pytest.raises(InputFileError, match="round"):
        read_marker_votes_file(p)
    # a spreadsheet export
    p.write_text("Lesion_ID,PRL,CVS,CVS_exclusion\r\n1,Yes,Excluded,multiple veins\r\n")
    row = read_marker_votes_file(p).iloc[0]
    assert (row["prl"], row["cvs"], row["cvs_exclusion"]) == ("yes", "excluded", "multiple_veins")
    with pytest.raises(StudyLayoutError):
        round_votes_tsv(make_subject(tmp_path, "02", n_lesions=1), "ann", "class")


def test_reading_order_is_shuffled_per_rater_and_reproducible():
    ids = list(range(1, 21))
    a = reading_order("01", "ann", ids)
    assert sorted(a) == ids and a == reading_order("01", "ann", ids)
    assert a != reading_order("01", "ben", ids) and a != ids


def _random_round(tmp_path, seed, n=25):
    rng = np.random.default_rng(seed)
    sub = make_subject(tmp_path, "01", n_lesions=n)
    truth_p = rng.choice(PRL_VOTES, n, p=[0.3, 0.6, 0.1])
    truth_c = rng.choice(CVS_VOTES, n, p=[0.5, 0.4, 0.1])
    for rater in ("ann", "ben", "cat"):
        for lid in range(1, n + 1):
            p = truth_p[lid - 1] if rng.random() < 0.8 else rng.choice(PRL_VOTES)
            c = truth_c[lid - 1] if rng.random() < 0.75 else rng.choice(CVS_VOTES)
            record_marker_vote(sub, rater, lid, prl=str(p), cvs=str(c),
                               cvs_exclusion="small" if c == "excluded" else "")
    return sub


@pytest.mark.parametrize("seed", range(3))
def test_kappas_equal_statsmodels(tmp_path, seed):
    sub = _random_round(tmp_path, seed)
    votes = read_round_votes(sub)
    panel = ["ann", "ben", "cat"]
    table = marker_agreement(votes, panel).set_index(["marker", "measure", "raters"])
    for marker, vocab in (("prl", PRL_VOTES), ("cvs", CVS_VOTES)):
        wide = votes.pivot(index="lesion_id", columns="rater", values=marker)[panel]
        codes = wide.apply(lambda col: col.map({v: i for i, v in enumerate(vocab)})).to_numpy()
        counts, _ = aggregate_raters(codes, n_cat=len(vocab))
        fk = table.loc[(marker, "fleiss_kappa", "ann;ben;cat"), "value"]
        assert fk == pytest.approx(sm_fleiss(counts), abs=1e-6)
        for a, b in (("ann", "ben"), ("ann", "cat"), ("ben", "cat")):
            ct = pd.crosstab(pd.Categorical(wide[a], vocab), pd.Categorical(wide[b], vocab), dropna=False)
            ct = ct.to_numpy()
            expected = cohens_kappa(ct).kappa
            ck = table.loc[(marker, "cohen_kappa", f"{a};{b}"), "value"]
            assert ck == pytest.approx(expected, abs=1e-6)


def test_consensus_majority_and_disputes(tmp_path):
    sub = make_subject(tmp_path, "01", n_lesions=2)
    for rater, p, c in (("ann", "yes", "present"), ("ben", "yes", "absent"), ("cat", "no", "excluded")):
        record_marker_vote(sub, rater, 1, prl=p, cvs=c, cvs_exclusion="small" if c == "excluded" else "")
    record_marker_vote(sub, "ann", 2, prl="uncertain")
    cons = round_consensus(read_round_votes(sub), ["ann", "ben", "cat"]).set_index(["lesion_id", "marker"])
    assert cons.loc[(1, "prl"), "value"] == "yes" and cons.loc[(1, "prl"), "votes"] == "yes:2;no:1"
    assert cons.loc[(1, "cvs"), "value"] == "disputed"
    assert cons.loc[(2, "prl"), "value"] == "disputed" and cons.loc[(2, "cvs"), "n_votes"] == 0


def test_cli_consensus_round(tmp_path, capsys):
    sub = _random_round(tmp_path, 7, n=8)
    assert main(["consensus", str(sub.study), "--round", "rim"]) == 0
    out = capsys.readouterr().out
    assert "sub-01: 8 lesions: PRL" in out
    assert "prl fleiss_kappa [ann, ben, cat]" in out and "cvs cohen_kappa [ann, ben]" in out
    assert round_consensus_tsv(sub, "rim").exists()
    written = pd.read_csv(round_agreement_tsv(StudyFiles.at(sub.study), "rim"), sep="\t")
    assert set(written["marker"]) == {"prl", "cvs"}
    # the class round is untouched by the marker round
    assert not StudyFiles.at(sub.study).agreement_tsv.exists()


def test_module_examples():
    result = doctest.testmod(markers_mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


# --- the round's view: linked orthogonal planes and the session (rating/orthogonal.py) -----------
from napari_qsm_ms.rating import orthogonal as orthogonal_mod  # noqa: E402
from napari_qsm_ms.rating.orthogonal import (  # noqa: E402
    GAP_PX,
    PLANES,
    PlaneGrid,
    mosaic_row,
    panel_at,
    panel_voxel,
    plane_cut,
    step_point,
)


@pytest.mark.parametrize("vs", [(1.0, 1.0, 1.0), (0.47, 0.47, 1.0), (0.6, 0.8, 1.5)])
@pytest.mark.parametrize("ppv", [1, 3])
def test_planes_cross_at_the_point_and_map_back(vs, ppv):
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(40, 44, 30))
    grid = PlaneGrid(vs, fov_mm=20.0, pixels_per_voxel=ppv)
    point = (20, 21, 14)
    # the panel keeps true proportions: fov_mm of tissue along both screen axes, whatever the voxel
    assert abs((grid.n - 1) * grid.pixel_mm - 20.0) <= grid.pixel_mm * 2
    for plane in PLANES:
        cut = plane_cut(vol, point, plane, grid, fill=np.nan)
        assert cut.shape == (grid.n, grid.n)
        assert cut[grid.n // 2, grid.n // 2] == vol[point]  # every plane passes through the point
        for r, c in rng.integers(0, grid.n, size=(40, 2)):
            voxel = panel_voxel(grid, point, plane, r, c)  # the way back
            inside = all(0 <= v < s for v, s in zip(voxel, vol.shape))
            assert cut[r, c] == vol[voxel] if inside else np.isnan(cut[r, c])
    row = mosaic_row(vol, point, grid)
    assert row.shape == (grid.n, 3 * grid.n + 2 * GAP_PX)
    assert panel_at(grid, 3, grid.n + GAP_PX + 5) == ("coronal", 3, 5)
    assert panel_at(grid, 3, grid.n + 1) is None  # in the gap


def test_planes_follow_radiological_convention():
    vol = np.zeros((9, 9, 9))
    grid = PlaneGrid((1.0, 1.0, 1.0), fov_mm=8.0)
    point = (4, 4, 4)
    vol[8, 4, 4] = 1  # patient's right (RAS+: x grows to the right) ...
    vol[4, 8, 4] = 2  # ... anterior ...
    vol[4, 4, 8] = 3  # ... superior
    ax, cor, sag = (plane_cut(vol, point, p, grid) for p in PLANES)
    assert ax[4, 0] == 1 and ax[0, 4] == 2  # axial: right on the left, anterior up
    assert cor[4, 0] == 1 and cor[0, 4] == 3  # coronal: right on the left, superior up
    assert sag[4, 0] == 2 and sag[0, 4] == 3  # sagittal: anterior on the left, superior up
    assert step_point(point, "axial", 2, vol.shape) == (4, 4, 6)
    assert step_point(point, "sagittal", -9, vol.shape) == (0, 4, 4)  # kept inside


def test_orthogonal_examples():
    result = doctest.testmod(orthogonal_mod)
    assert result.failed == 0 and result.attempted > 0


def test_prepare_round_canonical_flair_star_and_nothing_measured(tmp_path):
    from napari_qsm_ms.io.nifti import save_volume
    from napari_qsm_ms.rating.markers import prepare_round
    from napari_qsm_ms.registration.flair_star import subject_flair_star

    from ._helpers import make_phantom_subject

    sub, ph = make_phantom_subject(tmp_path / "a", n_lesions=(3, 1, 1))
    session = prepare_round(sub, "ann")
    titles = [t for t, _, _ in session.contrasts]
    assert titles == ["QSM (ppm)", "T2* magnitude", "FLAIR*"]
    star = session.contrasts[2][1]
    np.testing.assert_allclose(star, subject_flair_star(sub).data, rtol=1e-6)
    low, high = session.contrasts[2][2]  # the lesions, bright on FLAIR*, are not saturated
    assert low < high and high >= np.percentile(star[session.lesions > 0], 99) - 1e-6
    # the session holds images, the rater's own answers and nothing measured on QSM
    fields = set(vars(session))
    assert not {f for f in fields if "score" in f or "suggest" in f or "rim" in f}
    assert sorted(session.order) == sorted(session.centres) and set(session.centres) == set(range(1, 6))
    for lid, centre in session.centres.items():
        assert session.lesions[centre] == lid
    # the same subject stored left-right and anterior-posterior flipped gives the same canonical view
    flip = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ph.affine
    flip[:3, 3] = ph.affine[:3, :3] @ (np.array(ph.chi_ppm.shape) - 1) * [1, 1, 0] + ph.affine[:3, 3]
    sub2, _ = make_phantom_subject(tmp_path / "b", n_lesions=(3, 1, 1))
    for path in (sub2.magnitude, sub2.chimap, sub2.lesions, sub2.coreg_series("flair"), sub2.brain_mask):
        from napari_qsm_ms.io.nifti import load_volume

        vol = load_volume(path, dtype=None)
        save_volume(path, np.asarray(vol.data)[::-1, ::-1], flip)
    other = prepare_round(sub2, "ann")
    for (_, a, _), (_, b, _) in zip(session.contrasts, other.contrasts):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert other.centres == session.centres
    # FLAIR missing: the round runs without FLAIR*
    sub2.coreg_series("flair").unlink()
    assert [t for t, _, _ in prepare_round(sub2, "ann").contrasts] == ["QSM (ppm)", "T2* magnitude"]
