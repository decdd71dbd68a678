"""CPU instructions per request, counted by valgrind: a figure that does not drift with the VM.

    python bench/bench_instructions.py [--requests 1000]

The wall-clock figures of bench_web.py move by 10-30% over minutes on a shared VM, more than
most single changes are worth. This counts the instructions the app itself executes per
request: the ASGI app is called in-process (no server, no sockets), under
`valgrind --tool=callgrind`, with counting switched on only around the measured requests
(`callgrind_control`), in the event loop's thread. Two versions can be compared an hour apart:
the count moves by a few percent between invocations (each prepares its own data, and the
process's timed background work, such as the minute's sweep, lands differently in a run that
valgrind slows fifty-fold), against 10-30% for wall-clock figures on a shared VM. Instructions
are not time (cache misses and system calls are not counted), so confirm a gain with
bench_web.py.

Measured, each in its own process: GCX's `GET /api/v1/applications/{code}` on 500 known
codes and `POST /api/v1/applications` from 16 concurrent callers (the embedded mode with its
in-process delivery, 3 staff users), and the bare handlers of bare_app.py with the same bodies;
then the delivery of one notification (claimed 100 and 10 at a time, rendered, captured,
marked sent). Counting starts once the outbox is empty, and a POST count ends only when its
submissions' four messages each have been delivered: they are part of what a submission costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench_web import RAISED_LIMITS  # noqa: E402

CALLERS = 16
DELIVERIES = 500


def scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1:8000")]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
    }


async def call(app: Any, method: str, path: str, body: bytes = b"") -> int:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope(method, path, body), receive, send)
    return int(sent[0]["status"])


async def drive(kind: str, method: str, requests: int, work: Path) -> None:
    """The measured process: warm up, then wait for the parent around the counted requests."""
    import gc

    import msgspec

    from gcx_core.samples import make_submission

    if kind == "bare":
        sys.path.insert(0, str(HERE))
        import bare_app

        app: Any = bare_app.app
    else:
        from gcx_core.settings import Settings
        from gcx_web.app import create_app

        app = create_app(Settings(data_dir=work / "data", secret_key="bench-secret"))
    codes = (work / "codes.txt").read_text().split()
    rng = random.Random(7)
    if method == "GET":
        jobs = [("GET", f"/api/v1/applications/{rng.choice(codes)}", b"") for _ in range(requests)]
        warm = jobs[:200]
    else:
        bodies = [msgspec.json.encode(make_submission()) for _ in range(requests + 200)]
        jobs = [("POST", "/api/v1/applications", b) for b in bodies[:requests]]
        warm = [("POST", "/api/v1/applications", b) for b in bodies[requests:]]

    async def run(batch: list[tuple[str, str, bytes]]) -> None:
        async def caller(mine: list[tuple[str, str, bytes]]) -> None:
            for m, path, body in mine:
                status = await call(app, m, path, body)
                if status >= 300:
                    raise SystemExit(f"{m} {path}: {status}")

        await asyncio.gather(*(caller(batch[i::CALLERS]) for i in range(CALLERS)))

    async with app.lifespan():
        await run(warm)
        # Nothing is counted while notifications queued before (the 500 submissions that made
        # the codes, the warm-up's) are still going out; a POST count waits for its own
        # submissions' deliveries, which are part of what a submission costs.
        if kind == "gcx":
            await delivered(work)
        gc.collect()
        gc.freeze()  # as `gcx serve` does once started
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await run(jobs)
        if kind == "gcx":
            await delivered(work)
        print("done", flush=True)
        await asyncio.to_thread(sys.stdin.readline)


async def deliveries(batch: int, count: int, work: Path) -> None:
    """The measured process for delivery: claims of `batch` due rows, each rendered from the
    real templates and kept by the capture channel (the embedded default's email), until
    `count` have gone out. (A burst's drainer claims 10 at a time, a backlog's 100.)"""
    import gc

    from gcx_core.context import Gcx
    from gcx_core.settings import Settings
    from gcx_notify.runtime import Notifier

    async with await Gcx.open(Settings(data_dir=work / "data", secret_key="bench-secret")) as gcx:
        notifier = Notifier(gcx)
        deliverer = notifier.deliverer
        await deliverer.deliver_due(limit=batch)  # warm-up
        gc.collect()
        gc.freeze()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        done = 0
        while done < count:
            sent = await deliverer.deliver_due(limit=min(batch, count - done))
            if not sent:
                raise SystemExit(f"only {done} of {count} notifications were due")
            done += sent
        print("done", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await notifier.stop()


async def delivered(work: Path) -> None:
    """Return once the in-process worker has delivered every notification in the outbox
    (polled from a thread, so the loop under count only delivers)."""
    from bench_web import undelivered, wait_for_deliveries

    database = work / "data" / "gcx.db"
    await asyncio.to_thread(wait_for_deliveries, database, 1800)
    if undelivered(database):
        raise SystemExit("notifications were still undelivered after 30 minutes")


def prepare(work: Path) -> None:
    import msgspec
    from bench_web import prepare as prepare_data_dir

    from gcx_core.context import Gcx
    from gcx_core.entities import Actor
    from gcx_core.samples import make_submission
    from gcx_core.services import applications
    from gcx_core.services.applicant import applicant_view
    from gcx_core.settings import Settings
    from gcx_web.wire import status_out

    prepare_data_dir(work / "data")

    async def submit() -> list[str]:
        settings = Settings(data_dir=work / "data", secret_key="bench-secret")
        async with await Gcx.open(settings) as gcx:
            codes = [
                (await applications.submit(gcx, make_submission(), Actor.applicant())).tracking_code
                for _ in range(500)
            ]
            # The bare GET answers a body of the same size: one of these applications' status.
            titles = {r.code: r.title for r in gcx.requirements.values()}
            labels = {s.name: s.label for s in gcx.workflow.states.values()}
            body = status_out(await applicant_view(gcx, codes[0]), titles, labels)
            (work / "status.json").write_bytes(msgspec.json.encode(body))
            return codes

    (work / "codes.txt").write_text("\n".join(asyncio.run(submit())) + "\n")


def count(kind: str, method: str, requests: int, work: Path) -> int:
    """Instructions executed by the `requests` requests, from callgrind's own total."""
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        "GCX_RATE_LIMITS": RAISED_LIMITS,
        "GCX_SECRET_KEY": "bench-secret",
        "BARE_STATUS_BODY": (work / "status.json").read_text(),
    }
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                "--separate-threads=yes",
                f"--callgrind-out-file={out}/callgrind.out",
                sys.executable,
                __file__,
                "--driver",
                kind,
                method,
                str(requests),
                str(work),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

        def toggle(state: str, expect: str) -> None:
            line = proc.stdout.readline().strip()  # type: ignore[union-attr]
            if line != expect:
                proc.kill()
                raise RuntimeError(f"{kind} {method}: expected {expect!r}, got {line!r}")
            subprocess.run(
                ["callgrind_control", "-i", state, str(proc.pid)], check=True, capture_output=True
            )
            proc.stdin.write("\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]

        toggle("on", "ready")
        toggle("off", "done")
        _, stderr = proc.communicate(timeout=600)
        if proc.returncode:
            raise RuntimeError(f"{kind} {method} failed:\n{stderr[-2000:]}")
        # Thread 1 is the event loop's; SQLite's checkpointer and the worker threads of
        # anyio and logging are left out.
        found = re.search(r"^totals: (\d+)", Path(out, "callgrind.out-01").read_text(), re.M)
    if not found:
        raise RuntimeError(f"{kind} {method}: no totals in callgrind's output")
    return int(found.group(1)) // requests


def copy(work: Path, name: str) -> Path:
    """A copy of the prepared data for one count, so that every count starts from the same."""
    run_dir = work / name
    shutil.copytree(work / "data", run_dir / "data")
    for kept in ("codes.txt", "status.json"):
        shutil.copy(work / kept, run_dir / kept)
    return run_dir


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--driver", nargs=4, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    if args.driver:
        kind, method, requests, work = args.driver
        if kind == "deliver":
            asyncio.run(deliveries(int(method), int(requests), Path(work)))
        else:
            asyncio.run(drive(kind, method, int(requests), Path(work)))
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("bench_instructions needs valgrind (apt-get install -y valgrind)")
        return 1
    work = Path(tempfile.mkdtemp(prefix="gcx-bench-instr-"))
    try:
        prepare(work)
        print(f"instructions per request, {args.requests} requests each (valgrind callgrind)")
        figures = {}
        for method in ("GET", "POST"):
            for kind in ("gcx", "bare"):
                figures[kind] = count(kind, method, args.requests, copy(work, f"{kind}-{method}"))
                print(f"{kind:5} {method:5} {figures[kind]:>12,}", flush=True)
            print(f"      {method:5} gcx / bare = {figures['gcx'] / figures['bare']:.2f}")
        # The 500 submissions of `prepare` left 2,000 notifications queued.
        for batch in (100, 10):
            each = count("deliver", str(batch), DELIVERIES, copy(work, f"deliver-{batch}"))
            print(f"gcx   deliver, {batch:>3} per claim {each:>12,} per notification", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
