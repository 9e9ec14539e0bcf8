"""Bursts on a healthy Redis wait for a free connection; they never get 503.

1,000 requests with the same session cookie at once, against one ASGI app
(one event loop) and one threaded Flask app (a thread per request), both with
the default pool of 100 connections per process.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections import Counter
from collections.abc import Iterator

import httpx2
import pytest
from werkzeug.serving import make_server

from sharedsession.stores.redis import AsyncRedisStore
from tests.asgi_apps import starlette_app
from tests.flask_apps import make_app
from tests.servers import RedisServer

pytestmark = pytest.mark.integration

BURST = 1000


def test_asgi_burst_waits_instead_of_failing(
    redis_server: RedisServer, redis_client: object
) -> None:
    async def burst() -> Counter[int]:
        store = AsyncRedisStore.from_url(redis_server.url)
        app = starlette_app(store, debug=True)
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.get("/set/a/1")
            results = await asyncio.gather(*(client.get("/get/a") for _ in range(BURST)))
        await store.aclose()
        assert {r.text for r in results if r.status_code == 200} == {"'1'"}
        return Counter(r.status_code for r in results)

    assert asyncio.run(burst()) == {200: BURST}


@pytest.fixture
def flask_server(redis_server: RedisServer, redis_client: object) -> Iterator[int]:
    app, ext = make_app(SESSION_TYPE="redis", SESSION_REDIS=redis_server.url, TESTING=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    server.request_queue_size = BURST
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        server.shutdown()
        thread.join()
        assert ext.store is not None
        ext.store.close()


def test_threaded_flask_burst_waits_instead_of_failing(flask_server: int) -> None:
    first = http.client.HTTPConnection("127.0.0.1", flask_server, timeout=30)
    first.request("GET", "/set/a/1")
    response = first.getresponse()
    response.read()
    cookie = (response.getheader("Set-Cookie") or "").split(";")[0]
    first.close()
    statuses: list[int] = []
    start = threading.Barrier(BURST)

    def one() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", flask_server, timeout=60)
        start.wait()
        try:
            connection.request("GET", "/get/a", headers={"Cookie": cookie})
            reply = connection.getresponse()
            body = reply.read()
            statuses.append(reply.status if body == b"'1'" or reply.status != 200 else -1)
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(statuses) == {200: BURST}
