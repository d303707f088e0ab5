"""The warm-up compiles every numba kernel of the package (checked in a fresh interpreter, where
nothing else has compiled them yet), so the first reconstruction after an install does not wait."""

import subprocess
import sys

CHECK = """
import importlib, pkgutil
from numba.core.registry import CPUDispatcher
import napari_qsm_ms
from napari_qsm_ms.qsm.warmup import compile_kernels
compile_kernels()
missing = []
for mod in pkgutil.walk_packages(napari_qsm_ms.__path__, 'napari_qsm_ms.'):
    if '_widgets' in mod.name or mod.name.endswith('__main__'):
        continue
    m = importlib.import_module(mod.name)
    for name, obj in vars(m).items():
        if not isinstance(obj, CPUDispatcher) or obj.__module__ != m.__name__:
            continue
        if obj.targetoptions.get('inline') != 'always' and not obj.signatures:
            missing.append(m.__name__ + '.' + name)
print(sorted(missing))
"""


def test_compile_kernels_compiles_every_numba_kernel_of_the_package():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_warmup_module_says_what_it_did():
    out = subprocess.run([sys.executable, "-m", "napari_qsm_ms.qsm.warmup"], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.strip().startswith("QSM kernels compiled (numba, cached on disk) in ")
