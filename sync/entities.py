"""How each pushed entity is checked, merged and stored: inspections, targets, photos, tracks.

Every handler works on one change inside the change's savepoint, raises :class:`Rejected` with
a field-level error when the change cannot be applied, and otherwise writes the record, its new
version in the version history, its conflict log entries and its audit entry.

Values are compared in their wire (JSON) form: what the server stores is dumped with the same
schema the devices read, and what the device sent is loaded and dumped again, so that equal
values compare equal whatever their spelling (time zones, coordinate systems, defaults).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.audit.models import AuditEntry
from fieldapp.auth.models import Role, User
from fieldapp.auth.operations import officers_at
from fieldapp.auth.policy import members_elsewhere
from fieldapp.checklists.models import Checklist, ChecklistItem, ChecklistVersion
from fieldapp.db import db, insert_rows
from fieldapp.errors import APIError
from fieldapp.geo import to_wgs84
from fieldapp.inspections.models import (
    Case,
    CoordinateSystem,
    Inspection,
    InspectionState,
    InspectionStatus,
    Outcome,
    ReviewAction,
    ReviewStatus,
    inspection_officers,
)
from fieldapp.inspections.references import (
    closed_task,
    not_deleted_because,
    quoted,
    references_to,
)
from fieldapp.localtime import local_date
from fieldapp.photos import operations as photo_ops
from fieldapp.photos.models import Photo
from fieldapp.risk import operations as risk
from fieldapp.targets.models import Target, TargetKind
from fieldapp.targets.operations import RISK_FIELDS, code_for, site_location_errors
from fieldapp.tracks.models import TrackPoint
from schemas.inspections import (
    CREATE_REQUIRED,
    SERVER_FIELDS,
    InspectionFieldsArgs,
    inspection_fields_wire,
    load_inspection_fields,
)
from schemas.sync import PhotoFieldsArgs, TargetFieldsArgs, TrackFieldsArgs
from sync.engine import (
    Change,
    PushContext,
    Rejected,
    left_target_refs,
    nameable_tasks,
    removals_served,
    target_refs,
)
from sync.hlc import HLC
from sync.merge import (
    UNKNOWN,
    FieldConflict,
    MergeResult,
    Rule,
    merge_fields,
    merge_lww,
    reasserts,
    removals,
    restorations,
)
from sync.models import Conflict, ConflictKind, RecordVersion, Tombstone, UserExit
from sync.sequence import allocate
from sync.versions import (
    record_left_users,
    set_history,
    stamp_versions,
    version_values,
    written_since,
)

# -- shared pieces -------------------------------------------------------------------------------


def invalid(errors: dict, message: str | None = None) -> Rejected:
    return Rejected(APIError(422, "validation_failed", message, errors={"json": errors}))


def unchanged(change: Change, version: int) -> dict:
    """The answer to an edit that changes nothing (no fields): nothing to apply or to log,
    frozen record or not; ``merged`` where the device's base was behind."""
    return result(change, "applied" if change.base_version == version else "merged", version)


def refuse_base_ahead(change: Change, version: int) -> None:
    """A change based on a version the server (at ``version``) never had: the device's copy is
    not the server's, and nothing can be merged against it (422 on ``base_version``)."""
    if change.base_version is not None and change.base_version > version:
        raise invalid({"base_version": [f"ahead of the server, which is at version {version}"]})


def edited_status(change: Change, version_before: int | None, conflicts) -> str:
    """The answer to an edit that was applied: ``conflict`` where a field changed on both sides
    was logged, else ``applied`` where the device's base was the record's version before the
    edit, ``merged`` where it was behind."""
    if conflicts:
        return "conflict"
    return "applied" if change.base_version == version_before else "merged"


def result(change: Change, status: str, version: int | None, conflicts=()) -> dict:
    return {
        "change_id": str(change.change_id),
        "id": str(change.id),
        "status": status,
        "version": version,
        "replayed": False,
        "conflicts": [
            {"field": c.field, "kept": c.kept, "conflict_id": str(c.id)} for c in conflicts
        ],
        "error": None,
    }


@dataclass
class Prepared:
    """The rows one change writes, checked and ready: many are inserted together."""

    result: dict
    #: rows that take the next change sequence numbers, in order
    sequenced: list[dict]
    rows: dict[sa.Table, list[dict]] = field(default_factory=dict)

    def add(self, table: sa.Table, row: dict) -> None:
        self.rows.setdefault(table, []).append(row)


#: Insert order: parents before the rows that point at them.
_WRITE_ORDER = (
    "inspections",
    "inspection_officers",
    "record_versions",
    "sync_changes",
)


def write_prepared(batch: list[Prepared]) -> None:
    """Insert the rows of ``batch`` with one statement per table, sequence numbers in order."""
    sequenced = [row for prepared in batch for row in prepared.sequenced]
    if sequenced:
        first = allocate(db.session, _counter(), len(sequenced))
        for offset, row in enumerate(sequenced):
            row["change_seq"] = first + offset
    by_table: dict[sa.Table, list[dict]] = {}
    for prepared in batch:
        for table, rows in prepared.rows.items():
            by_table.setdefault(table, []).extend(rows)
    # Audit entries are chained and written when the transaction commits.
    audit.append(by_table.pop(AuditEntry.__table__, []))
    connection = db.session.connection()
    for table in sorted(by_table, key=lambda t: _WRITE_ORDER.index(t.name)):
        insert_rows(connection, table, by_table[table])


def load_fields(schema: ma.Schema, fields: dict) -> tuple[dict, dict]:
    """The device's fields loaded (Python values) and in wire form (for comparing)."""
    try:
        loaded = schema.load(fields, partial=True)
    except ma.ValidationError as exc:
        raise invalid(exc.normalized_messages()) from None
    for name, value in loaded.items():
        if isinstance(value, datetime):
            loaded[name] = value.astimezone(UTC)
    wire = schema.dump(loaded)
    return loaded, wire


def load_inspection(fields: dict) -> tuple[dict, dict]:
    """An inspection's device fields loaded (Python values) and in wire form (for comparing)."""
    try:
        loaded = load_inspection_fields(fields)
    except ma.ValidationError as exc:
        raise invalid(exc.normalized_messages()) from None
    return loaded, inspection_fields_wire(loaded)


def wgs84_location(
    location: dict | None, *, with_accuracy: bool = True
) -> tuple[dict | None, dict | None]:
    """A device location in wire form as WGS-84, and what the device sent if it was not."""
    if location is None:
        return None, None
    crs = location.get("crs") or "wgs84"
    lon, lat = to_wgs84(location["lon"], location["lat"], crs)
    stored = {"lon": round(lon, 7), "lat": round(lat, 7)}
    if with_accuracy:
        stored |= {"accuracy_m": location.get("accuracy_m"), "crs": "wgs84"}
    original = (
        None if crs == "wgs84" else {"lon": location["lon"], "lat": location["lat"], "crs": crs}
    )
    return stored, original


def _location_as_sent(conflicts: list, sent: dict | None) -> list:
    """Merge conflicts with a device's ``location`` logged as the device sent it, when that was
    in GCJ-02 or BD-09 (``sent``; None: it was WGS-84, logged as the merge compared it).

    The merge compares points in WGS-84, but the conflict log keeps the point a leader may
    accept: logged converted, accepting it wrote the device's point without what the device
    sent (``location.original``), which applying the same point from a push keeps. The
    resolution converts it again, as a push does."""
    if sent is None:
        return conflicts
    return [
        dataclasses.replace(found, client=sent) if found.field == "location" else found
        for found in conflicts
    ]


def write_version(
    entity: str,
    record,
    data: dict,
    changed: list[str],
    ctx: PushContext | None,
    change: Change | None,
    actor=None,
    version: int | None = None,
) -> None:
    """Snapshot ``record`` as ``data`` at ``version`` (default: ``record.version``)."""
    actor = ctx.actor if ctx else actor
    values = version_values(
        entity,
        record,
        data,
        changed,
        user_id=actor.user_id,
        device_id=ctx.device_id if ctx else actor.device_id,
        at=ctx.now if ctx else datetime.now(UTC),
        change_id=change.change_id if change else None,
        hlc=str(change.hlc) if change else None,
        version=version,
    )
    if ctx is None:
        db.session.execute(sa.insert(RecordVersion.__table__), [values])
        return
    # Written now or with the batch (a push defers it); either way a later change of the batch
    # based on this version finds it where the batch keeps its bases (``ctx.cache``).
    ctx.write_rows(RecordVersion.__table__, [values])
    ctx.cache[("base", entity, record.id, values["version"])] = data


def base_snapshot(entity: str, record_id: uuid.UUID, version: int) -> dict | None:
    return db.session.scalar(
        sa.select(RecordVersion.data).where(
            RecordVersion.entity == entity,
            RecordVersion.record_id == record_id,
            RecordVersion.version == version,
        )
    )


@dataclass(frozen=True)
class LoggedConflict:
    id: uuid.UUID
    field: str | None
    kept: str


def log_conflict(
    ctx: PushContext,
    change: Change,
    entity: str,
    record_id,
    squadron_id,
    kind: ConflictKind,
    field: str | None,
    base,
    server,
    client,
    kept: str,
    version: int | None,
) -> LoggedConflict:
    """Put a value the merge did not keep into the conflict log.

    The row is written with the push's other rows (nothing reads the log while a batch is
    applied), or at once outside a batch."""
    conflict_id = uuid.uuid4()
    ctx.write_rows(
        Conflict.__table__,
        [
            {
                "id": conflict_id,
                "entity": entity,
                "record_id": record_id,
                "squadron_id": squadron_id,
                "field": field,
                "kind": kind,
                "base_value": base,
                "server_value": server,
                "client_value": client,
                "kept": kept,
                "record_version": version,
                "change_id": change.change_id,
                "device_id": ctx.device_id,
                "user_id": ctx.actor.user_id,
                "created_at": ctx.now,
                "status": "open",
            }
        ],
    )
    return LoggedConflict(conflict_id, field, kept)


def log_field_conflicts(
    ctx: PushContext, change: Change, entity: str, record, found, version: int
) -> list:
    """Log each :class:`sync.merge.FieldConflict` of a merge against ``record`` at
    ``version`` (the version the change gives it)."""
    return [
        log_conflict(
            ctx,
            change,
            entity,
            record.id,
            record.squadron_id,
            ConflictKind.field,
            c.field,
            c.base,
            c.server,
            c.client,
            c.kept,
            version,
        )
        for c in found
    ]


def write_tombstone(entity: str, record, squadron_id: int | None, actor_id) -> None:
    """Note that ``record`` (of ``squadron_id``) is deleted: pull serves ``op: delete`` in its
    place in the change order."""
    write_tombstones(
        entity,
        [SimpleNamespace(id=record.id, version=record.version, squadron_id=squadron_id)],
        actor_id,
    )


def write_tombstones(entity: str, records, actor_id) -> None:
    """:func:`write_tombstone` for each of ``records`` (anything with ``id``, ``version`` and
    ``squadron_id``), their change numbers taken at once."""
    if not records:
        return
    first = allocate(db.session, _counter(), len(records))
    db.session.add_all(
        Tombstone(
            entity=entity,
            record_id=record.id,
            squadron_id=record.squadron_id,
            change_seq=first + offset,
            version=record.version + 1,
            deleted_by_id=actor_id,
        )
        for offset, record in enumerate(records)
    )


def delete_inspection(actor, inspection: Inspection) -> int:
    """Delete ``inspection`` for the server and for every device that holds it; returns the
    version its tombstone carries. Every deletion of an inspection goes through here (a
    device's delete, a leader accepting one from the conflict log).

    Its photos go with it (``ON DELETE CASCADE``), so each gets a tombstone and an audit entry
    of its own: a device holds photo metadata apart from the inspection, and without a
    tombstone nothing would ever tell it that the photo is gone. Tombstones reach the
    inspection's squadron; its officers from other squadrons, who read it through their
    officer links, get a user exit for each record instead.
    """
    # The record as it was deleted is in its entry: nothing else keeps it once it is gone.
    audit.record(
        actor, "inspection.delete", "inspection", inspection.id, before=inspection_wire(inspection)
    )
    photos = _photos_of(inspection.id)
    elsewhere = members_elsewhere(inspection.officer_ids, inspection.squadron_id)
    write_tombstones("photo", photos, actor.user_id)
    record_left_users("photo", [_deleted(p) for p in photos], elsewhere, actor.user_id)
    for photo in photos:
        audit.record(actor, "photo.delete", "photo", photo.id, before=photo_wire(photo))
    write_tombstone("inspection", inspection, inspection.squadron_id, actor.user_id)
    record_left_users("inspection", [_deleted(inspection)], elsewhere, actor.user_id)
    version = inspection.version + 1
    db.session.delete(inspection)
    db.session.flush()
    return version


def delete_photo(actor, photo: Photo) -> int:
    """Delete ``photo`` (its metadata) for the server and for every device that holds it:
    its squadron's, and those of its inspection's officers from other squadrons, with its audit
    entry (the metadata as it was deleted). Returns the version its tombstone carries."""
    audit.record(actor, "photo.delete", "photo", photo.id, before=photo_wire(photo))
    inspection = db.session.get(Inspection, photo.inspection_id)
    elsewhere = members_elsewhere(inspection.officer_ids, inspection.squadron_id)
    write_tombstone("photo", photo, photo.squadron_id, actor.user_id)
    record_left_users("photo", [_deleted(photo)], elsewhere, actor.user_id)
    version = photo.version + 1
    db.session.delete(photo)
    db.session.flush()
    return version


def _photos_of(inspection_id) -> list[sa.Row]:
    """The inspection's photos as rows of their table (``id``, ``version``, ``squadron_id``
    and the metadata their audit entries hold when they are deleted)."""
    table = Photo.__table__
    return db.session.execute(
        sa.select(table).where(table.c.inspection_id == inspection_id).order_by(table.c.id)
    ).all()


def _deleted(record) -> SimpleNamespace:
    """``record`` as its tombstone names it: its id and the version the delete gives it."""
    return SimpleNamespace(id=record.id, version=record.version + 1)


def _counter():
    from fieldapp.db import change_counter

    return change_counter


def tombstone_of(entity: str, record_id) -> Tombstone | None:
    return db.session.get(Tombstone, (entity, record_id))


def tombstone_in_scope(ctx: PushContext, tombstone: Tombstone) -> bool:
    """Whether the deleted record is the caller's to know of: in its squadron, or as the one
    who deleted it, or an admin, or as one of its officers from another squadron (who read it
    as their own: a co-officer's offline edit of it waits beside the deletion as anyone's)."""
    user = ctx.actor.user
    return (
        user.role is Role.admin
        or tombstone.squadron_id == user.squadron_id
        or tombstone.deleted_by_id == user.id
        or _left_with_the_deletion(tombstone, user.id)
    )


def _left_with_the_deletion(tombstone: Tombstone, user_id) -> bool:
    """Whether the deletion took the record from ``user_id`` as their own from another
    squadron: the deletion wrote them a user exit at the tombstone's version
    (:func:`delete_inspection`, :func:`delete_photo`). An exit of an earlier version is of an
    inspection they had stopped being an officer of before it was deleted."""
    exit_ = db.session.get(UserExit, (tombstone.entity, tombstone.record_id, user_id))
    return exit_ is not None and exit_.version == tombstone.version


def check_tombstone_scope(ctx: PushContext, tombstone: Tombstone) -> None:
    """A change of a deleted record is the caller's to make only where it is in scope
    (:func:`tombstone_in_scope`); else 403, as any out-of-scope write, and nothing about the
    record (its version) is told."""
    if not tombstone_in_scope(ctx, tombstone):
        raise Rejected(APIError(403, "forbidden", "this record is not in your scope"))


def lock(model, record_id, ctx: PushContext | None = None, entity: str | None = None):
    """Load a record for update: concurrent pushes to it take turns instead of racing.

    With the batch's context, a record known not to exist is not looked up again; a concurrent
    create of the same id then fails on the primary key and is answered as a retryable conflict.
    """
    if ctx is not None and (entity, record_id) not in ctx.existing:
        return None
    if ctx is not None and (entity, record_id) in ctx.records:
        return ctx.records[entity, record_id]  # locked with the batch's other records
    return db.session.scalar(
        sa.select(model).where(sa.inspect(model).primary_key[0] == record_id).with_for_update()
    )


# -- inspections ---------------------------------------------------------------------------------

_INSPECTION_INPUT = InspectionFieldsArgs()
INSPECTION_FIELDS = tuple(_INSPECTION_INPUT.fields)
INSPECTION_RULES = {name: Rule.LWW for name in INSPECTION_FIELDS} | {
    "photo_ids": Rule.SET,
    "answers": Rule.ITEMS,
}


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def _str(value) -> str | None:
    return None if value is None else str(value)


def inspection_wire(inspection) -> dict:
    """The inspection as devices read it: what ``InspectionSchema`` dumps, built directly.

    ``inspection`` is the ORM object or a plain row of the table. Marshmallow's field-by-field
    dump costs ten times more; ``tests/test_sync_wire.py`` holds the two to the same output.
    """
    location = {
        "lon": inspection.lon,
        "lat": inspection.lat,
        "accuracy_m": inspection.accuracy_m,
        "crs": "wgs84",
    }
    if inspection.location_original:
        location["original"] = inspection.location_original
    return {
        "id": str(inspection.id),
        "version": inspection.version,
        "target_id": str(inspection.target_id),
        "squadron_id": inspection.squadron_id,
        "checklist_id": inspection.checklist_id,
        "checklist_version": inspection.checklist_version,
        "officer_ids": list(inspection.officer_ids),
        "origin": _str(inspection.origin),
        "task_id": _str(inspection.task_id),
        "draw_id": _str(inspection.draw_id),
        "started_at": _iso(inspection.started_at),
        "ended_at": _iso(inspection.ended_at),
        "location": location,
        "answers": inspection.answers,
        "findings": inspection.findings,
        "outcome": _str(inspection.outcome),
        "rectification_deadline": _iso(inspection.rectification_deadline),
        "legal_basis": inspection.legal_basis,
        "follow_up_of": _str(inspection.follow_up_of),
        "photo_ids": [str(p) for p in inspection.photo_ids or []],
        "status": _str(inspection.status),
        "review": {
            "status": _str(inspection.review_status),
            "comment": inspection.review_comment,
            "reviewed_by": _str(inspection.reviewed_by_id),
            "reviewed_at": _iso(inspection.reviewed_at),
        },
        "score": inspection.score,
        "flags": list(inspection.flags or []),
        "received_at": _iso(inspection.received_at),
        "submitted_at": _iso(inspection.submitted_at),
    }


def inspection_device_view(wire: dict) -> dict:
    """The device-writable fields of a stored inspection, in the form devices send them."""
    view = {name: wire.get(name) for name in INSPECTION_FIELDS}
    location = wire.get("location") or {}
    view["location"] = {
        "lon": location.get("lon"),
        "lat": location.get("lat"),
        "accuracy_m": location.get("accuracy_m"),
        "crs": "wgs84",
    }
    return view


class Handler:
    """How one entity's changes are applied (``apply`` raises :class:`Rejected` or
    :class:`APIError` for a change it refuses)."""

    entity: str
    model: type | None

    def edited_record(self, ctx: PushContext, change: Change):
        """The record of the batch's loaded ones that ``change`` edits, when ``apply`` refuses
        such a change only before writing anything, so that a batch may apply it without a
        savepoint of its own (see :func:`sync.engine.apply_one`); else None."""
        return None

    def _log_waiting(
        self,
        ctx: PushContext,
        change: Change,
        kind: ConflictKind,
        squadron_id: int,
        server,
        client,
        version: int | None,
        action: str | None = None,
    ) -> dict:
        """A change not applied, kept whole in the conflict log (the server's side kept) with
        its audit entry (``<entity>.<action or kind>_logged``); the answer says ``conflict`` at
        ``version``."""
        conflict = log_conflict(
            ctx,
            change,
            self.entity,
            change.id,
            squadron_id,
            kind,
            None,
            None,
            server,
            client,
            "server",
            version,
        )
        audit.record(
            ctx.actor,
            f"{self.entity}.{action or kind.value}_logged",
            self.entity,
            change.id,
            after={"conflict_id": str(conflict.id)},
        )
        return result(change, "conflict", version, [conflict])

    def _audit_conflicts(self, ctx: PushContext, record_id, conflicts: list) -> None:
        """The audit entry of an edit whose only effect is ``conflicts`` in the log: every
        field it sent that the server did not already hold lost to a later value the server
        keeps. (An edit that writes a version is audited as that write.)"""
        audit.record(
            ctx.actor,
            f"{self.entity}.conflict_logged",
            self.entity,
            record_id,
            after={"conflict_ids": [str(c.id) for c in conflicts]},
        )


class InspectionHandler(Handler):
    entity = "inspection"
    model = Inspection

    def edited_record(self, ctx: PushContext, change: Change) -> Inspection | None:
        """An edit of an inspection the batch loaded: every refusal (scope, officers,
        versions, checks) comes before ``_update`` or ``_amendment`` writes."""
        if change.op != "upsert" or (self.entity, change.id) not in ctx.existing:
            return None
        return ctx.records.get((self.entity, change.id))

    def apply(self, ctx: PushContext, change: Change) -> dict:
        server_only = sorted(set(change.fields) & set(SERVER_FIELDS))
        if server_only:
            raise invalid({name: ["read-only: set by the server"] for name in server_only})
        record = lock(Inspection, change.id, ctx, self.entity)
        if record is None:
            if change.op == "delete":
                return self._delete_missing(ctx, change)
            if (self.entity, change.id) in ctx.tombstoned:
                # An edit of it, or its create sent again (a pad that lost the answer, or
                # reset): either way what it holds waits beside the deletion, not refused.
                return self._edit_of_deleted(ctx, change)
            return self._create(ctx, change)
        # Out of the officer's scope too: an out-of-scope write is a 403 (API.md), and only
        # the inspection's officers may write it, wherever it is.
        if not ctx.policy.allows("inspection.edit", record):
            raise Rejected(APIError(403, "forbidden", "only the inspection's officers edit it"))
        refuse_base_ahead(change, record.version)
        if change.op == "delete":
            return self._delete(ctx, change, record)
        return self._update(ctx, change, record)

    # creating ------------------------------------------------------------------------------

    def prepare_create(self, ctx: PushContext, change: Change) -> Prepared:
        """Check a create and return the rows it writes (it reads, but writes nothing)."""
        if (self.entity, change.id) in ctx.tombstoned:
            raise Rejected(APIError(404, "not_found", "this inspection was deleted"))
        if change.base_version is not None:
            # The device thinks the record exists; its create has not arrived yet.
            raise Rejected(
                APIError(404, "not_found", "inspection not found (send its create first)")
            )
        missing = [name for name in CREATE_REQUIRED if name not in change.fields]
        if missing:
            raise invalid({name: ["Missing data for required field."] for name in missing})
        loaded, wire = load_inspection(change.fields)
        wire["location"], original = wgs84_location(wire["location"])
        state = {name: wire.get(name) for name in INSPECTION_FIELDS}
        target = self._check(ctx, loaded, state, creating=True, record_id=change.id)
        # The row is built as plain values: an ORM object per create cost more than its checks.
        row = dict.fromkeys(_INSPECTION_COLUMNS)
        row.update(
            {name: value for name, value in loaded.items() if name not in _WRITTEN_AS_WIRE},
            id=change.id,
            squadron_id=target.squadron_id,
            created_by_id=ctx.actor.user_id,
            device_id=ctx.device_id,
            received_at=ctx.now,
            updated_at=ctx.now,
            answers=wire["answers"],
            findings=wire.get("findings") or "",
            photo_ids=wire.get("photo_ids") or [],
            review_status=ReviewStatus.pending,
            flags=["clock_skew"] if change.clock_skewed else [],
            version=1,
        )
        _set_location(row, wire["location"], original)
        if row["status"] is InspectionStatus.submitted:
            row["submitted_at"] = row["first_submitted_at"] = ctx.now
            ctx.inspected_targets.add(row["target_id"])
        hlc = str(change.hlc)
        clocks = dict.fromkeys(wire, hlc)
        clocks.update((f"answers.{code}", hlc) for code in wire["answers"])
        row["field_clocks"] = clocks
        row["field_versions"] = {}  # every field as the create wrote it
        officer_ids = loaded["officer_ids"]
        row["officer_ids"] = [str(officer_id) for officer_id in officer_ids]
        data = inspection_wire(SimpleNamespace(**row))
        prepared = Prepared(result=result(change, "applied", 1), sequenced=[row])
        prepared.add(Inspection.__table__, row)
        for row in officer_rows(change.id, target.squadron_id, officer_ids):
            prepared.add(inspection_officers, row)
        prepared.add(
            RecordVersion.__table__,
            version_values(
                self.entity,
                SimpleNamespace(id=change.id, version=1),
                data,
                list(wire),
                user_id=ctx.actor.user_id,
                device_id=ctx.device_id,
                at=ctx.now,
                change_id=change.change_id,
                hlc=str(change.hlc),
            ),
        )
        prepared.add(
            AuditEntry.__table__,
            audit.entry_values(
                ctx.actor,
                "inspection.create",
                self.entity,
                change.id,
                after={k: data.get(k) for k in ("target_id", "status", "outcome", "officer_ids")},
            ),
        )
        return prepared

    def _create(self, ctx: PushContext, change: Change) -> dict:
        prepared = self.prepare_create(ctx, change)
        write_prepared([prepared])
        return prepared.result

    # updating ------------------------------------------------------------------------------

    def _update(self, ctx: PushContext, change: Change, record: Inspection) -> dict:
        current = inspection_wire(record)
        target_before = record.target_id
        if record.review_status is ReviewStatus.approved:
            return self._amendment(ctx, change, record, current)
        _, wire = load_inspection(change.fields)
        original = sent_location = None
        if "location" in wire:
            sent_location = wire["location"]
            wire["location"], original = wgs84_location(sent_location)
        status = wire.pop("status", None)
        server = inspection_device_view(current)
        fresh = change.base_version == record.version
        snapshot = (
            None
            if fresh or change.base_version is None
            else ctx.cached(
                ("base", self.entity, record.id, change.base_version),
                lambda: base_snapshot(self.entity, record.id, change.base_version),
            )
        )
        base = server if fresh else snapshot
        readded, restored = {}, {}
        if base is not None and not fresh:
            base = inspection_device_view(base)
            readded, restored = set_history(
                self.entity,
                record,
                change.base_version,
                base,
                removals(INSPECTION_RULES, base, server, wire),
                restorations(INSPECTION_RULES, base, server, wire),
                ctx.device_id,
            )
        merged = merge_fields(
            INSPECTION_RULES,
            base,
            server,
            wire,
            change.hlc,
            record.field_clocks or {},
            frozenset() if fresh else written_since(record, change.base_version),
            readded,
            restored,
        )
        values = dict(merged.values)
        state = {**server, **values}
        transition = self._status_change(record, status)
        if transition and not (fresh or _saw_the_return(record, current, snapshot)):
            # Submitted on a base from before the leader's return: the device submitted what
            # its officer saw (a draft, or the record before an earlier return), not the
            # returned record. Applied, it would clear the return unread; it is logged instead.
            transition = False
            merged.conflicts.append(_stale_submission(current, snapshot))
        if transition:
            state["status"] = "submitted"
        needed = {k: state[k] for k in CHECKED_FIELDS if state.get(k) is not None}
        # One load for what the checks read and what is written (values win: they are newer).
        loaded = load_inspection_fields(_loadable(needed | values))
        self._check(ctx, loaded, state, creating=False, changed=set(values), record_id=record.id)
        version_before = record.version
        changed = list(values) + _reasserted(merged, values)
        if values:
            self._write(
                record,
                values,
                {name: loaded[name] for name in values if name in loaded},
                original if "location" in values else None,
                ctx,
            )
        if transition:
            if record.state is InspectionState.returned:
                changed.append("review")  # the leader's return is cleared: pending again
            record.transition(ReviewAction.submit, by=ctx.actor.user_id, at=ctx.now)
            changed.append("status")
        retargeted = record.target_id != target_before
        case = case_follows_target(ctx.actor, record) if retargeted else None
        if record.status is InspectionStatus.submitted and (
            transition or values.keys() & {"started_at", "target_id"}
        ):
            # The target's last inspection moved: re-assessed when the batch ends (push).
            ctx.inspected_targets.update({target_before, record.target_id})
            if retargeted:
                # Approved before and reopened, it (or its case) may have raised the target
                # it left.
                ctx.corrected.add(("inspection", record.id))
                if case is not None:
                    ctx.corrected.add(("case", case.id))
        if change.clock_skewed and "clock_skew" not in (record.flags or []):
            record.flags = [*(record.flags or []), "clock_skew"]
            changed.append("flags")
        if changed:
            record.field_clocks = {**(record.field_clocks or {}), **merged.clocks}
            stamp_versions(record, merged.clocks, version_before + 1)
        # Not flushed here: a batch writes its edits together (see edited_record).
        # The flush takes a version when a column's value changed, so that one is predicted.
        version = version_before + 1 if _column_changed(record) else version_before
        found = _location_as_sent(merged.conflicts, sent_location if original else None)
        conflicts = log_field_conflicts(ctx, change, self.entity, record, found, version)
        if version != version_before:
            # Every version has its snapshot, or a later edit based on it would find no base.
            data = inspection_wire(record) | {"version": version}
            write_version(self.entity, record, data, changed, ctx, change, version=version)
            audit.record(
                ctx.actor,
                "inspection.update",
                self.entity,
                record.id,
                before={k: current.get(k) for k in changed},
                after={k: data.get(k) for k in changed},
            )
        elif conflicts:
            self._audit_conflicts(ctx, record.id, conflicts)
        return result(change, edited_status(change, version_before, conflicts), version, conflicts)

    def _status_change(self, record: Inspection, status: str | None) -> bool:
        """Whether the device submits (or resubmits) the record; refuses going back to draft.

        The state table decides (``fieldapp.inspections.models.TRANSITIONS``): a draft or a
        returned record is submitted; one already waiting for review stays as it is.
        """
        if status is None:
            return False
        if status == "draft":
            if record.status is InspectionStatus.submitted:
                raise invalid({"status": ["a submitted inspection cannot go back to draft"]})
            return False
        return record.can(ReviewAction.submit)

    def _amendment(
        self, ctx: PushContext, change: Change, record: Inspection, current: dict
    ) -> dict:
        """An approved record is frozen: the device's edit waits in the conflict log (checked
        first as any edit is, so that what waits there can be accepted)."""
        kind = ConflictKind.delete if change.op == "delete" else ConflictKind.amendment
        if kind is ConflictKind.amendment:
            if not change.fields:
                return unchanged(change, record.version)
            self._check_amendment(ctx, change, record, current)
        server = (
            None
            if change.op == "delete"
            else {name: current.get(name) for name in change.fields if name in current}
        )
        return self._log_waiting(
            ctx, change, kind, record.squadron_id, server, change.fields or None, record.version
        )

    def _check_amendment(
        self, ctx: PushContext, change: Change, record: Inspection, current: dict
    ) -> None:
        """Refuse, field by field, an amendment that could not be accepted: the checks of an
        edit (:meth:`_check`), run on the record as accepting it would leave it (its fields
        written over the record's, answer items over the record's items; status unchanged,
        as a resolution leaves it: see ``sync.resolution``)."""
        _, wire = load_inspection(change.fields)
        if wire.pop("status", None) == "draft":
            raise invalid({"status": ["a submitted inspection cannot go back to draft"]})
        server = inspection_device_view(current)
        if "answers" in wire:
            wire["answers"] = {**(server.get("answers") or {}), **wire["answers"]}
        state = {**server, **wire, "status": current["status"]}
        needed = {k: state[k] for k in CHECKED_FIELDS if state.get(k) is not None}
        loaded = load_inspection_fields(_loadable(needed | wire))
        self._check(ctx, loaded, state, creating=False, changed=set(wire), record_id=record.id)

    # deleting ------------------------------------------------------------------------------

    def _delete(self, ctx: PushContext, change: Change, record: Inspection) -> dict:
        if (
            record.status is InspectionStatus.submitted
            or record.review_status is ReviewStatus.approved
            or change.base_version != record.version
        ):
            server = {"version": record.version, "status": record.status.value}
            db.session.flush()
            return self._log_waiting(
                ctx, change, ConflictKind.delete, record.squadron_id, server, None, record.version
            )
        referenced = references_to(record.id)
        if referenced:
            # Refused for good, naming what holds on to it: the database would refuse the
            # delete anyway, and as a version_conflict the device would send it again and again.
            instead = "correct it with an edit, or first change what refers to it"
            raise invalid({"op": [not_deleted_because(referenced, instead)]})
        return result(change, "applied", delete_inspection(ctx.actor, record))

    def _edit_of_deleted(self, ctx: PushContext, change: Change) -> dict:
        """An edit made offline of a record deleted meanwhile, or its create arriving after
        the deletion: it cannot apply, and it is not lost either: it waits in the conflict log
        (``kind: delete``) with what it wrote."""
        tombstone = tombstone_of(self.entity, change.id)
        check_tombstone_scope(ctx, tombstone)
        load_inspection(change.fields)  # bad input is refused field by field all the same
        server = {"deleted": True, "version": tombstone.version}
        return self._log_waiting(
            ctx,
            change,
            ConflictKind.delete,
            tombstone.squadron_id,
            server,
            change.fields,
            tombstone.version,
            action="edit_of_deleted",
        )

    def _delete_missing(self, ctx: PushContext, change: Change) -> dict:
        tombstone = tombstone_of(self.entity, change.id)
        if tombstone is None:
            raise Rejected(APIError(404, "not_found", "inspection not found"))
        check_tombstone_scope(ctx, tombstone)
        return result(change, "applied", tombstone.version)

    # checks and writes ---------------------------------------------------------------------

    def _check(
        self,
        ctx: PushContext,
        loaded: dict,
        state: dict,
        *,
        creating: bool,
        changed: set[str] | None = None,
        record_id: uuid.UUID | None = None,
    ) -> Target | sa.Row:
        """References and submission rules on the record (``record_id``) as it would be; 422
        field by field. Returns the target (what :func:`sync.engine.target_refs` reads of it).

        A target or followed-up inspection it names that is not there, in the caller's scope,
        is 404 ``not_found`` when nothing else is wrong (see :func:`_not_there`): it may yet
        arrive (a new shop reported in a batch that comes later), and the change, not
        remembered, is applied when sent again."""
        errors: dict[str, Any] = {}
        missing: dict[str, list[str]] = {}
        check = (lambda name: True) if creating else (lambda name: name in changed)
        target_id = loaded.get("target_id")
        target = (
            ctx.cached(("target", target_id), lambda: target_refs(ctx, [target_id]).get(target_id))
            if target_id
            else None
        )
        if target is None and creating and target_id:
            target = _target_left_after(ctx, target_id, loaded.get("started_at"))
        if target is None and check("target_id"):
            missing["target_id"] = ["no such target in your scope"]
        version_key = (loaded.get("checklist_id"), loaded.get("checklist_version"))
        version = ctx.cached(("checklist", version_key), lambda: _checklist_version(version_key))
        if version is None:
            if check("checklist_id") or check("checklist_version"):
                errors["checklist_version"] = ["no such checklist version"]
        else:
            if target is not None and version.kind is not target.kind:
                errors["checklist_id"] = [f"not a checklist for a {target.kind.value}"]
            if check("answers") or check("checklist_version"):
                codes = item_codes(ctx, version.checklist_id, version.version)
                unknown = sorted(set(state.get("answers") or {}) - codes)
                if unknown:
                    errors["answers"] = {
                        code: ["not an item of this checklist version"] for code in unknown
                    }
        if check("officer_ids"):
            officer_ids = loaded.get("officer_ids") or []
            found = ctx.cached(
                ("officers", tuple(officer_ids)),
                lambda: set(
                    db.session.scalars(
                        sa.select(User.id).where(
                            User.id.in_(officer_ids),
                            User.active.is_(True),
                            User.role.in_([Role.officer, Role.leader]),
                        )
                    )
                ),
            )
            gone = set(officer_ids) - found
            if gone and loaded.get("started_at") is not None:
                # A colleague who left the force, or was made a supervisor, after the
                # inspection was made still inspected that day (双人执法).
                found = found | ctx.cached(
                    ("officers_at", tuple(sorted(gone)), loaded["started_at"]),
                    lambda: officers_at(gone, loaded["started_at"]),
                )
            if set(officer_ids) - found:
                errors["officer_ids"] = [
                    "unknown or inactive officers: "
                    + ", ".join(str(i) for i in officer_ids if i not in found)
                ]
            elif creating and ctx.actor.user_id not in officer_ids:
                raise Rejected(
                    APIError(403, "forbidden", "you must be one of the inspection's officers")
                )
        task_id = loaded.get("task_id")
        if (
            check("task_id")
            and task_id
            # (the push preloads the batch's in one query)
            and not ctx.cached(("task", task_id), lambda: task_id in nameable_tasks(ctx, [task_id]))
        ):
            # As an id that names no task: another squadron's task is not revealed to exist.
            errors["task_id"] = ["no such task"]
        if not creating and (check("task_id") or check("target_id")):
            errors |= _task_left_errors(record_id, loaded)
        followed = loaded.get("follow_up_of")
        if followed and (check("follow_up_of") or check("target_id") or check("started_at")):
            problem = _follow_up_problem(ctx, followed, record_id, target, loaded.get("started_at"))
            if problem == NO_SUCH_FOLLOWED:
                missing["follow_up_of"] = [problem]
            elif problem:
                errors["follow_up_of"] = [problem]
        deadline, started = loaded.get("rectification_deadline"), loaded.get("started_at")
        if (
            (check("rectification_deadline") or check("started_at"))
            and deadline is not None
            and started is not None
            and deadline < local_date(started)
        ):
            errors["rectification_deadline"] = [
                f"before the inspection's day ({local_date(started).isoformat()}, Shanghai)"
            ]
        if state.get("status") == "submitted":
            errors |= _submission_errors(state, loaded)
        if errors:
            raise invalid(errors | missing)
        if missing:
            raise _not_there(missing)
        return target

    def _write(
        self,
        inspection: Inspection,
        wire: dict,
        loaded: dict,
        original: dict | None,
        ctx: PushContext | None = None,
        actor_id=None,
    ) -> None:
        """Set the fields ``loaded`` (``wire``: the same in wire form) on ``inspection``."""
        actor_id = ctx.actor.user_id if ctx is not None else actor_id
        for name, value in loaded.items():
            if name == "location":
                location = {}
                _set_location(location, wire["location"], original)
                for column, part in location.items():
                    setattr(inspection, column, part)
            elif name == "officer_ids":
                write_officers(inspection, value, actor_id)
            elif name in ("answers", "photo_ids"):
                setattr(inspection, name, wire[name])
            else:
                setattr(inspection, name, value)


#: Device fields stored in their wire form (or in columns of their own), not as loaded.
_WRITTEN_AS_WIRE = frozenset(("location", "officer_ids", "answers", "photo_ids"))
_INSPECTION_COLUMNS = tuple(column.key for column in Inspection.__table__.columns)


def _set_location(columns: dict, stored: dict, original: dict | None) -> None:
    """The location columns from a WGS-84 location in wire form and what the device sent."""
    columns["lon"], columns["lat"] = stored["lon"], stored["lat"]
    columns["accuracy_m"] = stored.get("accuracy_m")
    columns["location_crs"] = CoordinateSystem((original or {}).get("crs", "wgs84"))
    columns["location_original"] = original


def officer_rows(inspection_id, squadron_id: int, officer_ids: list) -> list[dict]:
    """The inspection's officer links, in the order the device gave (the first one leads)."""
    return [
        {
            "inspection_id": inspection_id,
            "user_id": officer_id,
            "position": position,
            "squadron_id": squadron_id,
        }
        for position, officer_id in enumerate(officer_ids)
    ]


def write_officers(inspection: Inspection, officer_ids: list, actor_id=None) -> None:
    """Replace the inspection's officers, order included: its list of ids, and the links.

    The links are rewritten as rows: assigning the relationship would keep the links of a
    reordered list as they were, and give new ones no place in the order.

    Officers from other squadrons read the inspection and its photos through their links
    alone: one dropped from the list is told to drop them (a user exit for each), and one
    added gets the photos (renumbered: their own changes may lie behind that officer's cursor).
    """
    before = set(inspection.officer_ids or ())
    after = {str(officer_id) for officer_id in officer_ids}
    if before != after:
        _officers_moved(inspection, before - after, after - before, actor_id)
    inspection.officer_ids = [str(officer_id) for officer_id in officer_ids]
    links = inspection_officers.c
    # Not flushing the edit half-way: every UPDATE of the record would take a version.
    with db.session.no_autoflush:
        db.session.execute(
            sa.delete(inspection_officers).where(links.inspection_id == inspection.id)
        )
        db.session.execute(
            sa.insert(inspection_officers),
            officer_rows(inspection.id, inspection.squadron_id, officer_ids),
        )
    db.session.expire(inspection, ["officers"])


def _officers_moved(inspection: Inspection, dropped: set, added: set, actor_id) -> None:
    """Tell the devices of officers from other squadrons who were ``dropped`` from the
    inspection to drop it and its photos; bring the photos to those ``added``."""
    # Not flushing the edit half-way: its own flush gives it its version and change number
    # (for a batch's edits, at the end of the batch: fieldapp.db.flush_edits).
    with db.session.no_autoflush:
        elsewhere = set(members_elsewhere(dropped | added, inspection.squadron_id))
        if not elsewhere:
            return
        photos = _photos_of(inspection.id)
        left = sorted(u for u in elsewhere if str(u) in dropped)
        record_left_users("inspection", [inspection], left, actor_id)
        record_left_users("photo", photos, left, actor_id)
        if photos and len(left) < len(elsewhere):
            # A new number only: the photo itself (version, updated_at) has not changed.
            first = allocate(db.session, _counter(), len(photos))
            table = Photo.__table__
            db.session.execute(
                sa.update(table)
                .where(table.c.id == sa.bindparam("photo_id"))
                .values(change_seq=sa.bindparam("seq"), updated_at=table.c.updated_at),
                [{"photo_id": p.id, "seq": first + n} for n, p in enumerate(photos)],
            )


def _task_left_errors(record_id, loaded: dict) -> dict:
    """422s for an edit that would take an inspection off the task its approval closed (its
    ``task_id``, or its target, which a task is closed only by an inspection of): the task
    would stay done by a record that no longer carries it. A done task has no way back
    (``fieldapp.tasks.operations``), so the inspection stays with it, as its delete is refused
    (``fieldapp.inspections.references``)."""
    task = closed_task(record_id) if record_id is not None else None
    if task is None:
        return {}
    closed = f"its approval closed task {task.id}{quoted(task.note)}, and a done task stays done"
    if loaded.get("task_id") != task.id:
        return {"task_id": [f"{closed}: the inspection keeps its task_id"]}
    if loaded.get("target_id") != task.target_id:
        return {"target_id": [f"{closed}: the inspection stays on the task's target"]}
    return {}


def case_follows_target(actor: Actor, inspection: Inspection) -> Case | None:
    """The case (立案) ``inspection``'s approval opened, moved to the target the inspection now
    names, with its audit entry ``case.move``; None if it opened none (or the case is there).

    A case is about the shop or site the inspection found the violation at: left on the one the
    record was corrected away from, it would still count in that target's risk and stand in
    its file (一店一档) for a violation found elsewhere. Every correction of an inspection's
    target, pushed or accepted from the conflict log, calls this; the caller re-assesses both
    targets, naming the case as corrected (a rise it caused where it was goes)."""
    # Not flushing the edit half-way (a push batch writes its edits together).
    with db.session.no_autoflush:
        case = db.session.scalar(sa.select(Case).where(Case.inspection_id == inspection.id))
    if case is None or case.target_id == inspection.target_id:
        return None
    before = case.target_id
    case.target_id = inspection.target_id
    audit.record(
        actor,
        "case.move",
        "case",
        case.id,
        before={"target_id": str(before)},
        after={"target_id": str(inspection.target_id), "inspection_id": str(inspection.id)},
    )
    return case


def _target_left_after(ctx: PushContext, target_id, started_at) -> sa.Row | None:
    """The target ``target_id`` if it left the caller's squadron and the inspection begun at
    ``started_at`` was made in good faith, else None.

    An officer inspects a shop of their squadron offline; before the pad syncs, the shop moves
    to another squadron. The pad still shows the shop as theirs until it pulls the move (its
    scope exit), and an officer never loses an offline edit (DESIGN.md): an inspection begun
    before the move, or before the pad was served the move (:func:`sync.engine.removals_served`),
    is filed as every inspection of the target now is, in the target's squadron, and its
    officers read it as their own from there. One begun after the pad was told is refused: the
    officer knew the shop was no longer theirs. Asked only of a target not found in the
    caller's scope (the push preloads the batch's in one query).
    """
    if started_at is None:
        return None
    left = ctx.cached(
        ("target_left", target_id), lambda: left_target_refs(ctx, [target_id]).get(target_id)
    )
    if left is None:
        return None
    if left.left_at > started_at:
        return left
    served = removals_served(ctx)
    told = served is not None and served.change_seq >= left.exit_seq
    return left if not told or served.served_at > started_at else None


#: Why a follow-up names no inspection the push can find: none with that id, or one out of
#: the caller's scope (which the caller is not told of). It may yet arrive: 404, not
#: remembered. An inspection the caller reads, or its deletion, is told as it is: 422.
NO_SUCH_FOLLOWED = "no earlier inspection of this target with that id"


def _not_there(missing: dict[str, list[str]]) -> Rejected:
    """The refusal of a change naming records not there in the caller's scope (``missing``:
    why, by field): 404 ``not_found``, which is not remembered (``sync.engine.MAY_PASS``), so
    the change is applied when sent again after they arrived (out-of-order batches end as
    in-order ones do). A record out of the caller's scope gets the same answer as one that
    does not exist, so the answer tells nothing of what another squadron holds."""
    return Rejected(
        APIError(
            404,
            "not_found",
            "a record this change names is not there (yet) in your scope; send the change"
            " again once it has arrived",
            errors={"json": missing},
        )
    )


def _follow_up_problem(
    ctx: PushContext, followed_id, record_id, target, started_at=None
) -> str | None:
    """Why ``followed_id`` cannot be what the inspection ``record_id`` (of ``target``, started
    at ``started_at``) follows up: a follow-up (复查) checks an order already made on the same
    target, so it names another inspection of that target, started no later than itself, that
    ordered rectification (an inspection from before the order would settle it unchecked).

    :data:`NO_SUCH_FOLLOWED` only where the order may yet arrive (unknown, or out of the
    caller's scope, which is not revealed): an order the caller reads of another target, or
    one deleted in its scope, is a problem no retry can mend."""
    if record_id is not None and followed_id == record_id:
        return "an inspection cannot be its own follow-up"
    followed = db.session.get(Inspection, followed_id)
    if followed is None:
        tombstone = tombstone_of("inspection", followed_id)
        if tombstone is not None and tombstone_in_scope(ctx, tombstone):
            return "that inspection was deleted: there is no order left to follow up"
        return NO_SUCH_FOLLOWED
    if target is not None and followed.target_id != target.id:
        if ctx.policy.load_or_none(Inspection, followed_id) is None:
            return NO_SUCH_FOLLOWED
        return "that inspection is of another target: a follow-up checks an order on its own"
    if followed.outcome is not Outcome.rectification_ordered:
        return "that inspection ordered no rectification"
    if started_at is not None and started_at < followed.started_at:
        return (
            "that order was made after this inspection started "
            f"(the order's inspection started at {followed.started_at.isoformat()})"
        )
    return None


def _checklist_version(key: tuple) -> sa.Row | None:
    """The checklist version ``key`` (checklist id, version) with its checklist's kind, in one
    query (two ORM loads instead cost a thirtieth of a batch of creates)."""
    checklist_id, version = key
    if checklist_id is None or version is None:
        return None
    return db.session.execute(
        sa.select(ChecklistVersion.checklist_id, ChecklistVersion.version, Checklist.kind)
        .join(Checklist, Checklist.id == ChecklistVersion.checklist_id)
        .where(ChecklistVersion.checklist_id == checklist_id, ChecklistVersion.version == version)
    ).one_or_none()


#: What the reference and submission checks read (answers are checked by their keys only).
#: The fields an edit's checks read of the record as it would be.
CHECKED_FIELDS = (
    "target_id",
    "checklist_id",
    "checklist_version",
    "officer_ids",
    "task_id",
    "follow_up_of",
    "rectification_deadline",
    "started_at",
    "ended_at",
    "outcome",
    "status",
)


def _saw_the_return(record: Inspection, current: dict, snapshot: dict | None) -> bool:
    """Whether a device whose base is ``snapshot`` (None: not known) saw the leader's return
    the record holds now: its base is that return, or a version after it (the same review:
    a later return is another review, with its own time)."""
    return record.state is not InspectionState.returned or (
        snapshot is not None and snapshot.get("review") == current["review"]
    )


#: The review a (re)submission leaves: waiting for the leader again, the last one cleared.
_SUBMITTED_REVIEW = {"status": "pending", "comment": None, "reviewed_by": None, "reviewed_at": None}


def _stale_submission(current: dict, snapshot: dict | None) -> FieldConflict:
    """The conflict log entry of a submission made before the leader's return it would undo:
    on ``review``, the leader's return kept (the server's), the review the submission would
    have left (the device's). Accepting it resubmits the record (``sync.resolution``)."""
    return FieldConflict(
        "review",
        None if snapshot is None else snapshot.get("review"),
        current["review"],
        dict(_SUBMITTED_REVIEW),
        kept="server",
    )


def item_codes(ctx: PushContext, checklist_id: int, version: int) -> set[str]:
    """The item codes of a checklist version, read once a batch."""
    return ctx.cached(
        ("codes", (checklist_id, version)),
        lambda: set(
            db.session.scalars(
                sa.select(ChecklistItem.code).where(
                    ChecklistItem.checklist_id == checklist_id,
                    ChecklistItem.checklist_version == version,
                )
            )
        ),
    )


def _reasserted(merged: MergeResult, values: dict) -> list[str]:
    """The fields whose stored value the device wrote again, later than another writer: their
    value stays, their clock moves (see :func:`sync.merge.merge_lww`), and that is a version."""
    return sorted({key.partition(".")[0] for key in merged.clocks} - set(values))


def _column_changed(record) -> bool:
    """Whether flushing ``record`` would UPDATE it (and take a version): one of its columns
    holds another value than at the last flush. Only the attributes set since then are asked."""
    state = sa.inspect(record)
    columns = state.mapper.column_attrs
    return any(key in columns and state.attrs[key].history.added for key in state.committed_state)


def _loadable(values: dict) -> dict:
    """Wire values back into the shape the input schema loads."""
    loadable = {k: v for k, v in values.items() if k in INSPECTION_FIELDS}
    location = loadable.get("location")
    if location is not None:
        loadable["location"] = {
            k: location[k] for k in ("lon", "lat", "accuracy_m", "crs") if k in location
        }
    return loadable


def _submission_errors(state: dict, loaded: dict) -> dict:
    errors = {}
    if not state.get("outcome"):
        errors["outcome"] = ["required to submit"]
    if not loaded.get("ended_at"):
        errors["ended_at"] = ["required to submit"]
    elif loaded.get("started_at") and loaded["ended_at"] < loaded["started_at"]:
        errors["ended_at"] = ["before started_at"]
    if state.get("outcome") == "rectification_ordered" and not state.get("rectification_deadline"):
        errors["rectification_deadline"] = ["required when rectification is ordered"]
    if state.get("outcome") == "penalty_waived" and not (state.get("legal_basis") or "").strip():
        errors["legal_basis"] = ["required when the penalty is waived"]
    return errors


# -- targets -------------------------------------------------------------------------------------

_TARGET_INPUT = TargetFieldsArgs()
TARGET_FIELDS = tuple(name for name in _TARGET_INPUT.fields if name != "kind")
TARGET_RULES = {name: Rule.LWW for name in TARGET_FIELDS}


def target_device_view(target: Target) -> dict:
    return target.device_fields()


def target_base_view(snapshot: dict) -> dict:
    """A version snapshot of a target (:meth:`Target.version_fields`) as merges compare it: its
    device fields, the location without what the device sent (the same point in any system)."""
    view = {name: snapshot.get(name) for name in TARGET_FIELDS}
    if isinstance(view.get("location"), dict):
        view["location"] = {k: v for k, v in view["location"].items() if k != "original"}
    return view


class TargetHandler(Handler):
    """Officers report new shops and correct names, addresses and business types."""

    entity = "target"
    model = Target

    def apply(self, ctx: PushContext, change: Change) -> dict:
        if change.op == "delete":
            raise invalid({"op": ["devices cannot delete targets; ask the squadron's leader"]})
        target = lock(Target, change.id, ctx, self.entity)
        if target is None:
            return self._create(ctx, change)
        # A target seen through a task in another squadron is read, not corrected: the same
        # rule as PATCH /targets (its squadron's people, or an admin).
        if ctx.actor.user.role is not Role.admin and not ctx.policy.allows(
            "target.report", target.squadron_id
        ):
            raise Rejected(
                APIError(
                    403,
                    "forbidden",
                    "officers and leaders correct targets of their own squadron; admins any",
                )
            )
        refuse_base_ahead(change, target.version)
        return self._update(ctx, change, target)

    def _create(self, ctx: PushContext, change: Change) -> dict:
        if change.base_version is not None:
            raise Rejected(APIError(404, "not_found", "target not found (send its create first)"))
        squadron_id = ctx.actor.user.squadron_id
        if not ctx.policy.allows("target.report", squadron_id):
            raise Rejected(
                APIError(403, "forbidden", "officers and leaders report targets of their squadron")
            )
        loaded, wire = load_fields(_TARGET_INPUT, change.fields)
        kind = loaded.get("kind")
        required = ["kind", "name", "location"]
        if kind is TargetKind.shop:
            required.append("business_type")
        elif kind is TargetKind.site:
            required += ["scale", "phase"]
        errors = {
            name: ["Missing data for required field."] for name in required if name not in loaded
        }
        wrong = (
            ("permit_no", "scale", "phase")
            if kind is TargetKind.shop
            else ("business_type", "uscc")
        )
        errors |= {
            name: [f"not a field of a {kind.value}"] for name in wrong if kind and name in loaded
        }
        if errors:
            raise invalid(errors)
        location, original = wgs84_location(wire["location"], with_accuracy=False)
        values = {k: v for k, v in loaded.items() if k != "location"}
        target = Target(
            id=change.id,
            code=code_for(change.id, kind),
            squadron_id=squadron_id,
            lon=location["lon"],
            lat=location["lat"],
            location_original=original,
            **values,
        )
        target.field_clocks = {name: str(change.hlc) for name in wire}
        db.session.add(target)
        db.session.flush()
        write_version(self.entity, target, target.version_fields(), list(wire), ctx, change)
        audit.record(
            ctx.actor, "target.report", self.entity, target.id, after=audit.snapshot(target)
        )
        risk.refresh_target(ctx.actor, target, ctx.now)
        # An inspection of the new shop may come later in the same batch (both were saved
        # offline): its checks must find the shop, not the batch's earlier "no such target".
        ctx.cache[("target", target.id)] = target
        return result(change, "applied", target.version)

    def _update(self, ctx: PushContext, change: Change, target: Target) -> dict:
        if "kind" in change.fields:
            raise invalid({"kind": ["a target's kind never changes"]})
        loaded, wire = load_fields(_TARGET_INPUT, change.fields)
        original = None
        if "location" in wire:
            wire["location"], original = wgs84_location(wire["location"], with_accuracy=False)
        wrong = (
            ("permit_no", "scale", "phase")
            if target.kind is TargetKind.shop
            else ("business_type", "uscc")
        )
        errors = {
            name: [f"not a field of a {target.kind.value}"] for name in wrong if name in loaded
        }
        if errors:
            raise invalid(errors)
        server = target_device_view(target)
        fresh = change.base_version == target.version
        base = server if fresh else None
        if not fresh and change.base_version is not None:
            snapshot = ctx.cached(
                ("base", self.entity, target.id, change.base_version),
                lambda: base_snapshot(self.entity, target.id, change.base_version),
            )
            base = None if snapshot is None else target_base_view(snapshot)
        merged = merge_fields(
            TARGET_RULES,
            base,
            server,
            wire,
            change.hlc,
            target.field_clocks or {},
            frozenset() if fresh else written_since(target, change.base_version),
        )
        if "location" in merged.values:
            errors = site_location_errors({"location": merged.values["location"]}, target)
            if errors:
                raise invalid(errors)
        before = audit.snapshot(target)
        version_before = target.version
        for name, value in merged.values.items():
            if name == "location":
                target.lon, target.lat = value["lon"], value["lat"]
                # The device's point is written: what it sent goes with it (None: WGS-84).
                target.location_original = original
            else:
                setattr(target, name, _TARGET_INPUT.load({name: value}, partial=True)[name])
        changed = list(merged.values) + _reasserted(merged, merged.values)
        entry = None
        if changed:
            target.field_clocks = {**(target.field_clocks or {}), **merged.clocks}
            stamp_versions(target, merged.clocks, target.version + 1)
            db.session.flush()
            write_version(self.entity, target, target.version_fields(), changed, ctx, change)
            entry = audit.record_update(ctx.actor, "target.correct", self.entity, target, before)
            if entry is not None and entry["after"].keys() & RISK_FIELDS:
                risk.refresh_target(ctx.actor, target, ctx.now)
        # As the device sent it, its accuracy aside (a target keeps none): {lon, lat, crs}.
        found = _location_as_sent(merged.conflicts, original)
        conflicts = log_field_conflicts(ctx, change, self.entity, target, found, target.version)
        if conflicts and entry is None:
            self._audit_conflicts(ctx, target.id, conflicts)
        return result(
            change, edited_status(change, version_before, conflicts), target.version, conflicts
        )


# -- photos (metadata) ----------------------------------------------------------------------------

_PHOTO_INPUT = PhotoFieldsArgs()
PHOTO_REQUIRED = ("inspection_id", "taken_at", "sha256", "size", "content_type")


def _photo_conflicts(photo: Photo, change: Change, loaded: dict, wire: dict) -> list:
    """Fields of a photo's metadata another write set after the change's base, to other values:
    the later clock keeps its value, the other goes to the conflict log. A field the server
    keeps is taken out of ``loaded`` and ``wire``, so that only the rest is written."""
    if change.base_version is None or change.base_version >= photo.metadata_version:
        return []
    found = []
    clocks = photo.field_clocks or {}
    for name in sorted(written_since(photo, change.base_version) & set(wire)):
        current = _photo_dump({name: _photo_value(photo, name)})[name]
        incoming = wire[name]
        if name == "location" and incoming is not None:
            incoming, _ = wgs84_location(incoming)
        server_clock = HLC.parse(clocks[name]) if name in clocks else None
        # Written since the base: changed on both sides, whatever the base held.
        _, _, conflict = merge_lww(
            name, UNKNOWN, current, incoming, change.hlc, server_clock, written=True
        )
        if conflict is None:
            continue  # the same value, or the device replacing its own
        found.append(dataclasses.replace(conflict, client=wire[name]))  # as the device sent it
        if conflict.kept == "server":
            del loaded[name], wire[name]
    return found


def _photo_value(photo: Photo, name: str):
    """A metadata field of a stored photo as the input schema loads it."""
    if name == "location":
        if photo.lon is None:
            return None
        return {"lon": photo.lon, "lat": photo.lat, "accuracy_m": photo.accuracy_m, "crs": "wgs84"}
    return getattr(photo, name)


def photo_wire(photo) -> dict:
    """A photo's metadata as its audit entries hold it: the fields devices send, as they send
    them, whether its bytes arrived, and its version. ``photo`` is the ORM object or a row."""
    values = {name: _photo_value(photo, name) for name in _PHOTO_INPUT.fields}
    return _photo_dump(values) | {"uploaded": photo.uploaded, "version": photo.version}


def _photo_dump(values: dict) -> dict:
    """Metadata values (as :func:`_photo_value` reads them) in wire form, as the conflict log
    and the audit log hold them: dumped as devices send them, times in UTC as they are stored
    (a value just written still carries the device's offset), the location as stored (WGS-84,
    already plain: the schema's dump would take its ``crs`` for the enum it loads)."""
    dumped = _PHOTO_INPUT.dump(
        {
            k: v.astimezone(UTC) if isinstance(v, datetime) else v
            for k, v in values.items()
            if k != "location"
        }
    )
    if "location" in values:
        dumped["location"] = values["location"]
    return dumped


def require_photo_fields(loaded: dict) -> None:
    """A new photo's metadata names all of :data:`PHOTO_REQUIRED` (422 for each missing)."""
    missing = [name for name in PHOTO_REQUIRED if name not in loaded]
    if missing:
        raise invalid({name: ["Missing data for required field."] for name in missing})


def check_photo_identity(photo: Photo, loaded: dict) -> None:
    """Refuse, field by field, what no edit of a stored photo may change: its inspection, and
    once the bytes are uploaded, what describes them (their digest, size and type, which the
    upload wrote as the server found them)."""
    if "inspection_id" in loaded and loaded["inspection_id"] != photo.inspection_id:
        raise invalid({"inspection_id": ["a photo does not move to another inspection"]})
    if not photo.uploaded:
        return
    errors = {
        name: [f"the photo is uploaded; its {what} cannot change"]
        for name, what in (("sha256", "digest"), ("size", "size"), ("content_type", "type"))
        if name in loaded and loaded[name] != getattr(photo, name)
    }
    if errors:
        raise invalid(errors)


def write_photo_metadata(
    photo: Photo | None,
    photo_id,
    inspection: Inspection,
    loaded: dict,
    wire: dict,
    *,
    actor: Actor,
    action: str,
    created_by_id,
    device_id: str | None,
    now: datetime,
    clock: str,
) -> tuple[Photo, bool]:
    """Create the photo, or write its metadata, from fields loaded by ``PhotoFieldsArgs``
    (``wire``: the same dumped), audited as ``action``: a new photo's metadata, or each field
    written with its value before and after (the metadata keeps no versions: the audit log is
    where a photo's earlier capture time or place can be read). Refuses, field by field, a move
    to another inspection and a digest other than the bytes already stored under the id.
    Returns the photo and whether anything was written (and audited)."""
    creating = photo is None
    if creating:
        require_photo_fields(loaded)
        photo = Photo(
            id=photo_id,
            squadron_id=inspection.squadron_id,
            created_by_id=created_by_id,
            device_id=device_id,
            created_at=now,
        )
        db.session.add(photo)
    else:
        check_photo_identity(photo, {**loaded, "inspection_id": inspection.id})
    before = {name: _photo_value(photo, name) for name in loaded}
    for name, value in loaded.items():
        if name == "location":
            stored, original = wgs84_location(wire["location"])
            photo.lon, photo.lat = (stored["lon"], stored["lat"]) if stored else (None, None)
            photo.accuracy_m = stored.get("accuracy_m") if stored else None
            photo.location_original = original
        else:
            setattr(photo, name, value)
    # A field takes the write's clock where its value changed, or where it is re-asserted (the
    # same value, sent later by another writer); a device sending its own value again, or an
    # earlier clock, moves nothing (see sync.merge.merge_lww).
    clocks = photo.field_clocks or {}
    written = [
        name
        for name in loaded
        if _photo_value(photo, name) != before[name]
        or name not in clocks
        or reasserts(HLC.parse(clock), HLC.parse(clocks[name]))
    ]
    photo.field_clocks = {**clocks, **dict.fromkeys(written, clock)}
    if photo.version is not None and _column_changed(photo):
        photo.metadata_version = photo.version + 1  # the version this write's flush gives
        stamp_versions(photo, written, photo.metadata_version)
    try:  # bytes uploaded before their metadata are claimed by it now
        photo_ops.claim(actor, photo)
    except ValueError as exc:
        raise invalid({"sha256": [str(exc)]}) from None
    db.session.flush()
    if creating:
        audit.record(actor, action, "photo", photo.id, after=photo_wire(photo))
    elif written:
        audit.record(
            actor,
            action,
            "photo",
            photo.id,
            before=_photo_dump({name: before[name] for name in written}),
            after=_photo_dump({name: _photo_value(photo, name) for name in written}),
        )
    return photo, creating or bool(written)


def check_photo_item(ctx: PushContext, inspection: Inspection, loaded: dict) -> None:
    """A photo is filed under an item of its inspection's checklist version, or none (422 on
    ``item_code``): filed under another, no check or leader could ever place it."""
    code = loaded.get("item_code")
    if code is None:
        return
    checklist, version = inspection.checklist_id, inspection.checklist_version
    if code not in item_codes(ctx, checklist, version):
        raise invalid(
            {
                "item_code": [
                    f"not an item of the inspection's checklist ({checklist}, version {version})"
                ]
            }
        )


def photo_holds(photo: Photo, loaded: dict) -> bool:
    """Whether ``photo`` already holds the metadata ``loaded`` (by ``PhotoFieldsArgs``): its
    location compared in WGS-84, with the point as the device sent it."""
    for name, value in loaded.items():
        if name == "location":
            sent = _PHOTO_INPUT.dump({"location": value})["location"]
            stored, original = wgs84_location(sent)
            if stored != _photo_value(photo, name) or original != photo.location_original:
                return False
        elif value != _photo_value(photo, name):
            return False
    return True


class PhotoHandler(Handler):
    entity = "photo"
    model = Photo

    def apply(self, ctx: PushContext, change: Change) -> dict:
        photo = lock(Photo, change.id, ctx, self.entity)
        if change.op == "delete":
            return self._delete(ctx, change, photo)
        loaded, wire = load_fields(_PHOTO_INPUT, change.fields)
        if photo is None:
            if (self.entity, change.id) in ctx.tombstoned:
                # An edit of it, or its create sent again (a lost answer, a reset pad): it
                # waits beside the deletion; brought back, it could never be deleted again.
                return self._edit_of_deleted(ctx, change)
            require_photo_fields(loaded)
            gone = self._deleted_inspection(ctx, loaded.get("inspection_id"))
            if gone is not None:
                return self._edit_of_deleted(ctx, change, gone)
            inspection = self._inspection(ctx, loaded.get("inspection_id"))
        else:
            # Its inspection's officers only (403), before anything about the photo is told;
            # then, before the frozen check, what no edit may change (an amendment that could
            # never be accepted is no amendment).
            inspection = self._inspection(ctx, photo.inspection_id)
            refuse_base_ahead(change, photo.version)
            check_photo_identity(photo, loaded)
        check_photo_item(ctx, inspection, loaded)
        if inspection.review_status is ReviewStatus.approved:
            if photo is not None and not change.fields:
                return unchanged(change, photo.version)
            db.session.flush()
            return self._log_waiting(
                ctx,
                change,
                ConflictKind.amendment,
                inspection.squadron_id,
                None,
                change.fields,
                photo.version if photo else None,
            )
        version_before = None if photo is None else photo.version
        found = [] if photo is None else _photo_conflicts(photo, change, loaded, wire)
        photo, written = write_photo_metadata(
            photo,
            change.id,
            inspection,
            loaded,
            wire,
            actor=ctx.actor,
            action="photo.metadata",
            created_by_id=ctx.actor.user_id,
            device_id=ctx.device_id,
            now=ctx.now,
            clock=str(change.hlc),
        )
        conflicts = log_field_conflicts(ctx, change, self.entity, photo, found, photo.version)
        if conflicts and not written:
            self._audit_conflicts(ctx, photo.id, conflicts)
        return result(
            change, edited_status(change, version_before, conflicts), photo.version, conflicts
        )

    def _edit_of_deleted(
        self, ctx: PushContext, change: Change, of_inspection: Tombstone | None = None
    ) -> dict:
        """An edit made offline of a photo deleted meanwhile (alone, or with its inspection),
        or a new photo of an inspection deleted meanwhile (``of_inspection``, its tombstone):
        it cannot apply, and it is not lost either: it waits in the conflict log (``kind:
        delete``) with what it wrote, as an inspection's does."""
        if of_inspection is not None:
            check_tombstone_scope(ctx, of_inspection)
            server = {"deleted": True, "inspection_id": str(of_inspection.record_id)}
            squadron_id, version = of_inspection.squadron_id, None
        else:
            tombstone = tombstone_of(self.entity, change.id)
            check_tombstone_scope(ctx, tombstone)
            server = {"deleted": True, "version": tombstone.version}
            squadron_id, version = tombstone.squadron_id, tombstone.version
        return self._log_waiting(
            ctx,
            change,
            ConflictKind.delete,
            squadron_id,
            server,
            change.fields,
            version,
            action="edit_of_deleted",
        )

    @staticmethod
    def _deleted_inspection(ctx: PushContext, inspection_id) -> Tombstone | None:
        """The tombstone of the inspection ``inspection_id`` if it was deleted (and not there),
        else None: a photo of it can never be stored, and must not be told to wait for it."""
        if not inspection_id or db.session.get(Inspection, inspection_id) is not None:
            return None
        return tombstone_of("inspection", inspection_id)

    def _inspection(self, ctx: PushContext, inspection_id) -> Inspection:
        # Out of scope too: only its officers write it, wherever it is (else 403, API.md).
        inspection = db.session.get(Inspection, inspection_id) if inspection_id else None
        if inspection is None:
            raise Rejected(APIError(404, "not_found", "the photo's inspection is not there (yet)"))
        if not ctx.policy.allows("inspection.edit", inspection):
            raise Rejected(
                APIError(403, "forbidden", "only the inspection's officers add its photos")
            )
        return inspection

    def _delete(self, ctx: PushContext, change: Change, photo: Photo | None) -> dict:
        if photo is None:
            tombstone = tombstone_of(self.entity, change.id)
            if tombstone is None:
                raise Rejected(APIError(404, "not_found", "photo not found"))
            check_tombstone_scope(ctx, tombstone)
            return result(change, "applied", tombstone.version)
        inspection = self._inspection(ctx, photo.inspection_id)
        refuse_base_ahead(change, photo.version)
        if inspection.status is not InspectionStatus.draft or _edited_since(
            photo, change, ctx.device_id
        ):
            db.session.flush()
            return self._log_waiting(
                ctx,
                change,
                ConflictKind.delete,
                photo.squadron_id,
                {"version": photo.version},
                None,
                photo.version,
            )
        return result(change, "applied", delete_photo(ctx.actor, photo))


def _edited_since(photo: Photo, change: Change, device_id: str) -> bool:
    """Whether the photo's metadata was written after the version ``change`` is based on (its
    version also moves when its bytes arrive, which is no edit to lose). Without a base, whether
    another device wrote any of it."""
    if change.base_version is None:
        nodes = {HLC.parse(clock).node for clock in (photo.field_clocks or {}).values()}
        return bool(nodes - {device_id})
    return photo.metadata_version > change.base_version


# -- tracks --------------------------------------------------------------------------------------

_TRACK_INPUT = TrackFieldsArgs()


class TrackHandler(Handler):
    """Append-only GPS points: a point the server already has from the same device is skipped,
    so batches never conflict and a repeated batch adds nothing; another device's fix at the
    same instant is kept beside it."""

    entity = "track"
    model = None

    def apply(self, ctx: PushContext, change: Change) -> dict:
        if change.op == "delete":
            raise invalid({"op": ["tracks are append-only"]})
        try:
            loaded = _TRACK_INPUT.load(change.fields)
        except ma.ValidationError as exc:
            raise invalid(exc.normalized_messages()) from None
        if not ctx.policy.allows("track.record"):
            raise Rejected(APIError(403, "forbidden", "only officers and leaders record tracks"))
        if loaded["officer_id"] != ctx.actor.user_id:
            raise Rejected(APIError(403, "forbidden", "a device sends its own officer's track"))
        rows = []
        for point in loaded["points"]:
            lon, lat = to_wgs84(point["lon"], point["lat"], point["crs"])
            rows.append(
                {
                    "officer_id": loaded["officer_id"],
                    "t": point["t"].astimezone(UTC),
                    "lon": lon,
                    "lat": lat,
                    "accuracy_m": point["accuracy_m"],
                    "original": None
                    if point["crs"] == "wgs84"
                    else {"lon": point["lon"], "lat": point["lat"], "crs": point["crs"]},
                    "device_id": ctx.device_id,
                    "batch_id": change.id,
                }
            )
        dialect = db.session.get_bind().dialect
        insert = (postgresql.insert if dialect.name == "postgresql" else sqlite.insert)(
            TrackPoint.__table__
        ).on_conflict_do_nothing(index_elements=["officer_id", "t", "device_id"])
        if dialect.insert_executemany_returning:
            # The rowcount of an executemany is -1 on psycopg: count the rows the database
            # says it inserted (a point it already had returns none).
            inserted = len(db.session.execute(insert.returning(TrackPoint.id), rows).all())
        else:
            inserted = db.session.execute(insert, rows).rowcount
        audit.record(
            ctx.actor,
            "track.append",
            self.entity,
            change.id,
            after={"points": len(rows), "new_points": inserted},
        )
        return result(change, "applied", 1)


HANDLERS = {
    "inspection": InspectionHandler(),
    "target": TargetHandler(),
    "photo": PhotoHandler(),
    "track": TrackHandler(),
}
