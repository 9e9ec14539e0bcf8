"""The SQL layout and every store operation as a flow, shared by the sync and async stores.

A flow is a generator that yields the statements it needs, one round trip
each, and receives their replies (:class:`Reply`); it returns the
operation's result. :class:`~sharedsession.stores.sqlalchemy.SQLAlchemyStore`
and :class:`~sharedsession.stores.sqlalchemy.AsyncSQLAlchemyStore` drive the
same flows, one on a ``Connection`` and one on an ``AsyncConnection``, the way
the Redis stores drive :mod:`._redis_layout`. A write flow runs in one
transaction, which the driver commits only when the flow returns
``APPLIED``; a read flow runs in autocommit, so a read is one statement.

Layout (``<table>`` is ``SESSION_SQLALCHEMY_TABLE``):

- ``<table>``: a row per session (deadlines, binding, handle); a renewal's
  forwarding marker is a row with ``forward`` set.
- ``<table>_data``: a row per session key, so a save changes single keys.
  Its rows follow their session's key on update and go with it on delete
  (foreign key ``ON UPDATE CASCADE ON DELETE CASCADE``). SQLite enforces
  foreign keys only on connections that turned them on, and an engine the app
  made may hold connections opened before the store turned them on: there the
  flows also move and delete the data rows themselves (:func:`_follow`).

Every write starts with a conditional ``UPDATE`` (or ``INSERT``) of the
session row: it checks that the session is alive and locks its row until the
commit, so a concurrent delete either happened before (the write is ``GONE``)
or waits until after it. Regeneration changes the row's key in place, so a
revocation waiting on the row follows it to the new key.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_
from sqlalchemy import delete
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from ..expiry import cap
from ._sql_tables import Execute
from ._sql_tables import Flow
from ._sql_tables import Layout
from .base import ApplyResult
from .base import ChangeSet
from .base import Record
from .base import Refresh
from .base import SessionInfo
from .base import StoredSession

logger = logging.getLogger("sharedsession")


def _follow(t: Layout, gone: Sequence[Any], moved_to: str | None = None) -> Flow[None]:
    """On SQLite, make the data rows of the session rows ``gone`` (their keys)
    follow them: to ``moved_to``, or away, whether or not the connection
    enforces the foreign key's cascade (when it does, this matches nothing)."""
    keys = [row[0] for row in gone]
    if t.dialect != "sqlite" or not keys:
        return
    d = t.data
    if moved_to is None:
        yield Execute(delete(d).where(d.c.key.in_(keys)), write=True)
    else:
        yield Execute(update(d).where(d.c.key.in_(keys)).values(key=moved_to), write=True)


def _name(name: str) -> str:
    """A key's name as stored: PostgreSQL text cannot hold NUL, which starts the
    manager's reserved names; ``\x01`` escapes it (and itself)."""
    return name.replace("\x01", "\x01\x01").replace("\x00", "\x01\x02")


def _unname(stored: str) -> str:
    if "\x01" not in stored:
        return stored
    return re.sub("\x01([\x01\x02])", lambda m: "\x01" if m[1] == "\x01" else "\x00", stored)


def _number(value: Any) -> bool:
    return type(value) in (int, float)


def _record(rows: Sequence[Any], now: float) -> tuple[Record, float] | None:
    """The record in a load's rows and its deadline; ``None`` if absent, expired or
    unreadable (SQLite accepts any type in any column: no session, never a 500)."""
    if not rows:
        return None
    created, absolute, expires, issued, user_id, forward, handle = rows[0][:7]
    if not all(map(_number, (created, expires, issued))) or not (
        absolute is None or _number(absolute)
    ):
        logger.warning("a stored session has unreadable metadata; ignoring it")
        return None
    if expires <= now:
        return None
    if forward is not None:
        return Record({}, created, forward=forward), expires
    data = {_unname(name): value for *_, name, value in rows if name is not None}
    return Record(data, created, absolute, issued, user_id, handle=handle), expires


def load(t: Layout, key: str, refresh: Refresh | None, now: float) -> Flow[Record | None]:
    s, d = t.sessions, t.data
    query = (
        select(s.c.created, s.c.absolute, s.c.expires, s.c.issued, s.c.user_id, s.c.forward,
               func.coalesce(s.c.handle, s.c.key), d.c.name, d.c.value)
        .select_from(s.outerjoin(d, d.c.key == s.c.key))
        .where(s.c.key == key)
    )  # fmt: skip
    found = _record((yield Execute(query)).rows, now)
    if found is None:
        return None
    record, expires = found
    if refresh is None or record.forward is not None:
        return record
    deadline = cap(refresh.now + refresh.ttl, record.absolute)
    if deadline - expires <= refresh.step:
        return record  # most reads of a busy session write nothing
    # Autocommit: a concurrent delete wins, the update then matches nothing.
    moved = update(s).where(s.c.key == key, s.c.expires < deadline)
    yield Execute(moved.values(expires=deadline, seen=refresh.now), write=True)
    return Record(
        record.data, record.created, record.absolute, record.issued, record.user_id,
        refreshed=True, handle=record.handle,
    )  # fmt: skip


def _live(t: Layout, key: str, now: float) -> Any:
    s = t.sessions
    return and_(s.c.key == key, s.c.expires > now, s.c.forward.is_(None))


def _binding(changes: ChangeSet) -> dict[str, Any]:
    if not changes.bind:
        return {}
    client = json.dumps(dict(changes.client)) if changes.user_id is not None else None
    return {"user_id": changes.user_id, "client": client}


def apply(
    t: Layout, key: str, changes: ChangeSet, now: float, max_per_user: int | None
) -> Flow[ApplyResult]:
    """Write ``changes`` in the driver's transaction; anything but ``APPLIED`` is
    rolled back by the driver."""
    if changes.replaces is not None:
        result = yield from _move(t, key, changes, now)
    elif changes.created is not None:
        result = yield from _create(t, key, changes, now)
    else:
        s = t.sessions
        row = update(s).where(_live(t, key, now)).returning(s.c.key)
        values = {"expires": changes.expires, "seen": changes.now, **_binding(changes)}
        found = (yield Execute(row.values(**values), write=True)).rows
        result = ApplyResult.APPLIED if found else ApplyResult.GONE
    if result is not ApplyResult.APPLIED:
        return result
    yield from _write_data(t, key, changes, now, max_per_user)
    return ApplyResult.APPLIED


def _create(t: Layout, key: str, changes: ChangeSet, now: float) -> Flow[ApplyResult]:
    s = t.sessions
    row = {
        "key": key, "created": changes.created, "absolute": changes.absolute,
        "expires": changes.expires, "issued": changes.now, "seen": changes.now,
        "handle": key, **_binding(changes),
    }  # fmt: skip
    insert = t.insert(s).values(**row).on_conflict_do_nothing().returning(s.c.key)
    if (yield Execute(insert, write=True)).rows:
        return ApplyResult.APPLIED
    # The key is taken: by an expired leftover (replace it) or a live session.
    leftover = delete(s).where(s.c.key == key, s.c.expires <= now).returning(s.c.key)
    gone = (yield Execute(leftover, write=True)).rows
    if not gone:
        return ApplyResult.EXISTS
    yield from _follow(t, gone)
    yield Execute(insert, write=True)
    return ApplyResult.APPLIED


def _move(t: Layout, key: str, changes: ChangeSet, now: float) -> Flow[ApplyResult]:
    """Regeneration: the session row takes the new key in place (its data rows
    follow), then the old key gets a renewal's forwarding marker if asked."""
    s = t.sessions
    old = changes.replaces
    assert old is not None
    values = {"key": key, "issued": changes.now, "expires": changes.expires, "seen": changes.now}
    other = s.alias("other")
    taken = exists().where(other.c.key == key)
    move = (
        update(s)
        .where(_live(t, old, now), ~taken)
        .values(**values, **_binding(changes))
        .returning(s.c.created, s.c.issued)
    )
    moved = (yield Execute(move, write=True)).rows
    if not moved:
        leftover = delete(s).where(s.c.key == key, s.c.expires <= now).returning(s.c.key)
        gone = (yield Execute(leftover, write=True)).rows
        if gone:
            yield from _follow(t, gone)
            moved = (yield Execute(move, write=True)).rows
        else:
            probe = select(s.c.key).where(s.c.key == key, s.c.expires > now)
            if (yield Execute(probe)).rows:
                return ApplyResult.EXISTS
    if not moved:
        return ApplyResult.GONE
    yield from _follow(t, [(old,)], moved_to=key)
    if changes.forward is not None:
        marker = {
            "key": old, "created": moved[0][0], "expires": changes.forward_until,
            "issued": moved[0][1], "seen": changes.now, "forward": changes.forward,
        }  # fmt: skip
        yield Execute(t.insert(s).values(**marker), write=True)
    return ApplyResult.APPLIED


def _write_data(
    t: Layout, key: str, changes: ChangeSet, now: float, max_per_user: int | None
) -> Flow[None]:
    s, d = t.sessions, t.data
    if changes.bind and changes.user_id is not None and max_per_user:
        # The sessions bound longest ago go; the one logging in now stays.
        o = s.alias("other")
        others = (
            select(o.c.key)
            .where(o.c.user_id == changes.user_id, o.c.key != key, o.c.expires > now)
            .where(o.c.forward.is_(None))
            .order_by(o.c.issued.desc())
            .offset(max_per_user - 1)
        )
        ended = delete(s).where(s.c.key.in_(others.scalar_subquery())).returning(s.c.key)
        yield from _follow(t, (yield Execute(ended, write=True)).rows)
    if changes.clear:
        yield Execute(delete(d).where(d.c.key == key), write=True)
    elif changes.delete:
        names = sorted(map(_name, changes.delete))
        yield Execute(delete(d).where(d.c.key == key, d.c.name.in_(names)), write=True)
    if changes.set:
        rows = [{"key": key, "name": _name(n), "value": v} for n, v in changes.set.items()]
        upsert = t.insert(d).values(rows)
        upsert = upsert.on_conflict_do_update(
            index_elements=[d.c.key, d.c.name], set_={"value": upsert.excluded.value}
        )
        yield Execute(upsert, write=True)
    if changes.expires <= now:
        yield Execute(delete(s).where(s.c.key == key), write=True)
        yield from _follow(t, [(key,)])
    elif _may_end_empty(changes):
        # It may have no keys left: unless bound to a user, it ends.
        keys = exists().where(d.c.key == key)
        empty = delete(s).where(s.c.key == key, s.c.user_id.is_(None), ~keys)
        yield Execute(empty, write=True)


def _may_end_empty(changes: ChangeSet) -> bool:
    if changes.set or (changes.bind and changes.user_id is not None):
        return False  # it has a key, or a user
    return bool(
        changes.clear or changes.delete or changes.bind or changes.created is not None
        or changes.replaces is not None
    )  # fmt: skip


def delete_key(t: Layout, key: str) -> Flow[None]:
    yield Execute(delete(t.sessions).where(t.sessions.c.key == key), write=True)
    yield from _follow(t, [(key,)])


def revoke(t: Layout, handle: str, now: float) -> Flow[bool]:
    s = t.sessions
    ended = delete(s).where(s.c.handle == handle, s.c.forward.is_(None), s.c.expires > now)
    gone = (yield Execute(ended.returning(s.c.key), write=True)).rows
    yield from _follow(t, gone)
    return bool(gone)


def purge(t: Layout, now: float, batch: int) -> Flow[int]:
    """Delete expired sessions through the index on ``expires``, a batch per statement."""
    s = t.sessions
    o = s.alias("other")
    total = 0
    while True:
        expired = select(o.c.key).where(o.c.expires <= now).limit(batch).scalar_subquery()
        gone = (
            yield Execute(delete(s).where(s.c.key.in_(expired)).returning(s.c.key), write=True)
        ).rows
        yield from _follow(t, gone)
        count = len(gone)
        total += count
        if count < batch:
            return total


def select_sessions(t: Layout, now: float, where: Any = None) -> Flow[list[StoredSession]]:
    s, d = t.sessions, t.data
    size = (
        select(func.coalesce(func.sum(func.length(d.c.name) + func.length(d.c.value)), 0))
        .where(d.c.key == s.c.key)
        .scalar_subquery()
    )
    query = (
        select(s.c.key, func.coalesce(s.c.handle, s.c.key), s.c.created, s.c.seen,
               s.c.user_id, s.c.client, size)
        .where(s.c.expires > now, s.c.forward.is_(None))
        .order_by(s.c.created)
    )  # fmt: skip
    if where is not None:
        query = query.where(where)
    rows = (yield Execute(query)).rows
    return [
        StoredSession(handle, key, created, seen, user, json.loads(client or "{}"), int(size))
        for key, handle, created, seen, user, client, size in rows
    ]


def sessions_for_user(t: Layout, user_id: str, now: float) -> Flow[list[SessionInfo]]:
    found = yield from select_sessions(t, now, t.sessions.c.user_id == user_id)
    return [SessionInfo(s.handle, user_id, s.created, s.last_seen, s.client) for s in found]


def session(t: Layout, handle: str, now: float) -> Flow[tuple[StoredSession, Record] | None]:
    found = yield from select_sessions(t, now, t.sessions.c.handle == handle)
    if not found:
        return None
    record = yield from load(t, found[0].key, None, now)
    return None if record is None else (found[0], record)
