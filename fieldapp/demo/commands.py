"""``fieldapp demo``: build the demo district (once) and serve it."""

from __future__ import annotations

import os
import time
from datetime import date

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from werkzeug.serving import run_simple

from fieldapp.db import db
from fieldapp.demo.builder import DEFAULT_SEED, SCALES, DemoBuilder, existing_demo
from fieldapp.org.models import District

ACCOUNTS = (
    ("admin", "admin", "manages squadrons, users, devices, checklists"),
    ("supervisor", "supervisor", "audits the whole district"),
    ("leader1", "leader", "squadron 1, 吴淞中队"),
    ("officer1", "officer", "squadron 1, 吴淞中队"),
    ("officer2", "officer", "squadron 1, 吴淞中队"),
    ("leader2", "leader", "squadron 2, 张庙中队"),
    ("officer3", "officer", "squadron 2, 张庙中队"),
)


def _database_size() -> str:
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        db.session.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        size = sum(
            os.path.getsize(url.database + suffix)
            for suffix in ("", "-wal")
            if os.path.exists(url.database + suffix)
        )
    else:
        size = db.session.scalar(sa.text("SELECT pg_database_size(current_database())"))
    return f"{size / 1024 / 1024:.1f} MiB"


def ensure_demo(scale: str, seed: int, as_of: date | None) -> None:
    """Migrate the database and build the demo unless one is already there."""
    click.echo(f"database: {db.engine.url.render_as_string(hide_password=True)}")
    upgrade()
    found = existing_demo(db.session)
    if found is not None:
        click.echo(
            f"reusing the demo district built on {found['as_of']} (scale {found['scale']}, "
            f"seed {found['seed']}); delete the database to build another"
        )
        if found["scale"] != scale:
            click.echo(f"note: you asked for scale {scale}; the existing one is kept", err=True)
        return
    if db.session.scalar(sa.select(sa.func.count()).select_from(District)):
        raise click.ClickException(
            "this database already holds a district that is not a demo; "
            "point FIELDAPP_DATABASE_URL at an empty database for the demo"
        )
    started = time.perf_counter()
    builder = DemoBuilder(SCALES[scale], seed=seed, as_of=as_of, progress=click.echo)
    summary = builder.build(current_app.extensions["fieldapp.auth"].password_hasher)
    click.echo("committing ...")
    db.session.commit()
    counts = ", ".join(f"{n:,} {label}" for label, n in summary.counts.items())
    click.echo(f"built in {time.perf_counter() - started:.1f}s: {counts}")
    click.echo(f"database size: {_database_size()}")


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--scale", type=click.Choice(list(SCALES)), default="district", show_default=True)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True)
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last day of the year of history (default: today). Same seed + date = same data.",
)
@click.option("--no-serve", is_flag=True, help="Build the demo and exit.")
@with_appcontext
def demo_command(host, port, scale, seed, as_of, no_serve):
    """Build the demo district (reused if present) and serve it."""
    ensure_demo(scale, seed, as_of.date() if as_of else None)
    if no_serve:
        return
    click.echo("\ndemo accounts (password: fieldapp-demo):")
    for username, role, note in ACCOUNTS:
        click.echo(f"  {username:<11} {role:<10} {note}")
    base = f"http://{host}:{port}"
    click.echo(
        f"\nAPI docs: {base}/api/v1/docs\ntry:\n  curl -s -X POST {base}/api/v1/auth/token "
        "-H 'Content-Type: application/json' "
        '-d \'{"username": "officer1", "password": "fieldapp-demo", "device_id": "pad-1"}\'\n'
    )
    db.session.remove()
    # Flask refuses app.run() inside its CLI; the demo is meant to be served from here.
    run_simple(host, port, current_app._get_current_object(), threaded=True)
