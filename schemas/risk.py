"""Risk, schedule and draws on the wire, and the checks on the risk model's settings."""

from __future__ import annotations

import math

import marshmallow as ma
from marshmallow import fields, validate

from fieldapp.risk.defaults import DEFAULT_SETTINGS
from fieldapp.risk.scoring import RiskLevel
from fieldapp.targets.models import TargetKind
from schemas.common import (
    PageArgs,
    StrictFloat,
    StrictSchema,
    TimeBound,
    TimeRangeArgs,
    id_field,
)

LEVELS = [level.value for level in RiskLevel]


class FactorSchema(ma.Schema):
    factor = fields.String(dump_only=True)
    points = fields.Integer(dump_only=True)
    reason = fields.String(dump_only=True)
    source = fields.Dict(dump_only=True, allow_none=True)


class FloorSchema(ma.Schema):
    level = fields.String(dump_only=True)
    reason = fields.String(dump_only=True)
    until = fields.String(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "the Shanghai day the floor lifts (it holds on the days before this"
            " one); null: while the fact lasts"
        },
    )
    source = fields.Dict(dump_only=True, allow_none=True)


class LevelChangeSchema(ma.Schema):
    at = fields.DateTime(dump_only=True)
    from_ = fields.String(data_key="from", dump_only=True, allow_none=True)
    to = fields.String(dump_only=True)
    score = fields.Integer(dump_only=True)
    reason = fields.String(dump_only=True)


class RiskSchema(ma.Schema):
    """A target's risk: the score, every point of it, the floors, the level and its history."""

    target_id = fields.UUID(dump_only=True)
    score = fields.Integer(dump_only=True)
    level = fields.String(dump_only=True)
    factors = fields.List(fields.Nested(FactorSchema), dump_only=True)
    floors = fields.List(fields.Nested(FloorSchema), dump_only=True)
    reason = fields.String(dump_only=True, metadata={"description": "why the level is what it is"})
    next_due = fields.Date(dump_only=True, allow_none=True)
    level_since = fields.DateTime(dump_only=True)
    assessed_at = fields.DateTime(dump_only=True)
    history = fields.List(fields.Nested(LevelChangeSchema), dump_only=True)


class RiskBriefSchema(RiskSchema):
    """A target's risk without its level history (in the target's file)."""

    class Meta:
        exclude = ("history",)


class RiskSummaryArgs(StrictSchema):
    kind = fields.Enum(TargetKind, by_value=True)
    squadron_id = id_field(strict=False)


class LevelCountSchema(ma.Schema):
    level = fields.String(dump_only=True)
    count = fields.Integer(dump_only=True)
    share = fields.Float(
        dump_only=True,
        metadata={
            "description": "count / total to 4 decimals; the shares of one total add up to "
            "exactly 1 (largest-remainder rounding)"
        },
    )


class GroupSummarySchema(ma.Schema):
    squadron_id = fields.Integer(dump_only=True)
    kind = fields.String(dump_only=True)
    total = fields.Integer(dump_only=True)
    levels = fields.List(fields.Nested(LevelCountSchema), dump_only=True)


class RiskSummarySchema(ma.Schema):
    total = fields.Integer(dump_only=True)
    levels = fields.List(fields.Nested(LevelCountSchema), dump_only=True)
    groups = fields.List(fields.Nested(GroupSummarySchema), dump_only=True)


class RiskSettingSchema(ma.Schema):
    key = fields.String(dump_only=True)
    description = fields.String(dump_only=True)
    value = fields.Dict(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)
    updated_by = fields.UUID(attribute="updated_by_id", dump_only=True, allow_none=True)


def _group(key: str) -> fields.Raw:
    """A settings group of a PATCH, loaded as sent: :func:`check_settings` judges it whole, with
    the groups it does not replace. Documented with the shape that check holds it to."""
    return fields.Raw(
        allow_none=True,  # refused by _groups_are_objects, in its words
        metadata={
            "documented_as": lambda: {
                "description": DEFAULT_SETTINGS[key]["description"],
                **_setting_doc(DEFAULT_SETTINGS[key]["value"], (key,)),
            }
        },
    )


class RiskSettingsArgs(StrictSchema):
    """Groups to replace, each whole: ``{"credit": {"cap": 10, "class": {...}}}``."""

    #: A key that names no group, in the words fieldapp.risk.operations.update_settings uses.
    error_messages = {"unknown": "not a risk setting group"}

    inherent = _group("inherent")
    compliance = _group("compliance")
    history = _group("history")
    complaints = _group("complaints")
    credit = _group("credit")
    levels = _group("levels")
    floors = _group("floors")
    downgrade = _group("downgrade")
    frequency = _group("frequency")
    draw = _group("draw")

    @ma.validates_schema(pass_original=True)
    def _groups_are_objects(self, data, original, **kwargs):
        if not original:
            raise ma.ValidationError("name at least one settings group", "_schema")
        for key, value in original.items():
            if not isinstance(value, dict):
                raise ma.ValidationError("a settings group is a JSON object", key)


class ScheduleDueArgs(PageArgs):
    squadron_id = id_field(strict=False)
    kind = fields.Enum(TargetKind, by_value=True)
    on = fields.Date(metadata={"description": "the day to plan for (default: today in Shanghai)"})


class DueTargetSchema(ma.Schema):
    target_id = fields.UUID(dump_only=True)
    code = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    kind = fields.String(dump_only=True)
    squadron_id = fields.Integer(dump_only=True)
    level = fields.String(dump_only=True)
    next_due = fields.Date(dump_only=True, allow_none=True)
    days_overdue = fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "null: never inspected"}
    )


# -- settings checks -----------------------------------------------------------------------------

#: Mappings where an admin may add keys (a new business type), not only change values, with
#: the key each must keep: the fallback every key not listed scores (scoring.score_factors).
#: Without it, every shop of a type not listed would score 0 silently.
_OPEN_MAPPINGS = {("inherent", "business_type"): "other"}

#: Upper bounds, so that every number means something to a leader and stays within what dates
#: can count (a floor of ten million days overflows the calendar and would fail every later
#: assessment). Ten years of days, ten years of months; points, caps, thresholds and counts of
#: inspections are at most 100 (scores are 0..100). Draw rates are shares (0..1), checked below.
MAX_DAYS = 3650
MAX_MONTHS = 120
MAX_POINTS = 100
_DAY_SETTINGS = {"days", "days_at_level", "complaint_free_days"}


def _upper_bound(path: tuple) -> tuple[float, str] | None:
    """The largest value the setting at ``path`` may take, and its unit (None: checked apart)."""
    if path[0] == "draw":
        return None
    if path[0] == "frequency" or path[-1] in _DAY_SETTINGS:
        return MAX_DAYS, " days"
    if path[-1] == "months":
        return MAX_MONTHS, " months"
    return MAX_POINTS, ""


def _shape_errors(default, value, path: tuple) -> dict:
    """Where ``value`` does not have the shape of ``default`` (same keys, same kinds)."""
    if isinstance(default, dict):
        if not isinstance(value, dict):
            return {".".join(path): ["must be an object"]}
        errors = {}
        fallback = _OPEN_MAPPINGS.get(path[-2:])
        open_keys = fallback is not None
        for key in default:
            if key not in value:
                if key == fallback:
                    errors[".".join((*path, key))] = [
                        "missing: it scores every key not listed, so it may not be left out"
                    ]
                elif not open_keys:
                    errors[".".join((*path, key))] = ["missing"]
                continue
            errors |= _shape_errors(default[key], value[key], (*path, key))
        for key in value.keys() - default.keys():
            if open_keys:
                sample = next(iter(default.values()))
                errors |= _shape_errors(sample, value[key], (*path, key))
            else:
                errors[".".join((*path, key))] = ["unknown setting"]
        return errors
    if isinstance(default, str):
        if value not in LEVELS:
            return {".".join(path): [f"must be one of {', '.join(LEVELS)}"]}
        return {}
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value):
        return {".".join(path): ["must be a number"]}
    if isinstance(default, int) and not isinstance(default, bool) and value != int(value):
        return {".".join(path): ["must be a whole number"]}
    if value < 0:
        return {".".join(path): ["must not be negative"]}
    bound = _upper_bound(path)
    if bound is not None and value > bound[0]:
        return {".".join(path): [f"at most {bound[0]}{bound[1]}"]}
    return {}


def _setting_doc(default, path: tuple) -> dict:
    """The JSON schema of the setting at ``path`` whose installed value is ``default``: the
    shape and bounds :func:`_shape_errors` and :func:`check_settings` hold a new value to (the
    rules across settings are told in the PATCH's description)."""
    if isinstance(default, dict):
        properties = {key: _setting_doc(value, (*path, key)) for key, value in default.items()}
        if path[-2:] in _OPEN_MAPPINGS:  # any key may be added, each like the others
            sample = _setting_doc(next(iter(default.values())), (*path, "*"))
            return {
                "type": "object",
                "properties": properties,
                "required": [_OPEN_MAPPINGS[path[-2:]]],
                "additionalProperties": sample,
            }
        return {
            "type": "object",
            "properties": properties,
            "required": list(default),
            "additionalProperties": False,
        }
    if isinstance(default, str):
        return {"type": "string", "enum": LEVELS}
    doc = {"type": "number" if isinstance(default, float) else "integer", "minimum": 0}
    if path[0] == "draw":  # shares of each level
        doc["maximum"] = 1
        if path[-1] == "low":
            doc["exclusiveMinimum"] = True
        elif path[-1] == "high":
            doc["minimum"] = 1
    else:
        doc["maximum"] = _upper_bound(path)[0]
        if path[0] in ("levels", "frequency") or path[:2] == ("downgrade", "clean_inspections"):
            doc["minimum"] = 1
    return doc


def check_settings(settings: dict) -> dict:
    """Field-level errors of a whole settings table (empty: it holds)."""
    errors = {}
    for key, default in DEFAULT_SETTINGS.items():
        errors |= _shape_errors(default["value"], settings.get(key), (key,))
    if errors:
        return errors
    caps = sum(
        settings[k]["cap"] for k in ("inherent", "compliance", "history", "complaints", "credit")
    )
    if caps > 100:
        errors["cap"] = [f"the factor caps add up to {caps}; at most 100 keeps scores in 0..100"]
    severity = settings["compliance"]["severity"]
    if not severity["minor"] <= severity["moderate"] <= severity["severe"]:
        # Inverted, a severe finding (油烟直排) would weigh less than a minor one and its shop
        # be inspected less often.
        errors["compliance.severity"] = [
            "a worse finding weighs at least as much: minor <= moderate <= severe"
        ]
    credit = settings["credit"]["class"]
    if not credit["A"] <= credit["B"] <= credit["C"] <= credit["D"]:
        errors["credit.class"] = ["a worse credit class scores at least as much: A <= B <= C <= D"]
    levels = settings["levels"]
    if not 0 < levels["medium"] < levels["elevated"] < levels["high"] <= 100:
        errors["levels"] = ["thresholds must rise: 0 < medium < elevated < high <= 100"]
    for name, rate in settings["draw"]["rates"].items():
        if not 0 <= rate <= 1:
            errors[f"draw.rates.{name}"] = ["a rate is a share between 0 and 1"]
    if settings["draw"]["rates"]["low"] <= 0:
        errors["draw.rates.low"] = ["low risk is never exempt from random draws: rate above 0"]
    if settings["draw"]["rates"]["high"] != 1:
        # Kept in the table (migration 0005 wrote it) only to say so; never anything else.
        errors["draw.rates.high"] = ["high risk is always drawn entirely: the rate is 1"]
    for kind, table in settings["frequency"].items():
        for level, days in table.items():
            if days < 1:
                errors[f"frequency.{kind}.{level}"] = ["at least 1 day"]
        if not table["low"] >= table["medium"] >= table["elevated"] >= table["high"]:
            errors[f"frequency.{kind}"] = ["higher levels are inspected at least as often"]
    for kind, count in settings["downgrade"]["clean_inspections"].items():
        if count < 1:
            errors[f"downgrade.clean_inspections.{kind}"] = ["at least 1"]
    return errors


# -- draws (双随机一公开) -----------------------------------------------------------------------


def _rate(description: str):
    return StrictFloat(
        allow_nan=False,
        validate=validate.Range(min=0, max=1),
        metadata={"description": description},
    )


class DrawRatesArgs(StrictSchema):
    """The share of each level to draw (API.md: ``{low, medium, elevated}``). High risk has no
    rate: every high-risk target is drawn, always."""

    low = _rate("above 0: low risk is never exempt")
    medium = _rate("share of medium-risk targets")
    elevated = _rate("share of elevated-risk targets")

    @ma.pre_load
    def _high_is_always_drawn(self, data, **kwargs):
        if isinstance(data, dict) and "high" in data:
            raise ma.ValidationError(
                ["high risk is always drawn entirely; it takes no rate"], "high"
            )
        return data


class DrawArgs(StrictSchema):
    """A squadron's draw (its leader or an admin) or a district's (an admin)."""

    squadron_id = id_field()
    district_id = id_field()
    kind = fields.Enum(TargetKind, by_value=True, required=True)
    rates = fields.Nested(
        DrawRatesArgs,
        metadata={"description": "share of each level to draw; defaults from the settings"},
    )
    seed = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "default: a fresh random seed, stored with the draw"},
    )

    @ma.validates_schema
    def _one_scope(self, data, **kwargs):
        if ("squadron_id" in data) == ("district_id" in data):
            raise ma.ValidationError("give squadron_id or district_id, not both", "squadron_id")


class DrawnTargetSchema(ma.Schema):
    target_id = fields.String(dump_only=True)
    level = fields.String(dump_only=True)
    officer_ids = fields.List(fields.String(), dump_only=True)


class DrawSchema(ma.Schema):
    id = fields.UUID(dump_only=True)
    squadron_id = fields.Integer(dump_only=True, allow_none=True)
    district_id = fields.Integer(dump_only=True)
    kind = fields.Enum(TargetKind, by_value=True, dump_only=True)
    seed = fields.Integer(dump_only=True)
    rates = fields.Dict(dump_only=True)
    roster_hash = fields.String(dump_only=True)
    roster = fields.Dict(
        dump_only=True, metadata={"description": "everything the draw drew from, to re-run it"}
    )
    targets = fields.List(fields.Nested(DrawnTargetSchema), dump_only=True)
    officer_pairs = fields.Method("_pairs", dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    verification = fields.Dict(dump_only=True)

    def _pairs(self, draw):
        return [
            {"target_id": t["target_id"], "officer_ids": t["officer_ids"]} for t in draw.targets
        ]


class DrawListArgs(PageArgs):
    squadron_id = id_field(strict=False)
    kind = fields.Enum(TargetKind, by_value=True)


class DrawBriefSchema(ma.Schema):
    """A draw in a list: what was drawn from and how many, not the roster itself."""

    id = fields.UUID(dump_only=True)
    squadron_id = fields.Integer(dump_only=True, allow_none=True)
    district_id = fields.Integer(dump_only=True)
    kind = fields.Enum(TargetKind, by_value=True, dump_only=True)
    seed = fields.Integer(dump_only=True)
    rates = fields.Dict(dump_only=True)
    roster_hash = fields.String(dump_only=True)
    drawn = fields.Function(lambda draw: len(draw.targets), dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class PublicInspectionArgs(TimeRangeArgs):
    from_ = TimeBound(
        end=False,
        data_key="from",
        metadata={"description": "inspected at or after (a date: from its start in Shanghai)"},
    )
    to = TimeBound(end=True, metadata={"description": "inspected before (a date: that whole day)"})
    kind = fields.Enum(TargetKind, by_value=True)


class PublicInspectionSchema(ma.Schema):
    """一公开: what the public may know of a drawn inspection; no officer, no device."""

    target_name = fields.String(dump_only=True)
    target_code = fields.String(dump_only=True)
    kind = fields.String(dump_only=True)
    address = fields.String(dump_only=True)
    date = fields.Date(dump_only=True)
    result = fields.String(dump_only=True, metadata={"description": "the inspection's outcome"})
    draw_id = fields.UUID(dump_only=True)
