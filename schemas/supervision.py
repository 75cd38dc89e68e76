"""Supervision on the wire: case-file reviews (案卷评查) and supervision orders (督办单)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from fieldapp.supervision.models import OrderStatus, Verdict
from schemas.common import (
    Instant,
    PageArgs,
    Pattern,
    StrictSchema,
    TimeBound,
    TimeRangeArgs,
    id_field,
    text_field,
)

MAX_FINDINGS = 50


class FindingArgs(StrictSchema):
    """One finding: what is wrong (``text``), under a review point ``code`` (e.g.
    ``evidence_incomplete``), a checklist ``item_code`` of the inspection, or both."""

    code = fields.String(
        validate=Pattern(r"^[a-z][a-z0-9_]{0,39}$", error="a snake_case code"),
        allow_none=True,
    )
    item_code = fields.String(validate=validate.Length(min=1, max=16), allow_none=True)
    text = text_field(1000, required=True)

    @validates_schema
    def _names_something(self, data, **kwargs):
        if not data.get("code") and not data.get("item_code"):
            raise ma.ValidationError("give a review point code or a checklist item_code", "code")


class CaseReviewArgs(StrictSchema):
    inspection_id = fields.UUID(required=True)
    verdict = fields.Enum(Verdict, by_value=True, required=True)
    findings = fields.List(
        fields.Nested(FindingArgs), load_default=list, validate=validate.Length(max=MAX_FINDINGS)
    )
    comment = fields.String(load_default="", validate=validate.Length(max=2000))

    @validates_schema
    def _deficient_says_why(self, data, **kwargs):
        if data.get("verdict") is Verdict.deficient and not data.get("findings"):
            raise ma.ValidationError("a deficient verdict needs at least one finding", "findings")


class FindingSchema(ma.Schema):
    code = fields.String(dump_only=True, allow_none=True)
    item_code = fields.String(dump_only=True, allow_none=True)
    text = fields.String(dump_only=True)


class CaseReviewSchema(ma.Schema):
    id = fields.UUID(dump_only=True)
    inspection_id = fields.UUID(dump_only=True)
    squadron_id = fields.Integer(dump_only=True)
    reviewer_id = fields.UUID(dump_only=True)
    verdict = fields.Enum(Verdict, by_value=True, dump_only=True)
    findings = fields.List(fields.Nested(FindingSchema), dump_only=True)
    comment = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class CaseReviewListArgs(TimeRangeArgs):
    inspection_id = fields.UUID()
    squadron_id = id_field(strict=False)
    reviewer_id = fields.UUID()
    verdict = fields.Enum(Verdict, by_value=True)
    from_ = TimeBound(
        end=False,
        data_key="from",
        metadata={"description": "recorded at or after (a date: its start)"},
    )
    to = TimeBound(end=True, metadata={"description": "recorded before (a date: that whole day)"})


class OrderArgs(StrictSchema):
    """A supervision order: to a squadron, about an inspection, a target or a case (at least
    one; all must be the squadron's and name one matter: the inspection's target, the case it
    opened), with what to do and by when."""

    squadron_id = id_field(required=True)
    inspection_id = fields.UUID(allow_none=True)
    target_id = fields.UUID(allow_none=True)
    case_id = fields.UUID(allow_none=True)
    text = text_field(2000, required=True)
    deadline = Instant(required=True)

    @validates_schema
    def _has_subject(self, data, **kwargs):
        if not any(data.get(k) for k in ("inspection_id", "target_id", "case_id")):
            raise ma.ValidationError(
                "name the inspection, target or case the order is about", "inspection_id"
            )


class AnswerArgs(StrictSchema):
    response = text_field(4000, required=True)


class CloseArgs(StrictSchema):
    comment = fields.String(load_default="", validate=validate.Length(max=2000))


class ReopenArgs(StrictSchema):
    reason = text_field(2000, required=True)
    deadline = Instant(metadata={"description": "a new deadline (else the old one)"})


class OrderEventSchema(ma.Schema):
    at = fields.String(dump_only=True)
    by = fields.String(dump_only=True)
    action = fields.String(dump_only=True)
    text = fields.String(dump_only=True, allow_none=True)
    #: The squadron the order was with after this step (absent from steps of old orders).
    squadron_id = fields.Integer(dump_only=True)
    deadline = fields.String(dump_only=True)


class OrderSchema(ma.Schema):
    id = fields.UUID(dump_only=True)
    squadron_id = fields.Integer(dump_only=True)
    issued_by_id = fields.UUID(dump_only=True)
    inspection_id = fields.UUID(dump_only=True, allow_none=True)
    target_id = fields.UUID(dump_only=True, allow_none=True)
    case_id = fields.UUID(dump_only=True, allow_none=True)
    text = fields.String(dump_only=True)
    deadline = fields.DateTime(dump_only=True)
    status = fields.Enum(OrderStatus, by_value=True, dump_only=True)
    overdue = fields.Boolean(
        dump_only=True, metadata={"description": "open (not answered) and past its deadline"}
    )
    issued_at = fields.DateTime(dump_only=True)
    response = fields.String(dump_only=True, allow_none=True)
    answered_by_id = fields.UUID(dump_only=True, allow_none=True)
    answered_at = fields.DateTime(dump_only=True, allow_none=True)
    closed_at = fields.DateTime(dump_only=True, allow_none=True)
    history = fields.List(fields.Nested(OrderEventSchema), dump_only=True)


class OrderListArgs(PageArgs):
    squadron_id = id_field(strict=False)
    status = fields.Enum(OrderStatus, by_value=True)
    overdue = fields.Boolean(
        metadata={"description": "true: only open orders past their deadline, most overdue first"}
    )
    inspection_id = fields.UUID()
    target_id = fields.UUID()
    case_id = fields.UUID()
