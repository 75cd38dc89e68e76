"""Photo bytes: ``PUT`` (whole or first part), ``HEAD``/``PATCH`` (resumable), ``GET`` sizes.

The body is read as a stream (``request.stream``), never parsed or held whole: the JSON size
limit does not apply, ``PHOTO_MAX_BYTES`` does.
"""

from __future__ import annotations

import re
import uuid

from flask import current_app, make_response, request, send_file
from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.db import db
from fieldapp.errors import APIError, validation_error
from fieldapp.photos import operations
from fieldapp.photos.models import Photo
from fieldapp.web.requests import current_actor, current_policy, keep_changes_on_error
from schemas.photos import (
    IMAGE_CONTENT,
    OFFSET_CONTENT_TYPE,
    PHOTO_BODY,
    PHOTO_PART_BODY,
    UPLOAD_LENGTH_HEADER,
    UPLOAD_OFFSET,
    UPLOAD_OFFSET_HEADER,
    UPLOAD_STATE,
    PartialUploadSchema,
    PhotoSizeArgs,
    PhotoUploadSchema,
    sha256_header,
)

blp = Blueprint("photos", __name__, description="Photos: upload (resumable) and sizes")

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_DIGITS = re.compile(r"[0-9]{1,15}")  # ASCII only: "²".isdigit() is true, int("²") fails

#: The error answers of an upload (PUT or PATCH), in the words of API.md's Photos.
_UPLOAD_ERRORS = {
    400: "`digest_mismatch`: the bytes do not hash to the digest announced; nothing was kept",
    403: "`forbidden`: only officers, leaders and admins upload, a claimed photo only the"
    " inspection's officers (or an admin), an upload under way only its uploader",
    413: "`payload_too_large`: over the photo size limit (FIELDAPP_PHOTO_MAX_BYTES, 20 MiB by"
    " default), as sent or as announced by Upload-Length",
    415: "`unsupported_media_type`: not JPEG, PNG or WebP, judged by the content",
    422: "`bad_image`: corrupt, or over the pixel limit (decompression bombs); or"
    " `validation_failed`: a header missing or malformed",
}


def _settings() -> operations.PhotoSettings:
    return current_app.extensions["fieldapp.photos"]


def _store():
    return operations.store_for(current_app.config)


def _digest(required: bool) -> str | None:
    raw = request.headers.get("X-Content-SHA256")
    if raw is None:
        if required:
            raise validation_error(
                {"X-Content-SHA256": ["required: the SHA-256 of the photo, 64 hex digits"]},
                location="headers",
            )
        return None
    if not _HEX64.fullmatch(raw.strip()):
        raise validation_error({"X-Content-SHA256": ["64 hex digits"]}, location="headers")
    return raw.strip().lower()


def _header_int(name: str, *, required: bool, minimum: int) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        if required:
            raise validation_error({name: ["required"]}, location="headers")
        return None
    if not _DIGITS.fullmatch(raw.strip()) or int(raw) < minimum:
        raise validation_error({name: [f"a whole number, at least {minimum}"]}, location="headers")
    return int(raw)


def _body():
    """The request body as a stream bounded by the photo size limit (413 beyond it)."""
    request.max_content_length = _settings().max_bytes
    return request.stream


def _with_claim(upload):
    """The upload, telling whether synced metadata claims it (the schema's ``claimed``)."""
    upload.claimed = db.session.get(Photo, upload.id) is not None
    return upload


def _partial(outcome, status: int):
    response = make_response(
        PartialUploadSchema().dump(
            {
                "id": outcome.upload.id,
                "upload_offset": outcome.offset,
                "expected_size": outcome.upload.expected_size,
            }
        ),
        status,
    )
    if status == 204:
        response = make_response("", 204)
    response.headers["Upload-Offset"] = str(outcome.offset)
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/photos/<uuid:photo_id>")
class PhotoResource(MethodView):
    @blp.response(200, PhotoUploadSchema, description="these bytes were already stored")
    @blp.alt_response(201, schema=PhotoUploadSchema, description="stored")
    @blp.alt_response(
        202,
        schema=PartialUploadSchema,
        description="first part kept; PATCH on",
        headers=UPLOAD_OFFSET,
    )
    @blp.errors(
        why={
            **_UPLOAD_ERRORS,
            409: "`id_conflict`: this id holds other bytes, or its metadata names other bytes",
        }
    )
    @blp.headers(sha256_header(required=True), UPLOAD_LENGTH_HEADER)
    @blp.doc(requestBody=PHOTO_BODY)
    def put(self, photo_id: uuid.UUID):
        """Upload a photo's bytes (JPEG, PNG or WebP, judged by content), kept unchanged.

        Idempotent: the same bytes again answer 200, other bytes 409 ``id_conflict``. With an
        ``Upload-Length`` larger than the body (or when the connection drops), the bytes that
        arrived are kept and the upload resumes with ``HEAD`` and ``PATCH``.
        """
        digest = _digest(required=True)
        upload_length = _header_int("Upload-Length", required=False, minimum=1)
        outcome = operations.put_photo(
            current_actor(),
            current_policy(),
            photo_id,
            _body(),
            digest,
            upload_length,
            _settings(),
            _store(),
            content_length=request.content_length,
        )
        if outcome.status == "partial":
            return _partial(outcome, 202)
        return _with_claim(outcome.upload), 201 if outcome.status == "created" else 200

    @blp.response(204, description="part appended", headers=UPLOAD_OFFSET)
    @blp.alt_response(
        201, schema=PhotoUploadSchema, description="the last part: stored", headers=UPLOAD_OFFSET
    )
    @blp.errors(
        why={
            **_UPLOAD_ERRORS,
            404: "`not_found`: no upload of this photo to resume (PUT it first), or a photo out"
            " of the caller's scope",
            409: "`offset_mismatch`: Upload-Offset is not where the server's bytes end (the"
            " Upload-Offset header of this answer is), or the photo is stored already;"
            " `id_conflict`: the upload is for other bytes",
            415: f"`unsupported_media_type`: parts are sent as {OFFSET_CONTENT_TYPE}; or the"
            " photo is not JPEG, PNG or WebP, judged by the content",
        },
        headers={409: UPLOAD_OFFSET},
    )
    @blp.headers(UPLOAD_OFFSET_HEADER, UPLOAD_LENGTH_HEADER, sha256_header(required=False))
    @blp.doc(requestBody=PHOTO_PART_BODY)
    def patch(self, photo_id: uuid.UUID):
        """Append a part at ``Upload-Offset`` (``Content-Type: application/offset+octet-stream``).

        When the bytes are complete and match the digest (from the photo's metadata, or the
        ``X-Content-SHA256`` of the first part) the photo is judged and stored: 201.
        """
        if request.mimetype != OFFSET_CONTENT_TYPE:
            raise APIError(415, "unsupported_media_type", f"send parts as {OFFSET_CONTENT_TYPE}")
        offset = _header_int("Upload-Offset", required=True, minimum=0)
        upload_length = _header_int("Upload-Length", required=False, minimum=1)
        digest = _digest(required=False)
        try:
            outcome = operations.append_part(
                current_actor(),
                current_policy(),
                photo_id,
                _body(),
                offset,
                digest,
                _settings(),
                _store(),
                upload_length=upload_length,
            )
        except APIError as exc:
            if exc.error in operations.DISCARDING_ERRORS:
                keep_changes_on_error()  # the discarded upload's row goes with the answer
            raise
        if outcome.status == "partial":
            return _partial(outcome, 204)
        response = make_response(PhotoUploadSchema().dump(_with_claim(outcome.upload)), 201)
        response.headers["Upload-Offset"] = str(outcome.offset)
        return response

    @blp.response(
        200,
        description="Upload-Offset: the bytes held (the size once stored); Upload-Length: the "
        "total announced by the upload or the metadata's size; X-Content-SHA256: their digest, "
        "once stored",
        headers=UPLOAD_STATE,
    )
    def head(self, photo_id: uuid.UUID):
        """How many bytes the server holds (``Upload-Offset``), to resume an upload.

        Once the photo is stored, ``X-Content-SHA256`` names its bytes, as ``GET`` of the
        original does: a device whose answer to its last part was lost learns whether its own
        bytes are the ones kept.
        """
        photo, upload = operations.readable_upload(current_policy(), photo_id)
        response = make_response("", 200)
        response.headers["Upload-Offset"] = str(operations.upload_offset(upload, _store()))
        length = operations.upload_length(photo, upload)
        if length:
            response.headers["Upload-Length"] = str(length)
        if upload.state is operations.UploadState.stored:
            response.headers["X-Content-SHA256"] = upload.sha256
        response.headers["Cache-Control"] = "no-store"
        return response

    @blp.arguments(PhotoSizeArgs, location="query")
    @blp.response(200, description="the image")
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.headers("IF_NONE_MATCH")
    @blp.doc(
        responses={
            200: {
                "content": IMAGE_CONTENT,
                "headers": {
                    "ETag": {"schema": {"type": "string"}},
                    "X-Content-SHA256": {
                        "description": "size=original: the SHA-256 of the bytes",
                        "schema": {"type": "string"},
                    },
                },
            }
        }
    )
    def get(self, args, photo_id: uuid.UUID):
        """The photo: ``original`` (the bytes as uploaded), or ``medium`` / ``thumb`` (JPEG,
        auto-oriented, metadata stripped). Scoped like the inspection it belongs to."""
        _, upload = operations.readable_upload(current_policy(), photo_id)
        if upload.state is not operations.UploadState.stored:
            raise APIError(404, "not_found", "this photo has not been uploaded (yet)")
        size = args["size"]
        stream = operations.open_size(upload, size, _store())
        response = send_file(
            stream,
            mimetype=upload.content_type if size == "original" else "image/jpeg",
            etag=f"{upload.sha256}-{size}",
            conditional=True,
            max_age=86400,
        )
        response.headers["Cache-Control"] = "private, max-age=86400, immutable"
        if size == "original":  # so anyone holding the file can check it is the evidence
            response.headers["X-Content-SHA256"] = upload.sha256
        return response
