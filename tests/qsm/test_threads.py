"""The OpenMP wait policy the QSM package sets for its numba threads (napari_qsm_ms.qsm)."""

import os
import subprocess
import sys

import pytest

_PROBE = (
    "import os, numpy as np\n"
    "import napari_qsm_ms.qsm.gradients as g\n"
    "g.forward_gradient(np.ones((8, 8, 8), np.float32), (1.0, 1.0, 1.0))\n"  # OpenMP's runtime loads here
    "print(repr(os.environ.get('OMP_WAIT_POLICY')))\n"
    "print(any('gomp' in line or 'omp' in line.rsplit('/', 1)[-1] for line in open('/proc/self/maps')))\n"
)


def _probe(env_value):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_value is not None:
        env["OMP_WAIT_POLICY"] = env_value
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300,
                         check=True).stdout.split("\n")
    return out[0], out[1] == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_the_qsm_package_makes_openmp_threads_wait_passively_before_they_start():
    # set at import, before the first parallel kernel loads the OpenMP runtime (which reads it then)
    policy, runtime_loaded = _probe(None)
    assert policy == "'PASSIVE'"
    assert runtime_loaded  # the kernel ran on OpenMP threads, after the variable was set


@pytest.mark.parametrize("users", ["ACTIVE", "active"])
def test_a_wait_policy_the_user_set_is_left_as_it_is(users):
    policy, _ = _probe(users)
    assert policy == repr(users)
