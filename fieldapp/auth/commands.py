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
from fieldapp.cli import refused
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
    return refused(errors, OPTIONS)


def _named_squadrons(found: list[Squadron], name: str) -> list[Squadron]:
    """The squadrons ``name`` means among ``found`` (those called ``name`` or ``name`` + 中队):
    in each district the one called exactly that, else the one with 中队 after it, so 吴淞
    is 吴淞 where a district has both 吴淞 and 吴淞中队. One per district."""
    by_district: dict[int, Squadron] = {}
    for squadron in found:
        chosen = by_district.get(squadron.district_id)
        if chosen is None or (squadron.name == name and chosen.name != name):
            by_district[squadron.district_id] = squadron
    return list(by_district.values())


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
    district = None
    if district_code:
        district = db.session.scalar(sa.select(District).where(District.code == district_code))
        if district is None:
            raise _refused({"district_id": [f"no district {district_code!r}"]})
    squadron = None
    if squadron_name:
        query = sa.select(Squadron).where(
            Squadron.id == args["squadron_id"]
            if by_id
            else Squadron.name.in_([squadron_name, f"{squadron_name}中队"])
        )
        if district is not None and not by_id:
            query = query.where(Squadron.district_id == district.id)
        squadrons = _named_squadrons(
            db.session.scalars(query.order_by(Squadron.id)).all(), squadron_name
        )
        if not squadrons:
            raise _refused({"squadron_id": [f"no squadron {squadron_name!r}"]})
        if len(squadrons) > 1:  # one per district: only where no district was named
            districts = ", ".join(f"{s.district.code} {s.district.name}" for s in squadrons)
            raise _refused(
                {
                    "squadron_id": [
                        f"{squadron_name!r} is in several districts ({districts});"
                        " name the district (--district CODE)"
                    ]
                }
            )
        squadron = squadrons[0]
    if district is None and squadron is None:
        districts = db.session.scalars(sa.select(District)).all()
        if len(districts) != 1:
            raise _refused({"district_id": ["name the district (--district CODE)"]})
        district = districts[0]
    try:
        user = operations.create_user(
            Actor.for_system("cli"),
            current_app.extensions["fieldapp.auth"],
            username=args["username"],
            name=args["name"],
            role=args["role"],
            password=args["password"],
            district_id=district.id if district else squadron.district_id,
            squadron=squadron,
        )
    except APIError as exc:
        db.session.rollback()
        errors = exc.data.get("errors", {}).get("json")
        raise (_refused(errors) if errors else click.ClickException(exc.message)) from None
    db.session.commit()
    click.echo(f"added {user.username} ({user.role.value}) id={user.id}")
