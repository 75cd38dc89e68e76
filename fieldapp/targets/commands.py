"""``fieldapp targets import FILE``: load shops and sites from CSV or GeoJSON."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from fieldapp.actor import Actor
from fieldapp.db import db
from fieldapp.targets.importer import ImportError_, import_targets


@click.group("targets")
def targets_cli():
    """Manage targets (shops and sites)."""


@targets_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check every row and report, write nothing.")
@with_appcontext
def import_command(path, dry_run):
    """Import targets from a CSV or GeoJSON file. All rows go in, or none."""
    try:
        report = import_targets(Actor.for_system("import"), path, progress=click.echo)
    except ImportError_ as exc:
        db.session.rollback()
        for line in exc.problems[:50]:
            click.echo(f"  {line}", err=True)
        more = len(exc.problems) - 50
        if more > 0:
            click.echo(f"  ... and {more} more", err=True)
        raise click.ClickException(
            f"{len(exc.problems)} problem(s); nothing was imported"
        ) from None
    if dry_run:
        db.session.rollback()
        click.echo(
            f"dry run: {report.created} new and {report.updated} updated targets would be written"
        )
        return
    db.session.commit()
    click.echo(f"imported {report.created} new and {report.updated} updated targets")
