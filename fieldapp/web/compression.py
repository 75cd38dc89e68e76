"""Compressed pull pages, for devices on mobile data.

A first pull brings a squadron's every record (about 1.4 kB of JSON per inspection); compressed,
with whichever of zstd, brotli, gzip or deflate the device accepts, it is a fraction of that.
flask-compress negotiates the encoding from ``Accept-Encoding`` and sets ``Vary``; a client that
asks for none (or for ``identity``) gets the page as it was.

Views opt in with :func:`compressed` rather than every response being compressed: flask-compress
rewrites a strong ETag (``"abc"`` becomes ``"abc:gzip"``), and the records that are updated
with ``If-Match`` would then refuse the ETag their client read.
"""

from __future__ import annotations

from flask import Flask
from flask_compress import Compress

_compress = Compress()

#: Decorator: the view's successful JSON answers are compressed when the client accepts it.
compressed = _compress.compressed()


def init_app(app: Flask) -> None:
    app.config.setdefault("COMPRESS_REGISTER", False)  # only views marked @compressed
    app.config.setdefault("COMPRESS_MIMETYPES", ["application/json"])
    _compress.init_app(app)
