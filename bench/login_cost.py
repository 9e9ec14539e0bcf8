"""Login cost against the number of sessions one user has (Redis, in-process Flask).

Run: ``.venv/bin/python -m bench.login_cost`` (starts a private redis-server).
Prints the median of 30 logins with 1, 100 and 10,000 entries in the user's index.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import redis

from tests.flask_apps import make_app
from tests.servers import RedisServer


def main() -> None:
    server = RedisServer(Path(tempfile.mkdtemp())).start()
    try:
        app, _ = make_app(SESSION_TYPE="redis", SESSION_REDIS=server.url, TESTING=True)
        client = redis.Redis(port=server.port)
        for sessions in (1, 100, 10_000):
            client.flushdb()
            for _ in range(min(sessions, 100)):
                app.test_client().get("/login/bob")
            if sessions > 100:
                client.zadd("session:user:bob", {f"h{i}": i for i in range(sessions - 100)})
            times = []
            for _ in range(30):
                browser = app.test_client()
                browser.get("/set/a/1")
                started = time.perf_counter()
                browser.get("/login/bob")
                times.append(time.perf_counter() - started)
            median = statistics.median(times) * 1000
            print(f"{sessions:>6} sessions of one user: login {median:.2f} ms (median of 30)")
        client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
