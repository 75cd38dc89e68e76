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
    """Import targets from a CSV or GeoJSON file. All rows go in, or none.

    A row with the code of a target, or with the uscc of a stored shop or the permit number of
    a stored site, updates that target (unchanged ones are left alone) instead of adding one:
    the same file can be imported again.
    """
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
    counts = (
        f"{report.created} new, {report.updated} updated and {report.unchanged} unchanged targets"
    )
    if dry_run:
        db.session.rollback()
        click.echo(f"dry run: {counts}; nothing was written")
    else:
        db.session.commit()
        click.echo(f"imported {counts}")
    if report.created_without_key:
        # Said every time: the operator may be about to import the file again.
        click.echo(
            f"note: {report.created_without_key} of the new targets have no code, uscc (shop) or"
            " permit_no (site): importing this file again would add them again",
            err=True,
        )
