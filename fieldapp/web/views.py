"""Routes that belong to no feature: the service index and the health check."""

from __future__ import annotations

import sqlalchemy as sa
from flask import url_for
from flask.views import MethodView

from fieldapp.api import API_PREFIX, Blueprint
from fieldapp.db import db
from fieldapp.web.requests import public

blp = Blueprint("web", __name__, description="Service index and health")


@blp.route("/")
class IndexResource(MethodView):
    @public
    @blp.doc(security=[])
    def get(self):
        """Where to start: the API docs and the OpenAPI document."""
        return {
            "service": "fieldapp",
            "api": API_PREFIX,
            "openapi": url_for("api-docs.openapi_json"),
            "docs": url_for("api-docs.openapi_swagger_ui"),
        }


@blp.route(f"{API_PREFIX}/health")
class HealthResource(MethodView):
    @public
    @blp.doc(security=[])
    def get(self):
        """Liveness and database reachability (for load balancers)."""
        db.session.execute(sa.text("SELECT 1"))
        return {"status": "ok"}
