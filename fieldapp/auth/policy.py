"""Who may see and change what: the one place where roles and squadrons scope access.

Views never filter by squadron themselves. They ask the policy for a record to read (``load``:
404 when it is out of the caller's reading scope, so existence is not revealed), for a scoped
query (``scoped``), for a record to write (``load_to_write``: 404 only when there is none) and
for permission to write (``require``: 403). API.md: "Out-of-scope reads → 404 (do not reveal
existence); out-of-scope writes → 403."

Reading scope:
- officers and leaders: their squadron, plus the inspections they co-signed elsewhere (with
  their photos) and the targets of open tasks assigned to them (with their risk records);
- supervisors: their whole district;
- admins: everything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from fieldapp.actor import Actor
from fieldapp.audit.models import AuditEntry
from fieldapp.auth.models import LOGIN_FAILED, SQUADRON_ROLES, Device, Role, User
from fieldapp.checklists.models import Checklist
from fieldapp.complaints.models import Complaint
from fieldapp.db import db
from fieldapp.draws.models import Draw, drew_from
from fieldapp.errors import APIError, not_found
from fieldapp.inspections.models import Case, Inspection, ever_officers, inspections_of
from fieldapp.org.models import District, Squadron
from fieldapp.photos.models import Photo
from fieldapp.risk.models import TargetRisk
from fieldapp.supervision.models import CaseReview, SupervisionOrder
from fieldapp.targets.models import Target
from fieldapp.tasks.models import Task, TaskStatus, task_assignees
from sync.models import Conflict, ScopeExit, Tombstone, UserExit


class Policy:
    """The access rules for one actor."""

    def __init__(self, actor: Actor):
        if actor.user is None:
            raise ValueError("a policy needs a signed-in user")
        self.actor = actor
        self.user: User = actor.user
        self.role = self.user.role

    # -- reading -----------------------------------------------------------------------------

    def _district_squadrons(self):
        return sa.select(Squadron.id).where(Squadron.district_id == self.user.district_id)

    def _assigned_targets(self):
        return (
            sa.select(Task.target_id)
            .join(task_assignees, task_assignees.c.task_id == Task.id)
            .where(task_assignees.c.user_id == self.user.id, Task.status == TaskStatus.open)
        )

    def _squadron_clause(self, column) -> sa.ColumnElement[bool]:
        if self.role is Role.admin:
            return sa.true()
        if self.role is Role.supervisor:
            return column.in_(self._district_squadrons())
        return column == self.user.squadron_id

    def readable(self, model: type) -> sa.ColumnElement[bool]:
        """A WHERE clause selecting the rows of ``model`` this actor may read."""
        rule = _READ_RULES.get(model)
        if rule is None:
            raise LookupError(f"no read rule for {model.__name__}")
        return rule(self)

    def read_parts(self, model: type) -> list[sa.ColumnElement[bool]]:
        """:meth:`readable` as disjoint clauses, each answered by an index of its own: the
        squadron's rows, and a member's own rows beyond it. Pull reads them part by part
        (``sync.pull.page_queries``): given the OR, a database gathers every row in scope after
        the cursor before it sorts."""
        parts = _READ_PARTS.get(model)
        return parts(self) if parts is not None else [self.readable(model)]

    def squadron_rows(self, model: type) -> sa.ColumnElement[bool]:
        """:meth:`readable` without a member's own rows beyond their squadron (the target of
        a task elsewhere): the rows of the caller's squadron, district or all. Figures about
        squadrons count a squadron whole or not at all; a member's one task in another squadron
        would show that squadron as one target."""
        # _squadron_and_beyond puts the squadron's part first.
        return self.read_parts(model)[0]

    def scoped(self, model: type) -> sa.Select:
        """``SELECT model`` restricted to what this actor may read."""
        return sa.select(model).where(self.readable(model))

    def load(self, model: type, ident: Any, what: str | None = None):
        """The record with primary key ``ident``, or 404 if missing or out of scope."""
        what = what or model.__name__.lower()
        if ident is None:
            raise not_found(what)
        pk = sa.inspect(model).primary_key[0]
        obj = db.session.scalar(sa.select(model).where(pk == ident, self.readable(model)))
        if obj is None:
            raise not_found(what)
        return obj

    def load_to_write(self, model: type, ident: Any, what: str | None = None):
        """The record a write is about, or 404 if there is none. It is returned out of the
        caller's scope too: the write's :meth:`require`, which must follow at once, answers
        403 there (API.md: out-of-scope writes → 403)."""
        obj = None if ident is None else db.session.get(model, ident)
        if obj is None:
            raise not_found(what or model.__name__.lower())
        return obj

    def require_to_read(self, permission: str, squadron_id: int | None, what: str) -> None:
        """Permission to read a squadron's figures: 404 when the squadron is not the caller's
        (out of scope: not revealed), 403 when only the caller's role falls short."""
        if self.allows(permission, squadron_id):
            return
        if self.role in SQUADRON_ROLES and squadron_id not in (None, self.user.squadron_id):
            raise not_found(what)
        self.require(permission, squadron_id)

    def load_or_none(self, model: type, ident: Any):
        """The record if it exists and is in reading scope, else None (for sync, which answers
        per change instead of raising)."""
        pk = sa.inspect(model).primary_key[0]
        return db.session.scalar(sa.select(model).where(pk == ident, self.readable(model)))

    def load_by(self, model: type, what: str, **criteria):
        """Like :meth:`load`, by other unique columns (e.g. a target's ``code``)."""
        obj = db.session.scalar(sa.select(model).filter_by(**criteria).where(self.readable(model)))
        if obj is None:
            raise not_found(what)
        return obj

    def own_part_of_district_records(self) -> int | None:
        """The squadron whose part of a record spanning the district (a district draw's roster
        and drawn targets) this actor sees: their own, for officers and leaders, who read
        nothing else of the other squadrons'; None, the whole record, for supervisors and
        admins."""
        return self.user.squadron_id if self.role in SQUADRON_ROLES else None

    # -- writing -----------------------------------------------------------------------------

    def allows(self, permission: str, obj: Any = None) -> bool:
        rule = _WRITE_RULES.get(permission)
        if rule is None:
            raise LookupError(f"unknown permission {permission!r}")
        return rule(self, obj)

    def require(self, permission: str, obj: Any = None) -> None:
        """403 unless the actor holds ``permission`` (on ``obj`` where it matters)."""
        if not self.allows(permission, obj):
            raise APIError(403, "forbidden", refusal(permission))


def _squadron_and_beyond(p: Policy, squadron_column, beyond) -> list[sa.ColumnElement[bool]]:
    """The caller's squadron, and for squadron members the rows ``beyond`` it that are theirs
    (``beyond``: a clause such as "among my own inspections"), as two disjoint parts."""
    parts = [p._squadron_clause(squadron_column)]
    if p.role in SQUADRON_ROLES:
        parts.append(sa.and_(squadron_column.is_distinct_from(p.user.squadron_id), beyond(p)))
    return parts


def _target_parts(p: Policy) -> list[sa.ColumnElement[bool]]:
    return _squadron_and_beyond(
        p, Target.squadron_id, lambda p: Target.id.in_(p._assigned_targets())
    )


def _inspection_parts(p: Policy) -> list[sa.ColumnElement[bool]]:
    return _squadron_and_beyond(
        p, Inspection.squadron_id, lambda p: Inspection.id.in_(_own_inspections_elsewhere(p))
    )


def _own_inspections_elsewhere(p: Policy):
    """The member's inspections in other squadrons than theirs (where they worked before a
    move, or helped out): the rest are in their squadron's part anyway."""
    return inspections_of(p.user.id, outside_squadron=p.user.squadron_id)


def _photo_parts(p: Policy) -> list[sa.ColumnElement[bool]]:
    return _squadron_and_beyond(
        p, Photo.squadron_id, lambda p: Photo.inspection_id.in_(_own_inspections_elsewhere(p))
    )


def _conflict_parts(p: Policy) -> list[sa.ColumnElement[bool]]:
    # An inspection's conflicts are logged under its squadron, so "elsewhere" matches them too.
    return _squadron_and_beyond(
        p, Conflict.squadron_id, lambda p: Conflict.record_id.in_(_own_inspections_elsewhere(p))
    )


def _case_parts(p: Policy) -> list[sa.ColumnElement[bool]]:
    # A case is read with the inspection that opened it (GET /inspections/<id> shows it).
    return _squadron_and_beyond(
        p, Case.squadron_id, lambda p: Case.inspection_id.in_(_own_inspections_elsewhere(p))
    )


def _risk_parts(p: Policy) -> list[sa.ColumnElement[bool]]:
    # A target's risk record is read where the target is: the squadron's, and those of the
    # targets of a member's open tasks elsewhere (as GET /targets/<id>/risk reads it).
    return _squadron_and_beyond(
        p, TargetRisk.squadron_id, lambda p: TargetRisk.target_id.in_(p._assigned_targets())
    )


def _task_parts(p: Policy) -> list[sa.ColumnElement[bool]]:
    def mine(p: Policy):
        return Task.id.in_(
            sa.select(task_assignees.c.task_id).where(task_assignees.c.user_id == p.user.id)
        )

    return _squadron_and_beyond(p, Task.squadron_id, mine)


#: Reading scopes made of disjoint parts (see :meth:`Policy.read_parts`).
_READ_PARTS: dict[type, Callable[[Policy], list[sa.ColumnElement[bool]]]] = {
    Target: _target_parts,
    Inspection: _inspection_parts,
    Photo: _photo_parts,
    Task: _task_parts,
    Conflict: _conflict_parts,
    TargetRisk: _risk_parts,
    Case: _case_parts,
}


def _any_part(model: type) -> Callable[[Policy], sa.ColumnElement[bool]]:
    def rule(p: Policy) -> sa.ColumnElement[bool]:
        parts = _READ_PARTS[model](p)
        return parts[0] if len(parts) == 1 else sa.or_(*parts)

    return rule


def _user_read(p: Policy) -> sa.ColumnElement[bool]:
    if p.role is Role.admin:
        return sa.true()
    if p.role is Role.supervisor:
        return User.district_id == p.user.district_id
    return sa.or_(User.squadron_id == p.user.squadron_id, User.id == p.user.id)


_READ_RULES: dict[type, Callable[[Policy], sa.ColumnElement[bool]]] = {
    Target: _any_part(Target),
    Inspection: _any_part(Inspection),
    Task: _any_part(Task),
    Complaint: lambda p: p._squadron_clause(Complaint.squadron_id),
    Case: _any_part(Case),
    Photo: _any_part(Photo),
    Conflict: _any_part(Conflict),
    Tombstone: lambda p: p._squadron_clause(Tombstone.squadron_id),
    ScopeExit: lambda p: p._squadron_clause(ScopeExit.squadron_id),
    # What left the caller's own scope beyond their squadron (see members_elsewhere).
    UserExit: lambda p: UserExit.user_id == p.user.id,
    TargetRisk: _any_part(TargetRisk),
    Draw: lambda p: _draw_read(p),
    User: _user_read,
    District: lambda p: sa.true() if p.role is Role.admin else District.id == p.user.district_id,
    # Squadron names and boundaries are district knowledge every member may see on a map.
    Squadron: lambda p: (
        sa.true() if p.role is Role.admin else Squadron.district_id == p.user.district_id
    ),
    Checklist: lambda p: sa.true(),
    Device: lambda p: sa.true() if p.role is Role.admin else Device.last_user_id == p.user.id,
    # Supervision records: the district's supervisors, the squadron's leader, admins.
    CaseReview: lambda p: _supervision_read(p, CaseReview.squadron_id),
    SupervisionOrder: lambda p: _supervision_read(p, SupervisionOrder.squadron_id),
    # The audit log: admins all of it; a supervisor the entries of their district (each entry
    # names the district of its record, else of its actor, as they were when it was written:
    # docs/audit.md), and those of no district (operator commands about no district's record).
    AuditEntry: lambda p: (
        sa.true()
        if p.role is Role.admin
        else (
            sa.or_(
                AuditEntry.district_id == p.user.district_id,
                # Failed sign-ins to no account are not theirs (the username typed may be
                # someone's password): admins only.
                sa.and_(AuditEntry.district_id.is_(None), AuditEntry.action != LOGIN_FAILED),
            )
            if p.role is Role.supervisor
            else sa.false()
        )
    ),
}


def members_elsewhere(user_ids, squadron_id: int) -> list[uuid.UUID]:
    """Of ``user_ids``, the squadron members (officers, leaders) of other squadrons than
    ``squadron_id``. They read a record of ``squadron_id`` only as their own (the second part
    of :meth:`Policy.read_parts`: an inspection they co-signed and its photos, the target of a
    task of theirs and its risk), so no removal written for the squadron reaches them: when the
    record stops being theirs, they need one of their own (``sync.versions.record_left_users``).
    """
    ids = sorted({uuid.UUID(str(user_id)) for user_id in user_ids})
    if not ids:
        return []
    return list(
        db.session.scalars(
            sa.select(User.id)
            .where(
                User.id.in_(ids),
                User.role.in_(SQUADRON_ROLES),
                User.squadron_id != squadron_id,
            )
            .order_by(User.id)
        )
    )


def _draw_read(p: Policy) -> sa.ColumnElement[bool]:
    """Admins: every draw; supervisors: their district's. Squadron members: their squadron's
    draws, and the draws that gave their squadron a task (a district draw that drew from it,
    another squadron's draw whose target moved to it with the task): the draw_id their tasks
    carry opens (:func:`~fieldapp.draws.models.drew_from`)."""
    if p.role is Role.admin:
        return sa.true()
    if p.role is Role.supervisor:
        return Draw.district_id == p.user.district_id
    return drew_from(p.user.squadron_id)


def _supervision_read(p: Policy, column) -> sa.ColumnElement[bool]:
    if p.role is Role.officer:
        return sa.false()
    return p._squadron_clause(column)


def _supervises_squadron(p: Policy, squadron_id: int | None) -> bool:
    """A supervisor of the squadron's district (supervisors write only audit objects)."""
    if p.role is not Role.supervisor or squadron_id is None:
        return False
    return squadron_id in db.session.scalars(p._district_squadrons()).all()


#: The records a conflict log entry can be about, by its ``entity``.
_CONFLICT_RECORDS: dict[str, type] = {"target": Target, "inspection": Inspection, "photo": Photo}


def _conflict_squadron(conflict: Conflict) -> int | None:
    """The squadron whose leader settles ``conflict``: the one its record is in now.

    Resolving writes the record, so it is that record's squadron that decides (a target may have
    moved since the entry was logged, as an entry logged before moves carried their entries
    along may still say). Read from the database, not from an object the session may hold from
    before a move committed. A record deleted since, or a photo not created yet, has only the
    entry's own squadron.
    """
    model = _CONFLICT_RECORDS.get(conflict.entity)
    if model is not None:
        squadron_id = db.session.scalar(
            sa.select(model.squadron_id).where(model.id == conflict.record_id)
        )
        if squadron_id is not None:
            return squadron_id
    return conflict.squadron_id


def _manages_squadron(p: Policy, squadron_id: int | None) -> bool:
    if p.role is Role.admin:
        return True
    return p.role is Role.leader and squadron_id is not None and squadron_id == p.user.squadron_id


_WRITE_RULES: dict[str, Callable[[Policy, Any], bool]] = {
    # obj: the squadron id the target is created in / moved to, or the target being edited
    "target.create": lambda p, squadron_id: _manages_squadron(p, squadron_id),
    "target.update": lambda p, target: _manages_squadron(p, target.squadron_id),
    "squadron.manage": lambda p, _: p.role is Role.admin,
    "district.manage": lambda p, _: p.role is Role.admin,
    "risk.settings": lambda p, _: p.role is Role.admin,
    # obj: the squadron id drawn from (None: a whole district, admins only)
    "draw.create": lambda p, squadron_id: _manages_squadron(p, squadron_id),
    "task.dispatch": lambda p, squadron_id: _manages_squadron(p, squadron_id),
    # obj: the squadron id the complaint belongs to
    "complaint.manage": lambda p, squadron_id: _manages_squadron(p, squadron_id),
    "user.manage": lambda p, _: p.role is Role.admin,
    "device.manage": lambda p, _: p.role is Role.admin,
    "checklist.manage": lambda p, _: p.role is Role.admin,
    # obj: the inspection; its officers write its content, from their devices
    "inspection.edit": lambda p, inspection: str(p.user.id) in inspection.officer_ids,
    # obj: the squadron id of a target a device reports or corrects
    "target.report": lambda p, squadron_id: (
        p.role in SQUADRON_ROLES and squadron_id == p.user.squadron_id
    ),
    # obj: the conflict; leaders settle the conflicts of their squadron's records, admins any
    "conflict.resolve": lambda p, conflict: _manages_squadron(p, _conflict_squadron(conflict)),
    # obj: the inspection; its squadron's leader (or an admin) reviews it, never anyone who
    # was ever one of its officers or created it (dropping oneself from the list changes nothing)
    "inspection.review": lambda p, inspection: (
        _manages_squadron(p, inspection.squadron_id)
        and str(p.user.id) not in ever_officers(inspection)
    ),
    # Supervision (督察). obj: none / the squadron id / the order
    "audit.read": lambda p, _: p.role in (Role.supervisor, Role.admin),
    "case_review.record": lambda p, squadron_id: _supervises_squadron(p, squadron_id),
    "supervision.issue": lambda p, squadron_id: _supervises_squadron(p, squadron_id),
    "supervision.decide": lambda p, order: _supervises_squadron(p, order.squadron_id),
    "supervision.answer": lambda p, order: (
        p.role is Role.leader and order.squadron_id == p.user.squadron_id
    ),
    # obj: the squadron id reported on (None: the whole district)
    "report.read": lambda p, squadron_id: (
        p.role in (Role.supervisor, Role.admin)
        or (p.role is Role.leader and squadron_id == p.user.squadron_id)
    ),
    # Officers and leaders record their own GPS tracks on patrol; supervisors and admins do not.
    "track.record": lambda p, _: p.role in SQUADRON_ROLES,
    # obj: the officer whose GPS track is read (a read: views answer 404, not 403)
    "track.view": lambda p, officer: _may_view_track(p, officer),
}


def _may_view_track(p: Policy, officer: User) -> bool:
    if p.role is Role.admin or officer.id == p.user.id:
        return True
    if p.role is Role.supervisor:
        return officer.district_id == p.user.district_id
    return p.role is Role.leader and officer.squadron_id == p.user.squadron_id


_WRITE_MESSAGES = {
    "target.create": "only the squadron's leader or an admin may add targets to this squadron",
    "target.update": "only the squadron's leader or an admin may edit this target",
    "squadron.manage": "only admins manage squadrons",
    "district.manage": "only admins add districts",
    "risk.settings": "only admins change the risk model's settings",
    "draw.create": "only the squadron's leader (or an admin, also for a district) may draw",
    "task.dispatch": "only the squadron's leader or an admin dispatches its tasks",
    "complaint.manage": "only the squadron's leader or an admin records and decides complaints",
    "user.manage": "only admins manage users",
    "device.manage": "only admins manage devices",
    "checklist.manage": "only admins publish checklists",
    "inspection.edit": "only the inspection's officers edit it",
    "target.report": "officers and leaders report and correct targets of their own squadron",
    "conflict.resolve": "only the squadron's leader or an admin resolves its conflicts",
    "inspection.review": (
        "only the squadron's leader or an admin reviews its inspections, and never one of the"
        " inspection's own officers"
    ),
    "audit.read": "only supervisors and admins read the audit log",
    "case_review.record": "only a supervisor of the inspection's district reviews its case file",
    "supervision.issue": "only a supervisor of the squadron's district issues supervision orders",
    "supervision.decide": "only a supervisor of the order's district closes or reopens it",
    "supervision.answer": "only the leader of the order's squadron answers it",
    "report.read": "leaders read their squadron's report; supervisors and admins the district's",
}


def refusal(permission: str) -> str:
    """Who holds ``permission``: the message of its 403 (and of its line in the API document)."""
    if permission not in _WRITE_RULES:
        raise LookupError(f"unknown permission {permission!r}")
    return _WRITE_MESSAGES.get(permission, "not allowed")
