"""Resolving the conflict log: a person chooses, and the choice becomes a new version.

``keep: server`` closes the entry and leaves the record as it is; ``keep: client`` writes the
device's value; ``keep: value`` writes a value the person gives. A resolved amendment to an
approved inspection reopens it for review; a resolved delete deletes the record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import marshmallow as ma
import sqlalchemy as sa

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.db import db, utcnow
from fieldapp.errors import APIError, validation_error
from fieldapp.inspections.models import Inspection, ReviewAction
from fieldapp.photos.models import Photo
from fieldapp.risk import operations as risk
from fieldapp.targets.models import Target
from fieldapp.targets.operations import RISK_FIELDS
from schemas.inspections import InspectionFieldsArgs
from schemas.sync import PhotoFieldsArgs, TargetFieldsArgs
from sync.entities import (
    INSPECTION_FIELDS,
    TARGET_FIELDS,
    InspectionHandler,
    _loadable,
    inspection_wire,
    target_device_view,
    wgs84_location,
    write_tombstone,
    write_version,
)
from sync.hlc import HLC
from sync.merge import normalize_answer
from sync.models import Conflict, ConflictKind, ConflictStatus

MODELS = {"inspection": Inspection, "target": Target, "photo": Photo}

#: The leader's queue: amendments to approved records first (they hold back an approved
#: record's correction), then deletes, then field conflicts (already settled by the rules).
KIND_ORDER = {ConflictKind.amendment: 0, ConflictKind.delete: 1, ConflictKind.field: 2}


@dataclass
class ConflictFilters:
    status: str | None = None
    kind: str | None = None
    entity: str | None = None
    record_id: uuid.UUID | None = None
    squadron_id: int | None = None
    target_id: uuid.UUID | None = None
    officer_id: uuid.UUID | None = None
    logged_from: datetime | None = None
    logged_before: datetime | None = None
    order: str = "queue"


def search_conflicts(query: sa.Select, filters: ConflictFilters) -> sa.Select:
    """``query`` (a scoped ``SELECT Conflict``) filtered and ordered (see :data:`KIND_ORDER`)."""
    for name in ("status", "kind", "entity", "record_id", "squadron_id"):
        value = getattr(filters, name)
        if value is not None:
            query = query.where(getattr(Conflict, name) == value)
    if filters.officer_id is not None:
        query = query.where(Conflict.user_id == filters.officer_id)
    if filters.logged_from is not None:
        query = query.where(Conflict.created_at >= filters.logged_from)
    if filters.logged_before is not None:
        query = query.where(Conflict.created_at < filters.logged_before)
    if filters.target_id is not None:
        inspections = sa.select(Inspection.id).where(Inspection.target_id == filters.target_id)
        photos = sa.select(Photo.id).where(Photo.inspection_id.in_(inspections))
        query = query.where(
            sa.or_(
                sa.and_(Conflict.entity == "target", Conflict.record_id == filters.target_id),
                sa.and_(Conflict.entity == "inspection", Conflict.record_id.in_(inspections)),
                sa.and_(Conflict.entity == "photo", Conflict.record_id.in_(photos)),
            )
        )
    if filters.order == "newest":
        return query.order_by(Conflict.created_at.desc(), Conflict.id)
    if filters.order == "oldest":
        return query.order_by(Conflict.created_at, Conflict.id)
    return query.order_by(
        sa.case((Conflict.status == ConflictStatus.open, 0), else_=1),
        sa.case(*((Conflict.kind == kind, rank) for kind, rank in KIND_ORDER.items())),
        Conflict.created_at,
        Conflict.id,
    )


def resolve(actor: Actor, conflict: Conflict, keep: str, value: Any, now: datetime) -> Conflict:
    """Apply the choice and close the entry. 409 if it is already resolved."""
    if conflict.status is ConflictStatus.resolved:
        raise APIError(409, "version_conflict", "this conflict is already resolved")
    record = db.session.get(MODELS[conflict.entity], conflict.record_id)
    chosen = conflict.client_value if keep == "client" else value
    applied_version = None
    if keep != "server":
        if record is None:
            raise APIError(409, "version_conflict", "the record was deleted meanwhile")
        clock = str(HLC.server(int(now.timestamp() * 1000)))
        if conflict.kind is ConflictKind.delete:
            applied_version = _delete(actor, conflict, record)
        elif conflict.kind is ConflictKind.amendment:
            applied_version = _write(actor, conflict, record, _amendment_fields(chosen), clock)
        else:
            applied_version = _write(
                actor, conflict, record, _field_value(conflict.field, chosen, record), clock
            )
    conflict.status = ConflictStatus.resolved
    conflict.resolution = {
        "keep": keep,
        "value": chosen if keep != "server" else None,
        "applied_version": applied_version,
    }
    conflict.resolved_by_id = actor.user_id
    conflict.resolved_at = now
    audit.record(
        actor,
        "conflict.resolve",
        "conflict",
        conflict.id,
        after={"keep": keep, "record_id": str(conflict.record_id), "version": applied_version},
    )
    return conflict


def _amendment_fields(chosen) -> dict:
    if not isinstance(chosen, dict):
        raise validation_error({"value": ["an amendment is resolved with an object of fields"]})
    return chosen


def _field_value(field: str, chosen, record) -> dict:
    if field.startswith("answers."):
        code = field.split(".", 1)[1]
        answers = dict(record.answers or {})
        answers[code] = normalize_answer(chosen) if isinstance(chosen, dict) else chosen
        return {"answers": answers}
    return {field: chosen}


def _write(actor: Actor, conflict: Conflict, record, fields: dict, clock: str) -> int:
    if isinstance(record, Inspection):
        return _write_inspection(actor, record, fields, clock)
    if isinstance(record, Target):
        return _write_target(actor, record, fields, clock)
    return _write_photo(actor, record, fields, clock)


def _load(schema: ma.Schema, fields: dict) -> dict:
    try:
        return schema.load(fields, partial=True)
    except ma.ValidationError as exc:
        raise validation_error({"value": exc.normalized_messages()}) from None


def _write_inspection(actor: Actor, record: Inspection, fields: dict, clock: str) -> int:
    unknown = sorted(set(fields) - set(INSPECTION_FIELDS) - {"status"})
    if unknown:
        raise validation_error({"value": {name: ["not a field devices write"] for name in unknown}})
    fields = {k: v for k, v in fields.items() if k != "status"}
    loaded = _load(InspectionFieldsArgs(), _loadable(fields))
    wire = InspectionFieldsArgs().dump(loaded)
    original = None
    if "location" in wire:
        wire["location"], original = wgs84_location(wire["location"])
    before = inspection_wire(record)
    InspectionHandler()._write(record, wire, loaded, original)
    reopened = record.can(ReviewAction.reopen)
    if reopened:
        # An amendment to an approved record goes back to the leader.
        record.transition(ReviewAction.reopen, by=actor.user_id, at=utcnow())
    clocks = {name: clock for name in wire}
    clocks |= {f"answers.{code}": clock for code in (fields.get("answers") or {})}
    record.field_clocks = {**(record.field_clocks or {}), **clocks}
    db.session.flush()
    after = inspection_wire(record)
    changed = [k for k in after if after.get(k) != before.get(k) and k not in ("version",)]
    write_version("inspection", record, after, changed, None, None, actor=actor)
    audit.record(
        actor,
        "inspection.resolve",
        "inspection",
        record.id,
        before={k: before.get(k) for k in changed},
        after={k: after.get(k) for k in changed},
    )
    if reopened:
        # Only approved inspections feed risk: until it is approved again, it does not count.
        risk.refresh_target(actor, record.target, utcnow())
    return record.version


def _write_target(actor: Actor, record: Target, fields: dict, clock: str) -> int:
    unknown = sorted(set(fields) - set(TARGET_FIELDS))
    if unknown:
        raise validation_error({"value": {name: ["not a field devices write"] for name in unknown}})
    loaded = _load(TargetFieldsArgs(), fields)
    before = audit.snapshot(record)
    for name, value in loaded.items():
        if name == "location":
            stored, _ = wgs84_location(
                TargetFieldsArgs().dump({"location": value})["location"], with_accuracy=False
            )
            record.lon, record.lat = stored["lon"], stored["lat"]
        else:
            setattr(record, name, value)
    record.field_clocks = {**(record.field_clocks or {}), **{name: clock for name in loaded}}
    db.session.flush()
    write_version(
        "target", record, target_device_view(record), list(loaded), None, None, actor=actor
    )
    entry = audit.record_update(actor, "target.resolve", "target", record, before)
    if entry is not None and entry["after"].keys() & RISK_FIELDS:
        risk.refresh_target(actor, record, utcnow())
    return record.version


def _write_photo(actor: Actor, record: Photo, fields: dict, clock: str) -> int:
    loaded = _load(PhotoFieldsArgs(), fields)
    for name, value in loaded.items():
        if name not in ("location", "inspection_id"):
            setattr(record, name, value)
    db.session.flush()
    audit.record(actor, "photo.resolve", "photo", record.id, after={"fields": sorted(loaded)})
    return record.version


def _delete(actor: Actor, conflict: Conflict, record) -> int:
    version = record.version + 1
    write_tombstone(conflict.entity, record, conflict.squadron_id, actor.user_id)
    audit.record(
        actor,
        f"{conflict.entity}.delete",
        conflict.entity,
        record.id,
        before={"version": record.version},
    )
    db.session.delete(record)
    db.session.flush()
    return version
