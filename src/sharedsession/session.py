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
removed) lives in a :class:`~sharedsession._state.SessionState` beside the
dict, reached through :func:`state`; the session's public surface is the dict plus Flask's
``permanent``/``new``/``modified``/``accessed`` and ``sid``, ``regenerate()``,
``destroy()``, ``bind_user()`` and ``user_id``.
"""

from __future__ import annotations

import copy as _copy
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import TypeVar
from typing import cast

from ._state import Loader
from ._state import SessionState
from ._state import changed
from ._state import first_load
from ._state import removed
from ._state import reset
from ._state import state as state
from .ids import new_id

#: Where Flask keeps ``session.permanent``; kept so Flask code and data carry over.
PERMANENT_KEY = "_permanent"

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

S = TypeVar("S", bound="Session")

#: ``opener(session)``: makes the session's state and installs it with :func:`install`.
Opener = Callable[["Session"], None]


#: Held while an opener runs (microseconds, no I/O; re-entrant, never a deadlock).
_OPENING = threading.RLock()


class _Opening:
    """``Session._state`` until the state is made: makes it on first use.

    A session from :func:`opening` has no state yet; the first look at it
    (any dict method, ``sid``, ``accessed``...) runs its opener, which puts
    the state in the instance's ``__dict__``, where every later look finds it
    directly. A request that never touches its session pays for no more.
    """

    def __get__(self, session: Session | None, owner: type[Session]) -> SessionState:
        if session is None:
            raise AttributeError("_state is an instance attribute")
        with _OPENING:  # two threads' first looks at once: one opener runs
            st: SessionState | None = session.__dict__.get("_state")
            if st is None:
                opener: Opener | None = session.__dict__.get("_opener")
                if opener is None:
                    raise AttributeError(
                        "a Session made without __init__ or opening() has no state"
                    )
                opener(session)
                del session.__dict__["_opener"]
                st = session.__dict__["_state"]
        return st


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
        install(
            self,
            SessionState(
                sid, loader, permanent=permanent, id_bytes=id_bytes, degrade=degrade, client=client
            ),
        )

    _state = _Opening()

    def _load(self) -> SessionState:
        st = self._state
        st.used = True
        if not st.loaded:
            first_load(self, st)
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
        # Loads first: apps set it on every request (a ``before_request``
        # hook), and a load finds it unchanged where a write unread would
        # write it every time.
        self._load()
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
            return bool(st.pending)
        return bool(
            st.forced or st.cleared or st.bind or st.regenerated or removed(self) or changed(self)
        )

    @modified.setter
    def modified(self, value: bool) -> None:
        self._load().forced = bool(value)

    @property
    def accessed(self) -> bool:
        """Whether the session was used, or marked as accessed by the framework."""
        # Asking does not open a session that nothing has looked at yet.
        st: SessionState | None = self.__dict__.get("_state")
        return st is not None and (st.used or st.accessed)

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
        elif st.destroyed_sid is None:
            # A cookie whose session the store did not find is deleted too:
            # "not found" may come from a stale copy (a Redis master that a
            # failover demoted), and only the delete, confirmed like any
            # write, can tell. (Not after an earlier end in this request:
            # that one knew where the session was stored.)
            st.destroyed_sid = st.incoming_sid
        dict.clear(self)
        reset(st, None)
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
        st = self._state
        if st.pending is not None and not st.loaded:
            # Not loaded for a key that is only set: the save writes it without
            # loading (one round trip), and a later load puts it on top.
            st.used = True
            st.pending[key] = value
            return
        st = self._load()
        st.touched.add(key)
        st.values.pop(key, None)  # assigned: compared in full at save
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
        if st.record is None and st.destroyed_sid is None:  # see destroy()
            st.destroyed_sid = st.incoming_sid
        dict.clear(self)
        st.raw.clear()
        st.values.clear()
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


def opening(session_class: type[S], opener: Opener) -> S:
    """A session of ``session_class`` whose state ``opener`` makes on first use.

    The class's ``__init__`` is not called: ``opener`` does its work, later.
    """
    session = session_class.__new__(session_class)
    _set(session, cast(str, _UNLOADED), None)
    session.__dict__["_opener"] = opener
    return session


def install(session: Session, st: SessionState) -> None:
    """Make ``st`` the state of ``session`` (from its ``__init__`` or its opener)."""
    session.__dict__["_state"] = st


def untouched(session: Session) -> bool:
    """Whether nothing has looked at ``session`` since :func:`opening` made it:
    it was neither used nor accessed, and its state is not even made."""
    return "_state" not in session.__dict__
