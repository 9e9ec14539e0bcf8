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
from collections.abc import Mapping
from collections.abc import Set
from dataclasses import dataclass
from dataclasses import field
from types import TracebackType
from typing import Protocol
from typing import runtime_checkable

#: Serialized value of each top-level key. Keys are any strings.
RecordData = Mapping[str, str]


@dataclass(frozen=True)
class Record:
    """A session as loaded from a store.

    :param data: Serialized value of each top-level key.
    :param created: When the session was created.
    :param absolute: The hard deadline, or ``None``.
    """

    data: RecordData
    created: float
    absolute: float | None = None


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
    """

    now: float
    expires: float
    set: Mapping[str, str] = field(default_factory=dict)
    delete: Set[str] = frozenset()
    clear: bool = False
    created: float | None = None
    absolute: float | None = None


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
    """A blocking session store.

    Contract, checked by the shared test suite for every built-in store:

    - ``load`` returns ``None`` for an unknown or expired key.
    - ``apply`` is atomic: all of a change set is written or none. A change set
      without ``created`` never brings a missing record back (``GONE``).
    - A change set that leaves a record with no keys deletes the record.
    - ``delete`` of an unknown key does nothing.
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

    def __enter__(self) -> SessionStore: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class AsyncSessionStore(Protocol):
    """The async twin of :class:`SessionStore`: same methods, same contract."""

    async def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None: ...

    async def apply(self, key: str, changes: ChangeSet) -> ApplyResult: ...

    async def delete(self, key: str) -> None: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> AsyncSessionStore: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
