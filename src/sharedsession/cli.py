"""Command line: ``sharedsession --store URL ...`` and ``flask sessions ...``.

Both run the same commands; ``flask sessions`` takes the store and settings
from the app's config, ``sharedsession`` from ``--store`` and the options.
Exit codes: 0 done, 1 nothing matched or the store is unreachable, 2 usage
errors. Session IDs are never printed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from . import _flows as flows
from ._config import Settings
from ._driver import run
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


def _from_url(url: str, prefix: str) -> Target:
    if url.startswith("sqlite:///"):
        config: dict[str, Any] = {"SESSION_TYPE": "sqlite", "SESSION_SQLITE_PATH": url[10:]}
    else:
        config = {"SESSION_TYPE": "redis", "SESSION_REDIS": url}
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


def _add_commands(group: click.Group) -> None:
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
    help="A Redis URL (any form the README lists) or sqlite:///path.",
)
@click.option("--prefix", default="session:", show_default=True, help="SESSION_KEY_PREFIX.")
@click.pass_context
def main(ctx: click.Context, url: str, prefix: str) -> None:
    """Operate sharedsession's sessions."""
    ctx.meta[_META] = lambda: _from_url(url, prefix)


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
