"""``fieldapp risk recompute``: re-assess every target (daily, and after changing the settings)."""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext

from fieldapp.actor import Actor
from fieldapp.db import db, utcnow
from fieldapp.risk.operations import SettingsError, assess_targets


@click.group("risk")
def risk_cli():
    """Graded risk (分级分类)."""


@risk_cli.command("recompute")
@with_appcontext
def recompute_command():
    """Score every target and move levels by the rules (downgrades wait on time passing, so
    run this daily)."""
    started = time.perf_counter()
    try:
        summary = assess_targets(Actor.for_system("risk"), utcnow(), progress=click.echo)
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
