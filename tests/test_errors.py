import errno

import pytest

from napari_qsm_ms.errors import InputFileError, ParameterError, one_line


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (InputFileError("/data/sub-01_phase.nii.gz", "contains 3 NaN values"),
         "/data/sub-01_phase.nii.gz: contains 3 NaN values"),
        (ParameterError("first line\n  second   line\n"), "first line second line"),
        (OSError(errno.ENOSPC, "No space left on device", "/out/chi.nii.gz"), "/out/chi.nii.gz: No space left on device"),
        (OSError("plain"), "plain"),
        (RuntimeError(""), "RuntimeError"),
    ],
)
def test_one_line_names_the_file_and_never_breaks_the_line(exc, expected):
    text = one_line(exc)
    assert text == expected and "\n" not in text
