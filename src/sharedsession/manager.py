"""SessionManager: what to load, what changed, what to write, what cookie to send.

This module does no I/O and imports no web framework. Adapters (Flask, ASGI)
call it around a single store call each, sync or async, so both kinds share
every decision::

    session = manager.open(cookie_value, loader)   # loader: lambda key, refresh: ...
    ...                                            # the app uses the session
    plan = manager.save_plan(session)
    result = store.apply(plan.key, plan.changes)   # or store.delete(plan.key)
    cookie = plan.cookie_after(result)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import SessionTooLarge
from .errors import StoreError
from .expiry import ExpiryPolicy
from .ids import MIN_ID_BYTES
from .ids import CookieSigner
from .ids import is_well_formed
from .ids import store_key
from .session import Session
from .stores.base import ApplyResult
from .stores.base import ChangeSet
from .stores.base import Record
from .stores.base import Refresh

S = TypeVar("S", bound=Session)

#: ``loader(key, refresh)``: the blocking store's ``load``, bound by the adapter.
Loader = Callable[[str, "Refresh | None"], "Record | None"]


@dataclass(frozen=True)
class Cookie:
    """The session cookie to send.

    :param value: The cookie value, or ``None`` to delete the cookie.
    :param expires: Epoch seconds, or ``None`` for a browser-session cookie.
    """

    value: str | None
    expires: float | None = None


@dataclass(frozen=True)
class SavePlan:
    """What the adapter does at the end of a request.

    Exactly one of ``changes`` (``store.apply(key, changes)``) and ``delete``
    (``store.delete(key)``) is set when the store is to be called.
    """

    key: str | None = None
    changes: ChangeSet | None = None
    delete: bool = False
    cookie: Cookie | None = None

    def cookie_after(self, result: ApplyResult | None) -> Cookie | None:
        """The cookie to send once ``store.apply`` returned ``result``."""
        if result is ApplyResult.GONE:
            # Deleted or revoked while this request ran: it stays dead.
            return Cookie(None)
        if result is ApplyResult.EXISTS:
            raise StoreError("a newly issued session ID already exists in the store")
        return self.cookie


_NOTHING = SavePlan()


class SessionManager:
    """Session policy shared by every adapter.

    :param policy: Idle and absolute lifetimes.
    :param permanent: ``session.permanent`` of a session that did not set it.
    :param refresh_each_request: Slide the idle deadline on every request that
        reads the session (in the load's round trip) and send the cookie again
        for permanent sessions, as Flask's ``SESSION_REFRESH_EACH_REQUEST``.
    :param id_bytes: Bytes of randomness in new IDs, at least 32.
    :param signer: Sign cookie values; ``None`` sends the bare ID.
    :param max_size: Refuse to save a session whose serialized data exceeds this
        many bytes; ``None`` for no limit.
    :param degrade: When the store is unreachable, serve the request with an
        empty session that is never saved, instead of failing it.
    :param clock: Returns the time in epoch seconds.
    """

    def __init__(
        self,
        policy: ExpiryPolicy,
        *,
        permanent: bool = True,
        refresh_each_request: bool = True,
        id_bytes: int = MIN_ID_BYTES,
        signer: CookieSigner | None = None,
        max_size: int | None = None,
        degrade: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if id_bytes < MIN_ID_BYTES:
            raise ValueError(f"id_bytes must be at least {MIN_ID_BYTES} (256 bits), got {id_bytes}")
        self.policy = policy
        self.permanent = permanent
        self.refresh_each_request = refresh_each_request
        self.id_bytes = id_bytes
        self.signer = signer
        self.max_size = max_size
        self.degrade = degrade
        self.clock = clock

    # -- request start ---------------------------------------------------

    def sid_from_cookie(self, value: str | None) -> str | None:
        """The session ID in a cookie value, or ``None`` if it is absent or not valid."""
        if not value:
            return None
        if self.signer is not None:
            unsigned = self.signer.unsign(value)
            if unsigned is None:
                return None
            value = unsigned[0]
        return value if is_well_formed(value) else None

    def refresh(self) -> Refresh | None:
        """The refresh to send with a load, or ``None`` when reads do not slide."""
        if not self.refresh_each_request:
            return None
        return Refresh(self.clock(), self.policy.idle, self.policy.refresh_step())

    def check(self, record: Record | None) -> Record | None:
        """``record``, or ``None`` when it is past its absolute deadline."""
        if record is not None and record.absolute is not None and record.absolute <= self.clock():
            return None
        return record

    def open(
        self,
        cookie_value: str | None,
        loader: Loader | None = None,
        *,
        session_class: type[S] = Session,  # type: ignore[assignment]
    ) -> S:
        """Return the session for a request; nothing is loaded until it is used.

        :param cookie_value: The session cookie's value, if any.
        :param loader: The store's ``load``; omit it to :meth:`Session.preload` later.
        :param session_class: The class to make, a subclass of :class:`Session`.
        """
        sid = self.sid_from_cookie(cookie_value)
        lazy = None
        if sid is not None and loader is not None:
            key = store_key(sid)

            def lazy() -> Record | None:
                return self.check(loader(key, self.refresh()))

        return session_class(
            sid, lazy, permanent=self.permanent, id_bytes=self.id_bytes, degrade=self.degrade
        )

    # -- request end -----------------------------------------------------

    def cookie_value(self, sid: str) -> str:
        """The cookie value for ``sid``: the ID, signed when a signer is set."""
        return sid if self.signer is None else self.signer.sign(sid)

    def save_plan(self, session: Session) -> SavePlan:
        """Decide what to write and which cookie to send.

        :raises SerializationError: A value cannot be stored; nothing is written.
        :raises SessionTooLarge: The session exceeds ``max_size``; nothing is written.
        """
        if not session.loaded or session.degraded:
            return _NOTHING
        record = session.record
        stale_cookie = Cookie(None) if session.incoming_sid is not None else None
        if len(session) == 0 and (session.cleared or record is None):
            if record is None:
                return SavePlan(cookie=stale_cookie)
            return SavePlan(key=store_key(session.sid), delete=True, cookie=Cookie(None))

        changed = session.changed()
        removed = session.removed()
        if self.max_size is not None:
            size = session.stored_size(changed)
            if size > self.max_size:
                raise SessionTooLarge(size, self.max_size)

        now = self.clock()
        created = now if record is None else record.created
        absolute = self.policy.absolute_deadline(now) if record is None else record.absolute
        expires = self.policy.deadline(now, absolute)
        cookie = Cookie(self.cookie_value(session.sid), expires if session.permanent else None)
        key = store_key(session.sid)
        if record is None:
            changes = ChangeSet(now, expires, changed, created=created, absolute=absolute)
            return SavePlan(key=key, changes=changes, cookie=cookie)
        if changed or removed or session.cleared or session.forced:
            changes = ChangeSet(now, expires, changed, removed, clear=session.cleared)
            # The last key is gone: the store drops the empty record, and so do we.
            return SavePlan(key=key, changes=changes, cookie=cookie if session else Cookie(None))
        if session.permanent and self.refresh_each_request:
            return SavePlan(cookie=cookie)
        return _NOTHING
