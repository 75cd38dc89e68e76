"""Checklists: what devices fill in; admins publish new versions."""

from __future__ import annotations

from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.checklists import operations
from fieldapp.checklists.models import Checklist, ChecklistVersion
from fieldapp.errors import not_found
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy
from schemas.checklists import (
    ChecklistCreateArgs,
    ChecklistGetArgs,
    ChecklistListArgs,
    ChecklistSchema,
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
        "published_at": version.published_at,
        "items": version.items,
    }


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
    @blp.response(200, ChecklistSchema)
    def get(self, args, checklist_id: int):
        """A checklist at its newest version, or at ``?version=N``."""
        checklist = current_policy().load(Checklist, checklist_id, "checklist")
        version = operations.get_version(checklist, args.get("version"))
        if version is None:
            raise not_found("checklist version")
        return _wire(checklist, version)


@blp.route("/checklists/<int:checklist_id>/versions")
class ChecklistVersionsResource(MethodView):
    @blp.arguments(ChecklistVersionArgs)
    @blp.response(201, ChecklistSchema)
    @blp.forbidden("checklist.manage")
    def post(self, args, checklist_id: int):
        """Publish a new version with the complete item list (admin)."""
        policy = current_policy()
        checklist = policy.load_to_write(Checklist, checklist_id, "checklist")
        policy.require("checklist.manage")
        version = operations.publish_version(
            current_actor(), checklist, args["title"], args["items"]
        )
        return _wire(checklist, version)
