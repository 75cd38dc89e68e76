"""Publishing checklists. A published version never changes; a change is a new version."""

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
    return {
        "version": version.version,
        "title": version.title,
        "items": [
            {"code": i.code, "severity": i.severity.value, "phases": i.phases}
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
    number = checklist.version + 1
    version = ChecklistVersion(
        checklist_id=checklist.id, version=number, title=title, published_by_id=actor.user_id
    )
    version.items = _items(checklist.id, number, items)
    db.session.add(version)
    checklist.title = title
    # Force the UPDATE even if the title is unchanged: it moves the row's version to ``number``.
    sa.orm.attributes.flag_modified(checklist, "title")
    db.session.flush()
    audit.record(
        actor, "checklist.publish", "checklist", checklist.id, after=_version_summary(version)
    )
    return version


def get_version(checklist: Checklist, number: int | None = None) -> ChecklistVersion | None:
    """A published version (the newest when ``number`` is None)."""
    return db.session.scalar(
        sa.select(ChecklistVersion)
        .where(
            ChecklistVersion.checklist_id == checklist.id,
            ChecklistVersion.version == (number or checklist.version),
        )
        .options(sa.orm.selectinload(ChecklistVersion.items))
    )
