"""Relative susceptibility of MS lesions, the paper's statistics, figures and the study report.

* :func:`~napari_qsm_ms.stats.lesions.relative_susceptibility`: per lesion part, from arrays.
* :func:`~napari_qsm_ms.stats.tests.paper_tests`: Table 3 (six one-sample t-tests, Bonferroni).
* :func:`~napari_qsm_ms.stats.model.mixed_model`, :func:`~napari_qsm_ms.stats.model.bootstrap_means`.
* :func:`~napari_qsm_ms.stats.study.run_study_stats`: the whole study (``qsm-ms stats``).
"""
