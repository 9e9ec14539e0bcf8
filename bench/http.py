"""The HTTP driver: each variant served by real servers on loopback, loaded by wrk.

Flask variants run under gunicorn (2 workers, 4 threads and 8 connections each), Starlette
variants under uvicorn (2 workers). Every variant's server runs for the whole
benchmark and rounds interleave the variants, so drift in the machine's speed
spreads over all of them. Loads go to 127.0.0.1 only, bounded in time.

Besides requests/s, each cell has the app server's CPU per request (its
processes' user and system time in ``/proc``, over the requests wrk
completed): wrk, Redis and the app share the machine's cores, so requests/s
moves with what the others take, while the app's CPU per request is its own
cost, and steadier.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent

#: name -> (path or a wrk Lua script of paths, which seeded session's cookie)
WORKLOADS: dict[str, tuple[str, str | None]] = {
    "untouched": ("/untouched", "small"),
    "read": ("/read", "small"),
    "write": ("/write", "small"),
    "blind write": ("/blindwrite", "small"),
    "read 2 KB": ("/read2k", "large"),
    "90/10 mix": ("mix", "small"),
    "no cookie": ("/read", None),
}

MIX_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  if counter % 10 == 0 then return wrk.format(nil, "/write") end
  return wrk.format(nil, "/read")
end
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for port {port} exited early")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/untouched", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def start(kind: str, variant: str, redis_url: str, sqlite_path: str) -> tuple[int, Any]:
    """Start the server of one variant; return its port and process."""
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_VARIANT": variant,
        "BENCH_REDIS_URL": redis_url,
        "BENCH_SQLITE_PATH": sqlite_path,
    }
    if kind == "wsgi":
        command = [
            sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "gthread",
            # Each worker takes at most half of wrk's 16 connections: gthread
            # workers accept greedily, and one worker holding all 16 halved a
            # cell's requests/s in some rounds.
            "--threads", "4", "--worker-connections", "8",
            "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
            "bench.apps:flask_app()",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "uvicorn", "--factory", "bench.apps:asgi_app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    _wait(port, process)
    return port, process


def seed(port: int, size: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/seed/{size}", timeout=10) as response:
        header = response.headers.get("Set-Cookie") or ""
    match = re.search(r"session=([^;]*)", header)
    return match.group(1) if match else "no-session"


def _duration_us(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def wrk(
    port: int, target: str, cookie: str | None, seconds: float, script_dir: str
) -> dict[str, float]:
    """One wrk run; requests/s, latency percentiles and the request count."""
    duration = f"{max(1, round(seconds))}s"  # wrk takes whole seconds
    command = ["wrk", "--threads", "2", "--connections", "16", "--duration", duration, "--latency"]
    if cookie:
        command += ["--header", f"Cookie: session={cookie}"]
    url = f"http://127.0.0.1:{port}"
    if target == "mix":
        script = Path(script_dir) / "mix.lua"
        script.write_text(MIX_SCRIPT)
        command += ["--script", str(script), url]
    else:
        command.append(url + target)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors against {url}{target}:\n{output}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.M))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "requests": float(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "p50_us": _duration_us(latency["50"]),
        "p99_us": _duration_us(latency["99"]),
    }


def app_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by the app server ``pid`` and every process under
    it (its workers), from ``/proc``."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(used.get(member, 0.0) for member in tree)


def _server_commands(client: redis.Redis) -> int:
    """Commands Redis and memcached have served (memcached: keys read, stores,
    touches and deletes, as its ``stats`` counts them)."""
    stats = client.info("commandstats")
    total = sum(int(v["calls"]) for k, v in stats.items() if not k.startswith("cmdstat_info"))
    address = os.environ.get("BENCH_MEMCACHED")
    if address:
        from pymemcache.client.base import Client

        memcached = Client(address, timeout=5)
        counters = memcached.stats()
        memcached.close()
        total += sum(
            int(counters[name])
            for name in (b"cmd_get", b"cmd_set", b"cmd_touch", b"delete_hits", b"delete_misses")
        )
    return total


def run(
    kind: str, variants: list[str], redis_url: str, rounds: int, seconds: float, sqlite_path: str
) -> dict[str, Any]:
    """Every variant and workload over HTTP, in ``rounds`` interleaved rounds."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed; `make bench` installs it from Debian packages")
    servers = {variant: start(kind, variant, redis_url, sqlite_path) for variant in variants}
    client = redis.Redis.from_url(redis_url)
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    commands: dict[tuple[str, str], list[float]] = {}
    try:
        cookies = {
            v: {s: seed(port, s) for s in ("small", "large")} for v, (port, _) in servers.items()
        }
        order = list(servers)
        with tempfile.TemporaryDirectory() as script_dir:
            for variant, (port, _) in servers.items():  # warm every worker up first
                wrk(port, "/read", cookies[variant]["small"], 1, script_dir)
            for _ in range(rounds):
                random.shuffle(order)
                for variant in order:
                    port = servers[variant][0]
                    for workload, (target, size) in WORKLOADS.items():
                        cookie = cookies[variant][size] if size else None
                        process = servers[variant][1]
                        before, cpu_before = _server_commands(client), app_cpu_seconds(process.pid)
                        result = wrk(port, target, cookie, seconds, script_dir)
                        used = _server_commands(client) - before
                        cpu = app_cpu_seconds(process.pid) - cpu_before
                        result["app_cpu_us"] = cpu / result["requests"] * 1e6
                        samples.setdefault((variant, workload), []).append(result)
                        commands.setdefault((variant, workload), []).append(
                            used / result["requests"]
                        )
    finally:
        for _, process in servers.values():
            process.terminate()
        for _, process in servers.values():
            process.wait(timeout=30)
        client.close()
    results: dict[str, Any] = {}
    for (variant, workload), runs in samples.items():
        results.setdefault(variant, {})[workload] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "p50_us": statistics.median(r["p50_us"] for r in runs),
            "p99_us": statistics.median(r["p99_us"] for r in runs),
            "app_cpu_us": statistics.median(r["app_cpu_us"] for r in runs),
            "server_commands": statistics.median(commands[(variant, workload)]),
        }
    return results
