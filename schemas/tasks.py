"""Tasks (任务下派) on the wire."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from fieldapp.targets.models import TargetKind
from fieldapp.tasks.models import TaskOrigin, TaskStatus
from schemas.common import StrictSchema, id_field


class TaskSchema(ma.Schema):
    id = fields.UUID(dump_only=True)
    target_id = fields.UUID(dump_only=True)
    squadron_id = fields.Integer(dump_only=True)
    assignee_ids = fields.List(fields.UUID(), dump_only=True)
    due = fields.DateTime(dump_only=True)
    note = fields.String(dump_only=True)
    origin = fields.Enum(TaskOrigin, by_value=True, dump_only=True)
    status = fields.Enum(TaskStatus, by_value=True, dump_only=True)
    draw_id = fields.UUID(dump_only=True, allow_none=True)


class DispatchDueArgs(StrictSchema):
    """Turn what is due into tasks for the squadron's officers."""

    squadron_id = id_field(required=True)
    on = fields.Date(metadata={"description": "plan for this day (default: today)"})
    kind = fields.Enum(TargetKind, by_value=True)
    limit = fields.Integer(
        strict=True,
        load_default=50,
        validate=validate.Range(min=1, max=500),
        metadata={"description": "at most this many tasks, most overdue first"},
    )
