"""The store conversations of a request, written once as generators.

A flow yields the store operations it needs (:class:`Load`, :class:`Apply`,
:class:`WriteKeys`, :class:`Delete`, :class:`Pause`) and receives their results; it returns what
the adapter needs. :func:`sharedsession._driver.run` drives a flow with a
blocking store and :func:`sharedsession._driver.arun` with an async one, so
the logic exists once (httpx's auth-flow technique). Decisions stay in
:class:`~sharedsession.manager.SessionManager`; these functions only order the
calls around them.

- :func:`load` reads a session, following a renewal's forwarding marker to
  its successor (a request that raced a renewal, or carried the old cookie
  for a moment, is served by the renewed session).
- :func:`save` writes a session. Keys a request set without ever reading
  the session go out in one :class:`WriteKeys`; if the store wrote nothing,
  the flow loads the session and saves the usual way. When a renewal
  lost a race with a concurrent request's renewal, it writes its changes to
  the winner's successor and sends that cookie, instead of logging the user
  out.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass
from dataclasses import replace
from typing import Any
from typing import TypeVar

from ._state import adopt
from ._state import preload
from ._state import state
from .flask_session import Migration
from .ids import is_well_formed
from .ids import store_key
from .ids import unseal_successor
from .manager import Cookie
from .manager import SavePlan
from .manager import SessionManager
from .session import Session
from .stores.base import ApplyResult
from .stores.base import ChangeSet
from .stores.base import KeyWrites
from .stores.base import Record
from .stores.base import Refresh
from .stores.base import Written

T = TypeVar("T")
logger = logging.getLogger("sharedsession")


@dataclass(frozen=True)
class Load:
    """``store.load(key, refresh=refresh)``."""

    key: str
    refresh: Refresh | None


@dataclass(frozen=True)
class Apply:
    """``store.apply(key, changes)``."""

    key: str
    changes: ChangeSet


@dataclass(frozen=True)
class WriteKeys:
    """``store.write_keys(key, writes)`` (``None`` from a store without it)."""

    key: str
    writes: KeyWrites


@dataclass(frozen=True)
class Delete:
    """``store.delete(key)``."""

    key: str


@dataclass(frozen=True)
class FlaskSessionOp:
    """``store.read_flask_session(sid)`` (``action="read"``), ``write_flask_session``
    (``"write"``, with ``blob`` and ``ttl_ms``) or ``delete_flask_session``."""

    action: str
    sid: str
    blob: bytes = b""
    ttl_ms: int = 0


@dataclass(frozen=True)
class Pause:
    """Wait this many seconds before the next operation."""

    seconds: float


Op = Load | Apply | WriteKeys | Delete | FlaskSessionOp | Pause
Flow = Generator[Op, Any, T]
#: A loaded session: the checked record (or ``None``), keys to rewrite, and the
#: ID it is stored under (the successor's, when a marker was followed).
Loaded = tuple[Record | None, frozenset[str], str]

#: Redis moves a renewed session in two steps (the old key becomes a marker,
#: then the successor is written): a reader in between waits this long for it.
SUCCESSOR_PAUSES = (0.0, 0.01, 0.05)
#: Markers followed at most, for sessions renewed again within the grace window.
MAX_HOPS = 3


def load(manager: SessionManager, sid: str) -> Flow[Loaded]:
    """Load the session of ``sid``, following forwarding markers, adopting
    Flask-Session's copy when migration is on."""
    refresh = manager.refresh()
    key = store_key(sid)
    record: Record | None = yield Load(key, refresh)
    first = sid
    for _ in range(MAX_HOPS):
        if record is None or record.forward is None:
            break
        successor = unseal_successor(record.forward, sid)
        if successor is None:
            return None, frozenset(), sid
        sid = successor
        record = yield from _successor(sid, refresh)
    if record is not None and record.forward is not None:
        record = None
    migration = manager.migration
    if migration is not None and (record is None or migration.rolling):
        # After the markers: a renewed ID's own copy is gone, by design.
        adopt_as = sid if record is not None else first
        record = yield from _from_flask_session(manager, migration, adopt_as, record)
        sid = adopt_as if record is not None else sid
    # The digest once per request: again only when the ID changed on the way.
    checked, stale = manager.prepare(key if sid == first else store_key(sid), record)
    return checked, stale, sid


def _successor(sid: str, refresh: Refresh | None) -> Flow[Record | None]:
    for pause in SUCCESSOR_PAUSES:
        if pause:
            yield Pause(pause)
        found: Record | None = yield Load(store_key(sid), refresh)
        if found is not None:
            return found
    return None


def _from_flask_session(
    manager: SessionManager, migration: Migration, sid: str, record: Record | None
) -> Flow[Record | None]:
    """Adopt Flask-Session's copy of ``sid`` (this library has none), or in a
    rolling deploy take it as the truth: an instance not yet switched may have
    changed or ended the session."""
    blob, ttl_ms, ours, revoked = yield FlaskSessionOp("read", sid)
    key = store_key(sid)
    if revoked:
        return record  # a revoked session never comes back through its old copy
    if blob is None:
        if record is None and ours:  # adopted by a concurrent request just now
            found: Record | None = yield Load(key, manager.refresh())
            return _moved(found)
        if record is not None and migration.rolling:
            yield Delete(key)  # logged out on an instance not yet switched
            return None
        return record
    data = migration.format.decode(blob)
    if data is None:
        return record
    if record is None:
        texts = migration.texts(data)
        if texts is None:
            return None
        changes = manager.adoption(sid, texts, ttl_ms / 1000, user_id=migration.user_of(data))
        result: ApplyResult = yield Apply(key, changes)
        if result is ApplyResult.EXISTS:  # adopted by a concurrent request
            again: Record | None = yield Load(key, None)
            return _moved(again)
        if not migration.rolling:
            yield FlaskSessionOp("delete", sid)  # moved: one copy, nothing to resurrect
        logger.info("adopted a Flask-Session session")
        adopted = Record(changes.set, changes.now, changes.absolute, changes.now, changes.user_id)
        return _moved(replace(adopted, expires=changes.expires))
    if record.refreshed:  # its copy lives as long as it does
        yield FlaskSessionOp("touch", sid, ttl_ms=migration.lifetime_ms)
    sync = manager.sync_to(key, record, data, migration)
    if sync is None:
        return record
    outcome: ApplyResult = yield Apply(key, sync)
    return None if outcome is ApplyResult.GONE else _moved((yield Load(key, None)))


def _moved(record: Record | None) -> Record | None:
    """``record``, marked as loaded by a request that moved its deadline (an
    adoption, a sync with Flask-Session's copy): the client still holds the
    cookie Flask-Session sent, so this response sends ours, with the deadline."""
    return None if record is None else replace(record, refreshed=True)


def save(manager: SessionManager, session: Session) -> Flow[Cookie | None]:
    """Save ``session``; return the cookie to send."""
    plan = manager.save_plan(session)
    if plan.writes is not None and plan.key is not None:
        # Keys set without loading the session: one round trip when it lives.
        written: Written | None = yield WriteKeys(plan.key, plan.writes)
        if written is not None:
            return manager.cookie_after_writes(session, written)
        # Not written: load it now and save as usual, as if the handler had
        # loaded it (a renewal's successor, Flask-Session's copy, a session
        # near its key limit). One that ended is never written again: the
        # keys go to a new session with a new ID, as for any unknown cookie.
        sid = state(session).incoming_sid
        assert sid is not None
        record, stale, stored = yield from load(manager, sid)
        preload(session, record, stale=stale, sid=stored)
        plan = manager.save_plan(session)
    result = yield from _carry_out(plan)
    if result is ApplyResult.GONE and plan.renewal_of is not None:
        # Another request renewed this session first: join its successor.
        record, _, sid = yield from load(manager, plan.renewal_of)
        if record is not None and sid != plan.renewal_of:
            adopt(session, record, sid)
            plan = manager.save_plan(session)
            result = yield from _carry_out(plan)
    if result is not ApplyResult.GONE and result is not ApplyResult.EXISTS:
        if plan.flask_session_delete is not None:
            yield FlaskSessionOp("delete", plan.flask_session_delete)
        if plan.flask_session_write is not None and manager.migration is not None:
            yield from _mirror(manager, manager.migration, plan.flask_session_write)
    return plan.cookie_after(result)


def _mirror(manager: SessionManager, migration: Migration, sid: str) -> Flow[None]:
    """Write Flask-Session's copy of ``sid`` from what is stored now (the merge of
    every concurrent write), not from this request's view."""
    key = store_key(sid)
    record, _ = manager.prepare(key, (yield Load(key, None)))
    if record is None:
        return
    data = manager.values(record)
    data.setdefault("_permanent", manager.permanent)  # Flask-Session keeps it in the data
    blob = migration.image(data)
    if blob is not None:
        yield FlaskSessionOp("write", sid, blob, migration.lifetime_ms)


def _carry_out(plan: SavePlan) -> Flow[ApplyResult | None]:
    if plan.delete is not None:
        yield Delete(plan.delete)
    if plan.changes is None or plan.key is None:
        return None
    result: ApplyResult = yield Apply(plan.key, plan.changes)
    return result


def migrate_one(
    manager: SessionManager, migration: Migration, sid: str, *, dry_run: bool, delete_source: bool
) -> Flow[tuple[str, str]]:
    """Copy Flask-Session's session ``sid`` into this library's layout.

    :returns: ``(outcome, reason)``: ``"migrated"``, ``"present"`` (already
        here: the copy is idempotent), ``"skipped"`` or ``"failed"``.
    """
    if not is_well_formed(sid):
        return "skipped", "not a session ID of 256 bits or more (a short ID or another key)"
    key = store_key(sid)
    if (yield Load(key, None)) is not None:
        if delete_source and not dry_run:
            yield FlaskSessionOp("delete", sid)
        return "present", ""
    blob, ttl_ms, _, revoked = yield FlaskSessionOp("read", sid)
    if revoked:
        return "skipped", "revoked here"
    if blob is None:
        return "skipped", "expired or deleted meanwhile"
    data, reason = migration.format.read(blob)
    if data is None:
        return "skipped", reason
    texts = migration.texts(data)
    if texts is None:
        return "failed", "a value cannot be stored (see the log)"
    if dry_run:
        return "migrated", ""
    user = migration.user_of(data)
    result: ApplyResult = yield Apply(
        key, manager.adoption(sid, texts, ttl_ms / 1000, user_id=user)
    )
    if delete_source:
        yield FlaskSessionOp("delete", sid)
    return ("present", "") if result is ApplyResult.EXISTS else ("migrated", "")
