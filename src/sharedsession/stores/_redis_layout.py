"""The Redis layout and every store operation as a flow, shared by the sync and async stores.

A flow is a generator that yields the Redis operations it needs, one round
trip each, and receives their replies; it returns the operation's result.
:class:`~sharedsession.stores.redis.RedisStore` and
:class:`~sharedsession.stores.redis.AsyncRedisStore` each drive the same flows,
one with blocking calls and one with ``await``, so the logic exists once.

Layout:

- ``{prefix}{<digest>}``: a hash per session. A field per session key holds the
  tagged JSON of its value; metadata fields start with ``:`` (a user key that
  starts with ``:`` gets one more ``:`` in front). The braces make the digest
  the Cluster hash tag. The hash's TTL is the session's remaining life.
- ``{prefix}user:<user_id>``: a sorted set of the handles (store keys) of a
  user's sessions. It is a hint, pruned of dead handles whenever it is read
  or added to; the session hashes hold the truth.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Generator
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from typing import Any
from typing import TypeVar

from ..expiry import cap
from .base import ApplyResult
from .base import ChangeSet
from .base import KeyWrites
from .base import Record
from .base import Refresh
from .base import SessionInfo
from .base import StoredSession
from .base import Written

logger = logging.getLogger("sharedsession")

CREATED, ABSOLUTE, ISSUED, SEEN, USER, CLIENT, FORWARD, HANDLE, EXPIRES = (
    ":created", ":absolute", ":issued", ":seen", ":user", ":client", ":forward", ":handle",
    ":expires",
)  # fmt: skip
#: What a handle key holds once its session was revoked (for in-flight ID changes).
REVOKED = "revoked"
#: How long that stays, so a new ID being written right then is ended too (ms).
REVOKED_MS = 60_000

# KEYS[1] the hash; ARGV[1] now, ARGV[2] ttl ms, ARGV[3] the new deadline
# (seconds). Reads are a plain HGETALL; the reader decides from ':expires' (the
# deadline every write and touch records) whether the deadline must move, once
# per refresh step, and only then sends this. It never brings back a session
# that was deleted meanwhile, and never touches a renewal's forwarding marker.
TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], ':forward') == 1 then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[1], ':seen', ARGV[1], ':expires', ARGV[3])
return 1
"""

# KEYS[1] the hash; ARGV: mode ('create' | 'update'), ttl ms ('' keeps the TTL
# it has: a write within a refresh step of its deadline), clear ('1' | '0'),
# number of fields to delete, those fields, then field/value pairs to set.
APPLY = """
local key = KEYS[1]
-- Every session hash has ':created'; a renewal's forwarding marker has ':forward'.
local state = redis.call('HMGET', key, ':created', ':forward')
if ARGV[1] == 'create' then
  if state[1] or state[2] then return 'exists' end
elseif not state[1] or state[2] then
  return 'gone'  -- deleted, expired, or a marker (never written)
end
local clear, ndel = ARGV[3] == '1', tonumber(ARGV[4])
if clear then
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 1) ~= ':' or string.sub(field, 1, 2) == '::' then
      redis.call('HDEL', key, field)
    end
  end
end
-- In chunks: unpack() of thousands of arguments overflows Lua's stack.
local i = 5
while i <= 4 + ndel do
  local j = math.min(i + 999, 4 + ndel)
  redis.call('HDEL', key, unpack(ARGV, i, j))
  i = j + 1
end
i = 5 + ndel
while i <= #ARGV do
  local j = math.min(i + 999, #ARGV)
  redis.call('HSET', key, unpack(ARGV, i, j))
  i = j + 1
end
local ms = ARGV[2]
local empty = false
if clear or ndel > 0 then  -- only a removal can leave no keys
  local meta = 0
  local names = {':created', ':absolute', ':issued', ':seen', ':user', ':client', ':expires'}
  for _, value in ipairs(redis.call('HMGET', key, unpack(names))) do
    if value then meta = meta + 1 end
  end
  empty = redis.call('HLEN', key) <= meta and redis.call('HEXISTS', key, ':user') == 0
end
if empty or (ms ~= '' and tonumber(ms) <= 0) then
  redis.call('DEL', key)
elseif ms ~= '' then
  redis.call('PEXPIRE', key, ms)  -- the text: a Lua number costs a conversion
end
return 'applied'
"""

# KEYS[1] the hash; ARGV[1] now, ARGV[2] idle seconds, ARGV[3] the absolute
# lifetime in seconds ('' if none), ARGV[4] the most fields the hash may then
# hold ('' if no limit), ARGV[5] a field to return ('' if none), ARGV[6] and
# ARGV[7] the idle deadline (now + idle) and its ms from now, as text ('' if
# endless; used when no absolute deadline comes first: a Lua number costs the
# server a conversion), ARGV[8] the refresh step in seconds ('' to always move
# the deadline), then field/value pairs. Sets fields of a live session
# without reading it first; false, with nothing written, when there is none
# (deleted, expired, past its absolute deadline, a marker) or it may hold too
# many: the caller loads. The deadline moves only when the new one is more
# than a step later than ':expires' (or earlier): else the cookie still has it.
WRITE_KEYS = """
local key = KEYS[1]
local m = redis.pcall('HMGET', key, ':created', ':forward', ':absolute', ':user', ':handle',
  ':issued', ':expires', ARGV[5])
if m.err then return false end  -- not a hash: the caller's load says what it is
local created, absolute = tonumber(m[1]), math.huge
if m[3] then absolute = tonumber(m[3]) end
-- Unreadable metadata too: the caller's load says what is wrong with it.
if not created or not absolute or m[2] or (m[6] and not tonumber(m[6])) then return false end
local now = tonumber(ARGV[1])
local idle = now + tonumber(ARGV[2])
local deadline = math.min(idle, absolute)
if ARGV[3] ~= '' then deadline = math.min(deadline, created + tonumber(ARGV[3])) end
local expires, ms = ARGV[6], ARGV[7]
if deadline ~= idle or expires == '' then
  expires, ms = string.format('%.17g', deadline), math.floor((deadline - now) * 1000)
end
if tonumber(ms) <= 0 then return false end
-- An upper bound (metadata fields count too): near the limit the caller counts.
if ARGV[4] ~= '' and redis.call('HLEN', key) + (#ARGV - 8) / 2 > tonumber(ARGV[4]) then
  return false
end
-- In chunks (unpack() of thousands of arguments overflows Lua's stack).
redis.call('HSET', key, ':seen', ARGV[1], unpack(ARGV, 9, math.min(#ARGV, 1008)))
local i = 1009
while i <= #ARGV do
  local j = math.min(i + 999, #ARGV)
  redis.call('HSET', key, unpack(ARGV, i, j))
  i = j + 1
end
local has = tonumber(m[7])
if has and ARGV[8] ~= '' and has <= deadline and deadline - has <= tonumber(ARGV[8]) then
  return {m[7], m[4] or '', m[5] or '', m[8] or false, 0}  -- kept: the cookie has it
end
redis.call('HSET', key, ':expires', expires)
redis.call('PEXPIRE', key, ms)
return {expires, m[4] or '', m[5] or '', m[8] or false, 1}
"""

# KEYS[1] the hash: read it and delete it in one step (regeneration's first
# half); with ARGV[1] (a renewal), leave a forwarding marker holding it for
# ARGV[2] ms. A marker is never taken: the reply is empty.
TAKE = """
local data = redis.call('HGETALL', KEYS[1])
if #data == 0 then return data end
for i = 1, #data, 2 do
  if data[i] == ':forward' then return {} end
end
redis.call('DEL', KEYS[1])
if ARGV[1] then
  redis.call('HSET', KEYS[1], ':forward', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return data
"""

# KEYS[1] a user's index; ARGV[1] handle, ARGV[2] score, ARGV[3] ttl ms. The
# index lives as long as its longest session; the reply is its size.
INDEX_ADD = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local ms = tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
return redis.call('ZCARD', KEYS[1])
"""

# KEYS[1] any key; ARGV[1] ttl ms: make it live at least that long.
EXTEND = """
local left = redis.call('PTTL', KEYS[1])
if left == -1 or (left >= 0 and left < tonumber(ARGV[1])) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return left
"""

# KEYS[1] a handle key; ARGV[1] the session's new key, ARGV[2] ttl ms. 0 when
# the handle was revoked while the session got its new ID: it must end.
HANDLE_MOVE = """
if redis.call('GET', KEYS[1]) == 'revoked' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS[1] a handle key, KEYS[2] the session's first hash (same slot: same
# tag); ARGV[1] ms. Marks the handle revoked, ends the first hash, and returns
# where the session moved ('' if nowhere) and whether the first hash was one.
REVOKE = """
local current = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], 'revoked', 'PX', ARGV[1])
local ended = 0
if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('HEXISTS', KEYS[2], ':forward') == 0 then
  ended = 1
end
redis.call('DEL', KEYS[2])
if current and current ~= 'revoked' then return {current, ended} end
return {'', ended}
"""

# KEYS[1] the hash. A read for Sentinel-managed masters: a script with flags
# and without 'no-writes' is refused on a replica (READONLY), so a connection
# still pointing at a master that a failover demoted fails instead of serving
# its stale copy (a logged-out session, say); the store then reconnects to the
# new master. A plain HGETALL would be answered by the replica.
READ_MASTER = """#!lua
return redis.call('HGETALL', KEYS[1])
"""

SCRIPTS = {
    "read_master": READ_MASTER,
    "touch": TOUCH,
    "apply": APPLY,
    "write_keys": WRITE_KEYS,
    "take": TAKE,
    "index_add": INDEX_ADD,
    "extend": EXTEND,
    "handle_move": HANDLE_MOVE,
    "revoke": REVOKE,
}


@dataclass(frozen=True)
class Call:
    """One Redis command: ``client.<name>(*args)``; ``write`` if it changes data."""

    name: str
    args: tuple[Any, ...] = ()
    write: bool = False


@dataclass(frozen=True)
class Script:
    """One of :data:`SCRIPTS`, by name, run with EVALSHA; ``write`` if it changes data."""

    name: str
    keys: list[str]
    args: list[Any]
    write: bool = False


@dataclass(frozen=True)
class Pipeline:
    """Several commands in one round trip (not a transaction); ``write`` if one changes data."""

    calls: Sequence[Call | Script]
    write: bool = False


def scripts_of(calls: Sequence[Call | Script]) -> list[Script]:
    return [call for call in calls if isinstance(call, Script)]


def calls_of(calls: Sequence[Call | Script]) -> list[Call]:
    return [call for call in calls if isinstance(call, Call)]


#: Replies of a Redis server that will not take a write now: a store outage
#: (503), never a bug (500). READONLY and MASTERDOWN also mean the connection
#: reached a demoted or cut-off master.
REFUSALS = (
    "NOREPLICAS",
    "READONLY",
    "MISCONF",
    "OOM",
    "LOADING",
    "MASTERDOWN",
    "TRYAGAIN",
    "UNBLOCKED",  # a WAIT cut short when its master was demoted
)
REFUSALS_CLUSTER = ("CLUSTERDOWN",)


def refusal(message: str) -> str | None:
    """The refusal code in a Redis error message (also inside a script's error), or ``None``."""
    if "read only replica" in message:  # READONLY, as a script reports it
        return "READONLY"
    for code in REFUSALS + REFUSALS_CLUSTER:
        if message.startswith(code) or f" {code} " in message or f"-{code}" in message:
            return code
    return None


def check_acknowledged(acknowledged: int, wanted: int) -> None:
    """Raise when fewer replicas than ``wanted`` acknowledged a write (``WAIT``'s reply)."""
    if acknowledged < wanted:
        raise NotReplicated(acknowledged, wanted)


class NotReplicated(Exception):
    """Fewer replicas than required acknowledged a write in time."""

    def __init__(self, acknowledged: int, wanted: int) -> None:
        super().__init__(
            f"NOREPLICAS only {acknowledged} of {wanted} replicas acknowledged the write in time"
        )


@dataclass(frozen=True)
class Pause:
    """Wait this long before the next operation (no round trip)."""

    seconds: float
    write: bool = False


Op = Call | Script | Pipeline | Pause
T = TypeVar("T")
Flow = Generator[Op, Any, T]


def session_key(prefix: str, key: str) -> str:
    """The Redis key of the session whose store key is ``key``."""
    return f"{prefix}{{{key}}}"


def handle_key(prefix: str, handle: str) -> str:
    """Where a session that got a new ID is found by its handle (the tag is the handle,
    so the key shares the slot of the session's first hash)."""
    return f"{prefix}handle:{{{handle}}}"


def user_key(prefix: str, user_id: str) -> str:
    """The Redis key of a user's session index."""
    return f"{prefix}user:{user_id}"


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _field(name: str) -> str:
    return ":" + name if name.startswith(":") else name


def _split(flat: Sequence[bytes | str] | dict[Any, Any]) -> tuple[dict[str, str], dict[str, str]]:
    # On every read: one pass, no call per field (a RESP3 reply is a dict of
    # bytes; a flat list comes from RESP2 or a script).
    pairs: Iterable[tuple[Any, Any]]
    if isinstance(flat, dict):
        pairs = flat.items()
    else:
        if len(flat) % 2:
            raise ValueError("a hash reply with an odd number of parts")
        parts = iter(flat)
        pairs = zip(parts, parts, strict=True)  # even: checked above
    data: dict[str, str] = {}
    meta: dict[str, str] = {}
    for name, value in pairs:
        if type(name) is bytes:
            name = name.decode()
        if type(value) is bytes:
            value = value.decode()
        if name[:1] != ":":
            data[name] = value
        elif name[:2] == "::":
            data[name[1:]] = value
        else:
            meta[name] = value
    return data, meta


def _optional(meta: dict[str, str], name: str) -> float | None:
    return float(meta[name]) if name in meta else None


def _record(flat: Sequence[bytes | str] | dict[Any, Any], key: str) -> Record | None:
    """The record a loaded hash holds; its ``expires`` is the deadline the hash
    recorded (``None``: unknown, written by an earlier version)."""
    if not flat:
        return None
    try:
        data, meta = _split(flat)
        created = float(meta.get(CREATED, 0.0))
        if FORWARD in meta:
            return Record({}, created, forward=meta[FORWARD])
        return Record(
            data,
            created,
            _optional(meta, ABSOLUTE),
            _optional(meta, ISSUED),
            meta.get(USER),
            handle=meta.get(HANDLE, key),
            expires=_optional(meta, EXPIRES),
        )
    except (ValueError, UnicodeError) as exc:
        # Written by someone else, or damaged: no session, never a 500.
        logger.warning("a stored session has unreadable metadata (%s); ignoring it", exc)
        return None


def _meta(changes: ChangeSet) -> list[tuple[str, str]]:
    """Metadata fields a change set writes."""
    fields = [(SEEN, repr(changes.now))]
    if not changes.keeps_deadline:
        fields.append((EXPIRES, repr(changes.expires)))
    if changes.created is not None:
        fields += [(CREATED, repr(changes.created)), (ISSUED, repr(changes.now))]
        if changes.absolute is not None:
            fields.append((ABSOLUTE, repr(changes.absolute)))
    if changes.bind and changes.user_id is not None:
        fields += [(USER, changes.user_id), (CLIENT, json.dumps(dict(changes.client)))]
    return fields


def _apply_args(mode: str, changes: ChangeSet, fields: list[tuple[str, str]]) -> list[Any]:
    deletes = [_field(name) for name in changes.delete]
    if changes.bind and changes.user_id is None:
        deletes += [USER, CLIENT]
    args: list[Any] = [
        mode,
        "" if changes.keeps_deadline else int((changes.expires - changes.now) * 1000),
        "1" if changes.clear else "0",
        len(deletes),
        *deletes,
    ]
    for name, value in fields:
        args += [name, value]
    return args


def load(
    prefix: str, key: str, refresh: Refresh | None, *, master_only: bool = False
) -> Flow[Record | None]:
    """Load (and, once per refresh step, refresh) a session; ``master_only``
    (Sentinel) refuses to read from a server that is no longer the master."""
    name = session_key(prefix, key)
    read = Script("read_master", [name], []) if master_only else Call("hgetall", (name,))
    record = _record((yield read), key)
    if refresh is None or record is None or record.forward is not None:
        return record
    deadline = cap(refresh.now + refresh.ttl, record.absolute)
    if deadline <= refresh.now:
        return None  # past its absolute deadline: Redis expires it at that moment
    if record.expires is not None and deadline - record.expires <= refresh.step:
        return record  # the deadline it has is close enough: a read writes nothing
    # Once per refresh step: the session, and what finds it, live as long as it does.
    ms = int((deadline - refresh.now) * 1000)
    touch = Script("touch", [name], [repr(refresh.now), ms, repr(deadline)], write=True)
    calls: list[Call | Script] = [touch]
    handle = record.handle or key
    if handle != key:
        calls.append(Script("extend", [handle_key(prefix, handle)], [ms], write=True))
    if record.user_id is not None:
        calls.append(Script("extend", [user_key(prefix, record.user_id)], [ms], write=True))
    # (A lone script is sent as it is: redis-py checks a pipeline's scripts
    # with SCRIPT EXISTS first, a round trip more.)
    touched, *_ = (yield Pipeline(calls, write=True)) if len(calls) > 1 else [(yield touch)]
    return replace(record, refreshed=True, expires=deadline) if touched else None


def apply(
    prefix: str, key: str, changes: ChangeSet, max_per_user: int | None = None
) -> Flow[ApplyResult]:
    if changes.bind and changes.user_id is not None:
        handle = changes.handle or key
        yield from _index(prefix, changes.user_id, handle, changes, max_per_user)
    return (yield from _write(prefix, key, changes))


def write_keys(prefix: str, key: str, writes: KeyWrites) -> Flow[Written | None]:
    """Set keys of a live session without loading it (see :class:`KeyWrites`)."""
    name = session_key(prefix, key)
    args: list[Any] = [
        repr(writes.now),
        repr(writes.idle),
        "" if writes.lifetime is None else repr(writes.lifetime),
        "" if writes.max_keys is None else writes.max_keys,
        "" if writes.read is None else _field(writes.read),
    ]
    idle = writes.now + writes.idle
    # The same arithmetic as the script's, so both agree to the ms.
    args += [repr(idle), int((idle - writes.now) * 1000)] if math.isfinite(idle) else ["", ""]
    args.append(repr(writes.step) if writes.step > 0 else "")
    for field_name, value in writes.set.items():
        args += [_field(field_name), value]
    reply = yield Script("write_keys", [name], args, write=True)
    if not reply:
        return None
    expires, user, handle, value, moved = reply
    deadline = float(text(expires))
    if not int(moved):
        # The deadline stayed: so does what finds the session (it lives as long).
        return Written(deadline, None if value is None else text(value), moved=False)
    # What finds a bound or re-IDed session lives as long as it may, as after
    # any write that moves the deadline: one round trip more, only for those.
    found_by = [user_key(prefix, text(user))] if user else []
    if handle and text(handle) != key:
        found_by.append(handle_key(prefix, text(handle)))
    if found_by:
        idle_ms = max(1, int(writes.idle * 1000))
        yield Pipeline([Call("pexpire", (found, idle_ms)) for found in found_by], write=True)
    return Written(deadline, None if value is None else text(value))


def _index(
    prefix: str, user_id: str, handle: str, changes: ChangeSet, max_per_user: int | None
) -> Flow[None]:
    """Add ``handle`` to the user's index before its session is written.

    A crash in between leaves a dead handle (pruned when listed), never a
    bound session that "log out other devices" cannot find. A login costs one
    round trip however many sessions the user has; with ``max_per_user``, a
    login over the cap also checks the index (which the cap keeps small) and
    ends the oldest logins beyond it.
    """
    index = user_key(prefix, user_id)
    ttl = max(1, int((changes.expires - changes.now) * 1000))
    size = yield Script("index_add", [index], [handle, repr(changes.now), ttl], write=True)
    # Over the cap: every entry is checked (the cap keeps the index small),
    # dead ones (logged out, expired) are dropped, then the oldest logins
    # beyond the cap end; the one logging in now never does.
    if max_per_user is None or int(size) <= max_per_user:
        return
    entries = [h for h in map(text, (yield Call("zrange", (index, 0, -1)))) if h != handle]
    live, dead = yield from _resolve(prefix, user_id, entries)
    if dead:  # a session getting a new ID right now looks gone: look again
        yield Pause(0.05)
        more, dead = yield from _resolve(prefix, user_id, dead)
        live += more
    alive = {info.handle for info in live}
    ending = [h for h in entries if h in alive][: max(0, len(alive) + 1 - max_per_user)]
    for old in ending:
        yield from revoke(prefix, old, max(REVOKED_MS, ttl))
    if dead or ending:
        yield Call("zrem", (index, *dead, *ending), write=True)


def _write(prefix: str, key: str, changes: ChangeSet) -> Flow[ApplyResult]:
    name = session_key(prefix, key)
    fields = [(_field(k), v) for k, v in changes.set.items()] + _meta(changes)
    if changes.replaces is None:
        mode = "update" if changes.created is None else "create"
        script = Script("apply", [name], _apply_args(mode, changes, fields), write=True)
        # What finds a bound or re-IDed session lives as long as it may: set in
        # the write's own round trip (the idle lifetime bounds every session).
        idle_ms = max(1, int(changes.idle * 1000))
        found_by = [user_key(prefix, changes.owner)] if changes.owner else []
        if changes.handle and changes.handle != key:
            found_by.append(handle_key(prefix, changes.handle))
        if not found_by or changes.idle <= 0 or changes.keeps_deadline:
            # (A kept deadline keeps theirs too: they live as long as it.)
            return ApplyResult(text((yield script)))
        extend = [Call("pexpire", (found, idle_ms)) for found in found_by]
        replies = yield Pipeline([script, *extend], write=True)
        return ApplyResult(text(replies[0]))
    # Regeneration: the old hash is read and deleted in one step, then the new
    # one is created. The old ID is dead before the new one exists; the two
    # hashes live in different Cluster slots, so no single script can do both.
    marker = []
    if changes.forward is not None:
        ttl = max(1, int((changes.forward_until - changes.now) * 1000))
        marker = [changes.forward, ttl]
    old = yield Script("take", [session_key(prefix, changes.replaces)], marker, write=True)
    if not old:
        return ApplyResult.GONE
    data, meta = _split(old)
    if changes.clear:
        data = {}
    for removed in changes.delete:
        data.pop(removed, None)
    if changes.bind and changes.user_id is None:
        meta.pop(USER, None)
        meta.pop(CLIENT, None)
    meta[ISSUED] = repr(changes.now)
    handle = meta.get(HANDLE) or changes.replaces
    meta[HANDLE] = handle
    kept = [(_field(k), v) for k, v in data.items()] + list(meta.items())
    unchanged = ChangeSet(changes.now, changes.expires)
    args = _apply_args("create", unchanged, kept + fields)
    result = ApplyResult(text((yield Script("apply", [name], args, write=True))))
    if result is not ApplyResult.APPLIED:
        return result
    # The handle now leads here, unless it was revoked meanwhile: then this ends.
    ttl = max(1, int((changes.expires - changes.now) * 1000))
    moved = yield Script("handle_move", [handle_key(prefix, handle)], [key, ttl], write=True)
    if not int(moved):
        yield Call("delete", (name,), write=True)
        return ApplyResult.GONE
    return result


def delete(prefix: str, key: str) -> Flow[None]:
    yield Call("delete", (session_key(prefix, key),), write=True)


def revoke(prefix: str, handle: str, remember_ms: int = REVOKED_MS) -> Flow[bool]:
    """End the session with ``handle``, also one getting a new ID right now; the
    handle stays marked revoked ``remember_ms`` (nothing adopts it back)."""
    keys = [handle_key(prefix, handle), session_key(prefix, handle)]
    current, ended = yield Script("revoke", keys, [remember_ms], write=True)
    moved_to = text(current)
    if moved_to:
        ended = int(ended) + int(
            (yield Call("delete", (session_key(prefix, moved_to),), write=True))
        )
    return bool(int(ended))


def sessions_for_user(prefix: str, user_id: str) -> Flow[list[SessionInfo]]:
    """The live sessions in the user's index; dead or rebound handles leave it."""
    index = user_key(prefix, user_id)
    handles = [text(h) for h in (yield Call("zrange", (index, 0, -1)))]
    live, dead = yield from _resolve(prefix, user_id, handles)
    if dead:
        # A session between the two steps of getting a new ID looks gone for
        # a moment: look again before dropping it from the index for good.
        yield Pause(0.05)
        more, dead = yield from _resolve(prefix, user_id, dead)
        live += more
    if dead:
        yield Call("zrem", (index, *dead), write=True)
    return sorted(live, key=lambda info: info.created)


def _resolve(
    prefix: str, user_id: str, handles: list[str]
) -> Flow[tuple[list[SessionInfo], list[str]]]:
    if not handles:
        return [], []
    moved = yield Pipeline([Call("get", (handle_key(prefix, h),)) for h in handles])
    keys = [text(m) if m else h for h, m in zip(handles, moved, strict=True)]
    fields = [USER, CREATED, SEEN, CLIENT, FORWARD]
    rows = yield Pipeline([Call("hmget", (session_key(prefix, k), fields)) for k in keys])
    live: list[SessionInfo] = []
    dead: list[str] = []
    for handle, key, row in zip(handles, keys, rows, strict=True):
        user, created, seen, client, forward = (None if v is None else text(v) for v in row)
        if key == REVOKED or user != user_id or created is None or forward is not None:
            dead.append(handle)
            continue
        seen_at = float(seen) if seen is not None else float(created)
        info = SessionInfo(handle, user_id, float(created), seen_at, json.loads(client or "{}"))
        live.append(info)
    return live, dead


def describe(prefix: str, names: list[str]) -> Flow[list[tuple[StoredSession, Record]]]:
    """The sessions stored under these Redis keys (from a SCAN); markers left out."""
    rows = yield Pipeline([Call("hgetall", (name,)) for name in names])
    found = []
    for name, row in zip(names, rows, strict=True):
        key = name[len(prefix) + 1 : -1]
        record = _record(row, key)
        if record is None or record.forward is not None:
            continue
        flat = row.items() if isinstance(row, dict) else zip(row[::2], row[1::2], strict=True)
        meta = {text(k): text(v) for k, v in flat if text(k) in (SEEN, CLIENT)}
        seen = float(meta.get(SEEN, record.created))
        size = sum(len(k) + len(v.encode()) for k, v in record.data.items())
        client = json.loads(meta.get(CLIENT) or "{}")
        handle = record.handle or key
        found.append(
            (StoredSession(handle, key, record.created, seen, record.user_id, client, size), record)
        )
    return found


def session(prefix: str, handle: str) -> Flow[tuple[StoredSession, Record] | None]:
    moved = yield Call("get", (handle_key(prefix, handle),))
    key = text(moved) if moved else handle
    if key == REVOKED:
        return None
    found = yield from describe(prefix, [session_key(prefix, key)])
    return found[0] if found else None


# Flask-Session's own keys, ``{prefix}{sid}``: read to adopt its sessions,
# written during a rolling deploy, deleted when an adopted session ends.


def flask_session_read(
    prefix: str, sid: str, key: str
) -> Flow[tuple[bytes | None, int, bool, bool]]:
    """Flask-Session's blob of ``sid`` and its TTL, whether this library has the
    session (``key``) by now, and whether its handle was revoked: one round trip."""
    name = f"{prefix}{sid}"
    calls = [
        Call("get", (name,)),
        Call("pttl", (name,)),
        Call("exists", (session_key(prefix, key),)),
        Call("get", (handle_key(prefix, key),)),
    ]
    blob, ttl, ours, handle = yield Pipeline(calls)
    return blob, int(ttl), bool(ours), handle is not None and text(handle) == REVOKED


def flask_session_touch(prefix: str, sid: str, ttl_ms: int) -> Flow[None]:
    yield Call("pexpire", (f"{prefix}{sid}", max(1, ttl_ms)), write=True)


def flask_session_write(prefix: str, sid: str, blob: bytes, ttl_ms: int) -> Flow[None]:
    yield Call("psetex", (f"{prefix}{sid}", max(1, ttl_ms), blob), write=True)


def flask_session_delete(prefix: str, sid: str) -> Flow[None]:
    yield Call("delete", (f"{prefix}{sid}",), write=True)


def scan_sessions(prefix: str, cursor: int, count: int) -> Flow[tuple[int, list[str]]]:
    """One SCAN step over the session hashes: ``(next cursor, their Redis keys)``."""
    next_cursor, names = yield Call("scan", (cursor, f"{prefix}{{*", count, "hash"))
    return int(next_cursor), [text(name) for name in names]


def flask_session_scan(prefix: str, cursor: int, count: int) -> Flow[tuple[int, list[str]]]:
    """One SCAN step over Flask-Session's keys: ``(next cursor, session IDs)``."""
    reply = yield Call("scan", (cursor, f"{prefix}*", count))
    next_cursor, names = reply
    sids = []
    for raw in names:
        name = text(raw)[len(prefix) :]
        # This library's own keys share the prefix: hashes ({digest}), user indexes.
        if "{" not in name and not name.startswith("user:"):
            sids.append(name)
    return int(next_cursor), sids
