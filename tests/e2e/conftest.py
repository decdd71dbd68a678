"""End-to-end: a real `gcx serve` process driven by Debian's chromium through playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gcx_core.testing import unavailable
from gcx_core.testing.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GCX_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(name="artifacts")
def _artifacts(request: pytest.FixtureRequest) -> Path:
    """Screenshots go to test-artifacts/<test name>/ (GCX_ARTIFACTS_DIR overrides the root)."""
    root = Path(os.environ.get("GCX_ARTIFACTS_DIR", ROOT / "test-artifacts"))
    folder = root / request.node.name.replace("/", "_")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


class Server:
    def __init__(self, url: str, data_dir: Path, proc: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.data_dir = data_dir
        self.proc = proc


@pytest.fixture(name="server")
def _server(tmp_path: Path) -> Iterator[Server]:
    with start_server(tmp_path) as server:
        yield server


@contextlib.contextmanager
def start_server(tmp_path: Path) -> Iterator[Server]:
    """`gcx serve` on a free port with its own data directory, until the block ends."""
    port = free_port()
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "GCX_DATA_DIR": str(data_dir),
        "GCX_BASE_URL": f"http://127.0.0.1:{port}",
        "GCX_RATE_LIMITS": "off",
        "GCX_SECRET_KEY": "e2e-secret-key-not-for-production",
    }
    env.pop("GCX_DATABASE_URL", None)
    env.pop("GCX_REDIS_URL", None)
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gcx_core.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError((tmp_path / "server.log").read_text()) from None
            time.sleep(0.1)
    try:
        yield Server(f"http://127.0.0.1:{port}", data_dir, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(name="browser")
def _browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        unavailable(f"no chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()
