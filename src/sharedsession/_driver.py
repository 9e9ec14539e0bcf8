"""The store calls around a request, written once for every adapter.

:mod:`.manager` decides; these functions make the one or two store calls a
decision needs (a blocking and an ``async`` twin for saving) and hold the
outage wording every adapter logs.
"""

from __future__ import annotations

import logging

from .errors import StoreUnavailable
from .ids import store_key
from .manager import Cookie
from .manager import SessionManager
from .manager import ends_or_rotates
from .session import Session
from .session import degrade
from .session import fail_on_use
from .session import preload
from .session import state
from .stores.base import AsyncSessionStore
from .stores.base import SessionStore

logger = logging.getLogger("sharedsession")


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


def save(store: SessionStore, manager: SessionManager, session: Session) -> Cookie | None:
    """Save ``session`` to a blocking store; return the cookie to send."""
    plan = manager.save_plan(session)
    if plan.delete is not None:
        store.delete(plan.delete)
    result = None
    if plan.changes is not None and plan.key is not None:
        result = store.apply(plan.key, plan.changes)
    return plan.cookie_after(result)


async def asave(
    store: AsyncSessionStore, manager: SessionManager, session: Session
) -> Cookie | None:
    """The async twin of :func:`save`."""
    plan = manager.save_plan(session)
    if plan.delete is not None:
        await store.delete(plan.delete)
    result = None
    if plan.changes is not None and plan.key is not None:
        result = await store.apply(plan.key, plan.changes)
    return plan.cookie_after(result)


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
    key = store_key(sid)
    try:
        record = await store.load(key, refresh=manager.refresh())
    except StoreUnavailable as exc:
        if manager.degrade:
            degrade(session, exc)
        elif defer:
            fail_on_use(session, exc)
        else:
            raise
        return
    record, stale = manager.prepare(key, record)
    preload(session, record, stale=stale)
