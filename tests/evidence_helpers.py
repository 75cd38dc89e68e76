"""Helpers for photo and check tests: real images made with Pillow, uploads, photo metadata."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile

from PIL import ExifTags, Image

from tests.sync_helpers import FakeDevice, new_inspection


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes_full = (value - degrees) * 60
    minutes = int(minutes_full)
    return float(degrees), float(minutes), round((minutes_full - minutes) * 60, 4)


def make_image(
    width: int = 640,
    height: int = 480,
    fmt: str = "JPEG",
    *,
    gps: tuple[float, float] | None = None,
    taken: str | None = None,
    orientation: int | None = None,
    mode: str = "RGB",
    quality: int = 85,
) -> bytes:
    """An image with a gradient (so it compresses like a photo), optionally with EXIF
    capture time ("YYYY:MM:DD HH:MM:SS", local time), GPS (lon, lat) and orientation."""
    image = Image.linear_gradient("L").resize((width, height)).convert(mode)
    exif = Image.Exif()
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    if taken:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = taken
    if gps:
        ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        ifd[ExifTags.GPS.GPSLongitudeRef] = "E"
        ifd[ExifTags.GPS.GPSLongitude] = _dms(gps[0])
        ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        ifd[ExifTags.GPS.GPSLatitude] = _dms(gps[1])
    out = io.BytesIO()
    options = {"exif": exif} if len(exif) or gps or taken else {}
    if fmt == "JPEG":
        options["quality"] = quality
    image.save(out, fmt, **options)
    return out.getvalue()


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("photo.jpg", make_image(64, 48))
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_photo(api, photo_id, data: bytes, *, digest: str | None = None, headers=None):
    return api.put(
        f"/api/v1/photos/{photo_id}",
        data=data,
        headers={
            "X-Content-SHA256": digest or sha(data),
            "Content-Type": "image/jpeg",
            **(headers or {}),
        },
    )


def patch_part(api, photo_id, offset: int, part: bytes, headers=None):
    return api.patch(
        f"/api/v1/photos/{photo_id}",
        data=part,
        headers={
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **(headers or {}),
        },
    )


def photo_metadata(inspection_id, data: bytes, **overrides) -> dict:
    return {
        "inspection_id": str(inspection_id),
        "taken_at": "2026-11-20T17:35:00+08:00",
        "sha256": sha(data),
        "size": len(data),
        "content_type": "image/jpeg",
        **overrides,
    }


def inspection_with_photo(world, device: FakeDevice, data: bytes, **inspection_fields):
    """Push an inspection by officer1 and officer2 with one photo's metadata; (ids)."""
    inspection_id, photo_id = uuid.uuid4(), uuid.uuid4()
    results = device.push_ok(
        device.change(
            "inspection",
            inspection_id,
            new_inspection(
                world, ["officer1", "officer2"], photo_ids=[str(photo_id)], **inspection_fields
            ),
        ),
        device.change("photo", photo_id, photo_metadata(inspection_id, data)),
    )
    assert [r["status"] for r in results] == ["applied", "applied"], results
    return inspection_id, photo_id
