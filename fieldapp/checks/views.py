"""``GET /inspections/<id>/checks``: the automatic case-file flags of one inspection."""

from __future__ import annotations

import uuid

from flask import current_app
from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.checks import operations
from fieldapp.db import utcnow
from fieldapp.inspections.models import Inspection
from fieldapp.web.requests import current_policy
from schemas.checks import FlagSchema

blp = Blueprint("checks", __name__, description="Automatic case-file checks (案卷评查)")


@blp.route("/inspections/<uuid:inspection_id>/checks")
class InspectionChecksResource(MethodView):
    @blp.response(200, FlagSchema(many=True))
    def get(self, inspection_id: uuid.UUID):
        """The flags the automatic checks raise on this inspection, each with a sentence a
        supervisor can read. Computed now, with the thresholds configured now; another
        inspection a flag refers to is named only if the caller may read it."""
        policy = current_policy()
        inspection = policy.load(Inspection, inspection_id, "inspection")
        settings = operations.CheckSettings.from_config(current_app.config)
        flags = operations.check_inspections(
            [inspection.id], settings, utcnow(), readable=policy.readable(Inspection)
        )
        return flags.get(inspection.id, [])
