"""``fieldapp user ...``: manage accounts from the command line."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from fieldapp.actor import Actor
from fieldapp.auth import operations
from fieldapp.auth.models import Role
from fieldapp.db import db
from fieldapp.errors import APIError
from fieldapp.org.models import District, Squadron


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
    """Add a user."""
    squadron = None
    if squadron_name:
        query = sa.select(Squadron).where(
            Squadron.id == int(squadron_name)
            if squadron_name.isdigit()
            else Squadron.name.in_([squadron_name, f"{squadron_name}中队"])
        )
        squadron = db.session.scalar(query)
        if squadron is None:
            raise click.BadParameter(f"no squadron {squadron_name!r}", param_hint="--squadron")
    district_query = sa.select(District)
    if district_code:
        district_query = district_query.where(District.code == district_code)
    districts = db.session.scalars(district_query).all()
    if squadron is None and len(districts) != 1:
        raise click.BadParameter("name the district (--district CODE)", param_hint="--district")
    try:
        user = operations.create_user(
            Actor.for_system("cli"),
            current_app.extensions["fieldapp.auth"],
            username=username,
            name=name,
            role=Role(role),
            password=password,
            district_id=squadron.district_id if squadron else districts[0].id,
            squadron=squadron,
        )
    except APIError as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc.message}: {exc.data.get('errors')}") from None
    db.session.commit()
    click.echo(f"added {user.username} ({user.role.value}) id={user.id}")
