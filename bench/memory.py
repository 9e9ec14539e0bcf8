"""Bytes per session in Redis: sharedsession's hash against Flask-Session's blob.

Both libraries, and the bare session of ``bench/bare.py`` (a hash of the
values alone), store the same session through their real Flask integration
into one private redis-server; ``MEMORY USAGE`` then reports what each key
costs. Run with ``make bench`` (or ``.venv/bin/python -m bench.memory``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from flask import session

from bench.workloads import LARGE
from bench.workloads import SMALL
from tests.servers import RedisServer

RESULTS = Path(__file__).resolve().parent / "results"
#: The row of bench/bare.py: a hash of the values alone, no metadata (the
#: least a hash with a field per key holds).
BARE = "bare-redis (values only)"


def store_session(app: Flask, data: dict[str, Any]) -> None:
    @app.get("/fill")
    def fill() -> str:
        session.update(data)
        return "ok"

    response = app.test_client().get("/fill")
    assert response.status_code == 200, response.text


def sharedsession_app(client: redis.Redis) -> Flask:
    from sharedsession.flask import Session

    app = Flask("sharedsession")
    app.config.update(SECRET_KEY="k", SESSION_TYPE="redis", SESSION_REDIS=client)
    Session(app)
    return app


def flask_session_app(client: redis.Redis) -> Flask:
    from flask_session import Session

    app = Flask("flask_session")
    app.config.update(SECRET_KEY="k", SESSION_TYPE="redis", SESSION_REDIS=client)
    Session(app)
    return app


def bare_app(client: redis.Redis) -> Flask:
    from bench.bare import BareInterface

    options = client.connection_pool.connection_kwargs
    app = Flask("bare")
    app.config.update(SECRET_KEY="k")
    app.session_interface = BareInterface(f"redis://{options['host']}:{options['port']}")
    return app


def measure(make: Any, client: redis.Redis, data: dict[str, Any]) -> dict[str, Any]:
    client.flushdb()
    store_session(make(client), data)
    (key,) = client.keys("*")
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "hash":
        payload = sum(len(k) + len(v) for k, v in client.hgetall(key).items())
    else:
        payload = client.strlen(key)
    return {
        "key_type": kind,
        "encoding": str(client.object("encoding", key), "ascii"),
        "payload_bytes": payload,
        "memory_usage_bytes": client.memory_usage(key, samples=0),
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp)).start()
        try:
            client = server.client()
            version = client.info("server")["redis_version"]
            rows = []
            for label, data in (("small (3 keys)", SMALL), ("2 KB (cart of 20)", LARGE)):
                json_size = len(json.dumps(data, separators=(",", ":")))
                for name, make, listpack_value in (
                    ("Flask-Session 0.8.0", flask_session_app, 64),
                    ("sharedsession", sharedsession_app, 64),
                    ("sharedsession, hash-max-listpack-value 4096", sharedsession_app, 4096),
                    (BARE, bare_app, 64),
                ):
                    # 64 is Redis's default: a hash with a longer value leaves the
                    # compact listpack encoding.
                    client.config_set("hash-max-listpack-value", listpack_value)
                    rows.append(
                        {"session": label, "json_bytes": json_size, "library": name}
                        | measure(make, client, data)
                    )
            client.close()
        finally:
            server.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory.json").write_text(
        json.dumps({"redis_version": version, "rows": rows}, indent=2) + "\n"
    )
    lines = [
        f"Bytes per session in Redis {version} (`MEMORY USAGE key SAMPLES 0`):",
        "",
        "| session (compact JSON) | library | stored as | payload bytes | MEMORY USAGE |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['session']}, {row['json_bytes']} B | {row['library']}"
            f" | {row['key_type']} ({row['encoding']})"
            f" | {row['payload_bytes']} | {row['memory_usage_bytes']} |"
        )
    table = "\n".join(lines) + "\n"
    (RESULTS / "memory.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
