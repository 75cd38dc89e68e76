"""Tasks (任务下派) on the wire."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from fieldapp.db import utcnow
from fieldapp.targets.models import TargetKind
from fieldapp.tasks.models import TaskOrigin, TaskStatus
from schemas.common import Instant, PageArgs, StrictSchema, id_field


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
    complaint_id = fields.UUID(dump_only=True, allow_none=True)
    created_by_id = fields.UUID(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    closed_at = fields.DateTime(dump_only=True, allow_none=True)
    closed_by_inspection_id = fields.UUID(
        dump_only=True,
        allow_none=True,
        metadata={"description": "the approved inspection that closed it"},
    )
    cancel_reason = fields.String(dump_only=True, allow_none=True)
    cancelled_by_id = fields.UUID(dump_only=True, allow_none=True)
    overdue = fields.Method(
        "_overdue",
        dump_only=True,
        metadata={"description": "open and past its due time"},
    )

    def _overdue(self, task) -> bool:
        return task.status is TaskStatus.open and task.due < utcnow()


#: What a leader may set as a task's origin (schedules and draws make their own tasks' origin).
MANUAL_ORIGINS = (TaskOrigin.complaint, TaskOrigin.schedule, TaskOrigin.manual)


class TaskCreateArgs(StrictSchema):
    """A leader sends officers of the target's squadron to the target (任务下派)."""

    target_id = fields.UUID(required=True)
    assignee_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=6))
    due = Instant(required=True, metadata={"description": "in the future"})
    note = fields.String(load_default="", validate=validate.Length(max=2000))
    origin = fields.Enum(
        TaskOrigin,
        by_value=True,
        required=True,
        validate=validate.OneOf(MANUAL_ORIGINS, error="one of complaint, schedule, manual"),
    )
    complaint_id = fields.UUID(
        load_default=None, metadata={"description": "required with origin complaint"}
    )

    @ma.validates_schema
    def _complaint_goes_with_its_origin(self, data, **kwargs):
        errors = {}
        origin, complaint = data.get("origin"), data.get("complaint_id")
        if origin is TaskOrigin.complaint and complaint is None:
            errors["complaint_id"] = ["required when the origin is complaint"]
        if origin is not None and origin is not TaskOrigin.complaint and complaint is not None:
            errors["complaint_id"] = ["only with origin complaint"]
        ids = data.get("assignee_ids") or []
        if len(set(ids)) != len(ids):
            errors["assignee_ids"] = ["an officer is named twice"]
        if errors:
            raise ma.ValidationError(errors)


class TaskListArgs(PageArgs):
    squadron_id = id_field(strict=False)
    status = fields.Enum(TaskStatus, by_value=True)
    overdue = fields.Boolean(metadata={"description": "true: open and past due"})
    assignee_id = fields.UUID()
    target_id = fields.UUID()
    origin = fields.Enum(TaskOrigin, by_value=True)


class TaskCancelArgs(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(max=500))

    @ma.validates("reason")
    def _not_blank(self, value, **kwargs):
        if not value.strip():
            raise ma.ValidationError("say why the task is called off")


class DispatchDueArgs(StrictSchema):
    """Turn what is due into tasks for the squadron's officers."""

    squadron_id = id_field(required=True)
    on = fields.Date(metadata={"description": "plan for this day (default: today in Shanghai)"})
    kind = fields.Enum(TargetKind, by_value=True)
    limit = fields.Integer(
        strict=True,
        load_default=50,
        validate=validate.Range(min=1, max=500),
        metadata={"description": "at most this many tasks, most overdue first"},
    )
