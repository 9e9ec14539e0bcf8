"""The Redis server's CPU per command, for each command a session request sends.

Part of ``make profile``. Each command is sent ``calls`` times on one
connection, in interleaved rounds, and the redis-server's own CPU (``INFO
cpu``, user + system: parsing, the command or script, the socket) is read
before and after. The same shapes the benchmark's sessions send: Flask-Session's
``GET`` and ``SET``, this library's ``HGETALL`` and its scripts (with the
arguments the Redis layout builds), and beside them what no conditional write
can go below: a round trip that does nothing (``PING``), a script that does
nothing, and the least script that writes only into a live session (check it,
set the keys, move the TTL).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import redis

from sharedsession.stores import _redis_layout as layout
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.base import KeyWrites

#: The least a write that must not bring back an ended session runs on the
#: server: one check, the keys, the TTL (no field deletes, no metadata rules).
LEAST_CONDITIONAL = """
local state = redis.call('HMGET', KEYS[1], ':created', ':forward')
if not state[1] or state[2] then return 'gone' end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 'applied'
"""

EMPTY = "return 'applied'"


def _script_args(flow: layout.Flow[Any]) -> tuple[str, list[str], list[Any]]:
    """The script name, keys and arguments a layout flow sends first."""
    op = next(flow)
    assert isinstance(op, layout.Script), op
    return op.name, op.keys, op.args


def _shapes(client: Any) -> dict[str, Callable[[], Any]]:
    now = time.time()
    key = "0" * 43
    name = layout.session_key("session:", key)
    blob = b"\x85" + b"x" * 199  # Flask-Session's msgpack blob of the small session
    client.hset(
        name,
        mapping={
            layout.CREATED: repr(now),
            layout.ISSUED: repr(now),
            layout.SEEN: repr(now),
            layout.EXPIRES: repr(now + 3600),
            "user_id": "12345",
            "user": '"alice@example.com"',
            "csrf_token": '"5f2b0c1e9a7d4c3b8e6f1a2d3c4b5a69"',
            "counter": "1",
        },
    )
    client.pexpire(name, 3_600_000)
    client.set("session:flask", blob, ex=3600)
    changes = ChangeSet(now, now + 3600, {"counter": "2"}, idle=3600)
    writes = KeyWrites(now, 3600, None, {"counter": "2"}, None, None)
    apply_name, apply_keys, apply_args = _script_args(layout.apply("session:", key, changes))
    keys_name, keys_keys, keys_args = _script_args(layout.write_keys("session:", key, writes))
    sha = {name: client.script_load(src) for name, src in layout.SCRIPTS.items()}
    least, empty = client.script_load(LEAST_CONDITIONAL), client.script_load(EMPTY)
    fields = ["counter", "2", layout.SEEN, repr(now), layout.EXPIRES, repr(now + 3600)]

    def pipelined() -> Any:
        pipe = client.pipeline(transaction=False)
        pipe.hset(name, mapping={"counter": "2"})
        pipe.pexpire(name, 3_600_000)
        return pipe.execute()

    return {
        "PING (a round trip that does nothing)": client.ping,
        "GET (Flask-Session's read)": lambda: client.get("session:flask"),
        "SET ... EX (Flask-Session's write)": lambda: client.set("session:flask", blob, ex=3600),
        "HGETALL (a read here)": lambda: client.hgetall(name),
        "EVALSHA of a script that does nothing": lambda: client.evalsha(empty, 1, name),
        "EVALSHA of the least conditional write (HMGET, HSET, PEXPIRE)": lambda: client.evalsha(
            least, 1, name, "3600000", *fields
        ),
        "EVALSHA apply (a write here)": lambda: client.evalsha(
            sha[apply_name], len(apply_keys), *apply_keys, *apply_args
        ),
        "EVALSHA write_keys (a write that never reads, here)": lambda: client.evalsha(
            sha[keys_name], len(keys_keys), *keys_keys, *keys_args
        ),
        "HSET + PEXPIRE in one round trip (unconditional, bare-redis)": pipelined,
    }


def _server_us(client: Any) -> float:
    info = client.info("cpu")
    return (float(info["used_cpu_user"]) + float(info["used_cpu_sys"])) * 1e6


def measure(url: str, calls: int = 10_000, rounds: int = 3) -> dict[str, float]:
    """Median server µs per call of each shape, over ``rounds`` interleaved rounds."""
    client = redis.Redis.from_url(url)
    try:
        shapes = _shapes(client)
        samples: dict[str, list[float]] = {label: [] for label in shapes}
        for _ in range(rounds):
            for label, call in shapes.items():
                for _ in range(calls // 20):  # warm up
                    call()
                before = _server_us(client)
                for _ in range(calls):
                    call()
                samples[label].append((_server_us(client) - before) / calls)
        return {label: statistics.median(values) for label, values in samples.items()}
    finally:
        client.close()


def table(costs: dict[str, float]) -> list[str]:
    """The Markdown lines ``make profile`` prints and writes."""
    lines = [
        "### Redis server CPU per command",
        "",
        "µs of the redis-server's CPU per call (`INFO cpu`), median of interleaved rounds:",
        "",
        "| command | server µs |",
        "| --- | ---: |",
    ]
    lines += [f"| {label} | {us:.1f} |" for label, us in costs.items()]
    get, put = costs["GET (Flask-Session's read)"], costs["SET ... EX (Flask-Session's write)"]
    read = costs["HGETALL (a read here)"]
    least = costs["EVALSHA of the least conditional write (HMGET, HSET, PEXPIRE)"]
    ours = costs["EVALSHA apply (a write here)"]
    lines += [
        "",
        f"Per read-modify-write: Flask-Session's GET + SET {get + put:.1f} µs;"
        f" HGETALL + the least conditional write {read + least:.1f} µs;"
        f" HGETALL + apply (here) {read + ours:.1f} µs.",
        "",
    ]
    return lines
