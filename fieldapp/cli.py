"""The ``fieldapp`` command: Flask's CLI group with fieldapp's own commands added."""

from __future__ import annotations

import sys
import typing

import click
import sqlalchemy as sa
from flask.cli import FlaskGroup, ScriptInfo

from fieldapp.config import ConfigError

#: The exit status of a command stopped by a configuration error (as for a usage error).
CONFIG_ERROR_EXIT = 2


def report_config_error(exc: ConfigError) -> None:
    """End the process with one line naming the setting at fault, no traceback: for the
    command line and for gunicorn's master, which checks before it starts its workers."""
    click.echo(f"fieldapp: configuration error: {exc}", err=True)
    sys.exit(CONFIG_ERROR_EXIT)


def refused(errors: dict[str, typing.Any], options: dict[str, str]) -> click.ClickException:
    """One line naming each refused option and why, as the API's 422 names each field;
    ``options`` gives the command line's name of each field (``{"name": "--name"}``)."""
    return click.ClickException(
        "; ".join(
            f"{options.get(field, field)}: {' '.join(map(str, messages))}"
            for field, messages in errors.items()
        )
    )


def _create_app():
    from fieldapp import create_app

    # A ConfigError goes up to FieldappGroup, which reports it only if a command needed the app.
    return create_app()


#: PostgreSQL's SQLSTATE for a table that does not exist.
_UNDEFINED_TABLE = "42P01"


def _no_tables(exc: sa.exc.DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == _UNDEFINED_TABLE or (
        "no such table" in str(exc.orig)
    )


def database_error(exc: sa.exc.DBAPIError, url: str) -> str:
    """One line: which database (its URL, password hidden) and what its driver said."""
    from fieldapp.db import driver_said

    shown = sa.make_url(url).render_as_string(hide_password=True)
    said = driver_said(exc)
    if _no_tables(exc):  # PostgreSQL goes on with the statement's text: its first line will do
        said = f"{str(exc.orig).splitlines()[0]} (run `fieldapp db upgrade` first)"
    return f"fieldapp: database error: {shown}: {said}"


class FieldappGroup(FlaskGroup):
    """Flask's group, where a configuration error, or a database that cannot be reached (or has
    no tables yet), ends a command with one line naming it, not a traceback.

    Every command is registered on the group itself (Flask-Migrate's ``db`` and flask-smorest's
    ``openapi`` too, which would otherwise come from the app), so that ``--help`` and the list
    of commands never need the app: they stay readable while the configuration is being fixed.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The commands, without building the app (Flask's group builds it to ask ``app.cli``,
        and a broken configuration would then hide the help behind its error)."""
        self._load_plugin_commands()
        return sorted(click.Group.list_commands(self, ctx))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        try:
            return super().get_command(ctx, name)
        except ConfigError as exc:  # an unknown name: only the app could have said more
            report_config_error(exc)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            report_config_error(exc)
        except sa.exc.DBAPIError as exc:
            if not (isinstance(exc, sa.exc.OperationalError) or _no_tables(exc)):
                raise
            url = ctx.ensure_object(ScriptInfo).load_app().config["SQLALCHEMY_DATABASE_URI"]
            click.echo(database_error(exc, url), err=True)
            sys.exit(1)


@click.group(cls=FieldappGroup, create_app=_create_app, add_version_option=False)
def cli():
    """fieldapp: backend for graded field inspections (城管分级分类执法检查)."""


def _register_commands() -> None:
    from flask_migrate.cli import db as db_cli
    from flask_smorest.spec import openapi_cli

    from fieldapp.audit.commands import audit_cli
    from fieldapp.auth.commands import user_cli
    from fieldapp.demo.commands import demo_command
    from fieldapp.org.commands import district_cli
    from fieldapp.photos.commands import photos_cli
    from fieldapp.risk.commands import risk_cli
    from fieldapp.targets.commands import targets_cli

    cli.add_command(demo_command)
    cli.add_command(district_cli)
    cli.add_command(user_cli)
    cli.add_command(targets_cli)
    cli.add_command(risk_cli)
    cli.add_command(audit_cli)
    cli.add_command(photos_cli)
    cli.add_command(db_cli, "db")
    cli.add_command(openapi_cli)


_register_commands()


def main() -> None:
    cli(prog_name="fieldapp")
