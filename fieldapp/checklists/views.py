"""Checklists: what devices fill in; admins publish new versions, retire and reinstate them."""

from __future__ import annotations

import hashlib

from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.checklists import operations
from fieldapp.checklists.models import Checklist, ChecklistVersion
from fieldapp.db import db
from fieldapp.errors import not_found
from fieldapp.web import etags
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy
from schemas.checklists import (
    ChecklistCreateArgs,
    ChecklistGetArgs,
    ChecklistListArgs,
    ChecklistSchema,
    ChecklistUpdateArgs,
    ChecklistVersionArgs,
)
from schemas.common import page_schema

blp = Blueprint("checklists", __name__, description="Standardized forms (标准化检查表单)")


def _wire(checklist: Checklist, version: ChecklistVersion) -> dict:
    return {
        "id": checklist.id,
        "kind": checklist.kind,
        "version": version.version,
        "title": version.title,
        "active": checklist.active,
        "published_at": version.published_at,
        "items": version.items,
    }


_ONE = ChecklistSchema()


def _version_tag(checklist: Checklist) -> str:
    """The tag of the checklist record's version (a publication, a retirement): the part of
    its ETag that ``If-Match`` compares."""
    return hashlib.sha1(f"checklist:{checklist.id}:{checklist.version}".encode()).hexdigest()


@blp.route("/checklists")
class ChecklistsResource(MethodView):
    @blp.arguments(ChecklistListArgs, location="query")
    @blp.response(200, page_schema(ChecklistSchema, "ChecklistPage"))
    def get(self, args):
        """Active checklists at their newest version."""
        query = current_policy().scoped(Checklist).where(Checklist.active.is_(True))
        if "kind" in args:
            query = query.where(Checklist.kind == args["kind"])
        page = paginate(query.order_by(Checklist.id), args["page"], args["per_page"])
        page["items"] = [_wire(c, operations.get_version(c)) for c in page["items"]]
        return page

    @blp.arguments(ChecklistCreateArgs)
    @blp.response(201, ChecklistSchema)
    @blp.forbidden("checklist.manage")
    def post(self, args):
        """Create a checklist with its first version (admin)."""
        current_policy().require("checklist.manage")
        checklist = operations.create_checklist(
            current_actor(), args["kind"], args["title"], args["items"]
        )
        return _wire(checklist, operations.get_version(checklist))


@blp.route("/checklists/<int:checklist_id>")
class ChecklistResource(MethodView):
    @blp.arguments(ChecklistGetArgs, location="query")
    @blp.response(200, ChecklistSchema, headers=etags.ETAG_HEADER)
    @blp.alt_response(304, description="Not modified: the body is the one named by If-None-Match")
    @blp.doc(parameters=[etags.IF_NONE_MATCH_PARAMETER])
    def get(self, args, checklist_id: int):
        """A checklist at its newest version, or at ``?version=N``; retired ones too (their
        inspections name them). Its ``ETag`` is what a retirement's ``If-Match`` sends."""
        checklist = current_policy().load(Checklist, checklist_id, "checklist")
        version = operations.get_version(checklist, args.get("version"))
        if version is None:
            raise not_found("checklist version")
        return etags.conditional_get(_version_tag(checklist), _wire(checklist, version), _ONE)

    @blp.arguments(ChecklistUpdateArgs)
    @blp.response(200, ChecklistSchema, headers=etags.ETAG_HEADER)
    @blp.forbidden("checklist.manage")
    @blp.errors(why=etags.PRECONDITION_ERRORS)
    @blp.doc(parameters=[etags.IF_MATCH_PARAMETER])
    def patch(self, args, checklist_id: int):
        """Retire a checklist (``{"active": false}``: a form withdrawn; it leaves the list and
        devices pull it as inactive) or reinstate it (admin; ``If-Match``: 428 without, 412
        when the checklist changed since it was read). Its versions stay as they were."""
        policy = current_policy()
        checklist = policy.load_to_write(Checklist, checklist_id, "checklist")
        policy.require("checklist.manage")
        etags.require_if_match(_version_tag(checklist))
        operations.set_active(current_actor(), checklist, args["active"])
        db.session.flush()
        answer = etags.json_body(_wire(checklist, operations.get_version(checklist)), _ONE)
        answer.set_etag(etags.entity_tag(_version_tag(checklist), answer.get_data()))
        return answer


@blp.route("/checklists/<int:checklist_id>/versions")
class ChecklistVersionsResource(MethodView):
    @blp.arguments(ChecklistVersionArgs)
    @blp.response(201, ChecklistSchema, headers=etags.ETAG_HEADER)
    @blp.forbidden("checklist.manage")
    @blp.errors(why=etags.PRECONDITION_ERRORS)
    @blp.doc(parameters=[etags.IF_MATCH_PARAMETER])
    def post(self, args, checklist_id: int):
        """Publish a new version with the complete item list (admin; ``If-Match`` with the
        checklist's ETag: 428 without, 412 when another version was published or the checklist
        retired since it was read). The list replaces the form whole: one published from an
        older reading would drop what a colleague's version added."""
        policy = current_policy()
        checklist = policy.load_to_write(Checklist, checklist_id, "checklist")
        policy.require("checklist.manage")
        etags.require_if_match(_version_tag(checklist))
        version = operations.publish_version(
            current_actor(), checklist, args["title"], args["items"]
        )
        db.session.flush()
        answer = etags.json_body(_wire(checklist, version), _ONE)
        answer.status_code = 201
        answer.set_etag(etags.entity_tag(_version_tag(checklist), answer.get_data()))
        return answer
