"""Client cost of one Redis store call, against a raw redis-py HGETALL in the same run.

``.venv/bin/python -m bench.store_calls`` starts a private redis-server and
times ``RedisStore.load`` (with a refresh) and ``RedisStore.apply`` of one
key, 5 rounds of 3,000 each, next to a plain ``Redis.hgetall``; the ratios to
the plain call are steadier than the absolute numbers on a busy machine.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import redis

from sharedsession.ids import new_id
from sharedsession.ids import store_key
from sharedsession.stores.base import ChangeSet
from sharedsession.stores.base import Refresh
from sharedsession.stores.redis import RedisStore
from tests.servers import RedisServer


def main(rounds: int = 5, calls: int = 3000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        try:
            store = RedisStore.from_url(server.url)
            raw = redis.Redis.from_url(server.url)
            key, now = store_key(new_id()), time.time()
            data = {"user": '"alice"', "csrf": '"x"'}
            store.apply(key, ChangeSet(now, now + 3600, data, created=now))
            name = f"session:{{{key}}}"
            timed: dict[str, list[float]] = {"load": [], "apply": [], "raw hgetall": []}
            for _ in range(rounds):
                started = time.perf_counter()
                for _ in range(calls):
                    store.load(key, refresh=Refresh(time.time(), 3600, 36))
                timed["load"].append(time.perf_counter() - started)
                started = time.perf_counter()
                for i in range(calls):
                    store.apply(key, ChangeSet(time.time(), time.time() + 3600, {"n": str(i)}))
                timed["apply"].append(time.perf_counter() - started)
                started = time.perf_counter()
                for _ in range(calls):
                    raw.hgetall(name)
                timed["raw hgetall"].append(time.perf_counter() - started)
            store.close()
            raw.close()
        finally:
            server.stop()
    us = {what: statistics.median(times) / calls * 1e6 for what, times in timed.items()}
    for what, value in us.items():
        ratio = value / us["raw hgetall"]
        print(f"{what:12} {value:7.1f} µs  {ratio:.2f}x of a raw HGETALL")
    return us


if __name__ == "__main__":
    main()
