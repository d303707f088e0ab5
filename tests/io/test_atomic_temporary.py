"""The one rule for recognising atomic_path's temporaries (what qsm-ms run cleans after a kill)."""

import pytest

from napari_qsm_ms.io.atomic import atomic_path, is_atomic_temporary


@pytest.mark.parametrize("final", ["sub-01_Chimap.nii.gz", "lesions.tsv", "record.json", "noext"])
def test_the_temporary_atomic_path_makes_is_recognised(tmp_path, final):
    with atomic_path(tmp_path / final) as tmp:
        tmp.write_bytes(b"x")
        assert is_atomic_temporary(tmp.name)
    assert not is_atomic_temporary(final)


@pytest.mark.parametrize("name", [".gitignore", ".autosave", ".sub-01_Chimap.nii.gz",
                                  "sub-01.abcdefgh.nii.gz", ".x.ABCDEFGH.tsv", ".x.abcdefgh.json.bak"])
def test_other_names_are_not_temporaries(name):
    assert not is_atomic_temporary(name)
