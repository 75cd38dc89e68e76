"""Pull: everything in the caller's scope that changed after the cursor, in commit order.

Every synced table carries ``change_seq`` from the global sequence (``sync/sequence.py``), whose
numbers become visible in the order they were handed out. Pull reads, per table, the next rows
after the cursor (by an index on ``change_seq``), merges them by number and serves the first
``limit``; the new cursor is the last number served. Because no number below it can still
appear later, nothing is ever skipped, and the cost of a page does not depend on how many
records are stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import load_only, selectinload

from fieldapp import jsontext
from fieldapp.auth.models import User
from fieldapp.auth.policy import Policy
from fieldapp.checklists.models import Checklist, ChecklistVersion
from fieldapp.db import db
from fieldapp.inspections.models import Inspection, inspection_officers
from fieldapp.photos.models import Photo
from fieldapp.risk.models import TargetRisk
from fieldapp.targets.models import Target
from fieldapp.tasks.models import Task
from schemas.targets import TargetSchema
from sync import cursor as cursors
from sync.entities import inspection_wire
from sync.models import ScopeExit, Tombstone

_TARGET = TargetSchema()


def _target(target: Target) -> dict:
    return _TARGET.dump(target)


def _checklist(checklist: Checklist) -> dict:
    version = db.session.scalar(
        sa.select(ChecklistVersion)
        .where(
            ChecklistVersion.checklist_id == checklist.id,
            ChecklistVersion.version == checklist.version,
        )
        .options(selectinload(ChecklistVersion.items))
    )
    return {
        "id": checklist.id,
        "kind": checklist.kind.value,
        "version": checklist.version,
        "title": version.title,
        "active": checklist.active,
        "items": [
            {
                "code": i.code,
                "text": i.text,
                "severity": i.severity.value,
                "phases": i.phases,
                "legal_basis": i.legal_basis,
            }
            for i in version.items
        ],
    }


def _task(task: Task) -> dict:
    return {
        "id": str(task.id),
        "target_id": str(task.target_id),
        "assignee_ids": [str(i) for i in task.assignee_ids],
        "due": task.due.isoformat(),
        "note": task.note,
        "origin": task.origin.value,
        "status": task.status.value,
        "draw_id": str(task.draw_id) if task.draw_id else None,
        "closed_by_inspection_id": str(task.closed_by_inspection_id)
        if task.closed_by_inspection_id
        else None,
        "cancel_reason": task.cancel_reason,
    }


def _photo(photo: Photo) -> dict:
    return {
        "id": str(photo.id),
        "inspection_id": str(photo.inspection_id),
        "item_code": photo.item_code,
        "taken_at": photo.taken_at.isoformat(),
        "location": None
        if photo.lon is None
        else {"lon": photo.lon, "lat": photo.lat, "accuracy_m": photo.accuracy_m},
        "sha256": photo.sha256,
        "size": photo.size,
        "content_type": photo.content_type,
        "uploaded": photo.uploaded,
    }


def _user(user: User) -> dict:
    return {
        "id": str(user.id),
        "name": user.name,
        "role": user.role.value,
        "squadron_id": user.squadron_id,
        "active": user.active,
    }


def _risk(risk: TargetRisk) -> dict:
    return {
        "target_id": str(risk.target_id),
        "level": risk.level.value,
        "score": risk.score,
        "next_due": risk.next_due.isoformat() if risk.next_due else None,
    }


@dataclass(frozen=True)
class Pulled:
    entity: str
    model: type
    dump: object
    options: tuple = ()


PULLED = (
    Pulled("target", Target, _target),
    Pulled("checklist", Checklist, _checklist),
    Pulled("task", Task, _task, (selectinload(Task.assignees),)),
    Pulled("photo", Photo, _photo),
    Pulled("user", User, _user),
    # Devices need the level, not the factors behind it: leave the JSON columns unread.
    Pulled(
        "risk",
        TargetRisk,
        _risk,
        (
            load_only(
                TargetRisk.target_id,
                TargetRisk.level,
                TargetRisk.score,
                TargetRisk.next_due,
                TargetRisk.version,
                TargetRisk.change_seq,
            ),
        ),
    ),
)


def pull(policy: Policy, token: str | None, limit: int, secret: str) -> dict:
    """One page of changes after ``token`` (None: from the beginning).

    Inspection changes come already encoded as JSON text; :func:`page_json` writes the page.

    Raises :class:`sync.cursor.CursorError` for a malformed, forged or foreign cursor.
    """
    user = policy.user
    scope = cursors.scope_fingerprint(user.role.value, user.squadron_id, user.district_id)
    after = 0
    if token:
        cursor = cursors.decode(token, secret)
        if cursor.user_id != str(user.id):
            raise cursors.CursorError("this cursor was issued to another user")
        if cursor.scope != scope:
            fresh = cursors.encode(cursors.Cursor(0, str(user.id), scope), secret)
            return {"changes": [], "cursor": fresh, "has_more": True, "reset": True}
        after = cursor.seq

    def next_rows(model, options=()):
        """The next ``limit + 1`` rows of ``model`` in scope after the cursor, by number."""
        query = (
            policy.scoped(model)
            .where(model.change_seq > after)
            .order_by(model.change_seq)
            .limit(limit + 1)
        )
        return db.session.scalars(query.options(*options) if options else query)

    candidates: list[tuple[int, str, object]] = []
    for pulled in PULLED:
        candidates += [
            (row.change_seq, pulled.entity, row) for row in next_rows(pulled.model, pulled.options)
        ]
    candidates += _inspections(policy, after, limit)
    # Deletions, and records that left the caller's squadron: both are removals to a device.
    for removed in (Tombstone, ScopeExit):
        candidates += [(row.change_seq, "tombstone", row) for row in next_rows(removed)]
    candidates.sort(key=lambda c: c[0])
    page = candidates[:limit]

    dumpers = {p.entity: p.dump for p in PULLED}
    changes: list[dict | str] = []
    for _, entity, row in page:
        if entity == "inspection":
            changes.append(row.encoded)
        elif entity == "tombstone":
            changes.append(
                {
                    "entity": row.entity,
                    "id": str(row.record_id),
                    "op": "delete",
                    "version": row.version,
                    "data": None,
                }
            )
        else:
            changes.append(
                {
                    "entity": entity,
                    "id": str(row.id),
                    "op": "upsert",
                    "version": row.version,
                    "data": dumpers[entity](row),
                }
            )
    changes += _targets_of_tasks_elsewhere(policy, [row for _, e, row in page if e == "task"])
    last = page[-1][0] if page else after
    return {
        "changes": changes,
        "cursor": cursors.encode(cursors.Cursor(last, str(user.id), scope), secret),
        "has_more": len(candidates) > limit,
        "reset": False,
    }


class _Pre:
    """An inspection change already encoded as JSON text (see :func:`_inspections`)."""

    __slots__ = ("change_seq", "encoded")

    def __init__(self, change_seq: int, encoded: str):
        self.change_seq, self.encoded = change_seq, encoded


#: The columns a device reads; the sync bookkeeping (``field_clocks`` above all) stays behind.
_WIRE_COLUMNS = (
    "id",
    "version",
    "change_seq",
    "target_id",
    "squadron_id",
    "checklist_id",
    "checklist_version",
    "origin",
    "task_id",
    "draw_id",
    "started_at",
    "ended_at",
    "lon",
    "lat",
    "accuracy_m",
    "location_original",
    "findings",
    "outcome",
    "rectification_deadline",
    "legal_basis",
    "follow_up_of",
    "photo_ids",
    "status",
    "review_status",
    "review_comment",
    "reviewed_by_id",
    "reviewed_at",
    "score",
    "flags",
    "received_at",
    "submitted_at",
)


def _inspections(policy: Policy, after: int, limit: int) -> list[tuple[int, str, object]]:
    """Inspections are most of what devices pull: read as plain rows, not ORM objects, with
    their officers in one more query, and encoded here.

    ``answers`` (the largest value) is read as the JSON text the database holds and placed into
    the page as it is, instead of being parsed and encoded again.
    """
    table = Inspection.__table__
    rows = db.session.execute(
        sa.select(
            *(table.c[name] for name in _WIRE_COLUMNS),
            sa.cast(table.c.answers, sa.Text).label("answers"),
        )
        .where(policy.readable(Inspection), table.c.change_seq > after)
        .order_by(table.c.change_seq)
        .limit(limit + 1)
    ).all()
    officers: dict = {}
    if rows:
        for inspection_id, user_id in db.session.execute(
            sa.select(inspection_officers.c.inspection_id, inspection_officers.c.user_id)
            .where(inspection_officers.c.inspection_id.in_([r.id for r in rows]))
            .order_by(inspection_officers.c.inspection_id, inspection_officers.c.position)
        ):
            officers.setdefault(inspection_id, []).append(user_id)
    pulled = []
    for row in rows:
        wire = inspection_wire(row, officers.get(row.id, []))
        del wire["answers"]
        data = encode(wire)[:-1] + ',"answers":' + (row.answers or "{}") + "}"
        change = encode({"entity": "inspection", "id": wire["id"], "op": "upsert"})
        encoded = f'{change[:-1]},"version":{row.version},"data":{data}}}'
        pulled.append((row.change_seq, "inspection", _Pre(row.change_seq, encoded)))
    return pulled


def encode(value) -> str:
    """Compact JSON text, UTF-8 characters as they are."""
    return jsontext.dumps(value)


def page_json(page: dict) -> str:
    """A pull page as JSON text; changes already encoded (inspections) are placed as they are."""
    changes = ",".join(c if isinstance(c, str) else encode(c) for c in page["changes"])
    rest = encode({k: v for k, v in page.items() if k != "changes"})
    return f'{{"changes":[{changes}],{rest[1:]}'


def _targets_of_tasks_elsewhere(policy: Policy, tasks: list[Task]) -> list[dict]:
    """A task sent to an officer outside the target's squadron brings its target along: that
    target's own change may lie before the cursor, so it would otherwise never arrive."""
    wanted = {t.target_id for t in tasks}
    if not wanted:
        return []
    targets = db.session.scalars(
        sa.select(Target).where(
            Target.id.in_(wanted),
            Target.squadron_id != policy.user.squadron_id,
            policy.readable(Target),
        )
    )
    return [
        {
            "entity": "target",
            "id": str(t.id),
            "op": "upsert",
            "version": t.version,
            "data": _target(t),
        }
        for t in targets
    ]
