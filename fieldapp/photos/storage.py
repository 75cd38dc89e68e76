"""Where photo bytes live: originals kept byte for byte under their SHA-256, derived sizes
cached beside them, and a staging area for uploads still arriving.

Views and operations use the :class:`PhotoStore` interface only, so an object store (S3, OSS,
MinIO) can replace :class:`FileSystemStore` by implementing the same few methods. Staging stays
on local disk whatever the store: partial uploads are appended to and hashed there.

Layout on disk (``FIELDAPP_STORAGE_DIR``)::

    originals/ab/cd/abcd…(64 hex)          the uploaded bytes, never rewritten
    derived/ab/cd/abcd….thumb.jpg          256×256 box, auto-oriented, no metadata
    derived/ab/cd/abcd….medium.jpg         1280×1280 box, likewise
    staging/<photo id>.part                a resumable upload, appended by PATCH
    staging/tmp-<random>                   a request's body while it is checked

Every file appears under its final name by an atomic rename, so a reader never sees half a
file and two uploads of the same bytes at once simply both rename the same content.

The sweep and uploads of the same bytes meet at the original: an upload whose bytes are
already kept relies on that file, though its row is not committed yet and the sweep cannot see
it. So keeping an original refreshes its modification time, and the sweep deletes one only if
it is still older than its cutoff, both under one lock (``originals.lock``): whichever comes
second sees what the first did.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

DERIVED_SIZES = ("thumb", "medium")


class PhotoStore(Protocol):
    """What fieldapp needs from a place that keeps photo bytes."""

    def has_original(self, sha256: str) -> bool: ...

    def put_original(self, sha256: str, source: Path) -> None:
        """Keep the file at ``source`` (in staging) as the original with this digest; the
        source is consumed. Bytes already kept are marked as just relied on, so that a sweep
        running now with an older cutoff leaves them."""

    def open_original(self, sha256: str) -> BinaryIO:
        """The original's bytes; FileNotFoundError when they are not kept."""

    def delete_original(self, sha256: str, *, unless_used_since: datetime | None = None) -> bool:
        """Remove the original and its derived sizes (the sweep, for unclaimed uploads), unless
        an upload relied on it at ``unless_used_since`` or later; whether it was removed."""

    def open_derived(self, sha256: str, size: str) -> BinaryIO | None:
        """The cached derived image, or None if it was never made (or was evicted)."""

    def put_derived(self, sha256: str, size: str, data: bytes) -> None: ...

    def staging_file(self) -> Path:
        """A new, empty, private file in the staging area."""

    def partial_path(self, photo_id: uuid.UUID) -> Path:
        """Where the resumable upload of ``photo_id`` accumulates."""


class FileSystemStore:
    """Originals and derived sizes content-addressed in a directory tree."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.staging = self.root / "staging"
        self.staging.mkdir(parents=True, exist_ok=True)

    def _sharded(self, area: str, sha256: str, suffix: str = "") -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / area / sha256[:2] / sha256[2:4] / f"{sha256}{suffix}"

    def original_path(self, sha256: str) -> Path:
        return self._sharded("originals", sha256)

    def derived_path(self, sha256: str, size: str) -> Path:
        if size not in DERIVED_SIZES:
            raise ValueError(f"unknown derived size {size!r}")
        return self._sharded("derived", sha256, f".{size}.jpg")

    def has_original(self, sha256: str) -> bool:
        return self.original_path(sha256).is_file()

    @contextlib.contextmanager
    def _originals_locked(self) -> Iterator[None]:
        """Keeping and sweeping originals, one at a time (across processes and threads)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "originals.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def put_original(self, sha256: str, source: Path) -> None:
        target = self.original_path(sha256)
        with self._originals_locked():
            if target.is_file():  # content-addressed: the same bytes are already kept
                os.utime(target)  # relied on now: a sweep's age fence must spare it
                source.unlink(missing_ok=True)
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(source, 0o440)  # evidence: nobody rewrites it in place
            os.replace(source, target)

    def open_original(self, sha256: str) -> BinaryIO:
        return open(self.original_path(sha256), "rb")

    def delete_original(self, sha256: str, *, unless_used_since: datetime | None = None) -> bool:
        target = self.original_path(sha256)
        with self._originals_locked():
            if unless_used_since is not None:
                try:
                    if target.stat().st_mtime >= unless_used_since.timestamp():
                        return False
                except FileNotFoundError:
                    pass  # nothing to keep; its derived sizes go below
            target.unlink(missing_ok=True)
            for size in DERIVED_SIZES:
                self.derived_path(sha256, size).unlink(missing_ok=True)
        return True

    def open_derived(self, sha256: str, size: str) -> BinaryIO | None:
        try:
            return open(self.derived_path(sha256, size), "rb")
        except FileNotFoundError:
            return None

    def put_derived(self, sha256: str, size: str, data: bytes) -> None:
        target = self.derived_path(sha256, size)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, target)

    def staging_file(self) -> Path:
        fd, path = tempfile.mkstemp(dir=self.staging, prefix="tmp-")
        os.close(fd)
        return Path(path)

    def partial_path(self, photo_id: uuid.UUID) -> Path:
        return self.staging / f"{photo_id}.part"
