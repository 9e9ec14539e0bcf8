"""The store protocols and the plain data that crosses them.

A store does I/O only: it loads a record, applies a change set atomically,
and deletes. Every decision (which ID, what changed, when it expires) is made
by :class:`~sharedsession.manager.SessionManager` before the store is called.

Stores are keyed by ``key``, the digest of a session ID
(:func:`sharedsession.ids.store_key`); a store never sees a cookie's ID.
Times are epoch seconds of the application's clock; durations are seconds.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Set
from dataclasses import dataclass
from dataclasses import field
from types import TracebackType
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from typing_extensions import Self

#: Serialized value of each top-level key. Keys are any strings.
RecordData = Mapping[str, str]


@dataclass(frozen=True)
class Record:
    """A session as loaded from a store.

    :param data: Serialized value of each top-level key.
    :param created: When the session was created.
    :param absolute: The hard deadline, or ``None``.
    :param issued: When its current ID was issued (creation or last regeneration).
    :param user_id: The user the session is bound to, or ``None``.
    :param forward: Set when the key holds no session but a renewal's
        forwarding marker (see :attr:`ChangeSet.forward`): the sealed successor.
    :param refreshed: Whether this load moved the idle deadline (a refresh the
        store did not skip).
    :param adopted: Set by the manager, not by stores: the session was adopted
        from Flask-Session.
    :param handle: The session's handle: its first store key, kept when it
        gets a new ID (``None`` from stores that do not keep one).
    :param expires: The deadline the store recorded with the last move (after
        this load's refresh, if it made one), which is the expiry the client's
        cookie was sent with; ``None`` from stores that do not say. A write
        within a refresh step of it leaves it (and sends no cookie).
    """

    data: RecordData
    created: float
    absolute: float | None = None
    issued: float | None = None
    user_id: str | None = None
    forward: str | None = None
    refreshed: bool = False
    adopted: bool = False
    handle: str | None = None
    expires: float | None = None


@dataclass(frozen=True)
class SessionInfo:
    """A live session of a user, as listed by :meth:`SessionStore.sessions_for_user`.

    :param handle: Names the session without revealing its ID, and keeps
        naming it when the session gets a new ID (its first store key).
    :param user_id: The user it is bound to.
    :param created: When it was created.
    :param last_seen: When it was last loaded with a refresh or written.
    :param client: What the app recorded about the client (e.g. ``agent``, ``ip``).
    """

    handle: str
    user_id: str
    created: float
    last_seen: float
    client: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredSession:
    """A live session as :meth:`Administered.sessions` lists it.

    :param handle: Its handle (see :class:`SessionInfo`).
    :param key: Its current store key.
    :param created: When it was created.
    :param last_seen: When it was last loaded with a refresh or written.
    :param user_id: The user it is bound to (as the store knows it), or ``None``.
    :param client: What the app recorded about the client.
    :param size: Bytes of its stored values.
    """

    handle: str
    key: str
    created: float
    last_seen: float
    user_id: str | None = None
    client: Mapping[str, str] = field(default_factory=dict)
    size: int = 0


@dataclass(frozen=True)
class Refresh:
    """Slide the idle deadline in the same round trip as a load.

    The store sets the deadline to ``now + ttl``, never past the record's
    absolute deadline; it may skip the write when the deadline it has is
    already within ``step`` seconds of that.
    """

    now: float
    ttl: float
    step: float = 0.0


@dataclass(frozen=True)
class ChangeSet:
    """What a save writes, applied atomically by :meth:`SessionStore.apply`.

    :param now: The application's time of the save.
    :param expires: The new deadline; a store keeps the record until then.
    :param set: Serialized values of the keys that changed.
    :param delete: Keys to remove.
    :param clear: Remove every key not in ``set`` first.
    :param created: Create the record (it must not exist) with this creation
        time; when ``None`` the record must exist, else nothing is written.
    :param absolute: The hard deadline of a record being created.
    :param replaces: Move the record at this key to the new key first, in the
        same atomic step (regeneration): the old key is gone before the new
        one exists; ``GONE`` if the old record no longer exists.
    :param bind: Bind the record to ``user_id`` (``None`` unbinds) and store
        ``client``; ``False`` leaves the binding alone.
    :param user_id: See ``bind``.
    :param client: What to remember about the client, with ``bind``.
    :param forward: With ``replaces``: leave at the old key, instead of nothing,
        a forwarding marker holding this opaque text until ``forward_until``.
        A marker loads as a :class:`Record` with only ``forward`` set; it can
        never be written (``GONE``), replaced (``GONE``) or listed.
    :param forward_until: When the marker expires.
    :param handle: The session's handle as loaded (``Record.handle``), for
        stores that index users by handle; ``None``: the key.
    :param owner: The user a session being written is bound to (as the store
        knows it), so that stores keep its user index alive as long as it.
    :param idle: The idle lifetime (seconds, before any absolute cap): the
        longest any session can live from ``now`` on.
    :param keeps_deadline: ``expires`` is the deadline the record has
        (``Record.expires``), within a refresh step of the one a move would
        set: a store may leave the deadline, and the TTL of what finds the
        session, as they are (a concurrent move stays).
    """

    now: float
    expires: float
    set: Mapping[str, str] = field(default_factory=dict)
    delete: Set[str] = frozenset()
    clear: bool = False
    created: float | None = None
    absolute: float | None = None
    replaces: str | None = None
    bind: bool = False
    user_id: str | None = None
    client: Mapping[str, str] = field(default_factory=dict)
    forward: str | None = None
    forward_until: float = 0.0
    handle: str | None = None
    owner: str | None = None
    idle: float = 0.0
    keeps_deadline: bool = False


@dataclass(frozen=True)
class KeyWrites:
    """Keys written into a stored record that was not loaded (a handler that
    only set keys), by :meth:`KeyWriter.write_keys`, in one atomic step.

    :param now: The application's time of the save.
    :param idle: The idle lifetime: the record then lives until ``now + idle``,
        never past its absolute deadline, nor past ``created + lifetime``.
    :param lifetime: The configured absolute lifetime, or ``None``.
    :param set: Serialized values of the keys to set.
    :param max_keys: Write nothing when the record could then hold more keys
        than this; a store may refuse earlier (with an upper bound), the
        caller then loads and counts. ``None``: no limit.
    :param read: A key whose stored text, as before the write, to return.
    :param step: A store that records the deadline may leave it when the new
        one is no more than this later (the refresh step); ``0``: always move.
    """

    now: float
    idle: float
    lifetime: float | None
    set: Mapping[str, str]
    max_keys: int | None = None
    read: str | None = None
    step: float = 0.0


@dataclass(frozen=True)
class Written:
    """What :meth:`KeyWriter.write_keys` wrote.

    :param expires: The record's deadline now.
    :param value: The stored text of the key asked for (``read``), if it has one.
    :param moved: Whether the write moved the deadline (``False``: it was
        within ``step`` and left as it was, so the client's cookie still has it).
    """

    expires: float
    value: str | None = None
    moved: bool = True


class ApplyResult(enum.Enum):
    """What :meth:`SessionStore.apply` did."""

    #: The change set was written.
    APPLIED = "applied"
    #: The record no longer exists (deleted, revoked or expired); nothing was written.
    GONE = "gone"
    #: ``created`` was given but the key exists; nothing was written.
    EXISTS = "exists"


@runtime_checkable
class SessionStore(Protocol):
    """A blocking session store: four methods, nothing to inherit.

    Contract, checked by the shared test suite for every built-in store:

    - ``load`` returns ``None`` for an unknown or expired key.
    - ``apply`` is atomic: all of a change set is written or none. A change set
      without ``created`` never brings a missing record back (``GONE``).
    - A change set that leaves a record with no keys deletes the record,
      unless it is bound to a user.
    - Every write, and every refresh the store does not skip, records its
      time as the session's last seen.
    - ``delete`` of an unknown key does nothing.

    Inherit :class:`Closing` for ``with store:``; implement :class:`UserIndex`
    too for listing and revoking a user's sessions.
    """

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        """Return the record at ``key``, sliding its deadline when ``refresh`` is given.

        :param key: The store key of the session.
        :param refresh: Extend the idle deadline in the same round trip.
        """
        ...

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        """Write ``changes`` to the record at ``key`` atomically.

        :param key: The store key of the session.
        :param changes: What to write; see :class:`ChangeSet`.
        """
        ...

    def delete(self, key: str) -> None:
        """Delete the record at ``key``; an unknown key is not an error."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


@runtime_checkable
class AsyncSessionStore(Protocol):
    """The async twin of :class:`SessionStore`: same methods, same contract."""

    async def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None: ...

    async def apply(self, key: str, changes: ChangeSet) -> ApplyResult: ...

    async def delete(self, key: str) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class KeyWriter(Protocol):
    """A store that writes keys into a record without loading it first: a
    request that only sets keys costs one round trip instead of two.

    Optional: without it, such a request loads and then applies, as any write.
    """

    def write_keys(self, key: str, writes: KeyWrites) -> Written | None:
        """Set ``writes.set`` in the live record at ``key`` and move its deadline.

        :param key: The store key of the session.
        :param writes: What to write; see :class:`KeyWrites`.
        :returns: ``None``, with nothing written, when there is no live
            session at ``key`` (unknown, expired, past its absolute deadline,
            a renewal's forwarding marker) or it could exceed ``max_keys``,
            or the store does not write unread in its configuration: the
            caller then loads the session and saves it the usual way.
        """
        ...


@runtime_checkable
class UserIndex(Protocol):
    """A store that finds the sessions bound to a user ("your devices", "log out everywhere")."""

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        """The live sessions bound to ``user_id``, oldest first.

        Expired and deleted sessions never appear, and the store drops them
        from whatever index it keeps, so the index does not grow without bound.
        """
        ...


@runtime_checkable
class AsyncUserIndex(Protocol):
    """The async twin of :class:`UserIndex`."""

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]: ...


@runtime_checkable
class Administered(Protocol):
    """A store an operator can walk and prune (every built-in store)."""

    def sessions(self) -> Iterator[StoredSession]:
        """Every live session (Redis: SCAN over every master), in no order."""
        ...

    def session(self, handle: str) -> tuple[StoredSession, Record] | None:
        """The live session with this handle and its record, or ``None``."""
        ...

    def revoke(self, handle: str) -> bool:
        """End the session with this handle, also if it is getting a new ID right
        now; ``True`` if there was one to end."""
        ...

    def purge(self) -> int:
        """Delete expired sessions the store does not expire itself; how many."""
        ...


def reach_of(host: str | None) -> str:
    """Who shares the sessions of a server at ``host``: ``"machine"`` for a Unix
    socket (``None``) or a loopback address (each machine has its own), else
    ``"network"``."""
    if not host:
        return "machine"
    host = host.strip("[]").lower()
    return "machine" if host in ("localhost", "::1") or host.startswith("127.") else "network"


def revoke_handle(store: Any, handle: str) -> Any:
    """End the session with ``handle`` on any store: its ``revoke`` (which also
    catches a session getting a new ID), else ``delete`` of the handle's key
    (then reported as ended). Awaitable on an async store."""
    revoke = getattr(store, "revoke", None)
    if revoke is not None:
        return revoke(handle)
    if inspect.iscoroutinefunction(store.delete):

        async def deleted() -> bool:
            await store.delete(handle)
            return True

        return deleted()
    store.delete(handle)
    return True


def writes_keys(store: Any) -> bool:
    """Whether ``store`` writes keys without loading (:class:`KeyWriter` or its
    async twin). Looked up statically: a wrapper that passes unknown attributes
    through (``__getattr__``) would otherwise let writes bypass it."""
    return callable(inspect.getattr_static(store, "write_keys", None))


def user_index(store: Any) -> Any:
    """``store``, if it indexes users (:class:`UserIndex` or its async twin).

    :raises ConfigurationError: It does not; the message says what to add.
    """
    if not callable(getattr(store, "sessions_for_user", None)):
        raise ConfigurationError(
            f"{type(store).__name__} does not index sessions by user: listing and revoking"
            " a user's sessions needs a store with sessions_for_user(user_id) (every"
            " built-in store has it)."
        )
    return store


class Closing:
    """``with store:`` for a store: ``__enter__``/``__exit__`` that call ``close()``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClosing:
    """``async with store:`` for an async store: ``__aenter__``/``__aexit__`` that await
    ``aclose()``."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
