"""Tasks (任务下派): leaders dispatch and cancel; everyone in scope lists and reads them;
devices pull them (sync)."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from sqlalchemy.orm import selectinload

from fieldapp.api import Blueprint
from fieldapp.db import utcnow
from fieldapp.errors import not_found, validation_error
from fieldapp.tasks import operations
from fieldapp.tasks.models import Task
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy
from schemas.common import page_schema
from schemas.tasks import TaskCancelArgs, TaskCreateArgs, TaskListArgs, TaskSchema

blp = Blueprint("tasks", __name__, description="Tasks (任务下派): leader → officers → inspection")


@blp.route("/tasks")
class TasksResource(MethodView):
    @blp.arguments(TaskListArgs, location="query")
    @blp.response(200, page_schema(TaskSchema, "TaskPage"))
    def get(self, args):
        """Tasks in the caller's scope, filtered; the soonest due first. ``overdue=true``: open
        tasks past their due time."""
        page, per_page = args.pop("page"), args.pop("per_page")
        query = current_policy().scoped(Task).options(selectinload(Task.assignees))
        query = operations.search_tasks(query, operations.TaskFilters(**args), utcnow())
        return paginate(query, page, per_page)

    @blp.arguments(TaskCreateArgs)
    @blp.response(201, TaskSchema)
    @blp.forbidden("task.dispatch")
    def post(self, args):
        """Send officers of the target's squadron to the target (its leader, or an admin)."""
        policy = current_policy()
        target = operations.target_to_dispatch_to(args["target_id"])
        if target is None:
            raise validation_error({"target_id": ["no such target"]})
        # Another squadron's target is an out-of-scope write: 403, as API.md has it.
        policy.require("task.dispatch", target.squadron_id)
        return operations.create_task(
            current_actor(),
            target=target,
            assignee_ids=args["assignee_ids"],
            due=args["due"],
            note=args["note"],
            origin=args["origin"],
            complaint_id=args["complaint_id"],
            now=utcnow(),
        )


@blp.route("/tasks/<uuid:task_id>")
class TaskResource(MethodView):
    @blp.response(200, TaskSchema)
    def get(self, task_id: uuid.UUID):
        """One task."""
        return current_policy().load(Task, task_id, "task")


@blp.route("/tasks/<uuid:task_id>/cancel")
class TaskCancelResource(MethodView):
    @blp.arguments(TaskCancelArgs)
    @blp.response(200, TaskSchema)
    @blp.forbidden("task.dispatch")
    @blp.errors(why={409: "`invalid_transition`: the task is done or cancelled already"})
    def post(self, args, task_id: uuid.UUID):
        """Call an open task off, with a reason (its squadron's leader, or an admin)."""
        policy = current_policy()
        task = operations.lock_task(task_id)
        if task is None:
            raise not_found("task")
        # Asked of the locked row: a move of the target takes its open tasks along, and the
        # leader of the squadron the task is in now decides.
        policy.require("task.dispatch", task.squadron_id)
        return operations.cancel_task(current_actor(), task, args["reason"].strip(), utcnow())
