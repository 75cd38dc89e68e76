"""``fieldapp district ...``: districts from the command line, where a fresh installation
starts (its first admin belongs to a district)."""

from __future__ import annotations

import click
import marshmallow as ma
from flask.cli import with_appcontext

from fieldapp.actor import Actor
from fieldapp.cli import refused
from fieldapp.db import db
from fieldapp.errors import APIError
from fieldapp.org import operations
from schemas.common import text_errors
from schemas.org import DistrictCreateArgs

#: The command line's name for each field of the API's DistrictCreateArgs.
OPTIONS = {"code": "CODE", "name": "--name"}


@click.group("district")
def district_cli():
    """Manage districts (区局)."""


@district_cli.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The district's name, e.g. 宝山区")
@with_appcontext
def add_district(code, name):
    """Add a district by its administrative code (e.g. 310113): checked as POST
    /api/v1/districts checks one."""
    given = {"code": code, "name": name}
    unstorable = text_errors(given)
    if unstorable:  # before any query sees the text (e.g. bytes that are not UTF-8)
        raise refused(unstorable, OPTIONS)
    try:
        args = DistrictCreateArgs().load(given)
    except ma.ValidationError as exc:
        raise refused(exc.normalized_messages(), OPTIONS) from None
    try:
        district = operations.create_district(Actor.for_system("cli"), args["code"], args["name"])
    except APIError as exc:
        db.session.rollback()
        errors = exc.data.get("errors", {}).get("json")
        raise (refused(errors, OPTIONS) if errors else click.ClickException(exc.message)) from None
    db.session.commit()
    click.echo(f"added district {district.code} {district.name} id={district.id}")
