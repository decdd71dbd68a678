"""The examples run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_custom_workflow_example():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples/custom_workflow/on_hold.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "is On hold" in result.stdout
    assert "cashew suppliers need an export licence" in result.stdout
