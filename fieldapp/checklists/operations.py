"""Publishing, retiring and reinstating checklists. A published version never changes; a change
is a new version."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm
import sqlalchemy.orm.attributes

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.checklists.models import Checklist, ChecklistItem, ChecklistVersion, Severity
from fieldapp.db import db
from fieldapp.errors import validation_error
from fieldapp.targets.models import TargetKind


def _items(checklist_id: int, version: int, items: list[dict]) -> list[ChecklistItem]:
    return [
        ChecklistItem(
            checklist_id=checklist_id,
            checklist_version=version,
            position=position,
            code=item["code"],
            text=item["text"],
            severity=Severity(item["severity"]),
            phases=[str(getattr(p, "value", p)) for p in item.get("phases", [])],
            legal_basis=item.get("legal_basis", ""),
        )
        for position, item in enumerate(items)
    ]


def _version_summary(version: ChecklistVersion) -> dict:
    """A version as the audit log keeps it: each item's wording and legal basis too, so the
    log says what officers were asked, and what a new version changed."""
    return {
        "version": version.version,
        "title": version.title,
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


def create_checklist(actor: Actor, kind: TargetKind, title: str, items: list[dict]) -> Checklist:
    """A new checklist with its first version."""
    checklist = Checklist(kind=kind, title=title, version=1)
    db.session.add(checklist)
    db.session.flush()
    version = ChecklistVersion(
        checklist_id=checklist.id, version=1, title=title, published_by_id=actor.user_id
    )
    version.items = _items(checklist.id, 1, items)
    db.session.add(version)
    db.session.flush()
    audit.record(
        actor, "checklist.create", "checklist", checklist.id, after=_version_summary(version)
    )
    return checklist


def publish_version(
    actor: Actor, checklist: Checklist, title: str, items: list[dict]
) -> ChecklistVersion:
    """Publish the next version of ``checklist``; earlier versions stay as they were."""
    if checklist.kind is TargetKind.shop and any(item.get("phases") for item in items):
        raise validation_error({"items": ["shop checklist items have no phases"]})
    number = newest_version_number(checklist) + 1
    version = ChecklistVersion(
        checklist_id=checklist.id, version=number, title=title, published_by_id=actor.user_id
    )
    version.items = _items(checklist.id, number, items)
    db.session.add(version)
    checklist.title = title
    # Force the UPDATE even if the title is unchanged: the row's new version (and change
    # number) is what brings the new version to devices.
    sa.orm.attributes.flag_modified(checklist, "title")
    db.session.flush()
    audit.record(
        actor, "checklist.publish", "checklist", checklist.id, after=_version_summary(version)
    )
    return version


def set_active(actor: Actor, checklist: Checklist, active: bool) -> Checklist:
    """Retire a checklist (a form withdrawn: no longer listed, and devices pull it as
    inactive) or reinstate it. Its versions stay as they were: inspections filled against it
    keep their form. Setting what it already is changes and logs nothing."""
    if checklist.active is active:
        return checklist
    checklist.active = active
    db.session.flush()
    audit.record(
        actor,
        "checklist.reinstate" if active else "checklist.retire",
        "checklist",
        checklist.id,
        before={"active": not active},
        after={"active": active},
    )
    return checklist


def newest_version_number(checklist: Checklist) -> int:
    """The number of the checklist's newest published version (not its row's ``version``,
    which also moves when it is retired or reinstated)."""
    return db.session.scalar(
        sa.select(sa.func.max(ChecklistVersion.version)).where(
            ChecklistVersion.checklist_id == checklist.id
        )
    )


def get_version(checklist: Checklist, number: int | None = None) -> ChecklistVersion | None:
    """A published version (the newest when ``number`` is None)."""
    query = (
        sa.select(ChecklistVersion)
        .where(ChecklistVersion.checklist_id == checklist.id)
        .options(sa.orm.selectinload(ChecklistVersion.items))
    )
    if number is None:
        query = query.order_by(ChecklistVersion.version.desc()).limit(1)
    else:
        query = query.where(ChecklistVersion.version == number)
    return db.session.scalar(query)
