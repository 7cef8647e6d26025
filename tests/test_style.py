"""Style is part of the test suite so it cannot drift: ruff and cython-lint."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "--no-cache", "."],
        ["cython-lint", "sgmca_fast/_starlet.pyx"],
    ],
)
def test_style(command):
    if shutil.which(command[0]) is None:
        pytest.fail(f"{command[0]} is not installed: pip install '.[test]'")
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
