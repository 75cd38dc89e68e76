"""Sync on the wire: push batches and their results, pull pages, the conflict log."""

from __future__ import annotations

import uuid

import marshmallow as ma
from marshmallow import fields, validate

from fieldapp.targets.models import SitePhase, SiteScale, TargetKind
from schemas.auth import DEVICE_ID
from schemas.common import (
    MAX_PER_PAGE,
    HexDigest,
    Instant,
    PageArgs,
    StrictFloat,
    StrictSchema,
    TimeBound,
    TimeRangeArgs,
    id_field,
)
from schemas.inspections import InspectionFieldsArgs, WholeLocation, refuse_off_the_globe
from schemas.targets import BUSINESS_TYPE, USCC, TargetName, permit_number, target_address
from sync.hlc import HLC_PATTERN

MAX_BATCH = 500
MAX_TRACK_POINTS = 10_000
ENTITIES = ("inspection", "photo", "track", "target")
OPS = ("upsert", "delete")


class PushArgs(StrictSchema):
    #: Text the database cannot store (NUL, unpaired surrogates) in a change rejects that change
    #: alone (the sync engine checks each one), not the batch: see fieldapp.api.check_json_text.
    TEXT_CHECKED_PER_ITEM = ("changes",)

    device_id = fields.String(
        required=True, validate=DEVICE_ID, metadata={"description": "the token's device"}
    )
    #: Each change is checked on its own (ChangeArgs), so one bad change never sinks the batch:
    #: the list takes anything, and the document shows what a change must be.
    changes = fields.List(
        fields.Raw(allow_none=True, metadata={"documented_as": lambda: ChangeArgs}),
        required=True,
        metadata={
            "description": f"at most {MAX_BATCH} (more: 413); each is checked and applied on its"
            " own, a malformed one rejected in its result without touching the others"
        },
    )


#: Versions are 32-bit integers in the database.
MAX_VERSION = 2**31 - 1


DELETE_WITH_FIELDS = "a delete carries no fields: send {} (or leave fields out)"


class ChangeArgs(StrictSchema):
    """One change of a push batch (API.md, Sync)."""

    change_id = fields.UUID(
        required=True,
        metadata={
            "description": "the device's id of this change: sent again, it answers its first"
            " result (replayed); with another body, id_conflict"
        },
    )
    entity = fields.String(required=True, validate=validate.OneOf(ENTITIES))
    id = fields.UUID(required=True, metadata={"description": "the record's id"})
    op = fields.String(required=True, validate=validate.OneOf(OPS))
    #: Versions are 32-bit integers in the database.
    base_version = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=0, max=MAX_VERSION),
        metadata={"description": "the version the device changed; null: the device creates it"},
    )
    #: Checked by the engine (sync.hlc), which words the error; the pattern documents it.
    hlc = fields.String(
        required=True,
        metadata={
            "pattern": f"^{HLC_PATTERN.pattern}$",
            "description": "hybrid logical clock: 16 digits of milliseconds, 4 of counter, the"
            " device id (0001763712000123:0002:d-7f3a)",
        },
    )
    fields_ = fields.Dict(
        data_key="fields",
        load_default=dict,
        metadata={
            # The entity's fields, loaded by the engine once it knows the entity.
            "documented_as": lambda: [
                InspectionFieldsArgs,
                TargetFieldsArgs,
                PhotoFieldsArgs,
                TrackFieldsArgs,
            ],
            "description": "what the device changed since base_version (a create: all of them),"
            " by entity: InspectionFieldsArgs, TargetFieldsArgs, PhotoFieldsArgs or"
            " TrackFieldsArgs; a delete carries none",
        },
    )

    @ma.validates_schema
    def _delete_carries_no_fields(self, data: dict, **kwargs) -> None:
        # Fields sent with a delete would be dropped unread (API.md: never silently dropped).
        if data.get("op") == "delete" and data.get("fields_"):
            raise ma.ValidationError({"fields": [DELETE_WITH_FIELDS]})


_CHANGE_ARGS = ChangeArgs()
_CHANGE_KEYS = frozenset(("change_id", "entity", "id", "op", "base_version", "hlc", "fields"))


def load_change(raw: dict) -> dict:
    """A change's envelope loaded as ``ChangeArgs().load(raw)`` loads it, in one pass for the
    shape devices send. Raises ``ValidationError`` as the schema does.

    A push loads every change, and marshmallow's field-by-field load cost 17 µs a change, a
    twentieth of a batch of creates. What this does not vouch for (a key missing or unknown, a
    value of another type or out of range) goes to the schema, which loads it or refuses it
    with its own messages; ``tests/test_change_loader.py`` holds the two to the same results.
    """
    if raw.keys() <= _CHANGE_KEYS:
        change_id, entity, record_id = raw.get("change_id"), raw.get("entity"), raw.get("id")
        op, base_version, hlc = raw.get("op"), raw.get("base_version"), raw.get("hlc")
        fields_ = raw.get("fields", {})
        if (
            type(change_id) is str
            and type(entity) is str
            and entity in ENTITIES
            and type(record_id) is str
            and type(op) is str
            and op in OPS
            and (base_version is None or _is_version(base_version))
            and type(hlc) is str
            and type(fields_) is dict
            and not (op == "delete" and fields_)
        ):
            try:
                return {
                    "change_id": uuid.UUID(change_id),
                    "entity": entity,
                    "id": uuid.UUID(record_id),
                    "op": op,
                    "base_version": base_version,
                    "hlc": hlc,
                    "fields_": dict(fields_),
                }
            except ValueError:
                pass  # the schema words the error
    return _CHANGE_ARGS.load(raw)


def _is_version(value) -> bool:
    return type(value) is int and 0 <= value <= MAX_VERSION


class ResultSchema(ma.Schema):
    change_id = fields.String()
    id = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "applied | merged | conflict | rejected"})
    version = fields.Integer(allow_none=True)
    replayed = fields.Boolean()
    conflicts = fields.List(fields.Dict())
    error = fields.Dict(allow_none=True)


class PushSchema(ma.Schema):
    results = fields.List(fields.Nested(ResultSchema))
    server_time = fields.DateTime()


class PullArgs(StrictSchema):
    cursor = fields.String(validate=validate.Length(min=1, max=500))
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=1000))


class PulledChangeSchema(ma.Schema):
    entity = fields.String()
    id = fields.String()
    op = fields.String()
    version = fields.Integer()
    #: The record in its own wire shape, passed through as built (see sync/pull.py).
    data = fields.Raw(allow_none=True)


class PullSchema(ma.Schema):
    changes = fields.List(fields.Nested(PulledChangeSchema))
    cursor = fields.String()
    has_more = fields.Boolean()
    reset = fields.Boolean()


class TargetFieldsArgs(StrictSchema):
    """What a device may report about a target: a new shop, or a correction."""

    kind = fields.Enum(TargetKind, by_value=True)
    name = TargetName()
    address = target_address()
    location = WholeLocation()
    business_type = fields.String(validate=BUSINESS_TYPE)
    uscc = USCC(allow_none=True)
    permit_no = permit_number(allow_none=True)
    scale = fields.Enum(SiteScale, by_value=True)
    phase = fields.Enum(SitePhase, by_value=True)


class PhotoFieldsArgs(StrictSchema):
    inspection_id = fields.UUID()
    item_code = fields.String(allow_none=True, validate=validate.Length(min=1, max=16))
    taken_at = Instant()
    location = WholeLocation(allow_none=True)
    sha256 = HexDigest()
    size = fields.Integer(strict=True, validate=validate.Range(min=1, max=200 * 1024 * 1024))
    content_type = fields.String(validate=validate.OneOf(("image/jpeg", "image/png", "image/webp")))


class TrackPointArgs(StrictSchema):
    t = Instant(required=True)
    lon = StrictFloat(required=True, allow_nan=False, validate=validate.Range(min=-180, max=180))
    lat = StrictFloat(required=True, allow_nan=False, validate=validate.Range(min=-90, max=90))
    accuracy_m = StrictFloat(load_default=None, allow_none=True, validate=validate.Range(min=0))
    crs = fields.String(load_default="wgs84", validate=validate.OneOf(("wgs84", "gcj02", "bd09")))

    @ma.validates_schema
    def _on_the_globe(self, data: dict, **kwargs) -> None:
        refuse_off_the_globe(data["lon"], data["lat"], data["crs"])


class TrackFieldsArgs(StrictSchema):
    officer_id = fields.UUID(required=True)
    points = fields.List(
        fields.Nested(TrackPointArgs),
        required=True,
        validate=validate.Length(min=1, max=MAX_TRACK_POINTS),
    )


class ConflictListArgs(TimeRangeArgs):
    status = fields.String(validate=validate.OneOf(("open", "resolved")))
    kind = fields.String(validate=validate.OneOf(("field", "amendment", "delete")))
    entity = fields.String(validate=validate.OneOf(ENTITIES))
    record_id = fields.UUID()
    squadron_id = id_field(strict=False)
    target_id = fields.UUID(
        metadata={"description": "conflicts on the target, its inspections and their photos"}
    )
    officer_id = fields.UUID(metadata={"description": "whose device sent the change"})
    from_ = TimeBound(end=False, data_key="from", metadata={"description": "logged at or after"})
    to = TimeBound(end=True, metadata={"description": "logged before (a date: that whole day)"})
    order = fields.String(
        load_default="queue",
        validate=validate.OneOf(("queue", "oldest", "newest")),
        metadata={
            "description": "queue (default): open first, amendments to approved records, then"
            " deletes, then field conflicts, each oldest first; oldest; newest"
        },
    )


class ConflictSchema(ma.Schema):
    id = fields.UUID()
    entity = fields.String()
    record_id = fields.UUID()
    field = fields.String(allow_none=True)
    kind = fields.String()
    base_value = fields.Raw(allow_none=True)
    server_value = fields.Raw(allow_none=True)
    client_value = fields.Raw(allow_none=True)
    kept = fields.String()
    change_id = fields.UUID(allow_none=True)
    device_id = fields.String(allow_none=True)
    user_id = fields.UUID(allow_none=True)
    created_at = fields.DateTime()
    status = fields.String()
    resolution = fields.Dict(allow_none=True)


class ResolveArgs(StrictSchema):
    keep = fields.String(required=True, validate=validate.OneOf(("server", "client", "value")))
    value = fields.Raw(allow_none=True)

    @ma.validates_schema
    def _value_goes_with_keep_value(self, data, **kwargs):
        if data["keep"] == "value" and "value" not in data:
            raise ma.ValidationError({"value": ["required when keep is value"]})
        if data["keep"] != "value" and "value" in data:
            raise ma.ValidationError({"value": ["only with keep: value"]})


class HistoryArgs(PageArgs):
    """``page`` and ``per_page`` of an inspection's history; by default one page holds every
    version an inspection's record reaches in practice."""

    per_page = fields.Integer(
        load_default=MAX_PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE)
    )


class HistoryEntrySchema(ma.Schema):
    version = fields.Integer()
    at = fields.DateTime()
    user_id = fields.UUID(allow_none=True)
    device_id = fields.String(allow_none=True)
    change_id = fields.UUID(allow_none=True)
    hlc = fields.String(allow_none=True)
    changes = fields.Dict(metadata={"description": "field -> {from, to}"})
