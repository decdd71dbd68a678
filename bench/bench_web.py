"""HTTP figures of one `gcx serve` process next to a bare Litestar app, measured with wrk.

    python bench/bench_web.py [--duration 15] [--connections 16] [--quick]

Both servers run under the same uvicorn (httptools, uvloop) in their own process; wrk runs one
thread with 16 connections. GCX is the real embedded mode: SQLite, the in-process worker
delivering every notification to the capture outbox while the submissions come in, 3 staff
users (4 outbox rows per submission), rate limits on but raised out of the way (the defaults
would stop one client at 10 submissions a minute; counting still costs what it costs). The
bare app (bare_app.py) has GCX's middleware stack and handlers that do no GCX work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

sys.path.insert(0, str(HERE))

from common import emit, free_port  # noqa: E402

from gcx_core.samples import make_submission  # noqa: E402

RAISED_LIMITS = "submit=100000000/minute,lookup=100000000/minute,upload=100000000/minute"


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def prepare(data_dir: Path) -> None:
    from gcx_core.entities import Actor, Role
    from gcx_core.services.accounts import create_user
    from gcx_core.settings import Settings
    from gcx_core.system import Gcx

    async def run() -> None:
        disabled = os.environ.get("GCX_DISABLE_PLUGINS", "")
        settings = Settings(
            data_dir=data_dir,
            secret_key="bench-secret",
            disabled_plugins=tuple(d for d in disabled.split(",") if d),
        )
        async with await Gcx.open(settings, migrate=True) as gcx:
            for i in range(3):
                await create_user(
                    gcx, f"reviewer{i}@bench.example", Role.REVIEWER, Actor.system("bench")
                )

    asyncio.run(run())


def wrk(
    url: str, script: str, duration: int, connections: int, env: dict[str, str]
) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(HERE / "wrk" / script),
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    result = {"rate": rate, "non2xx": float(errors.group(1)) if errors else 0.0}
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(match.group(1)), match.group(2)  # type: ignore[union-attr]
        result[f"p{pct}"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    result["socket_errors"] = 1.0 if socket_errors else 0.0
    return result


def serve(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_port(port, proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def undelivered(database: Path) -> int:
    """Notifications in the outbox not yet delivered (nor given up on)."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        (n,) = db.execute(
            "SELECT count(*) FROM notifications WHERE status IN ('pending', 'sending', 'retrying')"
        ).fetchone()
        return int(n)


def wait_for_deliveries(database: Path, timeout: float = 600) -> tuple[int, float]:
    """Wait until the in-process worker has delivered everything the POST run queued, so the
    GET figure is not measured against a delivery backlog. Returns (backlog, seconds)."""
    started = time.monotonic()
    backlog = undelivered(database)
    while undelivered(database) and time.monotonic() - started < timeout:
        time.sleep(0.5)
    return backlog, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="5 s per figure")
    args = parser.parse_args()
    if args.quick:
        args.duration = 5
    if shutil.which("wrk") is None:
        print("bench_web needs wrk (apt-get install -y wrk)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="gcx-bench-web-"))
    data_dir = work / "data"
    prepare(data_dir)
    port, bare_port = free_port(), free_port()
    gcx_env = {
        "GCX_DATA_DIR": str(data_dir),
        "GCX_SECRET_KEY": "bench-secret",
        "GCX_RATE_LIMITS": RAISED_LIMITS,
        "GCX_BASE_URL": f"http://127.0.0.1:{port}",
        **(
            {"GCX_DISABLE_PLUGINS": os.environ["GCX_DISABLE_PLUGINS"]}
            if "GCX_DISABLE_PLUGINS" in os.environ
            else {}
        ),
    }
    gcx = serve([sys.executable, "-m", "gcx_core.cli", "serve", "--port", str(port)], gcx_env, port)
    bare: subprocess.Popen[bytes] | None = None
    results: dict[str, dict[str, float]] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as client:
            codes = [
                client.post("/api/v1/applications", json=make_submission()).json()["tracking_code"]
                for _ in range(500)
            ]
            status_body = client.get(f"/api/v1/applications/{codes[0]}").text
        (work / "codes.txt").write_text("\n".join(codes) + "\n")
        bare = serve(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bare_app:app",
                "--port",
                str(bare_port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--no-server-header",
            ],
            {"PYTHONPATH": str(HERE), "BARE_STATUS_BODY": status_body},
            bare_port,
        )
        bare_base = f"http://127.0.0.1:{bare_port}"
        env = {"BENCH_RUN": "G", "BENCH_CODES": str(work / "codes.txt")}
        bare_env = {"BENCH_RUN": "B", "BENCH_CODES": str(work / "codes.txt")}
        # Each GCX figure is followed at once by the bare one, so that both see the same
        # machine (a shared VM's speed drifts by 10-30% over minutes). The idle server uses
        # no CPU meanwhile; GCX's delivery backlog is finished before the bare POST run.
        results["gcx POST"] = wrk(base, "post.lua", args.duration, args.connections, env)
        backlog, drained_in = 0, 0.0
        if "gcx_notify" not in os.environ.get("GCX_DISABLE_PLUGINS", ""):
            backlog, drained_in = wait_for_deliveries(data_dir / "gcx.db")
        results["bare POST"] = wrk(bare_base, "post.lua", args.duration, args.connections, bare_env)
        results["gcx GET"] = wrk(base, "get.lua", args.duration, args.connections, env)
        results["bare GET"] = wrk(bare_base, "get.lua", args.duration, args.connections, bare_env)
    finally:
        stop(gcx)
        if bare is not None:
            stop(bare)
    shutil.rmtree(work, ignore_errors=True)
    print(f"{args.connections} connections, {args.duration} s each, one wrk thread")
    print(f"{'':10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'of bare':>8}")
    for name, r in results.items():
        method = name.split()[1]
        share = r["rate"] / results[f"bare {method}"]["rate"]
        print(
            f"{name:10} {r['rate']:9,.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['non2xx']:8.0f}"
            f" {share:8.1%}"
        )
    if backlog:
        print(
            f"after the POST run {backlog:,} notifications were still to deliver; "
            f"the process delivered them in {drained_in:.1f} s before the GET run"
        )
    emit(
        {
            "submit": {"gcx": results["gcx POST"], "bare": results["bare POST"]},
            "lookup": {"gcx": results["gcx GET"], "bare": results["bare GET"]},
            "after_submit": {"backlog": backlog, "seconds": drained_in},
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
