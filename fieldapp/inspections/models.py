"""Inspections: what officers recorded at a target, and the leader's review of it."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.auth.models import User
from fieldapp.db import JSONAsWritten, Syncable, UTCDateTime, db, enum_column, new_uuid, utcnow
from fieldapp.targets.models import Target
from sync.models import RecordVersion


class Origin(enum.StrEnum):
    """Why the inspection happened."""

    scheduled = "scheduled"  # due by risk level
    random = "random"  # 双随机 draw
    complaint = "complaint"  # 12345 complaint
    patrol = "patrol"  # 巡查
    task = "task"  # dispatched by the leader


class Outcome(enum.StrEnum):
    compliant = "compliant"
    corrected_on_site = "corrected_on_site"  # 当场改正
    rectification_ordered = "rectification_ordered"  # 责令整改, with a deadline
    case_opened = "case_opened"  # 立案
    penalty_waived = "penalty_waived"  # 首违不罚 / 轻微不罚, with legal basis


class InspectionStatus(enum.StrEnum):
    """The officer's side: a draft is still being written; submitted goes to review."""

    draft = "draft"
    submitted = "submitted"


class ReviewStatus(enum.StrEnum):
    """The leader's side of a submitted inspection."""

    pending = "pending"
    approved = "approved"
    returned = "returned"


class InspectionState(enum.StrEnum):
    """Where an inspection stands in its life, from both sides (``status`` and ``review.status``).

    ==========  ============  ===============
    state       ``status``    ``review.status``
    ==========  ============  ===============
    draft       draft         pending
    pending     submitted     pending          (waiting for the leader: 待审核)
    approved    submitted     approved         (frozen: edits become amendments)
    returned    submitted     returned         (back with the officer, who edits and resubmits)
    ==========  ============  ===============
    """

    draft = "draft"
    pending = "pending"
    approved = "approved"
    returned = "returned"


class ReviewAction(enum.StrEnum):
    """What moves an inspection from one :class:`InspectionState` to another."""

    submit = "submit"  # an officer, from a device (also the resubmission of a returned one)
    approve = "approve"  # the squadron's leader (审核通过)
    return_ = "return"  # the squadron's leader, with a reason (退回)
    reopen = "reopen"  # an amendment to an approved record is accepted: back to review


#: The only moves there are: (state, action) -> new state. Anything else is refused.
TRANSITIONS: dict[tuple[InspectionState, ReviewAction], InspectionState] = {
    (InspectionState.draft, ReviewAction.submit): InspectionState.pending,
    (InspectionState.returned, ReviewAction.submit): InspectionState.pending,
    (InspectionState.pending, ReviewAction.approve): InspectionState.approved,
    (InspectionState.pending, ReviewAction.return_): InspectionState.returned,
    (InspectionState.approved, ReviewAction.reopen): InspectionState.pending,
}

#: Who may take each action (a permission of ``fieldapp.auth.policy``).
ACTION_PERMISSIONS: dict[ReviewAction, str] = {
    ReviewAction.submit: "inspection.edit",
    ReviewAction.approve: "inspection.review",
    ReviewAction.return_: "inspection.review",
    ReviewAction.reopen: "conflict.resolve",
}


class TransitionRefused(Exception):
    """The action is not allowed from the inspection's current state."""

    def __init__(self, state: InspectionState, action: ReviewAction):
        self.state, self.action = state, action
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s is state)
        super().__init__(
            f"cannot {action.value} an inspection that is {state.value}"
            + (f" (allowed: {', '.join(allowed)})" if allowed else " (nothing is allowed)")
        )


class CoordinateSystem(enum.StrEnum):
    wgs84 = "wgs84"
    gcj02 = "gcj02"  # Chinese map SDKs
    bd09 = "bd09"  # Baidu


inspection_officers = sa.Table(
    "inspection_officers",
    db.metadata,
    sa.Column(
        "inspection_id", sa.ForeignKey("inspections.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("user_id", sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False, default=0),
    #: The inspection's squadron (which never changes), so that an officer's inspections in
    #: other squadrons than their own come straight off the index below, however many they
    #: did in their own.
    sa.Column("squadron_id", sa.ForeignKey("squadrons.id"), nullable=False),
    sa.Index("ix_inspection_officers_user_squadron", "user_id", "squadron_id"),
)


def inspections_of(user_id, *, outside_squadron: int | None = None) -> sa.Select:
    """The ids of the inspections ``user_id`` took part in, as one of their officers; with
    ``outside_squadron``, only those of the other squadrons."""
    links = inspection_officers.c
    query = sa.select(links.inspection_id).where(links.user_id == user_id)
    if outside_squadron is not None:
        query = query.where(links.squadron_id != outside_squadron)
    return query


def ever_officers(inspection: Inspection) -> set[str]:
    """The ids (text) of everyone who was ever one of ``inspection``'s officers, or created it:
    its officers now, its creator, and the officers of every version in its history. An officer
    who dropped out of the list by an edit still took part (and may not review it)."""
    ids = set(inspection.officer_ids or ())
    if inspection.created_by_id is not None:
        ids.add(str(inspection.created_by_id))
    versions = db.session.scalars(
        sa.select(RecordVersion.data["officer_ids"]).where(
            RecordVersion.entity == "inspection", RecordVersion.record_id == inspection.id
        )
    )
    for officer_ids in versions:
        ids.update(str(officer_id) for officer_id in officer_ids or ())
    return ids


class Inspection(Syncable, db.Model):
    """An inspection record. Its JSON columns keep the text they were written as
    (:data:`~fieldapp.db.JSONAsWritten`): pull pages place that text into the page as it is,
    so it is as compact from PostgreSQL as from SQLite."""

    __tablename__ = "inspections"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    target_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("targets.id"))
    #: Copied from the target when received: the squadron that reviews it, even if the
    #: target later moves to another squadron.
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"))
    checklist_id: Mapped[int] = mapped_column(sa.ForeignKey("checklists.id"))
    checklist_version: Mapped[int]
    origin: Mapped[Origin] = mapped_column(enum_column(Origin))
    task_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tasks.id"))
    draw_id: Mapped[uuid.UUID | None]
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Location, stored as WGS-84; what the device sent is kept beside it.
    lon: Mapped[float]
    lat: Mapped[float]
    accuracy_m: Mapped[float | None]
    location_crs: Mapped[CoordinateSystem] = mapped_column(
        enum_column(CoordinateSystem), default=CoordinateSystem.wgs84
    )
    location_original: Mapped[dict | None] = mapped_column(JSONAsWritten)
    #: item code -> {"result": "pass"|"fail"|"na", "note": str, "photo_ids": [uuid, ...]}
    answers: Mapped[dict] = mapped_column(JSONAsWritten, default=dict)
    findings: Mapped[str] = mapped_column(sa.Text, default="")
    outcome: Mapped[Outcome | None] = mapped_column(enum_column(Outcome))
    rectification_deadline: Mapped[date | None]
    legal_basis: Mapped[str | None] = mapped_column(sa.String(300))
    follow_up_of: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("inspections.id"))
    photo_ids: Mapped[list[str]] = mapped_column(JSONAsWritten, default=list)
    status: Mapped[InspectionStatus] = mapped_column(
        enum_column(InspectionStatus), default=InspectionStatus.draft
    )
    review_status: Mapped[ReviewStatus] = mapped_column(
        enum_column(ReviewStatus), default=ReviewStatus.pending
    )
    review_comment: Mapped[str | None] = mapped_column(sa.Text)
    reviewed_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    score: Mapped[int | None]
    flags: Mapped[list[str]] = mapped_column(JSONAsWritten, default=list)
    #: Field (and ``answers.<code>``) -> clock of the write that set its current value.
    field_clocks: Mapped[dict] = mapped_column(
        JSONAsWritten, default=dict, server_default=sa.text("'{}'")
    )
    #: Field (and ``answers.<code>``) -> the version an edit last wrote it at (none: the
    #: create's). Merging asks it what was written after a device's base.
    field_versions: Mapped[dict] = mapped_column(
        JSONAsWritten, default=dict, server_default=sa.text("'{}'")
    )
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The latest submission (a returned inspection is submitted again): the review queue
    #: waits from it.
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The first submission: whether the officer submitted late is judged from it, not from a
    #: resubmission after the leader returned the record (the leader's time is not theirs).
    first_submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    #: The officers' ids (text) in order, the first one leads: the list as devices read it,
    #: served without a query per inspection. The links in ``inspection_officers`` are the same
    #: officers as rows, for scope and reports; ``sync.entities.write_officers`` writes both.
    officer_ids: Mapped[list[str]] = mapped_column(
        JSONAsWritten, default=list, server_default=sa.text("'[]'")
    )

    target: Mapped[Target] = relationship()
    #: Read-only: written as link rows with the list above, never through the relationship.
    officers: Mapped[list[User]] = relationship(
        secondary=inspection_officers, order_by=inspection_officers.c.position, viewonly=True
    )

    __table_args__ = (
        sa.Index("ix_inspections_target_started", "target_id", "started_at"),
        sa.Index("ix_inspections_squadron_seq", "squadron_id", "change_seq"),
        sa.Index("ix_inspections_squadron_review", "squadron_id", "review_status", "started_at"),
        sa.Index("ix_inspections_squadron_started", "squadron_id", "started_at"),
        sa.Index("ix_inspections_follow_up_of", "follow_up_of"),
        sa.Index(
            "ix_inspections_squadron_rectification",
            "squadron_id",
            "outcome",
            "rectification_deadline",
        ),
        # An order in force has its deadline; a draft is still being written, and the officer
        # may pick the outcome before the deadline (submitting asks for it: API.md).
        sa.CheckConstraint(
            "outcome <> 'rectification_ordered' OR rectification_deadline IS NOT NULL"
            " OR status = 'draft'",
            name="rectification_has_deadline",
        ),
    )

    @hybrid_property
    def in_force(self) -> bool:
        """Submitted and not returned by the leader: a rectification order that counts, or a
        follow-up (复查) that settles one (docs/review.md). A draft is still being written and
        a returned record is back with the officer: neither orders nor settles anything until
        it is (re)submitted. In a query, ``Inspection.in_force`` (or an alias's)."""
        return (
            self.status is InspectionStatus.submitted
            and self.review_status is not ReviewStatus.returned
        )

    @in_force.inplace.expression
    @classmethod
    def _in_force_expression(cls) -> sa.ColumnElement[bool]:
        return sa.and_(
            cls.status == InspectionStatus.submitted,
            cls.review_status != ReviewStatus.returned,
        )

    @hybrid_property
    def counted_at(self) -> datetime:
        """When the inspection counts as made: its start, or when the server received it if
        that was earlier. A device whose clock runs a few minutes ahead sends a start in the
        server's future; counted from its start, a shop inspected and submitted would stay due
        (and its approval out of the score) until its clock caught up, and a draw made
        meanwhile would not know its last inspectors. Risk, the schedule and the draws all
        read it here. In a query, ``Inspection.counted_at`` (portable SQL: a CASE, compared
        on both databases as they compare the columns themselves)."""
        if self.received_at is None:  # not flushed yet: received now, after it started
            return self.started_at
        return min(self.started_at, self.received_at)

    @counted_at.inplace.expression
    @classmethod
    def _counted_at_expression(cls) -> sa.ColumnElement[datetime]:
        return sa.case(
            (cls.started_at <= cls.received_at, cls.started_at),
            else_=cls.received_at,
        )

    @property
    def state(self) -> InspectionState:
        """The inspection's :class:`InspectionState`, from ``status`` and ``review_status``."""
        if self.status is InspectionStatus.draft:
            return InspectionState.draft
        return InspectionState(self.review_status.value)

    def can(self, action: ReviewAction) -> bool:
        """Whether ``action`` is allowed from the current state (who may take it is the
        policy's business: :data:`ACTION_PERMISSIONS`)."""
        return (self.state, action) in TRANSITIONS

    def transition(
        self,
        action: ReviewAction,
        *,
        by: uuid.UUID | None,
        at: datetime,
        comment: str | None = None,
    ) -> InspectionState:
        """Take ``action`` (the one place where states change); :class:`TransitionRefused` if
        the current state does not allow it. Returns the new state."""
        target = TRANSITIONS.get((self.state, action))
        if target is None:
            raise TransitionRefused(self.state, action)
        if target is InspectionState.pending:
            # Submitted, resubmitted or reopened: waiting for a (new) review.
            if action is ReviewAction.submit:
                self.submitted_at = at
                if self.first_submitted_at is None:
                    self.first_submitted_at = at
            self.status = InspectionStatus.submitted
            self.review_status = ReviewStatus.pending
            self.review_comment = None
            self.reviewed_by_id = None
            self.reviewed_at = None
        else:
            self.review_status = ReviewStatus(target.value)
            self.review_comment = comment
            self.reviewed_by_id = by
            self.reviewed_at = at
        return target


class Case(db.Model):
    """立案: an enforcement case opened by an inspection's finding."""

    __tablename__ = "cases"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    number: Mapped[str] = mapped_column(sa.String(60), unique=True)  # 案号
    target_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("targets.id"), index=True)
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"), index=True)
    #: One case per inspection at most (approving again after an amendment opens no second one).
    inspection_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("inspections.id"), unique=True
    )
    item_code: Mapped[str | None] = mapped_column(sa.String(16))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fine_yuan: Mapped[int | None]
    summary: Mapped[str] = mapped_column(sa.String(500), default="")
