"""What the sync engine stores: processed change ids, every version of every synced record,
the conflict log, tombstones of deleted records, and the records that left a squadron's or a
user's scope."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.db import BigIntPK, JSONType, UTCDateTime, db, enum_column, new_uuid, utcnow


class SyncChange(db.Model):
    """A change that was applied, or refused for good: its first result is replayed when the
    device sends it again."""

    __tablename__ = "sync_changes"

    change_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(sa.String(64))
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    entity: Mapped[str] = mapped_column(sa.String(20))
    record_id: Mapped[uuid.UUID]
    #: SHA-256 of the change's canonical JSON: the same id with another body is id_conflict.
    body_hash: Mapped[str] = mapped_column(sa.String(64))
    result: Mapped[dict | None] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RecordVersion(db.Model):
    """A record as it was at one version, with who changed what, from which device."""

    __tablename__ = "record_versions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    entity: Mapped[str] = mapped_column(sa.String(20))
    record_id: Mapped[uuid.UUID]
    version: Mapped[int]
    data: Mapped[dict] = mapped_column(JSONType)
    changed: Mapped[list[str]] = mapped_column(JSONType, default=list)
    change_id: Mapped[uuid.UUID | None]
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    hlc: Mapped[str | None] = mapped_column(sa.String(90))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("entity", "record_id", "version", name="uq_record_versions_version"),
    )


class ConflictKind(enum.StrEnum):
    field = "field"  # a field changed on both sides; the rule kept one value
    amendment = "amendment"  # an edit to an approved (frozen) record
    delete = "delete"  # a delete of a record that changed since, or was submitted


class ConflictStatus(enum.StrEnum):
    open = "open"
    resolved = "resolved"


class Conflict(db.Model):
    """A value a merge did not keep, kept here with both sides until someone resolves it."""

    __tablename__ = "conflicts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    entity: Mapped[str] = mapped_column(sa.String(20))
    record_id: Mapped[uuid.UUID] = mapped_column(index=True)
    squadron_id: Mapped[int | None] = mapped_column(sa.ForeignKey("squadrons.id"))
    field: Mapped[str | None] = mapped_column(sa.String(60))
    kind: Mapped[ConflictKind] = mapped_column(enum_column(ConflictKind))
    base_value: Mapped[dict | list | str | None] = mapped_column(JSONType)
    server_value: Mapped[dict | list | str | None] = mapped_column(JSONType)
    client_value: Mapped[dict | list | str | None] = mapped_column(JSONType)
    kept: Mapped[str] = mapped_column(sa.String(10))
    record_version: Mapped[int | None]
    change_id: Mapped[uuid.UUID | None]
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[ConflictStatus] = mapped_column(
        enum_column(ConflictStatus), default=ConflictStatus.open
    )
    resolution: Mapped[dict | None] = mapped_column(JSONType)
    resolved_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.Index("ix_conflicts_squadron_status", "squadron_id", "status", "created_at"),
    )


class Tombstone(db.Model):
    """A deleted record: pull returns it as ``op: delete`` in its place in the change order."""

    __tablename__ = "sync_tombstones"

    entity: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    squadron_id: Mapped[int | None] = mapped_column(sa.ForeignKey("squadrons.id"))
    change_seq: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    version: Mapped[int]
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))

    __table_args__ = (sa.Index("ix_sync_tombstones_squadron_seq", "squadron_id", "change_seq"),)


class ScopeExit(db.Model):
    """A record left a squadron (a target moved): that squadron's devices must drop their copy.

    One row per record and squadron it left, so a record that moves twice before the first
    squadron's devices pull still reaches them as a removal. Pulled as ``op: delete``.
    """

    __tablename__ = "sync_scope_exits"

    entity: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"), primary_key=True)
    change_seq: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    version: Mapped[int]
    left_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    moved_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))

    __table_args__ = (sa.Index("ix_sync_scope_exits_squadron_seq", "squadron_id", "change_seq"),)


class UserExit(db.Model):
    """A record left one user's scope, where no squadron's removal reaches them: they read it
    as their own from another squadron (an inspection they co-signed, and its photos; the
    target of a task of theirs, and its risk record). Pulled by that user as ``op: delete``.

    One row per record and user, the latest exit, as :class:`ScopeExit` per squadron.
    """

    __tablename__ = "sync_user_exits"

    entity: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    record_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    change_seq: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    version: Mapped[int]
    left_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    moved_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))

    __table_args__ = (sa.Index("ix_sync_user_exits_user_seq", "user_id", "change_seq"),)


class RemovalsServed(db.Model):
    """How far a device has been served its user's removals (the furthest page of a pull that
    carried a scope exit), and when: from then on the pad knew that the records removed up to
    there were no longer its user's.

    Read by a push that names a target which left the caller's squadron: an inspection begun
    before the pad was told of the move was made in good faith and is applied, filed where the
    target now is; one begun after is refused. Written only by pages that carry a scope exit
    (a few a year per device), so most pulls stay read-only.
    """

    __tablename__ = "sync_removals_served"

    device_id: Mapped[str] = mapped_column(sa.ForeignKey("devices.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    #: The cursor position of that page: every removal numbered up to it had been served.
    change_seq: Mapped[int] = mapped_column(sa.BigInteger)
    served_at: Mapped[datetime] = mapped_column(UTCDateTime)
