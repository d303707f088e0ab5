"""The simulator's modules import in one direction: head model <- MNI, lesions <- phantom (no cycle)."""

import ast
from pathlib import Path

import napari_qsm_ms.simulate as simulate

PKG = Path(simulate.__file__).parent


def _local_imports(module: str) -> set[str]:
    tree = ast.parse((PKG / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_simulate_modules_have_no_import_cycle():
    graph = {p.stem: _local_imports(p.stem) for p in PKG.glob("*.py") if p.stem != "__init__"}
    for start in graph:
        stack, seen = [start], set()
        while stack:
            for nxt in graph.get(stack.pop(), ()):
                assert nxt != start, f"import cycle through simulate.{start} and simulate.{nxt}"
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)


def test_public_names_stay_importable_from_phantom():
    from napari_qsm_ms.simulate import phantom

    for name in ("HeadModel", "Lesion", "Vein", "TABLE3_PPM", "LESION_CLASSES", "CORTEX", "WM", "make_phantom"):
        assert hasattr(phantom, name)
