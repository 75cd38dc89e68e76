"""``fieldapp risk recompute``: re-assess every target (daily, and after changing the settings)."""

from __future__ import annotations

import os
import time

import click
from flask.cli import with_appcontext

from fieldapp.actor import Actor
from fieldapp.db import db, utcnow
from fieldapp.risk.operations import CHUNK, SettingsError, assess_targets


@click.group("risk")
def risk_cli():
    """Graded risk (分级分类)."""


@risk_cli.command("recompute")
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=64),
    default=min(os.cpu_count() or 1, 8),
    show_default="the number of CPUs, at most 8",
    help="processes that assess targets while this one writes (1: all in this process)",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=CHUNK,
    show_default=True,
    help="targets assessed and committed per round (memory, progress, and how long a push"
    " may wait for one)",
)
@with_appcontext
def recompute_command(workers: int, chunk_size: int):
    """Score every target and move levels by the rules (downgrades wait on time passing, so
    run this daily)."""
    started = time.perf_counter()
    try:
        summary = assess_targets(
            Actor.for_system("risk"),
            utcnow(),
            progress=click.echo,
            workers=workers,
            chunk_size=chunk_size,
            # Each chunk committed on its own: pushes wait for a chunk, not for the whole run.
            chunk_done=db.session.commit,
        )
    except SettingsError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    shares = ", ".join(
        f"{level.value} {count:,} ({count / max(summary.targets, 1):.1%})"
        for level, count in summary.by_level.items()
    )
    click.echo(
        f"{summary.targets:,} targets assessed in {time.perf_counter() - started:.1f} s: "
        f"{summary.changed:,} updated, {summary.level_changes:,} level changes; {shares}"
    )
