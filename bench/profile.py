"""`make profile`: where the time of one request goes, per component.

Starts a private redis-server, builds the benchmark's Flask apps (no
session, sharedsession on Redis, Flask-Session's default, and the bare
Redis session of ``bench/bare.py``, timed only) and, for each workload,
measures the µs per request without a profiler (median of interleaved
rounds), then runs the same requests under :mod:`cProfile` and splits the
time by component (the file or C function each profiled function belongs
to). The profiler slows Python code more than waiting on a socket,
so the shares are scaled to the unprofiled time: read them as "about this
much", not to the microsecond. Last, the redis-server's own CPU per command
of each command those requests send (:mod:`bench.server_cost`).

``.venv/bin/python -m bench.profile [--requests N] [--rounds N]``
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import server_cost
from bench.apps import flask_app
from bench.inprocess import WORKLOADS
from bench.inprocess import _caller
from bench.inprocess import seed_cookie
from tests.servers import RedisServer

VARIANTS = ("none", "sharedsession-redis", "flask-session")
#: Timed beside them, not profiled: the least a Redis session can do (bench/bare.py).
TIMED_ONLY = ("bare-redis",)
PROFILED = ("read", "read 2 KB", "write", "blind write")

#: (component, test on the file path or C function name), first match wins.
COMPONENTS: list[tuple[str, Callable[[str, str], bool]]] = [
    ("waiting on Redis (socket send/recv)", lambda f, n: "_socket.socket" in n or "select" in n),
    ("sharedsession: serialization", lambda f, n: f.endswith("sharedsession/serialization.py")),
    (
        "sharedsession: session dict, change detection",
        lambda f, n: f.endswith(("sharedsession/session.py", "sharedsession/_state.py")),
    ),
    (
        "sharedsession: manager, flows (what to write)",
        lambda f, n: f.endswith(
            tuple(
                f"sharedsession/{m}.py"
                for m in ("manager", "_flows", "_driver", "ids", "expiry", "crypto")
            )
        ),
    ),
    (
        "sharedsession: Flask adapter, cookie",
        lambda f, n: f.endswith(
            tuple(f"sharedsession/{m}.py" for m in ("flask", "_werkzeug", "cookies", "metrics"))
        ),
    ),
    ("sharedsession: Redis store", lambda f, n: "sharedsession/stores/" in f),
    ("flask_session", lambda f, n: "/flask_session/" in f),
    ("redis-py", lambda f, n: "/redis/" in f),
    ("json (C and Python)", lambda f, n: "/json/" in f or "_json" in n),
    ("msgspec", lambda f, n: "msgspec" in n or "/msgspec/" in f),
    ("hashing, HMAC", lambda f, n: "hash" in n or "hmac" in f or "hashlib" in f),
    (
        "Flask, Werkzeug, itsdangerous",
        lambda f, n: "/flask/" in f or "/werkzeug/" in f or "/itsdangerous/" in f,
    ),  # fmt: skip
    ("the benchmark's own driver and routes", lambda f, n: "/bench/" in f),
]


def component(filename: str, name: str) -> str:
    for label, test in COMPONENTS:
        if test(filename, name):
            return label
    return "Python itself (builtins, stdlib)"


def unprofiled_us(call: Callable[[], None], requests: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(requests):
            call()
        samples.append((time.perf_counter() - started) / requests * 1e6)
    return statistics.median(samples)


def profiled_shares(call: Callable[[], None], requests: int) -> dict[str, float]:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        call()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}
    for (filename, _, name), (_, _, own, _, _) in stats.items():
        label = component(filename, name)
        totals[label] = totals.get(label, 0.0) + own
    whole = sum(totals.values()) or 1.0
    return {label: value / whole for label, value in totals.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    out: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        try:
            apps = {variant: flask_app(variant, server.url) for variant in VARIANTS + TIMED_ONLY}
            for workload in PROFILED:
                paths, size = WORKLOADS[workload]
                times: dict[str, list[float]] = {}
                calls = {}
                for variant, app in apps.items():
                    cookie = seed_cookie(app, size) if size else None
                    calls[variant] = _caller(app, paths[0], cookie)
                    calls[variant]()  # warm up
                for _ in range(args.rounds):  # interleaved: the machine's load hits all alike
                    for variant, call in calls.items():
                        times.setdefault(variant, []).append(unprofiled_us(call, args.requests, 1))
                wall = {variant: statistics.median(t) for variant, t in times.items()}
                floor = wall["none"]
                out += [
                    f"### {workload} ({paths[0]})",
                    "",
                    "µs per request, no profiler (median of"
                    f" {args.rounds} rounds of {args.requests}): "
                    + ", ".join(
                        f"{v} {wall[v]:.0f} ({wall[v] - floor:+.0f} over none)"
                        for v in VARIANTS + TIMED_ONLY
                    ),  # fmt: skip
                    "",
                    "| component | sharedsession-redis µs | flask-session µs |",
                    "| --- | ---: | ---: |",
                ]
                shares = {v: profiled_shares(calls[v], args.requests) for v in VARIANTS[1:]}
                labels = sorted(
                    {label for s in shares.values() for label in s},
                    key=lambda label: -shares["sharedsession-redis"].get(label, 0.0),
                )
                for label in labels:
                    cells = [f"{shares[v].get(label, 0.0) * wall[v]:.1f}" for v in VARIANTS[1:]]
                    out.append(f"| {label} | " + " | ".join(cells) + " |")
                out.append("")
                print("\n".join(out[-len(labels) - 7 :]), flush=True)
            costs = server_cost.table(server_cost.measure(server.url))
            out += costs
            print("\n".join(costs), flush=True)
        finally:
            server.stop()
    path = Path(__file__).resolve().parent / "results" / "profile.md"
    path.write_text("\n".join(out) + "\n")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
