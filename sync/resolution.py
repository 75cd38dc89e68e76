"""Resolving the conflict log: a person chooses, and the choice becomes a new version.

``keep: server`` closes the entry and leaves the record as it is; ``keep: client`` writes the
device's value; ``keep: value`` writes a value the person gives. A resolved amendment to an
approved inspection reopens it for review when it changes something (so does a photo's
delete); a resolved delete deletes the record. A side chosen over a value written since the
entry was logged, and a delete of a record edited since, are refused (409) rather than losing
that write.
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
from fieldapp.auth.policy import Policy
from fieldapp.db import change_counter, db, utcnow
from fieldapp.errors import APIError, validation_error
from fieldapp.inspections.models import Inspection, InspectionStatus, ReviewAction
from fieldapp.inspections.references import not_deleted_because, references_to
from fieldapp.photos.models import Photo
from fieldapp.risk import operations as risk
from fieldapp.targets.models import Target
from fieldapp.targets.operations import RISK_FIELDS, site_location_errors
from schemas.inspections import (
    InspectionFieldsArgs,
    inspection_fields_wire,
    load_inspection_fields,
)
from schemas.sync import PhotoFieldsArgs, TargetFieldsArgs
from sync.engine import PushContext, Rejected
from sync.entities import (
    CHECKED_FIELDS,
    INSPECTION_FIELDS,
    TARGET_FIELDS,
    InspectionHandler,
    _loadable,
    base_snapshot,
    case_follows_target,
    check_photo_item,
    delete_inspection,
    delete_photo,
    inspection_device_view,
    inspection_wire,
    photo_holds,
    wgs84_location,
    write_photo_metadata,
    write_version,
)
from sync.hlc import HLC
from sync.merge import ANSWER_DEFAULT, normalize_answer
from sync.models import Conflict, ConflictKind, ConflictStatus
from sync.sequence import hold
from sync.versions import stamp_versions, written_since

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
    # The change counter before the entry's lock, the order of every writer (a move of the
    # record takes the counter, then its open entries: the other order would deadlock).
    hold(db.session, change_counter)
    # Two leaders resolving the same entry at once take turns; the second finds it resolved.
    db.session.refresh(conflict, with_for_update=True)
    if conflict.status is ConflictStatus.resolved:
        raise APIError(409, "version_conflict", "this conflict is already resolved")
    # Asked again under the row's lock: the record may have moved to another squadron while
    # this request waited for it (a move locks the open entries it takes along).
    Policy(actor).require("conflict.resolve", conflict)
    if conflict.kind is ConflictKind.delete and keep == "value":
        # Either the record stays as it is or it goes; fields to write belong to an edit.
        raise validation_error(
            {
                "keep": [
                    "a delete is resolved with 'server' (the record stays) or 'client' (it goes)"
                ]
            }
        )
    record = db.session.get(MODELS[conflict.entity], conflict.record_id)
    chosen = _chosen(conflict, keep, value)
    new_photo = (  # metadata of a photo the server had not seen when it was logged
        conflict.entity == "photo"
        and conflict.kind is ConflictKind.amendment
        and conflict.record_version is None
    )
    if record is None and not new_photo and _settled_by_the_deletion(conflict, keep):
        # The record is gone: that is the server's side now (and the side a device that asked
        # for the delete wanted). Nothing to write; the entry closes instead of waiting forever.
        chosen = _NOTHING
    applied_version = None
    if chosen is not _NOTHING:
        if record is None and not new_photo:
            raise APIError(
                409,
                "version_conflict",
                f"the {conflict.entity} was deleted after this entry was logged: there is"
                " nothing left to write the value to; keep 'server' closes the entry",
            )
        if keep != "value" and not _is_photo_list(conflict.field):
            _refuse_if_moved_on(conflict, record, chosen)
        clock = str(HLC.server(int(now.timestamp() * 1000)))
        if conflict.kind is ConflictKind.delete:
            _refuse_if_referenced(record)
            applied_version = _delete(actor, conflict, record)
        elif conflict.kind is ConflictKind.amendment:
            fields = _amendment_fields(conflict, record, keep, chosen)
            if not _writes_something(conflict, fields):
                if keep == "value":
                    raise validation_error({"value": [_NOTHING_TO_APPLY]})
                # The device's amendment only resubmitted (status): nothing to write, and an
                # approved record is not reopened for review with nothing to review.
                chosen = _NOTHING
            else:
                applied_version = _write(actor, conflict, record, fields, clock)
        else:
            fields = _field_value(conflict, record, keep, chosen)
            applied_version = _write(actor, conflict, record, fields, clock)
        if applied_version is None:
            # The record already holds every value chosen: the entry is settled as it is, and
            # an approved record is not reopened for review with nothing changed.
            chosen = _NOTHING
    conflict.status = ConflictStatus.resolved
    conflict.resolution = {
        "keep": keep,
        "value": None if chosen is _NOTHING else chosen,
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


#: What :func:`_chosen` answers when the record already holds the kept value.
_NOTHING = object()


def _settled_by_the_deletion(conflict: Conflict, keep: str) -> bool:
    """Whether the choice is already what the record's deletion left: ``server`` always (the
    server's state is "deleted"; for a field whose device value had won, there is no record to
    write the server's value back to), and ``client`` on a device's delete (it asked for that).
    The device's values of an edit and a value given have no record to go to."""
    if keep == "server":
        return True
    return keep == "client" and conflict.kind is ConflictKind.delete and not conflict.client_value


def _chosen(conflict: Conflict, keep: str, value: Any) -> Any:
    """The value the record must hold after the choice, or :data:`_NOTHING` to write.

    ``server`` keeps the server's side: nothing to write where the rule kept it, but where the
    device's later clock won the field, the server's value goes back (it was only in the log).
    """
    if keep == "value":
        return value
    if keep == "client":
        return conflict.client_value
    if conflict.kind is ConflictKind.field and conflict.kept == "client":
        return conflict.server_value
    return _NOTHING


def _refuse_if_moved_on(conflict: Conflict, record, chosen) -> None:
    """409 if a field the choice writes was written again after the entry was logged.

    The value written since is in neither side of this entry: writing a side over it would
    lose it silently. ``keep: value`` states the value outright and is not refused. Accepting
    a delete is refused likewise when the record was edited since (:func:`_edited_since`).
    """
    if record is None or conflict.record_version is None:
        return
    if conflict.kind is ConflictKind.delete:
        edited = _edited_since(conflict, record)
        if edited:
            raise APIError(
                409,
                "version_conflict",
                f"the {conflict.entity} was edited after this delete was logged"
                f" ({', '.join(edited)}; it is at version {record.version}): deleting it now"
                " would throw that work away unseen. Read the record: keep 'server' closes"
                " this entry and keeps it; if it should still go, the officer deletes it again"
                " from the device",
            )
        return
    if record.version == conflict.record_version:
        return
    written = _written_fields(conflict, chosen)
    if isinstance(record, Photo):
        # Photo metadata keeps no snapshots, but the version each field was last written at
        # (its version also moves when the bytes arrive, which writes no field).
        moved = sorted(written_since(record, conflict.record_version) & set(written))
    else:
        logged = base_snapshot(conflict.entity, record.id, conflict.record_version)
        if logged is None:
            return  # the record is older than its version history: nothing to compare with
        # As the version history has it: the snapshot of each version is in this form.
        now = inspection_wire(record) if isinstance(record, Inspection) else record.version_fields()
        # Photo lists are applied as removals and additions (see _amendment_fields,
        # _field_value): what was added since stays, so they never block the choice.
        moved = [
            name
            for name in written
            if name != "photo_ids" and _part(logged, name) != _part(now, name)
        ]
    if moved:
        raise APIError(
            409,
            "version_conflict",
            f"{', '.join(moved)} changed after this conflict was logged (the record is at"
            f" version {record.version}); resolve with keep 'value' to set it anyway",
        )


def _edited_since(conflict: Conflict, record) -> list[str]:
    """The fields devices write that changed after the delete ``conflict`` was logged: an
    inspection's against its snapshot of then (a review since edits nothing an officer wrote),
    a photo's metadata by the versions its fields were written at."""
    if isinstance(record, Photo):
        return sorted(written_since(record, conflict.record_version))
    if record.version == conflict.record_version:
        return []
    logged = base_snapshot(conflict.entity, record.id, conflict.record_version)
    if logged is None:
        return []  # older than its version history: nothing to compare with
    then, now = inspection_device_view(logged), inspection_device_view(inspection_wire(record))
    return [name for name in INSPECTION_FIELDS if then.get(name) != now.get(name)]


_NOTHING_TO_APPLY = (
    "nothing to apply: give at least one field the officers write (answers with at least one"
    " item); status is not set by a resolution, and an approved record is not reopened for"
    " nothing"
)


def _writes_something(conflict: Conflict, fields: dict) -> bool:
    """Whether an amendment's ``fields`` write anything: a field other than ``status`` (which
    a resolution never sets), an answers object with an item. Without, accepting would only
    reopen an approved record for review with nothing changed."""
    return bool(_written_fields(conflict, {k: v for k, v in fields.items() if k != "status"}))


def _refuse_if_referenced(record) -> None:
    """422 on ``keep`` if accepting the delete would take away an inspection other records
    refer to (the task it closed, the case it opened, a follow-up of it, …): they are the
    squadron's record of what it set off, and would point at nothing. The leader keeps it
    (``keep: server``); what the officer wanted changed goes in as an edit."""
    if not isinstance(record, Inspection):
        return
    referenced = references_to(record.id)
    if referenced:
        instead = "keep 'server' closes this entry and keeps the inspection"
        raise validation_error({"keep": [not_deleted_because(referenced, instead)]})


def _written_fields(conflict: Conflict, chosen) -> list[str]:
    """The fields (``answers.<code>`` for answer items) that writing ``chosen`` sets."""
    if conflict.kind is ConflictKind.field:
        return [conflict.field]
    names = []
    for name, value in (chosen if isinstance(chosen, dict) else {}).items():
        if name == "answers" and isinstance(value, dict):
            names += [f"answers.{code}" for code in value]
        else:
            names.append(name)
    return names


def _part(data: dict, name: str):
    """One field of a record's wire form; an answer item by its result and note (its photo
    list is merged as a set, never overwritten)."""
    if name.startswith("answers."):
        answer = normalize_answer((data.get("answers") or {}).get(name.split(".", 1)[1]))
        return None if answer is None else (answer["result"], answer["note"])
    return data.get(name)


def _amendment_fields(conflict: Conflict, record, keep: str, chosen) -> dict:
    """The fields an accepted amendment writes. Its photo lists (top level and per answer item)
    are applied as its removals and additions against the record as it was when the amendment
    was logged, so photos accepted into the record since stay (the lists merge as sets)."""
    if not isinstance(chosen, dict):
        raise validation_error({"value": ["an amendment is resolved with an object of fields"]})
    if keep != "client" or not isinstance(record, Inspection):
        return chosen
    logged = conflict.server_value if isinstance(conflict.server_value, dict) else {}
    fields = dict(chosen)
    if isinstance(fields.get("photo_ids"), list) and isinstance(logged.get("photo_ids"), list):
        fields["photo_ids"] = _choose_photos(
            record.photo_ids, fields["photo_ids"], logged["photo_ids"]
        )
    answers = fields.get("answers")
    logged_answers = logged.get("answers") if isinstance(logged.get("answers"), dict) else {}
    if isinstance(answers, dict):
        fields["answers"] = dict(answers)
        for code, item in answers.items():
            now = normalize_answer((record.answers or {}).get(code))
            if not isinstance(item, dict) or now is None:
                continue  # a new item, or not an item: written as given (the schema checks it)
            if "photo_ids" not in item:  # the amendment says nothing of the item's photos
                fields["answers"][code] = {**item, "photo_ids": now["photo_ids"]}
            elif isinstance(item["photo_ids"], list):
                then = normalize_answer(logged_answers.get(code)) or {"photo_ids": []}
                photos = _choose_photos(now["photo_ids"], item["photo_ids"], then["photo_ids"])
                fields["answers"][code] = {**item, "photo_ids": photos}
    return fields


def _is_photo_list(field: str | None) -> bool:
    """Whether the entry is about a photo list (``photo_ids``, ``answers.<code>.photo_ids``):
    the removals a device made that the server refused because it added the photos back."""
    return field is not None and (field == "photo_ids" or field.endswith(".photo_ids"))


def _field_value(conflict: Conflict, record, keep: str, chosen) -> dict:
    """The fields to write for one field's choice.

    One answer item is written alone. Choosing a side (``client``, ``server``) writes what
    that side differs in and nothing else: an item's result and note (its photo list merges
    as a set, with entries of its own); a photo list's removals and additions against the
    other side, applied to the list the record holds now, so that photos added since the
    entry was logged stay. ``keep: value`` writes the value given.
    """
    field = conflict.field
    other = conflict.server_value if keep == "client" else conflict.client_value
    by_side = keep != "value"
    if field == "photo_ids":
        photos = _choose_photos(record.photo_ids, chosen, other) if by_side else chosen
        return {"photo_ids": photos}
    if not field.startswith("answers."):
        return {field: chosen}
    code = field.split(".")[1]
    current = normalize_answer((record.answers or {}).get(code)) or dict(ANSWER_DEFAULT)
    if field.endswith(".photo_ids"):
        photos = _choose_photos(current["photo_ids"], chosen, other) if by_side else chosen
        return {"answers": {code: {**current, "photo_ids": photos}}}
    if not by_side:  # as given: the schema checks it as it checks a device's item
        return {"answers": {code: chosen}}
    side = normalize_answer(chosen)
    return {"answers": {code: {**current, "result": side["result"], "note": side["note"]}}}


def _choose_photos(current: list | None, chosen: list | None, other: list | None) -> list:
    """``current`` with the chosen side's removals and additions against the other side."""
    chosen, other, current = list(chosen or []), list(other or []), list(current or [])
    removed = set(other) - set(chosen)
    kept = [photo for photo in current if photo not in removed]
    return kept + [photo for photo in chosen if photo not in other and photo not in kept]


def _write(actor: Actor, conflict: Conflict, record, fields: dict, clock: str) -> int | None:
    """Write ``fields`` to ``record`` as a new version; its number. An inspection or a photo
    that already holds every value writes nothing (None), so that an approved record is
    reopened only for a change (README: "goes back to review only when the choice changes
    it"; targets have no review)."""
    if isinstance(record, Inspection):
        return _write_inspection(actor, record, fields, clock)
    if isinstance(record, Target):
        return _write_target(actor, record, fields, clock)
    return _write_photo(actor, conflict, record, fields, clock)


def _load(schema: ma.Schema, fields: dict) -> dict:
    try:
        return schema.load(fields, partial=True)
    except ma.ValidationError as exc:
        raise validation_error({"value": exc.normalized_messages()}) from None


def _write_inspection(actor: Actor, record: Inspection, fields: dict, clock: str) -> int | None:
    resubmits = "review" in fields and _resubmits(record, fields["review"])
    unknown = sorted(set(fields) - set(INSPECTION_FIELDS) - {"status", "review"})
    if unknown:
        raise validation_error({"value": {name: ["not a field devices write"] for name in unknown}})
    fields = {k: v for k, v in fields.items() if k not in ("status", "review")}
    given_answers = fields.get("answers")
    if isinstance(given_answers, dict):
        # A device sends the answer items it changed: the others stay as they are.
        fields["answers"] = {**(record.answers or {}), **given_answers}
    loaded = _load(InspectionFieldsArgs(), _loadable(fields))
    wire = InspectionFieldsArgs().dump(loaded)
    original = None
    if "location" in wire:
        wire["location"], original = wgs84_location(wire["location"])
    before = inspection_wire(record)
    if not resubmits and _holds_already(before, record, wire, original):
        return None
    _check_references(actor, before, wire, record.id)
    InspectionHandler()._write(record, wire, loaded, original, actor_id=actor.user_id)
    if resubmits:
        # The officer's submission, logged because it was made before the leader's return,
        # accepted: the record waits for review again, as the submission would have left it.
        record.transition(ReviewAction.submit, by=actor.user_id, at=utcnow())
    reopened = _reopen(actor, record) or resubmits  # in the same version as the fields written
    clocks = {name: clock for name in wire if name != "answers"}
    if isinstance(given_answers, dict):
        clocks |= {f"answers.{code}": clock for code in given_answers}
    record.field_clocks = {**(record.field_clocks or {}), **clocks}
    stamp_versions(record, clocks, record.version + 1)
    _write_inspection_version(actor, record, before, "inspection.resolve", reopened)
    return record.version


def _holds_already(before: dict, record: Inspection, wire: dict, original: dict | None) -> bool:
    """Whether the inspection (``before``: its wire form) already holds every field of
    ``wire`` (as written: ``location`` in WGS-84, ``original`` the point as the device sent
    it). Both go through the push's load and dump, the form a merge compares values in (times
    in UTC: the same instant in another offset is the same value)."""
    current = inspection_device_view(before)
    current = {name: current[name] for name in wire}
    try:
        given = inspection_fields_wire(load_inspection_fields(_loadable(wire)))
        now = inspection_fields_wire(load_inspection_fields(_loadable(current)))
    except ma.ValidationError:
        return False  # a stored value no write gives: anything written changes it
    if "location" in wire and original != record.location_original:
        return False
    return given == now


def _resubmits(record: Inspection, review) -> bool:
    """Whether the chosen ``review`` resubmits the record (422 on ``value`` otherwise): the
    one review a choice can write is the one a device's submission leaves (``pending``), from
    a returned record (a submission logged because it came before the leader's return). The
    leader's own decisions go through the review (``POST /inspections/<id>/review``)."""
    if not isinstance(review, dict) or review.get("status") != "pending":
        raise validation_error(
            {
                "value": {
                    "review": [
                        'only {"status": "pending"} (the officers\' submission) is written here;'
                        " approve or return through the inspection's review"
                    ]
                }
            }
        )
    if not record.can(ReviewAction.submit):
        raise validation_error(
            {"value": {"review": [f"the inspection is {record.state.value}: nothing to resubmit"]}}
        )
    return True


def _reopen(actor: Actor, inspection: Inspection) -> bool:
    """An approved inspection an accepted amendment changes goes back to the leader; whether
    it did."""
    if not inspection.can(ReviewAction.reopen):
        return False
    inspection.transition(ReviewAction.reopen, by=actor.user_id, at=utcnow())
    return True


def _write_inspection_version(
    actor: Actor, inspection: Inspection, before: dict, action: str, reopened: bool
) -> None:
    """Flush what the resolution changed in ``inspection`` (``before``: its wire form before)
    as a new version with its snapshot and audit entry."""
    db.session.flush()
    after = inspection_wire(inspection)
    changed = [k for k in after if after.get(k) != before.get(k) and k != "version"]
    write_version("inspection", inspection, after, changed, None, None, actor=actor)
    audit.record(
        actor,
        action,
        "inspection",
        inspection.id,
        before={k: before.get(k) for k in changed},
        after={k: after.get(k) for k in changed},
    )
    # Its case (立案), if its approval opened one, is about the target it now names.
    case = case_follows_target(actor, inspection) if "target_id" in changed else None
    submitted = inspection.status is InspectionStatus.submitted
    if reopened or (submitted and {"started_at", "target_id"} & set(changed)):
        # Only approved inspections feed the score: until it is approved again, it does not
        # count. A submitted one dates the target's last inspection, which the next due date
        # counts from (and a target it no longer names has lost that inspection).
        targets, corrected = {inspection.target_id}, []
        if before.get("target_id"):
            targets.add(uuid.UUID(str(before["target_id"])))
        if len(targets) > 1:
            # The record left its first target for good, whatever its review as amended will
            # decide: as for a delete, a rise of level it caused there goes now, rather than
            # being held by the downgrade rules for a record the target no longer has. (Its
            # own target is judged when it is approved again: docs/risk.md, "Corrections".)
            corrected = [("inspection", inspection.id)]
            if case is not None:
                # It counts where it now is at once (opened, it stays opened whatever the
                # review as amended decides), and a rise it caused where it was goes.
                corrected.append(("case", case.id))
        risk.refresh_targets(actor, sorted(targets), utcnow(), corrected=corrected)


def _check_references(actor: Actor, before: dict, wire: dict, record_id: uuid.UUID) -> None:
    """What a push checks of an edit, checked of the record as the choice would leave it: the
    target, checklist and officers exist and are in scope, the answers are items of the
    checklist, and a submitted record still has what submitting needs. 422 under ``value``."""
    state = {**inspection_device_view(before), **wire, "status": before["status"]}
    needed = {k: state[k] for k in CHECKED_FIELDS if state.get(k) is not None}
    ctx = PushContext(actor=actor, policy=Policy(actor), device_id=actor.device_id, now=utcnow())
    try:
        loaded = load_inspection_fields(_loadable(needed | wire))
        InspectionHandler()._check(
            ctx, loaded, state, creating=False, changed=set(wire), record_id=record_id
        )
    except ma.ValidationError as exc:
        raise validation_error({"value": exc.normalized_messages()}) from None
    except Rejected as rejected:
        error = rejected.error
        errors = error.data.get("errors", {}).get("json")
        # A target or inspection named that is not there (404 to a device, whose record may
        # yet arrive) is the leader's value to correct.
        if error.code in (404, 422) and errors:
            raise validation_error({"value": errors}) from None
        raise error from None


def _write_target(actor: Actor, record: Target, fields: dict, clock: str) -> int:
    unknown = sorted(set(fields) - set(TARGET_FIELDS))
    if unknown:
        raise validation_error({"value": {name: ["not a field devices write"] for name in unknown}})
    loaded = _load(TargetFieldsArgs(), fields)
    if "location" in loaded:
        stored, original = wgs84_location(
            TargetFieldsArgs().dump({"location": loaded["location"]})["location"],
            with_accuracy=False,
        )
        errors = site_location_errors({"location": stored}, record)
        if errors:
            raise validation_error({"value": errors})
    before = audit.snapshot(record)
    for name, value in loaded.items():
        if name == "location":
            record.lon, record.lat = stored["lon"], stored["lat"]
            record.location_original = original
        else:
            setattr(record, name, value)
    record.field_clocks = {**(record.field_clocks or {}), **{name: clock for name in loaded}}
    stamp_versions(record, list(loaded), record.version + 1)
    db.session.flush()
    write_version("target", record, record.version_fields(), list(loaded), None, None, actor=actor)
    entry = audit.record_update(actor, "target.resolve", "target", record, before)
    if entry is not None and entry["after"].keys() & RISK_FIELDS:
        risk.refresh_target(actor, record, utcnow())
    return record.version


def _write_photo(
    actor: Actor,
    conflict: Conflict,
    record: Photo | None,
    fields,
    clock,
) -> int | None:
    """A photo's metadata sent while its inspection was approved: accepted, it is written (the
    photo created, if it was new) and the inspection goes back to the leader for review.
    Metadata the photo already holds writes nothing (None) and reopens nothing."""
    loaded = _load(PhotoFieldsArgs(), fields)
    if record is not None and photo_holds(record, loaded):
        return None
    inspection_id = loaded.get("inspection_id") or (record and record.inspection_id)
    inspection = db.session.get(Inspection, inspection_id) if inspection_id else None
    if inspection is None or inspection.squadron_id != conflict.squadron_id:
        raise validation_error({"value": {"inspection_id": ["no such inspection here"]}})
    ctx = PushContext(actor=actor, policy=Policy(actor), device_id=actor.device_id, now=utcnow())
    try:
        check_photo_item(ctx, inspection, loaded)
        photo, written = write_photo_metadata(
            record,
            conflict.record_id,
            inspection,
            loaded,
            PhotoFieldsArgs().dump(loaded),
            actor=actor,
            action="photo.resolve",
            created_by_id=conflict.user_id,
            device_id=conflict.device_id,
            now=utcnow(),
            clock=clock,
        )
    except Rejected as rejected:
        raise validation_error({"value": rejected.error.data["errors"]["json"]}) from None
    if not written:
        return None
    before = inspection_wire(inspection)
    if _reopen(actor, inspection):
        _write_inspection_version(actor, inspection, before, "inspection.reopen", reopened=True)
    return photo.version


def _delete(actor: Actor, conflict: Conflict, record) -> int:
    """Delete ``record`` as a device asked; the version its tombstone carries. Each audits the
    record as it was deleted. Devices delete inspections and photos only (a target's delete is
    refused outright)."""
    if isinstance(record, Inspection):
        submitted, target_id = record.status is InspectionStatus.submitted, record.target_id
        record_id = record.id
        version = delete_inspection(actor, record)
        if submitted:
            # A submitted inspection dated the target's last inspection, which the next due
            # date counts from (and an approved one counted in the score): without it, the
            # target may be due again now, not after the nightly recompute. A rise of level
            # it caused goes with it, rather than being held by the downgrade rules.
            risk.refresh_targets(
                actor, [target_id], utcnow(), corrected=[("inspection", record_id)]
            )
        return version
    inspection = db.session.get(Inspection, record.inspection_id)
    version = delete_photo(actor, record)
    # A photo taken off an approved record changes it as a photo added does (_write_photo):
    # the record goes back to the leader, as amended.
    before = inspection_wire(inspection)
    if _reopen(actor, inspection):
        _write_inspection_version(actor, inspection, before, "inspection.reopen", reopened=True)
    return version
