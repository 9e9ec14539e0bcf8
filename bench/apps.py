"""The benchmarked apps: one set of routes, one app per variant.

Every variant serves the same routes doing the same work; only the session
machinery differs. ``BENCH_VARIANT``, ``BENCH_REDIS_URL``, ``BENCH_SQLITE_PATH``,
``BENCH_POSTGRES_URL`` and ``BENCH_MEMCACHED`` (``host:port``) configure the apps that a
server (gunicorn, uvicorn)
imports: ``bench.apps:flask_app()`` and ``bench.apps:asgi_app()``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import MutableMapping
from typing import Any

from flask import Flask
from flask import g
from flask import session

from bench.workloads import LARGE
from bench.workloads import SMALL

#: What the blind-write route stores: a new value on every request.
SEEN = itertools.count()

FLASK_VARIANTS = {
    "none": "no session (the floor)",
    "cookie": "Flask signed-cookie session",
    "flask-session": "Flask-Session 0.8.0, Redis, default config",
    "flask-session-norefresh": "Flask-Session 0.8.0, Redis, SESSION_REFRESH_EACH_REQUEST=False",
    "sharedsession-redis": "sharedsession, Redis",
    "bare-redis": "the least a Redis session can do, keeping no promise (bench/bare.py)",
    "sharedsession-sqlite": "sharedsession, SQLite",
    "sharedsession-postgres": "sharedsession, PostgreSQL (SQLAlchemy store)",
    "sharedsession-memcached": "sharedsession, memcached",
}

ASGI_VARIANTS = {
    "asgi-none": "Starlette, no session (the floor)",
    "asgi-cookie": "Starlette SessionMiddleware (signed cookie)",
    "asgi-starsessions": "starsessions 2.2, Redis",
    "asgi-sharedsession": "sharedsession SessionMiddleware, AsyncRedisStore",
    "asgi-sharedsession-postgres": "sharedsession SessionMiddleware, AsyncSQLAlchemyStore",
    "asgi-sharedsession-memcached": "sharedsession SessionMiddleware, AsyncMemcachedStore",
    "asgi-bare-redis": "the least an async Redis session can do (bench/bare_asgi.py)",
}


def flask_app(variant: str | None = None, redis_url: str | None = None) -> Flask:
    """The Flask app of ``variant`` (default: ``$BENCH_VARIANT``)."""
    import redis

    variant = variant or os.environ["BENCH_VARIANT"]
    redis_url = redis_url or os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    app = Flask("bench")
    # Without a secret key Flask opens no session at all: the true floor.
    app.config["SECRET_KEY"] = None if variant == "none" else "benchmark-secret"
    if variant.startswith("flask-session"):
        from flask_session import Session as FlaskSession

        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(redis_url))
        if variant == "flask-session-norefresh":
            app.config["SESSION_REFRESH_EACH_REQUEST"] = False
        FlaskSession(app)
    elif variant == "sharedsession-redis":
        from sharedsession.flask import Session

        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis_url)
        Session(app)
    elif variant == "bare-redis":
        from bench.bare import BareInterface

        app.session_interface = BareInterface(redis_url)
    elif variant == "sharedsession-sqlite":
        from sharedsession.flask import Session

        path = os.environ.get("BENCH_SQLITE_PATH", "/tmp/sharedsession-bench.sqlite3")
        app.config.update(SESSION_TYPE="sqlite", SESSION_SQLITE_PATH=path)
        Session(app)
    elif variant == "sharedsession-postgres":
        from sharedsession.flask import Session

        url = os.environ["BENCH_POSTGRES_URL"]
        app.config.update(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=url)
        Session(app)
    elif variant == "sharedsession-memcached":
        from sharedsession.flask import Session

        address = os.environ.get("BENCH_MEMCACHED", "127.0.0.1:11211")
        app.config.update(SESSION_TYPE="memcached", SESSION_MEMCACHED=address)
        Session(app)
    elif variant not in ("none", "cookie"):
        raise ValueError(f"unknown variant {variant!r}")

    def current() -> MutableMapping[str, Any]:
        if variant == "none":
            if "fake" not in g:
                g.fake = {"user": SMALL["user"], "cart": LARGE["cart"]}
            fake: MutableMapping[str, Any] = g.fake
            return fake
        return session

    @app.get("/seed/<size>")
    def seed(size: str) -> str:
        current().update(LARGE if size == "large" else SMALL)
        return "ok"

    @app.get("/untouched")
    def untouched() -> str:
        return "ok"

    @app.get("/read")
    def read() -> str:
        return str(current().get("user"))

    @app.get("/read2k")
    def read2k() -> str:
        return str(len(current().get("cart", [])))

    @app.get("/write")
    def write() -> str:
        data = current()
        data["counter"] = data.get("counter", 0) + 1
        return "ok"

    @app.get("/blindwrite")
    def blind_write() -> str:
        current()["last_seen"] = next(SEEN)  # sets without reading: a new value every time
        return "ok"

    return app


def asgi_app(variant: str | None = None, redis_url: str | None = None) -> Any:
    """The Starlette app of ``variant`` (default: ``$BENCH_VARIANT``)."""
    import redis.asyncio
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    variant = variant or os.environ["BENCH_VARIANT"]
    redis_url = redis_url or os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    middleware: list[Middleware] = []
    if variant == "asgi-cookie":
        from starlette.middleware.sessions import SessionMiddleware

        middleware = [Middleware(SessionMiddleware, secret_key="benchmark-secret")]
    elif variant == "asgi-starsessions":
        from starsessions import SessionAutoloadMiddleware
        from starsessions import SessionMiddleware as StarSessions
        from starsessions.stores.redis import RedisStore as StarRedis

        store = StarRedis(connection=redis.asyncio.Redis.from_url(redis_url))
        middleware = [
            Middleware(StarSessions, store=store, lifetime=3600, cookie_https_only=False),
            Middleware(SessionAutoloadMiddleware),
        ]
    elif variant == "asgi-sharedsession":
        from sharedsession.asgi import SessionMiddleware as Shared
        from sharedsession.stores.redis import AsyncRedisStore

        middleware = [Middleware(Shared, store=AsyncRedisStore.from_url(redis_url))]
    elif variant == "asgi-sharedsession-postgres":
        from sharedsession.asgi import SessionMiddleware as Shared
        from sharedsession.stores.sqlalchemy import AsyncSQLAlchemyStore

        sql_store = AsyncSQLAlchemyStore(os.environ["BENCH_POSTGRES_URL"])
        middleware = [Middleware(Shared, store=sql_store)]
    elif variant == "asgi-sharedsession-memcached":
        from sharedsession.asgi import SessionMiddleware as Shared
        from sharedsession.stores.memcached import AsyncMemcachedStore

        address = os.environ.get("BENCH_MEMCACHED", "127.0.0.1:11211")
        middleware = [Middleware(Shared, store=AsyncMemcachedStore(address))]
    elif variant == "asgi-bare-redis":
        from bench.bare_asgi import BareMiddleware

        middleware = [Middleware(BareMiddleware, url=redis_url)]
    elif variant != "asgi-none":
        raise ValueError(f"unknown variant {variant!r}")

    def current(request: Request) -> MutableMapping[str, Any]:
        if variant == "asgi-none":
            return {"user": SMALL["user"], "cart": LARGE["cart"]}
        return request.session

    async def seed(request: Request) -> PlainTextResponse:
        size = request.path_params["size"]
        current(request).update(LARGE if size == "large" else SMALL)
        return PlainTextResponse("ok")

    async def untouched(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def read(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(current(request).get("user")))

    async def read2k(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(current(request).get("cart", []))))

    async def write(request: Request) -> PlainTextResponse:
        data = current(request)
        data["counter"] = data.get("counter", 0) + 1
        return PlainTextResponse("ok")

    async def blind_write(request: Request) -> PlainTextResponse:
        current(request)["last_seen"] = next(SEEN)
        return PlainTextResponse("ok")

    routes = [
        Route("/seed/{size}", seed),
        Route("/untouched", untouched),
        Route("/read", read),
        Route("/read2k", read2k),
        Route("/write", write),
        Route("/blindwrite", blind_write),
    ]
    return Starlette(routes=routes, middleware=middleware)
