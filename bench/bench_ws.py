"""Live dashboard at scale: 1,000 websockets on one `gcx serve` process.

    python bench/bench_ws.py [--sockets 1000] [--events 20] [--applications 1000000]

Seeds the embedded database (`--applications`, default 1M; `--quick` uses 100k), starts
`gcx serve`, signs a staff user in, opens the sockets and measures:

- time to the first dashboard message (the snapshot) after each socket opens;
- for each event (a workflow action made through the staff API), the delay until every socket
  has received it, and whether any socket missed it;
- the server's resident memory with every socket open.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_web import serve, stop  # noqa: E402

from gcx_core.testing.servers import free_port  # noqa: E402

PASSWORD = "correct horse battery staple"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def prepare(data_dir: Path, applications: int) -> str:
    """Seed (unless `applications` is 0) and add the staff user the bench signs in as."""
    from gcx_core.context import Gcx
    from gcx_core.entities import Actor, Role
    from gcx_core.seed import seed_demo
    from gcx_core.services.accounts import create_user
    from gcx_core.settings import Settings

    settings = Settings(data_dir=data_dir, secret_key="bench-secret")
    async with await Gcx.open(settings, migrate=True) as gcx:
        if applications:
            await seed_demo(settings, applications, progress=sys.stderr.isatty())
        email = f"bench-{time.time_ns()}@staff.example"
        await create_user(gcx, email, Role.REVIEWER, Actor.system("bench"), password=PASSWORD)
        return email


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]


async def run(args: argparse.Namespace) -> int:
    import websockets

    work = Path(tempfile.mkdtemp(prefix="gcx-bench-ws-"))
    if args.data_dir:
        # An already seeded data directory (gcx seed-demo), kept between runs.
        data_dir = args.data_dir
        email = await prepare(data_dir, 0)
    else:
        data_dir = work / "data"
        print(f"seeding {args.applications:,} applications...", flush=True)
        started = time.monotonic()
        email = await prepare(data_dir, args.applications)
        print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "GCX_DATA_DIR": str(data_dir),
        "GCX_SECRET_KEY": "bench-secret",
        "GCX_RATE_LIMITS": "off",
        "GCX_BASE_URL": base,
    }
    if args.server_port:  # a server started elsewhere on this data directory (profiling)
        port = args.server_port
        base = f"http://127.0.0.1:{port}"
        proc = None
    else:
        proc = serve(
            [sys.executable, "-m", "gcx_core.cli", "serve", "--port", str(port)], env, port
        )
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            page = await http.get("/login")
            token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            await http.post(
                "/login",
                data={"_csrf_token": token, "email": email, "password": PASSWORD},
            )
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
            csrf = http.cookies["gcx_csrf"]
            listed = await http.get(
                "/api/v1/staff/applications",
                params={"status": "pending_review", "per_page": args.events},
            )
            if listed.status_code != 200:
                raise RuntimeError(f"listing failed: {listed.status_code} {listed.text[:300]}")
            pending = listed.json()["items"]
            headers = {"Cookie": cookie, "Origin": base}
            first: list[float] = []
            totals: list[int] = []
            sockets = []

            async def connect() -> None:
                ws = await websockets.connect(
                    f"ws://127.0.0.1:{port}/ws/dashboard",
                    additional_headers=headers,
                    max_size=2**22,
                )
                opened = time.perf_counter()
                message = json.loads(await ws.recv())
                first.append((time.perf_counter() - opened) * 1000)
                assert message["type"] == "dashboard"
                totals.append(message["data"]["total"])
                sockets.append(ws)

            for start in range(0, args.sockets, 50):
                await asyncio.gather(*(connect() for _ in range(min(50, args.sockets - start))))
            print(f"{len(sockets)} sockets open", flush=True)

            delays: list[float] = []
            posts: list[float] = []
            missed = 0
            for app in pending[: args.events]:
                arrived: list[float] = []

                async def wait_for(
                    ws: object, app_id: int = app["id"], arrived: list[float] = arrived
                ) -> None:
                    while True:
                        message = json.loads(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[attr-defined]
                        changes = (
                            message["data"].get("changes", [])
                            if message["type"] == "dashboard"
                            else []
                        )
                        if any(c["application_id"] == app_id for c in changes):
                            arrived.append(time.perf_counter())
                            return

                waiters = [asyncio.create_task(wait_for(ws)) for ws in sockets]
                sent = time.perf_counter()
                response = await http.post(
                    f"/api/v1/staff/applications/{app['id']}/actions/start_review",
                    json={"version": app["version"]},
                    headers={"x-csrftoken": csrf},
                )
                response.raise_for_status()
                posts.append((time.perf_counter() - sent) * 1000)
                results = await asyncio.gather(*waiters, return_exceptions=True)
                missed += sum(1 for r in results if isinstance(r, BaseException))
                delays.extend((t - sent) * 1000 for t in arrived)
                await asyncio.sleep(0.2)
                for ws in sockets:  # drop anything else that arrived before the next event
                    while True:
                        try:
                            await asyncio.wait_for(ws.recv(), 0.001)
                        except TimeoutError:
                            break
            memory = rss_mb(proc.pid) if proc is not None else 0.0
            for ws in sockets:
                await ws.close()
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    print(f"applications stored: {max(totals):,}; sockets: {args.sockets}; events: {args.events}")
    print(
        f"first dashboard message after open: median {statistics.median(first):.2f} ms, "
        f"p99 {percentile(first, 99):.2f} ms"
    )
    print(
        f"event to every socket: median {statistics.median(delays):.1f} ms, "
        f"p99 {percentile(delays, 99):.1f} ms, max {max(delays):.1f} ms"
    )
    print(f"deliveries: {len(delays):,} received, {missed} missed")
    print(f"the action's own request (POST to response): median {statistics.median(posts):.1f} ms")
    print(f"server RSS with every socket open: {memory:.0f} MB")
    return 0 if missed == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--applications", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100k applications")
    parser.add_argument("--server-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--data-dir", type=Path, help="use this seeded data directory (GCX_SECRET_KEY=bench-secret)"
    )
    args = parser.parse_args()
    if args.quick:
        args.applications = 100_000
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
