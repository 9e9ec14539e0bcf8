"""The session mapping: a dict that loads lazily and knows what changed.

Change tracking works by comparison, not by hooks: every key that was read or
written is serialized again at save and compared with what was loaded, so
``session["cart"].append(item)`` is saved without ``session.modified = True``.
Only the keys that differ are written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import MutableMapping
from typing import Any

from . import serialization
from .errors import StoreUnavailable
from .ids import new_id
from .stores.base import Record

logger = logging.getLogger("sharedsession")

_MISSING: Any = object()

#: Where Flask keeps ``session.permanent``; kept so Flask code and data carry over.
PERMANENT_KEY = "_permanent"


class Session(MutableMapping[str, Any]):
    """A server-side session.

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
        loader: Callable[[], tuple[Record | None, Collection[str]]] | None = None,
        *,
        permanent: bool = True,
        id_bytes: int = 32,
        degrade: bool = False,
        client: Mapping[str, str] | None = None,
    ) -> None:
        self._incoming_sid = sid
        self._loader = loader
        self._default_permanent = permanent
        self._id_bytes = id_bytes
        self._degrade = degrade
        self._degraded = False
        self.client: Mapping[str, str] = client or {}
        #: Set by the manager when the cookie was signed with an old key.
        self.resign = False
        self._loaded = False
        self._used = False
        self._accessed = False
        # The rest of the state is made by preload(): a request that never
        # touches its session pays for nothing more than this.

    # -- loading ---------------------------------------------------------

    def _load(self) -> None:
        self._used = True
        if self._loaded:
            return
        record: Record | None = None
        stale: Collection[str] = ()
        if self._incoming_sid is not None and self._loader is not None:
            try:
                record, stale = self._loader()
            except StoreUnavailable as exc:
                if not self._degrade:
                    raise
                self.degrade(exc)
                return
        self.preload(record, stale=stale)

    def fail_on_use(self, exc: StoreUnavailable) -> None:
        """Raise ``exc`` when the session is first used (its up-front load failed)."""

        def fail() -> tuple[Record | None, Collection[str]]:
            raise exc

        self._loader = fail

    def degrade(self, exc: StoreUnavailable) -> None:
        """Serve this request with an empty session that is never saved (store down)."""
        logger.warning(
            "session store unavailable, serving an empty unsaved session: %s",
            exc.original_error or exc,
        )
        self._degraded = True
        self.preload(None)

    def preload(self, record: Record | None, *, stale: Collection[str] = ()) -> None:
        """Set the stored record; adapters that load before the handler call this.

        :param record: The record, or ``None`` for a new session.
        :param stale: Keys to write again even if unchanged (e.g. re-encryption).
        """
        self._loaded = True
        self._loader = None
        self._sid: str | None = None
        self._destroyed_sid: str | None = None
        self._parsed: dict[str, Any] = {}  # loaded values, not yet handed out
        self._raw: dict[str, str] = {}
        self._values: dict[str, Any] = {}
        self._removed: set[str] = set()
        self._stale: set[str] = set()
        self._cleared = False
        self._forced = False
        self._bind: tuple[str | None] | None = None
        if record is not None:
            try:
                parsed = {k: serialization.loads(v) for k, v in record.data.items()}
            except ValueError:
                logger.warning("a stored session holds undecodable data; starting a new one")
                record = None
            else:
                self._parsed, self._raw = parsed, dict(record.data)
                self._stale = set(stale)
        self._record: Record | None = record
        if record is not None:
            self._sid = self._incoming_sid
        else:
            # An ID the store does not know is never adopted.
            self._sid = new_id(self._id_bytes)

    @property
    def degraded(self) -> bool:
        """Whether the store failed to load and this session is never saved."""
        return self._degraded

    @property
    def loaded(self) -> bool:
        """Whether the stored record was loaded (or known not to exist)."""
        return self._loaded

    @property
    def used(self) -> bool:
        """Whether the app read or wrote the session in this request."""
        return self._used

    @property
    def accessed(self) -> bool:
        """Whether the session was used, or marked as accessed by the framework."""
        return self._used or self._accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        # Flask marks every access of the ``session`` proxy; that must not load it.
        self._accessed = bool(value)

    @property
    def record(self) -> Record | None:
        """The record this session was loaded from, or ``None`` for a new session."""
        self._load()
        return self._record

    @property
    def incoming_sid(self) -> str | None:
        """The ID the request carried, whether or not the store knew it."""
        return self._incoming_sid

    @property
    def sid(self) -> str:
        """The session's ID (a new one if the request carried none or an unknown one)."""
        self._load()
        assert self._sid is not None
        return self._sid

    @property
    def stored_sid(self) -> str | None:
        """The ID the loaded record is stored under (before any regeneration)."""
        self._load()
        return self._incoming_sid if self._record is not None else None

    @property
    def destroyed_sid(self) -> str | None:
        """The ID of a record :meth:`destroy` ended in this request."""
        return self._destroyed_sid if self._loaded else None

    @property
    def new(self) -> bool:
        """Whether the session has no stored record yet."""
        self._load()
        return self._record is None

    @property
    def permanent(self) -> bool:
        """Whether the cookie outlives the browser session (Flask's meaning)."""
        return bool(self.get(PERMANENT_KEY, self._default_permanent))

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self[PERMANENT_KEY] = bool(value)

    @property
    def modified(self) -> bool:
        """Whether a save has something to write. Setting it forces a save."""
        if not self._loaded:
            return False
        return bool(
            self._forced
            or self._cleared
            or self._removed
            or self._bind
            or self.regenerated
            or self.changed()
        )

    @modified.setter
    def modified(self, value: bool) -> None:
        self._load()
        self._forced = bool(value)

    # -- lifecycle ---------------------------------------------------------

    @property
    def regenerated(self) -> bool:
        """Whether :meth:`regenerate` gave a stored session a new ID in this request."""
        return self._record is not None and self._sid != self._incoming_sid

    def regenerate(self) -> None:
        """Give the session a new ID, keeping its data; the old ID stops working.

        Call it at login and on every change of privilege, so that an ID
        someone planted or saw before cannot follow the user in. The store
        moves the record atomically when the response is saved.
        """
        self._load()
        self._sid = new_id(self._id_bytes)

    def destroy(self) -> None:
        """End the session: its stored data is deleted and its cookie expired.

        Keys set afterwards start a new session with a new ID.
        """
        self._load()
        if self._record is not None:
            self._destroyed_sid = self._incoming_sid
        self._record = None
        self._sid = new_id(self._id_bytes)
        self._parsed, self._raw, self._values = {}, {}, {}
        self._removed, self._stale = set(), set()
        self._cleared = self._forced = False
        self._bind = None

    @property
    def user_id(self) -> str | None:
        """The user the session is bound to, or ``None``."""
        self._load()
        if self._bind is not None:
            return self._bind[0]
        return None if self._record is None else self._record.user_id

    def bind_user(self, user_id: str | None, *, regenerate: bool = True) -> None:
        """Bind the session to a user (at login), so it can be listed and revoked.

        :param user_id: The user's ID; ``None`` unbinds.
        :param regenerate: Also give the session a new ID (see :meth:`regenerate`).
        """
        if user_id is not None and (type(user_id) is not str or not user_id):
            raise TypeError(f"user_id must be a non-empty str, got {user_id!r}")
        self._load()
        self._bind = (user_id,)
        if regenerate and user_id is not None:
            self.regenerate()

    @property
    def binding(self) -> tuple[str | None] | None:
        """``(user_id,)`` when :meth:`bind_user` was called in this request."""
        return self._bind

    # -- the mapping -----------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        self._load()
        value = self._values.get(key, _MISSING)
        if value is not _MISSING:
            return value
        if key in self._removed or key not in self._parsed:
            raise KeyError(key)
        value = self._values[key] = self._parsed.pop(key)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str:
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        self._load()
        self._values[key] = value
        self._parsed.pop(key, None)
        self._removed.discard(key)

    def __delitem__(self, key: str) -> None:
        self._load()
        if key not in self:
            raise KeyError(key)
        self._values.pop(key, None)
        self._parsed.pop(key, None)
        if key in self._raw:
            self._removed.add(key)

    def __contains__(self, key: object) -> bool:
        self._load()
        return key in self._values or key in self._parsed

    def __iter__(self) -> Iterator[str]:
        self._load()
        yield from list(self._values)
        yield from [key for key in self._parsed if key not in self._values]

    def __len__(self) -> int:
        self._load()
        return len(self._values) + len(self._parsed)

    def clear(self) -> None:
        """Remove every key; saving an empty cleared session ends it."""
        self._load()
        self._raw.clear()
        self._parsed.clear()
        self._values.clear()
        self._removed.clear()
        self._cleared = True

    def __repr__(self) -> str:
        if not self._loaded:
            return f"<{type(self).__name__} (not loaded)>"
        return f"<{type(self).__name__} {dict(self.items())!r}>"

    # -- what a save writes ------------------------------------------------

    @property
    def cleared(self) -> bool:
        """Whether :meth:`clear` was called."""
        return self._cleared

    @property
    def forced(self) -> bool:
        """Whether ``modified`` was set to true."""
        return self._forced

    def changed(self, *, everything: bool = False) -> dict[str, str]:
        """Serialized values of the keys whose value differs from the stored one.

        :param everything: Return every key, changed or not.
        :raises SerializationError: A value cannot be stored.
        """
        out = {}
        for key, value in self._values.items():
            text = serialization.dumps(key, value)
            if everything or key in self._stale or self._raw.get(key) != text:
                out[key] = text
        for key in self._parsed:
            if everything or key in self._stale:
                out[key] = self._raw[key]
        return out

    def removed(self) -> frozenset[str]:
        """Stored keys this request deleted."""
        return frozenset(self._removed)

    def stored_size(self, changed: dict[str, str]) -> int:
        """Bytes of serialized data the session holds once ``changed`` is written."""
        size = sum(len(k) + len(v.encode()) for k, v in changed.items())
        for key, text in self._raw.items():
            if key not in changed and key not in self._removed:
                size += len(key) + len(text.encode())
        return size
