"""Run every workload and print one table: GCX next to its baseline, measured in the same run.

    python bench/run.py [--quick]

Figures are ratios to a baseline measured on the same machine minutes apart, because the
hosts these run on differ by up to 3x (bench/README.md). `--quick` runs everything in under
five minutes; the full run takes longer figures (15 s per HTTP figure, 5,000 emails, three
runs each, a million applications behind the live dashboard).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import read_results  # noqa: E402

SCRIPTS = (
    "bench_web.py",
    "bench_notify.py",
    "bench_dashboard.py",
    "bench_queues.py",
    "bench_deadlines.py",
    "bench_ws.py",
    "bench_scaleout.py",
)


def run_script(name: str, quick: bool) -> dict[str, Any]:
    print(f"== {name}", flush=True)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(HERE / name), *(["--quick"] if quick else [])],
        capture_output=True,
        text=True,
    )
    for line in proc.stdout.splitlines():
        if not line.startswith("BENCH-RESULT"):
            print("   " + line)
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        print(f"   {name} failed (exit {proc.returncode})")
    print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    return read_results(proc.stdout)


def rows(found: dict[str, Any]) -> list[tuple[str, str, str, str, str, bool | None]]:
    """(workload, GCX, baseline, figure, target, met) per line of the table."""
    table: list[tuple[str, str, str, str, str, bool | None]] = []

    def ratio_row(name: str, gcx: float, bare: float, unit: str, base: str, target: float) -> None:
        ratio = gcx / bare
        table.append(
            (
                name,
                f"{gcx:,.0f} {unit}",
                f"{bare:,.0f} {unit} ({base})",
                f"{ratio:.2f}x",
                f">= {target}x",
                ratio >= target,
            )
        )

    if "submit" in found:
        s, lk = found["submit"], found["lookup"]
        ratio_row(
            "submit (POST /api/v1/applications)",
            s["gcx"]["rate"],
            s["bare"]["rate"],
            "req/s",
            "bare Litestar",
            0.15,
        )
        ratio_row(
            "lookup (GET /api/v1/applications/{code})",
            lk["gcx"]["rate"],
            lk["bare"]["rate"],
            "req/s",
            "bare Litestar",
            0.60,
        )
    for sink, label in (("aiosmtpd", "aiosmtpd sink"), ("fast", "minimal sink")):
        if sink in found.get("email", {}):
            e = found["email"][sink]
            ratio_row(f"email ({label})", e["gcx"], e["bare"], "msg/s", "bare aiosmtplib", 0.8)
    if "dashboard" in found:
        d = found["dashboard"]
        small, large = d["1000"], d["1000000"]
        ratio = large / small
        table.append(
            (
                "dashboard first message, 1M vs 1k apps",
                f"{large:.2f} ms",
                f"{small:.2f} ms (1k)",
                f"{ratio:.2f}x",
                "<= 1.2x",
                ratio <= 1.2,
            )
        )
    if "queues" in found:
        q = found["queues"]
        for view in ("mine", "unassigned"):
            small, large = q["1000"][view], q["1000000"][view]
            table.append(
                (
                    f"list queue={view} p99, 1M apps",
                    f"{large:.2f} ms",
                    f"{small:.2f} ms (1k)",
                    f"{large / small:.1f}x",
                    "<= 50 ms",
                    large <= 50,
                )
            )
    if "deadlines" in found:
        d = found["deadlines"]
        table.append(
            (
                f"deadline pass, {d['steps']:,} due of {d['size']:,} apps",
                f"{d['seconds']:.1f} s",
                f"{d['baseline_seconds']:.1f} s (rows written directly)",
                f"{d['seconds'] / d['baseline_seconds']:.1f}x",
                "<= 60 s",
                d["seconds"] <= 60,
            )
        )
        table.append(
            (
                "deadline pass: longest loop hold",
                f"{d['held_ms']:.1f} ms",
                f"p99 gap {d['p99_gap_ms']:.1f} ms",
                "",
                "<= 20 ms",
                d["held_ms"] <= 20,
            )
        )
    if "fanout" in found:
        f = found["fanout"]
        table.append(
            (
                f"fan-out p99, {f['sockets']:,} sockets",
                f"{f['p99_ms']:.1f} ms",
                "-",
                f"{f['missed']} missed",
                "<= 50 ms",
                f["p99_ms"] <= 50 and not f["missed"],
            )
        )
        table.append(
            (
                "RSS, 1,000 sockets open",
                f"{found['rss_mb']:.0f} MB",
                "-",
                "-",
                "<= 200 MB",
                found["rss_mb"] <= 200,
            )
        )
    if "scaleout" in found:
        so = found["scaleout"]
        base = found.get("submit", {}).get("gcx", {}).get("rate")
        for name, value, embedded, unit in (
            ("scale-out submit, 2 web", so["post"]["rate"], base, "req/s"),
            (
                "scale-out lookup, 2 web",
                so["get"]["rate"],
                found.get("lookup", {}).get("gcx", {}).get("rate"),
                "req/s",
            ),
            (
                "scale-out email end to end, 2 workers",
                so["emails_per_s"],
                found.get("email", {}).get("aiosmtpd", {}).get("gcx"),
                "msg/s",
            ),
        ):
            table.append(
                (
                    name,
                    f"{value:,.0f} {unit}",
                    f"{embedded:,.0f} {unit} (embedded)" if embedded else "-",
                    f"{value / embedded:.2f}x" if embedded else "-",
                    "-",
                    None,
                )
            )
        f = so["fanout"]
        table.append(
            (
                f"scale-out fan-out p99, {f['sockets']:,} sockets on 2 web",
                f"{f['p99_ms']:.1f} ms",
                "-",
                f"{f['missed']} missed",
                "<= 100 ms",
                f["p99_ms"] <= 100 and not f["missed"],
            )
        )
    return table


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="everything in under 5 minutes")
    args = parser.parse_args()
    started = time.monotonic()
    found: dict[str, Any] = {}
    for name in SCRIPTS:
        found.update(run_script(name, args.quick))
    table = rows(found)
    headers = ("workload", "GCX", "baseline", "figure", "target", "met")
    lines = [headers, *((*r[:5], {True: "yes", False: "NO", None: ""}[r[5]]) for r in table)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers))]
    print()
    for i, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if "after_submit" in found and found["after_submit"]["backlog"]:
        a = found["after_submit"]
        print(
            f"\nafter the submit run {a['backlog']:,} notifications were still queued; "
            f"the same process delivered them in {a['seconds']:.1f} s"
        )
    print(f"\nall workloads in {time.monotonic() - started:.0f} s")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / time.strftime("%Y%m%dT%H%M%S.json")
    out.write_text(json.dumps(found, indent=1))
    print(f"figures saved to {out.relative_to(HERE.parent)}")
    return 1 if not table or any(r[5] is False for r in table) else 0


if __name__ == "__main__":
    sys.exit(main())
