"""``fieldapp user ...``: manage accounts from the command line."""

from __future__ import annotations

import re
import typing

import click
import marshmallow as ma
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from fieldapp.actor import Actor
from fieldapp.auth import operations
from fieldapp.auth.models import Role
from fieldapp.db import db
from fieldapp.errors import APIError
from fieldapp.org.models import District, Squadron
from schemas.auth import UserCreateArgs
from schemas.common import text_errors

#: The command line's name for each field of the API's UserCreateArgs.
OPTIONS = {
    "username": "USERNAME",
    "name": "--name",
    "role": "--role",
    "password": "--password",
    "squadron_id": "--squadron",
    "district_id": "--district",
}


def _refused(errors: dict[str, typing.Any]) -> click.ClickException:
    """One line naming each refused option and why, as the API's 422 names each field."""
    return click.ClickException(
        "; ".join(
            f"{OPTIONS.get(field, field)}: {' '.join(map(str, messages))}"
            for field, messages in errors.items()
        )
    )


@click.group("user")
def user_cli():
    """Manage user accounts."""


@user_cli.command("add")
@click.argument("username")
@click.option("--name", required=True, help="Display name, e.g. 张伟")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--squadron", "squadron_name", help="Squadron id or name (officers and leaders)")
@click.option("--district", "district_code", help="District code (defaults to the only district)")
@click.password_option(help="Prompted for when not given")
@with_appcontext
def add_user(username, name, role, squadron_name, district_code, password):
    """Add a user: checked as POST /api/v1/users checks one."""
    given = {
        "username": username,
        "name": name,
        "role": role,
        "password": password,
        "squadron_id": squadron_name,
        "district_id": district_code,
    }
    unstorable = text_errors({k: v for k, v in given.items() if v is not None})
    if unstorable:  # before any query sees the text (e.g. bytes that are not UTF-8)
        raise _refused(unstorable)
    by_id = squadron_name is not None and re.fullmatch(r"[0-9]+", squadron_name) is not None
    try:
        args = UserCreateArgs().load(
            {
                "username": username,
                "name": name,
                "role": role,
                "password": password,
                **({"squadron_id": int(squadron_name)} if by_id else {}),
            }
        )
    except ma.ValidationError as exc:
        raise _refused(exc.normalized_messages()) from None
    squadron = None
    if squadron_name:
        query = sa.select(Squadron).where(
            Squadron.id == args["squadron_id"]
            if by_id
            else Squadron.name.in_([squadron_name, f"{squadron_name}中队"])
        )
        squadron = db.session.scalar(query)
        if squadron is None:
            raise _refused({"squadron_id": [f"no squadron {squadron_name!r}"]})
    district_query = sa.select(District)
    if district_code:
        district_query = district_query.where(District.code == district_code)
    districts = db.session.scalars(district_query).all()
    if squadron is None and district_code and not districts:
        raise _refused({"district_id": [f"no district {district_code!r}"]})
    if squadron is None and len(districts) != 1:
        raise _refused({"district_id": ["name the district (--district CODE)"]})
    try:
        user = operations.create_user(
            Actor.for_system("cli"),
            current_app.extensions["fieldapp.auth"],
            username=args["username"],
            name=args["name"],
            role=args["role"],
            password=args["password"],
            district_id=squadron.district_id if squadron else districts[0].id,
            squadron=squadron,
        )
    except APIError as exc:
        db.session.rollback()
        errors = exc.data.get("errors", {}).get("json")
        raise (_refused(errors) if errors else click.ClickException(exc.message)) from None
    db.session.commit()
    click.echo(f"added {user.username} ({user.role.value}) id={user.id}")
