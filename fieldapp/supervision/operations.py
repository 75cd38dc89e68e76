"""Case-file reviews and supervision orders: checks, state changes and their audit entries.

Plain functions taking the actor and loaded models; they never commit and never read the
request. Permission (who may) is the policy's; these guard the records' own rules.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.checklists.models import ChecklistItem
from fieldapp.db import change_counter, db
from fieldapp.errors import APIError, validation_error
from fieldapp.inspections.models import Case, Inspection, InspectionStatus
from fieldapp.supervision.models import (
    CaseReview,
    OrderStatus,
    SupervisionOrder,
    Verdict,
)
from fieldapp.targets.models import Target
from sync.sequence import hold
from sync.versions import move_to_squadron

# -- case-file reviews (案卷评查) -----------------------------------------------------------------


def record_case_review(
    actor: Actor,
    inspection: Inspection,
    verdict: Verdict,
    findings: list[dict],
    comment: str,
    now: datetime,
) -> CaseReview:
    """A supervisor's review of a submitted inspection's case file.

    Findings that name a checklist item must name an item of the inspection's checklist version.
    """
    if inspection.status is not InspectionStatus.submitted:
        raise validation_error({"inspection_id": ["the inspection is a draft: nothing to review"]})
    codes = set(
        db.session.scalars(
            sa.select(ChecklistItem.code).where(
                ChecklistItem.checklist_id == inspection.checklist_id,
                ChecklistItem.checklist_version == inspection.checklist_version,
            )
        )
    )
    unknown = {
        str(n): {"item_code": [f"{f['item_code']} is not an item of the inspection's checklist"]}
        for n, f in enumerate(findings)
        if f.get("item_code") and f["item_code"] not in codes
    }
    if unknown:
        raise validation_error({"findings": unknown})
    review = CaseReview(
        inspection_id=inspection.id,
        squadron_id=inspection.squadron_id,
        reviewer_id=actor.user_id,
        verdict=verdict,
        findings=[
            {"code": f.get("code"), "item_code": f.get("item_code"), "text": f["text"]}
            for f in findings
        ],
        comment=comment,
        created_at=now,
    )
    db.session.add(review)
    db.session.flush()
    audit.record(
        actor, "case_review.record", "case_review", review.id, after=audit.snapshot(review)
    )
    return review


def case_reviews_query(base: sa.Select, filters: dict) -> sa.Select:
    """Reviews (already scoped by the caller) matching the filters, newest first."""
    query = base.order_by(CaseReview.created_at.desc(), CaseReview.id)
    for name in ("inspection_id", "squadron_id", "reviewer_id", "verdict"):
        if name in filters:
            query = query.where(getattr(CaseReview, name) == filters[name])
    if "from_" in filters:
        query = query.where(CaseReview.created_at >= filters["from_"])
    if "to" in filters:
        query = query.where(CaseReview.created_at < filters["to"])
    return query


# -- supervision orders (督办单) -----------------------------------------------------------------

_SUBJECTS = (("inspection_id", Inspection), ("target_id", Target), ("case_id", Case))


def _event(
    actor: Actor, action: str, now: datetime, text: str | None, squadron_id: int, **extra
) -> dict:
    """One step of an order's history. The squadron the order was with at that step is kept
    in it: the monthly report counts each issue and answer where it happened, which a later
    move of the order (with its target) must not rewrite."""
    step = {"at": now.isoformat(), "by": str(actor.user_id), "action": action, "text": text}
    return step | {"squadron_id": squadron_id} | {k: v.isoformat() for k, v in extra.items()}


def _future(deadline: datetime, now: datetime, field: str = "deadline") -> None:
    if deadline <= now:
        raise validation_error({field: ["the deadline must lie in the future"]})


def _disagreement(subjects: dict) -> dict[str, list[str]]:
    """Where the subjects of one order speak of different things: the case must be the one
    the inspection opened, and the target the one the inspection (or the case) is about. The
    field named is the less precise one, checked against the more precise."""
    inspection, target, case = (subjects.get(field) for field, _ in _SUBJECTS)
    errors = {}
    if inspection is not None and case is not None and case.inspection_id != inspection.id:
        errors["case_id"] = ["this case was not opened by the inspection named"]
    about = inspection or case
    if about is not None and target is not None and about.target_id != target.id:
        what = "inspection" if inspection is not None else "case"
        errors["target_id"] = [f"the {what} named is about another target"]
    return errors


def issue_order(actor: Actor, squadron_id: int, args: dict, now: datetime) -> SupervisionOrder:
    """A supervisor's order to a squadron. Every subject named must exist and be the
    squadron's (an order about another squadron's record would reach the wrong leader), and
    the subjects must agree (an inspection of the target named, a case of the inspection):
    one order is about one matter."""
    errors, subjects = {}, {}
    for field, model in _SUBJECTS:
        ident = args.get(field)
        if ident is None:
            continue
        subject = db.session.get(model, ident)
        if subject is None:
            errors[field] = [f"no such {model.__name__.lower()}"]
        elif subject.squadron_id != squadron_id:
            errors[field] = [f"this {model.__name__.lower()} belongs to another squadron"]
        else:
            subjects[field] = subject
    errors = _disagreement(subjects) | errors
    if errors:
        raise validation_error(errors)
    _future(args["deadline"], now)
    order = SupervisionOrder(
        squadron_id=squadron_id,
        issued_by_id=actor.user_id,
        inspection_id=args.get("inspection_id"),
        target_id=args.get("target_id"),
        case_id=args.get("case_id"),
        text=args["text"],
        deadline=args["deadline"],
        status=OrderStatus.open,
        issued_at=now,
        history=[_event(actor, "issue", now, args["text"], squadron_id, deadline=args["deadline"])],
    )
    db.session.add(order)
    db.session.flush()
    audit.record(
        actor, "supervision_order.issue", "supervision_order", order.id, after=audit.snapshot(order)
    )
    return order


def _require_status(order: SupervisionOrder, allowed: tuple[OrderStatus, ...], doing: str) -> None:
    if order.status not in allowed:
        names = " or ".join(s.value for s in allowed)
        raise APIError(
            409,
            "invalid_transition",
            f"the order is {order.status.value}; only an order that is {names} can be {doing}",
        )


def _transition(
    actor: Actor, order: SupervisionOrder, action: str, event: dict, **changes
) -> SupervisionOrder:
    before = audit.snapshot(order)
    for name, value in changes.items():
        setattr(order, name, value)
    order.history = [*order.history, event]
    audit.record_update(actor, f"supervision_order.{action}", "supervision_order", order, before)
    return order


def answer_order(
    actor: Actor, order: SupervisionOrder, response: str, now: datetime
) -> SupervisionOrder:
    """The squadron's leader answers an open order (late answers are accepted, and show)."""
    _require_status(order, (OrderStatus.open,), "answered")
    return _transition(
        actor,
        order,
        "answer",
        _event(actor, "answer", now, response, order.squadron_id),
        status=OrderStatus.answered,
        response=response,
        answered_by_id=actor.user_id,
        answered_at=now,
    )


def close_order(
    actor: Actor, order: SupervisionOrder, comment: str, now: datetime
) -> SupervisionOrder:
    """The supervisor accepts the answer."""
    _require_status(order, (OrderStatus.answered,), "closed")
    return _transition(
        actor,
        order,
        "close",
        _event(actor, "close", now, comment or None, order.squadron_id),
        status=OrderStatus.closed,
        closed_at=now,
    )


def reopen_order(
    actor: Actor, order: SupervisionOrder, reason: str, deadline: datetime | None, now: datetime
) -> SupervisionOrder:
    """The supervisor is not satisfied: the order is open again (with a new deadline, or the
    old one when that still lies ahead)."""
    _require_status(order, (OrderStatus.answered, OrderStatus.closed), "reopened")
    deadline = deadline or order.deadline
    _future(deadline, now)
    answering = _squadron_answering_for(order)
    if answering is not None and answering != order.squadron_id:
        # An answered order stayed behind when its target moved, as the old squadron's
        # history; open again, it asks for what the target's squadron now does.
        _move_orders(actor, [order], answering, now)
    return _transition(
        actor,
        order,
        "reopen",
        _event(actor, "reopen", now, reason, order.squadron_id, deadline=deadline),
        status=OrderStatus.open,
        deadline=deadline,
        closed_at=None,
    )


def _squadron_answering_for(order: SupervisionOrder) -> int | None:
    """The squadron the target of an order about a target or its case is in now; None for an
    order that names an inspection (it stays with the squadron that made the inspection)."""
    if order.inspection_id is not None:
        return None
    target_id = order.target_id
    if target_id is None:
        target_id = db.session.scalar(sa.select(Case.target_id).where(Case.id == order.case_id))
    return db.session.scalar(sa.select(Target.squadron_id).where(Target.id == target_id))


def _move_orders(
    actor: Actor, orders: list[SupervisionOrder], squadron_id: int, now: datetime
) -> int:
    """File ``orders`` under ``squadron_id``: an audit entry ``supervision_order.move`` and a
    ``move`` step in each order's history (the step keeps where the order went, and when)."""
    for order in orders:
        order.history = [*order.history, _event(actor, "move", now, None, squadron_id)]
    return move_to_squadron(
        actor, orders, "supervision_order.move", "supervision_order", squadron_id
    )


def open_orders_follow(actor: Actor, target: Target, squadron_id: int, now: datetime) -> int:
    """The target moved to ``squadron_id``: the open orders about it go with it, as its open
    complaints, tasks and conflict entries do. An order about the target, or about a case of
    the target, asks for what the squadron answering for the target does (left behind, it
    waited on a leader who may no longer even read the target, and the new one never saw
    it). Orders that name an inspection stay with it (inspections never change squadron, and
    the squadron that made it answers for it), and so do answered and closed orders, as the
    old squadron's history. Each move is audited (``supervision_order.move``); returns how
    many orders moved. An answered order that stays behind follows later, if it is reopened
    (:func:`reopen_order`).

    The orders are locked as they are read, as answering locks its order: an answer that got
    there first is waited for (and its order, answered then, stays), and one that comes after
    is asked of the new squadron."""
    cases_of_target = sa.select(Case.id).where(Case.target_id == target.id)
    moving = db.session.scalars(
        sa.select(SupervisionOrder)
        .where(
            SupervisionOrder.status == OrderStatus.open,
            SupervisionOrder.inspection_id.is_(None),
            sa.or_(
                SupervisionOrder.target_id == target.id,
                SupervisionOrder.case_id.in_(cases_of_target),
            ),
            SupervisionOrder.squadron_id != squadron_id,
        )
        .order_by(SupervisionOrder.id)
        .with_for_update()
    ).all()
    return _move_orders(actor, moving, squadron_id, now)


def orders_query(base: sa.Select, filters: dict, now: datetime) -> sa.Select:
    """Orders (already scoped by the caller) matching the filters, earliest deadline first."""
    query = base.order_by(SupervisionOrder.deadline, SupervisionOrder.id)
    for name in ("squadron_id", "status", "inspection_id", "target_id", "case_id"):
        if name in filters:
            query = query.where(getattr(SupervisionOrder, name) == filters[name])
    if "overdue" in filters:
        overdue = sa.and_(
            SupervisionOrder.status == OrderStatus.open, SupervisionOrder.deadline < now
        )
        query = query.where(overdue if filters["overdue"] else sa.not_(overdue))
    return query


def lock_order(order_id: uuid.UUID) -> SupervisionOrder | None:
    """The order, locked for a state change (two people acting at once take turns), with the
    change counter taken first, as every writer that reads rows to decide what to write takes
    it (:func:`sync.sequence.hold`): a reopen reads where the order's target is now, and a move
    of the target committed before is seen, one coming after waits and then finds the order
    open, to take along. Read before, the two could miss each other and leave the order open
    with a squadron that can no longer read its target."""
    hold(db.session, change_counter)
    return db.session.scalar(
        sa.select(SupervisionOrder).where(SupervisionOrder.id == order_id).with_for_update()
    )
