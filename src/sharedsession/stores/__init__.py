"""Session stores. Backends with optional dependencies are imported from their modules:
``sharedsession.stores.sqlite`` and ``sharedsession.stores.redis``."""

from .base import ApplyResult as ApplyResult
from .base import AsyncSessionStore as AsyncSessionStore
from .base import ChangeSet as ChangeSet
from .base import Record as Record
from .base import Refresh as Refresh
from .base import SessionStore as SessionStore
from .memory import MemoryStore as MemoryStore

__all__ = [
    "ApplyResult",
    "AsyncSessionStore",
    "ChangeSet",
    "MemoryStore",
    "Record",
    "Refresh",
    "SessionStore",
]
