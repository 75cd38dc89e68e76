"""Risk (分级分类): a target's score explained, the level summary, the settings."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.db import db, utcnow
from fieldapp.risk import operations
from fieldapp.risk.models import RiskSetting, TargetRisk
from fieldapp.targets.models import Target
from fieldapp.web import etags
from fieldapp.web.requests import current_actor, current_policy
from schemas.risk import (
    RiskSchema,
    RiskSettingsArgs,
    RiskSettingSchema,
    RiskSummaryArgs,
    RiskSummarySchema,
)

blp = Blueprint("risk", __name__, description="Graded risk (分级分类)")


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
        """How many active targets stand at each level, in all and per squadron and kind
        (closed ones are left out, as the schedule and the draws leave them out). Officers and
        leaders count their squadron's: the targets of their tasks elsewhere are not."""
        query = (
            sa.select(TargetRisk.squadron_id, TargetRisk.kind, TargetRisk.level, sa.func.count())
            .join(Target, Target.id == TargetRisk.target_id)
            .where(current_policy().squadron_rows(TargetRisk), Target.active.is_(True))
            .group_by(TargetRisk.squadron_id, TargetRisk.kind, TargetRisk.level)
            .order_by(TargetRisk.squadron_id, TargetRisk.kind)
        )
        if "kind" in args:
            query = query.where(TargetRisk.kind == args["kind"].value)
        if "squadron_id" in args:
            query = query.where(TargetRisk.squadron_id == args["squadron_id"])
        return operations.summarize(db.session.execute(query).all())


_SETTINGS = RiskSettingSchema(many=True)


def _settings_answer(rows) -> list:
    return sorted(rows, key=lambda row: row.key)


@blp.route("/risk/settings")
class RiskSettingsResource(MethodView):
    @blp.response(200, RiskSettingSchema(many=True), headers=etags.ETAG_HEADER)
    @blp.alt_response(304, description="Not modified: the settings are the ones you hold")
    @blp.doc(parameters=[etags.IF_NONE_MATCH_PARAMETER])
    def get(self):
        """The risk model's numbers: weights, caps, thresholds, floors, frequencies, draw rates.
        Its ``ETag`` is what a change sends back as ``If-Match``."""
        rows = _settings_answer(db.session.scalars(sa.select(RiskSetting)))
        return etags.conditional_get(operations.settings_version(rows), rows, _SETTINGS)

    @blp.arguments(RiskSettingsArgs)
    @blp.response(200, RiskSettingSchema(many=True), headers=etags.ETAG_HEADER)
    @blp.forbidden("risk.settings")
    @blp.errors(why=etags.PRECONDITION_ERRORS)
    @blp.doc(parameters=[etags.IF_MATCH_PARAMETER])
    def patch(self, args):
        """Replace whole groups (admins), with ``If-Match``: the ``ETag`` of the settings as
        read (428 without; 412 when another change came since, which the whole groups sent
        would undo). Applies to every later assessment; run ``fieldapp risk recompute`` to
        re-assess every target at once. A group sent as it is changes nothing.

        Each group is sent whole, in the shape ``GET`` shows it. Across groups: the caps of
        inherent, compliance, history, complaints and credit add up to at most 100; the levels
        rise (0 < medium < elevated < high <= 100); per kind, higher levels are inspected at
        least as often (frequency low >= medium >= elevated >= high); a worse finding weighs
        at least as much (compliance.severity minor <= moderate <= severe), and so does a
        worse credit class (credit.class A <= B <= C <= D). Refused: 422, every problem named.
        """
        current_policy().require("risk.settings")
        rows = operations.locked_settings()
        etags.require_if_match(operations.settings_version(rows.values()))
        operations.update_settings(current_actor(), rows, args)
        db.session.flush()
        answered = _settings_answer(rows.values())
        answer = etags.json_body(answered, _SETTINGS)
        answer.set_etag(etags.entity_tag(operations.settings_version(answered), answer.get_data()))
        return answer
