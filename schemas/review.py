"""Reading inspections and reviewing them on the wire: the list, the review, the queue and the
open rectifications (复查)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from fieldapp.inspections.models import InspectionStatus, ReviewStatus
from schemas.common import PageArgs, StrictSchema, TimeBound, TimeRangeArgs, id_field
from schemas.inspections import InspectionSchema
from schemas.targets import CaseBriefSchema


class InspectionListArgs(TimeRangeArgs):
    squadron_id = id_field(strict=False)
    target_id = fields.UUID()
    officer_id = fields.UUID()
    status = fields.Enum(InspectionStatus, by_value=True)
    review_status = fields.Enum(ReviewStatus, by_value=True)
    from_ = TimeBound(end=False, data_key="from", metadata={"description": "started at or after"})
    to = TimeBound(end=True, metadata={"description": "started before (a date: that whole day)"})


class FollowUpSchema(ma.Schema):
    """复查 of a rectification order: when it is due and which inspection did it."""

    due = fields.Date(allow_none=True)
    done_by = fields.UUID(allow_none=True, metadata={"description": "the follow-up inspection"})
    done_at = fields.DateTime(allow_none=True)
    overdue = fields.Boolean()


class TargetNameSchema(ma.Schema):
    """Enough of the target to show in a list (its file is ``GET /api/v1/targets/<id>``)."""

    id = fields.UUID()
    kind = fields.String(attribute="kind.value")
    code = fields.String()
    name = fields.String()
    address = fields.String(allow_none=True)


class InspectionDetailSchema(InspectionSchema):
    """The inspection (API.md wire shape) with its target's name, its follow-up and its case."""

    target = fields.Nested(TargetNameSchema, dump_only=True)

    follow_up = fields.Nested(
        FollowUpSchema,
        dump_only=True,
        allow_none=True,
        metadata={"description": "only for outcome rectification_ordered"},
    )
    case = fields.Nested(CaseBriefSchema, dump_only=True, allow_none=True)


class ReviewArgs(StrictSchema):
    """The leader's decision. Send the inspection's ETag as ``If-Match``."""

    decision = fields.String(required=True, validate=validate.OneOf(("approve", "return")))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))

    @ma.validates_schema
    def _reason_to_return(self, data, **kwargs):
        comment = (data.get("comment") or "").strip()
        if data.get("decision") == "return" and not comment:
            raise ma.ValidationError({"comment": ["say why it goes back to the officers"]})

    @ma.post_load
    def _strip(self, data, **kwargs):
        comment = (data.get("comment") or "").strip()
        data["comment"] = comment or None
        return data


class ReviewQueueArgs(PageArgs):
    squadron_id = id_field(strict=False)


class RectificationListArgs(PageArgs):
    squadron_id = id_field(strict=False)
    target_id = fields.UUID()
    overdue = fields.Boolean(
        metadata={"description": "true: deadline passed; false: not yet due; absent: all"}
    )


class RectificationSchema(ma.Schema):
    """An open rectification order (责令整改) waiting for its follow-up (复查)."""

    inspection_id = fields.UUID()
    target_id = fields.UUID()
    target_name = fields.String()
    target_code = fields.String()
    squadron_id = fields.Integer()
    officer_ids = fields.List(fields.UUID())
    ordered_at = fields.DateTime(allow_none=True, metadata={"description": "the order's end"})
    deadline = fields.Date()
    days_overdue = fields.Integer(
        metadata={"description": "days since the deadline (0 or less: not yet due)"}
    )
    review_status = fields.Enum(ReviewStatus, by_value=True)
    findings = fields.String()
