"""Tasks (任务下派): building, dispatching, cancelling and closing them, and listing them.

Every task, whoever makes it (a leader by hand, the schedule, a 双随机 draw), is built by
:func:`build_task`, so they all carry the same fields and reach devices the same way: a task is
a synced row, and every change to it takes a new change sequence number, so the assignees'
devices pull it.

A task is ``open`` until an inspection carrying its id is approved (``done``, with that
inspection as ``closed_by_inspection_id``) or its leader cancels it with a reason
(``cancelled``). Done and cancelled are final.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.auth.models import Role, User
from fieldapp.auth.policy import members_elsewhere
from fieldapp.complaints import operations as complaints
from fieldapp.complaints.models import Complaint
from fieldapp.db import change_counter, db
from fieldapp.errors import APIError, validation_error
from fieldapp.inspections.models import Outcome
from fieldapp.risk.models import TargetRisk
from fieldapp.targets.models import Target
from fieldapp.tasks.models import Task, TaskOrigin, TaskStatus, task_assignees
from sync.sequence import hold
from sync.versions import move_to_squadron, record_left_scope, record_left_users

#: A due date further ahead than this is a typo, not a plan.
MAX_DUE_AHEAD = timedelta(days=366)


def latest_due(now: datetime) -> datetime:
    """The furthest a task made at ``now`` may be due (:data:`MAX_DUE_AHEAD`). Every way of
    making tasks refuses, field by field, what would be due later: a task due decades ahead
    never becomes overdue, and keeps the schedule from dispatching its target again."""
    return now + MAX_DUE_AHEAD


def build_task(
    *,
    target_id: uuid.UUID,
    squadron_id: int,
    origin: TaskOrigin,
    due: datetime,
    assignees: Iterable[User],
    created_by_id: uuid.UUID | None,
    now: datetime,
    note: str = "",
    complaint_id: uuid.UUID | None = None,
    draw_id: uuid.UUID | None = None,
) -> Task:
    """A new open task made at ``now`` (added to the session, not flushed: callers making many
    flush once).

    Callers refuse a due time past :func:`latest_due` in their own terms first (the ``due`` of
    ``POST /tasks``, the day of a schedule dispatch); one reaching here is a bug, and raises
    ``ValueError`` rather than sending a task that never becomes overdue."""
    if due > latest_due(now):
        raise ValueError(f"a task due {due.isoformat()}: more than {MAX_DUE_AHEAD.days} days ahead")
    task = Task(
        target_id=target_id,
        squadron_id=squadron_id,
        origin=origin,
        status=TaskStatus.open,
        due=due,
        note=note,
        complaint_id=complaint_id,
        draw_id=draw_id,
        created_by_id=created_by_id,
        created_at=now,
        assignees=sorted(assignees, key=lambda user: user.id),
    )
    db.session.add(task)
    return task


def target_to_dispatch_to(target_id: uuid.UUID) -> Target | None:
    """The target a leader is sending officers to, read with the change counter held.

    The counter first, as every writer that reads rows to decide what to write takes it
    (:func:`sync.sequence.hold`): a deactivation of the target (which cancels its open tasks)
    or a move (its open tasks follow it) either committed before, and the target is read as it
    now is, or waits until this task is committed, and then finds it. Read before, the target
    could close or move in between, leaving the new task open on a closed shop or filed in the
    squadron the shop left. Its officers and the complaint are read after it, under the same
    counter (an officer disabled meanwhile is refused, or finds the task to release)."""
    hold(db.session, change_counter)
    return db.session.get(Target, target_id)


def lock_task(task_id: uuid.UUID) -> Task | None:
    """The task, locked for a change (its cancellation), with the change counter taken first
    as every writer takes it: an approval closing it, a deactivation cancelling it or a move
    of its target committed before is seen (the task is done, cancelled, or in the squadron
    that answers for it now), and one coming after waits for this change."""
    hold(db.session, change_counter)
    return db.session.scalar(sa.select(Task).where(Task.id == task_id).with_for_update())


def squadron_officers(squadron_id: int, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, User]:
    """The active officers of ``squadron_id`` among ``ids``."""
    return {
        user.id: user
        for user in db.session.scalars(
            sa.select(User).where(
                User.id.in_(list(ids)),
                User.squadron_id == squadron_id,
                User.role == Role.officer,
                User.active.is_(True),
            )
        )
    }


def create_task(
    actor: Actor,
    *,
    target: Target,
    assignee_ids: list[uuid.UUID],
    due: datetime,
    note: str,
    origin: TaskOrigin,
    complaint_id: uuid.UUID | None,
    now: datetime,
) -> Task:
    """A leader sends officers of the target's squadron to it; 422 field by field when the
    target is deactivated, or the assignees, the due time or the complaint do not fit.

    ``target`` as :func:`target_to_dispatch_to` read it, with the change counter held: what is
    checked here (the target active, its squadron, its officers) stays so until the task is
    committed."""
    errors: dict[str, list[str]] = {}
    if not target.active:
        # A shop that closed down (停业): the schedule and the draws pass it over too.
        errors["target_id"] = ["the target is deactivated: no task is sent to it"]
    officers = squadron_officers(target.squadron_id, assignee_ids)
    outside = [str(i) for i in assignee_ids if i not in officers]
    if outside:
        errors["assignee_ids"] = [
            "not active officers of the target's squadron: " + ", ".join(outside)
        ]
    if due <= now:
        errors["due"] = ["must be in the future"]
    elif due > latest_due(now):
        errors["due"] = [f"at most {MAX_DUE_AHEAD.days} days ahead"]
    if complaint_id is not None:
        complaint = db.session.get(Complaint, complaint_id)
        if complaint is None or complaint.squadron_id != target.squadron_id:
            errors["complaint_id"] = ["no such complaint in the target's squadron"]
        elif complaint.target_id is not None and complaint.target_id != target.id:
            errors["complaint_id"] = ["the complaint is about another target"]
    if errors:
        raise validation_error(errors)
    task = build_task(
        target_id=target.id,
        squadron_id=target.squadron_id,
        origin=origin,
        due=due,
        note=note,
        complaint_id=complaint_id,
        created_by_id=actor.user_id,
        assignees=[officers[i] for i in assignee_ids],
        now=now,
    )
    db.session.flush()
    audit.append([creation_entry(actor, task)])
    return task


def creation_entry(actor: Actor, task: Task) -> dict:
    """The ``task.create`` audit entry of a flushed task (:func:`audit.entry_values`).

    Every task gets its own, whoever made it (a leader, the schedule, a draw), so that
    ``GET /audit?entity=task&record_id=<id>`` starts with the task's creation. Callers that make
    many tasks append all their entries at once (:func:`audit.append`): chained in one insert.
    """
    after = {
        "target_id": task.target_id,
        "assignee_ids": task.assignee_ids,
        "due": task.due,
        "origin": task.origin,
        "complaint_id": task.complaint_id,
        "note": task.note,
    }
    if task.draw_id is not None:
        after["draw_id"] = task.draw_id
    return audit.entry_values(actor, "task.create", "task", task.id, after=audit.jsonable(after))


def _refuse(task: Task, action: str) -> APIError:
    return APIError(
        409,
        "invalid_transition",
        f"cannot {action} a task that is {task.status.value} (only open tasks change)",
        errors={"json": {"status": [f"the task is {task.status.value}"]}},
    )


def cancel_task(actor: Actor, task: Task, reason: str, now: datetime) -> Task:
    """The leader calls the task off; the assignees' devices pull it as cancelled."""
    if task.status is not TaskStatus.open:
        raise _refuse(task, "cancel")
    task.status = TaskStatus.cancelled
    task.closed_at = now
    task.cancel_reason = reason
    task.cancelled_by_id = actor.user_id
    db.session.flush()
    _release_target(actor, task, now)
    audit.record(
        actor,
        "task.cancel",
        "task",
        task.id,
        before={"status": TaskStatus.open.value},
        after={"status": task.status.value, "reason": reason},
    )
    return task


def release_assignee(actor: Actor, user: User, now: datetime) -> list[Task]:
    """``user`` can no longer carry out tasks (their account was disabled, or they are no
    longer an officer). Each open task of theirs that no other active officer among its
    assignees can carry out is cancelled, saying why, so that it neither waits on someone who
    will never come nor keeps the schedule from dispatching its target again (it sends only
    targets with no open task). A task a colleague still carries stays open with them; the
    assignee list keeps who was sent. Returns the tasks cancelled."""
    tasks = db.session.scalars(
        sa.select(Task)
        .join(task_assignees, task_assignees.c.task_id == Task.id)
        .where(task_assignees.c.user_id == user.id, Task.status == TaskStatus.open)
        .options(selectinload(Task.assignees))  # read below for every task: one query
        .order_by(Task.id)
    ).all()
    why = "账号已停用" if not user.active else "已不再是执法队员"
    reason = f"执行人{user.name}{why}，任务无其他在岗执行人"
    orphaned = [
        task
        for task in tasks
        if not any(a.active and a.role is Role.officer for a in task.assignees)
    ]
    for task in orphaned:
        cancel_task(actor, task, reason, now)
    return orphaned


def cancel_for_closed_target(actor: Actor, target: Target, now: datetime) -> list[Task]:
    """``target`` was deactivated (a shop closed down, a site finished): each of its open
    tasks is cancelled, saying why, as :func:`cancel_task` cancels one (audited, pulled by the
    assignees' devices as cancelled). Left open, a task sent officers to a target no one is to
    visit any more and stood overdue in the squadron's list. Cancelled is final: reactivating
    the target reopens none (the schedule sends officers to it again when it is due).
    Returns the tasks cancelled."""
    tasks = db.session.scalars(
        sa.select(Task)
        .where(Task.target_id == target.id, Task.status == TaskStatus.open)
        .order_by(Task.id)
        .with_for_update()
    ).all()
    reason = f"执法对象{target.name}已停用，任务取消"
    for task in tasks:
        cancel_task(actor, task, reason, now)
    return list(tasks)


def open_tasks_follow(actor: Actor, target: Target, squadron_id: int, now: datetime) -> int:
    """The target moved to ``squadron_id``: its open tasks go with it, as its open complaints
    and conflict entries do. The squadron that now answers for the target sees who is on the
    way there, and may let them go or cancel and send its own officers; left behind, the task
    was out of the new leader's sight and yet kept the schedule from dispatching the target
    (it sends only targets with no open task). Done and cancelled tasks stay, as the old
    squadron's history. Each move is audited (``task.move``); returns how many tasks moved.

    The assignees stay: they were sent, and may be there already, offline. Officers of the old
    squadron among them keep the task, and the target through it, as tasks elsewhere are read
    (``fieldapp.auth.policy``); the old squadron's other devices drop the task."""
    moving = db.session.scalars(
        sa.select(Task)
        .where(
            Task.target_id == target.id,
            Task.status == TaskStatus.open,
            Task.squadron_id != squadron_id,
        )
        .order_by(Task.id)
        .with_for_update()
    ).all()
    for task in moving:
        # Numbered before the task's new version, so a device that reads both (an assignee
        # of the old squadron) drops its copy first and then takes the moved task.
        record_left_scope("task", task, task.squadron_id, actor.user_id, now)
    return move_to_squadron(actor, moving, "task.move", "task", squadron_id)


def close_task(actor: Actor, task_id: uuid.UUID, inspection, now: datetime) -> Task | None:
    """An approved inspection carrying ``task_id`` closes that task, if it is still open and
    about the inspection's target (a task id for another target closes nothing). A task sent
    for a 12345 complaint settles the complaint with it (see :func:`settle_complaint`)."""
    task = db.session.get(Task, task_id)
    if task is None or task.status is not TaskStatus.open:
        return None
    if task.target_id != inspection.target_id:
        return None
    task.status = TaskStatus.done
    task.closed_at = now
    task.closed_by_inspection_id = inspection.id
    db.session.flush()
    _release_target(actor, task, now)
    audit.record(
        actor,
        "task.close",
        "task",
        task.id,
        before={"status": TaskStatus.open.value},
        after={"status": task.status.value, "closed_by_inspection_id": str(inspection.id)},
    )
    if task.complaint_id is not None:
        settle_complaint(actor, db.session.get(Complaint, task.complaint_id), inspection, now)
    return task


def _release_target(actor: Actor, task: Task, now: datetime) -> None:
    """The task is no longer open: its assignees from other squadrons than its target's read
    the target, and its risk record, through open tasks alone. Those left without another open
    task for it lose both, and their devices are told so (no removal written for a squadron
    reaches them).

    Called once the task's change is flushed, so with the change counter held: a concurrent
    transaction that opens another task for the same officer and target has either committed
    (it is seen here, and nothing is lost) or will number its task after these removals (and
    the task brings the target back, ``sync.pull``).
    """
    target = db.session.get(Target, task.target_id)
    elsewhere = members_elsewhere(task.assignee_ids, target.squadron_id)
    if not elsewhere:
        return
    still = set(
        db.session.scalars(
            sa.select(task_assignees.c.user_id)
            .join(Task, Task.id == task_assignees.c.task_id)
            .where(
                Task.target_id == target.id,
                Task.status == TaskStatus.open,
                task_assignees.c.user_id.in_(elsewhere),
            )
        )
    )
    losing = [user_id for user_id in elsewhere if user_id not in still]
    record_left_users("target", [target], losing, actor.user_id, now)
    risk = db.session.get(TargetRisk, target.id)
    if risk is not None:
        record_left_users("risk", [risk], losing, actor.user_id, now)


#: Outcomes that act on a violation (every one but ``compliant``): a check that ends in one
#: found what it was sent for, whether or not the violation is an item of the checklist (the
#: findings then describe it). Corrected on the spot (当场改正) or not penalised (首违不罚), the
#: violation was there.
ACTING_OUTCOMES = frozenset(set(Outcome) - {Outcome.compliant})


def settle_complaint(actor: Actor, complaint: Complaint, inspection, now: datetime) -> None:
    """The approved inspection sent for a complaint answers it: substantiated when it failed
    an item or acted on a violation (:data:`ACTING_OUTCOMES`), not otherwise. A complaint
    already decided stays as it is (the leader may still correct it through the complaint's
    decision). The approval that closes the task re-assesses the target afterwards, once."""
    # Locked and read again before the check: a leader's decision committed while this
    # approval waited for the change counter is seen here, and stays.
    db.session.refresh(complaint, with_for_update=True)
    if complaint.closed_at is not None:
        return
    found = inspection.outcome in ACTING_OUTCOMES or any(
        isinstance(answer, dict) and answer.get("result") == "fail"
        for answer in (inspection.answers or {}).values()
    )
    note = "检查发现问题，投诉属实" if found else "检查未发现问题，投诉不属实"
    decision = complaints.Decision(found, note, inspection)
    complaints.decide_complaint(actor, complaint, decision, now, reassess=False)


@dataclass
class TaskFilters:
    squadron_id: int | None = None
    status: TaskStatus | None = None
    overdue: bool | None = None
    assignee_id: uuid.UUID | None = None
    target_id: uuid.UUID | None = None
    origin: TaskOrigin | None = None


def search_tasks(query: sa.Select, filters: TaskFilters, now: datetime) -> sa.Select:
    """``query`` (a scoped ``SELECT Task``) filtered; the soonest due first.

    ``overdue=true``: open tasks whose due time has passed; ``overdue=false``: the others.
    """
    if filters.squadron_id is not None:
        query = query.where(Task.squadron_id == filters.squadron_id)
    if filters.status is not None:
        query = query.where(Task.status == filters.status)
    if filters.overdue is True:
        query = query.where(Task.status == TaskStatus.open, Task.due < now)
    elif filters.overdue is False:
        query = query.where(sa.or_(Task.status != TaskStatus.open, Task.due >= now))
    if filters.assignee_id is not None:
        query = query.where(
            Task.id.in_(
                sa.select(task_assignees.c.task_id).where(
                    task_assignees.c.user_id == filters.assignee_id
                )
            )
        )
    if filters.target_id is not None:
        query = query.where(Task.target_id == filters.target_id)
    if filters.origin is not None:
        query = query.where(Task.origin == filters.origin)
    return query.order_by(Task.due, Task.id)


def is_overdue(task: Task, now: datetime) -> bool:
    return task.status is TaskStatus.open and task.due < now
