"""Supervision (督察) endpoints: case-file reviews and supervision orders.

Supervisors write these (and nothing else: inspection content stays the officers'); the
squadron's leader reads them and answers orders; admins read.
"""

from __future__ import annotations

import uuid

from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.db import utcnow
from fieldapp.errors import not_found, validation_error
from fieldapp.inspections.models import Inspection
from fieldapp.supervision import operations
from fieldapp.supervision.models import CaseReview, SupervisionOrder
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy
from schemas.common import page_schema
from schemas.supervision import (
    AnswerArgs,
    CaseReviewArgs,
    CaseReviewListArgs,
    CaseReviewSchema,
    CloseArgs,
    OrderArgs,
    OrderListArgs,
    OrderSchema,
    ReopenArgs,
)

blp = Blueprint(
    "supervision",
    __name__,
    description="Supervision: case-file reviews (案卷评查), orders (督办单)",
)


@blp.route("/supervision/case-reviews")
class CaseReviewsResource(MethodView):
    @blp.arguments(CaseReviewListArgs, location="query")
    @blp.response(200, page_schema(CaseReviewSchema, "CaseReviewPage"))
    def get(self, args):
        """Case-file reviews, newest first: the district's for supervisors, the squadron's for
        its leader."""
        page, per_page = args.pop("page"), args.pop("per_page")
        query = operations.case_reviews_query(current_policy().scoped(CaseReview), args)
        return paginate(query, page, per_page)

    @blp.arguments(CaseReviewArgs)
    @blp.response(201, CaseReviewSchema)
    @blp.forbidden("case_review.record")
    def post(self, args):
        """Record a review of a submitted inspection's case file (supervisors)."""
        policy = current_policy()
        inspection = policy.load_or_none(Inspection, args["inspection_id"])
        if inspection is None:
            raise validation_error({"inspection_id": ["no such inspection"]})
        policy.require("case_review.record", inspection.squadron_id)
        return operations.record_case_review(
            current_actor(),
            inspection,
            args["verdict"],
            args["findings"],
            args["comment"],
            utcnow(),
        )


@blp.route("/supervision/case-reviews/<uuid:review_id>")
class CaseReviewResource(MethodView):
    @blp.response(200, CaseReviewSchema)
    def get(self, review_id: uuid.UUID):
        """One case-file review."""
        return current_policy().load(CaseReview, review_id, "case review")


@blp.route("/supervision/orders")
class OrdersResource(MethodView):
    @blp.arguments(OrderListArgs, location="query")
    @blp.response(200, page_schema(OrderSchema, "SupervisionOrderPage"))
    def get(self, args):
        """Supervision orders, earliest deadline first; ``overdue=true`` lists the open ones
        past their deadline."""
        page, per_page = args.pop("page"), args.pop("per_page")
        query = operations.orders_query(current_policy().scoped(SupervisionOrder), args, utcnow())
        return paginate(query, page, per_page)

    @blp.arguments(OrderArgs)
    @blp.response(201, OrderSchema)
    @blp.forbidden("supervision.issue")
    def post(self, args):
        """Issue an order to a squadron (supervisors of its district)."""
        current_policy().require("supervision.issue", args["squadron_id"])
        return operations.issue_order(current_actor(), args["squadron_id"], args, utcnow())


def _locked(order_id: uuid.UUID) -> SupervisionOrder:
    """The order to act on, locked; 404 only if there is none (out of scope, the permission
    checked next answers 403: API.md's out-of-scope writes)."""
    order = operations.lock_order(order_id)
    if order is None:
        raise not_found("supervision order")
    return order


@blp.route("/supervision/orders/<uuid:order_id>")
class OrderResource(MethodView):
    @blp.response(200, OrderSchema)
    def get(self, order_id: uuid.UUID):
        """One order with its history (issued, answered, closed, reopened)."""
        return current_policy().load(SupervisionOrder, order_id, "supervision order")


@blp.route("/supervision/orders/<uuid:order_id>/answer")
class OrderAnswerResource(MethodView):
    @blp.arguments(AnswerArgs)
    @blp.response(200, OrderSchema)
    @blp.forbidden("supervision.answer")
    @blp.errors(why={409: "`invalid_transition`: the order is not in a state that allows this"})
    def post(self, args, order_id: uuid.UUID):
        """The squadron's leader answers an open order (409 ``invalid_transition`` otherwise)."""
        order = _locked(order_id)
        current_policy().require("supervision.answer", order)
        return operations.answer_order(current_actor(), order, args["response"], utcnow())


@blp.route("/supervision/orders/<uuid:order_id>/close")
class OrderCloseResource(MethodView):
    @blp.arguments(CloseArgs)
    @blp.response(200, OrderSchema)
    @blp.forbidden("supervision.decide")
    @blp.errors(why={409: "`invalid_transition`: the order is not in a state that allows this"})
    def post(self, args, order_id: uuid.UUID):
        """The supervisor accepts an answered order."""
        order = _locked(order_id)
        current_policy().require("supervision.decide", order)
        return operations.close_order(current_actor(), order, args["comment"], utcnow())


@blp.route("/supervision/orders/<uuid:order_id>/reopen")
class OrderReopenResource(MethodView):
    @blp.arguments(ReopenArgs)
    @blp.response(200, OrderSchema)
    @blp.forbidden("supervision.decide")
    @blp.errors(why={409: "`invalid_transition`: the order is not in a state that allows this"})
    def post(self, args, order_id: uuid.UUID):
        """The supervisor reopens an answered or closed order, with a reason (and a new
        deadline if the old one has passed)."""
        order = _locked(order_id)
        current_policy().require("supervision.decide", order)
        return operations.reopen_order(
            current_actor(), order, args["reason"], args.get("deadline"), utcnow()
        )
