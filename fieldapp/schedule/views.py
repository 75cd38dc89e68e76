"""The schedule: what is due by risk level, and dispatching it as tasks."""

from __future__ import annotations

from datetime import date

from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.db import utcnow
from fieldapp.errors import validation_error
from fieldapp.localtime import local_date
from fieldapp.org.models import Squadron
from fieldapp.risk.models import TargetRisk
from fieldapp.schedule import operations
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy
from schemas.common import page_schema
from schemas.risk import DueTargetSchema, ScheduleDueArgs
from schemas.tasks import DispatchDueArgs, TaskSchema

blp = Blueprint("schedule", __name__, description="The inspection schedule by risk level")


@blp.route("/schedule/due")
class ScheduleDueResource(MethodView):
    @blp.arguments(ScheduleDueArgs, location="query")
    @blp.response(200, page_schema(DueTargetSchema, "DueTargetPage"))
    def get(self, args):
        """Targets due or overdue on ``on`` (default: today in Shanghai), most overdue first; never
        inspected ones come first of all."""
        on: date = args.get("on") or local_date(utcnow())
        query = operations.due_query(
            current_policy().readable(TargetRisk), on, args.get("squadron_id"), args.get("kind")
        )
        page = paginate(query, args["page"], args["per_page"], scalars=False)
        page["items"] = [operations.due_item(row, on) for row in page["items"]]
        return page


@blp.route("/schedule/tasks")
class ScheduleTasksResource(MethodView):
    @blp.arguments(DispatchDueArgs)
    @blp.response(201, TaskSchema(many=True))
    @blp.forbidden("task.dispatch")
    def post(self, args):
        """Dispatch what is due as tasks to pairs of the squadron's officers (its leader or an
        admin); targets that already have an open task are left alone."""
        policy = current_policy()
        policy.require("task.dispatch", args["squadron_id"])
        squadron = policy.load_or_none(Squadron, args["squadron_id"])
        if squadron is None:
            raise validation_error({"squadron_id": [f"no squadron {args['squadron_id']}"]})
        return operations.dispatch_due(
            current_actor(),
            squadron,
            args.get("on") or local_date(utcnow()),
            args.get("kind"),
            args["limit"],
            utcnow(),
        )
