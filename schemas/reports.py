"""The monthly report on the wire (JSON; the CSV has the same figures, one column each)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from fieldapp.checks.models import FlagCode
from fieldapp.inspections.models import Origin, Outcome
from fieldapp.risk.scoring import RiskLevel
from schemas.common import Pattern, StrictSchema, id_field
from sync.models import ConflictKind


class MonthlyReportArgs(StrictSchema):
    # From 1970 on: no record is older, and before 1901 Shanghai's clocks kept local mean time
    # (+08:05:43), an offset that ISO 8601's ±hh:mm cannot write for the month's start and end.
    month = fields.String(
        validate=Pattern(
            r"^(19[7-9][0-9]|2[01][0-9][0-9])-(0[1-9]|1[0-2])$",
            error="a month as YYYY-MM from 1970-01 to 2199-12, e.g. 2026-11",
        ),
        metadata={"description": "YYYY-MM, Shanghai time, 1970-01 to 2199-12; default: this month"},
    )
    squadron_id = id_field(strict=False)
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


def _counts(name: str, keys) -> type[ma.Schema]:
    return type(name, (ma.Schema,), {k: fields.Integer(dump_only=True) for k in keys})


class InspectionFiguresSchema(ma.Schema):
    total = fields.Integer(dump_only=True, metadata={"description": "submitted, started in month"})
    by_origin = fields.Nested(_counts("ByOrigin", [o.value for o in Origin]), dump_only=True)
    by_outcome = fields.Nested(_counts("ByOutcome", [o.value for o in Outcome]), dump_only=True)


CaseFiguresSchema = _counts("CaseFigures", ["opened", "closed"])
RectificationFiguresSchema = _counts("RectificationFigures", ["ordered", "due", "overdue"])


class RiskFiguresSchema(ma.Schema):
    levels_now = fields.Nested(_counts("LevelsNow", [lv.value for lv in RiskLevel]), dump_only=True)
    level_changes = fields.Nested(
        _counts("LevelMoves", ["upgrades", "downgrades", "first_levels"]), dump_only=True
    )


class ConflictFiguresSchema(ma.Schema):
    opened = fields.Integer(dump_only=True)
    resolved = fields.Integer(dump_only=True)
    opened_by_kind = fields.Nested(
        _counts("ConflictKinds", [k.value for k in ConflictKind]), dump_only=True
    )


OrderFiguresSchema = _counts("OrderFigures", ["issued", "answered", "open_now", "overdue_now"])


class FlagFiguresSchema(ma.Schema):
    inspections_flagged = fields.Integer(
        dump_only=True, metadata={"description": "the month's inspections with any flag"}
    )
    by_flag = fields.Nested(
        _counts("ByFlag", [code.value for code in FlagCode]),
        dump_only=True,
        metadata={"description": "inspections that raised each flag"},
    )


class SectionsSchema(ma.Schema):
    """Every section of the report (one line each; the CSV columns follow these)."""

    inspections = fields.Nested(InspectionFiguresSchema, dump_only=True)
    cases = fields.Nested(CaseFiguresSchema, dump_only=True)
    rectifications = fields.Nested(RectificationFiguresSchema, dump_only=True)
    risk = fields.Nested(RiskFiguresSchema, dump_only=True)
    conflicts = fields.Nested(ConflictFiguresSchema, dump_only=True)
    supervision_orders = fields.Nested(OrderFiguresSchema, dump_only=True)
    flags = fields.Nested(FlagFiguresSchema, dump_only=True)


class SquadronReportSchema(SectionsSchema):
    squadron_id = fields.Integer(dump_only=True)
    squadron_name = fields.String(dump_only=True)


class AuditHeadSchema(ma.Schema):
    seq = fields.Integer(dump_only=True)
    hash = fields.String(dump_only=True)


class MonthlyReportSchema(ma.Schema):
    month = fields.String(dump_only=True)
    timezone = fields.String(dump_only=True)
    start = fields.DateTime(dump_only=True, metadata={"description": "first instant (inclusive)"})
    end = fields.DateTime(dump_only=True, metadata={"description": "end (exclusive)"})
    generated_at = fields.DateTime(
        dump_only=True, metadata={"description": "the *_now figures are as of this instant"}
    )
    audit_head = fields.Nested(
        AuditHeadSchema,
        dump_only=True,
        metadata={"description": "the audit chain's last entry when the report was made"},
    )
    squadrons = fields.List(fields.Nested(SquadronReportSchema), dump_only=True)
    total = fields.Nested(SectionsSchema, dump_only=True)
