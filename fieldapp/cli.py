"""The ``fieldapp`` command: Flask's CLI group with fieldapp's own commands added."""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup

from fieldapp.config import ConfigError


def _create_app():
    from fieldapp import create_app

    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"fieldapp: configuration error: {exc}", err=True)
        sys.exit(2)


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def cli():
    """fieldapp: backend for graded field inspections (城管分级分类执法检查)."""


def _register_commands() -> None:
    from fieldapp.audit.commands import audit_cli
    from fieldapp.auth.commands import user_cli
    from fieldapp.demo.commands import demo_command
    from fieldapp.photos.commands import photos_cli
    from fieldapp.risk.commands import risk_cli
    from fieldapp.targets.commands import targets_cli

    cli.add_command(demo_command)
    cli.add_command(user_cli)
    cli.add_command(targets_cli)
    cli.add_command(risk_cli)
    cli.add_command(audit_cli)
    cli.add_command(photos_cli)


_register_commands()


def main() -> None:
    cli(prog_name="fieldapp")
