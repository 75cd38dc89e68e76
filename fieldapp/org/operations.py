"""Creating districts and squadrons, and redrawing squadrons' jurisdictions."""

from __future__ import annotations

import sqlalchemy as sa

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.db import db
from fieldapp.errors import validation_error
from fieldapp.geo import bounds
from fieldapp.org.models import District, Squadron


def create_district(actor: Actor, code: str, name: str) -> District:
    """A new district (区局), the unit a fresh installation starts from: its first admin,
    supervisors and squadrons belong to one. Its code is unique (422 on a taken one)."""
    if db.session.scalar(sa.select(District.id).where(District.code == code)) is not None:
        raise validation_error({"code": ["a district already has this code"]})
    district = District(code=code, name=name)
    db.session.add(district)
    db.session.flush()
    audit.record(actor, "district.create", "district", district.id, after=audit.snapshot(district))
    return district


def _set_jurisdiction(squadron: Squadron, geometry: dict) -> None:
    squadron.jurisdiction = geometry
    squadron.min_lon, squadron.min_lat, squadron.max_lon, squadron.max_lat = bounds(geometry)


def _check_name_free(district_id: int, name: str, squadron_id: int | None = None) -> None:
    clash = db.session.scalar(
        sa.select(Squadron.id).where(
            Squadron.district_id == district_id, Squadron.name == name, Squadron.id != squadron_id
        )
    )
    if clash is not None:
        raise validation_error({"name": ["a squadron of this district already has this name"]})


def create_squadron(actor: Actor, district: District, name: str, jurisdiction: dict) -> Squadron:
    _check_name_free(district.id, name)
    squadron = Squadron(district_id=district.id, name=name)
    _set_jurisdiction(squadron, jurisdiction)
    db.session.add(squadron)
    db.session.flush()
    audit.record(actor, "squadron.create", "squadron", squadron.id, after=audit.snapshot(squadron))
    return squadron


def update_squadron(actor: Actor, squadron: Squadron, changes: dict) -> Squadron:
    before = audit.snapshot(squadron)
    if "name" in changes:
        _check_name_free(squadron.district_id, changes["name"], squadron.id)
        squadron.name = changes["name"]
    if "jurisdiction" in changes:
        _set_jurisdiction(squadron, changes["jurisdiction"])
    audit.record_update(actor, "squadron.update", "squadron", squadron, before)
    return squadron
