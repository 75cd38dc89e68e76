"""Routes that belong to no feature: the service index and the health check."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import url_for
from flask.views import MethodView

from fieldapp.api import API_PREFIX, Blueprint
from fieldapp.db import db, driver_said
from fieldapp.errors import APIError
from fieldapp.web.requests import log_fields, public
from schemas.web import HealthSchema, ServiceIndexSchema

log = logging.getLogger("fieldapp.request")

blp = Blueprint("web", __name__, description="Service index and health")


@blp.route("/")
class IndexResource(MethodView):
    @public
    @blp.doc(security=[])
    @blp.response(200, ServiceIndexSchema)
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
    @blp.response(200, HealthSchema)
    @blp.errors(why={503: "`database_unavailable`: the database cannot be reached"})
    def get(self):
        """Liveness and database reachability (for load balancers)."""
        try:
            db.session.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError as exc:
            # A load balancer takes 503 to mean "send traffic elsewhere for now"; a 500 would
            # also log a traceback on every probe while the database is away.
            db.session.rollback()
            said = driver_said(exc)
            log.warning("health: the database cannot be reached: %s", said, extra=log_fields())
            raise APIError(503, "database_unavailable", "the database cannot be reached") from None
        return {"status": "ok"}
