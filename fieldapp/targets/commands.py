"""``fieldapp targets import FILE``: load shops and sites from CSV or GeoJSON;
``fieldapp targets labels``: write their 一店一码 labels to print."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from fieldapp.actor import Actor
from fieldapp.db import db
from fieldapp.org.models import Squadron
from fieldapp.targets.importer import ImportError_, import_targets
from fieldapp.targets.labels import label_svg
from fieldapp.targets.models import Target, TargetKind
from schemas.common import MAX_INT_ID


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


@targets_cli.command("labels")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    help="folder to write the labels to (made if missing)",
)
@click.option("--squadron-id", type=int, help="only this squadron's targets")
@click.option(
    "--kind", type=click.Choice([kind.value for kind in TargetKind]), help="only shops or sites"
)
@click.option("--quiet", is_flag=True, help="no progress bar")
@with_appcontext
def labels_command(out_dir: Path, squadron_id: int | None, kind: str | None, quiet: bool):
    """Write the 一店一码 label of every active target (or of one squadron's, or of one kind)
    to print: one SVG per target, named by its code (``S3KQ7PZ2M4A.svg``). Writing them again
    replaces them, so a name corrected since is printed right."""
    query = sa.select(Target).where(Target.active.is_(True)).order_by(Target.code)
    if squadron_id is not None:
        # A number past the database's integer names no squadron either, and must not reach
        # the query: SQLite overflows and PostgreSQL refuses it, both as a traceback.
        if not 1 <= squadron_id <= MAX_INT_ID or db.session.get(Squadron, squadron_id) is None:
            raise click.BadParameter(f"no squadron {squadron_id}", param_hint="--squadron-id")
        query = query.where(Target.squadron_id == squadron_id)
    if kind is not None:
        query = query.where(Target.kind == TargetKind(kind))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    with click.progressbar(
        length=total, label="labels", file=sys.stderr, hidden=quiet or total == 0
    ) as bar:
        # Streamed in pages: a city holds two hundred thousand targets.
        for target in db.session.scalars(query.execution_options(yield_per=1000)):
            (out_dir / f"{target.code}.svg").write_text(label_svg(target), encoding="utf-8")
            written += 1
            bar.update(1)
    db.session.rollback()
    click.echo(f"wrote {written:,} labels to {out_dir}")
