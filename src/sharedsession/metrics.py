"""Prometheus metrics (``SESSION_METRICS = True``), and the store wrapper they use.

Every metric is named ``sharedsession_*`` and carries no session ID, handle or
user ID in its labels. They are counted by wrapping the store the settings
build (:class:`InstrumentedStore`, or its async twin): any other
instrumentation (OpenTelemetry, logging) plugs in the same way, through
``SESSION_STORE_WRAPPER`` (a callable that takes the store and returns the
store to use), or the middleware's ``store_wrapper``.

Needs ``prometheus_client`` (``pip install 'sharedsession[metrics]'``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from .errors import ConfigurationError
from .errors import StoreError
from .errors import StoreUnavailable
from .stores.base import ApplyResult
from .stores.base import ChangeSet
from .stores.base import KeyWrites
from .stores.base import Record
from .stores.base import Refresh
from .stores.base import SessionInfo
from .stores.base import Written
from .stores.base import writes_keys

_SIZES = (256, 1024, 4096, 16384, 65536, 262144)


class Metrics:
    """The metrics, registered once per registry.

    :param registry: A ``prometheus_client.CollectorRegistry``; the default one if omitted.
    """

    def __init__(self, registry: Any = None) -> None:
        try:
            from prometheus_client import REGISTRY
            from prometheus_client import Counter
            from prometheus_client import Histogram
        except ImportError as exc:
            raise ConfigurationError(
                "SESSION_METRICS needs prometheus_client: pip install 'sharedsession[metrics]'"
            ) from exc
        registry = REGISTRY if registry is None else registry

        def counter(name: str, text: str, *labels: str) -> Any:
            return Counter(f"sharedsession_{name}", text, labels, registry=registry)

        self.created = counter("sessions_created", "Sessions created.")
        self.destroyed = counter("sessions_destroyed", "Sessions ended by the app (logout).")
        self.revoked = counter("sessions_revoked", "Sessions ended by handle (revocation).")
        self.regenerated = counter("sessions_regenerated", "Sessions given a new ID.")
        self.loads = counter("loads", "Session loads by outcome.", "outcome")
        self.saves = counter("saves", "Session saves by outcome.", "outcome")
        self.round_trips = counter(
            "store_calls",
            "Store calls by operation (a Redis call is 1-5 round trips).",
            "operation",
        )
        self.errors = counter("store_errors", "Store errors by kind.", "kind")
        self.latency = Histogram(
            "sharedsession_store_latency_seconds",
            "Store call latency by operation.",
            ["operation"],
            registry=registry,
        )
        self.size = Histogram(
            "sharedsession_session_size_bytes",
            "Bytes of stored values of loaded sessions.",
            buckets=_SIZES,
            registry=registry,
        )

    def started(self, operation: str) -> float:
        self.round_trips.labels(operation).inc()
        return time.perf_counter()

    def finished(self, operation: str, started: float) -> None:
        self.latency.labels(operation).observe(time.perf_counter() - started)

    def failed(self, exc: BaseException) -> None:
        kind = "unavailable" if isinstance(exc, StoreUnavailable) else "error"
        if isinstance(exc, StoreError):
            self.errors.labels(kind).inc()

    def loaded(self, record: Record | None) -> None:
        if record is None:
            self.loads.labels("missing").inc()
            return
        if record.forward is not None:  # a renewal's marker: the successor is loaded next
            self.loads.labels("forwarded").inc()
            return
        self.loads.labels("found").inc()
        self.size.observe(sum(len(k) + len(v) for k, v in record.data.items()))

    def applied(self, changes: ChangeSet, result: ApplyResult) -> None:
        self.saves.labels(result.value).inc()
        if result is ApplyResult.APPLIED:
            if changes.created is not None:
                self.created.inc()
            if changes.replaces is not None:
                self.regenerated.inc()

    def wrote(self, written: Written | None) -> None:
        # Nothing written: the load and the apply that follow are counted.
        if written is not None:
            self.saves.labels(ApplyResult.APPLIED.value).inc()


_default: Metrics | None = None


def default_metrics() -> Metrics:
    """The metrics in prometheus_client's default registry (made once per process)."""
    global _default
    if _default is None:
        _default = Metrics()
    return _default


class InstrumentedStore:
    """A blocking store that counts what passes through it into :class:`Metrics`.

    :param store: The store to wrap.
    :param metrics: Where to count; :func:`default_metrics` if omitted.
    """

    def __init__(self, store: Any, metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics or default_metrics()
        if writes_keys(store):  # only where the store has it (counted)
            self.write_keys = functools.partial(self._write_keys, store.write_keys)

    def _call(self, operation: str, function: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        started = self.metrics.started(operation)
        try:
            return function(*args, **kw)
        except Exception as exc:
            self.metrics.failed(exc)
            raise
        finally:
            self.metrics.finished(operation, started)

    def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        record: Record | None = self._call("load", self.store.load, key, refresh=refresh)
        self.metrics.loaded(record)
        return record

    def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        result: ApplyResult = self._call("apply", self.store.apply, key, changes)
        self.metrics.applied(changes, result)
        return result

    def _write_keys(self, write: Any, key: str, writes: KeyWrites) -> Written | None:
        written: Written | None = self._call("write_keys", write, key, writes)
        self.metrics.wrote(written)
        return written

    def delete(self, key: str) -> None:
        self._call("delete", self.store.delete, key)
        self.metrics.destroyed.inc()

    def revoke(self, handle: str) -> bool:
        ended = bool(self._call("revoke", self.store.revoke, handle))
        if ended:
            self.metrics.revoked.inc()
        return ended

    def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        found: list[SessionInfo] = self._call(
            "sessions_for_user", self.store.sessions_for_user, user_id
        )
        return found

    def close(self) -> None:
        self.store.close()

    def __getattr__(self, name: str) -> Any:
        # Administration and Flask-Session access pass through, uncounted.
        return getattr(self.store, name)


class AsyncInstrumentedStore:
    """The async twin of :class:`InstrumentedStore`."""

    def __init__(self, store: Any, metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics or default_metrics()
        if writes_keys(store):  # only where the store has it (counted)
            self.write_keys = functools.partial(self._write_keys, store.write_keys)

    async def _call(
        self, operation: str, function: Callable[..., Any], *args: Any, **kw: Any
    ) -> Any:
        started = self.metrics.started(operation)
        try:
            return await function(*args, **kw)
        except Exception as exc:
            self.metrics.failed(exc)
            raise
        finally:
            self.metrics.finished(operation, started)

    async def load(self, key: str, *, refresh: Refresh | None = None) -> Record | None:
        record: Record | None = await self._call("load", self.store.load, key, refresh=refresh)
        self.metrics.loaded(record)
        return record

    async def apply(self, key: str, changes: ChangeSet) -> ApplyResult:
        result: ApplyResult = await self._call("apply", self.store.apply, key, changes)
        self.metrics.applied(changes, result)
        return result

    async def _write_keys(self, write: Any, key: str, writes: KeyWrites) -> Written | None:
        written: Written | None = await self._call("write_keys", write, key, writes)
        self.metrics.wrote(written)
        return written

    async def delete(self, key: str) -> None:
        await self._call("delete", self.store.delete, key)
        self.metrics.destroyed.inc()

    async def revoke(self, handle: str) -> bool:
        ended = bool(await self._call("revoke", self.store.revoke, handle))
        if ended:
            self.metrics.revoked.inc()
        return ended

    async def sessions_for_user(self, user_id: str) -> list[SessionInfo]:
        found: list[SessionInfo] = await self._call(
            "sessions_for_user", self.store.sessions_for_user, user_id
        )
        return found

    async def aclose(self) -> None:
        await self.store.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def instrument(store: Any, metrics: Metrics | None = None) -> Any:
    """``store`` wrapped for metrics, blocking or async as it is."""
    import inspect

    if inspect.iscoroutinefunction(getattr(store, "load", None)):
        return AsyncInstrumentedStore(store, metrics)
    return InstrumentedStore(store, metrics)
