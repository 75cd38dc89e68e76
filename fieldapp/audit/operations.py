"""Writing, reading and verifying the audit log.

Every operation that changes state calls :func:`record` (or :func:`append` with many
:func:`entry_values`) before it returns, inside the same transaction, so a change and its entry
commit or vanish together.

Entries are not inserted when recorded: they wait in the session until it commits, and are then
chained and inserted in one short step right before COMMIT (:func:`_chain_pending`), under the
chain head's row lock. The lock is held only from chaining to commit, so the chain grows in
commit order without forks or gaps however many transactions commit at once. An entry recorded
inside a savepoint that is rolled back (a rejected sync change) is dropped with it. The reasoning
is in docs/audit.md.
"""

from __future__ import annotations

import enum
import functools
import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, SessionTransaction

from fieldapp.actor import Actor
from fieldapp.audit import chain
from fieldapp.audit.models import GENESIS_HASH, AuditEntry, audit_chain_head
from fieldapp.db import db, insert_rows, utcnow
from fieldapp.errors import APIError

log = logging.getLogger("fieldapp.audit")

#: Columns that never go into the log: secrets, and sync bookkeeping that says nothing to a reader.
UNLOGGED_COLUMNS = frozenset({"password_hash", "token_hash", "field_clocks", "field_versions"})

#: Rows read per query when verifying the chain.
VERIFY_CHUNK = 5000

_PENDING = "fieldapp.audit.pending"
_SAVEPOINTS = "fieldapp.audit.savepoints"
_RELEASED = "fieldapp.audit.released"


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


# -- writing -------------------------------------------------------------------------------------


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

    The entry is written when the transaction commits (chained to the entries before it);
    a rollback of the transaction, or of the savepoint it was recorded in, drops it.
    """
    values = entry_values(actor, action, entity, record_id, before=before, after=after)
    append([values])
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
    """The row of an audit entry, for callers that append many at once (:func:`append`).

    Its ``district_id`` is the actor's district for now: at commit, an entry about a record
    that belongs to a district (:data:`RECORD_DISTRICTS`) takes that record's instead."""
    return {
        "at": utcnow(),
        "actor_id": actor.user_id,
        "device_id": actor.device_id,
        "request_id": actor.request_id,
        "district_id": actor.user.district_id if actor.user is not None else None,
        "action": action,
        "entity": entity,
        "record_id": None if record_id is None else str(record_id),
        "before": before,
        "after": after,
    }


def append(rows: list[dict]) -> None:
    """Queue entries (from :func:`entry_values`) to be chained and written at commit."""
    _pending(db.session()).extend(rows)


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


def _pending(session: Session) -> list[dict]:
    return session.info.setdefault(_PENDING, [])


#: Where the district of an entry's record is found, by the entry's ``entity``: the table whose
#: ``id`` the entry's ``record_id`` names, and the column leading to the district (a squadron,
#: the district itself, or for a device its last user). A supervisor reads the entries of their
#: district's records whoever wrote them, and keeps them when the writer moves away.
RECORD_DISTRICTS: dict[str, tuple[str, str]] = {
    "inspection": ("inspections", "squadron_id"),
    "target": ("targets", "squadron_id"),
    "risk": ("targets", "squadron_id"),  # a target's risk: its record_id is the target's
    "task": ("tasks", "squadron_id"),
    "complaint": ("complaints", "squadron_id"),
    "photo": ("photos", "squadron_id"),
    "case": ("cases", "squadron_id"),
    "case_review": ("case_reviews", "squadron_id"),
    "supervision_order": ("supervision_orders", "squadron_id"),
    "conflict": ("conflicts", "squadron_id"),
    "squadron": ("squadrons", "district_id"),
    "district": ("districts", "id"),
    "draw": ("draws", "district_id"),
    "user": ("users", "district_id"),
    "device": ("devices", "last_user_id"),
}

#: Record ids per query when placing entries (well under every database's bound parameters).
_PLACE_CHUNK = 1000


@functools.cache
def _id_type(entity: str) -> type:
    """The Python type of the ids of ``entity``'s table (UUID, int or str)."""
    return db.metadata.tables[RECORD_DISTRICTS[entity][0]].c.id.type.python_type


@functools.cache
def _districts_query(entity: str, dialect: str) -> sa.Select:
    """``(id, district_id)`` of the records of ``entity`` whose ids are in ``:ids``; built
    once per kind of record (every committing transaction may run it)."""
    tables = db.metadata.tables
    table_name, via = RECORD_DISTRICTS[entity]
    table = tables[table_name]
    if via == "squadron_id":
        squadrons = tables["squadrons"]
        query = sa.select(table.c.id, squadrons.c.district_id).join(
            squadrons, squadrons.c.id == table.c.squadron_id
        )
    elif via == "last_user_id":
        users = tables["users"]
        query = sa.select(table.c.id, users.c.district_id).join(
            users, users.c.id == table.c.last_user_id
        )
    else:
        query = sa.select(table.c.id, table.c[via])
    if dialect == "postgresql":
        # One array parameter: psycopg takes longer to send hundreds of placeholders than the
        # server takes to answer.
        ids = sa.bindparam("ids", type_=postgresql.ARRAY(table.c.id.type))
        return query.where(table.c.id == sa.any_(ids))
    return query.where(table.c.id.in_(sa.bindparam("ids", expanding=True)))


def _place(session: Session, pending: list[dict]) -> None:
    """Give each entry about a record of a district that district (``district_id``), with one
    query per kind of record in the transaction (not one per entry). An entry whose record is
    not found (deleted in the same transaction, or not a row: a photo's bytes before its
    metadata) keeps its actor's district."""
    wanted: dict[str, dict[Any, list[dict]]] = {}
    for values in pending:
        entity, record_id = values["entity"], values["record_id"]
        if record_id is None or entity not in RECORD_DISTRICTS:
            continue
        id_type = _id_type(entity)
        try:
            key = id_type(record_id)
        except ValueError:
            continue  # names no row of that table
        wanted.setdefault(entity, {}).setdefault(key, []).append(values)
    connection = session.connection()
    for entity, by_id in wanted.items():
        ids = list(by_id)
        for start in range(0, len(ids), _PLACE_CHUNK):
            chunk = {"ids": ids[start : start + _PLACE_CHUNK]}
            query = _districts_query(entity, connection.dialect.name)
            for record_id, district_id in connection.execute(query, chunk):
                for values in by_id[record_id]:
                    values["district_id"] = district_id


#: The chain head's two statements, built once: every committing transaction runs them.
_TAKE_SEQS = (
    sa.update(audit_chain_head)
    .where(audit_chain_head.c.id == 1)
    .values(seq=audit_chain_head.c.seq + sa.bindparam("count", type_=sa.BigInteger))
    .returning(audit_chain_head.c.seq, audit_chain_head.c.hash)
)
_MOVE_HEAD = (
    sa.update(audit_chain_head)
    .where(audit_chain_head.c.id == 1)
    .values(hash=sa.bindparam("head_hash"))
)


def _chain_pending(session: Session, pending: list[dict]) -> None:
    """Number, chain and insert the transaction's entries, then move the chain head.

    The canonical encoding of each entry's content is done first; only numbering, hashing the
    links and the INSERT happen under the head's lock, which the transaction keeps until it
    commits (a moment later).
    """
    _place(session, pending)
    prepared = []
    for values in pending:
        before, after = chain.as_stored(values["before"]), chain.as_stored(values["after"])
        members = chain.content_members(**{**values, "before": before, "after": after})
        prepared.append((values, before, after, members))
    count = len(prepared)
    # Takes the head's row lock (or SQLite's write lock) before reading it: a writer that was
    # waiting reads the head as the previous holder committed it.
    head = session.execute(_TAKE_SEQS, {"count": count}).one_or_none()
    if head is None:
        # Without its head the chain cannot grow, and a write that cannot be audited does not
        # happen: refused with a clear answer (503), not a crash. An operator restores the head
        # (`fieldapp audit verify` names the problem) or the database was never upgraded.
        log.error("audit_chain_head has no row: writes are refused (run `fieldapp audit verify`)")
        raise APIError(
            503,
            "audit_unavailable",
            "the audit log cannot record this change (its chain head is missing); nothing was"
            " written. Tell the operator: `fieldapp audit verify`.",
        )
    seq, prev_hash = head.seq - count, head.hash
    rows = []
    for values, before, after, members in prepared:
        seq += 1
        digest = chain.link(members, prev_hash, seq)
        rows.append(
            values
            | {"before": before, "after": after, "seq": seq, "prev_hash": prev_hash}
            | {"hash": digest}
        )
        prev_hash = digest
    # A batch of sync changes chains a hundred entries: COPY streams them on PostgreSQL.
    insert_rows(session.connection(), AuditEntry.__table__, rows)
    session.execute(_MOVE_HEAD, {"head_hash": prev_hash})


@sa.event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: its entries belong to the enclosing transaction
    pending = session.info.get(_PENDING)
    if not pending:
        return
    # Flush first, so that change sequence numbers (sync) are always taken before the chain
    # head: one lock order for every writer, hence no deadlock between the two.
    session.flush()
    _chain_pending(session, pending)
    pending.clear()


@sa.event.listens_for(Session, "after_transaction_create")
def _savepoint_started(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_SAVEPOINTS, {})[transaction] = len(_pending(session))


@sa.event.listens_for(Session, "after_commit")
def _savepoint_released(session: Session) -> None:
    nested = session.get_nested_transaction()
    if nested is not None:
        session.info.setdefault(_RELEASED, set()).add(nested)
    elif session.info.get(_PENDING):
        # Only a commit issued while a savepoint was still open gets here (before_commit then
        # runs inside the savepoint and leaves the chaining to the enclosing transaction).
        log.error(
            "audit: %d entries not written: commit() was called with a savepoint open",
            len(session.info[_PENDING]),
        )


@sa.event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        mark = session.info.get(_SAVEPOINTS, {}).pop(transaction, None)
        released = session.info.get(_RELEASED, set())
        if transaction in released:
            released.discard(transaction)
        elif mark is not None:
            del _pending(session)[mark:]  # rolled back: its entries go with it
    elif transaction.parent is None:
        session.info.pop(_PENDING, None)  # rolled back: the entries go with the transaction
        session.info.pop(_SAVEPOINTS, None)
        session.info.pop(_RELEASED, None)


# -- reading -------------------------------------------------------------------------------------


def entries_query(
    *,
    entity: str | None = None,
    record_id: str | None = None,
    actor_id: uuid.UUID | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> sa.Select:
    """Entries matching the filters, newest first (``start`` inclusive, ``end`` exclusive)."""
    query = sa.select(AuditEntry).order_by(AuditEntry.seq.desc())
    if entity is not None:
        query = query.where(AuditEntry.entity == entity)
    if record_id is not None:
        spellings = _record_id_spellings(record_id)
        query = query.where(
            AuditEntry.record_id == spellings[0]
            if len(spellings) == 1
            else AuditEntry.record_id.in_(spellings)
        )
    if actor_id is not None:
        query = query.where(AuditEntry.actor_id == actor_id)
    if start is not None:
        query = query.where(AuditEntry.at >= start)
    if end is not None:
        query = query.where(AuditEntry.at < end)
    return query


def _record_id_spellings(record_id: str) -> list[str]:
    """The ``record_id`` texts a search for ``record_id`` means: as given and, for a UUID
    written otherwise (in capitals, as iOS writes them, or without dashes), the lower-case
    dashed form the entries of every UUID record carry. As given too: a device's id is its own
    text, and may be a UUID in capitals."""
    try:
        canonical = str(uuid.UUID(record_id))
    except ValueError:
        return [record_id]
    return [record_id] if canonical == record_id else [canonical, record_id]


def chain_head(session: Session) -> tuple[int, str] | None:
    """The last ``seq`` and ``hash``; None when the head's row is gone (deleted by hand)."""
    row = session.execute(
        sa.select(audit_chain_head.c.seq, audit_chain_head.c.hash).where(audit_chain_head.c.id == 1)
    ).one_or_none()
    return None if row is None else (row.seq, row.hash)


def _stored_columns(session: Session) -> list[sa.ColumnElement]:
    """The hashed columns and ``hash`` as the database stores them, bypassing the ORM's types:
    a row an insider rewrote so that it no longer decodes (``at`` = 'infinity' on PostgreSQL,
    any text in any column on SQLite) must reach :func:`chain.stored_hash`, which names it,
    instead of failing the whole read."""
    table = AuditEntry.__table__
    if session.get_bind().dialect.name == "postgresql":
        # The time in UTC as ISO text, whatever the session's TimeZone and DateStyle; a time
        # Python cannot hold (infinity, year 10000) comes back as text that does not parse.
        at = sa.func.to_char(sa.func.timezone("UTC", table.c.at), 'YYYY-MM-DD"T"HH24:MI:SS.US')
    else:
        at = sa.type_coerce(table.c.at, sa.Text)  # stored as ISO text in UTC
    raw = {
        "at": at,
        "actor_id": sa.cast(table.c.actor_id, sa.Text),
        "before": sa.cast(table.c.before, sa.Text),
        "after": sa.cast(table.c.after, sa.Text),
    }
    return [
        raw[name].label(name) if name in raw else table.c[name]
        for name in (*chain.HASHED_FIELDS, "hash")
    ]


def _entries_up_to(session: Session, last: int):
    """Every entry up to ``last`` in ``seq`` order, its hashed columns as stored
    (:func:`_stored_columns`): from the lowest there is, so that one inserted at seq 0 or
    below is read (and judged) too."""
    columns = _stored_columns(session)
    after = None
    while True:
        query = sa.select(*columns).where(AuditEntry.seq <= last)
        if after is not None:
            query = query.where(AuditEntry.seq > after)
        rows = session.execute(query.order_by(AuditEntry.seq).limit(VERIFY_CHUNK)).all()
        yield from rows
        if len(rows) < VERIFY_CHUNK:
            return
        after = rows[-1].seq


def verify(session: Session, progress: Callable[[int, int], None] | None = None) -> chain.Verdict:
    """Check the whole chain; the verdict names the first altered, removed or moved entry.

    Reads the chain head first and checks the entries up to it, so writers committing
    meanwhile neither disturb the check nor are judged half-written. ``progress(done, total)``
    is called every :data:`VERIFY_CHUNK` entries.
    """
    top = session.scalar(sa.select(sa.func.max(AuditEntry.seq))) or 0
    head = chain_head(session)
    total = top if head is None else head[0]
    verdict = chain.Verdict(last_hash=GENESIS_HASH)
    rows = _entries_up_to(session, max(total, top))
    for verdict in chain.check(rows, head, GENESIS_HASH, chain.stored_hash):
        if progress is not None and verdict.entries % VERIFY_CHUNK == 0 and verdict.ok:
            progress(verdict.entries, total)
    if progress is not None:
        progress(verdict.entries, total)
    return verdict
