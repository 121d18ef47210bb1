"""A short, bounded run of the atheris fuzz target (fuzz/fuzz_protocol.py), when atheris is here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET = REPO_ROOT / "fuzz" / "fuzz_protocol.py"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed (pip install atheris) - the fuzz smoke run is skipped",
)


def test_fuzz_target_short_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(TARGET), "-runs=20000", "-seed=1",
         f"-artifact_prefix={tmp_path}/"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Done 20000 runs" in output, output[-4000:]
    assert not list(tmp_path.glob("crash-*")), output[-4000:]
