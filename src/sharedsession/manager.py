"""SessionManager: what to load, what changed, what to write, what cookie to send.

This module does no I/O and imports no web framework. Adapters (Flask, ASGI)
call it around single store calls, sync or async, so both kinds share every
decision::

    session = manager.open(cookie_value, loader)   # loader: lambda key, refresh: ...
    ...                                            # the app uses the session
    plan = manager.save_plan(session)
    if plan.delete: store.delete(plan.delete)
    result = store.apply(plan.key, plan.changes) if plan.changes else None
    cookie = plan.cookie_after(result)
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

from . import serialization
from ._state import SessionState
from ._state import changed
from ._state import preload
from ._state import removed
from ._state import state
from ._state import stored_size
from .crypto import CLIENT
from .crypto import META
from .crypto import Encryptor
from .errors import SerializationError
from .errors import SessionTooLarge
from .errors import StoreError
from .expiry import ExpiryPolicy
from .expiry import cap
from .expiry import kept
from .flask_session import ADOPTED
from .flask_session import Migration
from .ids import MIN_ID_BYTES
from .ids import CookieSigner
from .ids import is_well_formed
from .ids import seal_successor
from .ids import store_key
from .session import PERMANENT_KEY
from .session import S
from .session import Session
from .session import install
from .session import opening
from .session import untouched
from .stores.base import ApplyResult
from .stores.base import ChangeSet
from .stores.base import KeyWrites
from .stores.base import Record
from .stores.base import Refresh
from .stores.base import SessionInfo
from .stores.base import Written

logger = logging.getLogger("sharedsession")

#: Top-level keys a session may hold unless ``SESSION_MAX_KEYS`` says otherwise.
DEFAULT_MAX_KEYS = 1000
#: Seconds an automatically renewed ID still leads to its successor.
DEFAULT_RENEWAL_GRACE = 30.0


#: ``load(sid)``: the stored record of ``sid`` (following renewal markers),
#: the keys to rewrite, and the ID it is stored under; bound by the adapter.
Loader = Callable[[str], "tuple[Record | None, frozenset[str], str]"]


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
    """What the adapter does at the end of a request, in this order.

    :param delete: ``store.delete(delete)`` first (a destroyed or emptied session).
    :param key: With ``changes``: ``store.apply(key, changes)``.
    :param changes: The change set to apply, or ``None``.
    :param cookie: The cookie to send when the apply (if any) succeeds.
    :param renewal_of: The ID this plan renews (an automatic renewal, with a
        grace window): when the apply finds it ``GONE``, a concurrent request
        renewed it first, and the save joins that request's successor.
    :param flask_session_delete: Then delete Flask-Session's copy of this ID
        (a migrated session ended or changed ID).
    :param flask_session_write: Then write Flask-Session's copy of this ID from
        what is stored (a rolling deploy).
    :param writes: Instead of ``changes``: ``store.write_keys(key, writes)``,
        keys set without loading the session; the cookie then comes from
        :meth:`SessionManager.cookie_after_writes`.
    """

    delete: str | None = None
    key: str | None = None
    changes: ChangeSet | None = None
    cookie: Cookie | None = None
    renewal_of: str | None = None
    flask_session_delete: str | None = None
    flask_session_write: str | None = None
    writes: KeyWrites | None = None

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
    :param max_keys: Refuse to save a session with more top-level keys than
        this; ``None`` for no limit.
    :param degrade: When the store is unreachable, serve the request with an
        empty session that is never saved, instead of failing it.
    :param renewal: Give a live session a new ID when its ID is older than
        this many seconds; ``None`` never does.
    :param renewal_grace: For this many seconds after a renewal, the old ID
        still leads to the renewed session (requests that raced the renewal
        are not logged out). Logins and explicit regenerations have none.
    :param encryptor: Encrypt stored values; ``None`` stores them as JSON.
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
        max_keys: int | None = DEFAULT_MAX_KEYS,
        degrade: bool = False,
        renewal: float | None = None,
        renewal_grace: float = DEFAULT_RENEWAL_GRACE,
        encryptor: Encryptor | None = None,
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
        self.max_keys = max_keys
        self.degrade = degrade
        self.renewal = renewal
        self.renewal_grace = renewal_grace
        #: Adopting Flask-Session's sessions (set from ``SESSION_MIGRATE_FROM``).
        self.migration: Migration | None = None
        self.encryptor = encryptor
        self.clock = clock

    # -- request start ---------------------------------------------------

    def unsign(self, value: str | None) -> tuple[str, bool] | None:
        """``(sid, current)`` for a valid cookie value, else ``None``.

        ``current`` is false when an old key signed it: the cookie is sent again.
        """
        if not value:
            return None
        current = True
        if self.signer is not None:
            unsigned = self.signer.unsign(value)
            if unsigned is None:
                return None
            value, current = unsigned
        return (value, current) if is_well_formed(value) else None

    def refresh(self) -> Refresh | None:
        """The refresh to send with a load, or ``None`` when reads do not slide."""
        if not self.refresh_each_request:
            return None
        return Refresh(self.clock(), self.policy.idle, self.policy.refresh_step())

    def prepare(self, key: str, record: Record | None) -> tuple[Record | None, frozenset[str]]:
        """Check (and with encryption, open) a loaded record for
        :func:`~sharedsession.session.preload`.

        :returns: The record (``None`` when it is invalid, past its absolute
            deadline or does not decrypt) and the keys to write again under
            the current encryption key.
        """
        if record is None:
            return None, frozenset()
        stale: frozenset[str] = frozenset()
        if self.encryptor is not None:
            opened, stale = self._open(key, record)
            if opened is None:
                return None, frozenset()
            record = opened
        if ADOPTED in record.data:
            data = {k: v for k, v in record.data.items() if k != ADOPTED}
            record = replace(record, data=data, adopted=True)
        problem = _invalid(record)
        if problem is not None:
            # A store writer, a bug or a bad migration: never a 500, never that data.
            logger.warning("a stored session is invalid (%s); starting a new one", problem)
            return None, frozenset()
        absolute = self.effective_absolute(record)
        if absolute is not None and absolute <= self.clock():
            return None, frozenset()
        if absolute != record.absolute:
            record = replace(record, absolute=absolute)
        return record, stale

    def _open(self, key: str, record: Record) -> tuple[Record | None, frozenset[str]]:
        """Decrypt every value and take the metadata from its sealed copy."""
        assert self.encryptor is not None
        data: dict[str, str] = {}
        stale = set()
        for name, value in record.data.items():
            try:
                data[name], current = self.encryptor.decrypt(key, name, value)
            except ValueError as exc:
                # Never a 500 and never a plaintext fallback: the session is gone.
                logger.warning("stored session data failed to decrypt (%s); starting anew", exc)
                return None, frozenset()
            if not current:
                stale.add(name)
        try:
            meta = json.loads(data.pop(META))
            created, absolute, user_id = meta["c"], meta["a"], meta["u"]
        except (KeyError, TypeError, ValueError):
            logger.warning("a stored session has no valid sealed metadata; starting anew")
            return None, frozenset()
        sealed = replace(record, data=data, created=created, absolute=absolute, user_id=user_id)
        return sealed, frozenset(stale)

    def seal(
        self,
        key: str,
        texts: dict[str, str],
        meta: tuple[float, float | None, str | None] | None,
    ) -> dict[str, str]:
        """``texts`` encrypted for the session at ``key``, with its metadata
        ``(created, absolute, user)`` sealed beside them when given."""
        assert self.encryptor is not None
        if meta is not None:
            created, absolute, user = meta
            texts = {**texts, META: json.dumps({"c": created, "a": absolute, "u": user})}
        seal = self.encryptor.encrypt
        return {name: seal(key, name, text) for name, text in texts.items()}

    def adoption(
        self, sid: str, texts: dict[str, str], ttl: float, *, user_id: str | None = None
    ) -> ChangeSet:
        """The change set that creates, under ``sid``, a session adopted from
        another library with these serialized values and ``ttl`` seconds left
        (a request using it slides it to a full idle lifetime, as Flask-Session
        would), bound to ``user_id`` when known."""
        now = self.clock()
        absolute = self.policy.absolute_deadline(now)
        expires = cap(now + ttl, absolute) if ttl > 0 else self.policy.deadline(now, absolute)
        if self.refresh_each_request:
            expires = max(expires, self.policy.deadline(now, absolute))
        texts = {**texts, ADOPTED: "1"}
        key = store_key(sid)
        store_user = user_id
        if self.encryptor is not None:
            texts = self.seal(key, texts, (now, absolute, user_id))
            if user_id is not None:
                store_user = self.encryptor.user_handle(user_id)
        bind = user_id is not None
        return ChangeSet(
            now, expires, texts, created=now, absolute=absolute, bind=bind, user_id=store_user
        )

    def values(self, record: Record) -> dict[str, Any]:
        """A checked record's values, decoded (an undecodable one is left out)."""
        out = {}
        for name, text in record.data.items():
            try:
                out[name] = serialization.loads(text)
            except ValueError:
                continue
        return out

    def sync_to(
        self, key: str, record: Record, theirs: Mapping[str, Any], migration: Migration
    ) -> ChangeSet | None:
        """The update that makes the stored ``record`` agree with Flask-Session's
        copy (a rolling deploy), or ``None`` when it does. A value Flask-Session
        merely stores with a poorer type (a tuple as a list) is kept as ours."""
        opened, _ = self.prepare(key, record)
        if opened is None:
            return None
        ours = self.values(opened)
        changed: dict[str, str] = {}
        for name, value in theirs.items():
            if name not in ours or not migration.same(ours[name], value):
                try:
                    changed[name] = serialization.dumps(name, value)
                except SerializationError:
                    continue
        gone = frozenset(name for name in ours if name not in theirs)
        if not changed and not gone:
            return None
        if self.encryptor is not None:
            changed = self.seal(key, changed, None)
        now = self.clock()
        return ChangeSet(now, self.policy.deadline(now, opened.absolute), changed, gone)

    def _store_user(self, record: Record) -> str | None:
        """The user a record is bound to, as the store indexes it."""
        if record.user_id is None or self.encryptor is None:
            return record.user_id
        return self.encryptor.user_handle(record.user_id)

    def effective_absolute(self, record: Record) -> float | None:
        """The record's hard deadline: the earlier of the stored one and the configured
        lifetime from its creation, so a shortened or new limit applies to existing sessions."""
        configured = self.policy.absolute_deadline(record.created)
        if configured is None or record.absolute is None:
            return configured if record.absolute is None else record.absolute
        return min(configured, record.absolute)

    def open(
        self,
        cookie_value: str | Callable[[], str | None] | None,
        loader: Loader | None = None,
        *,
        session_class: type[S] = Session,  # type: ignore[assignment]
        client: Mapping[str, str] | None = None,
        unread: bool = False,
    ) -> S:
        """Return the session for a request; nothing is loaded until it is used.

        Nor is anything else done until then: the cookie is checked, and the
        session's state made, on first use, so a request that never touches
        its session costs next to nothing (``session_class.__init__`` is not
        called, see :func:`~sharedsession.session.opening`).

        :param cookie_value: The session cookie's value, if any; or a function
            that reads it, called on first use.
        :param loader: Loads a session by ID (see :data:`Loader`); omit it to
            :func:`~sharedsession.session.preload` later.
        :param session_class: The class to make, a subclass of :class:`Session`.
        :param client: What to remember about the client if a user is bound.
        :param unread: The store writes keys without a load
            (:func:`~sharedsession.stores.base.writes_keys`): keys that are
            only set are saved that way, when :attr:`writes_unread` allows.
        """
        opener = functools.partial(self._open_state, cookie_value, loader, client, unread)
        session = opening(session_class, opener)
        if cookie_value is None:
            # Nothing to load: loaded (empty) now, at no store cost, so that code
            # reading the dict directly (orjson, unbound dict methods) sees it as is.
            state(session)
        return session

    def _open_state(
        self,
        cookie_value: str | Callable[[], str | None] | None,
        loader: Loader | None,
        client: Mapping[str, str] | None,
        unread: bool,
        session: Session,
    ) -> None:
        found = self.unsign(cookie_value() if callable(cookie_value) else cookie_value)
        sid = None if found is None else found[0]
        st = SessionState(
            sid,
            functools.partial(loader, sid) if sid is not None and loader is not None else None,
            permanent=self.permanent,
            id_bytes=self.id_bytes,
            degrade=self.degrade,
            client=client,
        )
        install(session, st)
        if sid is None:
            preload(session, None)
        elif unread and loader is not None and self.writes_unread:
            st.pending = {}
        st.resign = found is not None and not found[1]

    @property
    def writes_unread(self) -> bool:
        """Whether keys a request only sets are written without loading the
        session (:class:`~sharedsession.stores.base.KeyWrites`).

        Not when a save needs what is stored: encryption seals the metadata,
        a renewal needs the ID's age, ``max_size`` counts every key, and a
        rolling migration writes the whole session to Flask-Session's copy.
        """
        rolling = self.migration is not None and self.migration.rolling
        return (
            self.encryptor is None
            and self.renewal is None
            and self.max_size is None
            and (not rolling)
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
        plan = self._plan(session)
        if self.migration is None or (plan.delete is None and plan.changes is None):
            return plan
        # Flask-Session's copy follows: gone when the session ends or changes
        # ID (an instance not yet switched cannot bring it back), rewritten
        # whole during a rolling deploy.
        st = state(session)
        ended = plan.cookie is not None and plan.cookie.value is None
        old = st.destroyed_sid or st.stored_sid
        copied = self.migration.rolling or st.adopted
        delete = old if copied and (ended or plan.delete or st.sid != old) else None
        write = None
        if self.migration.rolling and not ended and plan.changes is not None:
            write = st.sid
        if delete is None and write is None:
            return plan  # (replace() costs more than the rest of this method)
        return replace(plan, flask_session_delete=delete, flask_session_write=write)

    def _plan(self, session: Session) -> SavePlan:
        """Decide what to write and which cookie to send.

        :raises SerializationError: A value cannot be stored; nothing is written.
        :raises SessionTooLarge: The session exceeds ``max_size``; nothing is written.
        """
        if untouched(session):
            return _NOTHING
        st = state(session)
        if not st.loaded:
            return _NOTHING if not st.pending else self._key_writes(session)
        if not st.used or st.degraded:
            return _NOTHING  # untouched, or its load failed: nothing to say
        now = self.clock()
        record = st.record
        renewal_of = None
        if (
            self.renewal is not None
            and record is not None
            and record.issued is not None
            and now - record.issued >= self.renewal
            and not st.regenerated
        ):
            session.regenerate()
            renewal_of = st.stored_sid
        empty = dict.__len__(session) == 0 and session.user_id is None
        if empty and (st.cleared or record is None):
            gone = _key(st.stored_sid) or _key(st.destroyed_sid)
            if gone is not None or st.incoming_sid is not None:
                return SavePlan(delete=gone, cookie=Cookie(None))
            return _NOTHING

        regenerated = st.regenerated
        changes_ = changed(session, everything=regenerated and self.encryptor is not None)
        gone_keys = removed(session)
        bind = st.bind
        absolute = self.policy.absolute_deadline(now) if record is None else record.absolute
        reseal = self.encryptor is not None and (
            record is None or regenerated or bind is not None or META in st.stale
        )
        writes = changes_ or gone_keys or st.cleared or regenerated or bind is not None or reseal
        if record is not None and not writes and not st.forced:
            # Read only (``forced`` writes anyway, extending the deadline). The
            # cookie goes out again only when it must: a re-send of an ID that
            # a concurrent login replaced would log the user out.
            refreshed = session.permanent and self.refresh_each_request and record.refreshed
            if refreshed or st.resign or st.sid != st.incoming_sid:
                return SavePlan(cookie=self._cookie(session, self.policy.deadline(now, absolute)))
            return _NOTHING
        expires = self.policy.deadline(now, absolute)
        keep = (
            record is not None
            and record.expires is not None
            and not (st.forced or regenerated or reseal or bind is not None)
            and kept(record.expires, expires, self.policy.refresh_step())
        )
        cookie: Cookie | None = self._cookie(session, expires)
        if keep and record is not None and record.expires is not None:
            # Within a refresh step of the deadline the client's cookie has: the
            # deadline stays, and the cookie goes out again only if it must.
            expires = record.expires
            permanence = PERMANENT_KEY in changes_ or PERMANENT_KEY in gone_keys
            refreshed = session.permanent and record.refreshed  # by this request's load
            resend = refreshed or permanence or st.resign or st.sid != st.incoming_sid
            cookie = self._cookie(session, expires) if resend else None

        if self.max_keys is not None and dict.__len__(session) > self.max_keys:
            raise SessionTooLarge(dict.__len__(session), self.max_keys, unit="keys")
        if self.max_size is not None:
            size = stored_size(session, changes_)
            if size > self.max_size:
                raise SessionTooLarge(size, self.max_size)
        if self.migration is not None and self.migration.rolling and not st.adopted and not empty:
            # It gets a Flask-Session copy: ending it later must delete that too.
            changes_[ADOPTED] = "1"
        key = store_key(st.sid)
        user_id = None if bind is None else bind[0]
        client = dict(st.client) if user_id is not None else {}
        if self.encryptor is not None:
            owner = user_id if bind is not None or record is None else record.user_id
            created = now if record is None else record.created
            changes_ = self.seal(key, changes_, (created, absolute, owner) if reseal else None)
            seal = self.encryptor.encrypt
            if empty:
                gone_keys = gone_keys | {META}
            if user_id is not None:
                # The store sees an HMAC of the user and sealed client details.
                client = {"sealed": seal("", CLIENT, json.dumps(client))}
                user_id = self.encryptor.user_handle(user_id)
        if empty and st.adopted:
            gone_keys = gone_keys | {ADOPTED}
        changes = ChangeSet(
            now,
            expires,
            changes_,
            gone_keys,
            clear=st.cleared,
            created=now if record is None else None,
            absolute=absolute if record is None else None,
            replaces=_key(st.stored_sid) if regenerated else None,
            bind=bind is not None,
            user_id=user_id,
            client=client,
            forward=None if renewal_of is None else seal_successor(st.sid, renewal_of),
            forward_until=now + self.renewal_grace,
            handle=None if record is None else record.handle,
            owner=None if record is None or bind is not None else self._store_user(record),
            idle=self.policy.idle,
            keeps_deadline=keep,
        )
        if record is None:
            return SavePlan(delete=_key(st.destroyed_sid), key=key, changes=changes, cookie=cookie)
        # The last key is gone: the store drops the empty record, and so do we.
        final = Cookie(None) if empty else cookie
        return SavePlan(key=key, changes=changes, cookie=final, renewal_of=renewal_of)

    def _cookie(self, session: Session, expires: float) -> Cookie:
        """The cookie of a session that now expires at ``expires``."""
        return Cookie(self.cookie_value(state(session).sid), expires if session.permanent else None)

    def _key_writes(self, session: Session) -> SavePlan:
        """The plan of a session that was only given keys, never loaded."""
        st = state(session)
        assert st.pending is not None and st.incoming_sid is not None
        texts = {key: serialization.dumps(key, value) for key, value in st.pending.items()}
        if self.max_keys is not None and len(texts) > self.max_keys:
            raise SessionTooLarge(len(texts), self.max_keys, unit="keys")
        read = None if PERMANENT_KEY in texts else PERMANENT_KEY
        policy = self.policy
        writes = KeyWrites(
            self.clock(),
            policy.idle,
            policy.absolute,
            texts,
            self.max_keys,
            read,
            policy.refresh_step(),
        )
        return SavePlan(key=store_key(st.incoming_sid), writes=writes)

    def cookie_after_writes(self, session: Session, written: Written) -> Cookie | None:
        """The cookie to send once ``store.write_keys`` wrote a session's keys
        (``None``: the deadline stayed, and the client's cookie still holds)."""
        st = state(session)
        assert st.pending is not None and st.incoming_sid is not None
        if not written.moved and PERMANENT_KEY not in st.pending and not st.resign:
            return None
        if PERMANENT_KEY in st.pending:
            permanent = bool(st.pending[PERMANENT_KEY])
        else:
            permanent = self.permanent
            stored = written.value
            if stored is not None:
                try:
                    permanent = bool(serialization.loads(stored))
                except ValueError:
                    pass  # undecodable: the default, as for a session without it
        expires = written.expires if permanent else None
        return Cookie(self.cookie_value(st.incoming_sid), expires)

    def cookie_unsaved(self, session: Session) -> Cookie | None:
        """The cookie a response that saved nothing still sends (a 5xx, or a
        save the store refused), or ``None``.

        Only the idle deadline this request's load moved (once per refresh
        step), for the ID and the permanence the client already has: without
        it the client keeps the earlier expiry while the store has the later
        one, no request sends it for a step, and a user who leaves then is
        logged out as much earlier as the session had sat idle.
        """
        if untouched(session):
            return None
        st = state(session)
        record = st.record
        if (
            not st.loaded
            or not st.used  # its response may be cached: never a cookie on it
            or st.degraded
            or st.cleared  # a logout: never a cookie that outlives it
            or record is None
            or not record.refreshed
            or not self.refresh_each_request
            or not st.incoming_sid == st.stored_sid == st.sid
        ):
            return None
        permanent = self.permanent
        stored = record.data.get(PERMANENT_KEY)  # as stored, whatever the request did
        if stored is not None:
            try:
                permanent = bool(serialization.loads(stored))
            except ValueError:
                pass  # undecodable: the default, as when it is not stored
        if not permanent:
            return None  # a cookie without an expiry has nothing to move
        expires = record.expires  # what the load wrote
        if expires is None:
            expires = self.policy.deadline(self.clock(), record.absolute)
        return Cookie(self.cookie_value(st.incoming_sid), expires)


def ends_or_rotates(session: Session) -> bool:
    """Whether saving ``session`` ends it, empties a stored one (``clear()``,
    how many apps log out) or gives it a new ID: such a save never degrades on
    a store outage (the old session would live on), it fails closed."""
    st = state(session)
    if not st.loaded:
        return False
    emptied = st.cleared and st.record is not None
    return bool(st.destroyed_sid or emptied or st.bind is not None or st.regenerated)


def _invalid(record: Record) -> str | None:
    """What is wrong with a loaded record's types, or ``None``."""
    number = (int, float)
    if type(record.created) not in number or isinstance(record.created, bool):
        return "creation time is not a number"
    for name, value in (("absolute", record.absolute), ("issued", record.issued)):
        if value is not None and (type(value) not in number or isinstance(value, bool)):
            return f"{name} time is not a number"
    if record.user_id is not None and (type(record.user_id) is not str or not record.user_id):
        return "the bound user is not a non-empty str"
    if not all(type(k) is str and type(v) is str for k, v in record.data.items()):
        return "a value is not text"
    return None


def _key(sid: str | None) -> str | None:
    return None if sid is None else store_key(sid)


def check_user_id(user_id: str) -> str:
    """``user_id`` if it is a non-empty str; a user index is never looked up by anything else."""
    if type(user_id) is not str or not user_id:
        raise TypeError(f"user_id must be a non-empty str, got {user_id!r}")
    return user_id


def handles_of(session: Session | str | None) -> set[str]:
    """The store handles that name a session, before and after a regeneration in this request."""
    if session is None:
        return set()
    if isinstance(session, str):
        return {session}
    st = state(session)
    found = {store_key(sid) for sid in (session.sid, st.stored_sid) if sid is not None}
    if st.record is not None and st.record.handle is not None:
        found.add(st.record.handle)  # what listings show: kept across new IDs
    return found


def index_ids(manager: SessionManager, user_id: str) -> list[str]:
    """What the store indexes ``user_id`` by: the ID, or its HMACs under encryption."""
    check_user_id(user_id)
    return [user_id] if manager.encryptor is None else manager.encryptor.user_handles(user_id)


def shown(manager: SessionManager, infos: list[SessionInfo], user_id: str) -> list[SessionInfo]:
    """A user's sessions as the app sees them: the real user ID, the client opened."""
    encryptor = manager.encryptor
    if encryptor is None:
        return infos
    out = []
    for info in infos:
        client: dict[str, str] = {}
        try:
            text, _ = encryptor.decrypt("", CLIENT, info.client.get("sealed", ""))
            client = json.loads(text)
        except ValueError:
            pass  # no client recorded, or not readable: shown without it
        out.append(replace(info, user_id=user_id, client=client))
    return sorted(out, key=lambda info: info.created)


def to_revoke(infos: list[SessionInfo], keep: Session | str | None) -> list[str]:
    """Handles of ``infos`` to end for "log out everywhere" (but ``keep``)."""
    kept = handles_of(keep)
    return [info.handle for info in infos if info.handle not in kept]
