"""Issue 11 in the statistics: reference_roi column, the report's reference file, radiological panels."""

from __future__ import annotations

from napari_qsm_ms.stats.figures import roi_panel_figure
from napari_qsm_ms.stats.study import compute_study

from .conftest import write_subject


def test_reference_roi_column_and_file_of_a_disputed_cortical_lesion(tmp_path):
    """Lesion 2 is on cortex but disputed: measured against refgm, and the report must say refgm
    (c0d90eb named refwm: it re-derived the file from the class)."""
    sub = write_subject(tmp_path, classes=("wm", "disputed", "mixed"))
    rows = compute_study(tmp_path, n_resamples=10).lesions.set_index(["lesion_id", "part"])
    assert rows.loc[(2, "whole"), "reference_roi"] == "refgm"
    assert rows.loc[(2, "whole"), "reference_file"].endswith(sub.refgm.name)
    assert rows.loc[(2, "whole"), "reference_voxels"] > 0
    assert rows.loc[(1, "whole"), "reference_roi"] == "refwm"
    assert rows.loc[(3, "wm"), "reference_roi"] == "refwm"
    assert rows.loc[(3, "cortical"), "reference_roi"] == "refgm"
    for (_, _), r in rows.iterrows():
        assert r["reference_file"].endswith(f"desc-{r['reference_roi']}_dseg.nii.gz")


def test_report_panel_is_radiological_with_labelled_sides(tmp_path):
    sub = write_subject(tmp_path)
    fig = roi_panel_figure(sub, 1)
    for ax in fig.axes:
        x0, x1 = ax.get_xlim()
        assert x0 > x1  # canonical x runs toward the patient's right: right is drawn on the left
        texts = {t.get_text(): t.get_position()[0] for t in ax.texts}
        assert texts["R"] < texts["L"]
    assert "radiological" in fig._suptitle.get_text()


def test_bonferroni_count_and_alpha_are_read_from_one_definition(tmp_path):
    from napari_qsm_ms.stats import tests

    write_subject(tmp_path)
    params = compute_study(tmp_path, n_resamples=10).parameters
    assert params["bonferroni_comparisons"] == tests.N_COMPARISONS and params["alpha"] == tests.ALPHA
