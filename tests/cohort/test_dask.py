"""``qsm-ms run`` on a Dask cluster (a LocalCluster of 2 workers) gives the serial outputs.

The workers are threads of this process: they start in a fraction of a second and close cleanly.
(Worker *processes* that ran recon and coregister do not exit on their own within the nanny's 4 s
and are killed by it; benchmarks/bench_cohort.py runs the process kind through ``--scheduler``.)
"""

from __future__ import annotations

import pytest

from napari_qsm_ms.cohort.run import run_study

from ._study import FAST, SUBJECT_AND_AGREEMENT, copy_study
from .test_run import _assert_same

distributed = pytest.importorskip("distributed")


@pytest.fixture
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        yield client


def test_local_cluster_outputs_equal_the_serial_run(cluster, serial, pristine, tmp_path):
    study = copy_study(pristine, tmp_path / "study")
    events = []
    result = run_study(study.root, params=FAST, only=SUBJECT_AND_AGREEMENT, client=cluster,
                       on_event=events.append)
    assert result.ok, result.failures
    assert result.dashboard and result.dashboard.startswith("http")
    workers = {t.worker for t in result.subjects}
    assert len(result.subjects) == 3 and all(t.ran == ["recon", "coregister", "consensus", "rois"]
                                               for t in result.subjects)
    assert {ev.subject for ev in events} >= {"01", "02", "03"}  # per-subject progress from the workers
    assert workers  # host:pid of the worker that ran each subject
    _assert_same(serial, study)
