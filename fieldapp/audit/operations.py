"""Writing audit entries. Every operation that changes state calls :func:`record` before it
returns, inside the same transaction, so a change and its entry commit or vanish together."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from fieldapp.actor import Actor
from fieldapp.audit.models import AuditEntry
from fieldapp.db import db, utcnow

#: Columns that never go into the log: secrets, and sync bookkeeping that says nothing to a reader.
UNLOGGED_COLUMNS = frozenset({"password_hash", "token_hash", "field_clocks"})


def jsonable(value: Any) -> Any:
    """A JSON-friendly copy of a column value."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return value


def snapshot(obj) -> dict[str, Any]:
    """The row's column values (secrets left out), as JSON."""
    mapper = sa.inspect(obj).mapper
    return {
        attr.key: jsonable(getattr(obj, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in UNLOGGED_COLUMNS
    }


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict, dict]:
    """The fields whose value differs, as (old values, new values)."""
    keys = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def record(
    actor: Actor,
    action: str,
    entity: str,
    record_id: Any,
    *,
    before: dict | None = None,
    after: dict | None = None,
) -> dict:
    """Append one audit entry for a state change made by ``actor``; returns what was written.

    A plain INSERT rather than an ORM object: entries are never read back in the transaction
    that writes them, and sync writes thousands of them per request.
    """
    values = entry_values(actor, action, entity, record_id, before=before, after=after)
    db.session.execute(sa.insert(AuditEntry.__table__), [values])
    return values


def entry_values(
    actor: Actor,
    action: str,
    entity: str,
    record_id: Any,
    *,
    before: dict | None = None,
    after: dict | None = None,
) -> dict:
    """The row of an audit entry, for callers that insert many at once."""
    return {
        "at": utcnow(),
        "actor_id": actor.user_id,
        "device_id": actor.device_id,
        "request_id": actor.request_id,
        "action": action,
        "entity": entity,
        "record_id": None if record_id is None else str(record_id),
        "before": before,
        "after": after,
    }


def record_update(actor: Actor, action: str, entity: str, obj, before: dict) -> dict | None:
    """Log what changed on ``obj`` since ``before`` (a :func:`snapshot`); nothing if nothing did."""
    db.session.flush()
    old, new = changed_fields(before, snapshot(obj))
    for bookkeeping in ("version", "updated_at", "change_seq"):
        old.pop(bookkeeping, None)
        new.pop(bookkeeping, None)
    if not new:
        return None
    return record(actor, action, entity, obj.id, before=old, after=new)
