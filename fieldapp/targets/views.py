"""Targets: search, the target's file (一店一档), QR lookup (一店一码), create and edit."""

from __future__ import annotations

import uuid

from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.db import db
from fieldapp.targets import operations
from fieldapp.targets.models import Target
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy
from schemas.common import page_schema
from schemas.targets import (
    TargetCreateArgs,
    TargetFileSchema,
    TargetListArgs,
    TargetSchema,
    TargetUpdateArgs,
)

blp = Blueprint("targets", __name__, description="Shops and sites (执法对象)")


def _etag(target: Target) -> dict:
    return {"id": str(target.id), "version": target.version}


@blp.route("/targets")
class TargetsResource(MethodView):
    @blp.arguments(TargetListArgs, location="query")
    @blp.response(200, page_schema(TargetSchema, "TargetPage"))
    def get(self, args):
        """Targets in the caller's scope, filtered; with ``near``, nearest first."""
        page, per_page = args.pop("page"), args.pop("per_page")
        query = operations.search_targets(
            current_policy().scoped(Target), operations.TargetFilters(**args)
        )
        return paginate(query, page, per_page)

    @blp.arguments(TargetCreateArgs)
    @blp.response(201, TargetSchema)
    def post(self, args):
        """Add a shop or site (the squadron's leader, or an admin)."""
        current_policy().require("target.create", args["squadron_id"])
        target = operations.create_target(current_actor(), args)
        return target


@blp.route("/targets/<uuid:target_id>")
class TargetResource(MethodView):
    @blp.etag
    @blp.response(200, TargetFileSchema)
    def get(self, target_id: uuid.UUID):
        """The target's file: details, recent inspections, open rectifications, complaints."""
        target = current_policy().load(Target, target_id, "target")
        blp.set_etag(_etag(target))
        return operations.target_file(target)

    @blp.etag
    @blp.arguments(TargetUpdateArgs)
    @blp.response(200, TargetSchema)
    def patch(self, changes, target_id: uuid.UUID):
        """Edit a target (leader of its squadron, or admin). Needs ``If-Match``."""
        policy = current_policy()
        target = policy.load_to_write(Target, target_id, "target")
        policy.require("target.update", target)
        if "squadron_id" in changes:
            policy.require("target.create", changes["squadron_id"])
        blp.check_etag(_etag(target))
        operations.update_target(current_actor(), target, changes)
        db.session.flush()
        blp.set_etag(_etag(target))
        return target


@blp.route("/targets/by-code/<string:code>")
class TargetByCodeResource(MethodView):
    @blp.etag
    @blp.response(200, TargetFileSchema)
    def get(self, code: str):
        """The target's file by its QR code (一店一码 scan)."""
        target = current_policy().load_by(Target, "target", code=code.strip().upper())
        blp.set_etag(_etag(target))
        return operations.target_file(target)
