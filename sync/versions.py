"""The version history every synced record keeps, whoever changed it (device or server).

Three-way merge needs the record as a device last saw it; a snapshot per version gives it, for
a base weeks old as for one a minute old. Server-side edits (a leader's, an admin's) write their
version here too, and stamp the fields they set with a server clock so that last-writer-wins
compares them fairly with device edits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa

from fieldapp.audit import operations as audit
from fieldapp.db import db
from sync.hlc import HLC
from sync.models import Conflict, ConflictStatus, RecordVersion


def record_version(
    entity: str,
    record,
    data: dict,
    changed: list[str],
    *,
    user_id: uuid.UUID | None,
    device_id: str | None,
    at: datetime,
    change_id: uuid.UUID | None = None,
    hlc: str | None = None,
) -> None:
    db.session.execute(
        sa.insert(RecordVersion.__table__),
        [
            version_values(
                entity,
                record,
                data,
                changed,
                user_id=user_id,
                device_id=device_id,
                at=at,
                change_id=change_id,
                hlc=hlc,
            )
        ],
    )


def version_values(
    entity: str,
    record,
    data: dict,
    changed: list[str],
    *,
    user_id,
    device_id,
    at: datetime,
    change_id=None,
    hlc=None,
    version: int | None = None,
) -> dict:
    """The row of a version snapshot, for callers that insert many at once.

    ``version`` is the record's version once its pending change is flushed, when the caller
    snapshots it before the flush (default: ``record.version``)."""
    return {
        "entity": entity,
        "record_id": record.id,
        "version": record.version if version is None else version,
        "data": data,
        "changed": sorted(changed),
        "change_id": change_id,
        "device_id": device_id,
        "user_id": user_id,
        "hlc": hlc,
        "at": at,
    }


def stamp_server_write(record, fields: list[str], at: datetime) -> str:
    """Set the clocks of ``fields`` to a server clock for ``at`` (and their write version to
    the one the record's flush takes); returns that clock."""
    clock = str(HLC.server(int(at.timestamp() * 1000)))
    record.field_clocks = {**(record.field_clocks or {}), **dict.fromkeys(fields, clock)}
    stamp_versions(record, fields, (record.version or 0) + 1)
    return clock


def stamp_versions(record, keys, version: int) -> None:
    """Note that ``keys`` (fields, ``answers.<code>``) were written at ``version``."""
    if keys:
        record.field_versions = {**(record.field_versions or {}), **dict.fromkeys(keys, version)}


def written_since(record, base_version: int | None) -> frozenset[str]:
    """The fields (and ``answers.<code>``) written after ``base_version``: a field set back to
    its value at the base was still changed by someone."""
    if base_version is None:
        return frozenset()
    return frozenset(k for k, v in (record.field_versions or {}).items() if v > base_version)


def set_history(
    entity: str,
    record,
    base_version: int,
    base: dict,
    removed: Mapping[str, set],
    kept: Mapping[str, set],
    device_id: str | None,
) -> tuple[dict[str, set], dict[str, set]]:
    """What the versions since ``base_version`` did to the set elements a device's change
    touches (per set: ``photo_ids``, ``answers.<code>.photo_ids``; see
    :func:`sync.merge.removals` and :func:`sync.merge.restorations`):

    - of ``removed`` (the device removed them, the record holds them), those the record lacked
      at some version in between: someone removed them and added them back after the base, so
      the device's removal is concurrent with that addition;
    - of ``kept`` (the device holds them as at its base, the record no longer), those last
      removed by this same device: it put them back since, an addition of its own.

    ``base`` is the record at the base. Reads the snapshots since the base, only when there is
    something to look up.
    """
    readded: dict[str, set] = {}
    restored: dict[str, set] = {}
    if not removed and not kept:
        return readded, restored
    snapshots = db.session.execute(
        sa.select(RecordVersion.version, RecordVersion.data, RecordVersion.device_id)
        .where(
            RecordVersion.entity == entity,
            RecordVersion.record_id == record.id,
            RecordVersion.version > base_version,
            RecordVersion.version <= record.version,
        )
        .order_by(RecordVersion.version)
    ).all()
    held = {path: set(_set_at(base, path)) for path in {*removed, *kept}}
    last_remover: dict[tuple[str, str], str | None] = {}
    for version, data, writer in snapshots:
        for path in held:
            now = set(_set_at(data, path))
            for element in held[path] - now:
                last_remover[path, element] = writer
            held[path] = now
            if version < record.version:
                missing = removed.get(path, set()) - now
                if missing:
                    readded.setdefault(path, set()).update(missing)
    for path, elements in kept.items():
        mine = {e for e in elements if device_id and last_remover.get((path, e)) == device_id}
        if mine:
            restored[path] = mine
    return readded, restored


def _set_at(data: dict, path: str) -> list:
    """The elements of the set at ``path`` (``photo_ids``, ``answers.<code>.photo_ids``) in a
    snapshot."""
    if path == "photo_ids":
        return data.get("photo_ids") or []
    _, code, _ = path.split(".")
    return ((data.get("answers") or {}).get(code) or {}).get("photo_ids") or []


def record_left_scope(entity: str, record, squadron_id: int, actor_id, at: datetime) -> None:
    """The record moved out of ``squadron_id``: its devices must drop their copy.

    Stored as a scope exit for that squadron (one per record and squadron, the latest move out
    of it), so it reaches exactly the devices that can no longer see the record, in change order,
    however many times the record moves before they pull.
    """
    from fieldapp.db import change_counter
    from sync.models import ScopeExit
    from sync.sequence import allocate

    seq = allocate(db.session, change_counter, 1)
    exit_ = db.session.get(ScopeExit, (entity, record.id, squadron_id))
    if exit_ is None:
        exit_ = ScopeExit(entity=entity, record_id=record.id, squadron_id=squadron_id)
        db.session.add(exit_)
    exit_.change_seq = seq
    exit_.version = record.version
    exit_.left_at = at
    exit_.moved_by_id = actor_id


def record_left_users(entity: str, records, user_ids, actor_id, at: datetime | None = None) -> None:
    """``records`` (anything with ``id`` and ``version``) left the scope of each of
    ``user_ids``: squadron members who read them as their own from another squadron (see
    :func:`fieldapp.auth.policy.members_elsewhere`), whom no squadron's tombstone or scope exit
    reaches. Their devices must drop their copies.

    Stored as a user exit per record and user (the latest, however many times it left), served
    in change order to that user alone. Numbers are taken now: a caller that decides who lost
    the record by reading other rows (a task's other open tasks) must hold the change counter
    before it reads, so that a concurrent writer's change is either seen or numbered after the
    exit.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    from fieldapp.db import change_counter, utcnow
    from sync.models import UserExit
    from sync.sequence import allocate

    pairs = [(record, user_id) for record in records for user_id in sorted(user_ids)]
    if not pairs:
        return
    # The record's pending edits, if any, are flushed by their own writer: a flush here would
    # give them their change number (and an edit of a batch its version) out of turn.
    with db.session.no_autoflush:
        first = allocate(db.session, change_counter, len(pairs))
        at = at or utcnow()
        rows = [
            {
                "entity": entity,
                "record_id": record.id,
                "user_id": user_id,
                "change_seq": first + offset,
                "version": record.version,
                "left_at": at,
                "moved_by_id": actor_id,
            }
            for offset, (record, user_id) in enumerate(pairs)
        ]
        dialect = db.session.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
            UserExit.__table__
        ).values(rows)
        db.session.execute(
            insert.on_conflict_do_update(
                index_elements=["entity", "record_id", "user_id"],
                set_={
                    name: insert.excluded[name]
                    for name in ("change_seq", "version", "left_at", "moved_by_id")
                },
            )
        )


def open_conflicts_follow(actor, entity: str, record_id, squadron_id: int) -> int:
    """The record moved to ``squadron_id``: its open conflict log entries go with it, into the
    queue of the squadron that now answers for the record (leaders list and settle their own
    squadron's entries; left behind, the old leader could still write a record no longer theirs
    and the new one would never see what waits on it). Resolved entries stay where they were
    settled, as history. Each move is audited; returns how many entries moved.

    The entries are locked as they are read, as resolving locks its entry: a resolve that got
    there first is waited for (and its entry, resolved then, stays), and one that comes after
    finds the entry moved and asks the new squadron.
    """
    moving = db.session.scalars(
        sa.select(Conflict)
        .where(
            Conflict.entity == entity,
            Conflict.record_id == record_id,
            Conflict.status == ConflictStatus.open,
            Conflict.squadron_id.is_distinct_from(squadron_id),
        )
        .with_for_update()
    ).all()
    return move_to_squadron(actor, moving, "conflict.move", "conflict", squadron_id)


def move_to_squadron(actor, rows: list, action: str, entity: str, squadron_id: int) -> int:
    """File ``rows`` (open conflict entries, open complaints: what waits on a squadron's
    leader) under ``squadron_id``, with one audit entry each; returns how many moved."""
    for row in rows:
        audit.record(
            actor,
            action,
            entity,
            row.id,
            before={"squadron_id": row.squadron_id},
            after={"squadron_id": squadron_id},
        )
        row.squadron_id = squadron_id
    return len(rows)
