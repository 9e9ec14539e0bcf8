"""Session stores. Backends with optional dependencies are imported from their modules:
``sharedsession.stores.sqlite``, ``sharedsession.stores.redis`` and
``sharedsession.stores.memcached``."""

from .base import ApplyResult as ApplyResult
from .base import AsyncClosing as AsyncClosing
from .base import AsyncSessionStore as AsyncSessionStore
from .base import AsyncUserIndex as AsyncUserIndex
from .base import ChangeSet as ChangeSet
from .base import Closing as Closing
from .base import KeyWriter as KeyWriter
from .base import KeyWrites as KeyWrites
from .base import Record as Record
from .base import Refresh as Refresh
from .base import SessionInfo as SessionInfo
from .base import SessionStore as SessionStore
from .base import UserIndex as UserIndex
from .base import Written as Written
from .memory import MemoryStore as MemoryStore

__all__ = [
    "ApplyResult",
    "AsyncClosing",
    "AsyncSessionStore",
    "AsyncUserIndex",
    "ChangeSet",
    "Closing",
    "KeyWriter",
    "KeyWrites",
    "MemoryStore",
    "Record",
    "Refresh",
    "SessionInfo",
    "SessionStore",
    "UserIndex",
    "Written",
]
