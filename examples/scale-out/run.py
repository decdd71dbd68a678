#!/usr/bin/env python3
"""Start a whole scale-out GCX on this machine, to try it: PostgreSQL and Redis (private
servers from this machine's binaries, on free ports), `gcx migrate`, an admin, two `gcx web`
behind a small round-robin proxy, two `gcx worker` and one `gcx scheduler`.

    python examples/scale-out/run.py             # until Ctrl+C; prints the address and admin
    python examples/scale-out/run.py --smoke     # start, submit one application, see its
                                                 # confirmation delivered, stop (exit 0 = ok)

Run it with GCX installed (`python3 dev.py test` makes .venv): `.venv/bin/python ...`. Mail
is captured (no SMTP settings), so it shows in the back office under Mail.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from gcx_core.testing.servers import free_port, postgres_server, redis_server


def gcx(*args: str, env: dict[str, str], **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gcx_core.cli", *args], env=env, **kw)  # type: ignore[call-overload]  # noqa: S603


async def proxy(port: int, backends: list[int]) -> asyncio.Server:
    """A TCP round robin over the web processes (nginx's job in production; see nginx.conf)."""
    turn = itertools.cycle(backends)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", next(turn))
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", port)


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"nothing answered at {url}")
        time.sleep(0.2)


def smoke(base: str, env: dict[str, str]) -> None:
    """One application through the proxy; its notifications delivered by the workers."""
    import json

    from gcx_core.samples import make_submission

    request = urllib.request.Request(  # noqa: S310 - our own URL
        base + "/api/v1/applications",
        data=json.dumps(make_submission()).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        code = json.load(response)["tracking_code"]
    print(f"submitted {code} through the proxy")
    deadline = time.monotonic() + 60
    report = ""
    while time.monotonic() < deadline:
        report = subprocess.run(
            [sys.executable, "-m", "gcx_core.cli", "status"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        line = report.splitlines()[0]  # "notifications: pending 0, sending 0, sent 2, ..."
        counts = {k: int(v.replace(",", "")) for k, v in re.findall(r"(\w+) ([\d,]+)", line)}
        waiting = sum(counts.get(s, 0) for s in ("pending", "sending", "retrying"))
        if counts.get("sent", 0) >= 1 and waiting == 0:
            print(line)
            return
        time.sleep(0.5)
    raise SystemExit("the notifications were not delivered:\n" + report)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="the proxy's port (default 8080)")
    parser.add_argument("--smoke", action="store_true", help="start, try once, stop")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="gcx-scale-out-"))
    with postgres_server() as database_url, redis_server() as redis_url:
        base = f"http://127.0.0.1:{args.port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GCX_")},
            "GCX_DATABASE_URL": database_url,
            "GCX_REDIS_URL": redis_url,
            "GCX_SECRET_KEY": secrets.token_urlsafe(32),
            "GCX_BASE_URL": base,
            # Every web process must see the same uploaded files: a shared folder here, shared
            # storage (or one file server) in production.
            "GCX_DATA_DIR": str(data),
            "GCX_TRUSTED_PROXIES": "127.0.0.1",
        }
        subprocess.run([sys.executable, "-m", "gcx_core.cli", "migrate"], env=env, check=True)
        admin = subprocess.run(
            [
                sys.executable,
                "-m",
                "gcx_core.cli",
                "create-user",
                "admin@scale-out.invalid",
                "--role",
                "admin",
                "--generate",
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        ).stdout
        web_ports = [free_port(), free_port()]
        processes = [gcx("web", "--port", str(p), env=env) for p in web_ports]
        processes += [gcx("worker", env=env) for _ in range(2)]
        processes.append(gcx("scheduler", env=env))
        try:
            for p in web_ports:
                wait_ready(f"http://127.0.0.1:{p}/health/ready")

            async def serve() -> None:
                server = await proxy(args.port, web_ports)
                print(f"\nGCX scale-out is serving on {base}/ (2 web, 2 workers, 1 scheduler)")
                print(f"PostgreSQL: {database_url}\nRedis: {redis_url}")
                print(admin.strip().replace("\n", "; "))
                if args.smoke:
                    await asyncio.to_thread(smoke, base, env)
                else:
                    stop = asyncio.Event()
                    loop = asyncio.get_running_loop()
                    for sig in (signal.SIGINT, signal.SIGTERM):
                        loop.add_signal_handler(sig, stop.set)
                    await stop.wait()
                server.close()

            asyncio.run(serve())
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
