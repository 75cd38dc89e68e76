"""12345 complaints: received by the squadron, checked by its officers, decided by its leader.

A decision (substantiated or not) re-assesses the target's risk in the same transaction: a
substantiated complaint adds points and holds a downgrade back from the day it is found true
(``closed_at``), whenever the hotline received it (see ``docs/risk.md``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.complaints.models import Complaint
from fieldapp.db import change_counter, db
from fieldapp.errors import validation_error
from fieldapp.inspections.models import Inspection
from fieldapp.org.models import Squadron
from fieldapp.risk import operations as risk
from fieldapp.targets.models import Target
from sync.sequence import hold
from sync.versions import move_to_squadron


def receive_complaint(
    actor: Actor,
    *,
    squadron: Squadron,
    target: Target | None,
    category: str,
    text: str,
    received_at: datetime,
    source: str = "12345",
    reference: str | None = None,
    readable: sa.ColumnElement[bool] | None = None,
) -> Complaint:
    """Record a complaint for ``squadron`` (the target's, when there is a target).

    The same hotline ticket (``source`` and ``reference``) recorded twice is refused, so a
    ticket forwarded again is not counted twice against the target. The refusal names the
    first complaint's id when the caller may read it (``readable``: the caller's read rule for
    complaints; None: any); a ticket another squadron recorded is refused without its id.
    """
    if target is not None and target.squadron_id != squadron.id:
        raise validation_error(
            {"squadron_id": [f"the target belongs to squadron {target.squadron_id}"]}
        )
    if reference is not None:
        same_ticket = (Complaint.source == source, Complaint.reference == reference)
        earlier = db.session.scalar(sa.select(Complaint.id).where(*same_ticket))
        if earlier is not None:
            shown = readable is None or db.session.scalar(
                sa.select(Complaint.id).where(*same_ticket, readable)
            )
            raise validation_error(
                {
                    "reference": [
                        f"ticket {source} {reference} is already complaint {earlier}"
                        if shown
                        else f"ticket {source} {reference} is already recorded"
                    ]
                }
            )
    complaint = Complaint(
        squadron_id=squadron.id,
        target_id=None if target is None else target.id,
        source=source,
        reference=reference,
        category=category,
        text=text,
        received_at=received_at,
        created_by_id=actor.user_id,
    )
    db.session.add(complaint)
    db.session.flush()
    audit.record(
        actor, "complaint.receive", "complaint", complaint.id, after=audit.snapshot(complaint)
    )
    return complaint


@dataclass
class Decision:
    substantiated: bool
    note: str
    inspection: Inspection | None = None


def decide_complaint(
    actor: Actor,
    complaint: Complaint,
    decision: Decision,
    now: datetime,
    *,
    reassess: bool = True,
) -> Complaint:
    """Close the complaint as substantiated or not, after it was checked.

    A decision may be corrected later (audited like the first; a correction that names no
    inspection keeps the one that checked the complaint); each one re-assesses the
    target's risk in this transaction, so the score never counts a complaint it should not.
    ``reassess=False`` is for a caller that re-assesses the target itself afterwards (an
    approval, once, after everything it sets off), so the level history records one change.
    """
    # The change counter first, as every writer (an approval settling this complaint holds it
    # when it locks the complaint), and the complaint read again under its lock.
    hold(db.session, change_counter)
    db.session.refresh(complaint, with_for_update=True)
    inspection = decision.inspection
    before = audit.snapshot(complaint)
    if inspection is not None and complaint.target_id is None:
        # A complaint about a place with no registered target, checked by the squadron: the
        # check says where it was, so the complaint takes that target and counts in its risk
        # like any other. The squadron's own inspection counts although its target has moved
        # to another squadron since (inspections never move): the check was the squadron's.
        target = db.session.get(Target, inspection.target_id)
        if target is None or complaint.squadron_id not in (
            inspection.squadron_id,
            target.squadron_id,
        ):
            raise validation_error(
                {"inspection_id": ["the inspection is not of a target of the complaint's squadron"]}
            )
        complaint.target_id = target.id
    if inspection is not None and inspection.target_id != complaint.target_id:
        raise validation_error(
            {"inspection_id": ["the inspection is not of the complaint's target"]}
        )
    taken_back = complaint.substantiated is True and not decision.substantiated
    # A complaint counts in risk from the decision that found it true (``closed_at``): a
    # correction that leaves it true (a better note, another inspection) keeps that day,
    # rather than counting the complaint afresh for another 90 days.
    still_true = complaint.substantiated is True and decision.substantiated
    complaint.substantiated = decision.substantiated
    complaint.decision_note = decision.note
    if inspection is not None:
        # A correction that names no inspection keeps the one that checked the complaint.
        complaint.inspection_id = inspection.id
    complaint.decided_by_id = actor.user_id
    if not still_true:
        complaint.closed_at = now
    audit.record_update(actor, "complaint.decide", "complaint", complaint, before)
    if reassess and complaint.target_id is not None:
        # A decision corrected to untrue takes its points back, and a rise of level they
        # caused with them, rather than leaving it held by the downgrade rules.
        corrected = [("complaint", complaint.id)] if taken_back else []
        risk.refresh_targets(actor, [complaint.target_id], now, corrected=corrected)
    return complaint


def lock_complaint(complaint_id: uuid.UUID) -> Complaint | None:
    """The complaint, locked for a decision: a move of its target waits for the decision (and
    leaves the decided complaint where it is), or the decision waits for the move and is asked
    of the squadron the complaint is in now.

    The change counter is taken first, as every writer takes it (docs/sync.md, "One lock
    order"): a move, or an approval settling the complaint, holds the counter when it locks
    the complaint, and a decision that locked the complaint before asking for the counter
    deadlocked with it."""
    hold(db.session, change_counter)
    return db.session.scalar(
        sa.select(Complaint).where(Complaint.id == complaint_id).with_for_update()
    )


def open_complaints_follow(actor: Actor, target: Target, squadron_id: int) -> int:
    """The target moved to ``squadron_id``: its open complaints go with it. The squadron that
    now answers for the target checks and decides them (left behind, nobody could: the old
    leader may no longer dispatch to the target, the new one would not see the ticket).
    Decided complaints stay where they were decided, as that squadron's history. Each move is
    audited (``complaint.move``); returns how many complaints moved.

    The complaints are locked as they are read, so a decision that got there first is waited
    for (and its complaint, closed then, stays).
    """
    moving = db.session.scalars(
        sa.select(Complaint)
        .where(
            Complaint.target_id == target.id,
            Complaint.substantiated.is_(None),
            Complaint.squadron_id != squadron_id,
        )
        .with_for_update()
    ).all()
    return move_to_squadron(actor, moving, "complaint.move", "complaint", squadron_id)


def complaints_query(readable, filters: dict) -> sa.Select:
    """The complaints a leader works through: open ones oldest first (the longest waiting on
    top), otherwise newest first."""
    query = sa.select(Complaint).where(readable)
    for name in ("squadron_id", "target_id", "source", "reference"):
        if name in filters:
            query = query.where(getattr(Complaint, name) == filters[name])
    status = filters.get("status")
    if status == "open":
        query = query.where(Complaint.substantiated.is_(None))
    elif status == "closed":
        query = query.where(Complaint.substantiated.is_not(None))
    if "substantiated" in filters:
        query = query.where(Complaint.substantiated.is_(filters["substantiated"]))
    if "from_" in filters:
        query = query.where(Complaint.received_at >= filters["from_"])
    if "to" in filters:
        query = query.where(Complaint.received_at < filters["to"])
    if status == "open":
        return query.order_by(Complaint.received_at, Complaint.id)
    return query.order_by(Complaint.received_at.desc(), Complaint.id)
