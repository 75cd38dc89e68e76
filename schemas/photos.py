"""Photo uploads on the wire: the answer to an upload, the size a GET asks for, and (for the
OpenAPI document only) the bytes and headers the upload views read themselves."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from schemas.common import StrictSchema


class PhotoSizeArgs(StrictSchema):
    size = fields.String(
        load_default="original",
        validate=validate.OneOf(("thumb", "medium", "original")),
        metadata={"description": "thumb fits 256×256, medium 1280×1280; both JPEG, no metadata"},
    )


class ExifLocationSchema(ma.Schema):
    lon = fields.Float()
    lat = fields.Float()
    crs = fields.Constant("wgs84")


class PhotoUploadSchema(ma.Schema):
    """A stored photo's bytes as the server judged them."""

    id = fields.UUID(dump_only=True)
    sha256 = fields.String(dump_only=True)
    size = fields.Integer(dump_only=True)
    content_type = fields.String(dump_only=True, metadata={"description": "judged by content"})
    width = fields.Integer(dump_only=True)
    height = fields.Integer(dump_only=True)
    exif_taken_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    exif_location = fields.Method("_exif_location", dump_only=True, allow_none=True)
    claimed = fields.Boolean(
        dump_only=True, metadata={"description": "photo metadata (sync) names these bytes"}
    )
    stored_at = fields.AwareDateTime(dump_only=True)

    def _exif_location(self, upload):
        if upload.exif_lon is None:
            return None
        return {"lon": upload.exif_lon, "lat": upload.exif_lat, "crs": "wgs84"}


class PartialUploadSchema(ma.Schema):
    """A part kept for a resumable upload (202)."""

    id = fields.UUID(dump_only=True)
    upload_offset = fields.Integer(dump_only=True)
    expected_size = fields.Integer(dump_only=True, allow_none=True)


# -- the photo views' bytes and headers, for the OpenAPI document ---------------------------------
# The views read the body as a stream and the headers themselves (fieldapp/photos/views.py): no
# schema loads them, and these say what they read.

#: What a resumable upload's parts are sent as.
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"

#: The media types a photo's bytes may be sent as; the image is judged by its content.
PHOTO_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "application/octet-stream")

#: Header values are 1 to 15 ASCII digits.
_MAX_HEADER_NUMBER = 10**15 - 1

_BYTES = {"type": "string", "format": "binary"}


def _body(content_types: tuple[str, ...], description: str) -> dict:
    return {
        "required": True,
        "description": description,
        "content": {content_type: {"schema": _BYTES} for content_type in content_types},
    }


PHOTO_BODY = _body(
    PHOTO_CONTENT_TYPES,
    "The photo's bytes, kept unchanged (JPEG, PNG or WebP, judged by content), or the first"
    " part of them (see Upload-Length).",
)
PHOTO_PART_BODY = _body((OFFSET_CONTENT_TYPE,), "The bytes that follow Upload-Offset.")


def sha256_header(*, required: bool) -> dict:
    return {
        "name": "X-Content-SHA256",
        "required": required,
        "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        "description": "the SHA-256 of the whole photo, 64 hex digits",
    }


UPLOAD_LENGTH_HEADER = {
    "name": "Upload-Length",
    "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_HEADER_NUMBER},
    "description": "the size of the whole photo when this request carries only a part of it",
}
UPLOAD_OFFSET_HEADER = {
    "name": "Upload-Offset",
    "required": True,
    "schema": {"type": "integer", "minimum": 0, "maximum": _MAX_HEADER_NUMBER},
    "description": "where this part starts: the Upload-Offset HEAD answered",
}

#: Response headers of the upload views.
UPLOAD_OFFSET = {
    "Upload-Offset": {
        "description": "how many bytes of the photo the server holds",
        "schema": {"type": "integer", "minimum": 0},
    }
}
UPLOAD_STATE = {
    **UPLOAD_OFFSET,
    "Upload-Length": {
        "description": "the size of the whole photo: announced by the upload, or the size its"
        " metadata gives",
        "schema": {"type": "integer", "minimum": 1},
    },
    "X-Content-SHA256": {
        "description": "the SHA-256 of the stored bytes, once stored",
        "schema": {"type": "string"},
    },
}

#: A GET's answer: the original as uploaded, a derived size as JPEG.
IMAGE_CONTENT = {
    content_type: {"schema": _BYTES} for content_type in ("image/jpeg", "image/png", "image/webp")
}
