"""The Examples sections of the roi modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["lesions", "references", "annotation", "study", "tissue", "vessels"]


@pytest.mark.parametrize("name", MODULES)
def test_module_examples(name):
    module = importlib.import_module(f"napari_qsm_ms.roi.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name in ("lesions", "references", "tissue"):
        assert result.attempted > 0
