"""Users with roles, the devices they sign in from, and bearer tokens bound to a device."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldapp.db import BigIntPK, Syncable, UTCDateTime, db, enum_column, new_uuid, utcnow
from fieldapp.org.models import District, Squadron


class Role(enum.StrEnum):
    """What a user may do; officers and leaders are bound to a squadron."""

    officer = "officer"  # 执法队员
    leader = "leader"  # 中队长
    supervisor = "supervisor"  # 督察 / 法制审核
    admin = "admin"


SQUADRON_ROLES = frozenset({Role.officer, Role.leader})


class User(Syncable, db.Model):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    district_id: Mapped[int] = mapped_column(sa.ForeignKey("districts.id"), index=True)
    squadron_id: Mapped[int | None] = mapped_column(sa.ForeignKey("squadrons.id"), index=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    district: Mapped[District] = relationship()
    squadron: Mapped[Squadron | None] = relationship()

    __table_args__ = (
        sa.CheckConstraint(
            "(role NOT IN ('officer', 'leader')) OR squadron_id IS NOT NULL",
            name="squadron_for_squadron_roles",
        ),
    )

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"


class Device(db.Model):
    """A handheld, known by the id it generates for itself (also used in its HLC)."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(120))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    #: Last time the device's clock ran more than a minute ahead of the server's.
    clock_skew_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    last_user: Mapped[User | None] = relationship(foreign_keys=[last_user_id])

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class Token(db.Model):
    """A bearer token; only a keyed hash of it is stored, so a database dump signs nobody in."""

    __tablename__ = "tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    device_id: Mapped[str] = mapped_column(sa.ForeignKey("devices.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
    device: Mapped[Device] = relationship()


#: The audit action of a failed sign-in (``auth.login`` is a successful one). The policy shows
#: those naming no account to admins only.
LOGIN_FAILED = "auth.login_failed"


class LoginFailure(db.Model):
    """One failed sign-in; counted per username to answer 429 after repeated failures."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    remote_addr: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (sa.Index("ix_login_failures_username_at", "username", "at"),)
