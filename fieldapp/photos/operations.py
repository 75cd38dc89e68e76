"""Photo uploads: receiving bytes (whole or in resumable parts), judging them, keeping them,
linking them to the metadata that claims them, and sweeping what nobody claimed.

The functions take the actor, the request body as a stream and the store; they never read the
request and never commit (the request's one transaction does). Files are written before the
rows that name them only in staging; an original reaches the store after its row is flushed,
and a rejected upload leaves nothing behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import ClientDisconnected

from fieldapp.actor import Actor
from fieldapp.audit import operations as audit
from fieldapp.auth.models import Role
from fieldapp.auth.policy import Policy
from fieldapp.db import change_counter, db, utcnow
from fieldapp.errors import APIError
from fieldapp.inspections.models import Inspection, inspections_of
from fieldapp.photos import imaging
from fieldapp.photos.models import Photo, PhotoUpload, UploadState
from fieldapp.photos.storage import FileSystemStore, PhotoStore
from sync.models import Conflict, ConflictStatus
from sync.sequence import hold

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
#: Errors after which a resumable upload was discarded: the view commits that removal.
DISCARDING_ERRORS = frozenset({"digest_mismatch", "bad_image", "unsupported_media_type"})
#: Roles that take photos (supervisors write only audit objects).
UPLOADING_ROLES = (Role.officer, Role.leader, Role.admin)


@dataclass(frozen=True)
class PhotoSettings:
    max_bytes: int
    limits: imaging.Limits
    local_zone: str
    unclaimed_hours: int

    @classmethod
    def from_config(cls, config) -> PhotoSettings:
        return cls(
            config["PHOTO_MAX_BYTES"],
            imaging.Limits.from_config(config),
            config["LOCAL_TIMEZONE"],
            config["PHOTO_UNCLAIMED_HOURS"],
        )


def store_for(config) -> PhotoStore:
    """The photo store configured for the app (``FIELDAPP_STORAGE_DIR``)."""
    return FileSystemStore(config["STORAGE_DIR"])


@dataclass
class Outcome:
    """What an upload request achieved: ``created`` (201), ``same`` (200, already stored),
    ``partial`` (bytes kept for a resume: 202 after PUT, 204 after PATCH)."""

    status: str
    upload: PhotoUpload
    offset: int


# -- errors --------------------------------------------------------------------------------------


def digest_mismatch(got: str, expected: str) -> APIError:
    return APIError(
        400,
        "digest_mismatch",
        f"the bytes received hash to {got}, not to the announced {expected}; nothing was kept",
    )


def id_conflict(message: str) -> APIError:
    return APIError(409, "id_conflict", message)


def offset_mismatch(offset: int, message: str) -> APIError:
    return APIError(409, "offset_mismatch", message, headers={"Upload-Offset": str(offset)})


def too_large(limit: int) -> APIError:
    return APIError(413, "payload_too_large", f"a photo may have at most {limit:,} bytes")


# -- who may do what -----------------------------------------------------------------------------


def _metadata(policy: Policy, photo_id: uuid.UUID) -> tuple[Photo | None, bool]:
    """The photo's metadata row (if synced) and whether the actor may read it."""
    photo = db.session.get(Photo, photo_id)
    if photo is None:
        return None, False
    return photo, policy.load_or_none(Photo, photo_id) is not None


def readable_upload(policy: Policy, photo_id: uuid.UUID) -> tuple[Photo | None, PhotoUpload]:
    """The photo's metadata and upload as the actor may read them, else 404.

    A photo with metadata is scoped like its inspection, and an upload that :func:`bars` it
    reads as none (``HEAD`` says 0, ``GET`` 404): the officer's device starts its own bytes
    afresh instead of resuming someone else's. One without is visible to the one who uploaded
    it, admins, and whoever may read an inspection that names it and that its uploader took
    part in as an officer: the inspection claims it (the checks count its bytes as arrived and
    judge its EXIF), so its reviewer sees it too.
    """
    photo, readable = _metadata(policy, photo_id)
    upload = db.session.get(PhotoUpload, photo_id)
    if photo is not None:
        if not readable:
            raise APIError(404, "not_found", "photo not found")
        if upload is not None and bars(photo, upload):
            upload = None  # not the photo's bytes: the next write discards them
    elif upload is None or not (
        upload.uploaded_by_id == policy.user.id
        or policy.role is Role.admin
        or _named_by_a_readable_inspection(policy, upload)
    ):
        raise APIError(404, "not_found", "photo not found")
    if upload is None:
        upload = PhotoUpload(
            id=photo_id,
            state=UploadState.receiving,
            sha256=photo.sha256,
            expected_size=photo.size,
        )
    return photo, upload


def _named_by_a_readable_inspection(policy: Policy, upload: PhotoUpload) -> bool:
    """Whether an inspection the actor may read, with the upload's uploader among its
    officers, names the photo (top-level or in an answer).

    Only the uploader's inspections are searched: they come off the officer index and are
    few, where a squadron's are many and photo references are JSON text; and bytes someone
    uploaded under an id that an inspection they had no part in names do not thereby become
    visible to its readers.
    """
    pattern = f"%{upload.id}%"  # references are written lowercase with hyphens, as str(uuid)
    named = sa.or_(
        sa.cast(Inspection.photo_ids, sa.Text).like(pattern),
        sa.cast(Inspection.answers, sa.Text).like(pattern),
    )
    query = sa.select(Inspection.id).where(
        Inspection.id.in_(inspections_of(upload.uploaded_by_id)),
        policy.readable(Inspection),
        named,
    )
    return db.session.scalar(query.limit(1)) is not None


def upload_length(photo: Photo | None, upload: PhotoUpload) -> int | None:
    """The photo's total size, as far as the server knows it (``HEAD``'s ``Upload-Length``):
    announced by the upload, else by the synced metadata's ``size``."""
    return upload.expected_size or (photo.size if photo is not None else None)


def _authorize_write(policy: Policy, photo: Photo | None, upload: PhotoUpload | None) -> None:
    if policy.role not in UPLOADING_ROLES:
        raise APIError(403, "forbidden", "only officers, leaders and admins upload photos")
    if photo is not None:
        inspection = db.session.get(Inspection, photo.inspection_id)
        if policy.role is not Role.admin and not policy.allows("inspection.edit", inspection):
            raise APIError(403, "forbidden", "only the inspection's officers upload its photos")
    elif (
        upload is not None
        and upload.state is UploadState.receiving
        and upload.uploaded_by_id != policy.user.id
        and policy.role is not Role.admin
    ):
        raise APIError(403, "forbidden", "another user is uploading this photo")


def bars(photo: Photo, upload: PhotoUpload) -> bool:
    """Whether ``upload`` holds (or is receiving) bytes that someone other than the photo's
    creator sent under its id, other than the bytes the metadata names: nothing attached them
    to a record, and they can never become this photo; kept, they would bar the officer's own
    bytes for ever (anyone who may upload can claim an id before its metadata arrives)."""
    return upload.uploaded_by_id != photo.created_by_id and upload.sha256 != photo.sha256


def _without_barring(
    actor: Actor, photo: Photo | None, upload: PhotoUpload | None, store: PhotoStore
) -> PhotoUpload | None:
    """The upload (locked), or None once discarded when it :func:`bars` the photo: what
    :func:`claim` leaves when a request was writing it at that moment."""
    if photo is None or upload is None or not bars(photo, upload):
        return upload
    _discard(actor, upload, store.partial_path(upload.id), "not the bytes the metadata names")
    return None


def _lock_upload(photo_id: uuid.UUID) -> PhotoUpload | None:
    return db.session.scalar(
        sa.select(PhotoUpload).where(PhotoUpload.id == photo_id).with_for_update()
    )


def _start_receiving(
    actor: Actor, photo_id: uuid.UUID, digest: str, expected_size: int | None
) -> PhotoUpload | None:
    """Claim ``photo_id`` for a resumable upload, before any of its bytes are written; None
    when another request claimed it first.

    With no row to lock, the row itself is the lock: a second first part's insert waits on the
    primary key until the first request commits, then fails here instead of writing into the
    first one's file (and instead of a bare 409 at commit).
    """
    upload = PhotoUpload(
        id=photo_id,
        state=UploadState.receiving,
        sha256=digest,
        expected_size=expected_size,
        uploaded_by_id=actor.user_id,
        device_id=actor.device_id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(upload)
    except IntegrityError:
        return None
    return upload


def _raced(photo_id: uuid.UUID, store: PhotoStore) -> APIError:
    """The answer to a first part that lost the race with another one, now committed: where
    that one left the upload (resume from there, as after any part at a wrong offset)."""
    other = _lock_upload(photo_id)
    offset = upload_offset(other, store) if other is not None else 0
    return offset_mismatch(
        offset, f"another part of this photo arrived at the same moment; the server holds {offset}"
    )


# -- receiving bytes -----------------------------------------------------------------------------


def _copy(
    stream: BinaryIO, out: BinaryIO, limit: int, hasher=None, already: int = 0
) -> tuple[int, bool]:
    """Copy the body in chunks (never whole in memory); (bytes copied, client disconnected)."""
    copied = 0
    try:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                return copied, False
            copied += len(chunk)
            if already + copied > limit:
                raise too_large(limit)
            out.write(chunk)
            if hasher is not None:
                hasher.update(chunk)
    except ClientDisconnected:
        return copied, True


def _file_digest(path: Path) -> str:
    with open(path, "rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()


def put_photo(
    actor: Actor,
    policy: Policy,
    photo_id: uuid.UUID,
    stream: BinaryIO,
    digest: str,
    upload_length: int | None,
    settings: PhotoSettings,
    store: PhotoStore,
    content_length: int | None = None,
) -> Outcome:
    """``PUT /photos/<id>``: the whole photo, or its first part when ``upload_length`` (or the
    metadata's size) announces more bytes than arrive, or when the client disconnects (fewer
    bytes than its ``content_length`` arrived)."""
    if upload_length is not None and upload_length > settings.max_bytes:
        raise too_large(settings.max_bytes)
    photo, _ = _metadata(policy, photo_id)
    upload = _lock_upload(photo_id)
    _authorize_write(policy, photo, upload)
    if photo is not None and photo.sha256 != digest:
        raise id_conflict(f"this photo's metadata names other bytes (sha256 {photo.sha256})")
    upload = _without_barring(actor, photo, upload, store)
    if upload is not None and upload.state is UploadState.stored and upload.sha256 != digest:
        raise id_conflict(f"this photo id holds other bytes (sha256 {upload.sha256})")

    staging = store.staging_file()
    try:
        hasher = hashlib.sha256()
        with open(staging, "wb") as out:
            size, disconnected = _copy(stream, out, settings.max_bytes, hasher)
        disconnected = disconnected or (content_length is not None and size < content_length)
        got = hasher.hexdigest()
        expected_size = upload_length or (photo.size if photo is not None else None)
        if got != digest:
            if disconnected or (expected_size is not None and size < expected_size):
                if upload is not None and upload.state is UploadState.stored:
                    raise digest_mismatch(got, digest)
                return _keep_partial(actor, photo_id, upload, staging, digest, expected_size, store)
            raise digest_mismatch(got, digest)
        if upload is not None and upload.state is UploadState.stored:
            if not store.has_original(digest):
                _restore_original(actor, upload, staging, store)
            return Outcome("same", upload, upload.size)
        return _finish(actor, photo_id, upload, staging, digest, size, settings, store)
    finally:
        staging.unlink(missing_ok=True)


def _restore_original(actor: Actor, upload: PhotoUpload, staging: Path, store: PhotoStore) -> None:
    """Keep again the bytes of a stored photo whose original went missing from the store: the
    same bytes (the digest matched), so the evidence is whole again."""
    log.warning("photo %s: its missing original %s was uploaded again", upload.id, upload.sha256)
    store.put_original(upload.sha256, staging)
    audit.record(
        actor,
        "photo.original_restored",
        "photo",
        upload.id,
        after={"sha256": upload.sha256, "size": upload.size},
    )


def _keep_partial(actor, photo_id, upload, staging, digest, expected_size, store) -> Outcome:
    """Keep the bytes in ``staging`` as the first part of a resumable upload (202)."""
    if upload is None:
        upload = _start_receiving(actor, photo_id, digest, expected_size)
        if upload is None:
            raise _raced(photo_id, store)
    else:
        upload.state = UploadState.receiving
        upload.sha256 = digest
        upload.expected_size = expected_size
        db.session.flush()
    # Only now, with the row claimed (or locked), do the bytes become the upload's.
    partial = store.partial_path(photo_id)
    os.replace(staging, partial)
    offset = partial.stat().st_size
    audit.record(
        actor,
        "photo.upload_started",
        "photo",
        photo_id,
        after={"sha256": digest, "expected_size": expected_size, "received": offset},
    )
    return Outcome("partial", upload, offset)


def upload_offset(upload: PhotoUpload, store: PhotoStore) -> int:
    """How many bytes of the photo the server holds (``HEAD``'s ``Upload-Offset``)."""
    if upload.state is UploadState.stored:
        return upload.size
    if not sa.inspect(upload).persistent:
        # No upload row: a part file left by a request rolled back is no one's (the next
        # first part truncates it), so there is nothing to resume from.
        return 0
    try:
        return store.partial_path(upload.id).stat().st_size
    except FileNotFoundError:
        return 0


def append_part(
    actor: Actor,
    policy: Policy,
    photo_id: uuid.UUID,
    stream: BinaryIO,
    offset: int,
    digest: str | None,
    settings: PhotoSettings,
    store: PhotoStore,
    upload_length: int | None = None,
) -> Outcome:
    """``PATCH /photos/<id>``: append the bytes that follow ``offset``; store the photo when
    they complete it (they match the digest). ``upload_length`` (the first part's
    ``Upload-Length``) announces the total when nothing else does."""
    if upload_length is not None and upload_length > settings.max_bytes:
        raise too_large(settings.max_bytes)
    photo, _ = _metadata(policy, photo_id)
    upload = _lock_upload(photo_id)
    if upload is None and photo is None and digest is None:
        raise APIError(404, "not_found", "no upload of this photo to resume; PUT it first")
    # A write: out of scope is 403, as for PUT (API.md), even where reading would be 404.
    _authorize_write(policy, photo, upload)
    upload = _without_barring(actor, photo, upload, store)
    if upload is not None and upload.state is UploadState.stored:
        raise offset_mismatch(upload.size, "the photo is already complete and stored")
    expected_digest = (upload.sha256 if upload else None) or (photo.sha256 if photo else digest)
    if digest is not None and digest != expected_digest:
        raise id_conflict(f"this upload is for other bytes (sha256 {expected_digest})")
    if photo is not None and photo.sha256 != expected_digest:
        raise id_conflict(f"this photo's metadata names other bytes (sha256 {photo.sha256})")

    expected_size = (
        (upload.expected_size if upload else None)
        or (photo.size if photo else None)
        or upload_length
    )
    partial = store.partial_path(photo_id)
    started = upload is None
    if started:
        if offset:
            raise offset_mismatch(0, f"the server holds 0 bytes, not {offset}")
        upload = _start_receiving(actor, photo_id, expected_digest, expected_size)
        if upload is None:
            raise _raced(photo_id, store)
    elif offset and not partial.exists():  # (a part that lost a race with the last one)
        raise offset_mismatch(0, f"the server holds 0 bytes, not {offset}")
    with open(partial, "ab") as out:
        try:
            fcntl.flock(out, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise offset_mismatch(out.tell(), "another part of this photo is arriving") from None
        current = out.seek(0, os.SEEK_END)
        if started and current:
            # Left over from a request whose row was rolled back: this request's row is the
            # only claim on the id now, so no other request is writing here.
            current = out.truncate(0)
        if offset != current:
            raise offset_mismatch(current, f"the server holds {current} bytes, not {offset}")
        _copy(stream, out, settings.max_bytes, already=current)
        out.flush()
        size = out.tell()
    if started:
        audit.record(
            actor,
            "photo.upload_started",
            "photo",
            photo_id,
            after={"sha256": expected_digest, "expected_size": expected_size, "received": size},
        )
    if expected_size is not None and size < expected_size:
        return Outcome("partial", upload, size)
    got = _file_digest(partial)
    if got != expected_digest:
        if expected_size is None:
            return Outcome("partial", upload, size)
        _discard(actor, upload, partial, "digest_mismatch")
        raise digest_mismatch(got, expected_digest)
    staging = store.staging_file()
    os.replace(partial, staging)
    try:
        return _finish(actor, photo_id, upload, staging, got, size, settings, store)
    except APIError as exc:
        _discard(actor, upload, None, exc.error)
        raise
    finally:
        staging.unlink(missing_ok=True)


def _discard(actor: Actor, upload: PhotoUpload, partial: Path | None, why: str) -> None:
    """A rejected upload leaves nothing: its bytes and its row go (the view keeps the row's
    removal although it answers an error; see :data:`DISCARDING_ERRORS`)."""
    if partial is not None:
        partial.unlink(missing_ok=True)
    if sa.inspect(upload).persistent:
        audit.record(
            actor,
            "photo.upload_discarded",
            "photo",
            upload.id,
            before={"sha256": upload.sha256},
            after={"reason": why},
        )
        db.session.delete(upload)
        db.session.flush()


def _finish(
    actor: Actor,
    photo_id: uuid.UUID,
    upload: PhotoUpload | None,
    staging: Path,
    sha256: str,
    size: int,
    settings: PhotoSettings,
    store: PhotoStore,
) -> Outcome:
    """Judge the complete bytes in ``staging``, keep them as the photo's original and mark the
    metadata that names them uploaded."""
    try:
        facts = imaging.inspect_upload(staging, settings.limits, settings.local_zone)
    except imaging.UnsupportedImage as exc:
        raise APIError(415, "unsupported_media_type", str(exc)) from None
    except imaging.BadImage as exc:
        raise APIError(422, "bad_image", str(exc), errors={"body": {"image": [str(exc)]}}) from None
    now = utcnow()
    values = {
        "state": UploadState.stored,
        "sha256": sha256,
        "size": size,
        "expected_size": size,
        "content_type": facts.content_type,
        "width": facts.width,
        "height": facts.height,
        "exif_taken_at": facts.taken_at,
        "exif_lon": facts.lon,
        "exif_lat": facts.lat,
        "stored_at": now,
    }
    if upload is None:
        upload = PhotoUpload(
            id=photo_id, uploaded_by_id=actor.user_id, device_id=actor.device_id, **values
        )
        try:
            with db.session.begin_nested():
                db.session.add(upload)
        except IntegrityError:
            # Another request claimed this id a moment ago: it stored the same bytes, other
            # bytes, or it started a resumable upload (then go on from where that one is).
            upload = _lock_upload(photo_id)
            if upload is None or upload.state is not UploadState.stored:
                raise _raced(photo_id, store) from None
            if upload.sha256 != sha256:
                raise id_conflict("this photo id was just stored with other bytes") from None
            return Outcome("same", upload, upload.size)
    else:
        for name, value in values.items():
            setattr(upload, name, value)
    db.session.flush()
    store.partial_path(photo_id).unlink(missing_ok=True)
    for name, data in facts.derived.items():
        store.put_derived(sha256, name, data)
    store.put_original(sha256, staging)
    photo = _lock_metadata(photo_id)
    if photo is not None:
        mark_uploaded(photo, upload)
    audit.record(
        actor,
        "photo.upload",
        "photo",
        photo_id,
        after={"sha256": sha256, "size": size, "content_type": facts.content_type},
    )
    return Outcome("created", upload, size)


def _lock_metadata(photo_id: uuid.UUID) -> Photo | None:
    """The photo's metadata as committed now, locked, with the change counter taken first (the
    order every writer locks in), or None if there is none.

    Read again rather than trusted from the start of the upload: the bytes take a while, and
    an edit pushed meanwhile (a colleague moving the photo to another item) would make marking
    the version read then a version conflict, refusing bytes that are exactly the ones named;
    metadata pushed meanwhile found no stored bytes to claim, and is claimed here.
    """
    hold(db.session, change_counter)
    return db.session.scalar(
        sa.select(Photo)
        .where(Photo.id == photo_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def mark_uploaded(photo: Photo, upload: PhotoUpload | None) -> bool:
    """Link the metadata to its stored bytes (devices then pull ``uploaded: true``)."""
    if upload is None or upload.state is not UploadState.stored or upload.sha256 != photo.sha256:
        return False
    if not photo.uploaded:
        photo.uploaded = True
        photo.uploaded_at = upload.stored_at
        photo.size = upload.size
        photo.content_type = upload.content_type
    return True


def claim(actor: Actor, photo: Photo) -> None:
    """Called when metadata arrives by sync (``actor`` writes it): an upload already stored is
    claimed by it.

    An upload that :func:`bars` the photo (bytes someone other than its creator stored or began
    to send under the id, other than the bytes the metadata names) is discarded, audited, with
    its part file. Raises ValueError when the creator's own stored upload holds other bytes:
    that device reused an id, and only it can say which photo is meant.
    """
    upload = db.session.get(PhotoUpload, photo.id)
    if upload is None:
        return
    if bars(photo, upload):
        # The push holds the change counter, and an upload holds its row before it takes the
        # counter (docs/sync.md, "One lock order"): waiting here for a row an upload is
        # writing could deadlock. A row held now is left to the writes that follow, which
        # discard it too (``_without_barring``); HEAD and GET already read it as none.
        upload = db.session.scalar(
            sa.select(PhotoUpload)
            .where(PhotoUpload.id == photo.id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if upload is not None and bars(photo, upload):
            partial = store_for(current_app.config).partial_path(upload.id)
            _discard(actor, upload, partial, "other bytes than the metadata names, by someone else")
        return
    if upload.state is UploadState.stored and upload.sha256 != photo.sha256:
        raise ValueError(f"the uploaded photo has other bytes (sha256 {upload.sha256})")
    mark_uploaded(photo, upload)


# -- reading -------------------------------------------------------------------------------------


def open_size(upload: PhotoUpload, size: str, store: PhotoStore) -> BinaryIO:
    """The stored original, or a derived size (made from the original if not cached yet).

    404 when the bytes are missing from the store although the row says stored (a file lost
    on disk, or removed by hand): never a 500. Uploading the same bytes again restores them.
    """
    try:
        if size == "original":
            return store.open_original(upload.sha256)
        cached = store.open_derived(upload.sha256, size)
        if cached is not None:
            return cached
        with store.open_original(upload.sha256) as original:
            data = imaging.derive_from_file(original, size)
    except FileNotFoundError:
        log.error("photo %s: its original %s is missing from the store", upload.id, upload.sha256)
        raise APIError(
            404,
            "not_found",
            "this photo's bytes are missing from the photo store; upload them again (PUT)",
        ) from None
    store.put_derived(upload.sha256, size, data)
    return store.open_derived(upload.sha256, size)


# -- sweeping ------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    unclaimed: int = 0
    unfinished: int = 0
    files: int = 0
    bytes_freed: int = 0


def sweep(
    actor: Actor,
    store: FileSystemStore,
    now: datetime,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SweepReport:
    """Remove uploads that no metadata claimed, and resumable uploads left unfinished, once
    they are older than ``older_than``. A file shared with a kept upload stays."""
    cutoff = now - older_than
    claimed = sa.select(Photo.id).where(Photo.id == PhotoUpload.id).exists()
    stale = db.session.scalars(
        sa.select(PhotoUpload)
        .where(PhotoUpload.updated_at < cutoff, ~claimed)
        .order_by(PhotoUpload.created_at)
    ).all()
    if stale:  # an inspection that names a photo claims it, metadata or not, as does an
        # amendment waiting for the leader that adds it
        referenced = referenced_photo_ids({u.id for u in stale}, progress)
        stale = [u for u in stale if u.id not in referenced]
    stale_unfinished = db.session.scalars(
        sa.select(PhotoUpload).where(
            PhotoUpload.updated_at < cutoff, PhotoUpload.state == UploadState.receiving, claimed
        )
    ).all()
    report = SweepReport()
    doomed = {u.id for u in stale} | {u.id for u in stale_unfinished}
    for number, upload in enumerate([*stale, *stale_unfinished], start=1):
        if upload.state is UploadState.stored:
            report.unclaimed += 1
            shared = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(PhotoUpload)
                .where(PhotoUpload.sha256 == upload.sha256, PhotoUpload.id.not_in(doomed))
            )
            # An upload of the same bytes under another id may be relying on the file right
            # now (its row not committed, so not counted above): the store spares a file
            # relied on since the cutoff.
            if (
                not shared
                and store.has_original(upload.sha256)
                and (dry_run or store.delete_original(upload.sha256, unless_used_since=cutoff))
            ):
                report.files += 1
                report.bytes_freed += upload.size or 0
        else:
            report.unfinished += 1
            partial = store.partial_path(upload.id)
            if partial.exists():
                report.files += 1
                report.bytes_freed += partial.stat().st_size
                if not dry_run:
                    partial.unlink()
        if not dry_run:
            audit.record(
                actor,
                "photo.sweep",
                "photo",
                upload.id,
                before={"state": upload.state.value, "sha256": upload.sha256},
            )
            db.session.delete(upload)
        if progress and number % 500 == 0:
            progress(f"{number:,} of {len(doomed):,} uploads swept")
    report.files += _sweep_orphans(store, cutoff, dry_run, report)
    db.session.flush()
    return report


_HEX64 = re.compile(r"[0-9a-f]{64}")
_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def referenced_photo_ids(
    candidates: set[uuid.UUID], progress: Callable[[str], None] | None = None
) -> set[uuid.UUID]:
    """Which of ``candidates`` some inspection names (top-level or per-answer ``photo_ids``),
    or an open conflict-log entry does (:func:`_waiting_photo_ids`).

    Reads every inspection's photo references as text, a page at a time: the sweep runs daily
    and must never remove a photo an inspection relies on.
    """
    found = _waiting_photo_ids(candidates)
    query = sa.select(
        sa.cast(Inspection.photo_ids, sa.Text), sa.cast(Inspection.answers, sa.Text)
    ).execution_options(yield_per=5000)
    for number, (photo_ids, answers) in enumerate(db.session.execute(query), start=1):
        for text in (photo_ids, answers):
            if text and "-" in text:
                found.update(u for u in map(uuid.UUID, _UUID_TEXT.findall(text)) if u in candidates)
        if progress and number % 100_000 == 0:
            progress(f"{number:,} inspections searched for photo references")
    return found


def _waiting_photo_ids(candidates: set[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``candidates`` an open conflict-log entry names: a photo's metadata waiting
    there (an amendment to an approved inspection: nothing else claims its bytes until the
    leader accepts it), or the device's value of an inspection's entry (its photo list or
    answers, each with ``photo_ids``). Once resolved, the metadata or the record claims them.

    Open entries are few (a leader's queue), so their device values are read whole, as text.
    """
    found: set[uuid.UUID] = set()
    query = sa.select(
        Conflict.entity, Conflict.record_id, sa.cast(Conflict.client_value, sa.Text)
    ).where(Conflict.status == ConflictStatus.open, Conflict.entity.in_(("photo", "inspection")))
    for entity, record_id, client_value in db.session.execute(query):
        if entity == "photo":
            if record_id in candidates:
                found.add(record_id)
        elif client_value and "-" in client_value:
            text = client_value.lower()  # as the device sent it, in whichever case
            found.update(u for u in map(uuid.UUID, _UUID_TEXT.findall(text)) if u in candidates)
    return found


def _sweep_orphans(store: FileSystemStore, cutoff: datetime, dry_run: bool, report) -> int:
    """Files no row names (a request that died between writing and committing)."""
    removed = 0
    known = set(db.session.scalars(sa.select(PhotoUpload.sha256)))
    originals = store.root / "originals"
    for path in originals.rglob("*") if originals.exists() else ():
        if not path.is_file() or path.name in known or not _HEX64.fullmatch(path.name):
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed meanwhile
            continue
        if stat.st_mtime >= cutoff.timestamp():
            continue
        # Checked again under the store's lock: an upload of these bytes may have begun to
        # rely on the file since ``known`` was read, its row not committed yet.
        if dry_run or store.delete_original(path.name, unless_used_since=cutoff):
            removed += 1
            report.bytes_freed += stat.st_size
    for path in store.staging.iterdir():
        if path.stat().st_mtime >= cutoff.timestamp():
            continue
        if path.name.endswith(".part"):
            try:
                upload = db.session.get(PhotoUpload, uuid.UUID(path.name[:-5]))
            except ValueError:
                upload = None
            if upload is not None and upload.state is UploadState.receiving:
                continue
        removed += 1
        report.bytes_freed += path.stat().st_size
        if not dry_run:
            path.unlink(missing_ok=True)
    return removed
