"""``fieldapp photos sweep``: remove uploads no inspection claimed, and stale partial uploads."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from fieldapp.actor import Actor
from fieldapp.config import MAX_DURATION_DAYS
from fieldapp.db import db, utcnow
from fieldapp.photos import operations


@click.group("photos")
def photos_cli():
    """Photo store."""


@photos_cli.command("sweep")
@click.option(
    "--older-than",
    type=click.IntRange(min=1, max=MAX_DURATION_DAYS * 24),
    default=None,
    help="Hours without a claim before an upload goes (default: FIELDAPP_PHOTO_UNCLAIMED_HOURS).",
)
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
@with_appcontext
def sweep_command(older_than: int | None, dry_run: bool):
    """Remove photo uploads that no photo metadata claimed, and resumable uploads left
    unfinished, once older than the limit. Photos that metadata claims are never touched."""
    hours = older_than or current_app.config["PHOTO_UNCLAIMED_HOURS"]
    report = operations.sweep(
        Actor.for_system("photos-sweep"),
        operations.store_for(current_app.config),
        utcnow(),
        timedelta(hours=hours),
        dry_run=dry_run,
        progress=click.echo,
    )
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {report.unclaimed:,} unclaimed and {report.unfinished:,} unfinished uploads "
        f"older than {hours} h: {report.files:,} files, {report.bytes_freed / 1e6:.1f} MB"
    )
