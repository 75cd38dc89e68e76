"""Pull cursors: opaque to devices, signed by the server.

A cursor carries the highest change sequence number served, the user it was served to and a
fingerprint of that user's scope (role, squadron, district); after a page that ended inside
the records a change brings along (``sync.pull``), also that change's number and how many of
them were served. The signature makes a forged or
mangled cursor, or one issued to another user, a clear 422 instead of a silent wrong answer; a
changed scope fingerprint tells the device to drop its copy and pull again (``reset``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


class CursorError(ValueError):
    """The cursor is malformed, forged, or was issued to someone else."""


@dataclass(frozen=True)
class Cursor:
    seq: int
    user_id: str
    scope: str
    #: The change (by number) whose brought-along records the page ended among, and how many
    #: of them (by rank, see ``sync.pull``) it served; 0, 0 when the page ended on a change.
    along_of: int = 0
    along_served: int = 0


def scope_fingerprint(role: str, squadron_id: int | None, district_id: int | None) -> str:
    text = f"{role}|{squadron_id}|{district_id}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sign(secret: str, payload: bytes) -> str:
    digest = hmac.new(secret.encode(), b"fieldapp-cursor|" + payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def encode(cursor: Cursor, secret: str) -> str:
    fields = {"s": cursor.seq, "u": cursor.user_id, "f": cursor.scope}
    if cursor.along_of:
        fields["a"] = [cursor.along_of, cursor.along_served]
    payload = json.dumps(fields, separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_sign(secret, payload)}"


def decode(token: str, secret: str) -> Cursor:
    try:
        body, signature = token.split(".")
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, TypeError) as exc:
        raise CursorError("not a cursor this server issued") from exc
    # compare_digest refuses non-ASCII text; a signature this server made is always ASCII.
    if not signature.isascii() or not hmac.compare_digest(signature, _sign(secret, payload)):
        raise CursorError("not a cursor this server issued")
    data = json.loads(payload)
    along_of, along_served = data.get("a", (0, 0))
    return Cursor(
        seq=int(data["s"]),
        user_id=str(data["u"]),
        scope=str(data["f"]),
        along_of=int(along_of),
        along_served=int(along_served),
    )
