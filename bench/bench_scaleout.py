"""The scale-out shape on this machine: 2 `gcx web`, 2 `gcx worker`, PostgreSQL, Redis.

    python bench/bench_scaleout.py [--duration 15] [--sockets 2000] [--quick]

PostgreSQL and Redis are private servers started from this machine's binaries. Figures:
submissions/s and p99 with 16 connections (two wrk processes, 8 connections to each web
process), status lookups/s the same way, emails/s end to end (from the first submission to
the last message accepted by an aiosmtpd sink, four messages per submission), and the
live-update fan-out: `--sockets` staff dashboards split over both web processes, each staff
action (made on either process) timed from the change to its arrival on every socket.
The embedded mode's figures (bench_web.py, bench_notify.py, bench_ws.py) sit beside these in
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_web import RAISED_LIMITS, wait_for_port, wrk  # noqa: E402
from bench_ws import PASSWORD, open_socket, percentile  # noqa: E402
from common import emit, free_port  # noqa: E402

from gcx_core.samples import make_submission  # noqa: E402
from gcx_core.testing.servers import postgres_server, redis_server  # noqa: E402


def gcx(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gcx_core.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def prepare(env: dict[str, str]) -> str:
    from gcx_core.entities import Actor, Role
    from gcx_core.services.accounts import create_user
    from gcx_core.settings import Settings
    from gcx_core.system import Gcx

    settings = Settings.from_env(env)
    async with await Gcx.open(settings, migrate=True) as gcx_:
        # Three reviewers: every submission queues four messages, as in the embedded bench.
        for n in range(3):
            await create_user(
                gcx_, f"r{n}@staff.example", Role.REVIEWER, Actor.system("b"), password=PASSWORD
            )
        return "r0@staff.example"


async def outbox(env: dict[str, str]) -> dict[str, int]:
    import sqlalchemy as sa

    from gcx_core.settings import Settings
    from gcx_core.storage.database import Database
    from gcx_core.storage.tables import notifications

    db = Database.from_url(Settings.from_env(env).resolved_database_url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                sa.select(notifications.c.status, sa.func.count()).group_by(notifications.c.status)
            )
            return {str(s): int(n) for s, n in rows}
    finally:
        await db.dispose()


def both(ports: list[int], script: str, duration: int, env: dict[str, str]) -> dict[str, float]:
    """wrk against each web process at once (8 connections each); the rates add up."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(ports)) as pool:
        runs = [
            pool.submit(
                wrk,
                f"http://127.0.0.1:{port}",
                script,
                duration,
                8,
                {**env, "BENCH_RUN": f"{env['BENCH_RUN']}{i}"},
            )
            for i, port in enumerate(ports)
        ]
        results = [r.result() for r in runs]
    return {
        "rate": sum(r["rate"] for r in results),
        "p50": max(r["p50"] for r in results),
        "p99": max(r["p99"] for r in results),
        "non2xx": sum(r["non2xx"] for r in results),
    }


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds this machine has spent busy (all cores) so far."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def cpu_now(roles: dict[str, list[int]]) -> dict[str, float]:
    now = {role: sum(cpu_seconds(p) for p in pids) for role, pids in roles.items()}
    now["client"] = time.process_time()
    now["machine"] = machine_busy()
    return now


async def fanout(
    ports: list[int], email: str, sockets_n: int, events: int, roles: dict[str, list[int]]
) -> dict[str, Any]:
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    async with httpx.AsyncClient(base_url=bases[0], timeout=30) as http:
        page = await http.get("/login")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        await http.post("/login", data={"_csrf_token": token, "email": email, "password": PASSWORD})
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        csrf = http.cookies["gcx_csrf"]
        for _ in range(events):  # applications to act on
            await http.post("/api/v1/applications", json=make_submission())
        listed = (
            await http.get(
                "/api/v1/staff/applications",
                params={"status": "pending_review", "per_page": events},
            )
        ).json()["items"]
        sockets = []
        for start in range(0, sockets_n, 50):
            batch = []
            for i in range(start, min(start + 50, sockets_n)):
                port = ports[i % 2]
                headers = {"Cookie": cookie, "Origin": bases[0]}
                batch.append(open_socket(port, "/ws/dashboard", headers))
            opened = await asyncio.gather(*batch)
            for ws in opened:
                await ws.frames.get()  # the first snapshot
            sockets.extend(opened)
        print(f"{len(sockets)} dashboards open", file=sys.stderr, flush=True)
        since_change: list[float] = []
        received = sockets[0].received
        cpu_before, began = cpu_now(roles), time.monotonic()
        before_publish: list[float] = []
        missed = 0
        clients = [http, httpx.AsyncClient(base_url=bases[1], timeout=30, cookies=http.cookies)]
        try:
            for n, app in enumerate(listed):
                marker = b'"application_id":%d,' % app["id"]
                loop = asyncio.get_running_loop()
                waits = []
                for ws in sockets:
                    ws.waiting = (marker, loop.create_future())
                    waits.append(ws.waiting[1])
                response = await clients[n % 2].post(  # the action on either web process
                    f"/api/v1/staff/applications/{app['id']}/actions/start_review",
                    json={"version": app["version"]},
                    headers={"x-csrftoken": csrf},
                )
                response.raise_for_status()
                done, late = await asyncio.wait(waits, timeout=5)
                missed += len(late)
                arrivals = [f.result()[0] for f in done]
                message = json.loads(next(iter(done)).result()[1])
                change = next(
                    c for c in message["data"]["changes"] if c["application_id"] == app["id"]
                )
                at = datetime.fromisoformat(change["at"]).timestamp()
                published = datetime.fromisoformat(message["at"]).timestamp()
                since_change.extend((t - at) * 1000 for t in arrivals)
                before_publish.append((published - at) * 1000)
                await asyncio.sleep(0.2)
            cpu_after, elapsed = cpu_now(roles), time.monotonic() - began
        finally:
            await clients[1].aclose()
            for ws in sockets:
                ws.close()
    # Where the time goes: CPU milliseconds per action, by process, and the machine's load.
    spent = {role: (cpu_after[role] - cpu_before[role]) * 1000 / events for role in cpu_after}
    spent["others"] = spent["machine"] - sum(v for k, v in spent.items() if k != "machine")
    return {
        "cpu_ms_per_action": {k: round(v, 1) for k, v in spent.items()},
        "machine_busy": (cpu_after["machine"] - cpu_before["machine"]) / elapsed / os.cpu_count(),
        "sockets": sockets_n,
        "median_ms": statistics.median(since_change),
        "p99_ms": percentile(since_change, 99),
        "max_ms": max(since_change),
        "before_publish_median_ms": statistics.median(before_publish),
        "messages_per_action": (sockets[0].received - received) / events,
        "missed": missed,
    }


def measure_fanout(
    ports: list[int], email: str, args: argparse.Namespace, roles: dict[str, list[int]]
) -> dict[str, Any]:
    import uvloop  # the client parses every frame of every socket: the faster loop, like wrk

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(fanout(ports, email, args.sockets, args.events, roles))


def report_fanout(live: dict[str, Any]) -> None:
    print(
        f"fan-out to {live['sockets']} dashboards over both webs: "
        f"median {live['median_ms']:.1f} ms, p99 {live['p99_ms']:.1f} ms, "
        f"max {live['max_ms']:.1f} ms, missed {live['missed']}"
    )
    cpu = live["cpu_ms_per_action"]
    print(
        f"  where the time goes: {live['before_publish_median_ms']:.1f} ms from the change to "
        f"its snapshot's publication (median); {live['messages_per_action']:.1f} messages per "
        f"action on each socket; CPU per action: web processes {cpu['web']:.0f} ms, workers "
        f"{cpu['workers']:.0f} ms, this client {cpu['client']:.0f} ms, others (PostgreSQL, "
        f"Redis, the system) {cpu['others']:.0f} ms; machine busy {live['machine_busy']:.0%}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 s per figure, 1,000 sockets")
    parser.add_argument("--fanout-only", action="store_true", help="only the websocket fan-out")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.sockets, args.events = 5, 1000, 10
    if shutil.which("wrk") is None:
        print("bench_scaleout needs wrk (apt-get install -y wrk)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="gcx-bench-scaleout-"))
    with postgres_server() as database_url, redis_server() as redis_url:
        sink_port = free_port()
        sink = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                f"127.0.0.1:{sink_port}",
                "-c",
                "aiosmtpd.handlers.Sink",
            ]
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GCX_")},
            "GCX_DATABASE_URL": database_url,
            "GCX_REDIS_URL": redis_url,
            "GCX_SECRET_KEY": secrets.token_urlsafe(16),
            "GCX_DATA_DIR": str(work),
            "GCX_RATE_LIMITS": RAISED_LIMITS,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink_port),
            "EMAIL_USE_TLS": "false",
        }
        email = asyncio.run(prepare(env))
        ports = [free_port(), free_port()]
        procs = [
            gcx(["web", "--port", str(p)], {**env, "GCX_BASE_URL": f"http://127.0.0.1:{ports[0]}"})
            for p in ports
        ]
        procs += [gcx(["worker", "--concurrency", "20"], env) for _ in range(2)]
        try:
            for port, proc in zip(ports, procs, strict=False):
                wait_for_port(port, proc)
            wait_for_port(sink_port, sink)
            time.sleep(1)
            with httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}") as client:
                codes = [
                    client.post("/api/v1/applications", json=make_submission()).json()[
                        "tracking_code"
                    ]
                    for _ in range(200)
                ]
            (work / "codes.txt").write_text("\n".join(codes) + "\n")
            bench_env = {"BENCH_RUN": "S", "BENCH_CODES": str(work / "codes.txt")}
            roles = {"web": [p.pid for p in procs[:2]], "workers": [p.pid for p in procs[2:]]}
            if args.fanout_only:
                live = measure_fanout(ports, email, args, roles)
                report_fanout(live)
                emit({"scaleout": {"fanout": live}})
                return 0 if live["missed"] == 0 else 1
            began = time.monotonic()
            post = both(ports, "post.lua", args.duration, bench_env)
            # Emails: every message of every submission so far accepted by the sink.
            while True:
                counts = asyncio.run(outbox(env))
                if not any(counts.get(s, 0) for s in ("pending", "sending", "retrying")):
                    break
                time.sleep(0.5)
            drained = time.monotonic() - began
            sent = counts.get("sent", 0)
            get = both(ports, "get.lua", args.duration, bench_env)
            live = measure_fanout(ports, email, args, roles)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
            sink.terminate()
            shutil.rmtree(work, ignore_errors=True)
    emails = sent / drained
    print("scale-out: 2 web, 2 workers (20 tasks each), PostgreSQL, Redis, on this machine")
    print(
        f"submissions: {post['rate']:,.0f}/s, p99 {post['p99']:.1f} ms (16 connections), "
        f"non-2xx {post['non2xx']:.0f}"
    )
    print(
        f"status lookups: {get['rate']:,.0f}/s, p99 {get['p99']:.1f} ms, "
        f"non-2xx {get['non2xx']:.0f}"
    )
    print(
        f"emails end to end into aiosmtpd: {emails:,.0f}/s "
        f"({sent:,} in {drained:.1f} s, the submissions' time included)"
    )
    report_fanout(live)
    emit({"scaleout": {"post": post, "get": get, "emails_per_s": emails, "fanout": live}})
    return 0 if live["missed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
