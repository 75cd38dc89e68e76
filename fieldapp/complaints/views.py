"""12345 complaints: the squadron's list, recording one, and the leader's decision."""

from __future__ import annotations

import uuid

from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.complaints import operations
from fieldapp.complaints.models import Complaint
from fieldapp.db import utcnow
from fieldapp.errors import not_found, validation_error
from fieldapp.inspections.models import Inspection
from fieldapp.org.models import Squadron
from fieldapp.targets.models import Target
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy
from schemas.common import page_schema
from schemas.complaints import (
    ComplaintCreateArgs,
    ComplaintDecisionArgs,
    ComplaintListArgs,
    ComplaintSchema,
)

blp = Blueprint("complaints", __name__, description="12345 complaints (投诉)")


@blp.route("/complaints")
class ComplaintsResource(MethodView):
    @blp.arguments(ComplaintListArgs, location="query")
    @blp.response(200, page_schema(ComplaintSchema, "ComplaintPage"))
    def get(self, args):
        """Complaints in the caller's scope: ``status=open`` lists the longest waiting first,
        anything else the newest first."""
        page, per_page = args.pop("page"), args.pop("per_page")
        query = operations.complaints_query(current_policy().readable(Complaint), args)
        return paginate(query, page, per_page)

    @blp.arguments(ComplaintCreateArgs)
    @blp.response(201, ComplaintSchema)
    @blp.forbidden("complaint.manage")
    def post(self, args):
        """Record a complaint (the squadron's leader, or an admin)."""
        policy = current_policy()
        now = utcnow()
        target = None
        if "target_id" in args:
            target = policy.load_or_none(Target, args["target_id"])
            if target is None:
                raise validation_error({"target_id": [f"no target {args['target_id']}"]})
        squadron_id = args.get("squadron_id", target.squadron_id if target else None)
        policy.require("complaint.manage", squadron_id)
        squadron = policy.load_or_none(Squadron, squadron_id)
        if squadron is None:
            raise validation_error({"squadron_id": [f"no squadron {squadron_id}"]})
        received_at = args.get("received_at", now)
        if received_at > now:
            raise validation_error({"received_at": ["may not be in the future"]})
        return operations.receive_complaint(
            current_actor(),
            squadron=squadron,
            target=target,
            category=args["category"],
            text=args["text"],
            received_at=received_at,
            source=args["source"],
            reference=args.get("reference"),
            readable=policy.readable(Complaint),
        )


@blp.route("/complaints/<uuid:complaint_id>")
class ComplaintResource(MethodView):
    @blp.response(200, ComplaintSchema)
    def get(self, complaint_id: uuid.UUID):
        """One complaint."""
        return current_policy().load(Complaint, complaint_id, "complaint")


@blp.route("/complaints/<uuid:complaint_id>/decision")
class ComplaintDecisionResource(MethodView):
    @blp.arguments(ComplaintDecisionArgs)
    @blp.response(200, ComplaintSchema)
    @blp.forbidden("complaint.manage")
    def post(self, args, complaint_id: uuid.UUID):
        """Decide a checked complaint: substantiated or not, with a note (the squadron's leader,
        or an admin). The target's risk is re-assessed at once; a later correction is allowed
        and audited like the first decision."""
        policy = current_policy()
        complaint = operations.lock_complaint(complaint_id)
        if complaint is None:
            raise not_found("complaint")
        # Asked of the locked row: a target's move takes its open complaints along.
        policy.require("complaint.manage", complaint.squadron_id)
        inspection = None
        if "inspection_id" in args:
            inspection = policy.load_or_none(Inspection, args["inspection_id"])
            if inspection is None:
                raise validation_error(
                    {"inspection_id": [f"no inspection {args['inspection_id']}"]}
                )
        decision = operations.Decision(args["substantiated"], args["note"], inspection)
        return operations.decide_complaint(current_actor(), complaint, decision, utcnow())
