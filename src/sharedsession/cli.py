"""Command line: ``sharedsession --store URL ...`` and ``flask sessions ...``.

Both run the same commands; ``flask sessions`` takes the store and settings
from the app's config, ``sharedsession`` from ``--store`` and the options.
Exit codes: 0 done, 1 nothing matched or the store is unreachable, 2 usage
errors. Session IDs are never printed.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import itertools
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from . import _flows as flows
from ._config import Settings
from ._driver import run
from .admin import SessionAdmin
from .errors import ConfigurationError
from .errors import SessionError
from .errors import StoreError
from .errors import StoreUnavailable
from .flask_session import FlaskSessionFormat
from .flask_session import Migration
from .manager import SessionManager


@dataclass
class Target:
    """The store and manager the commands act on."""

    store: Any
    manager: SessionManager
    settings: Settings


def _store_config(url: str) -> dict[str, Any]:
    """The Flask-style config of the store ``--store URL`` names."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]  # sqlite:////var/x is /var/x; sqlite:///x is ./x
        if not path or not os.path.isfile(path):
            raise click.ClickException(f"no SQLite session file at {path or '(none given)'}")
        return {"SESSION_TYPE": "sqlite", "SESSION_SQLITE_PATH": path}
    if url.startswith(("postgresql://", "postgresql+")):
        return {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY": url}
    if url.startswith("memcached://"):
        address = url[len("memcached://") :].rstrip("/")
        if not address:
            raise click.BadParameter("memcached:// needs an address: memcached://host:port")
        return {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": address}
    return {"SESSION_TYPE": "redis", "SESSION_REDIS": url}  # a bad scheme: its store says so


def _from_url(url: str, prefix: str, keys: tuple[str, ...]) -> Target:
    config = _store_config(url)
    if keys:
        config["SESSION_ENCRYPTION_KEYS"] = list(keys)
    settings = Settings.from_mapping(
        {**config, "SESSION_KEY_PREFIX": prefix, "SESSION_MIGRATE_FROM": None}, instance_path="."
    )
    return Target(settings.store(), settings.manager(), settings)


def _from_flask_app() -> Target:
    from flask import current_app

    interface: Any = current_app.session_interface
    settings = Settings.from_mapping(current_app.config, instance_path=current_app.instance_path)
    return Target(interface.store, interface.manager, settings)


#: Where a group leaves how to find its target (Flask keeps its own ``ctx.obj``).
_META = "sharedsession.target"


def _target(ctx: click.Context) -> Target:
    make: Callable[[], Target] = ctx.meta[_META]
    try:
        return make()
    except StoreError as exc:  # the store is there but cannot be opened or reached
        raise click.ClickException(f"the session store cannot be used: {exc}") from None
    except SessionError as exc:
        raise click.UsageError(str(exc)) from None


def _migrate(
    ctx: click.Context,
    source: str,
    dry_run: bool,
    allow_pickle: bool,
    delete_source: bool,
    serialization_format: str | None,
) -> None:
    target = _target(ctx)
    if not hasattr(target.store, "flask_session_ids"):
        raise click.UsageError("migrating from Flask-Session needs the Redis store")
    encoding = FlaskSessionFormat(
        serialization_format or target.settings.serialization_format,
        allow_pickle=allow_pickle or target.settings.migrate_allow_pickle,
    )
    migration = Migration(encoding, rolling=False, lifetime=target.settings.lifetime)
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    try:
        with click.progressbar(
            target.store.flask_session_ids(), label="Flask-Session sessions", show_pos=True
        ) as sids:
            for sid in sids:
                flow = flows.migrate_one(
                    target.manager, migration, sid, dry_run=dry_run, delete_source=delete_source
                )
                try:
                    outcome, reason = run(target.store, flow)
                except StoreUnavailable:
                    raise
                except StoreError:  # e.g. a key of another type that looks like one
                    outcome, reason = "failed", "not a Flask-Session value"
                counts[outcome] += 1
                if reason:
                    reasons[f"{outcome}: {reason}"] += 1
    except StoreUnavailable as exc:
        raise click.ClickException(f"the session store is unreachable: {exc}") from None
    verb = "would migrate" if dry_run else "migrated"
    click.echo(
        f"{verb} {counts['migrated']}, already present {counts['present']},"
        f" skipped {counts['skipped']}, failed {counts['failed']}"
        + (" (dry run: nothing written)" if dry_run else "")
    )
    for reason, count in sorted(reasons.items()):
        click.echo(f"  {count} {reason}")
    if not counts:
        ctx.exit(1)


def _admin(ctx: click.Context) -> SessionAdmin:
    target = _target(ctx)
    return SessionAdmin(target.store, target.manager)


def _when(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def _row(
    handle: str, user: str | None, created: float, seen: float, **extra: Any
) -> dict[str, Any]:
    return {"handle": handle, "user_id": user, "created": created, "last_seen": seen, **extra}


def _print_rows(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return
    click.echo(f"{'HANDLE':44} {'USER':20} {'CREATED (UTC)':19}  {'LAST SEEN (UTC)':19}")
    for row in rows:
        user = row["user_id"] or "-"
        created, seen = _when(row["created"]), _when(row["last_seen"])
        click.echo(f"{row['handle']:44} {user[:20]:20} {created}  {seen}")


def _store_errors(run_command: Callable[..., None]) -> Callable[..., None]:
    """A clear message, not a traceback, when the store cannot be reached."""

    @functools.wraps(run_command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            run_command(*args, **kwargs)
        except StoreUnavailable as exc:
            raise click.ClickException(f"the session store is unreachable: {exc}") from None
        except ConfigurationError as exc:  # the store cannot do this (memcached cannot list)
            raise click.UsageError(str(exc)) from None

    return wrapper


#: A handle is URL-safe base64 and may start with ``-``: such a word is taken
#: as the handle, not refused as an unknown option (these commands have no
#: short options).
_TAKES_HANDLE = {"ignore_unknown_options": True}


def _add_admin_commands(group: click.Group) -> None:
    @group.command("list")
    @click.option("--user", "user_id", help="Only this user's sessions.")
    @click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
    @click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
    @click.pass_context
    @_store_errors
    def list_(ctx: click.Context, /, user_id: str | None, limit: int | None, as_json: bool) -> None:
        """List sessions: handle, user, created, last seen (never an ID)."""
        if user_id is not None and not user_id:
            raise click.UsageError("--user needs a user ID")
        admin = _admin(ctx)
        if user_id is not None:
            found = admin.sessions_for_user(user_id)
            rows = [_row(i.handle, i.user_id, i.created, i.last_seen) for i in found]
        else:
            rows = [
                _row(s.handle, s.user_id, s.created, s.last_seen, bytes=s.size)
                for s in itertools.islice(admin.sessions(), limit)
            ]
        rows = rows[:limit] if limit else rows
        _print_rows(rows, as_json)
        if not rows:
            ctx.exit(1)

    @group.command("show", context_settings=_TAKES_HANDLE)
    @click.argument("handle")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object.")
    @click.pass_context
    @_store_errors
    def show(ctx: click.Context, /, handle: str, as_json: bool) -> None:
        """Show one session: metadata, keys and values."""
        details = _admin(ctx).details(handle)
        if details is None:
            click.echo("no live session has this handle", err=True)
            ctx.exit(1)
        assert details is not None
        row = _row(
            details.handle, details.user_id, details.created, details.last_seen,
            client=details.client, bytes=details.size, data=details.data,
        )  # fmt: skip
        if as_json:
            click.echo(json.dumps(row, default=repr))
            return
        for name in ("handle", "user_id", "client", "bytes"):
            click.echo(f"{name}: {row[name]}")
        click.echo(f"created: {_when(details.created)} UTC")
        click.echo(f"last_seen: {_when(details.last_seen)} UTC")
        for key, value in (details.data or {}).items():
            click.echo(f"  {key} = {value!r}")

    @group.command("count")
    @click.pass_context
    @_store_errors
    def count(ctx: click.Context, /) -> None:
        """Count live sessions."""
        click.echo(str(_admin(ctx).count()))

    @group.command("stats")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object.")
    @click.pass_context
    @_store_errors
    def stats(ctx: click.Context, /, as_json: bool) -> None:
        """Count, bytes, bound sessions and ages."""
        found = _admin(ctx).stats()
        if as_json:
            click.echo(json.dumps(dataclasses.asdict(found)))
            return
        click.echo(f"sessions: {found.count}  bound to a user: {found.bound}  bytes: {found.bytes}")
        for label, number in found.by_age.items():
            click.echo(f"  age {label}: {number}")

    @group.command("revoke", context_settings=_TAKES_HANDLE)
    @click.argument("handle")
    @click.pass_context
    @_store_errors
    def revoke(ctx: click.Context, /, handle: str) -> None:
        """End one session, by handle."""
        ended = _admin(ctx).revoke(handle)
        click.echo(f"ended {int(ended)} session")
        if not ended:
            ctx.exit(1)

    @group.command("revoke-user")
    @click.argument("user_id")
    @click.option("--keep", help="A handle to keep (log out the other devices).")
    @click.pass_context
    @_store_errors
    def revoke_user(ctx: click.Context, /, user_id: str, keep: str | None) -> None:
        """End every session of a user (but --keep)."""
        if not user_id:
            raise click.UsageError("USER_ID must not be empty")
        ended = _admin(ctx).revoke_user(user_id, keep=keep)
        click.echo(f"ended {ended} sessions")
        if not ended:
            ctx.exit(1)

    @group.command("purge")
    @click.pass_context
    @_store_errors
    def purge(ctx: click.Context, /) -> None:
        """Delete expired sessions the store keeps until purged (SQLite; Redis expires its own)."""
        click.echo(f"purged {_admin(ctx).purge()} expired sessions")


def _add_commands(group: click.Group) -> None:
    _add_admin_commands(group)

    @group.command("migrate")
    @click.option(
        "--from", "source", type=click.Choice(["flask-session"]), required=True, help="Source."
    )
    @click.option("--dry-run", is_flag=True, help="Count what would be migrated; write nothing.")
    @click.option("--allow-pickle", is_flag=True, help="Unpickle old data (runs code!).")
    @click.option("--delete-source", is_flag=True, help="Delete each Flask-Session key copied.")
    @click.option(
        "--format",
        "serialization_format",
        type=click.Choice(["msgpack", "json"]),
        help="Flask-Session's SESSION_SERIALIZATION_FORMAT (default: the config's).",
    )
    @click.pass_context
    def migrate(ctx: click.Context, /, **options: Any) -> None:
        """Copy Flask-Session's sessions into this library's layout (SCAN, idempotent)."""
        _migrate(ctx, **options)


@click.group()
@click.option(
    "--store",
    "url",
    envvar="SHAREDSESSION_STORE",
    required=True,
    help=(
        "A Redis URL (any form the README lists), sqlite:///path, a PostgreSQL URL"
        " (postgresql://... or postgresql+driver://..., as SQLAlchemy takes it)"
        " or memcached://host:port."
    ),
)
@click.option("--prefix", default="session:", show_default=True, help="SESSION_KEY_PREFIX.")
@click.option(
    "--encryption-key",
    "keys",
    multiple=True,
    envvar="SHAREDSESSION_ENCRYPTION_KEYS",
    help="SESSION_ENCRYPTION_KEYS, the current key first (repeat the option).",
)
@click.pass_context
def main(ctx: click.Context, url: str, prefix: str, keys: tuple[str, ...]) -> None:
    """Operate sharedsession's sessions."""
    ctx.meta[_META] = lambda: _from_url(url, prefix, keys)


_add_commands(main)


def flask_commands() -> click.Group:
    """The ``flask sessions`` group, acting on the app's own store."""
    from flask.cli import AppGroup

    @click.group("sessions", cls=AppGroup)
    @click.pass_context
    def sessions(ctx: click.Context) -> None:
        """Operate this app's server-side sessions."""
        ctx.meta[_META] = _from_flask_app

    _add_commands(sessions)
    return sessions
