"""FastAPI: typed access to the session of :class:`~sharedsession.asgi.SessionMiddleware`.

::

    from sharedsession.fastapi import SessionDep

    @app.get("/cart")
    async def cart(session: SessionDep) -> list[str]:
        return session.get("cart", [])

The dependency loads the session (one round trip when the request has a
session cookie), so it works with ``autoload=False`` too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from .asgi import load_session
from .session import Session


async def get_session(connection: HTTPConnection) -> Session:
    """The request's loaded session (a FastAPI dependency)."""
    return await load_session(connection)


#: Annotate a parameter with this to receive the loaded :class:`Session`.
SessionDep = Annotated[Session, Depends(get_session)]
