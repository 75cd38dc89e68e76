"""What other records say of an inspection: the reasons it cannot simply be deleted.

An inspection is the record of work others build on: approving it closes its task, opens its
case (立案) and settles the complaint it checked; a follow-up (复查) names the order it follows up;
supervisors review its case file and issue orders about it. Each of these points at the
inspection by a foreign key. Deleting it would leave them pointing at nothing, or, where the
database refuses (it does), fail as a bare integrity error. So a delete, from a device or
accepted from the conflict log, asks first and is refused with the list (docs/review.md,
"Deleting an inspection").

The lookups run only when a delete is about to be applied; the database's own foreign key check
of that delete reads the same rows.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from fieldapp.complaints.models import Complaint
from fieldapp.db import db
from fieldapp.inspections.models import Case, Inspection
from fieldapp.supervision.models import CaseReview, SupervisionOrder
from fieldapp.tasks.models import Task

#: At most this many records of each kind are named (a message, not a report).
NAMED = 5


def references_to(inspection_id: uuid.UUID) -> list[str]:
    """Each record that refers to the inspection, as a person would read it ("task … was
    closed by it"); empty when nothing does and the inspection may go."""
    found: list[str] = []

    def named(query: sa.Select, describe) -> None:
        found.extend(describe(row) for row in db.session.execute(query.limit(NAMED)))

    named(
        sa.select(Task.id, Task.note).where(Task.closed_by_inspection_id == inspection_id),
        lambda row: f"task {row.id}{quoted(row.note)} was closed by it",
    )
    named(
        sa.select(Case.number).where(Case.inspection_id == inspection_id),
        lambda row: f"case {row.number} was opened on it",
    )
    named(
        sa.select(Complaint.id, Complaint.reference).where(
            Complaint.inspection_id == inspection_id
        ),
        lambda row: f"complaint {row.id}{quoted(row.reference)} was settled by it",
    )
    named(
        sa.select(Inspection.id).where(Inspection.follow_up_of == inspection_id),
        lambda row: f"inspection {row.id} is a follow-up of it",
    )
    named(
        sa.select(CaseReview.id).where(CaseReview.inspection_id == inspection_id),
        lambda row: f"case review {row.id} is of it",
    )
    named(
        sa.select(SupervisionOrder.id).where(SupervisionOrder.inspection_id == inspection_id),
        lambda row: f"supervision order {row.id} is about it",
    )
    return found


def closed_task(inspection_id: uuid.UUID) -> Task | None:
    """The task the inspection's approval closed, if any (a task is closed by one inspection;
    one inspection closes at most the task it carries)."""
    return db.session.scalar(
        sa.select(Task).where(Task.closed_by_inspection_id == inspection_id).limit(1)
    )


def not_deleted_because(references: list[str], instead: str) -> str:
    """The message a refused delete gives: what refers to the inspection, and what to do
    ``instead``."""
    return f"the inspection stays: other records refer to it ({'; '.join(references)}); {instead}"


def quoted(text: str | None) -> str:
    """`` ("…")`` with the start of ``text``, to tell a person which one; nothing if blank."""
    text = (text or "").strip()
    if not text:
        return ""
    return f' ("{text[:30]}…")' if len(text) > 30 else f' ("{text}")'
