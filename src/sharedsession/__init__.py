"""Server-side sessions shared by every app server behind a load balancer."""

from .errors import ConfigurationError as ConfigurationError
from .errors import SerializationError as SerializationError
from .errors import SessionError as SessionError
from .errors import SessionNotLoaded as SessionNotLoaded
from .errors import SessionTooLarge as SessionTooLarge
from .errors import StoreError as StoreError
from .errors import StoreUnavailable as StoreUnavailable
from .expiry import ExpiryPolicy as ExpiryPolicy
from .manager import Cookie as Cookie
from .manager import SavePlan as SavePlan
from .manager import SessionManager as SessionManager
from .session import Session as Session

__all__ = [
    "ConfigurationError",
    "Cookie",
    "ExpiryPolicy",
    "SavePlan",
    "SerializationError",
    "Session",
    "SessionError",
    "SessionManager",
    "SessionNotLoaded",
    "SessionTooLarge",
    "StoreError",
    "StoreUnavailable",
]
