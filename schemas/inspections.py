"""Inspections on the wire: what devices send (``InspectionFieldsArgs``) and what everyone reads."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime

import marshmallow as ma
from marshmallow import fields, validate

from fieldapp.geo import off_the_globe
from fieldapp.inspections.models import CoordinateSystem, InspectionStatus, Origin, Outcome
from schemas.common import (
    MAX_INT_ID,
    Instant,
    Pattern,
    StrictFloat,
    StrictSchema,
    has_utc_instant,
    id_field,
)

ANSWER_RESULTS = ("pass", "fail", "na")
MAX_PHOTOS = 50
ITEM_CODE = Pattern(r"^[A-Z][A-Z0-9]{1,15}$", error="an item code such as S03")


class DeviceLocation(StrictSchema):
    """Where the inspection was recorded, in the coordinate system the device's map uses."""

    lon = StrictFloat(required=True, allow_nan=False, validate=validate.Range(min=-180, max=180))
    lat = StrictFloat(required=True, allow_nan=False, validate=validate.Range(min=-90, max=90))
    accuracy_m = StrictFloat(
        load_default=None,
        allow_none=True,
        allow_nan=False,
        validate=validate.Range(min=0, max=100_000),
    )
    crs = fields.Enum(CoordinateSystem, by_value=True, load_default=CoordinateSystem.wgs84)

    @ma.validates_schema
    def _on_the_globe(self, data: dict, **kwargs) -> None:
        refuse_off_the_globe(data["lon"], data["lat"], data["crs"])


def refuse_off_the_globe(lon: float, lat: float, crs: str) -> None:
    """A point is stored in WGS-84: one that falls off the globe once converted there (a BD-09
    point at the antimeridian or the south pole) is refused, naming the coordinate."""
    off = off_the_globe(lon, lat, crs)
    if off:
        message = f"off the globe once converted from {crs} to WGS-84, as points are stored"
        raise ma.ValidationError({name: [message] for name in off})


class WholeLocation(fields.Nested):
    """A location is written whole: ``lon`` and ``lat`` are required even in an edit that sends
    only some fields (marshmallow would pass the edit's ``partial`` down to the location)."""

    def __init__(self, **kwargs):
        super().__init__(DeviceLocation, **kwargs)

    def _deserialize(self, value, attr, data, partial=None, **kwargs):
        return super()._deserialize(value, attr, data, partial=False, **kwargs)


class Answer(StrictSchema):
    """One checklist item's answer (documents the shape; :class:`Answers` loads it)."""

    result = fields.String(required=True, validate=validate.OneOf(ANSWER_RESULTS))
    note = fields.String(load_default="", validate=validate.Length(max=2000))
    photo_ids = fields.List(
        fields.UUID(), load_default=list, validate=validate.Length(max=MAX_PHOTOS)
    )


class Answers(fields.Dict):
    """Item code -> :class:`Answer`, loaded and dumped in one pass.

    Every pushed inspection carries one answer per checklist item; loading each through a nested
    schema was the largest single cost of a push. The rules are :class:`Answer`'s (a test holds
    the two to the same results), and errors are keyed by item code, then by answer field.
    """

    _ANSWER_FIELDS = frozenset(("result", "note", "photo_ids"))

    def __init__(self, **kwargs):
        super().__init__(keys=fields.String(), values=fields.Nested(Answer), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ma.ValidationError("Not a valid mapping type.")
        loaded, errors = {}, {}
        for code, answer in value.items():
            problems = self._answer_errors(code, answer)
            if problems:
                errors[code] = problems
                continue
            loaded[code] = {
                "result": answer["result"],
                "note": answer.get("note", ""),
                "photo_ids": [uuid.UUID(p) for p in answer.get("photo_ids", ())],
            }
        if errors:
            raise ma.ValidationError(errors)
        return loaded

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return {str(code): _dump_answer(answer) for code, answer in value.items()}

    def _answer_errors(self, code, answer) -> dict | list:
        if not isinstance(code, str) or ITEM_CODE.regex.fullmatch(code) is None:
            return [ITEM_CODE.error]
        if not isinstance(answer, dict):
            return {"_schema": ["Invalid input type."]}
        problems: dict[str, list[str]] = {}
        for name in answer.keys() - self._ANSWER_FIELDS:
            problems[name] = ["Unknown field."]
        result = answer.get("result")
        if result is None:
            missing = "result" not in answer
            problems["result"] = [
                "Missing data for required field." if missing else "Field may not be null."
            ]
        elif not isinstance(result, str) or result not in ANSWER_RESULTS:
            problems["result"] = [f"Must be one of: {', '.join(ANSWER_RESULTS)}."]
        note = answer.get("note", "")
        if not isinstance(note, str):
            problems["note"] = ["Not a valid string."]
        elif len(note) > 2000:
            problems["note"] = ["Longer than maximum length 2000."]
        photo_ids = answer.get("photo_ids", [])
        if not isinstance(photo_ids, list):
            problems["photo_ids"] = ["Not a valid list."]
        elif len(photo_ids) > MAX_PHOTOS:
            problems["photo_ids"] = [f"Longer than maximum length {MAX_PHOTOS}."]
        else:
            bad = {n: ["Not a valid UUID."] for n, p in enumerate(photo_ids) if not _is_uuid(p)}
            if bad:
                problems["photo_ids"] = bad
        return problems


def _dump_answer(answer: dict) -> dict:
    """What dumping through :class:`Answer` gives, without a nested schema per item."""
    out = {}
    for name in ("result", "note"):
        if name in answer:
            out[name] = None if answer[name] is None else str(answer[name])
    if "photo_ids" in answer:
        photo_ids = answer["photo_ids"]
        out["photo_ids"] = (
            None if photo_ids is None else [None if p is None else str(p) for p in photo_ids]
        )
    return out


def _is_uuid(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _distinct(ids: list) -> None:
    if len(set(ids)) != len(ids):
        raise ma.ValidationError("each officer is listed once")


class InspectionFieldsArgs(StrictSchema):
    """The fields a device may write. A create sends all required ones; an edit only changes.

    ``review``, ``score``, ``flags``, ``received_at`` and ``submitted_at`` belong to the server:
    a device that sends them is refused, field by field.
    """

    target_id = fields.UUID()
    checklist_id = id_field()
    checklist_version = fields.Integer(strict=True, validate=validate.Range(min=1, max=10_000))
    officer_ids = fields.List(fields.UUID(), validate=[validate.Length(min=1, max=6), _distinct])
    origin = fields.Enum(Origin, by_value=True)
    task_id = fields.UUID(allow_none=True)
    draw_id = fields.UUID(allow_none=True)
    started_at = Instant(default_timezone=None)
    ended_at = Instant(allow_none=True)
    location = WholeLocation()
    answers = Answers()
    findings = fields.String(validate=validate.Length(max=10_000))
    outcome = fields.Enum(Outcome, by_value=True, allow_none=True)
    rectification_deadline = fields.Date(allow_none=True)
    legal_basis = fields.String(allow_none=True, validate=validate.Length(max=300))
    follow_up_of = fields.UUID(allow_none=True)
    photo_ids = fields.List(fields.UUID(), validate=validate.Length(max=MAX_PHOTOS))
    status = fields.Enum(InspectionStatus, by_value=True)


#: What a create must carry (API.md).
CREATE_REQUIRED = (
    "target_id",
    "checklist_id",
    "checklist_version",
    "officer_ids",
    "origin",
    "started_at",
    "location",
    "answers",
    "status",
)

#: Server-owned fields a device must not send.
SERVER_FIELDS = ("review", "score", "flags", "received_at", "submitted_at", "id", "version")


class InspectionSchema(ma.Schema):
    """The inspection as every client reads it (API.md, "Wire shapes")."""

    id = fields.UUID(dump_only=True)
    version = fields.Integer(dump_only=True)
    target_id = fields.UUID(dump_only=True)
    squadron_id = fields.Integer(dump_only=True)
    checklist_id = fields.Integer(dump_only=True)
    checklist_version = fields.Integer(dump_only=True)
    officer_ids = fields.List(fields.UUID(), dump_only=True)
    origin = fields.Enum(Origin, by_value=True, dump_only=True)
    task_id = fields.UUID(dump_only=True, allow_none=True)
    draw_id = fields.UUID(dump_only=True, allow_none=True)
    started_at = fields.DateTime(dump_only=True)
    ended_at = fields.DateTime(dump_only=True, allow_none=True)
    location = fields.Method("_location", dump_only=True)
    answers = fields.Dict(dump_only=True)
    findings = fields.String(dump_only=True)
    outcome = fields.Enum(Outcome, by_value=True, dump_only=True, allow_none=True)
    rectification_deadline = fields.Date(dump_only=True, allow_none=True)
    legal_basis = fields.String(dump_only=True, allow_none=True)
    follow_up_of = fields.UUID(dump_only=True, allow_none=True)
    photo_ids = fields.List(fields.String(), dump_only=True)
    status = fields.Enum(InspectionStatus, by_value=True, dump_only=True)
    review = fields.Method("_review", dump_only=True)
    score = fields.Integer(dump_only=True, allow_none=True)
    flags = fields.List(fields.String(), dump_only=True)
    received_at = fields.DateTime(dump_only=True)
    submitted_at = fields.DateTime(dump_only=True, allow_none=True)

    def _location(self, obj):
        location = {"lon": obj.lon, "lat": obj.lat, "accuracy_m": obj.accuracy_m, "crs": "wgs84"}
        if obj.location_original:
            location["original"] = obj.location_original
        return location

    def _review(self, obj):
        return {
            "status": obj.review_status.value,
            "comment": obj.review_comment,
            "reviewed_by": str(obj.reviewed_by_id) if obj.reviewed_by_id else None,
            "reviewed_at": obj.reviewed_at.isoformat() if obj.reviewed_at else None,
        }


class _Decline(Exception):
    """The one-pass loader does not vouch for a value: the schema loads it (and words the error)."""


def _parsed(parse, value):
    """``parse(value)`` for text it accepts; anything else is declined."""
    if type(value) is not str:
        raise _Decline
    try:
        return parse(value)
    except ValueError:
        raise _Decline from None


def _uuid(value) -> uuid.UUID:
    return _parsed(uuid.UUID, value)


def _uuids(value, most: int, least: int = 0) -> list[uuid.UUID]:
    if type(value) is not list or not least <= len(value) <= most:
        raise _Decline
    return [_uuid(v) for v in value]


def _distinct_uuids(value, most: int, least: int = 0) -> list[uuid.UUID]:
    ids = _uuids(value, most, least)
    if len(set(ids)) != len(ids):
        raise _Decline
    return ids


def _text(value, most: int) -> str:
    if type(value) is not str or len(value) > most:
        raise _Decline
    return value


def _member(enum_type):
    members = {member.value: member for member in enum_type}

    def load(value):
        if type(value) is not str or value not in members:
            raise _Decline
        return members[value]

    return load


def _aware_datetime(value):
    parsed = _parsed(datetime.fromisoformat, value)
    aware = parsed.tzinfo is not None and parsed.tzinfo.utcoffset(parsed) is not None
    if not aware or not has_utc_instant(parsed):
        raise _Decline
    return parsed


def _date(value):
    return _parsed(date.fromisoformat, value)


def _coordinate(value, limit: float) -> float:
    if type(value) is not float and type(value) is not int:
        raise _Decline
    try:
        number = float(value)
    except OverflowError:
        raise _Decline from None
    if not -limit <= number <= limit:  # also refuses NaN
        raise _Decline
    return number


_CRS = _member(CoordinateSystem)
_LOCATION_KEYS = frozenset(("lon", "lat", "accuracy_m", "crs"))


def _location(value) -> dict:
    if type(value) is not dict or not value.keys() <= _LOCATION_KEYS:
        raise _Decline
    accuracy = value.get("accuracy_m")
    location = {
        "lon": _coordinate(value.get("lon"), 180),
        "lat": _coordinate(value.get("lat"), 90),
        "accuracy_m": None if accuracy is None else _accuracy(accuracy),
        "crs": _CRS(value["crs"]) if "crs" in value else CoordinateSystem.wgs84,
    }
    if off_the_globe(location["lon"], location["lat"], location["crs"]):
        raise _Decline
    return location


def _accuracy(value) -> float:
    number = _coordinate(value, 100_000)
    if number < 0:
        raise _Decline
    return number


def _nullable(load):
    return lambda value: None if value is None else load(value)


def _version(value) -> int:
    if type(value) is not int or not 1 <= value <= 10_000:
        raise _Decline
    return value


def _checklist_id(value) -> int:
    if type(value) is not int or not 1 <= value <= MAX_INT_ID:
        raise _Decline
    return value


_ANSWERS = Answers()


def _answers(value) -> dict:
    if type(value) is not dict:
        raise _Decline
    try:
        return _ANSWERS._deserialize(value, "answers", None)
    except ma.ValidationError:
        raise _Decline from None


#: How each device-writable field loads in one pass (``InspectionFieldsArgs`` is the rule book).
_FIELD_LOADERS = {
    "target_id": _uuid,
    "checklist_id": _checklist_id,
    "checklist_version": _version,
    "officer_ids": lambda value: _distinct_uuids(value, 6, 1),
    "origin": _member(Origin),
    "task_id": _nullable(_uuid),
    "draw_id": _nullable(_uuid),
    "started_at": _aware_datetime,
    "ended_at": _nullable(_aware_datetime),
    "location": _location,
    "answers": _answers,
    "findings": lambda value: _text(value, 10_000),
    "outcome": _nullable(_member(Outcome)),
    "rectification_deadline": _nullable(_date),
    "legal_basis": _nullable(lambda value: _text(value, 300)),
    "follow_up_of": _nullable(_uuid),
    "photo_ids": lambda value: _uuids(value, MAX_PHOTOS),
    "status": _member(InspectionStatus),
}


def _wire(value):
    """A loaded value as ``InspectionFieldsArgs`` dumps it."""
    if value is None or type(value) in (str, int, float):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if type(value) is list:
        return [_wire(v) for v in value]
    raise TypeError(f"no wire form for {type(value).__name__}")


def load_inspection_fields(data: dict) -> dict:
    """The device's fields loaded as ``InspectionFieldsArgs().load(data, partial=True)`` loads
    them, in one pass, with times in UTC. Raises ``ValidationError`` as the schema does.

    A push loads every change's fields, and marshmallow's machinery was a third of a create's
    server time. Values this loader does not vouch for (wrong types, out of range, unknown
    fields) go to the schema, which refuses them with its own messages;
    ``tests/test_inspection_loader.py`` holds the two to the same results.
    """
    try:
        if not data.keys() <= _FIELD_LOADERS.keys():
            raise _Decline
        loaded = {name: load(data[name]) for name, load in _FIELD_LOADERS.items() if name in data}
    except _Decline:
        loaded = _FIELDS_SCHEMA.load(data, partial=True)
    for name in ("started_at", "ended_at"):
        if loaded.get(name) is not None:
            loaded[name] = loaded[name].astimezone(UTC)
    return loaded


def inspection_fields_wire(loaded: dict) -> dict:
    """Loaded device fields as ``InspectionFieldsArgs`` dumps them (the form values compare in)."""
    wire = {}
    for name, value in loaded.items():
        if name == "answers":
            wire[name] = _ANSWERS._serialize(value, name, None)
        elif name == "location":
            wire[name] = {key: _wire(part) for key, part in value.items()}
        else:
            wire[name] = _wire(value)
    return wire


_FIELDS_SCHEMA = InspectionFieldsArgs()
