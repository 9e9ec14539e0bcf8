"""What the manager needs to know about a session, beside its data.

:class:`SessionState` holds the loading state, the stored record, the IDs and
the pending binding; the functions here are the manager's and the drivers'
way in (load a record into a session, follow a renewal, compute what changed).
The app-facing :class:`~sharedsession.session.Session` keeps only the dict
and its small public surface.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import overload

from . import serialization
from .errors import StoreUnavailable
from .ids import new_id
from .stores.base import Record

if TYPE_CHECKING:
    from .session import Session

logger = logging.getLogger("sharedsession")

#: ``loader()``: the stored record (or ``None``), keys to write again even if
#: unchanged, and the ID it is stored under (a renewal's successor may differ).
Loader = Callable[[], "tuple[Record | None, Collection[str], str]"]

_get = dict.__getitem__
_has = dict.__contains__


class SessionState:
    """Everything about a session but its data: what the manager reads and writes.

    :param sid: The ID from the request's cookie, or ``None``.
    :param loader: Returns the stored record; ``None`` for a session with no record.
    :param permanent: ``permanent`` of a session that does not say.
    :param id_bytes: Randomness of a newly issued ID.
    :param degrade: If loading fails with :class:`StoreUnavailable`, act as an
        empty session that is never saved instead of raising.
    :param client: What to remember about the client when a user is bound.
    """

    __slots__ = (
        "accessed",
        "adopted",
        "all_touched",
        "bind",
        "cleared",
        "client",
        "default_permanent",
        "degraded_by",
        "degrade_on_error",
        "destroyed_sid",
        "forced",
        "id_bytes",
        "incoming_sid",
        "loaded",
        "loader",
        "pending",
        "raw",
        "record",
        "resign",
        "sid",
        "stale",
        "stored_sid",
        "touched",
        "used",
        "values",
    )

    incoming_sid: str | None
    loader: Loader | None
    default_permanent: bool
    id_bytes: int
    degrade_on_error: bool
    client: Mapping[str, str]
    resign: bool
    loaded: bool
    used: bool
    accessed: bool
    degraded_by: StoreUnavailable | None  # the outage a degraded session is serving through
    # Keys set before any load, when the manager writes them unread (else None):
    pending: dict[str, Any] | None
    # Set when loaded (preload):
    sid: str
    stored_sid: str | None  # the ID the loaded record is stored under
    record: Record | None
    raw: dict[str, str]  # the stored text of each loaded key
    values: dict[str, Any]  # each untagged loaded key's decoded value, until assigned
    stale: set[str]  # keys to write again even if unchanged
    touched: set[str]  # keys handed out or written: compared at save
    all_touched: bool  # values were handed out in bulk: compare every key
    cleared: bool
    forced: bool
    bind: tuple[str | None] | None
    destroyed_sid: str | None
    adopted: bool  # the record was adopted from Flask-Session (kept across destroy)

    def __init__(
        self,
        sid: str | None,
        loader: Loader | None,
        *,
        permanent: bool,
        id_bytes: int,
        degrade: bool,
        client: Mapping[str, str] | None,
    ) -> None:
        self.incoming_sid = sid
        self.loader = loader
        self.default_permanent = permanent
        self.id_bytes = id_bytes
        self.degrade_on_error = degrade
        self.client = client or {}
        #: Set by the manager when the cookie was signed with an old key.
        self.resign = False
        self.loaded = False
        self.used = False
        self.accessed = False
        self.degraded_by = None
        self.pending = None
        self.record = None
        self.stored_sid = None
        self.bind = None
        self.destroyed_sid = None
        self.adopted = False
        self.cleared = self.forced = self.all_touched = False
        # The rest is set by preload(): an untouched session pays for nothing more.

    @property
    def degraded(self) -> bool:
        """Whether the store failed to load and this session is never saved."""
        return self.degraded_by is not None

    @property
    def regenerated(self) -> bool:
        """Whether a stored session got a new ID in this request."""
        return self.record is not None and self.sid != self.stored_sid


@overload
def state(session: Session) -> SessionState: ...
@overload
def state(session: None) -> None: ...
def state(session: Session | None) -> SessionState | None:
    """The manager's view of ``session``: loading state, record, IDs, binding."""
    return None if session is None else session._state


def first_load(session: Session, st: SessionState) -> None:
    record: Record | None = None
    stale: Collection[str] = ()
    stored = st.incoming_sid
    if st.incoming_sid is not None and st.loader is not None:
        try:
            record, stale, stored = st.loader()
        except StoreUnavailable as exc:
            # Raised once (a 503); code that runs after it (an after_request
            # hook, a teardown) finds an empty session that is never saved, and
            # the store is not asked again in this request.
            degrade(session, exc, quiet=not st.degrade_on_error)
            if not st.degrade_on_error:
                raise
            return
    preload(session, record, stale=stale, sid=stored)


def reset(st: SessionState, record: Record | None) -> None:
    st.record = record
    st.stored_sid = None
    st.raw = {}
    st.values = {}
    st.stale = set()
    st.touched = set()
    st.all_touched = False
    st.cleared = False
    st.forced = False
    st.bind = None


def preload(
    session: Session,
    record: Record | None,
    *,
    stale: Collection[str] = (),
    sid: str | None = None,
) -> None:
    """Set the stored record; adapters that load before the handler call this.

    :param record: The record, or ``None`` for a new session.
    :param stale: Keys to write again even if unchanged (e.g. re-encryption).
    :param sid: The ID the record is stored under, when it is not the
        request's (a renewal's successor).
    """
    st = session._state
    st.loaded = True
    st.loader = None
    st.destroyed_sid = None
    dict.clear(session)
    parsed: dict[str, Any] = {}
    untagged: dict[str, Any] = {}  # what changed() may compare by text alone
    if record is not None:
        try:
            for k, v in record.data.items():
                parsed[k], plain = serialization.decode(v)
                if plain:
                    untagged[k] = parsed[k]
        except ValueError:
            logger.warning("a stored session holds undecodable data; starting a new one")
            record = None
        else:
            dict.update(session, parsed)
    reset(st, record)
    if record is not None:
        st.raw = dict(record.data)
        st.values = untagged
        st.stale = set(stale)
        st.adopted = record.adopted
        stored = sid or st.incoming_sid
        assert stored is not None
        st.sid = st.stored_sid = stored
    else:
        # An ID the store does not know is never adopted.
        st.sid = new_id(st.id_bytes)
    pending, st.pending = st.pending, None
    if pending:
        # Keys the request set before this load: its own changes, on top.
        dict.update(session, pending)
        st.touched.update(pending)
        for key in pending:
            st.values.pop(key, None)


def adopt(session: Session, record: Record, sid: str) -> None:
    """Make ``session`` an update of the session ``sid`` (a concurrent renewal's
    successor, ``record``): the request's own changes are written there."""
    st = session._state
    st.record = record
    st.sid = st.stored_sid = sid


def fail_on_use(session: Session, exc: StoreUnavailable) -> None:
    """Raise ``exc`` when the session is first used (its up-front load failed)."""

    def fail() -> tuple[Record | None, Collection[str], str]:
        raise exc

    session._state.loader = fail


def degrade(session: Session, exc: StoreUnavailable, *, quiet: bool = False) -> None:
    """Serve this request with an empty session that is never saved (store down)."""
    if not quiet:
        logger.warning(
            "session store unavailable, serving an empty unsaved session: %s",
            exc.original_error or exc,
        )
    session._state.degraded_by = exc
    preload(session, None)


def changed(session: Session, *, everything: bool = False) -> dict[str, str]:
    """Serialized values of the keys whose value differs from the stored one.

    :param everything: Return every key, changed or not.
    :raises SerializationError: A value cannot be stored.
    """
    st = session._state
    raw, stale, values = st.raw, st.stale, st.values
    # A value the request did not assign may have changed in place: compared
    # by its JSON text alone (see serialization.same_text), unless the session
    # was marked modified, which compares it in full.
    quick = not everything and not st.forced
    out = {}
    compare = dict.keys(session) if st.all_touched else st.touched | stale
    for key in compare:
        if not _has(session, key):
            continue
        value = _get(session, key)
        if (
            quick
            and key in values
            and value is values[key]
            and key not in stale
            and serialization.same_text(value, raw[key])
        ):
            continue
        text = serialization.dumps(key, value)
        if everything or key in stale or raw.get(key) != text:
            out[key] = text
    if everything:
        for key in dict.keys(session):
            if key not in out:
                out[key] = raw[key]
    return out


def removed(session: Session) -> frozenset[str]:
    """Stored keys this request deleted."""
    raw = session._state.raw
    return frozenset(key for key in raw if not _has(session, key))


def stored_size(session: Session, changed: dict[str, str]) -> int:
    """Bytes of serialized data the session holds once ``changed`` is written."""
    size = sum(len(k) + len(v.encode()) for k, v in changed.items())
    for key, text in session._state.raw.items():
        if key not in changed and _has(session, key):
            size += len(key) + len(text.encode())
    return size
