"""Live dashboard at scale: 1,000 websockets on one `gcx serve` process.

    python bench/bench_ws.py [--sockets 1000] [--events 20] [--applications 1000000]

Seeds the embedded database (`--applications`, default 1M; `--quick` uses 10k), starts
`gcx serve`, signs a staff user in, opens the sockets and measures:

- time to the first dashboard message (the snapshot) after each socket opens;
- for each event (a workflow action made through the staff API), the delay until every socket
  has received it, and whether any socket missed it;
- the server's resident memory with every socket open.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_web import serve, stop  # noqa: E402
from common import emit, free_port  # noqa: E402

PASSWORD = "correct horse battery staple"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def prepare(data_dir: Path, applications: int) -> str:
    """Seed (unless `applications` is 0) and add the staff user the bench signs in as."""
    from gcx_core.entities import Actor, Role
    from gcx_core.seed import seed_demo
    from gcx_core.services.accounts import create_user
    from gcx_core.settings import Settings
    from gcx_core.system import Gcx

    settings = Settings(data_dir=data_dir, secret_key="bench-secret")
    async with await Gcx.open(settings, migrate=True) as gcx:
        if applications:
            await seed_demo(settings, applications, progress=sys.stderr.isatty())
        email = f"bench-{time.time_ns()}@staff.example"
        await create_user(gcx, email, Role.REVIEWER, Actor.system("bench"), password=PASSWORD)
        return email


class LeanSocket(asyncio.Protocol):
    """A minimal websocket client: handshake, unmasked server frames, pongs, close.

    The load generator must cost as little CPU as it can (it shares the machine with the
    server, like wrk): it does not decode JSON, it looks for the bytes it waits for.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.handshaken = asyncio.get_running_loop().create_future()
        self.frames: asyncio.Queue[bytes] = asyncio.Queue()
        self.waiting: tuple[bytes, asyncio.Future[float]] | None = None
        self.transport: asyncio.Transport | None = None
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.handshaken.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self.handshaken.set_exception(RuntimeError(head.split(b"\r\n")[0].decode()))
                return
            self.handshaken.set_result(None)
        while len(self.buffer) >= 2:
            opcode, length, start = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                length, start = int.from_bytes(self.buffer[2:4], "big"), 4
            elif length == 127:
                if len(self.buffer) < 10:
                    return
                length, start = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < start + length:
                return
            payload = bytes(self.buffer[start : start + length])
            del self.buffer[: start + length]
            if opcode == 0x9:  # ping: answer before the server gives up on us
                self.send(0xA, payload)
            elif opcode == 0x1:
                self.on_text(payload)

    def on_text(self, payload: bytes) -> None:
        self.received += 1
        if self.waiting is not None:
            marker, future = self.waiting
            changes = payload.find(b'"changes":[')
            if changes >= 0 and payload.find(marker, changes) >= 0 and not future.done():
                future.set_result((time.time(), payload))
                self.waiting = None
            return
        self.frames.put_nowait(payload)

    def send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None and len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.send(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()


async def open_socket(port: int, path: str, headers: dict[str, str]) -> LeanSocket:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(LeanSocket, "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    assert protocol.transport is not None
    protocol.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await protocol.handshaken
    return protocol


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]


async def run(args: argparse.Namespace) -> int:
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
                ws = await open_socket(port, "/ws/dashboard", headers)
                opened = time.perf_counter()
                message = json.loads(await ws.frames.get())
                first.append((time.perf_counter() - opened) * 1000)
                assert message["type"] == "dashboard"
                totals.append(message["data"]["total"])
                sockets.append(ws)

            for start in range(0, args.sockets, 50):
                await asyncio.gather(*(connect() for _ in range(min(50, args.sockets - start))))
            print(f"{len(sockets)} sockets open", flush=True)

            delays: list[float] = []  # from the action's request leaving the client
            since_change: list[float] = []  # from the change's own time (the server's clock)
            posts: list[float] = []
            missed = 0
            for app in pending[: args.events]:
                marker = b'"application_id":%d,' % app["id"]
                loop = asyncio.get_running_loop()
                waits = []
                for ws in sockets:
                    ws.waiting = (marker, loop.create_future())
                    waits.append(ws.waiting[1])
                sent = time.time()
                response = await http.post(
                    f"/api/v1/staff/applications/{app['id']}/actions/start_review",
                    json={"version": app["version"]},
                    headers={"x-csrftoken": csrf},
                )
                response.raise_for_status()
                posts.append((time.time() - sent) * 1000)
                done, late = await asyncio.wait(waits, timeout=5)
                missed += len(late)
                arrivals = sorted(f.result()[0] for f in done)
                delays.extend((t - sent) * 1000 for t in arrivals)
                # Every socket got the same bytes: one copy says when the change happened.
                message = json.loads(next(iter(done)).result()[1])
                change = next(
                    c for c in message["data"]["changes"] if c["application_id"] == app["id"]
                )
                at = datetime.fromisoformat(change["at"]).timestamp()
                since_change.extend((t - at) * 1000 for t in arrivals)
                if args.verbose:
                    print(
                        f"app {app['id']}: response {posts[-1]:.1f} ms; from the request: first "
                        f"socket {(arrivals[0] - sent) * 1000:.1f} ms, last "
                        f"{(arrivals[-1] - sent) * 1000:.1f} ms; from the change: last "
                        f"{(arrivals[-1] - at) * 1000:.1f} ms"
                    )
                await asyncio.sleep(0.2)
            memory = rss_mb(proc.pid) if proc is not None else 0.0
            for ws in sockets:
                ws.close()
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
        f"change to every socket: median {statistics.median(since_change):.1f} ms, "
        f"p99 {percentile(since_change, 99):.1f} ms, max {max(since_change):.1f} ms"
    )
    print(
        f"action request to every socket: median {statistics.median(delays):.1f} ms, "
        f"p99 {percentile(delays, 99):.1f} ms, max {max(delays):.1f} ms"
    )
    print(f"deliveries: {len(delays):,} received, {missed} missed")
    print(f"the action's own request (POST to response): median {statistics.median(posts):.1f} ms")
    print(f"server RSS with every socket open: {memory:.0f} MB")
    emit(
        {
            "fanout": {
                "sockets": args.sockets,
                "p99_ms": percentile(since_change, 99),
                "missed": missed,
                "first_message_ms": statistics.median(first),
            },
            "rss_mb": memory,
        }
    )
    return 0 if missed == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--applications", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10k applications")
    parser.add_argument("--verbose", action="store_true", help="a line per event")
    parser.add_argument("--server-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--data-dir", type=Path, help="use this seeded data directory (GCX_SECRET_KEY=bench-secret)"
    )
    args = parser.parse_args()
    if args.quick:
        args.applications = 10_000
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
