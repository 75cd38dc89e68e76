"""Photo metadata, as devices report it through sync."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from fieldapp.db import JSONType, Syncable, UTCDateTime, db, enum_column, new_uuid, utcnow


class Photo(Syncable, db.Model):
    """One photo. It belongs to an inspection (and optionally one checklist item of it)."""

    __tablename__ = "photos"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    inspection_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("inspections.id", ondelete="CASCADE"), index=True
    )
    #: Copied from the inspection: photos are scoped like the inspection they belong to.
    squadron_id: Mapped[int] = mapped_column(sa.ForeignKey("squadrons.id"), index=True)
    item_code: Mapped[str | None] = mapped_column(sa.String(16))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lon: Mapped[float | None]
    lat: Mapped[float | None]
    accuracy_m: Mapped[float | None]
    location_original: Mapped[dict | None] = mapped_column(JSONType)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    content_type: Mapped[str] = mapped_column(sa.String(40))
    uploaded: Mapped[bool] = mapped_column(default=False)
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    field_clocks: Mapped[dict] = mapped_column(JSONType, default=dict)
    #: The version its metadata was last written at (the version also moves when the bytes
    #: are stored, which edits nothing a device wrote).
    metadata_version: Mapped[int] = mapped_column(default=1, server_default=sa.text("1"))
    #: Field -> the version an edit last wrote it at (none: the create's).
    field_versions: Mapped[dict] = mapped_column(
        JSONType, default=dict, server_default=sa.text("'{}'")
    )

    __table_args__ = (sa.Index("ix_photos_squadron_seq", "squadron_id", "change_seq"),)


class UploadState(enum.StrEnum):
    """``receiving``: part of the bytes are on disk, waiting for the rest (resumable);
    ``stored``: the whole photo matched its digest, passed validation and is kept for good."""

    receiving = "receiving"
    stored = "stored"


class PhotoUpload(db.Model):
    """The bytes of a photo, as uploaded (``PUT``/``PATCH /photos/<id>``).

    Keyed by the photo's id like :class:`Photo`, but independent of it: a device may upload
    before or after it syncs the metadata. The metadata row claims the upload; an upload no
    metadata claims is swept after ``PHOTO_UNCLAIMED_HOURS``. The original bytes live in the
    photo store under their SHA-256 (several ids may share one file).
    """

    __tablename__ = "photo_uploads"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    state: Mapped[UploadState] = mapped_column(enum_column(UploadState))
    #: The digest the bytes must match (given by the first part or by the metadata).
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    #: The total size announced (``Upload-Length`` or the metadata's size), if any.
    expected_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: Judged from the content: image/jpeg, image/png or image/webp.
    content_type: Mapped[str | None] = mapped_column(sa.String(40))
    width: Mapped[int | None]
    height: Mapped[int | None]
    #: From the EXIF data: capture time (UTC) and GPS position (WGS-84, as cameras record it).
    exif_taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exif_lon: Mapped[float | None]
    exif_lat: Mapped[float | None]
    uploaded_by_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    device_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
