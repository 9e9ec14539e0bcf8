"""The in-process driver: WSGI calls straight into each Flask app, no network noise.

It measures the libraries' own cost per request, including their store round
trips to the private redis-server and memcached, and counts those round trips
on the client side (one per request written to a Redis or memcached socket).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import redis.connection
from flask import Flask
from werkzeug.test import EnvironBuilder

from bench.apps import FLASK_VARIANTS
from bench.apps import flask_app

#: name -> (path of each request in a repeating cycle, which seeded session's cookie)
WORKLOADS: dict[str, tuple[list[str], str | None]] = {
    "untouched": (["/untouched"], "small"),
    "read": (["/read"], "small"),
    "write": (["/write"], "small"),
    "blind write": (["/blindwrite"], "small"),
    "read 2 KB": (["/read2k"], "large"),
    "90/10 mix": (["/read"] * 9 + ["/write"], "small"),
    "no cookie": (["/read"], None),
}

_sent = [0]


def _count_round_trips() -> None:
    """Count every request written to any Redis or memcached connection in this process."""
    from pymemcache.client.base import Client

    original = redis.connection.AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        _sent[0] += 1
        original(self, command, check_health)  # type: ignore[no-untyped-call]

    redis.connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    # pymemcache sends each command (several keys or not) in one write, and reads its reply.
    for name in ("_fetch_cmd", "_store_cmd", "_misc_cmd"):
        setattr(Client, name, _counting(getattr(Client, name)))


def _counting(method: Callable[..., Any]) -> Callable[..., Any]:
    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sent[0] += 1
        return method(self, *args, **kwargs)

    return counted


def seed_cookie(app: Flask, size: str) -> str:
    client = app.test_client()
    assert client.get(f"/seed/{size}").status_code == 200
    found = client.get_cookie("session")
    return found.value if found is not None else "no-session"


def _caller(app: Flask, path: str, cookie: str | None) -> Callable[[], None]:
    headers = [("Cookie", f"session={cookie}")] if cookie else []
    environ = EnvironBuilder(path=path, headers=headers).get_environ()

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        assert status.startswith("200"), status
        return None

    def call() -> None:
        body = app(dict(environ), start_response)
        for _ in body:
            pass
        getattr(body, "close", lambda: None)()

    return call


def cpu_seconds(client: Any) -> tuple[float, float, float]:
    """CPU seconds so far: the whole machine (``/proc/stat``), this process, the redis-server."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    machine = busy / os.sysconf("SC_CLK_TCK")
    own = sum(os.times()[:2])
    info = client.info("cpu")
    return machine, own, float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def server_usec(client: Any) -> float:
    """Microseconds of CPU the redis-server process used so far (``INFO cpu``):
    its commands, scripts, parsing and socket work, which is what bounds the
    requests one Redis core serves. (``INFO commandstats`` would count a
    script's commands twice: in the script's time and in their own.)"""
    info = client.info("cpu")
    return (float(info["used_cpu_user"]) + float(info["used_cpu_sys"])) * 1e6


def run(redis_url: str, rounds: int, requests: int, sqlite_path: str) -> dict[str, Any]:
    """Every variant and workload, in ``rounds`` interleaved rounds.

    Besides each cell's numbers, ``_run`` holds the CPU the rest of the machine
    used meanwhile (other processes than this one and the redis-server, in
    cores: 0.0 on a quiet machine) and the noise: the median, over cells, of
    the spread of a cell's requests/s between rounds.
    """
    os.environ["BENCH_SQLITE_PATH"] = sqlite_path
    _count_round_trips()
    apps = {variant: flask_app(variant, redis_url) for variant in FLASK_VARIANTS}
    cookies = {
        variant: {size: seed_cookie(app, size) for size in ("small", "large")}
        for variant, app in apps.items()
    }
    rps: dict[tuple[str, str], list[float]] = {}
    latencies: dict[tuple[str, str], list[float]] = {}
    trips: dict[tuple[str, str], float] = {}
    server: dict[tuple[str, str], list[float]] = {}
    redis_client = redis.Redis.from_url(redis_url)
    cpu_before, wall_before = cpu_seconds(redis_client), time.perf_counter()
    order = list(apps)
    for _ in range(rounds):
        random.shuffle(order)
        for variant in order:
            for workload, (paths, size) in WORKLOADS.items():
                cookie = cookies[variant][size] if size else None
                calls = [_caller(apps[variant], path, cookie) for path in paths]
                for call in calls:
                    call()  # warm up
                cell = (variant, workload)
                samples = latencies.setdefault(cell, [])
                usec_before = server_usec(redis_client)  # before counting: INFO is a trip
                sent_before = _sent[0]
                started = time.perf_counter()
                for i in range(requests):
                    t0 = time.perf_counter()
                    calls[i % len(calls)]()
                    samples.append(time.perf_counter() - t0)
                elapsed = time.perf_counter() - started
                rps.setdefault(cell, []).append(requests / elapsed)
                trips[cell] = (_sent[0] - sent_before) / requests
                used = server_usec(redis_client) - usec_before
                server.setdefault(cell, []).append(used / requests)
    machine, own, server_cpu = (
        after - before for after, before in zip(cpu_seconds(redis_client), cpu_before, strict=True)
    )
    wall = time.perf_counter() - wall_before
    redis_client.close()
    results: dict[str, Any] = {}
    for (variant, workload), values in rps.items():
        samples = sorted(latencies[(variant, workload)])
        results.setdefault(variant, {})[workload] = {
            "rps": statistics.median(values),
            "p50_us": samples[len(samples) // 2] * 1e6,
            "p99_us": samples[int(len(samples) * 0.99)] * 1e6,
            "round_trips": trips[(variant, workload)],
            "server_us": statistics.median(server[(variant, workload)]),
        }
    spreads = [(max(v) - min(v)) / statistics.median(v) for v in rps.values() if len(v) > 1]
    results["_run"] = {
        "other_cpu_cores": max(0.0, machine - own - server_cpu) / wall,
        "noise": statistics.median(spreads) if spreads else 0.0,
        "seconds": wall,
    }
    return results
