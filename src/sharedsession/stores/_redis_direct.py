"""The hot path to Redis: one command on a pooled connection, without redis-py's
per-command layers.

A session read is one ``HGETALL`` and a write one ``EVALSHA``; through
``Redis.execute_command`` each pays for redis-py's option handling, response
callbacks and observability hooks, about as much client CPU as the round trip
itself. These helpers send the command on a connection of the client's own
pool and read the reply, keeping what matters: the pool (so Sentinel's
master discovery, TLS, auth and the pool's bound all apply), the connection's
retry policy (a dropped connection is retried as the client would), and
``NOSCRIPT`` answered by loading the script once. Replies are raw (a flat list
for ``HGETALL``), which the layout reads as it is.

Cluster clients route by slot and are not driven this way.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import NoScriptError


def _ask(conn: Any, args: tuple[Any, ...]) -> Any:
    conn.send_command(*args)
    return conn.read_response()


class Direct:
    """Commands straight on ``client``'s pool (a standalone or Sentinel ``redis.Redis``)."""

    def __init__(self, client: Any) -> None:
        self.pool = client.connection_pool

    def call(self, *args: Any) -> Any:
        pool = self.pool
        conn = pool.get_connection()
        try:
            return conn.retry.call_with_retry(
                lambda: _ask(conn, args), lambda error: conn.disconnect()
            )
        finally:
            pool.release(conn)

    def script(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a registered ``script`` (redis-py ``Script``) by its SHA, loading it once."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return self.call(*command)
        except NoScriptError:
            self.call("SCRIPT", "LOAD", script.script)
            return self.call(*command)


async def _aask(conn: Any, args: tuple[Any, ...]) -> Any:
    await conn.send_command(*args)
    return await conn.read_response()


class AsyncDirect:
    """The async twin of :class:`Direct`, on a ``redis.asyncio.Redis`` pool."""

    def __init__(self, client: Any) -> None:
        self.pool = client.connection_pool

    async def call(self, *args: Any) -> Any:
        pool = self.pool
        conn = await pool.get_connection()
        try:
            return await conn.retry.call_with_retry(
                lambda: _aask(conn, args), lambda error: conn.disconnect()
            )
        finally:
            await pool.release(conn)

    async def script(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a registered ``script`` by its SHA, loading it once."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self.call(*command)
        except NoScriptError:
            await self.call("SCRIPT", "LOAD", script.script)
            return await self.call(*command)
