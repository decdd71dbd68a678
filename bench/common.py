"""What the benchmark scripts share: how they hand their figures to run.py."""

from __future__ import annotations

import json
import socket
from typing import Any

RESULT = "BENCH-RESULT "


def emit(figures: dict[str, Any]) -> None:
    """Print the script's figures on one line that run.py reads (after the human-readable ones)."""
    print(RESULT + json.dumps(figures), flush=True)


def read_results(output: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith(RESULT):
            found.update(json.loads(line[len(RESULT) :]))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
