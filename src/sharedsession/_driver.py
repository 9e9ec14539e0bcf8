"""The store calls around a request, written once for every adapter.

:mod:`.manager` decides and :mod:`._flows` orders the store calls; these
functions drive the flows (one driver per kind of store) and hold the outage
wording every adapter logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from typing import TypeVar

from . import _flows as flows
from ._flows import Apply
from ._flows import Delete
from ._flows import FlaskSessionOp
from ._flows import Flow
from ._flows import Load
from ._flows import WriteKeys
from ._state import degrade
from ._state import fail_on_use
from ._state import preload
from ._state import state
from .errors import StoreUnavailable
from .manager import Cookie
from .manager import Loader
from .manager import SessionManager
from .manager import ends_or_rotates
from .session import Session
from .stores.base import AsyncSessionStore
from .stores.base import SessionStore

logger = logging.getLogger("sharedsession")

T = TypeVar("T")


def cause(exc: StoreUnavailable) -> BaseException:
    # The backend's error says what failed (refused, timed out) and never holds a session ID.
    return exc.original_error or exc


def log_unavailable(exc: StoreUnavailable, stage: str) -> None:
    logger.error("session store unavailable during %s: %s", stage, cause(exc))


def log_not_saved(exc: StoreUnavailable) -> None:
    logger.warning("session store unavailable, session not saved: %s", cause(exc))


def degrades(manager: SessionManager, session: Session) -> bool:
    """Whether a failed save of ``session`` may go unsaved (``degrade``) rather than 503.

    A save that ends or rotates a session fails closed even when degrading:
    answering 200 to a logout whose delete failed would leave the session alive.
    """
    return manager.degrade and not ends_or_rotates(session)


def skipped(status: int) -> bool:
    """Whether a response with ``status`` leaves the session as it was.

    A request that failed with a server error changes nothing (as in Django):
    half a handler's changes are not saved, on every adapter alike.
    """
    return status >= 500


def run(store: SessionStore, flow: Flow[T]) -> T:
    """Drive ``flow`` with a blocking store."""
    reply: Any = None
    while True:
        try:
            op = flow.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
        if isinstance(op, Load):
            reply = store.load(op.key, refresh=op.refresh)
        elif isinstance(op, Apply):
            reply = store.apply(op.key, op.changes)
        elif isinstance(op, WriteKeys):
            write_keys = getattr(store, "write_keys", None)
            reply = None if write_keys is None else write_keys(op.key, op.writes)
        elif isinstance(op, Delete):
            store.delete(op.key)
            reply = None
        elif isinstance(op, FlaskSessionOp):
            reply = flask_session_call(store, op)
        else:
            time.sleep(op.seconds)
            reply = None


async def arun(store: AsyncSessionStore, flow: Flow[T]) -> T:
    """Drive ``flow`` with an async store."""
    reply: Any = None
    while True:
        try:
            op = flow.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result
        if isinstance(op, Load):
            reply = await store.load(op.key, refresh=op.refresh)
        elif isinstance(op, Apply):
            reply = await store.apply(op.key, op.changes)
        elif isinstance(op, WriteKeys):
            write_keys = getattr(store, "write_keys", None)
            reply = None if write_keys is None else await write_keys(op.key, op.writes)
        elif isinstance(op, Delete):
            await store.delete(op.key)
            reply = None
        elif isinstance(op, FlaskSessionOp):
            reply = await flask_session_call(store, op)
        else:
            await asyncio.sleep(op.seconds)
            reply = None


def flask_session_call(store: Any, op: FlaskSessionOp) -> Any:
    """The store's call for ``op`` (a Redis store's; awaitable on an async one)."""
    if op.action == "read":
        return store.read_flask_session(op.sid)
    if op.action == "write":
        return store.write_flask_session(op.sid, op.blob, op.ttl_ms)
    if op.action == "touch":
        return store.touch_flask_session(op.sid, op.ttl_ms)
    return store.delete_flask_session(op.sid)


def loader(manager: SessionManager, store: SessionStore) -> Loader:
    """The blocking loader :meth:`SessionManager.open` takes, for ``store``."""
    return lambda sid: run(store, flows.load(manager, sid))


def save(
    store: SessionStore, manager: SessionManager, session: Session, *, status: int = 200
) -> Cookie | None:
    """Save ``session`` to a blocking store, unless its response (``status``) is
    a server error (:func:`skipped`); return the cookie that response sends."""
    if skipped(status):
        return manager.cookie_unsaved(session)
    return run(store, flows.save(manager, session))


async def asave(
    store: AsyncSessionStore, manager: SessionManager, session: Session, *, status: int = 200
) -> Cookie | None:
    """The async twin of :func:`save`."""
    if skipped(status):
        return manager.cookie_unsaved(session)
    return await arun(store, flows.save(manager, session))


async def aload(
    manager: SessionManager, store: AsyncSessionStore, session: Session, *, defer: bool
) -> None:
    """Load ``session`` from an async store before the handler uses it.

    :param defer: When the store is down (and the manager does not degrade),
        raise :class:`StoreUnavailable` only when the handler uses the
        session, so requests that never touch it still succeed; else raise now.
    """
    st = state(session)
    if st.loaded:
        return
    sid = st.incoming_sid
    if sid is None:
        preload(session, None)
        return
    try:
        record, stale, stored = await arun(store, flows.load(manager, sid))
    except StoreUnavailable as exc:
        if manager.degrade:
            degrade(session, exc)
        elif defer:
            fail_on_use(session, exc)
        else:
            raise
        return
    preload(session, record, stale=stale, sid=stored)
