"""`make bench`: every benchmark in one run, on this machine, against one private
redis-server and one private memcached.

Writes ``bench/results/bench.json``, ``bench/results/bench.md`` and
``bench/results/overhead.png``, and prints the Markdown. ``--quick`` runs
fewer and shorter rounds (for trying the benchmark, not for reporting).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench import http
from bench import inprocess
from bench import memory
from bench.apps import ASGI_VARIANTS
from bench.apps import FLASK_VARIANTS
from tests.servers import MemcachedServer
from tests.servers import PostgresServer
from tests.servers import RedisServer

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = "flask-session"
OURS = "sharedsession-redis"
#: The least a Redis session can do (bench/bare.py): how far a ratio gets without promises.
BARE = "bare-redis"
#: Its ASGI twin (bench/bare_asgi.py).
ASGI_BARE = "asgi-bare-redis"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": platform.platform(),
        "date": dt.date.today().isoformat(),
    }


def round_trip_floor(url: str, count: int = 5000) -> float:
    """Microseconds of one redis-py GET on an open connection: one round trip."""
    client = redis.Redis.from_url(url)
    client.get("floor")
    started = time.perf_counter()
    for _ in range(count):
        client.get("floor")
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed / count * 1e6


def _table(
    results: dict[str, Any], floor_variant: str, trips_key: str, labels: dict[str, str]
) -> list[str]:
    trips = trips_key.replace("_", " ")
    first = next(iter(next(iter(results.values())).values()))
    server, app = "server_us" in first, "app_cpu_us" in first
    lines = [
        f"| variant | workload | req/s | p50 µs | p99 µs | µs over floor | {trips} |"
        + (" Redis server CPU µs |" if server else "")
        + (" app server CPU µs |" if app else ""),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
        + (" ---: |" if server else "")
        + (" ---: |" if app else ""),
    ]
    for variant in labels:
        for workload, cell in results[variant].items():
            floor = results[floor_variant][workload]["rps"]
            overhead = 1e6 / cell["rps"] - 1e6 / floor
            lines.append(
                f"| {variant} | {workload} | {cell['rps']:.0f} | {cell['p50_us']:.0f}"
                f" | {cell['p99_us']:.0f} | {overhead:+.0f} | {cell[trips_key]:.2f} |"
                + (f" {cell['server_us']:.1f} |" if server else "")
                + (f" {cell['app_cpu_us']:.0f} |" if app else "")
            )
    return lines


def _summary(results: dict[str, Any], labels: dict[str, str], baseline: str | None) -> list[str]:
    workloads = list(next(iter(results.values())))
    lines = ["| variant | " + " | ".join(workloads) + " |", "|---" * (len(workloads) + 1) + "|"]
    for variant in labels:
        cells = []
        for workload in workloads:
            rps = results[variant][workload]["rps"]
            cell = f"{rps:.0f}"
            if baseline and variant != baseline:
                cell += f" ({rps / results[baseline][workload]['rps']:.2f}x)"
            cells.append(cell)
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines


#: (name, numerator variant, denominator variant, workload, goal): the in-process ratios.
RATIOS = [
    ("untouched route with a cookie vs no session", OURS, "none", "untouched", 0.95),
    ("read vs Flask-Session's default", OURS, BASELINE, "read", 2.0),
    ("read vs Flask's cookie session", OURS, "cookie", "read", 1.0),
    ("write (read-modify-write) vs Flask-Session", OURS, BASELINE, "write", 1.5),
    ("write that never reads vs Flask-Session", OURS, BASELINE, "blind write", 2.0),
    ("read 2 KB vs Flask-Session", OURS, BASELINE, "read 2 KB", 1.5),
]  # fmt: skip
#: The same over HTTP: (name, numerator, denominator, workload, goal, which results).
HTTP_RATIOS = [
    ("read vs Flask-Session (gunicorn)", OURS, BASELINE, "read", 2.0, "wsgi_http"),
    ("write vs Flask-Session (gunicorn)", OURS, BASELINE, "write", 1.5, "wsgi_http"),
    ("ASGI read vs starsessions (uvicorn)", "asgi-sharedsession", "asgi-starsessions", "read", 1.5,
     "asgi_http"),
    ("ASGI write vs starsessions (uvicorn)", "asgi-sharedsession", "asgi-starsessions", "write",
     1.5, "asgi_http"),
]  # fmt: skip


def ratios(report: dict[str, Any], ours: str = OURS) -> dict[str, tuple[float, float]]:
    """Every target ratio of ``report``: name -> (ratio, goal); with ``ours``, the
    ratios of that Flask variant in place of sharedsession's, where it ran (for
    :data:`BARE`, the ASGI ratios are :data:`ASGI_BARE`'s)."""
    found: dict[str, tuple[float, float]] = {}
    cells = [(*ratio, "inprocess") for ratio in RATIOS] + HTTP_RATIOS
    for name, mine, peer, workload, goal, where in cells:
        if mine != OURS:  # an ASGI ratio: the bare session has an ASGI twin
            if ours == BARE:
                mine = ASGI_BARE
            elif ours != OURS:
                continue
        else:
            mine = ours
        results = report.get(where, {})
        if workload in results.get(mine, {}) and workload in results.get(peer, {}):
            found[name] = (results[mine][workload]["rps"] / results[peer][workload]["rps"], goal)
    return found


def _bare_of(name: str) -> str:
    return ASGI_BARE if name.startswith("ASGI") else BARE


def targets(report: dict[str, Any]) -> list[str]:
    bare = ratios(report, ours=BARE)
    lines = [
        f"- {'met' if ratio >= goal else 'MISSED'}: {name}: {ratio:.2f}x (goal {goal}x"
        + (f"; {_bare_of(name)}: {bare[name][0]:.2f}x)" if name in bare else ")")
        for name, (ratio, goal) in ratios(report).items()
    ]
    inproc = report["inprocess"]
    ours, peer = inproc["sharedsession-redis"], inproc[BASELINE]
    for workload in ("read", "write"):
        mine, theirs = ours[workload]["server_us"], peer[workload]["server_us"]
        lines.append(
            f"- {'met' if mine <= theirs else 'MISSED'}: Redis server CPU µs per {workload}:"
            f" {mine:.1f} (Flask-Session: {theirs:.1f}; `INFO cpu` of the redis-server)"
        )
    got = [ours[w]["round_trips"] for w in ("untouched", "read", "write", "blind write")]
    peer_trips = [peer[w]["round_trips"] for w in ("untouched", "read", "write", "blind write")]
    lines.append(
        "- Redis round trips per request, untouched/read/write/write that never reads: "
        + "/".join(f"{x:g}" for x in got)
        + " (Flask-Session: "
        + "/".join(f"{x:g}" for x in peer_trips)
        + ")"
    )
    rows = report.get("memory", {}).get("rows", [])
    for size in dict.fromkeys(row["session"] for row in rows):
        used = {r["library"]: r["memory_usage_bytes"] for r in rows if r["session"] == size}
        mine, theirs = used.get("sharedsession"), used.get("Flask-Session 0.8.0")
        values_only = used.get(memory.BARE)
        if mine is not None and theirs is not None:
            lines.append(
                f"- {'met' if mine <= theirs else 'MISSED'}: bytes per session in Redis, {size}:"
                f" {mine} (Flask-Session: {theirs}"
                + (f"; {BARE}, values only: {values_only}" if values_only is not None else "")
                + "; `MEMORY USAGE`)"
            )
    return lines


def spread(report: dict[str, Any], previous: dict[str, Any] | None) -> list[str]:
    """This run's noise, the CPU others used, and each ratio next to the previous run's."""
    run = report.get("inprocess_run", {})
    lines = [
        f"Noise: a cell's requests/s moved by {run.get('noise', 0.0) * 100:.0f} % between"
        " rounds (median over cells, in-process). Other processes used"
        f" {run.get('other_cpu_cores', 0.0):.2f} cores on average during the in-process run.",
    ]
    if previous is None:
        return lines
    before = ratios(previous)
    lines += [
        "",
        f"Run-to-run spread: this run against the previous one ({previous['machine']['date']},"
        " `bench/results/bench-previous.json`):",
        "",
        "| ratio | this run | previous run | difference |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, (ratio, _) in ratios(report).items():
        if name in before:
            old = before[name][0]
            lines.append(f"| {name} | {ratio:.2f}x | {old:.2f}x | {(ratio - old) / old:+.0%} |")
    return lines


def chart(inproc: dict[str, Any], wsgi: dict[str, Any] | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("in-process WSGI", inproc)] + ([("HTTP, gunicorn + wrk", wsgi)] if wsgi else [])
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4.2 * len(panels)), squeeze=False)
    variants = [v for v in FLASK_VARIANTS if v != "none"]
    for ax, (title, results) in zip(axes[:, 0], panels, strict=True):
        workloads = list(results["none"])
        width = 0.8 / len(variants)
        for i, variant in enumerate(variants):
            overhead = [
                1e6 / results[variant][w]["rps"] - 1e6 / results["none"][w]["rps"]
                for w in workloads
            ]
            ax.bar([x + i * width for x in range(len(workloads))], overhead, width, label=variant)
        ax.set_xticks([x + width * (len(variants) - 1) / 2 for x in range(len(workloads))])
        ax.set_xticklabels(workloads)
        ax.set_ylabel("µs per request over no session")
        ax.set_title(f"Session overhead per request ({title}; lower is better)")
        ax.axhline(0, color="black", linewidth=0.5)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--skip-http", action="store_true", help="in-process driver only")
    args = parser.parse_args(argv)
    rounds, requests, seconds = (2, 500, 1.0) if args.quick else (5, 3000, 3.0)
    http_rounds = 1 if args.quick else 3
    logging.disable(logging.WARNING)  # the apps' own warnings are not results
    RESULTS.mkdir(exist_ok=True)
    report: dict[str, Any] = {"machine": machine(), "settings": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        postgres = PostgresServer().start()
        os.environ["BENCH_POSTGRES_URL"] = postgres.url  # the apps read it, here and in servers
        memcached = MemcachedServer().start()
        os.environ["BENCH_MEMCACHED"] = memcached.address  # the apps, here and in servers
        try:
            url = server.url
            report["redis_version"] = server.client().info("server")["redis_version"]
            version = memcached.client()
            report["memcached_version"] = version.version().decode()
            version.close()
            report["round_trip_floor_us"] = round_trip_floor(url)
            print(
                f"one redis-py GET round trip: {report['round_trip_floor_us']:.0f} µs", flush=True
            )
            sqlite = str(Path(tmp) / "bench.sqlite3")
            print("in-process WSGI driver ...", flush=True)
            report["inprocess"] = inprocess.run(url, rounds, requests, sqlite)
            report["inprocess_run"] = report["inprocess"].pop("_run")
            if not args.skip_http:
                print("HTTP driver: gunicorn + wrk ...", flush=True)
                report["wsgi_http"] = http.run(
                    "wsgi", list(FLASK_VARIANTS), url, http_rounds, seconds, sqlite
                )
                print("HTTP driver: uvicorn + wrk ...", flush=True)
                report["asgi_http"] = http.run(
                    "asgi", list(ASGI_VARIANTS), url, http_rounds, seconds, sqlite
                )
        finally:
            memcached.stop()
            server.stop()
            postgres.remove()
    print("memory per session ...", flush=True)
    memory.main()
    report["memory"] = json.loads((RESULTS / "memory.json").read_text())
    previous = None
    if (RESULTS / "bench.json").exists():
        previous = json.loads((RESULTS / "bench.json").read_text())
        (RESULTS / "bench-previous.json").write_text(json.dumps(previous, indent=2) + "\n")
    (RESULTS / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    chart(report["inprocess"], report.get("wsgi_http"), RESULTS / "overhead.png")
    markdown = render(report, previous)
    (RESULTS / "bench.md").write_text(markdown)
    print(markdown)
    return 0


def render(report: dict[str, Any], previous: dict[str, Any] | None = None) -> str:
    m = report["machine"]
    out = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']},"
        f" Redis {report['redis_version']}, memcached {report.get('memcached_version', '-')},"
        f" {m['date']}."
        f" One redis-py GET round trip: {report['round_trip_floor_us']:.0f} µs.",
        "",
        "### Targets",
        "",
        *targets(report),
        "",
        *spread(report, previous),
    ]
    out += [
        "",
        "### Requests per second, in-process WSGI (ratio to Flask-Session's default)",
        "",
        *_summary(report["inprocess"], FLASK_VARIANTS, BASELINE),
    ]
    if "wsgi_http" in report:
        out += ["", "### Requests per second, HTTP: gunicorn (2 workers x 4 threads) + wrk", "",
                *_summary(report["wsgi_http"], FLASK_VARIANTS, BASELINE)]  # fmt: skip
        out += ["", "### Requests per second, ASGI over HTTP: uvicorn (2 workers) + wrk", "",
                *_summary(report["asgi_http"], ASGI_VARIANTS, "asgi-starsessions")]  # fmt: skip
    out += ["", "Round trips and server commands count Redis commands only; the PostgreSQL"
            " statements per request are counted by `tests/integration/test_sql_round_trips.py`.",
            "", "### Every cell, in-process WSGI", "",
            *_table(report["inprocess"], "none", "round_trips", FLASK_VARIANTS)]  # fmt: skip
    if "wsgi_http" in report:
        wsgi = _table(report["wsgi_http"], "none", "server_commands", FLASK_VARIANTS)
        asgi = _table(report["asgi_http"], "asgi-none", "server_commands", ASGI_VARIANTS)
        out += ["", "### Every cell, HTTP (server commands include those inside Lua scripts)", "",
                *wsgi, "", *asgi]  # fmt: skip
    out += ["", (RESULTS / "memory.md").read_text().strip()]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
