"""Risk (分级分类): a target's score explained, the level summary, the settings, what is due."""

from __future__ import annotations

import uuid
from datetime import date

import sqlalchemy as sa
from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.db import db, utcnow
from fieldapp.risk import operations
from fieldapp.risk.models import RiskSetting, TargetRisk
from fieldapp.risk.scoring import RiskLevel
from fieldapp.targets.models import Target
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy
from schemas.common import page_schema
from schemas.risk import (
    DueTargetSchema,
    RiskSchema,
    RiskSettingsArgs,
    RiskSettingSchema,
    RiskSummaryArgs,
    RiskSummarySchema,
    ScheduleDueArgs,
)

blp = Blueprint("risk", __name__, description="Graded risk (分级分类) and the inspection schedule")


@blp.route("/targets/<uuid:target_id>/risk")
class TargetRiskResource(MethodView):
    @blp.response(200, RiskSchema)
    def get(self, target_id: uuid.UUID):
        """The target's score, every point explained; its floors, level, history, due date."""
        target = current_policy().load(Target, target_id, "target")
        return operations.risk_file(target, utcnow())


@blp.route("/risk/summary")
class RiskSummaryResource(MethodView):
    @blp.arguments(RiskSummaryArgs, location="query")
    @blp.response(200, RiskSummarySchema)
    def get(self, args):
        """How many targets stand at each level, in all and per squadron and kind."""
        query = (
            sa.select(TargetRisk.squadron_id, TargetRisk.kind, TargetRisk.level, sa.func.count())
            .where(current_policy().readable(TargetRisk))
            .group_by(TargetRisk.squadron_id, TargetRisk.kind, TargetRisk.level)
            .order_by(TargetRisk.squadron_id, TargetRisk.kind)
        )
        if "kind" in args:
            query = query.where(TargetRisk.kind == args["kind"].value)
        if "squadron_id" in args:
            query = query.where(TargetRisk.squadron_id == args["squadron_id"])
        return operations.summarize(db.session.execute(query).all())


@blp.route("/risk/settings")
class RiskSettingsResource(MethodView):
    @blp.response(200, RiskSettingSchema(many=True))
    def get(self):
        """The risk model's numbers: weights, caps, thresholds, floors, frequencies, draw rates."""
        return db.session.scalars(sa.select(RiskSetting).order_by(RiskSetting.key)).all()

    @blp.arguments(RiskSettingsArgs)
    @blp.response(200, RiskSettingSchema(many=True))
    def patch(self, args):
        """Replace whole groups (admins). Applies to every later assessment; run
        ``fieldapp risk recompute`` to re-assess every target at once."""
        current_policy().require("risk.settings")
        operations.update_settings(current_actor(), args)
        db.session.flush()
        return db.session.scalars(sa.select(RiskSetting).order_by(RiskSetting.key)).all()


@blp.route("/schedule/due")
class ScheduleDueResource(MethodView):
    @blp.arguments(ScheduleDueArgs, location="query")
    @blp.response(200, page_schema(DueTargetSchema, "DueTargetPage"))
    def get(self, args):
        """Targets due or overdue on ``on`` (default today), most overdue first; never
        inspected ones come first of all."""
        on: date = args.get("on") or utcnow().date()
        query = (
            sa.select(
                Target.id.label("target_id"),
                Target.code,
                Target.name,
                TargetRisk.kind,
                Target.squadron_id,
                TargetRisk.level,
                TargetRisk.next_due,
            )
            .join(TargetRisk, TargetRisk.target_id == Target.id)
            .where(
                current_policy().readable(TargetRisk),
                Target.active.is_(True),
                sa.or_(TargetRisk.next_due.is_(None), TargetRisk.next_due <= on),
            )
            .order_by(
                TargetRisk.next_due.is_not(None),
                TargetRisk.next_due,
                sa.case(*((TargetRisk.level == lv, -lv.rank) for lv in RiskLevel), else_=0),
                Target.id,
            )
        )
        if "squadron_id" in args:
            query = query.where(TargetRisk.squadron_id == args["squadron_id"])
        if "kind" in args:
            query = query.where(TargetRisk.kind == args["kind"].value)
        page = paginate(query, args["page"], args["per_page"], scalars=False)
        page["items"] = [
            {
                **row._asdict(),
                "level": row.level.value,
                "days_overdue": (on - row.next_due).days if row.next_due else None,
            }
            for row in page["items"]
        ]
        return page
