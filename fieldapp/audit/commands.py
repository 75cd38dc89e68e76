"""``fieldapp audit verify``: re-hash the audit chain; exit status 1 when it is broken, 2 when
it could not be checked."""

from __future__ import annotations

import sys
import time
import traceback

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from fieldapp.audit import operations
from fieldapp.db import db

#: Exit statuses, as checkers have them (``cmp``, ``diff``): cron alarms on "tampered with"
#: only for a broken chain, never for an outage.
BROKEN = 1
NOT_CHECKED = 2


@click.group("audit")
def audit_cli():
    """The tamper-evident audit log."""


@audit_cli.command("verify")
@click.option("--quiet", is_flag=True, help="no progress bar, only the verdict")
@with_appcontext
def verify_command(quiet: bool):
    """Check every entry's hash and link; name the first altered, removed or moved entry.

    Exit status 0: intact; 1: broken; 2: the check could not run (the database cannot be
    reached or has no tables yet, a configuration error)."""
    try:
        _verify(quiet)
    except sa.exc.DBAPIError as exc:
        from fieldapp.cli import database_error

        url = current_app.config["SQLALCHEMY_DATABASE_URI"]
        click.echo(f"{database_error(exc, url)}; the chain was not checked", err=True)
        sys.exit(NOT_CHECKED)
    except Exception:  # a fault of the checker's own is no verdict on the chain either
        traceback.print_exc()
        click.echo("fieldapp: the audit chain was not checked (the error above)", err=True)
        sys.exit(NOT_CHECKED)


def _verify(quiet: bool) -> None:
    started = time.perf_counter()
    head = operations.chain_head(db.session())
    total = 0 if head is None else head[0]
    with click.progressbar(
        length=total, label="verifying", file=sys.stderr, hidden=quiet or total == 0
    ) as bar:
        done = [0]

        def progress(entries: int, _total: int) -> None:
            bar.update(entries - done[0])
            done[0] = entries

        verdict = operations.verify(db.session(), progress)
    db.session.rollback()
    seconds = time.perf_counter() - started
    if verdict.ok:
        click.echo(
            f"ok: {verdict.entries:,} entries, chain intact (last seq {verdict.last_seq}, "
            f"hash {verdict.last_hash}) in {seconds:.1f} s"
        )
        return
    if verdict.first_bad_seq is None:  # the chain head's row is gone
        click.echo(
            f"BROKEN: {verdict.problem}: the chain head is gone, so entries cut off the end "
            f"would not be seen; {verdict.entries:,} entries are intact",
            err=True,
        )
        sys.exit(BROKEN)
    click.echo(
        f"BROKEN: first bad entry seq {verdict.first_bad_seq} ({verdict.problem}); "
        f"{verdict.entries:,} entries before it are intact",
        err=True,
    )
    sys.exit(BROKEN)
