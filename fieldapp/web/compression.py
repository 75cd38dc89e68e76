"""Compression both ways, for devices on mobile data.

Answers: a first pull brings a squadron's every record (about 1.4 kB of JSON per inspection);
compressed, with whichever of zstd, brotli, gzip or deflate the device accepts, it is a fraction
of that. flask-compress negotiates the encoding from ``Accept-Encoding`` and sets ``Vary``; a
client that asks for none (or for ``identity``) gets the page as it was.

Views opt in with :func:`compressed` rather than every response being compressed: flask-compress
rewrites a strong ETag (``"abc"`` becomes ``"abc:gzip"``), and the records that are updated
with ``If-Match`` would then refuse the ETag their client read.

Requests: a JSON body may be sent compressed, with ``Content-Encoding: gzip`` or ``zstd`` (a
batch of 100 inspections shrinks from about 120 kB to 12 kB). :class:`Request` reads it decoded,
a little at a time, so the size limit (``FIELDAPP_MAX_JSON_BYTES``, 413) holds for the decoded
body and a small body that decodes to gigabytes is refused before it is held. Any other coding,
or a coded body that is not JSON (photos are uploaded as they are), is a 415; a body that does
not decode is a 400 ``malformed_json``, like JSON that does not parse.
"""

from __future__ import annotations

import gzip
import io
import sys
import typing
import zlib

import flask
from flask import Flask
from flask_compress import Compress
from werkzeug.utils import cached_property
from werkzeug.wsgi import get_input_stream

from fieldapp.errors import APIError

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

_compress = Compress()

#: Decorator: the view's successful JSON answers are compressed when the client accepts it.
compressed = _compress.compressed()

#: The content codings a JSON request body may arrive in, each with how to read it decoded.
REQUEST_BODY_READERS: dict[str, typing.Callable[[typing.IO[bytes]], typing.IO[bytes]]] = {
    "gzip": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    "x-gzip": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    "zstd": lambda raw: zstd.ZstdFile(raw, mode="rb"),
}

#: What a body that does not decode raises, by coding library.
_DECODE_ERRORS = (OSError, EOFError, zlib.error, zstd.ZstdError)


class Request(flask.Request):
    """Flask's request, reading a JSON body sent with ``Content-Encoding`` decoded."""

    @cached_property
    def stream(self) -> typing.IO[bytes]:
        # As Werkzeug's own: bounded by Content-Length and by the size limit.
        raw = get_input_stream(self.environ, max_content_length=self.max_content_length)
        coding = self.headers.get("Content-Encoding", "").strip().lower()
        if coding in ("", "identity"):
            return raw
        reader = REQUEST_BODY_READERS.get(coding)
        if reader is None or not self.is_json:
            accepted = ", ".join(sorted(REQUEST_BODY_READERS))
            raise APIError(
                415,
                "unsupported_media_type",
                f"Content-Encoding {coding!r} is not accepted: send a JSON body as it is or "
                f"with one of {accepted}",
                errors={"headers": {"Content-Encoding": [f"not one of {accepted}"]}},
            )
        limit = self.max_content_length if self.max_content_length is not None else sys.maxsize
        return _DecodedBody(reader(raw), coding, limit)


class _DecodedBody(io.RawIOBase):
    """A request body read through its decoder, at most ``limit`` bytes of it.

    Past the limit is a 413 (Werkzeug's own bounded stream would stop there without a word, and
    the body would read as cut-off JSON); what does not decode is a 400.
    """

    def __init__(self, decoded: typing.IO[bytes], coding: str, limit: int):
        self._decoded = decoded
        self._coding = coding
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            # One byte more than is left tells a body over the limit from one that ends at it.
            data = self._decoded.read(min(len(buffer), self._left + 1))
        except _DECODE_ERRORS as exc:
            message = f"the request body is not valid {self._coding}: {exc}"
            raise APIError(
                400, "malformed_json", message, errors={"json": {"_schema": [message]}}
            ) from None
        if len(data) > self._left:
            raise APIError(413, "payload_too_large", "the decoded request body is too large")
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(64 * 1024):
            chunks.append(chunk)
        return b"".join(chunks)


def init_app(app: Flask) -> None:
    app.request_class = Request
    app.config.setdefault("COMPRESS_REGISTER", False)  # only views marked @compressed
    app.config.setdefault("COMPRESS_MIMETYPES", ["application/json"])
    _compress.init_app(app)
