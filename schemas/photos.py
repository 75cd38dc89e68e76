"""Photo uploads on the wire: the answer to an upload, and the size a GET asks for."""

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
