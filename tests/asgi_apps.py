"""Starlette, FastAPI and Quart apps with the same routes as tests/flask_apps.py."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from quart import Quart
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from sharedsession.asgi import SessionMiddleware
from sharedsession.asgi import load_session
from sharedsession.fastapi import SessionDep
from sharedsession.quart import Session as QuartSessionExtension
from sharedsession.quart import session as quart_session
from sharedsession.session import Session
from sharedsession.stores.base import AsyncSessionStore
from sharedsession.stores.base import user_index


async def untouched(request: Request) -> PlainTextResponse:
    return PlainTextResponse("untouched")


async def get(request: Request) -> PlainTextResponse:
    return PlainTextResponse(repr(request.session.get(request.path_params["key"])))


async def set_(request: Request) -> PlainTextResponse:
    request.session[request.path_params["key"]] = request.path_params["value"]
    return PlainTextResponse("ok")


async def append(request: Request) -> PlainTextResponse:
    request.session.setdefault("cart", []).append(request.path_params["item"])
    return PlainTextResponse(repr(request.session["cart"]))


async def clear(request: Request) -> PlainTextResponse:
    request.session.clear()
    return PlainTextResponse("ok")


async def login(request: Request) -> PlainTextResponse:
    session: Session = request.session  # type: ignore[assignment]
    session.bind_user(request.path_params["user"])
    session["user"] = request.path_params["user"]
    return PlainTextResponse("ok")


async def logout(request: Request) -> PlainTextResponse:
    session: Session = request.session  # type: ignore[assignment]
    session.destroy()
    return PlainTextResponse("ok")


async def regenerate(request: Request) -> PlainTextResponse:
    session: Session = request.session  # type: ignore[assignment]
    session.regenerate()
    return PlainTextResponse("ok")


async def lazy(request: Request) -> PlainTextResponse:
    session = await load_session(request)
    return PlainTextResponse(repr(session.get("user")))


def sync_get(request: Request) -> PlainTextResponse:
    return PlainTextResponse(repr(request.session.get(request.path_params["key"])))


async def devices(request: Request) -> JSONResponse:
    store: AsyncSessionStore = request.app.state.store
    session: Session = request.session  # type: ignore[assignment]
    infos = await user_index(store).sessions_for_user(session.user_id or "-")
    return JSONResponse([info.handle for info in infos])


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(repr(websocket.session.get("user")))
    await websocket.close()


async def as_json(request: Request) -> JSONResponse:
    # The session is a dict: JSON encoders take it as it is.
    assert isinstance(request.session, dict)
    return JSONResponse(request.session)


async def fail(request: Request) -> PlainTextResponse:
    request.session[request.path_params["key"]] = "half-done"
    return PlainTextResponse("failed", status_code=500)


ROUTES = [
    Route("/untouched", untouched),
    Route("/get/{key}", get),
    Route("/set/{key}/{value}", set_),
    Route("/append/{item}", append),
    Route("/clear", clear),
    Route("/login/{user}", login),
    Route("/logout", logout),
    Route("/regenerate", regenerate),
    Route("/lazy", lazy),
    Route("/sync/{key}", sync_get),
    Route("/devices", devices),
    Route("/json", as_json),
    Route("/fail/{key}", fail),
    WebSocketRoute("/ws", ws),
]


def starlette_app(store: AsyncSessionStore, **options: Any) -> Starlette:
    app = Starlette(routes=ROUTES)
    app.state.store = store
    app.add_middleware(SessionMiddleware, store=store, **options)
    return app


def fastapi_app(store: AsyncSessionStore, **options: Any) -> FastAPI:
    app = FastAPI()
    app.state.store = store

    @app.get("/me")
    async def me(session: SessionDep) -> dict[str, Any]:
        return {"user": session.get("user"), "cart": session.get("cart", [])}

    @app.get("/json")
    async def as_json(session: SessionDep) -> dict[str, Any]:
        return session

    @app.get("/add/{item}")
    async def add(item: str, session: SessionDep) -> list[str]:
        cart: list[str] = session.setdefault("cart", [])
        cart.append(item)
        return cart

    app.add_middleware(SessionMiddleware, store=store, **options)
    return app


def quart_app(store: AsyncSessionStore | None = None, **config: Any) -> tuple[Quart, Any]:
    app = Quart("quart-instance")
    app.config.update({"SECRET_KEY": "test-secret", "SESSION_TYPE": "memory", **config})
    ext = QuartSessionExtension(app, store=store)

    @app.get("/untouched")
    async def q_untouched() -> str:
        return "untouched"

    @app.get("/get/<key>")
    async def q_get(key: str) -> str:
        return repr(quart_session.get(key))

    @app.get("/set/<key>/<value>")
    async def q_set(key: str, value: str) -> str:
        quart_session[key] = value
        return "ok"

    @app.get("/append/<item>")
    async def q_append(item: str) -> str:
        quart_session.setdefault("cart", []).append(item)
        return repr(quart_session["cart"])

    @app.get("/login/<user>")
    async def q_login(user: str) -> str:
        quart_session.bind_user(user)
        quart_session["user"] = user
        return "ok"

    @app.get("/logout")
    async def q_logout() -> str:
        quart_session.destroy()
        return "ok"

    @app.get("/logout-others")
    async def q_logout_others() -> str:
        user = quart_session.user_id
        assert user is not None
        return str(await ext.revoke_user(user, keep=quart_session))

    @app.get("/fail/<key>")
    async def q_fail(key: str) -> tuple[str, int]:
        quart_session[key] = "half-done"
        return "failed", 500

    @app.get("/json")
    async def q_json() -> Any:
        assert isinstance(quart_session, dict)
        return json.dumps(quart_session._get_current_object())  # type: ignore[attr-defined]

    return app, ext
