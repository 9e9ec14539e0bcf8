"""The hot path to Redis: commands on the store's own connections, without
redis-py's per-command layers.

A session read is one ``HGETALL`` and a write one ``EVALSHA``; through
``Redis.execute_command`` each pays for redis-py's option handling, response
callbacks and observability hooks, and taking a connection from the pool and
giving it back (a lock, a readiness poll, metrics) costs about as much again:
together more client CPU than the round trip itself. These helpers keep the
connections they used on a list of their own and send commands straight on
them, keeping what matters: connections come from the client's own pool (so
Sentinel's master discovery, TLS, auth and the pool's bound all apply), the
connection's retry policy (a dropped connection is retried as the client
would), and ``NOSCRIPT`` answered by loading the script once. Replies are raw
(a flat list for ``HGETALL``), which the layout reads as it is.

The list never holds more connections than ran at once, and the store bounds
that by the pool's size; anything that takes a connection from the pool
itself first hands the list back (:meth:`Direct.drain`), so the pool is never
found empty while connections sit here unused. Connections are kept only on
a pool that is the store's own (``keep``); on a client the app shares, each
goes back to the pool after its command. A connection that failed any other
way than with an error reply is closed before it goes back (a timeout can
leave a reply on its way, which the next command would read as its own);
after a fork the blocking :class:`Direct` forgets the parent's connections,
as the pool forgets them.

On asyncio, redis-py bounds each send and each read by the socket timeout on
its own (a task and a timer for the send, a timer for the read), which costs
more than the rest of a command. :class:`AsyncDirect` instead bounds the whole
exchange (the retry included) by one timer of the same length (a
:class:`~._deadline.Deadline`), and clears the
timeout of a connection for as long as it holds it: a frozen server still
fails the call within the timeout, with redis-py's ``TimeoutError``.

Cluster clients route by slot and are not driven this way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from redis.exceptions import DataError
from redis.exceptions import NoScriptError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._deadline import Deadline

Command = tuple[Any, ...]

_pack: Callable[[Command], bytes] | None = None
try:
    from hiredis import pack_command as _pack
except ImportError:  # redis[hiredis] brings it
    pass


def _packed(conn: Any, commands: Sequence[Command]) -> Any:
    """``commands`` in the wire format: by hiredis when it is there (as redis-py's
    blocking connection packs; its asyncio one packs in Python, slower), else by
    the connection."""
    if _pack is None:
        return conn.pack_commands(commands)
    try:
        return [b"".join([_pack(command) for command in commands])]
    except TypeError as exc:  # what redis-py raises for an argument it cannot send
        raise DataError(str(exc)) from exc


def _ask(conn: Any, args: Command) -> Any:
    conn.send_packed_command(_packed(conn, (args,)))
    return conn.read_response()


def _ask_all(conn: Any, commands: Sequence[Command]) -> list[Any]:
    """Every command in one write, then every reply (an error reply as its exception)."""
    conn.send_packed_command(_packed(conn, commands))
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(conn.read_response())
        except ResponseError as exc:  # a whole reply was read: go on with the next
            replies.append(exc)
    return replies


def evalsha(script: Any, keys: Sequence[str], args: Sequence[Any]) -> Command:
    """The ``EVALSHA`` command of a registered ``script`` (redis-py ``Script``)."""
    return ("EVALSHA", script.sha, len(keys), *keys, *args)


def _first_error(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies


class Direct:
    """Commands straight on ``client``'s pool (a standalone or Sentinel ``redis.Redis``)."""

    def __init__(self, client: Any, *, keep: bool = True) -> None:
        self.pool = client.connection_pool
        self.keep = keep
        self._idle: list[Any] = []
        self._pid = os.getpid()

    def _take(self) -> Any:
        if self._pid != os.getpid():  # forked: those belong to the parent
            self._idle, self._pid = [], os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            return self.pool.get_connection()

    def _put_back(self, conn: Any) -> None:
        if self.keep:
            self._idle.append(conn)
        else:
            self.pool.release(conn)

    def _on_connection(self, ask: Any) -> Any:
        conn = self._take()
        try:
            reply = conn.retry.call_with_retry(lambda: ask(conn), lambda error: conn.disconnect())
        except ResponseError:  # an error reply, read whole: the connection is fine
            self._put_back(conn)
            raise
        except BaseException:
            # A timeout (or an interrupt) can leave a reply on its way: never
            # hand that connection to the next command.
            try:
                conn.disconnect()
            finally:
                self.pool.release(conn)
            raise
        self._put_back(conn)
        return reply

    def call(self, *args: Any) -> Any:
        """One command; its raw reply."""
        return self._on_connection(lambda conn: _ask(conn, args))

    def script(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a registered ``script`` (redis-py ``Script``) by its SHA, loading it once."""
        command = evalsha(script, keys, args)

        def ask(conn: Any) -> Any:
            try:
                return _ask(conn, command)
            except NoScriptError:  # read whole: load it and send again, same connection
                _ask(conn, ("SCRIPT", "LOAD", script.script))
                return _ask(conn, command)

        return self._on_connection(ask)

    def pipeline(self, commands: Sequence[Command], scripts: Sequence[Any]) -> list[Any]:
        """Several commands in one round trip (not a transaction); the raw replies.

        :param scripts: The ``Script`` of each ``EVALSHA`` among ``commands``
            (loaded, and the commands sent again on the same connection, if
            the server lacks one).
        :raises ResponseError: The first error reply.
        """

        def ask(conn: Any) -> list[Any]:
            replies = _ask_all(conn, commands)
            if any(isinstance(reply, NoScriptError) for reply in replies):
                _first_error(_ask_all(conn, [("SCRIPT", "LOAD", s.script) for s in scripts]))
                replies = _ask_all(conn, commands)
            return replies

        return _first_error(self._on_connection(ask))

    def drain(self, *, disconnect: bool = False) -> None:
        """Hand every kept connection back to the pool (closed, with ``disconnect``:
        after a failover they may point at a demoted master)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            if disconnect:
                conn.disconnect()
            self.pool.release(conn)


async def _aask(conn: Any, args: Command) -> Any:
    await conn.send_packed_command(_packed(conn, (args,)))
    return await conn.read_response()


async def _aask_all(conn: Any, commands: Sequence[Command]) -> list[Any]:
    await conn.send_packed_command(_packed(conn, commands))
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await conn.read_response())
        except ResponseError as exc:
            replies.append(exc)
    return replies


class AsyncDirect:
    """The async twin of :class:`Direct`, on a ``redis.asyncio.Redis`` pool."""

    def __init__(self, client: Any, *, keep: bool = True) -> None:
        self.pool = client.connection_pool
        self.keep = keep
        self._idle: list[Any] = []
        #: The socket timeout of each connection held (by ``id``): it bounds
        #: each exchange on it as a whole, and goes back with it to the pool.
        self._timeouts: dict[int, float | None] = {}

    async def _new(self) -> Any:
        conn = await self.pool.get_connection()
        # What redis-py set (its default when the client named none).
        self._timeouts[id(conn)] = conn.socket_timeout
        conn.socket_timeout = None  # bounded by the exchange's timer while held
        return conn

    async def _release(self, conn: Any) -> None:
        conn.socket_timeout = self._timeouts.pop(id(conn))
        await self.pool.release(conn)

    async def _put_back(self, conn: Any) -> None:
        if self.keep:
            self._idle.append(conn)
        else:
            await self._release(conn)

    async def _on_connection(self, ask: Any) -> Any:
        conn = self._idle.pop() if self._idle else await self._new()
        timeout = self._timeouts[id(conn)]
        try:
            with Deadline(timeout):
                reply = await conn.retry.call_with_retry(
                    lambda: ask(conn), lambda error: conn.disconnect()
                )
        except ResponseError:
            await self._put_back(conn)
            raise
        except BaseException as exc:
            try:
                await conn.disconnect(nowait=True)  # see Direct._on_connection
            finally:
                await self._release(conn)
            if isinstance(exc, asyncio.TimeoutError):  # the timer's: as redis-py's own
                raise RedisTimeoutError(f"Timeout talking to Redis ({timeout} s)") from None
            raise
        await self._put_back(conn)
        return reply

    async def call(self, *args: Any) -> Any:
        """One command; its raw reply."""
        return await self._on_connection(lambda conn: _aask(conn, args))

    async def script(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a registered ``script`` by its SHA, loading it once."""
        command = evalsha(script, keys, args)

        async def ask(conn: Any) -> Any:
            try:
                return await _aask(conn, command)
            except NoScriptError:  # see Direct.script
                await _aask(conn, ("SCRIPT", "LOAD", script.script))
                return await _aask(conn, command)

        return await self._on_connection(ask)

    async def pipeline(self, commands: Sequence[Command], scripts: Sequence[Any]) -> list[Any]:
        """Several commands in one round trip (see :meth:`Direct.pipeline`)."""

        async def ask(conn: Any) -> list[Any]:
            replies = await _aask_all(conn, commands)
            if any(isinstance(reply, NoScriptError) for reply in replies):
                loads = [("SCRIPT", "LOAD", s.script) for s in scripts]
                _first_error(await _aask_all(conn, loads))
                replies = await _aask_all(conn, commands)
            return replies

        return _first_error(await self._on_connection(ask))

    async def drain(self, *, disconnect: bool = False) -> None:
        """Hand every kept connection back to the pool (see :meth:`Direct.drain`)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            if disconnect:
                await conn.disconnect()
            await self._release(conn)
