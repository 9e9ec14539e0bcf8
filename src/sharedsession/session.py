"""The session: a real ``dict`` that loads lazily and knows what changed.

The data lives in the dict itself once loaded, so everything that works on a
dict works on a session, including C code that reads a dict without calling
its methods (``json.dumps``, ``dict(s)``, ``==``). Every method that can see
the data loads the record first; a request that never touches its session
costs no store call.

Change tracking works by comparison, not by hooks: every key that was handed
out or written is serialized again at save and compared with what was loaded,
so ``session["cart"].append(item)`` is saved without ``session.modified = True``.
Only the keys that differ are written.

What the manager needs to know (the stored record, the incoming ID, what was
removed) lives in a :class:`SessionState` beside the dict, reached through
:func:`state`; the session's public surface is the dict plus Flask's
``permanent``/``new``/``modified``/``accessed`` and ``sid``, ``regenerate()``,
``destroy()``, ``bind_user()`` and ``user_id``.
"""

from __future__ import annotations

import copy as _copy
import logging
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import TypeVar
from typing import cast
from typing import overload

from . import serialization
from .errors import StoreUnavailable
from .ids import new_id
from .stores.base import Record

logger = logging.getLogger("sharedsession")

#: Where Flask keeps ``session.permanent``; kept so Flask code and data carry over.
PERMANENT_KEY = "_permanent"

#: ``loader()``: the stored record (or ``None``), keys to write again even if
#: unchanged, and the ID it is stored under (a renewal's successor may differ).
Loader = Callable[[], "tuple[Record | None, Collection[str], str]"]

T = TypeVar("T")
_MISSING: Any = object()


class _Unloaded:
    """The one entry of a session's dict before it loads (never a str, so never a user key)."""

    def __repr__(self) -> str:
        return "<not loaded>"


# C code that checks a dict's size before calling its methods (the json
# encoder's "{}" fast path) must not take an unloaded session for an empty one:
# with this entry it goes on to call items(), which loads.
_UNLOADED = _Unloaded()
_get = dict.__getitem__
_set = dict.__setitem__
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
        "all_touched",
        "bind",
        "cleared",
        "client",
        "default_permanent",
        "degraded",
        "degraded_by",
        "degrade_on_error",
        "destroyed_sid",
        "forced",
        "id_bytes",
        "incoming_sid",
        "loaded",
        "loader",
        "raw",
        "record",
        "resign",
        "sid",
        "stale",
        "stored_sid",
        "touched",
        "used",
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
    degraded: bool
    degraded_by: StoreUnavailable | None  # the outage a degraded session is serving through
    # Set when loaded (preload):
    sid: str
    stored_sid: str | None  # the ID the loaded record is stored under
    record: Record | None
    raw: dict[str, str]  # the stored text of each loaded key
    stale: set[str]  # keys to write again even if unchanged
    touched: set[str]  # keys handed out or written: compared at save
    all_touched: bool  # values were handed out in bulk: compare every key
    cleared: bool
    forced: bool
    bind: tuple[str | None] | None
    destroyed_sid: str | None

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
        self.degraded = False
        self.degraded_by = None
        self.record = None
        self.stored_sid = None
        self.bind = None
        self.destroyed_sid = None
        self.cleared = self.forced = self.all_touched = False
        # The rest is set by preload(): an untouched session pays for nothing more.

    @property
    def regenerated(self) -> bool:
        """Whether a stored session got a new ID in this request."""
        return self.record is not None and self.sid != self.stored_sid


class Session(dict[str, Any]):
    """A server-side session: a ``dict`` of top-level keys.

    :param sid: The ID from the request's cookie, or ``None``.
    :param loader: Returns the stored record for ``sid`` (or ``None``) and the
        keys to write again even if unchanged; called once, on first access.
        Omit it for a session that has no stored record.
    :param permanent: ``permanent`` of a session that does not say.
    :param id_bytes: Randomness of a newly issued ID.
    :param degrade: If loading fails with :class:`StoreUnavailable`, act as an
        empty session that is never saved instead of raising.
    :param client: What to remember about the client when a user is bound.
    """

    def __init__(
        self,
        sid: str | None = None,
        loader: Loader | None = None,
        *,
        permanent: bool = True,
        id_bytes: int = 32,
        degrade: bool = False,
        client: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        _set(self, cast(str, _UNLOADED), None)
        self._state = SessionState(
            sid, loader, permanent=permanent, id_bytes=id_bytes, degrade=degrade, client=client
        )

    def _load(self) -> SessionState:
        st = self._state
        st.used = True
        if not st.loaded:
            _first_load(self, st)
        return st

    def _load_to_change_identity(self) -> SessionState:
        # Ending or rotating a session the store could not load would answer
        # 200 and leave the real session alive: fail closed, even when degrading.
        st = self._load()
        if st.degraded_by is not None:
            raise st.degraded_by
        return st

    # -- Flask's SessionMixin surface --------------------------------------

    @property
    def permanent(self) -> bool:
        """Whether the cookie outlives the browser session (Flask's meaning)."""
        return bool(self.get(PERMANENT_KEY, self._state.default_permanent))

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self[PERMANENT_KEY] = bool(value)

    @property
    def new(self) -> bool:
        """Whether the session has no stored record yet."""
        return self._load().record is None

    @property
    def modified(self) -> bool:
        """Whether a save has something to write. Setting it forces a save."""
        st = self._state
        if not st.loaded:
            return False
        return bool(
            st.forced or st.cleared or st.bind or st.regenerated or removed(self) or changed(self)
        )

    @modified.setter
    def modified(self, value: bool) -> None:
        self._load().forced = bool(value)

    @property
    def accessed(self) -> bool:
        """Whether the session was used, or marked as accessed by the framework."""
        return self._state.used or self._state.accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        # Flask marks every access of the ``session`` proxy; that must not load it.
        self._state.accessed = bool(value)

    # -- lifecycle ---------------------------------------------------------

    @property
    def sid(self) -> str:
        """The session's ID (a new one if the request carried none or an unknown one)."""
        sid: str = self._load().sid
        return sid

    def regenerate(self) -> None:
        """Give the session a new ID, keeping its data; the old ID stops working.

        Call it at login and on every change of privilege, so that an ID
        someone planted or saw before cannot follow the user in. The store
        moves the record atomically when the response is saved.
        """
        st = self._load_to_change_identity()
        st.sid = new_id(st.id_bytes)

    def destroy(self) -> None:
        """End the session: its stored data is deleted and its cookie expired.

        Keys set afterwards start a new session with a new ID.
        """
        st = self._load_to_change_identity()
        if st.record is not None:
            st.destroyed_sid = st.stored_sid
        dict.clear(self)
        _reset(st, None)
        st.sid = new_id(st.id_bytes)

    @property
    def user_id(self) -> str | None:
        """The user the session is bound to, or ``None``."""
        st = self._load()
        if st.bind is not None:
            bound: str | None = st.bind[0]
            return bound
        return None if st.record is None else st.record.user_id

    def bind_user(self, user_id: str | None, *, regenerate: bool = True) -> None:
        """Bind the session to a user (at login), so it can be listed and revoked.

        :param user_id: The user's ID; ``None`` unbinds.
        :param regenerate: Also give the session a new ID (see :meth:`regenerate`).
        """
        if user_id is not None and (type(user_id) is not str or not user_id):
            raise TypeError(f"user_id must be a non-empty str, got {user_id!r}")
        self._load_to_change_identity().bind = (user_id,)
        if regenerate and user_id is not None:
            self.regenerate()

    # -- the dict: every method that sees data loads first -----------------

    def __getitem__(self, key: str) -> Any:
        self._load().touched.add(key)
        return _get(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str:
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        if key[:1] == "\x00":
            raise ValueError(f"session keys starting with NUL are reserved, got {key!r}")
        self._load().touched.add(key)
        _set(self, key, value)

    def __delitem__(self, key: str) -> None:
        self._load()
        dict.__delitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._load()
        return _has(self, key)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return dict.__iter__(self)

    def __reversed__(self) -> Iterator[str]:
        self._load()
        return dict.__reversed__(self)

    def __len__(self) -> int:
        self._load()
        return dict.__len__(self)

    def __eq__(self, other: object) -> bool:
        self._load()
        if isinstance(other, Session):
            other._load()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None

    def __repr__(self) -> str:
        self._everything()
        return f"{type(self).__name__}({dict.__repr__(self)})"

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        return {**self.copy(), **other}

    def __ror__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        return {**other, **self.copy()}

    def __ior__(self, other: Any) -> Session:  # type: ignore[override]
        self.update(other)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        st = self._load()
        if _has(self, key):
            st.touched.add(key)
            return _get(self, key)
        return default

    def setdefault(self, key: str, default: Any = None) -> Any:
        if not self.__contains__(key):
            self[key] = default
        return self[key]

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        self._load()
        if default is _MISSING:
            return dict.pop(self, key)
        return dict.pop(self, key, default)

    def popitem(self) -> tuple[str, Any]:
        self._load()
        return dict.popitem(self)

    def update(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > 1:
            raise TypeError(f"update expected at most 1 argument, got {len(args)}")
        items: Iterable[tuple[Any, Any]] = ()
        if args:
            other = args[0]
            if isinstance(other, Mapping):
                items = [(k, other[k]) for k in other]
            elif hasattr(other, "keys"):
                items = [(k, other[k]) for k in other.keys()]
            else:
                items = other
        for key, value in items:
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def clear(self) -> None:
        """Remove every key; saving an empty cleared session ends it.

        A session bound to a user ends at once, as with :meth:`destroy`:
        ``session.clear()`` is how many Flask apps log out.
        """
        st = self._load_to_change_identity()
        if self.user_id is not None:
            self.destroy()
            return
        dict.clear(self)
        st.raw.clear()
        st.stale.clear()
        st.touched.clear()
        st.cleared = True

    def keys(self) -> Any:
        self._load()
        return dict.keys(self)

    def values(self) -> Any:
        self._everything()
        return dict.values(self)

    def items(self) -> Any:
        self._everything()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` with the session's data (values shared, as ``dict.copy``)."""
        self._everything()
        return dict(dict.items(self))

    def __copy__(self) -> dict[str, Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        self._load()
        return _copy.deepcopy(dict(dict.items(self)), memo)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # A pickle or copy holds the data, never the request's loader or state.
        return (dict, (self.copy(),))

    def _everything(self) -> None:
        # Values handed out in bulk may be mutated: compare all of them at save.
        self._load().all_touched = True


@overload
def state(session: Session) -> SessionState: ...
@overload
def state(session: None) -> None: ...
def state(session: Session | None) -> SessionState | None:
    """The manager's view of ``session``: loading state, record, IDs, binding."""
    return None if session is None else session._state


def _first_load(session: Session, st: SessionState) -> None:
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


def _reset(st: SessionState, record: Record | None) -> None:
    st.record = record
    st.stored_sid = None
    st.raw = {}
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
    if record is not None:
        try:
            parsed = {k: serialization.loads(v) for k, v in record.data.items()}
        except ValueError:
            logger.warning("a stored session holds undecodable data; starting a new one")
            record = None
        else:
            dict.update(session, parsed)
    _reset(st, record)
    if record is not None:
        st.raw = dict(record.data)
        st.stale = set(stale)
        stored = sid or st.incoming_sid
        assert stored is not None
        st.sid = st.stored_sid = stored
    else:
        # An ID the store does not know is never adopted.
        st.sid = new_id(st.id_bytes)


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
    session._state.degraded = True
    session._state.degraded_by = exc
    preload(session, None)


def changed(session: Session, *, everything: bool = False) -> dict[str, str]:
    """Serialized values of the keys whose value differs from the stored one.

    :param everything: Return every key, changed or not.
    :raises SerializationError: A value cannot be stored.
    """
    st = session._state
    raw, stale = st.raw, st.stale
    out = {}
    compare = dict.keys(session) if st.all_touched else st.touched | stale
    for key in compare:
        if not _has(session, key):
            continue
        text = serialization.dumps(key, _get(session, key))
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
