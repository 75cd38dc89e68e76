"""Pull: everything in the caller's scope that changed after the cursor, in commit order.

Every synced table carries ``change_seq`` from the global sequence (``sync/sequence.py``), whose
numbers become visible in the order they were handed out. A page first reads the sequence's
horizon (the counter's committed value: every number up to it is committed or unused, every
later commit gets a number above it) and which tables hold rows after the cursor, in one
statement. It then reads, per table, the next rows after the cursor and up to the horizon (by an
index on ``change_seq``), merges them by number and serves the first ``limit``; the new cursor is
the last number served. The horizon makes the page one snapshot, although PostgreSQL gives each
statement its own: a push that commits between two of the page's statements gets numbers above
the horizon, so it waits for the next page instead of landing behind the cursor. Nothing is ever
skipped, and the cost of a page does not depend on how many records are stored.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from fieldapp import jsontext
from fieldapp.auth.models import SQUADRON_ROLES, User
from fieldapp.auth.policy import Policy
from fieldapp.checklists.models import Checklist
from fieldapp.checklists.operations import get_version
from fieldapp.db import change_counter, db, utcnow
from fieldapp.inspections.models import Inspection
from fieldapp.photos.models import Photo
from fieldapp.risk.models import TargetRisk
from fieldapp.targets.models import Target
from fieldapp.tasks.models import Task
from sync import cursor as cursors
from sync.models import RemovalsServed, ScopeExit, Tombstone, UserExit


def _enum_value(member) -> str | None:
    return None if member is None else member.value


def _target(target: Target) -> dict:
    """The target as ``TargetSchema`` dumps it, built directly (a tenth of the cost: a first
    pull carries every target of the squadron); ``tests/test_sync_wire.py`` holds the two to
    the same output."""
    location = {"lon": target.lon, "lat": target.lat}
    if target.location_original:
        location["original"] = target.location_original
    return {
        "id": str(target.id),
        "kind": target.kind.value,
        "code": target.code,
        "name": target.name,
        "address": target.address,
        "squadron_id": target.squadron_id,
        "location": location,
        "credit_class": target.credit_class.value,
        "sensitive_surroundings": target.sensitive_surroundings,
        "business_type": target.business_type,
        "uscc": target.uscc,
        "permit_no": target.permit_no,
        "scale": _enum_value(target.scale),
        "phase": _enum_value(target.phase),
        "boundary": target.boundary,
        "active": target.active,
        "version": target.version,
        "created_at": target.created_at.isoformat(),
        "updated_at": target.updated_at.isoformat(),
    }


def _checklist(checklist: Checklist) -> dict:
    """The checklist at its newest published version: ``version`` is that version's number
    (what an inspection names as ``checklist_version``), which a retirement leaves as it is
    although it moves the record's version."""
    version = get_version(checklist)
    return {
        "id": checklist.id,
        "kind": checklist.kind.value,
        "version": version.version,
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
        "complaint_id": str(task.complaint_id) if task.complaint_id else None,
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


#: The columns of a risk record that devices read.
_RISK_COLUMNS = (
    TargetRisk.target_id,
    TargetRisk.level,
    TargetRisk.score,
    TargetRisk.next_due,
    TargetRisk.version,
    TargetRisk.change_seq,
)


@dataclass(frozen=True)
class Pulled:
    entity: str
    model: type
    dump: object
    options: tuple = ()
    #: The columns read (None: all of them)
    columns: tuple | None = None


PULLED = (
    Pulled("target", Target, _target),
    Pulled("checklist", Checklist, _checklist),
    Pulled("task", Task, _task, (selectinload(Task.assignees),)),
    Pulled("photo", Photo, _photo),
    Pulled("user", User, _user),
    # Devices need the level, not the factors behind it: leave the JSON columns unread.
    Pulled("risk", TargetRisk, _risk, columns=_RISK_COLUMNS),
)


def pull(policy: Policy, token: str | None, limit: int, secret: str) -> dict:
    """One page of changes after ``token`` (None: from the beginning).

    Inspection changes come already encoded as JSON text; :func:`page_json` writes the page.

    Raises :class:`sync.cursor.CursorError` for a malformed, forged or foreign cursor.
    """
    user = policy.user
    scope = cursors.scope_fingerprint(user.role.value, user.squadron_id, user.district_id)
    after, served_along = 0, (0, 0)
    if token:
        cursor = cursors.decode(token, secret)
        if cursor.user_id != str(user.id):
            raise cursors.CursorError("this cursor was issued to another user")
        if cursor.scope != scope:
            fresh = cursors.encode(cursors.Cursor(0, str(user.id), scope), secret)
            return {"changes": [], "cursor": fresh, "has_more": True, "reset": True}
        after = cursor.seq
        served_along = (cursor.along_of, cursor.along_served)

    dialect = db.session.get_bind().dialect.name
    horizon, changed = _news(after, dialect)

    def next_rows(model, options=(), columns=None):
        """The rows of ``model`` in scope that may come next after the cursor, by number."""
        if model not in changed:
            return []
        parts = []
        for page in page_queries(policy, model, columns or model.__table__.columns, after, limit):
            query = sa.select(model).from_statement(page)
            parts.append(db.session.scalars(query.options(*options) if options else query).all())
        return _in_change_order(parts, lambda row: row.change_seq, horizon)

    candidates: list[tuple[int, str, object]] = []
    for pulled in PULLED:
        candidates += [
            (row.change_seq, pulled.entity, row)
            for row in next_rows(pulled.model, pulled.options, pulled.columns)
        ]
    if Inspection in changed:
        candidates += _inspections(policy, after, horizon, limit, dialect)
    # Deletions, and records that left the caller's squadron or the caller's own scope beyond
    # it: all are removals to a device.
    for removed in (Tombstone, ScopeExit, UserExit):
        candidates += [(row.change_seq, "tombstone", row) for row in next_rows(removed)]
    if dialect == "postgresql":
        _configured_plans()
    candidates.sort(key=lambda c: c[0])
    # What a task brings comes just before the task and counts against the limit; the page
    # before may have been cut among it, and served its first ones already.
    along = _brought_along(
        policy, [row for _, entity, row in candidates[:limit] if entity == "task"], after
    )
    along_of, along_served = served_along
    entries: list[tuple[int, str, object]] = []
    for seq, entity, row in candidates:
        entries += [
            (seq, "along", (rank, change))
            for rank, change in along.get(seq, ())
            if seq != along_of or rank >= along_served
        ]
        entries.append((seq, entity, row))
    page = entries[:limit]

    dumpers = {p.entity: p.dump for p in PULLED}
    changes: list[dict | bytes] = []
    for _, entity, row in page:
        if entity == "inspection":
            changes.append(row.encoded)
        elif entity == "along":
            changes.append(row[1])
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
    cursor = cursors.Cursor(after, str(user.id), scope)
    if page:
        last, entity, row = page[-1]
        cursor = cursors.Cursor(last, str(user.id), scope)
        if entity == "along":
            # Cut among what the change ``last`` brings along: everything before it is served,
            # the change itself comes next, with the rest of what it brings.
            cursor = cursors.Cursor(last - 1, str(user.id), scope, last, row[0] + 1)
        if any(isinstance(row, ScopeExit | UserExit) for _, _, row in page):
            _record_removals_served(policy, cursor.seq)
    return {
        "changes": changes,
        "cursor": cursors.encode(cursor, secret),
        "has_more": len(entries) > limit,
        "reset": False,
    }


def _record_removals_served(policy: Policy, seq: int) -> None:
    """Note that the caller's device has now been served its user's removals up to ``seq``
    (:class:`sync.models.RemovalsServed`): from now on the pad knows those records left."""
    device_id = policy.actor.device_id
    if device_id is None:
        return
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    served = RemovalsServed.__table__
    statement = insert(served).values(
        device_id=device_id, user_id=policy.user.id, change_seq=seq, served_at=utcnow()
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[served.c.device_id, served.c.user_id],
        set_={
            "change_seq": statement.excluded.change_seq,
            "served_at": statement.excluded.served_at,
        },
        # A page served again after a lost answer does not move the device's time back.
        where=served.c.change_seq < statement.excluded.change_seq,
    )
    if dialect != "sqlite":
        db.session.execute(upsert)
        return
    try:
        with db.session.begin_nested():
            db.session.execute(upsert)
    except sa.exc.OperationalError:
        # SQLite cannot turn the page's read into a write once another request has committed
        # since it began (SQLITE_BUSY_SNAPSHOT: the pull would answer 503). The note is the
        # device's bookkeeping, not the page's: written on a connection of its own.
        with db.engine.begin() as connection:
            connection.execute(upsert)


#: PostgreSQL plans that gather every row after the cursor and sort them: a page's queries
#: do without them (see :func:`_news`), the rest of the request as configured. And without
#: JIT compilation, which the cost of a sort set aside (disabled plans cost 10^10) calls for:
#: the sorted parts beyond the squadron (:func:`page_queries`) took 300-900 ms compiling for
#: queries of a millisecond.
_GATHERING_PLANS = ("enable_bitmapscan", "enable_sort", "jit")


def _configured_plans() -> None:
    """Give back the plans :func:`_news` set aside, for the rest of the transaction (the
    dumps' lazy loads: without a sort, a checklist's items took 250 ms instead of 2)."""
    for name in _GATHERING_PLANS:
        db.session.execute(sa.text(f"SET LOCAL {name} TO DEFAULT"))


#: Every table a page reads.
_PULLED_MODELS = (*(p.model for p in PULLED), Inspection, Tombstone, ScopeExit, UserExit)


def _news(after: int, dialect: str) -> tuple[int, frozenset[type]]:
    """The sequence's horizon and the models with rows numbered after ``after`` (in any
    scope), read in one statement, so one snapshot: a table without any is not asked for a page
    (most tables, on most pulls of a device that keeps up).

    Each table's highest number comes off the end of its ``change_seq`` index whatever the
    planner's statistics say; "any row after the cursor" was planned as a scan of the whole
    table where they were stale, as after a bulk import. On PostgreSQL the same statement sets
    aside, for the page's queries, the plans that gather and sort, and JIT compilation
    (:data:`_GATHERING_PLANS`).
    """
    counter = change_counter.c
    walk = ()
    if dialect == "postgresql":
        walk = tuple(sa.func.set_config(name, "off", True) for name in _GATHERING_PLANS)
    horizon, *highest = db.session.execute(
        sa.select(
            sa.select(counter.value).where(counter.id == 1).scalar_subquery(),
            *(
                sa.select(sa.func.max(model.change_seq)).scalar_subquery()
                for model in _PULLED_MODELS
            ),
            *walk,
        )
    ).one()[: 1 + len(_PULLED_MODELS)]
    return horizon, frozenset(
        model
        for model, seq in zip(_PULLED_MODELS, highest, strict=True)
        if seq is not None and seq > after
    )


def page_queries(policy: Policy, model: type, columns, after: int, limit: int) -> list:
    """Queries for ``columns`` of the rows of ``model`` in the caller's scope that may be on a
    page after the cursor; the caller merges their rows by ``change_seq`` up to the horizon
    (:func:`_in_change_order`).

    Each part of the scope (:meth:`Policy.read_parts`) is a query of its own, of ``limit + 1``
    rows at most: the squadron's down its own index; the ones beyond it (a member's own rows
    elsewhere) found from the member's own (officer links, task assignees) and sorted. Given
    the parts joined by OR, SQLite gathers every row of both after the cursor and sorts them,
    so a first pull of a large squadron would cost more with every page; PostgreSQL does the
    same where its statistics are stale, unless the page has set those plans aside
    (:func:`_news`). Read whole, the rows beyond were all read on every page: an officer moved
    from the squadron of their 120 inspections read 120 of them for a page of 5.
    """
    squadron, *beyond = policy.read_parts(model)
    first = (
        sa.select(*columns)
        .where(squadron, model.change_seq > after)
        .order_by(model.change_seq)
        .limit(limit + 1)
    )
    return [
        first,
        *(
            sa.select(*columns)
            .where(part, model.change_seq > after)
            # Ordered by an expression, which no index gives: told the table's change index
            # gives the order, both databases walk it from the cursor looking for the
            # member's few rows, through every row of the table after it.
            .order_by(model.change_seq + 0)
            .limit(limit + 1)
            for part in beyond
        ),
    ]


def _in_change_order(parts: list[list], key, horizon: int) -> list:
    """The rows of several parts in one list, by change number, up to ``horizon``.

    The horizon is applied here, not in the queries: each part comes in change order, so the
    rows above it are its last ones, and PostgreSQL given a closed range planned the first page
    of a million shops as a scan of all of them and a sort.
    """
    rows = [row for part in parts for row in part if key(row) <= horizon]
    if sum(1 for part in parts if part) > 1:
        rows.sort(key=key)
    return rows


class _Pre:
    """An inspection change already encoded as JSON (see :func:`_inspections`)."""

    __slots__ = ("change_seq", "encoded")

    def __init__(self, change_seq: int, encoded: bytes):
        self.change_seq, self.encoded = change_seq, encoded


#: The columns a device reads, in the order _inspections unpacks them, each with how the
#: database hands it over: "uuid" as text, "time" as a UTC timestamp, "json" as the JSON text it
#: holds, "stored" as the driver returns it (numbers, text, enum values, PostgreSQL's dates).
#: The sync bookkeeping (``field_clocks`` above all) stays behind.
_PULLED_COLUMNS = (
    ("id", "uuid"),
    ("target_id", "uuid"),
    ("task_id", "uuid"),
    ("draw_id", "uuid"),
    ("follow_up_of", "uuid"),
    ("reviewed_by_id", "uuid"),
    ("version", "stored"),
    ("change_seq", "stored"),
    ("squadron_id", "stored"),
    ("checklist_id", "stored"),
    ("checklist_version", "stored"),
    ("origin", "stored"),
    ("lon", "stored"),
    ("lat", "stored"),
    ("accuracy_m", "stored"),
    ("findings", "stored"),
    ("outcome", "stored"),
    ("rectification_deadline", "stored"),
    ("legal_basis", "stored"),
    ("status", "stored"),
    ("review_status", "stored"),
    ("review_comment", "stored"),
    ("score", "stored"),
    ("started_at", "time"),
    ("ended_at", "time"),
    ("reviewed_at", "time"),
    ("received_at", "time"),
    ("submitted_at", "time"),
    ("answers", "json"),
    ("photo_ids", "json"),
    ("flags", "json"),
    ("location_original", "json"),
    ("officer_ids", "json"),
)


def _uuid_text(column, dialect: str):
    """A UUID column as the text devices read (8-4-4-4-12 hex digits), computed by the
    database: PostgreSQL spells its uuid type so; SQLite holds 32 hex digits."""
    if dialect == "postgresql":
        return sa.cast(column, sa.Text)
    hex_digits = sa.type_coerce(column, sa.String)
    parts = [sa.func.substr(hex_digits, start, size) for start, size in _UUID_GROUPS]
    text = parts[0]
    for part in parts[1:]:
        text = text.op("||")("-").op("||")(part)
    return text


_UUID_GROUPS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))


def _time_value(column, dialect: str):
    """A timestamp as a naive UTC datetime (PostgreSQL) or SQLite's stored UTC text."""
    if dialect == "postgresql":
        return sa.func.timezone("UTC", column)
    return sa.type_coerce(column, sa.String)


def _json_text(column, dialect: str):
    """A JSON column as the JSON text the database holds, unparsed."""
    return (
        sa.cast(column, sa.Text) if dialect == "postgresql" else sa.type_coerce(column, sa.String)
    )


@functools.cache
def _inspection_columns(dialect: str) -> tuple:
    """The column expressions of :data:`_PULLED_COLUMNS` (built once per dialect: building them
    cost more than running the query)."""
    forms = {
        "uuid": _uuid_text,
        "time": _time_value,
        "json": _json_text,
        "stored": lambda column, _: sa.type_coerce(column, sa.String),
    }
    c = Inspection.__table__.c
    return tuple(forms[form](c[name], dialect).label(name) for name, form in _PULLED_COLUMNS)


def _inspections(
    policy: Policy, after: int, horizon: int, limit: int, dialect: str
) -> list[tuple[int, str, object]]:
    """Inspections are most of what devices pull, so they skip the ORM and its type
    conversions: the database hands over ids as text and JSON columns as the JSON text it
    holds, and each change is encoded by orjson in one call, JSON text placed as it is.

    ``tests/test_sync_wire.py`` holds the result to what ``InspectionSchema`` dumps.
    """
    rows = _in_change_order(
        [
            db.session.execute(query).all()
            for query in page_queries(
                policy, Inspection, _inspection_columns(dialect), after, limit
            )
        ],
        key=lambda row: row.change_seq,
        horizon=horizon,
    )[: limit + 1]
    # SQLite hands timestamps over as the text it stores; PostgreSQL as naive UTC datetimes.
    # orjson writes either kind of datetime as UTC, as isoformat() does.
    time = datetime.fromisoformat if dialect == "sqlite" else _same
    pulled = []
    for (
        id_,
        target_id,
        task_id,
        draw_id,
        follow_up_of,
        reviewed_by_id,
        version,
        change_seq,
        squadron_id,
        checklist_id,
        checklist_version,
        origin,
        lon,
        lat,
        accuracy_m,
        findings,
        outcome,
        rectification_deadline,
        legal_basis,
        status,
        review_status,
        review_comment,
        score,
        started_at,
        ended_at,
        reviewed_at,
        received_at,
        submitted_at,
        answers,
        photo_ids,
        flags,
        location_original,
        officer_ids,
    ) in rows:
        location = {"lon": lon, "lat": lat, "accuracy_m": accuracy_m, "crs": "wgs84"}
        if location_original is not None and location_original != "null":
            location["original"] = orjson.Fragment(location_original)
        data = {
            "id": id_,
            "version": version,
            "target_id": target_id,
            "squadron_id": squadron_id,
            "checklist_id": checklist_id,
            "checklist_version": checklist_version,
            "officer_ids": _json_fragment(officer_ids, b"[]"),
            "origin": origin,
            "task_id": task_id,
            "draw_id": draw_id,
            "started_at": time(started_at),
            "ended_at": ended_at and time(ended_at),
            "location": location,
            "answers": _json_fragment(answers, b"{}"),
            "findings": findings,
            "outcome": outcome,
            "rectification_deadline": rectification_deadline,
            "legal_basis": legal_basis,
            "follow_up_of": follow_up_of,
            "photo_ids": _json_fragment(photo_ids, b"[]"),
            "status": status,
            "review": {
                "status": review_status,
                "comment": review_comment,
                "reviewed_by": reviewed_by_id,
                "reviewed_at": reviewed_at and time(reviewed_at),
            },
            "score": score,
            "flags": _json_fragment(flags, b"[]"),
            "received_at": time(received_at),
            "submitted_at": submitted_at and time(submitted_at),
        }
        change = {"entity": "inspection", "id": id_, "op": "upsert", "version": version}
        change["data"] = data
        encoded = orjson.dumps(change, option=orjson.OPT_NAIVE_UTC)
        pulled.append((change_seq, "inspection", _Pre(change_seq, encoded)))
    return pulled


def _same(value):
    return value


def _json_fragment(text: str | None, empty: bytes) -> orjson.Fragment:
    """Stored JSON text placed into the page as it is (``empty`` for none stored)."""
    return orjson.Fragment(empty if text in (None, "null") else text)


def encode(value) -> str:
    """Compact JSON text, UTF-8 characters as they are."""
    return jsontext.dumps(value)


def page_json(page: dict) -> bytes:
    """A pull page as UTF-8 JSON; changes already encoded (inspections) are placed as they are."""
    changes = b",".join(c if isinstance(c, bytes) else encode(c).encode() for c in page["changes"])
    rest = encode({k: v for k, v in page.items() if k != "changes"}).encode()
    return b'{"changes":[' + changes + b"]," + rest[1:]


#: What a task brings along, in this order (the rank a cursor counts what was served by).
_ALONG_TARGET, _ALONG_RISK = 0, 1


def _brought_along(policy: Policy, tasks: list[Task], after: int) -> dict[int, list[tuple]]:
    """What the page's ``tasks`` bring along, by task number: (rank, change) pairs.

    A task of a squadron member whose target lies outside their squadron brings the target
    into their scope, and its risk record: records whose own change may lie before the cursor
    (it does when the task is new), so that they would never arrive by themselves. Those that
    do lie before it come with the task, just before it; those after it come in their own
    place. Two queries for the whole page, whatever it holds.
    """
    if policy.role not in SQUADRON_ROLES or not tasks:
        return {}
    wanted = {task.target_id for task in tasks}
    mine = policy.user.squadron_id
    targets = {
        target.id: target
        for target in db.session.scalars(
            sa.select(Target).where(
                Target.id.in_(wanted),
                Target.squadron_id != mine,
                Target.change_seq <= after,
                policy.readable(Target),
            )
        )
    }
    risks = {
        risk.target_id: risk
        for risk in db.session.execute(
            sa.select(*_RISK_COLUMNS).where(
                TargetRisk.target_id.in_(wanted),
                TargetRisk.squadron_id != mine,
                TargetRisk.change_seq <= after,
                policy.readable(TargetRisk),
            )
        )
    }
    along: dict[int, list[tuple]] = {}
    brought = set()  # each record once a page, with the first task that brings it
    for task in sorted(tasks, key=lambda t: t.change_seq):
        for rank, entity, record, dump, key in (
            (_ALONG_TARGET, "target", targets.get(task.target_id), _target, "id"),
            (_ALONG_RISK, "risk", risks.get(task.target_id), _risk, "target_id"),
        ):
            if record is None or (entity, task.target_id) in brought:
                continue
            brought.add((entity, task.target_id))
            change = {
                "entity": entity,
                "id": str(getattr(record, key)),
                "op": "upsert",
                "version": record.version,
                "data": dump(record),
            }
            along.setdefault(task.change_seq, []).append((rank, change))
    return along
