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
from .manager import SavePlan
from .manager import SessionManager
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


def save(store: SessionStore, plan: SavePlan) -> Cookie | None:
    """Carry out ``plan`` on a blocking store; return the cookie to send."""
    if plan.delete is not None:
        store.delete(plan.delete)
    result = None
    if plan.changes is not None and plan.key is not None:
        result = store.apply(plan.key, plan.changes)
    return plan.cookie_after(result)


async def asave(store: AsyncSessionStore, plan: SavePlan) -> Cookie | None:
    """The async twin of :func:`save`."""
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
