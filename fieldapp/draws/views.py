"""双随机一公开: draws (leaders, admins) and the public results (no sign-in)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.db import db, utcnow
from fieldapp.draws import operations
from fieldapp.draws.models import Draw, drew_from, started_since_drawn
from fieldapp.errors import validation_error
from fieldapp.inspections.models import Inspection, InspectionStatus, Origin, ReviewStatus
from fieldapp.localtime import SHANGHAI
from fieldapp.org.models import District, Squadron
from fieldapp.targets.models import Target
from fieldapp.tasks.models import Task
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy, public
from schemas.common import page_schema
from schemas.risk import (
    DrawArgs,
    DrawBriefSchema,
    DrawListArgs,
    DrawSchema,
    PublicInspectionArgs,
    PublicInspectionSchema,
)

blp = Blueprint("draws", __name__, description="双随机一公开: random draws and public results")


@blp.route("/draws")
class DrawsResource(MethodView):
    @blp.arguments(DrawListArgs, location="query")
    @blp.response(200, page_schema(DrawBriefSchema, "DrawPage"))
    def get(self, args):
        """The draws in the caller's scope, newest first (open one for its roster and check).
        An officer or leader counts their own squadron's part (see ``GET /draws/<id>``)."""
        policy = current_policy()
        query = policy.scoped(Draw).order_by(Draw.created_at.desc(), Draw.id)
        if "squadron_id" in args:  # its own draws and the district draws that drew from it
            query = query.where(drew_from(args["squadron_id"]))
        if "kind" in args:
            query = query.where(Draw.kind == args["kind"])
        page = paginate(query, args["page"], args["per_page"])
        own = policy.own_part_of_district_records()
        page["items"] = operations.parts_seen_by(page["items"], own)
        return page

    @blp.arguments(DrawArgs)
    @blp.response(201, DrawSchema)
    @blp.forbidden("draw.create")
    def post(self, args):
        """Draw targets per risk level and an officer pair for each; the drawn targets become
        tasks for their pairs. Same seed over the same roster, same draw."""
        policy = current_policy()
        if "squadron_id" in args:
            policy.require("draw.create", args["squadron_id"])
            squadron = policy.load_or_none(Squadron, args["squadron_id"])
            if squadron is None:
                raise validation_error({"squadron_id": [f"no squadron {args['squadron_id']}"]})
            squadrons, district_id = [squadron], squadron.district_id
        else:
            policy.require("draw.create", None)
            if db.session.get(District, args["district_id"]) is None:
                raise validation_error({"district_id": [f"no district {args['district_id']}"]})
            district_id = args["district_id"]
            squadrons = db.session.scalars(
                sa.select(Squadron).where(Squadron.district_id == district_id).order_by(Squadron.id)
            ).all()
        draw = operations.create_draw(
            current_actor(),
            args["kind"],
            squadrons,
            district_id,
            args.get("rates"),
            args.get("seed"),
            utcnow(),
            whole_district="district_id" in args,
        )
        return draw


@blp.route("/draws/<uuid:draw_id>")
class DrawResource(MethodView):
    @blp.response(200, DrawSchema)
    def get(self, draw_id: uuid.UUID):
        """A draw with its frozen roster, and whether re-running it gives the same result. An
        officer or leader is shown their own squadron's part of a district draw, and the drawn
        targets whose tasks moved to their squadron; the check is of the whole draw."""
        policy = current_policy()
        draw = policy.load(Draw, draw_id, "draw")
        verification = operations.verify_draw(draw)
        shown = operations.part_seen_by(draw, policy.own_part_of_district_records())
        shown.verification = verification
        return shown


@blp.route("/public/inspections")
class PublicInspectionsResource(MethodView):
    @public
    @blp.doc(security=[])
    @blp.arguments(PublicInspectionArgs, location="query")
    @blp.response(200, page_schema(PublicInspectionSchema, "PublicInspectionPage"))
    def get(self, args):
        """一公开: approved inspections of drawn targets, with no personal data."""
        query = (
            sa.select(
                Target.name.label("target_name"),
                Target.code.label("target_code"),
                Target.kind,
                Target.address,
                Inspection.started_at,
                Inspection.outcome,
                Inspection.draw_id,
            )
            .join(Target, Target.id == Inspection.target_id)
            .join(Draw, Draw.id == Inspection.draw_id)
            .where(
                Inspection.origin == Origin.random,
                Inspection.status == InspectionStatus.submitted,
                Inspection.review_status == ReviewStatus.approved,
                # A draw_id a device sent proves nothing: the draw must have sent someone to
                # this target (its task), or the inspection is no draw's result; nor is one
                # begun before the draw was made (its device's clock allowed for).
                sa.exists().where(
                    Task.draw_id == Inspection.draw_id, Task.target_id == Inspection.target_id
                ),
                started_since_drawn(Inspection.started_at),
            )
            .order_by(Inspection.started_at.desc(), Inspection.id)
        )
        if "from_" in args:
            query = query.where(Inspection.started_at >= args["from_"])
        if "to" in args:
            query = query.where(Inspection.started_at < args["to"])
        if "kind" in args:
            query = query.where(Target.kind == args["kind"])
        page = paginate(query, args["page"], args["per_page"], scalars=False)
        page["items"] = [
            {
                "target_name": row.target_name,
                "target_code": row.target_code,
                "kind": row.kind.value,
                "address": row.address,
                "date": row.started_at.astimezone(SHANGHAI).date(),
                "result": row.outcome.value if row.outcome else None,
                "draw_id": row.draw_id,
            }
            for row in page["items"]
        ]
        return page
