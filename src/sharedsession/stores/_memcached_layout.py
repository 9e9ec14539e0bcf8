"""The memcached layout: item names, the JSON documents items hold, and expiry times.

Memcached keeps opaque values under flat keys: no per-key structure, no
scripting, no way to list keys. A session is therefore one item holding one
compact JSON document, and every write of an existing session is a
read-merge-``cas`` (see :mod:`sharedsession.stores.memcached`).

Items (``prefix`` is ``SESSION_KEY_PREFIX``):

- ``{prefix}<key>``: one of three documents.
  A session: ``{"c": created, "a": absolute deadline or null, "e": deadline,
  "i": issued, "s": last seen, "h": handle, "u": user or null, "k": client or
  null, "x": until when its index entries surely live, "d": {name: value}}``.
  A renewal's forwarding marker: ``{"f": sealed successor, "c": created, "e": until}``.
  A tombstone: ``{"t": 1}``, left by a write that ended the session; it reads
  as no session and is never written again.
- ``{prefix}user:<sha256 of the user>``: a user's index, ``{"h": [handles,
  oldest login first], "i": idle lifetime}``. A hint, pruned of dead handles
  whenever it is listed; the session items hold the truth.
- ``{prefix}handle:<handle>``: where a session that got a new ID lives now
  (its key), or ``revoked``.

Every document carries its own deadline, so a load never returns an expired
record although memcached counts TTLs in whole seconds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from ..errors import ConfigurationError
from .base import ChangeSet
from .base import Record
from .base import SessionInfo
from .base import StoredSession

logger = logging.getLogger("sharedsession")

#: What a handle item holds once its session was revoked.
REVOKED = b"revoked"
#: How long a revoked handle is remembered, so that a new ID written right then ends too.
REVOKED_SECONDS = 60.0
#: What a write that ends a session leaves behind, and for how long (seconds).
TOMBSTONE = b'{"t":1}'
TOMBSTONE_SECONDS = 5.0
#: Longest relative TTL memcached accepts; larger values are read as a Unix time.
MAX_RELATIVE = 30 * 24 * 3600
#: Longest prefix accepted: memcached keys are at most 250 bytes.
MAX_PREFIX = 150


@dataclass
class Doc:
    """A session as one memcached item holds it."""

    data: dict[str, str]
    created: float
    absolute: float | None
    expires: float
    issued: float
    seen: float
    handle: str
    user: str | None = None
    client: dict[str, str] | None = None
    found_until: float = 0.0


@dataclass(frozen=True)
class Marker:
    """A renewal's forwarding marker."""

    forward: str
    created: float
    expires: float


@dataclass
class Index:
    """A user's index: the handles of their sessions, oldest login first."""

    handles: list[str] = field(default_factory=list)
    idle: float = 0.0


def check_prefix(prefix: str) -> None:
    """Refuse a prefix memcached cannot take in a key."""
    if (
        len(prefix) > MAX_PREFIX
        or not prefix.isascii()
        or any(ch.isspace() or not ch.isprintable() for ch in prefix)
    ):
        raise ConfigurationError(
            f"SESSION_KEY_PREFIX = {prefix!r} cannot start a memcached key: use at most"
            f" {MAX_PREFIX} printable ASCII characters without spaces."
        )


def session_key(prefix: str, key: str) -> str:
    return f"{prefix}{key}"


def user_key(prefix: str, user_id: str) -> str:
    # A digest: user IDs may hold spaces or be long, which memcached keys cannot.
    digest = base64.urlsafe_b64encode(
        hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).digest()
    )
    return f"{prefix}user:{digest.decode().rstrip('=')}"


def handle_key(prefix: str, handle: str) -> str:
    return f"{prefix}handle:{handle}"


def exptime(seconds: float) -> int:
    """Memcached's expiry for an item that must live ``seconds`` more.

    Rounded up, plus one: memcached's clock ticks once a second and an item
    must never vanish before its document's own deadline. Beyond 30 days
    memcached reads the number as a Unix time, so it gets one.
    """
    whole = math.ceil(max(seconds, 0.0)) + 1
    return whole if whole <= MAX_RELATIVE else int(time.time()) + whole


def _dumps(document: dict[str, Any]) -> bytes:
    # UTF-8 as it is (readable, compact); a lone surrogate in a key name survives too.
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def _loads(raw: bytes | str) -> Any:
    return json.loads(raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else raw)


def encode(doc: Doc) -> bytes:
    return _dumps(
        {
            "c": doc.created,
            "a": doc.absolute,
            "e": doc.expires,
            "i": doc.issued,
            "s": doc.seen,
            "h": doc.handle,
            "u": doc.user,
            "k": doc.client,
            "x": doc.found_until,
            "d": doc.data,
        }
    )


def encode_marker(marker: Marker) -> bytes:
    return _dumps({"f": marker.forward, "c": marker.created, "e": marker.expires})


def _number(value: Any) -> float:
    if type(value) not in (int, float):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("not a mapping of strings")
    return value


def parse(raw: bytes | str | None) -> Doc | Marker | None:
    """The session or marker an item holds; ``None`` for nothing, a tombstone
    or anything unreadable (logged: damaged data is no session, never a 500)."""
    if raw is None or raw == TOMBSTONE:
        return None
    try:
        found = _loads(raw)
        if not isinstance(found, dict):
            raise ValueError("not a JSON object")
        if "f" in found:
            if not isinstance(found["f"], str):
                raise ValueError("a marker without its successor")
            return Marker(found["f"], _number(found["c"]), _number(found["e"]))
        absolute, user, client = found["a"], found["u"], found["k"]
        if not isinstance(found["h"], str) or not (user is None or isinstance(user, str)):
            raise ValueError("a handle or user that is not a string")
        return Doc(
            _strings(found["d"]),
            _number(found["c"]),
            None if absolute is None else _number(absolute),
            _number(found["e"]),
            _number(found["i"]),
            _number(found["s"]),
            found["h"],
            user,
            None if client is None else _strings(client),
            _number(found["x"]),
        )
    except (ValueError, KeyError, UnicodeError) as exc:
        logger.warning("a stored session is unreadable (%s); ignoring it", exc)
        return None


def parse_index(raw: bytes | str | None) -> Index:
    """A user's index; an unreadable one counts as empty (it is only a hint)."""
    if raw is None:
        return Index()
    try:
        found = _loads(raw)
        handles, idle = found["h"], _number(found["i"])
        if isinstance(handles, list) and all(isinstance(h, str) for h in handles):
            return Index(handles, idle)
    except (ValueError, KeyError, TypeError, UnicodeError):
        pass
    logger.warning("a user's session index is unreadable; starting it over")
    return Index()


def encode_index(index: Index) -> bytes:
    return _dumps({"h": index.handles, "i": index.idle})


def record(doc: Doc, *, refreshed: bool = False) -> Record:
    return Record(
        dict(doc.data),
        doc.created,
        doc.absolute,
        doc.issued,
        doc.user,
        refreshed=refreshed,
        handle=doc.handle,
    )


def stored(key: str, doc: Doc) -> StoredSession:
    size = sum(len(k) + len(v.encode()) for k, v in doc.data.items())
    return StoredSession(
        doc.handle, key, doc.created, doc.seen, doc.user, dict(doc.client or {}), size
    )


def info(doc: Doc, user_id: str) -> SessionInfo:
    return SessionInfo(doc.handle, user_id, doc.created, doc.seen, dict(doc.client or {}))


def merged(doc: Doc, changes: ChangeSet) -> Doc:
    """``doc`` with ``changes`` applied (a new document; ``doc`` is left alone)."""
    data = {} if changes.clear else dict(doc.data)
    for name in changes.delete:
        data.pop(name, None)
    data.update(changes.set)
    user, client = doc.user, doc.client
    if changes.bind:
        user = changes.user_id
        client = dict(changes.client) if user is not None else None
    return Doc(
        data,
        doc.created,
        doc.absolute,
        changes.expires,
        doc.issued,
        changes.now,
        doc.handle,
        user,
        client,
        doc.found_until,
    )


def created(key: str, changes: ChangeSet) -> Doc:
    """The document of a session ``changes`` creates at ``key``."""
    assert changes.created is not None
    user = changes.user_id if changes.bind else None
    return Doc(
        dict(changes.set),
        changes.created,
        changes.absolute,
        changes.expires,
        changes.now,
        changes.now,
        key,
        user,
        dict(changes.client) if user is not None else None,
    )


def ends(doc: Doc) -> bool:
    """Whether writing ``doc`` ends the session: no keys and no user."""
    return not doc.data and doc.user is None
