"""Inspections on the server side: finding them, the leader's review (审核) and what approval
sets off (closing the task, opening the case 立案, re-scoring the target's risk), and the
rectification follow-ups (复查) a squadron owes.

States and their transitions live in one table (``fieldapp.inspections.models.TRANSITIONS``);
this module and the sync engine both move an inspection only through
:meth:`Inspection.transition`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.checklists.models import ChecklistItem
from fieldapp.db import db
from fieldapp.errors import APIError
from fieldapp.inspections.models import (
    Case,
    Inspection,
    InspectionStatus,
    Outcome,
    ReviewAction,
    ReviewStatus,
    TransitionRefused,
    inspections_of,
)
from fieldapp.localtime import local_date
from fieldapp.org.models import District, Squadron
from fieldapp.risk import operations as risk
from fieldapp.targets.models import Target
from fieldapp.tasks import operations as tasks
from sync.entities import inspection_wire
from sync.models import RecordVersion
from sync.versions import move_to_squadron, record_version

DECISIONS = {"approve": ReviewAction.approve, "return": ReviewAction.return_}


# -- finding inspections -------------------------------------------------------------------------


@dataclass
class InspectionFilters:
    squadron_id: int | None = None
    target_id: uuid.UUID | None = None
    officer_id: uuid.UUID | None = None
    status: InspectionStatus | None = None
    review_status: ReviewStatus | None = None
    started_from: datetime | None = None
    started_before: datetime | None = None


def search_inspections(query: sa.Select, filters: InspectionFilters) -> sa.Select:
    """``query`` (a scoped ``SELECT Inspection``) filtered; the latest started first."""
    if filters.squadron_id is not None:
        query = query.where(Inspection.squadron_id == filters.squadron_id)
    if filters.target_id is not None:
        query = query.where(Inspection.target_id == filters.target_id)
    if filters.officer_id is not None:
        query = query.where(Inspection.id.in_(inspections_of(filters.officer_id)))
    if filters.status is not None:
        query = query.where(Inspection.status == filters.status)
    if filters.review_status is not None:
        query = query.where(Inspection.review_status == filters.review_status)
    if filters.started_from is not None:
        query = query.where(Inspection.started_at >= filters.started_from)
    if filters.started_before is not None:
        query = query.where(Inspection.started_at < filters.started_before)
    return query.order_by(Inspection.started_at.desc(), Inspection.id)


def review_queue(
    query: sa.Select, squadron_id: int | None = None, reviewer_id: uuid.UUID | None = None
) -> sa.Select:
    """Submitted inspections waiting for review, the longest waiting first.

    Those ``reviewer_id`` took part in are left out: they may not review them (an admin does,
    and finds them in the admin's queue).
    """
    query = query.where(
        Inspection.status == InspectionStatus.submitted,
        Inspection.review_status == ReviewStatus.pending,
    )
    if reviewer_id is not None:
        query = query.where(
            Inspection.id.not_in(inspections_of(reviewer_id)),
            sa.or_(Inspection.created_by_id.is_(None), Inspection.created_by_id != reviewer_id),
        )
    if squadron_id is not None:
        query = query.where(Inspection.squadron_id == squadron_id)
    return query.order_by(Inspection.submitted_at, Inspection.id)


# -- review --------------------------------------------------------------------------------------


def refused(exc: TransitionRefused, field: str = "decision") -> APIError:
    """The answer to a transition the current state does not allow."""
    return APIError(409, "invalid_transition", str(exc), errors={"json": {field: [str(exc)]}})


def review(
    actor: Actor, inspection: Inspection, decision: str, comment: str | None, now: datetime
) -> Inspection:
    """Approve or return a submitted inspection (the caller checked who may, and the version).

    The review is a new version of the record, like any device edit: a version snapshot (so
    devices merging against an older base still merge), a new change sequence number (so the
    officers' devices pull it) and an audit entry. Approval also closes the inspection's task,
    opens its case when the outcome is 立案, and re-scores the target's risk, all in this
    transaction.
    """
    action = DECISIONS[decision]
    before = inspection_wire(inspection)
    try:
        inspection.transition(action, by=actor.user_id, at=now, comment=comment)
    except TransitionRefused as exc:
        raise refused(exc) from None
    db.session.flush()  # version +1 (refused if another writer got there first), change_seq
    after = inspection_wire(inspection)
    record_version(
        "inspection",
        inspection,
        after,
        ["review"],
        user_id=actor.user_id,
        device_id=actor.device_id,
        at=now,
    )
    audit.record(
        actor,
        f"inspection.{action.value}",
        "inspection",
        inspection.id,
        before={"review": before["review"], "version": before["version"]},
        after={"review": after["review"], "version": after["version"]},
    )
    if action is ReviewAction.approve:
        if inspection.task_id is not None:
            tasks.close_task(actor, inspection.task_id, inspection, now)
        if inspection.outcome is Outcome.case_opened:
            open_case(actor, inspection, now)
        # Approved again after an amendment reopened it, it may no longer give a reason for the
        # rise of level its first approval caused (a severe finding amended away): that rise
        # goes rather than being held by the downgrade rules. A first approval names no rise.
        risk.refresh_targets(
            actor, [inspection.target_id], now, corrected=[("inspection", inspection.id)]
        )
    return inspection


# -- cases (立案) ---------------------------------------------------------------------------------

_CASE_SERIAL = re.compile(r"第(\d+)号$")


def case_number_prefix(district: District, year: int) -> str:
    """``沪宝城管罚字〔2026〕``: the city, the district's first character, the year."""
    return f"沪{district.name[:1]}城管罚字〔{year}〕"


def next_case_number(district: District, year: int) -> str:
    """The next number in the district's series for ``year`` (案号).

    Serialized by the change-sequence lock every writing transaction takes before it gets here
    (approval has already written the inspection); the unique index on ``cases.number`` turns
    any race that slips through into a 409, never a duplicate.
    """
    prefix = case_number_prefix(district, year)
    last = db.session.scalar(
        sa.select(Case.number)
        .where(Case.number.startswith(prefix, autoescape=True))
        .order_by(Case.number.desc())
        .limit(1)
    )
    serial = int(_CASE_SERIAL.search(last).group(1)) if last else 0
    return f"{prefix}第{serial + 1:06d}号"


def open_case(actor: Actor, inspection: Inspection, now: datetime) -> Case | None:
    """立案 for an approved inspection whose outcome is ``case_opened``; once per inspection
    (an inspection approved again after an amendment keeps its case)."""
    existing = db.session.scalar(sa.select(Case).where(Case.inspection_id == inspection.id))
    if existing is not None:
        return None
    # Filed with the squadron that answers for the target now, as its open cases are when it
    # moves (open_cases_follow): an inspection made before its shop moved is filed where the
    # shop now is, but one approved in between would open its case in a squadron that can no
    # longer read the shop. (The monthly report counts the case for the inspection's squadron.)
    squadron_id = db.session.scalar(
        sa.select(Target.squadron_id).where(Target.id == inspection.target_id)
    )
    district = db.session.scalar(
        sa.select(District)
        .join(Squadron, Squadron.district_id == District.id)
        .where(Squadron.id == squadron_id)
    )
    item = _worst_failed_item(inspection)
    case = Case(
        number=next_case_number(district, local_date(now).year),
        target_id=inspection.target_id,
        squadron_id=squadron_id,
        inspection_id=inspection.id,
        item_code=item.code if item else None,
        opened_at=now,
        summary=((item.text if item else "") or inspection.findings or "")[:500],
    )
    db.session.add(case)
    db.session.flush()
    audit.record(
        actor,
        "case.open",
        "case",
        case.id,
        after={
            "number": case.number,
            "inspection_id": str(inspection.id),
            "target_id": str(inspection.target_id),
            "item_code": case.item_code,
        },
    )
    return case


def open_cases_follow(actor: Actor, target: Target, squadron_id: int) -> int:
    """The target moved to ``squadron_id``: its open cases (立案, not closed) go with it, as
    its open complaints, tasks and supervision orders do, each with an audit entry
    ``case.move`` (``{squadron_id}`` before and after); returns how many moved.

    The target's file lists its cases by the case's squadron: left behind, an open case was
    in no file the squadron now answering for the target can read, while the orders about it
    follow the target and ask that squadron about it. Closed cases stay, as the old
    squadron's history (the monthly report counts a case as opened by the squadron whose
    inspection opened it, so a move rewrites no past month)."""
    moving = db.session.scalars(
        sa.select(Case)
        .where(
            Case.target_id == target.id,
            Case.closed_at.is_(None),
            Case.squadron_id != squadron_id,
        )
        .order_by(Case.id)
        .with_for_update()
    ).all()
    return move_to_squadron(actor, moving, "case.move", "case", squadron_id)


_SEVERITY_ORDER = {"severe": 0, "moderate": 1, "minor": 2}


def _worst_failed_item(inspection: Inspection) -> ChecklistItem | None:
    failed = [
        code
        for code, answer in (inspection.answers or {}).items()
        if isinstance(answer, dict) and answer.get("result") == "fail"
    ]
    if not failed:
        return None
    items = db.session.scalars(
        sa.select(ChecklistItem).where(
            ChecklistItem.checklist_id == inspection.checklist_id,
            ChecklistItem.checklist_version == inspection.checklist_version,
            ChecklistItem.code.in_(failed),
        )
    ).all()
    return min(items, key=lambda i: (_SEVERITY_ORDER[i.severity.value], i.code), default=None)


def cases_of(inspection_ids: list[uuid.UUID]) -> dict[uuid.UUID, Case]:
    """The case each of these inspections opened, if any (one query for a page)."""
    if not inspection_ids:
        return {}
    return {
        case.inspection_id: case
        for case in db.session.scalars(
            sa.select(Case).where(Case.inspection_id.in_(inspection_ids))
        )
    }


# -- rectification follow-ups (复查) --------------------------------------------------------------


def in_force_as_at(record, as_at: datetime) -> sa.ColumnElement[bool]:
    """``record`` (:class:`Inspection` or an alias) was in force (:attr:`Inspection.in_force`:
    submitted and not returned) as at ``as_at``, a server time.

    Read from the record's history: its latest version snapshot by then (``record_versions``,
    each written with the review state at the server time of the change), so a record returned
    and resubmitted any number of times is judged by where it stood at that moment, whatever
    happened to it since. One index lookup per record, in the query that asks.

    A record with no snapshot by then was not yet on the server, or comes from before the
    history was kept (rows written straight into the table); from its columns, then: the server
    had it, submitted, by ``as_at`` (its first submission; rows from before that was kept count
    from their arrival), and it was not returned, or returned only after ``as_at``.
    """
    snapshot = RecordVersion.data
    latest = (
        sa.select(
            sa.and_(
                snapshot["status"].as_string() == InspectionStatus.submitted.value,
                snapshot[("review", "status")].as_string() != ReviewStatus.returned.value,
            )
        )
        .where(
            RecordVersion.entity == "inspection",
            RecordVersion.record_id == record.id,
            RecordVersion.at <= as_at,
        )
        .order_by(RecordVersion.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    submitted = sa.func.coalesce(record.first_submitted_at, record.submitted_at, record.received_at)
    from_columns = sa.and_(
        record.status == InspectionStatus.submitted,
        record.received_at <= as_at,
        submitted <= as_at,
        sa.or_(
            record.review_status != ReviewStatus.returned,
            sa.and_(record.reviewed_at.is_not(None), record.reviewed_at > as_at),
        ),
    )
    return sa.func.coalesce(latest, from_columns)


def settles(follow_up, as_at: datetime | None = None) -> sa.ColumnElement[bool]:
    """``follow_up`` (an alias of :class:`Inspection`) settles the order it names
    (``follow_up_of``): it is in force (submitted and not returned). With ``as_at``: it was in
    force then (:func:`in_force_as_at`), so that a report made again later still counts what
    its month ended with, whatever review the follow-up had since."""
    if as_at is None:
        return follow_up.in_force
    return in_force_as_at(follow_up, as_at)


def unsettled_order(as_at: datetime | None = None) -> sa.ColumnElement[bool]:
    """The :class:`Inspection` is a rectification order (责令整改) in force that no follow-up
    has settled: what ``GET /rectifications`` lists, what the record's ``follow_up.overdue``
    and the ``rectification_overdue`` check and the monthly report's overdue figures count
    once its deadline has passed.

    With ``as_at``: both as they stood then (:func:`in_force_as_at`): an order returned after
    ``as_at`` was still in force then, one first submitted after it was not yet, and a
    follow-up returned after it had settled the order by then."""
    follow_up = sa.orm.aliased(Inspection)
    settled = (
        sa.select(follow_up.id)
        .where(follow_up.follow_up_of == Inspection.id, settles(follow_up, as_at))
        .exists()
    )
    in_force = Inspection.in_force if as_at is None else in_force_as_at(Inspection, as_at)
    # The outcome first: the history is looked up for orders only.
    return sa.and_(Inspection.outcome == Outcome.rectification_ordered, in_force, ~settled)


def open_rectifications(
    query: sa.Select,
    *,
    squadron_id: int | None = None,
    target_id: uuid.UUID | None = None,
    overdue: bool | None = None,
    today: date | None = None,
) -> sa.Select:
    """Rectification orders (责令整改) not yet followed up (:func:`unsettled_order`), the
    oldest deadline first.

    An order counts once its inspection is submitted and not returned; it is settled by a
    follow-up inspection (``follow_up_of`` = the order) that is submitted and not returned.
    ``overdue``: only those whose deadline (a Shanghai date) is before ``today`` (or only the
    others, with ``False``).
    """
    if overdue is not None and today is None:
        raise ValueError("overdue needs today")
    query = query.where(unsettled_order())
    if squadron_id is not None:
        query = query.where(Inspection.squadron_id == squadron_id)
    if target_id is not None:
        query = query.where(Inspection.target_id == target_id)
    if overdue is True:
        query = query.where(Inspection.rectification_deadline < today)
    elif overdue is False:
        query = query.where(Inspection.rectification_deadline >= today)
    return query.order_by(Inspection.rectification_deadline, Inspection.id)


def follow_ups(inspections: list[Inspection], today: date) -> dict[uuid.UUID, dict]:
    """For each inspection that ordered rectification: ``{due, done_by, done_at, overdue}``,
    where ``done_by`` is the first follow-up that settled it (one query for a page), and
    ``overdue`` says the order is in force, unsettled and past its deadline (as
    :func:`unsettled_order` and ``today``: what ``GET /rectifications?overdue=true`` lists)."""
    ordered = [i for i in inspections if i.outcome is Outcome.rectification_ordered]
    if not ordered:
        return {}
    done: dict[uuid.UUID, tuple[uuid.UUID, datetime]] = {}
    rows = db.session.execute(
        sa.select(Inspection.follow_up_of, Inspection.id, Inspection.started_at)
        .where(Inspection.follow_up_of.in_([i.id for i in ordered]), settles(Inspection))
        .order_by(Inspection.started_at.desc(), Inspection.id.desc())
    )
    for followed, follow_up_id, started in rows:
        done[followed] = (follow_up_id, started)  # the earliest wins: rows come latest first
    result = {}
    for inspection in ordered:
        by = done.get(inspection.id)
        deadline = inspection.rectification_deadline
        result[inspection.id] = {
            "due": deadline,
            "done_by": by[0] if by else None,
            "done_at": by[1] if by else None,
            "overdue": (
                inspection.in_force and by is None and deadline is not None and deadline < today
            ),
        }
    return result
