"""Audit entries and the head of their hash chain. The application only ever inserts entries.

Each entry's ``hash`` is SHA-256 over its canonical JSON (``fieldapp/audit/chain.py``), which
includes ``prev_hash``, the hash of the entry before it: changing, removing or reordering any
entry breaks every link after it. ``audit_chain_head`` holds the last ``seq`` and ``hash``, so
that removing entries from the end is seen too, and its row lock is what orders writers (see
docs/audit.md).

``district_id`` says whose supervisors read the entry (the district of the record it is about,
else of its actor, when it was written; docs/audit.md). It is stored beside the hashed fields,
not hashed, like ``request_id``.

``before`` and ``after`` are plain JSON (``json`` on PostgreSQL, not ``jsonb``): the database
keeps the text as written, so a value reads back exactly as it was hashed (``jsonb`` would
rewrite ``1e+16`` as ``10000000000000000``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.db import BigIntPK, JSONAsWritten, UTCDateTime, db

#: ``prev_hash`` of the first entry.
GENESIS_HASH = "0" * 64


class AuditEntry(db.Model):
    __tablename__ = "audit_entries"

    #: 1, 2, 3, ... without gaps, handed out in commit order by the chain head (not a sequence).
    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    request_id: Mapped[str | None] = mapped_column(sa.String(64))
    #: The district whose supervisors read the entry; None for an entry about no district's
    #: record by no user (operator commands). Not hashed. No foreign key: a check on every
    #: entry written would cost each commit for nothing (districts are never deleted).
    district_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(sa.String(60))
    entity: Mapped[str] = mapped_column(sa.String(40))
    record_id: Mapped[str | None] = mapped_column(sa.String(64))
    before: Mapped[dict | None] = mapped_column(JSONAsWritten)
    after: Mapped[dict | None] = mapped_column(JSONAsWritten)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))

    # With seq last, "newest first" pages of a record's or an actor's entries are index scans
    # that cost the same however long the log grows.
    __table_args__ = (
        sa.Index("ix_audit_entries_entity_record_seq", "entity", "record_id", "seq"),
        sa.Index("ix_audit_entries_actor_seq", "actor_id", "seq"),
        sa.Index("ix_audit_entries_district_seq", "district_id", "seq"),
        sa.Index("ix_audit_entries_at", "at"),
    )


#: One row (id 1): the last entry's ``seq`` and ``hash``. A writer updates it right before it
#: commits; its row lock orders the writers' entries (docs/audit.md).
audit_chain_head = sa.Table(
    "audit_chain_head",
    db.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
