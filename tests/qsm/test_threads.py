"""How long idle OpenMP threads spin, as the QSM package sets it for its numba kernels (napari_qsm_ms.qsm)."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")

_PROBE = (
    "import os, numpy as np\n"
    "import napari_qsm_ms.qsm.gradients as g\n"
    "print(any('gomp' in line.rsplit('/', 1)[-1] for line in open('/proc/self/maps')))\n"
    "g.forward_gradient(np.ones((8, 8, 8), np.float32), (1.0, 1.0, 1.0))\n"  # OpenMP's runtime loads here
    "print(repr(os.environ.get('GOMP_SPINCOUNT')), repr(os.environ.get('OMP_WAIT_POLICY')))\n"
    "print(any('gomp' in line.rsplit('/', 1)[-1] for line in open('/proc/self/maps')))\n"
)


def _probe(**users):
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update(users)
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300,
                         check=True).stdout.split("\n")
    return out[1], out[0] == "True", out[2] == "True"


def test_the_qsm_package_shortens_the_openmp_spin_before_the_runtime_loads():
    from napari_qsm_ms.qsm import OPENMP_SPIN_COUNT

    variables, loaded_at_import, loaded_after_kernel = _probe()
    assert variables == f"'{OPENMP_SPIN_COUNT}' None"
    # libgomp (numba's OpenMP layer here) reads the variable when it loads: not at the package's import,
    # which sets it, but at the first parallel kernel
    assert not loaded_at_import and loaded_after_kernel


@pytest.mark.parametrize("users, expected", [
    (dict(GOMP_SPINCOUNT="1000"), "'1000' None"),
    (dict(OMP_WAIT_POLICY="ACTIVE"), "None 'ACTIVE'"),  # GOMP_SPINCOUNT would override the user's policy
    (dict(OMP_WAIT_POLICY="PASSIVE"), "None 'PASSIVE'"),
])
def test_a_spin_setting_the_user_made_is_left_as_it_is(users, expected):
    assert _probe(**users)[0] == expected
