"""JSON text, read and written by orjson wherever it means what the standard library means.

Sync moves thousands of records per request, and the standard library's encoder and decoder
were a tenth of a push. orjson differs from it at a few edges, and there the standard library
still decides, so that nothing a client sees or the database stores changes meaning:

- integers past 64 bits: orjson reads them as floats (the standard library keeps them exact);
- ``NaN`` and ``Infinity``, lone surrogates, non-text keys: orjson refuses to read them.

It writes ``NaN`` as ``null`` (the standard library writes ``NaN``, which is not JSON and which
PostgreSQL refuses); the input schemas let no such number in.

Output is compact UTF-8 text in insertion order, as ``json.dumps(value, ensure_ascii=False,
separators=(",", ":"))`` writes it (floats may be spelled differently, ``0.00001`` for
``1e-05``, and read back to the same number).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

#: 19 digits in a row may be an integer past 64 bits (or just a long string or fraction: then
#: the standard library reads the text, to the same result).
_LONG_DIGITS = re.compile(rb"\d{19}")
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def loads(text: str | bytes) -> Any:
    """Parse JSON text as ``json.loads`` does (and raise what it raises)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    value = read_plain(raw)
    return json.loads(text) if value is NOT_PLAIN else value


#: What :func:`read_plain` answers for text that the standard library must read.
NOT_PLAIN = object()


def read_plain(raw: bytes) -> Any:
    """The value of JSON text if orjson reads it as the standard library would, else
    :data:`NOT_PLAIN`. Text orjson reads holds no lone surrogates, no raw control characters,
    and NUL characters only where it spells them ``\\u0000``."""
    # (Most JSON values in columns are short: no 19-digit run fits, and the search is skipped.)
    if len(raw) >= 19 and _LONG_DIGITS.search(raw) is not None:
        return NOT_PLAIN
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return NOT_PLAIN


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """Compact UTF-8 JSON text. ``default`` turns other objects (datetimes included) into JSON."""
    try:
        return orjson.dumps(value, default=default, option=_PASSTHROUGH).decode()
    except TypeError:  # integers past 64 bits, non-text keys, lone surrogates
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON with :func:`dumps` and :func:`loads` (compact UTF-8, fields in order)."""

    sort_keys = False  # keep fields in schema order: easier to read for people
    ensure_ascii = False  # names and addresses are Chinese: send them as UTF-8 text

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs.keys() <= {"separators"} and kwargs.get("separators", (",", ":")) == (",", ":"):
            return dumps(obj, default=self.default)
        return super().dumps(obj, **kwargs)  # indented, for people (debug mode)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s) if not kwargs else super().loads(s, **kwargs)
