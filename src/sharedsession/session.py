"""The session mapping: a dict that loads lazily and knows what changed.

Change tracking works by comparison, not by hooks: every key that was read or
written is serialized again at save and compared with what was loaded, so
``session["cart"].append(item)`` is saved without ``session.modified = True``.
Only the keys that differ are written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterator
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
    :param loader: Returns the stored record for ``sid`` (or ``None``); called
        once, on first access. Omit it for a session that has no stored record.
    :param permanent: ``permanent`` of a session that does not say.
    :param id_bytes: Randomness of a newly issued ID.
    :param degrade: If loading fails with :class:`StoreUnavailable`, act as an
        empty session that is never saved instead of raising.
    """

    def __init__(
        self,
        sid: str | None = None,
        loader: Callable[[], Record | None] | None = None,
        *,
        permanent: bool = True,
        id_bytes: int = 32,
        degrade: bool = False,
    ) -> None:
        self._incoming_sid = sid
        self._degrade = degrade
        self._degraded = False
        self._loader = loader
        self._default_permanent = permanent
        self._id_bytes = id_bytes
        self._record: Record | None = None
        self._sid: str | None = None
        self._loaded = False
        self._accessed = False
        self._raw: dict[str, str] = {}
        self._values: dict[str, Any] = {}
        self._removed: set[str] = set()
        self._cleared = False
        self._forced = False

    # -- loading ---------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        record = None
        if self._incoming_sid is not None and self._loader is not None:
            try:
                record = self._loader()
            except StoreUnavailable as exc:
                if not self._degrade:
                    raise
                logger.warning(
                    "session store unavailable, serving an empty unsaved session: %s",
                    exc.original_error or exc,
                )
                self._degraded = True
        self.preload(record)

    @property
    def degraded(self) -> bool:
        """Whether the store failed to load and this session is never saved."""
        return self._degraded

    def preload(self, record: Record | None) -> None:
        """Set the stored record; used by adapters that load before the handler runs."""
        self._loaded = True
        self._loader = None
        self._record = record
        if record is not None:
            self._sid = self._incoming_sid
            self._raw = dict(record.data)
        else:
            # An ID the store does not know is never adopted.
            self._sid = new_id(self._id_bytes)

    @property
    def loaded(self) -> bool:
        """Whether the session was used (read or written) in this request."""
        return self._loaded

    @property
    def accessed(self) -> bool:
        """Whether the session was used, or marked as accessed by the framework."""
        return self._loaded or self._accessed

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
        return self._forced or self._cleared or bool(self._removed) or bool(self.changed())

    @modified.setter
    def modified(self, value: bool) -> None:
        self._load()
        self._forced = bool(value)

    # -- the mapping -----------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        self._load()
        value = self._values.get(key, _MISSING)
        if value is not _MISSING:
            return value
        if key in self._removed or key not in self._raw:
            raise KeyError(key)
        try:
            value = serialization.loads(self._raw[key])
        except ValueError:
            logger.warning("session key %r holds undecodable data; treating it as absent", key)
            del self._raw[key]
            raise KeyError(key) from None
        self._values[key] = value
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        if type(key) is not str:
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        self._load()
        self._values[key] = value
        self._removed.discard(key)

    def __delitem__(self, key: str) -> None:
        self._load()
        if key not in self:
            raise KeyError(key)
        self._values.pop(key, None)
        if key in self._raw:
            self._removed.add(key)

    def __contains__(self, key: object) -> bool:
        self._load()
        return key in self._values or (key in self._raw and key not in self._removed)

    def __iter__(self) -> Iterator[str]:
        self._load()
        yield from self._values
        for key in list(self._raw):
            if key not in self._values and key not in self._removed:
                yield key

    def __len__(self) -> int:
        self._load()
        return len(self._values) + sum(
            1 for k in self._raw if k not in self._values and k not in self._removed
        )

    def clear(self) -> None:
        """Remove every key; saving an empty cleared session ends it."""
        self._load()
        self._raw.clear()
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

    def changed(self) -> dict[str, str]:
        """Serialized values of the keys whose value differs from the stored one.

        :raises SerializationError: A value cannot be stored.
        """
        out = {}
        for key, value in self._values.items():
            text = serialization.dumps(key, value)
            if self._raw.get(key) != text:
                out[key] = text
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
