"""What is due (the level's minimum frequency, from each target's assessment) and dispatching
it as tasks: the leader's weekly plan, pulled by the officers' devices."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.auth.models import Role, User
from fieldapp.db import change_counter, db
from fieldapp.errors import validation_error
from fieldapp.localtime import SHANGHAI
from fieldapp.org.models import Squadron
from fieldapp.risk.models import TargetRisk
from fieldapp.risk.scoring import RiskLevel
from fieldapp.targets.models import Target, TargetKind
from fieldapp.tasks.models import Task, TaskOrigin, TaskStatus
from fieldapp.tasks.operations import MAX_DUE_AHEAD, build_task, creation_entry, latest_due
from sync.sequence import hold


def due_query(readable, on: date, squadron_id: int | None = None, kind: TargetKind | None = None):
    """Active targets due on or before ``on``: never inspected first, then most overdue, then
    highest level."""
    query = (
        sa.select(
            Target.id.label("target_id"),
            Target.code,
            Target.name,
            TargetRisk.kind,
            Target.squadron_id,
            TargetRisk.level,
            TargetRisk.next_due,
        )
        .join(TargetRisk, TargetRisk.target_id == Target.id)
        .where(
            readable,
            Target.active.is_(True),
            sa.or_(TargetRisk.next_due.is_(None), TargetRisk.next_due <= on),
        )
        .order_by(
            TargetRisk.next_due.is_not(None),
            TargetRisk.next_due,
            sa.case(*((TargetRisk.level == level, -level.rank) for level in RiskLevel), else_=0),
            Target.id,
        )
    )
    if squadron_id is not None:
        query = query.where(TargetRisk.squadron_id == squadron_id)
    if kind is not None:
        query = query.where(TargetRisk.kind == kind.value)
    return query


def due_item(row, on: date) -> dict:
    return {
        **row._asdict(),
        "level": row.level.value,
        "days_overdue": (on - row.next_due).days if row.next_due else None,
    }


def dispatch_due(
    actor: Actor,
    squadron: Squadron,
    on: date,
    kind: TargetKind | None,
    limit: int,
    now: datetime,
) -> list[Task]:
    """A task for each due target that has no open task yet, most overdue first, assigned to
    pairs of the squadron's officers in turn (two officers per inspection: 双人执法).

    Nothing due: nothing to do, whoever the squadron has. Something due and fewer than two
    active officers: refused (422), as a draw is, rather than sending one officer alone.

    The tasks are due at the end of ``on`` (at least a day from ``now``); a day whose tasks
    would be due further ahead than a task may be (:func:`latest_due`: 2062 typed for 2026)
    is refused (422 on ``on``) rather than sending tasks that never become overdue."""
    due = max(_end_of_working_day(on), now + timedelta(days=1))
    if due > latest_due(now):
        raise validation_error(
            {
                "on": [
                    f"its tasks would be due {due.isoformat()}:"
                    f" at most {MAX_DUE_AHEAD.days} days ahead"
                ]
            }
        )
    # The change counter before the targets without an open task are read: a dispatch of the
    # same squadron at the same moment (two leaders, a click sent twice) holds it until its
    # tasks are committed, so this one sees them and does not send a second pair of officers.
    hold(db.session, change_counter)
    officers = db.session.scalars(
        sa.select(User)
        .where(User.squadron_id == squadron.id, User.role == Role.officer, User.active.is_(True))
        .order_by(User.id)
    ).all()
    open_task = (
        sa.select(Task.id)
        .where(Task.target_id == Target.id, Task.status == TaskStatus.open)
        .exists()
    )
    rows = db.session.execute(
        due_query(sa.true(), on, squadron.id, kind).where(~open_task).limit(limit)
    ).all()
    if rows and len(officers) < 2:
        short = (
            f"{squadron.name} (squadron {squadron.id}) has {len(rows)} target(s) due"
            f" but {len(officers)} active officer(s)"
        )
        raise validation_error(
            {"squadron_id": [short]}, f"a task needs two officers (双人执法); {short}"
        )
    created = []
    for n, row in enumerate(rows):
        pair = {officers[(2 * n) % len(officers)], officers[(2 * n + 1) % len(officers)]}
        created.append(
            build_task(
                target_id=row.target_id,
                squadron_id=squadron.id,
                origin=TaskOrigin.schedule,
                due=due,
                note=_note(row, on),
                created_by_id=actor.user_id,
                assignees=pair,
                now=now,
            )
        )
    db.session.flush()
    if created:
        audit.record(
            actor,
            "schedule.dispatch",
            "squadron",
            squadron.id,
            after={"on": on.isoformat(), "tasks": [str(t.id) for t in created]},
        )
        audit.append([creation_entry(actor, task) for task in created])
    return created


def _end_of_working_day(on: date) -> datetime:
    return datetime.combine(on, time(18), tzinfo=SHANGHAI)


def _note(row, on: date) -> str:
    if row.next_due is None:
        return f"按风险等级({row.level.value})巡查: 尚未检查过"
    return f"按风险等级({row.level.value})巡查: 逾期{(on - row.next_due).days}天"
