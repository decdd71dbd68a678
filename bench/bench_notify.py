"""Email delivery speed: GCX's outbox engine against a bare aiosmtplib loop, same sink, same run.

    python bench/bench_notify.py [--messages 5000]

The sink runs in its own process: first aiosmtpd's discarding handler (the target's sink), then
a minimal sink (fast_sink.py) that shows the sender's own ceiling. "bare" sends prebuilt-per-message
EmailMessages over as many aiosmtplib connections as GCX's SMTP channel keeps open (10 by
default), each connection sending its share one after another. "gcx" is one process in the
embedded mode (SQLite, in-process broker): outbox rows are queued, then kicked, claimed,
rendered from the templates, sent over the SMTP channel's connections and marked sent.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from statistics import median

import aiosmtplib
import sqlalchemy as sa

from gcx_core.plugins import make_plugin_manager
from gcx_core.settings import Settings, SmtpSettings
from gcx_core.storage import bookkeeping
from gcx_core.storage.tables import notifications
from gcx_core.system import Gcx
from gcx_notify import plugin as notify_plugin
from gcx_notify.runtime import Notifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, free_port


def line(name: str, value: float, unit: str, note: str = "") -> None:
    print(f"{name:<48} {value:>10,.0f} {unit:<10} {note}", flush=True)


CONNECTIONS = SmtpSettings("127.0.0.1").connections


async def bare_loop(port: int, count: int) -> float:
    clients = [
        aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        for _ in range(CONNECTIONS)
    ]
    for client in clients:
        await client.connect()

    messages = []
    for i in range(count):  # built before the clock starts: only sending is timed
        msg = EmailMessage()
        msg["From"] = "noreply@gcx.example"
        msg["To"] = f"owner{i}@example.com"
        msg["Subject"] = f"Message {i}"
        msg["Message-ID"] = f"<bare.{i}@gcx.example>"
        msg.set_content("text body\n")
        msg.add_alternative("<p>html body</p>", subtype="html")
        messages.append(msg)

    async def send_share(client: aiosmtplib.SMTP, first: int) -> None:
        for msg in messages[first::CONNECTIONS]:
            await client.send_message(msg)

    started = time.perf_counter()
    await asyncio.gather(*(send_share(c, i) for i, c in enumerate(clients)))
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.quit()
    return count / elapsed


async def gcx_engine(port: int, count: int) -> float:
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="gcx-bench-notify-")),
        smtp=SmtpSettings("127.0.0.1", port, starttls=False),
        mail_from="GCX <noreply@gcx.example>",
    )
    pm = make_plugin_manager(plugins=[notify_plugin], load_entry_points=False)
    async with await Gcx.open(settings, plugin_manager=pm, migrate=True) as gcx:
        now = datetime.now(UTC)
        rows = [
            {
                "type": "application_received",
                "channel": "email",
                "recipient": f"owner{i}@example.com",
                "template": "application_received",
                "context": {
                    "business_name": f"Adom Farms {i}",
                    "tracking_code": "GCX-AAAA-BBBB-CCCC",
                    "application_id": None,
                    "status": "pending_review",
                },
                "dedupe_key": f"bench-{i}",
                "status": "pending",
                "attempts": 0,
                "max_attempts": 4,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(count)
        ]
        async with gcx.database.write() as conn:
            await conn.execute(notifications.insert(), rows)
            await bookkeeping.bump_counters(conn, {"notifications:pending": count})
        notifier = Notifier(gcx)
        await notifier.start(run_scheduler=False, kick=False)
        started = time.perf_counter()
        await notifier.sweep()  # kicks every due row, as the minute sweep or a commit would
        await notifier.idle()
        elapsed = time.perf_counter() - started
        await notifier.stop()
        async with gcx.database.read() as conn:
            sent = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(notifications)
                    .where(notifications.c.status == "sent")
                )
            ).scalar()
        if sent != count:
            raise SystemExit(f"only {sent} of {count} were sent")
    return count / elapsed


def start_sink(kind: str, port: int) -> subprocess.Popen[bytes]:
    if kind == "aiosmtpd":
        cmd = [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ]
    else:
        cmd = [sys.executable, str(Path(__file__).with_name("fast_sink.py")), str(port)]
    return subprocess.Popen(cmd)


async def wait_listening(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise SystemExit(f"the sink never listened on {port}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median counts")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = 2000 if args.quick else args.messages
    runs = 1 if args.quick else args.runs
    figures: dict[str, dict[str, float]] = {}
    for kind in ("aiosmtpd", "fast"):
        port = free_port()
        sink = start_sink(kind, port)
        try:
            await wait_listening(port)
            bare = [await bare_loop(port, count) for _ in range(runs)]
            engine = [await gcx_engine(port, count) for _ in range(runs)]
            spread = lambda xs: f"(runs: {', '.join(f'{x:,.0f}' for x in xs)})"  # noqa: E731
            line(
                f"[{kind} sink] bare aiosmtplib, {CONNECTIONS} connections",
                median(bare),
                "emails/s",
                spread(bare),
            )
            line(
                f"[{kind} sink] gcx outbox -> SMTP, one process",
                median(engine),
                "emails/s",
                f"{spread(engine)} {median(engine) / median(bare):.2f}x bare",
            )
            figures[kind] = {"gcx": median(engine), "bare": median(bare)}
        finally:
            sink.terminate()
            sink.wait()
    emit({"email": figures})


if __name__ == "__main__":
    asyncio.run(main())
