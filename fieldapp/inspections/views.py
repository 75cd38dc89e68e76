"""Inspections: the list and the record (with its ETag), the review queue, the review itself
(审核: approve or return, with ``If-Match``), and the open rectifications (复查)."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

from flask import request
from flask.views import MethodView
from sqlalchemy.orm import selectinload

from fieldapp.api import Blueprint
from fieldapp.db import utcnow
from fieldapp.errors import APIError
from fieldapp.inspections import operations
from fieldapp.inspections.models import ACTION_PERMISSIONS, Case, Inspection
from fieldapp.web import etags
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy
from schemas.common import page_schema
from schemas.review import (
    InspectionDetailSchema,
    InspectionListArgs,
    RectificationListArgs,
    RectificationSchema,
    ReviewArgs,
    ReviewQueueArgs,
)

blp = Blueprint("inspections", __name__, description="Inspections: reading, review (审核), 复查")


@dataclass
class InspectionView:
    """An inspection with what its wire shape adds: the follow-up and the case."""

    inspection: Inspection
    follow_up: dict | None
    case: Case | None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inspection, name)


def _views(inspections: list[Inspection]) -> list[InspectionView]:
    today = operations.local_date(utcnow())
    follow_ups = operations.follow_ups(inspections, today)
    cases = operations.cases_of([i.id for i in inspections])
    return [InspectionView(i, follow_ups.get(i.id), cases.get(i.id)) for i in inspections]


# -- ETag / If-Match -----------------------------------------------------------------------------

_ENTITY_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_IF_MATCH = re.compile(rf"^\s*{_ENTITY_TAG}(?:\s*,\s*{_ENTITY_TAG})*\s*$")


def version_tag(inspection: Inspection) -> str:
    """The tag of the record's version: the part of its ETag that ``If-Match`` compares (and
    the whole ETag before the ETag covered the answer's body)."""
    return hashlib.sha1(f"inspection:{inspection.id}:{inspection.version}".encode()).hexdigest()


_DETAIL = InspectionDetailSchema()
_ETAG_HEADER = {"ETag": {"description": etags.ETAG_DESCRIPTION, "schema": {"type": "string"}}}


def require_current(inspection: Inspection) -> None:
    """The caller's ``If-Match`` names the current version: 428 without one (or with ``*``,
    which says nothing about what was read), 400 when it is not a list of entity tags, 409
    ``version_conflict`` when the record moved since."""
    header = request.headers.get("If-Match", "")
    if not header.strip() or header.strip() == "*":
        raise APIError(
            428,
            "precondition_required",
            'send "If-Match" with the ETag of the inspection you reviewed',
            errors={"headers": {"If-Match": ["required: the ETag you read"]}},
        )
    if not _IF_MATCH.match(header):
        message = 'not an entity tag: send the ETag as read, quotes included ("...")'
        raise APIError(
            400, "malformed_if_match", message, errors={"headers": {"If-Match": [message]}}
        )
    if not etags.if_match_names(version_tag(inspection)):
        raise APIError(
            409,
            "version_conflict",
            f"the inspection changed since you read it (it is at version {inspection.version});"
            " read it again",
        )


# -- endpoints -----------------------------------------------------------------------------------


@blp.route("/inspections")
class InspectionsResource(MethodView):
    @blp.arguments(InspectionListArgs, location="query")
    @blp.response(200, page_schema(InspectionDetailSchema, "InspectionPage"))
    def get(self, args):
        """Inspections in the caller's scope, filtered; the latest started first."""
        page, per_page = args.pop("page"), args.pop("per_page")
        filters = operations.InspectionFilters(
            squadron_id=args.get("squadron_id"),
            target_id=args.get("target_id"),
            officer_id=args.get("officer_id"),
            status=args.get("status"),
            review_status=args.get("review_status"),
            started_from=args.get("from_"),
            started_before=args.get("to"),
        )
        query = operations.search_inspections(_scoped(), filters)
        result = paginate(query, page, per_page)
        result["items"] = _views(result["items"])
        return result


@blp.route("/inspections/<uuid:inspection_id>")
class InspectionResource(MethodView):
    @blp.response(200, InspectionDetailSchema, headers=_ETAG_HEADER)
    @blp.alt_response(304, description="Not modified: the record is the one named by If-None-Match")
    @blp.headers("IF_NONE_MATCH")
    def get(self, inspection_id: uuid.UUID):
        """The inspection, with an ``ETag`` that changes with every version and with its
        ``follow_up`` and ``case``."""
        inspection = current_policy().load(Inspection, inspection_id, "inspection")
        return etags.conditional_get(version_tag(inspection), _views([inspection])[0], _DETAIL)


@blp.route("/inspections/<uuid:inspection_id>/review")
class ReviewResource(MethodView):
    @blp.arguments(ReviewArgs)
    @blp.response(200, InspectionDetailSchema, headers=_ETAG_HEADER)
    @blp.forbidden("inspection.review")
    @blp.errors(
        why={
            400: "`malformed_if_match`: If-Match is not a list of entity tags; or"
            " `malformed_json`: the body is not JSON",
            409: "`version_conflict` (the record moved since it was read) or"
            " `invalid_transition` (not waiting for review)",
            428: "`precondition_required`: If-Match is missing (or `*`)",
        }
    )
    @blp.headers(
        {
            "name": "If-Match",
            "required": True,
            "schema": {"type": "string"},
            "description": "the ETag of the inspection as read (only its version part is compared)",
        }
    )
    def post(self, args, inspection_id: uuid.UUID):
        """Approve or return a submitted inspection (the squadron's leader, or an admin; never
        one of its officers). Needs ``If-Match``; a comment is required to return."""
        policy = current_policy()
        inspection = policy.load_to_write(Inspection, inspection_id, "inspection")
        policy.require(ACTION_PERMISSIONS[operations.DECISIONS[args["decision"]]], inspection)
        require_current(inspection)
        operations.review(current_actor(), inspection, args["decision"], args["comment"], utcnow())
        answer = etags.json_body(_views([inspection])[0], _DETAIL)
        answer.set_etag(etags.entity_tag(version_tag(inspection), answer.get_data()))
        return answer


@blp.route("/review/queue")
class ReviewQueueResource(MethodView):
    @blp.arguments(ReviewQueueArgs, location="query")
    @blp.response(200, page_schema(InspectionDetailSchema, "ReviewQueuePage"))
    def get(self, args):
        """Submitted inspections waiting for review, the longest waiting first; not those the
        caller took part in (another reviewer decides them)."""
        query = operations.review_queue(_scoped(), args.get("squadron_id"), current_actor().user_id)
        result = paginate(query, args["page"], args["per_page"])
        result["items"] = _views(result["items"])
        return result


@blp.route("/rectifications")
class RectificationsResource(MethodView):
    @blp.arguments(RectificationListArgs, location="query")
    @blp.response(200, page_schema(RectificationSchema, "RectificationPage"))
    def get(self, args):
        """Rectification orders (责令整改) still waiting for their follow-up (复查), the oldest
        deadline first; ``overdue=true`` for those past their deadline."""
        today = operations.local_date(utcnow())
        query = operations.open_rectifications(
            _scoped(),
            squadron_id=args.get("squadron_id"),
            target_id=args.get("target_id"),
            overdue=args.get("overdue"),
            today=today,
        )
        result = paginate(query, args["page"], args["per_page"])
        result["items"] = [
            {
                "inspection_id": i.id,
                "target_id": i.target_id,
                "target_name": i.target.name,
                "target_code": i.target.code,
                "squadron_id": i.squadron_id,
                "officer_ids": i.officer_ids,
                "ordered_at": i.ended_at,
                "deadline": i.rectification_deadline,
                "days_overdue": (today - i.rectification_deadline).days,
                "review_status": i.review_status,
                "findings": i.findings,
            }
            for i in result["items"]
        ]
        return result


def _scoped():
    return current_policy().scoped(Inspection).options(selectinload(Inspection.target))
