"""Building blocks shared by the wire schemas: paging, points, GeoJSON polygons, bbox, near."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta

import marshmallow as ma
from marshmallow import fields, validate
from shapely.geometry import shape
from shapely.validation import explain_validity

from fieldapp.localtime import SHANGHAI

MAX_PER_PAGE = 200

#: Integer keys are 32-bit in the database; a larger number can name nothing and must not reach
#: a query (SQLite overflows, PostgreSQL refuses it).
MAX_INT_ID = 2**31 - 1
ID_RANGE = validate.Range(min=1, max=MAX_INT_ID)


def id_field(*, strict: bool = True, **kwargs) -> fields.Integer:
    """An integer key (squadron, district, checklist): 1..2³¹-1.

    ``strict`` (JSON bodies) refuses numbers sent as strings; query strings pass ``strict=False``.
    """
    return fields.Integer(strict=strict, validate=ID_RANGE, **kwargs)


class StrictFloat(fields.Float):
    """A JSON number, never a string that looks like one (``"121.4"`` is a wrong type)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``, never ``"yes"``, ``"1"`` or ``1``."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class Pattern(validate.Regexp):
    """A string the whole of which matches ``regex``. Marshmallow's ``Regexp`` matches at the
    start only, so a ``$`` there lets a trailing newline through ("S03\\n"), and ``\\d`` takes any
    Unicode digit: write ``[0-9]``. The pattern stays as written for the OpenAPI spec."""

    def __call__(self, value):
        if self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


class HexDigest(fields.String):
    """A SHA-256 digest: 64 hex digits in either case, loaded lowercase (as the server names
    the bytes everywhere: the store, ``X-Content-SHA256``, pull), so "AB…" and "ab…" are one
    digest and never a conflict."""

    def __init__(self, **kwargs):
        super().__init__(validate=Pattern(r"^[0-9a-fA-F]{64}$", error="64 hex digits"), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).lower()


#: What a name, title or text of nothing but spaces is told.
BLANK_MESSAGE = "may not be blank"


def not_blank(value: str) -> None:
    """Refuse text of nothing but spaces (a validator): every list, form and record that
    shows it would show nothing."""
    if not value.strip():
        raise ma.ValidationError(BLANK_MESSAGE)


#: C0 control characters other than tab, line feed and carriage return (which XML keeps).
_CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def no_control_characters(value: str) -> None:
    """Refuse a C0 control character other than tab, line feed and carriage return (a
    validator for names, addresses and other one-line texts), naming it and where it is.

    A paste from a spreadsheet brings them along (a vertical tab for a line break in a cell):
    they show as nothing, or as a box, and XML 1.0 cannot hold them at all, so a target's
    name with one made its QR label an SVG no browser or printer would open."""
    found = _CONTROL_CHARACTER.search(value)
    if found:
        raise ma.ValidationError(
            f"text may not contain control characters (\\u{ord(found.group()):04x} at"
            f" character {found.start() + 1})"
        )


class StrippedText(fields.String):
    """A name, title or short text without the spaces around it, and not blank: a paste's
    trailing space would otherwise make two names that read the same, and a name of spaces
    shows nothing. ``max_length`` counts the text as stored (stripped). Control characters are
    refused (:func:`no_control_characters`)."""

    def __init__(self, max_length: int, **kwargs):
        super().__init__(
            validate=[validate.Length(min=1, max=max_length), no_control_characters], **kwargs
        )

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise ma.ValidationError(BLANK_MESSAGE)
        return text


def text_field(max_length: int, **kwargs) -> fields.String:
    """A text of 1 to ``max_length`` characters that is not blank (:func:`not_blank`)."""
    return fields.String(validate=[validate.Length(min=1, max=max_length), not_blank], **kwargs)


NUL_MESSAGE = "text may not contain the NUL character (\\u0000)"
SURROGATE_MESSAGE = "text is not valid Unicode (unpaired surrogate)"


def text_problem(text: str) -> str | None:
    """Why the database cannot store ``text`` (PostgreSQL refuses NUL in text, and neither
    database takes unpaired surrogates), or None."""
    if "\x00" in text:
        return NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def text_errors(data: dict) -> dict[str, list[str]]:
    """:func:`text_problem` for each field of a JSON object, strings inside it at any depth
    included (keys too), by field name; ``_schema`` for a field whose name is itself such text.
    Iterative: the depth of the JSON is bounded where it is read, not here."""
    errors: dict[str, list[str]] = {}
    for name, value in data.items():
        if text_problem(name):
            name, value = "_schema", name
        stack, problem = [value], None
        while stack and problem is None:
            item = stack.pop()
            if isinstance(item, str):
                problem = text_problem(item)
            elif isinstance(item, dict):
                for key, child in item.items():
                    problem = problem or text_problem(key)
                    stack.append(child)
            elif isinstance(item, list):
                stack.extend(item)
        if problem:
            errors[name] = [problem]
    return errors


#: What a time outside the range fieldapp can store is told (Python's, in UTC).
OUT_OF_CALENDAR = "a time between the years 1 and 9999 in UTC"


def has_utc_instant(moment: datetime) -> bool:
    """Whether an aware time converts to UTC within Python's years 1-9999 (year 1 at a positive
    offset and 9999-12-31 at a negative one do not), as every time is stored and compared."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


class Instant(fields.AwareDateTime):
    """A time with its offset (ISO 8601), as fieldapp stores it: in UTC, so it must have a UTC
    instant within the calendar."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        if not has_utc_instant(moment):
            raise ma.ValidationError(OUT_OF_CALENDAR)
        return moment


class StrictSchema(ma.Schema):
    """Unknown fields are an error (422), never silently dropped."""

    class Meta:
        unknown = ma.RAISE


class NoBodyArgs(StrictSchema):
    """The body of an endpoint that takes none: nothing, or ``{}``.

    Declared (``@blp.arguments(NoBodyArgs, required=False)``) so that a body sent anyway is read
    as every body is: malformed JSON is a 400, a field is refused by name (422), never dropped.
    """


class PageArgs(StrictSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class PageMetaSchema(ma.Schema):
    page = fields.Integer()
    per_page = fields.Integer()
    has_more = fields.Boolean(metadata={"description": "another page follows"})


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """An envelope ``{items: [...], page, per_page, has_more}`` for a list endpoint."""
    return type(
        name,
        (PageMetaSchema,),
        {"items": fields.List(fields.Nested(item_schema))},
    )


class LonLat(ma.Schema):
    """A WGS-84 point as ``{lon, lat}``."""

    class Meta:
        unknown = ma.RAISE

    lon = StrictFloat(required=True, allow_nan=False, validate=validate.Range(min=-180, max=180))
    lat = StrictFloat(required=True, allow_nan=False, validate=validate.Range(min=-90, max=90))


def _check_position(position, path: str) -> list[float]:
    if (
        not isinstance(position, list | tuple)
        or len(position) not in (2, 3)
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in position)
    ):
        raise ma.ValidationError(f"{path}: a position is [lon, lat]")
    lon, lat = position[0], position[1]
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ma.ValidationError(f"{path}: coordinates must be finite numbers")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ma.ValidationError(
            f"{path}: [{lon}, {lat}] is out of range (lon -180..180, lat -90..90)"
        )
    return [float(lon), float(lat)]


def _check_ring(ring, path: str) -> list[list[float]]:
    if not isinstance(ring, list) or len(ring) < 4:
        raise ma.ValidationError(f"{path}: a linear ring needs at least 4 positions")
    positions = [_check_position(p, f"{path}[{i}]") for i, p in enumerate(ring)]
    if positions[0] != positions[-1]:
        raise ma.ValidationError(f"{path}: a linear ring must end where it starts")
    return positions


class GeoJSONPolygon(fields.Field):
    """A GeoJSON ``Polygon`` (or ``MultiPolygon`` when ``allow_multi``) geometry in WGS-84.

    Checked structurally (closed rings, numeric positions in range) and then by shapely for
    validity, so self-intersecting rings are refused with the reason.
    """

    default_error_messages = {"invalid": "not a GeoJSON polygon geometry"}

    def __init__(self, *, allow_multi: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.allow_multi = allow_multi

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        allowed = ("Polygon", "MultiPolygon") if self.allow_multi else ("Polygon",)
        gtype = value.get("type")
        if gtype not in allowed:
            raise ma.ValidationError(f"type must be {' or '.join(allowed)}, not {gtype!r}")
        extra = set(value) - {"type", "coordinates", "bbox"}
        if extra:
            raise ma.ValidationError(f"unexpected members: {', '.join(sorted(extra))}")
        coords = value.get("coordinates")
        if not isinstance(coords, list) or not coords:
            raise ma.ValidationError("coordinates must be a non-empty list")
        if gtype == "Polygon":
            clean = [_check_ring(r, f"coordinates[{i}]") for i, r in enumerate(coords)]
        else:
            clean = []
            for j, polygon in enumerate(coords):
                if not isinstance(polygon, list) or not polygon:
                    raise ma.ValidationError(f"coordinates[{j}]: a polygon is a list of rings")
                clean.append(
                    [_check_ring(r, f"coordinates[{j}][{i}]") for i, r in enumerate(polygon)]
                )
        geometry = {"type": gtype, "coordinates": clean}
        geom = shape(geometry)
        if not geom.is_valid:
            raise ma.ValidationError(f"invalid polygon: {explain_validity(geom)}")
        if geom.area == 0:
            raise ma.ValidationError("the polygon has no area")
        return geometry

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class BBoxField(fields.Field):
    """``minlon,minlat,maxlon,maxlat`` in a query string."""

    #: Its OpenAPI schema (fieldapp.api documents custom fields by this).
    OPENAPI = {"type": "string", "description": "minlon,minlat,maxlon,maxlat (WGS-84)"}

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            parts = [float(p) for p in str(value).split(",")]
        except ValueError:
            raise ma.ValidationError("bbox is minlon,minlat,maxlon,maxlat (numbers)") from None
        if len(parts) != 4 or not all(math.isfinite(p) for p in parts):
            raise ma.ValidationError("bbox is minlon,minlat,maxlon,maxlat (four numbers)")
        minlon, minlat, maxlon, maxlat = parts
        if not (-180 <= minlon <= maxlon <= 180 and -90 <= minlat <= maxlat <= 90):
            raise ma.ValidationError("bbox out of range or min > max")
        return tuple(parts)


MAX_NEAR_METRES = 50_000


class NearField(fields.Field):
    """``lon,lat,metres`` in a query string: a circle around a point."""

    OPENAPI = {
        "type": "string",
        "description": f"lon,lat,metres (WGS-84; metres up to {MAX_NEAR_METRES}): nearest first",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            parts = [float(p) for p in str(value).split(",")]
        except ValueError:
            raise ma.ValidationError("near is lon,lat,metres (numbers)") from None
        if len(parts) != 3 or not all(math.isfinite(p) for p in parts):
            raise ma.ValidationError("near is lon,lat,metres (three numbers)")
        lon, lat, metres = parts
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ma.ValidationError("near: lon or lat out of range")
        if not (0 < metres <= MAX_NEAR_METRES):
            raise ma.ValidationError(f"near: metres must be between 0 and {MAX_NEAR_METRES}")
        return (lon, lat, metres)


class TimeBound(fields.Field):
    """``from``/``to`` in a query string: a date (a whole Shanghai day: ``from`` its start,
    ``to`` its end, so ``to`` is inclusive) or a time with an offset (exact).

    Loads as the exclusive/inclusive boundary instant in UTC-aware form.
    """

    default_error_messages = {
        "invalid": "a date (2026-11-20) or a time with an offset (2026-11-20T09:30:00+08:00)"
    }
    OPENAPI = {
        "anyOf": [
            {"type": "string", "format": "date"},
            {"type": "string", "format": "date-time"},
        ]
    }

    def __init__(self, *, end: bool, **kwargs):
        super().__init__(**kwargs)
        self.end = end

    def _deserialize(self, value, attr, data, **kwargs):
        text = str(value).strip()
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                if self.end:
                    day += timedelta(days=1)
                moment = datetime.combine(day, time(0), tzinfo=SHANGHAI)
            else:
                moment = datetime.fromisoformat(text)
        except ValueError:
            raise self.make_error("invalid") from None
        except OverflowError:  # the day after 9999-12-31
            raise ma.ValidationError(OUT_OF_CALENDAR) from None
        if moment.tzinfo is None:
            raise ma.ValidationError("a time needs its offset (e.g. +08:00)")
        if not has_utc_instant(moment):
            raise ma.ValidationError(OUT_OF_CALENDAR)
        return moment


class TimeRangeArgs(PageArgs):
    """A list's ``from`` and ``to`` (:class:`TimeBound`: a Shanghai date or a time with its
    offset), ``from`` before ``to``; one reading for every list filtered by time, so a client
    sends the same forms everywhere. Lists override the two fields to say what they bound."""

    from_ = TimeBound(
        end=False, data_key="from", metadata={"description": "at or after (a date: its start)"}
    )
    to = TimeBound(end=True, metadata={"description": "before (a date: that whole day included)"})

    @ma.validates_schema
    def _from_before_to(self, data, **kwargs):
        if "from_" in data and "to" in data and data["from_"] >= data["to"]:
            raise ma.ValidationError({"to": ["must be after from"]})
