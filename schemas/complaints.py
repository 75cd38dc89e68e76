"""12345 complaints on the wire."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from schemas.common import (
    Instant,
    StrictBoolean,
    StrictSchema,
    StrippedText,
    TimeBound,
    TimeRangeArgs,
    id_field,
    text_field,
)


class ComplaintSchema(ma.Schema):
    id = fields.UUID(dump_only=True)
    squadron_id = fields.Integer(dump_only=True)
    target_id = fields.UUID(dump_only=True, allow_none=True)
    source = fields.String(dump_only=True)
    reference = fields.String(dump_only=True, allow_none=True)
    category = fields.String(dump_only=True)
    text = fields.String(dump_only=True)
    received_at = fields.DateTime(dump_only=True)
    status = fields.Function(
        lambda c: "open" if c.substantiated is None else "closed",
        dump_only=True,
        metadata={"description": "open until the leader decides it"},
    )
    substantiated = fields.Boolean(dump_only=True, allow_none=True)
    decision_note = fields.String(dump_only=True, allow_none=True)
    inspection_id = fields.UUID(dump_only=True, allow_none=True)
    decided_by_id = fields.UUID(dump_only=True, allow_none=True)
    closed_at = fields.DateTime(dump_only=True, allow_none=True)
    created_by_id = fields.UUID(dump_only=True, allow_none=True)


class ComplaintCreateArgs(StrictSchema):
    """A complaint as the hotline forwarded it. ``target_id`` when it names a registered shop or
    site (its squadron is then the target's); otherwise ``squadron_id``."""

    target_id = fields.UUID()
    squadron_id = id_field()
    # Stripped: a ticket number pasted with a trailing space is the same ticket, and is found
    # as a duplicate (one citizen's call would otherwise count twice in the shop's risk).
    source = StrippedText(20, load_default="12345")
    reference = StrippedText(
        40, metadata={"description": "the hotline's ticket number (工单号); unique per source"}
    )
    category = StrippedText(40, required=True)
    text = text_field(4000, required=True)
    received_at = Instant(
        metadata={"description": "when the hotline received it (default: now); not in the future"}
    )

    @ma.validates_schema
    def _where(self, data, **kwargs):
        if "target_id" not in data and "squadron_id" not in data:
            raise ma.ValidationError(
                "give the target, or the squadron when no registered target is concerned",
                "target_id",
            )


class ComplaintDecisionArgs(StrictSchema):
    substantiated = StrictBoolean(required=True)
    note = text_field(2000, required=True)
    inspection_id = fields.UUID(
        metadata={"description": "the inspection that checked it (same target)"}
    )


class ComplaintListArgs(TimeRangeArgs):
    squadron_id = id_field(strict=False)
    target_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(["open", "closed"]))
    substantiated = fields.Boolean()
    source = StrippedText(20)
    reference = StrippedText(40)
    from_ = TimeBound(
        end=False,
        data_key="from",
        metadata={"description": "received at or after (a date: its start)"},
    )
    to = TimeBound(end=True, metadata={"description": "received before (a date: that whole day)"})
