"""Targets: search, the target's file (一店一档), QR lookup (一店一码), create and edit."""

from __future__ import annotations

import hashlib
import json
import uuid

from flask import Response, request
from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.db import db
from fieldapp.targets import operations
from fieldapp.targets.labels import label_svg
from fieldapp.targets.models import Target
from fieldapp.web import etags
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


def _version_tag(target: Target) -> str:
    """The tag of the target's version: what the ETag was before it covered the file's body
    (flask-smorest's hash of id and version), so a tag a client kept still names it."""
    data = json.dumps({"id": str(target.id), "version": target.version}, sort_keys=True)
    return hashlib.sha1(data.encode()).hexdigest()


_FILE = TargetFileSchema()
_PATCHED_ETAG_HEADER = {
    "ETag": {
        "description": "the ETag the target's file now has (what a GET of it answers)",
        "schema": {"type": "string"},
    }
}


def _file_answer(target: Target):
    """The target's file as the answer to a GET: 200, or 304 when the client has it."""
    return etags.conditional_get(
        _version_tag(target), operations.target_file(target, current_policy()), _FILE
    )


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
    @blp.forbidden("target.create")
    def post(self, args):
        """Add a shop or site (the squadron's leader, or an admin)."""
        current_policy().require("target.create", args["squadron_id"])
        target = operations.create_target(current_actor(), args)
        return target


@blp.route("/targets/<uuid:target_id>")
class TargetResource(MethodView):
    @blp.response(200, TargetFileSchema, headers=etags.ETAG_HEADER)
    @blp.alt_response(304, description="Not modified: the file is the one named by If-None-Match")
    @blp.doc(parameters=[etags.IF_NONE_MATCH_PARAMETER])
    def get(self, target_id: uuid.UUID):
        """The target's file: details, recent inspections, open rectifications, complaints.
        Its ``ETag`` changes with anything in it (a new inspection or complaint too)."""
        return _file_answer(current_policy().load(Target, target_id, "target"))

    @blp.arguments(TargetUpdateArgs)
    @blp.response(200, TargetSchema, headers=_PATCHED_ETAG_HEADER)
    @blp.forbidden("target.update", "target.create")
    @blp.errors(why=etags.PRECONDITION_ERRORS)
    @blp.doc(parameters=[etags.IF_MATCH_PARAMETER])
    def patch(self, changes, target_id: uuid.UUID):
        """Edit a target (leader of its squadron, or admin). Needs ``If-Match``: 428 without,
        412 when the target has another version. Answers the target with the ``ETag`` its file
        now has."""
        policy = current_policy()
        target = policy.load_to_write(Target, target_id, "target")
        policy.require("target.update", target)
        if "squadron_id" in changes:
            policy.require("target.create", changes["squadron_id"])
        etags.require_if_match(_version_tag(target))
        operations.update_target(current_actor(), target, changes)
        db.session.flush()
        answer = etags.json_body(target, TargetSchema())
        # The ETag of the patched resource is its file's, as a GET now answers it (not the
        # digest of this shorter answer): the client's next If-None-Match or If-Match.
        file_body = etags.json_body(operations.target_file(target, policy), _FILE).get_data()
        answer.set_etag(etags.entity_tag(_version_tag(target), file_body))
        return answer


@blp.route("/targets/<uuid:target_id>/label")
class TargetLabelResource(MethodView):
    @blp.response(200, description="the label (image/svg+xml)")
    @blp.alt_response(304, description="Not modified: the label is the one named by If-None-Match")
    @blp.doc(
        parameters=[etags.IF_NONE_MATCH_PARAMETER],
        responses={
            200: {
                "content": {"image/svg+xml": {"schema": {"type": "string"}}},
                "headers": {"ETag": {"schema": {"type": "string"}}},
            }
        },
    )
    def get(self, target_id: uuid.UUID):
        """The target's 一店一码 label to print: its QR code (holding the code that
        ``/targets/by-code/<code>`` looks up), its code and its name, as SVG. Scoped like the
        target. The ``ETag`` follows the target's version (its name may be corrected)."""
        target = current_policy().load(Target, target_id, "target")
        response = Response(label_svg(target), mimetype="image/svg+xml")
        response.headers["Content-Disposition"] = f'inline; filename="{target.code}.svg"'
        response.set_etag(_version_tag(target))
        response.headers["Cache-Control"] = "private, no-cache"
        return response.make_conditional(request)


@blp.route("/targets/by-code/<string:code>")
class TargetByCodeResource(MethodView):
    @blp.response(200, TargetFileSchema, headers=etags.ETAG_HEADER)
    @blp.alt_response(304, description="Not modified: the file is the one named by If-None-Match")
    @blp.doc(parameters=[etags.IF_NONE_MATCH_PARAMETER])
    def get(self, code: str):
        """The target's file by its QR code (一店一码 scan), with the same ``ETag``."""
        return _file_answer(current_policy().load_by(Target, "target", code=code.strip().upper()))
