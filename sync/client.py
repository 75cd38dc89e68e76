"""The reference device client: a local SQLite outbox, push with retries, pull to a local copy.

Device teams port this to their platform; tests and benchmarks drive the server with it.

    client = SyncClient("https://fieldapp.example/api/v1", "pad.sqlite3", device_id="pad-0042")
    client.login("officer1", "secret")
    client.save("inspection", inspection_id, {...all fields...})   # offline: queued
    client.save("inspection", inspection_id, {"findings": "..."})  # an edit: only what changed
    photo_id = client.add_photo("IMG_0042.jpg", inspection_id, taken_at="2026-11-20T09:41:00+08:00")
    client.sync()                                                  # push, upload photos, pull
    client.get("inspection", inspection_id)                        # the local copy
    client.failed()                                                # changes the server refused

How it behaves:

- Every change gets a ``change_id`` and an HLC when it is saved, and keeps them however often it
  is sent, so a batch re-sent after a lost answer has no second effect on the server.
- Transport failures (no answer, or one cut off), 408, 429 and 5xx answers (a proxy's HTML
  page too) are retried with exponential backoff and jitter, waiting at least what
  ``Retry-After`` asks (seconds or a date; the same batch, the same ids) up to ``max_wait_s``
  (beyond it the call ends with the server's answer and the next sync tries); a batch the server
  finds too large goes in halves. A change rejected for a reason that can pass (its record's
  create has not arrived: ``not_found``) stays queued and goes again once the create has gone
  (at most ``MAX_WAITS`` sends); one rejected for good is kept aside with its error for the
  app to show, never silently dropped, and the pad shows the record as the server holds it
  again. A correction of a refused create is a new save, which goes as the create of the
  whole record.
- ``base_version`` is the version of the record the device last had from the server. A batch
  holds one change of each record, so a change queued behind another of the same record edits
  the version the first one made.
- An edit folds into the record's queued change only when it rewrites everything that change
  wrote, so every value keeps the clock of the moment it was written; answers merge item by item.
- Pull applies upserts and deletes to the local copy and keeps the cursor, with unsent edits on
  top (and the server's record kept beside, to show again where an edit is refused or loses a
  conflict); ``reset``, a cursor the server no longer takes, or another user signing in drop
  the copy (but not records only this device has) and pull again. A record deleted here is kept
  aside until the server applies the delete, and comes back if it refuses.
- Pads are shared between shifts: each change goes with its author's token only, so an
  officer's queued work waits through a colleague's shift for them to sign in again.
- Several clients may open one file (an app's screen and its background sync): what each reads
  and then writes is one write transaction, and a change being sent is never altered.
- Bodies go as compact UTF-8 JSON, gzip-compressed above a kilobyte (a batch of 100 inspections
  is about 12 kB instead of 120 kB), and pull pages come back compressed (zstd or gzip).
- A photo is two things: its metadata, a ``photo`` change queued like any other, and its bytes,
  uploaded from the file in parts (``PUT`` of the first, ``PATCH`` of the rest). An upload cut
  off anywhere resumes where the server's ``Upload-Offset`` says, never from the start; bytes the
  server refuses for good (not an image, other bytes under the same id) are kept aside with the
  error, like a refused change; an upload throttled (429) or timed out (408) stays pending.
- :meth:`SyncClient.sync` always tells what its push did: an upload that fails after it leaves
  the photo pending, and a sync that raises keeps the results for the next report.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import sqlite3
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

import requests

#: Rejections worth retrying on a later push (the situation can change), by error code.
RETRYABLE_REJECTIONS = frozenset({"not_found", "version_conflict"})
#: HTTP answers that mean "try again later" for the whole request.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
#: Of those, the ones that say nothing of the server's health: "not now" (a gateway
#: throttling a busy hour, a proxy timing a slow upload out). A photo upload still meeting one
#: after every retry stays pending for the next call.
_NOT_NOW = frozenset({408, 429})
#: How many pushes a change refused for a reason that can pass may wait before it is kept
#: aside as failed (the record it waits for never came: its create failed, say).
MAX_WAITS = 10
#: The HLC counter's four digits.
MAX_HLC_COUNTER = 9999


def merge_fields(into: dict, fields: dict) -> dict:
    """``fields`` on top of ``into``: a later edit's fields replace an earlier one's, except
    ``answers``, merged item by item (an edit sends only the items it changed)."""
    merged = {**into, **fields}
    if isinstance(into.get("answers"), dict) and isinstance(fields.get("answers"), dict):
        merged["answers"] = {**into["answers"], **fields["answers"]}
    return merged


def clock_keys(fields: dict) -> set[str]:
    """What each carries its own clock on the server: a field, or one answer item."""
    keys = {name for name in fields if name != "answers"}
    if isinstance(fields.get("answers"), dict):
        keys |= {f"answers.{code}" for code in fields["answers"]}
    return keys


def _edit_base(waiting: list[dict], fields: dict, shown: int | None) -> int | None:
    """The base of an edit: the version the pad shows, unless the edit rewrites a field (or
    answer item) that a change still ``waiting`` (the record's outbox, oldest first) wrote. The
    local copy shows that change's value over whatever version a pull brought since, so the
    officer has not seen that version's value: the edit goes, whole, on the earliest such
    change's base (the answer to that change sets it, see ``SyncClient._settle``). Other fields
    of the edit then meet colleagues' writes since as concurrent: logged, never replaced
    unseen."""
    written_on: dict[str, int | None] = {}
    for change in waiting:
        if change["op"] == "upsert":
            for key in clock_keys(change["fields"]):
                written_on.setdefault(key, change["base_version"])
    bases = [written_on[key] for key in clock_keys(fields) if key in written_on]
    if not bases:
        return shown
    if None in bases:  # a create whose answer is still to come: earliest of all
        return None
    return min(bases)


def _not_unicode(value, path: str = "") -> str | None:
    """Where in ``value`` (a save's fields) text holds an unpaired surrogate, which no UTF-8
    body can carry: ``answers.S01.note``, say; None if nowhere."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        items = [(str(key), item) for key, item in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(str(n), item) for n, item in enumerate(value)]
    else:
        return None
    for key, item in items:
        where = f"{path}.{key}" if path else key
        if _not_unicode(key) is not None:  # named as it can be shown: \ud83c
            return where.encode("utf-8", "backslashreplace").decode()
        found = _not_unicode(item, where)
        if found is not None:
            return found
    return None


class TransportError(Exception):
    """The request may or may not have reached the server; its answer did not come back."""


@dataclass
class Response:
    status: int
    body: Any
    headers: dict


class Transport(Protocol):
    """How the client reaches the server. ``json_body`` is sent as JSON; ``body`` (bytes) as it
    is, with the ``Content-Type`` the headers give. The answer's body is read as JSON, or kept
    as bytes with ``raw`` (an image) when the answer is a success."""

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        params: dict | None = None,
        headers: dict | None = None,
        raw: bool = False,
    ) -> Response: ...


#: JSON bodies at least this long are sent gzip-compressed (``Content-Encoding: gzip``).
COMPRESS_BODIES_FROM = 1024


class RequestsTransport:
    """HTTP with ``requests``, keeping connections alive between calls.

    ``compress_bodies=False`` sends every body as it is (for a server older than request-body
    compression, which answers a compressed one with 415)."""

    def __init__(self, base_url: str, timeout: float = 30.0, compress_bodies: bool = True):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.timeout = timeout
        self.compress_bodies = compress_bodies

    def request(
        self, method, path, *, json_body=None, body=None, params=None, headers=None, raw=False
    ) -> Response:
        headers = dict(headers or {})
        data = body
        if json_body is not None:
            # Chinese text as UTF-8 (3 bytes a character), not as \uXXXX escapes (6).
            data = json.dumps(
                json_body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            headers["Content-Type"] = "application/json"
            if self.compress_bodies and len(data) >= COMPRESS_BODIES_FROM:
                data = gzip.compress(data, compresslevel=6)
                headers["Content-Encoding"] = "gzip"
        try:
            answer = self.session.request(
                method,
                self.base_url + path,
                data=data,
                params=params,
                headers=headers,
                timeout=self.timeout,
            )
        except _MISCONFIGURED:
            raise  # a wrong base URL: no retry mends it
        except requests.RequestException as exc:
            # Refused, timed out, or cut off mid-answer (a server restarting, a 4G link
            # dropping: ChunkedEncodingError, ContentDecodingError): the answer did not come.
            raise TransportError(str(exc)) from exc
        if raw and answer.ok:
            return Response(answer.status_code, answer.content, dict(answer.headers))
        return Response(answer.status_code, _json_body(answer), dict(answer.headers))


#: Errors of the client's own making (the base URL), not of the network: raised as they are.
_MISCONFIGURED = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)


def _someone_else_answered(method: str, response: Response, request: dict) -> bool:
    """Whether a success answer cannot be the server's: every one it gives with a body is a
    JSON object, so a 200 of HTML is a captive portal's login page (a shop's or a metro
    station's Wi-Fi) or a proxy's, and the request never reached the server. Images
    (``raw``), HEAD and 204 carry no JSON."""
    return (
        200 <= response.status < 300
        and response.status != 204
        and method != "HEAD"
        and not request.get("raw")
        and not isinstance(response.body, dict)
    )


def _json_body(answer: requests.Response) -> Any:
    """The answer's JSON, or None when it says it is something else: a proxy in front of a
    restarting server answers 502 or 503 with an HTML page, whose status must still be seen
    (and retried). JSON that does not parse came back cut short: :class:`TransportError`."""
    if not answer.content:
        return None
    media_type = answer.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        return None
    try:
        return answer.json()
    except ValueError as exc:  # requests' JSONDecodeError, whichever json library it uses
        raise TransportError(f"the answer is not whole JSON: {exc}") from exc


def _header(response: Response, name: str) -> str | None:
    """A response header, whatever the case of its name."""
    wanted = name.lower()
    return next((value for key, value in response.headers.items() if key.lower() == wanted), None)


def _retry_after(response: Response, now: float) -> float:
    """How long the answer's ``Retry-After`` asks to wait, in seconds: delta-seconds or an
    HTTP-date (proxies and load balancers send dates; RFC 9110 10.2.3). 0 without one, or for
    a value that is neither (the client's own backoff then stands)."""
    value = (_header(response, "Retry-After") or "").strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0.0
    if when.tzinfo is None:  # "-0000": UTC, says RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _names(response: Response, field: str) -> bool:
    """Whether an error answer names ``field`` among those at fault (in any location)."""
    errors = response.body.get("errors") if isinstance(response.body, dict) else None
    return isinstance(errors, dict) and any(
        isinstance(fields, dict) and field in fields for fields in errors.values()
    )


def _upload_offset(response: Response) -> int:
    """The answer's ``Upload-Offset``: how many of the photo's bytes the server holds."""
    value = _header(response, "Upload-Offset")
    if value is None or not (value.isascii() and value.isdigit()):
        raise SyncError(response)
    return int(value)


@dataclass
class SyncReport:
    """What one :meth:`SyncClient.sync` did."""

    #: The server's result for each change sent, in order (see API.md, "Push").
    results: list[dict]
    #: Photo id -> the state its upload was left in (``stored``, ``failed`` or ``pending``).
    uploads: dict[str, str]
    #: How many changes the pull applied to the local copy.
    pulled: int

    @property
    def conflicts(self) -> list[dict]:
        """Changes where a field was changed on both sides: the server's rule chose, and the
        value it did not keep is in the conflict log for the squadron leader."""
        return [result for result in self.results if result["status"] == "conflict"]

    @property
    def rejected(self) -> list[dict]:
        """Changes the server refused in this sync, with its error (some wait and go again)."""
        return [result for result in self.results if result["status"] == "rejected"]


class SyncError(Exception):
    """The server refused a whole request (not a single change)."""

    def __init__(self, response: Response):
        body = response.body if isinstance(response.body, dict) else {}
        super().__init__(f"{response.status} {body.get('error')}: {body.get('message')}")
        self.response = response


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id TEXT NOT NULL UNIQUE,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    body TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    -- The user who saved it (their id): it goes with their token only. NULL: saved before
    -- anyone signed in, or by a client older than this column; it goes with anyone's.
    author TEXT
);
-- A record's queued changes, found at every save and every settled answer.
CREATE INDEX IF NOT EXISTS outbox_record ON outbox (entity, record_id, seq);
CREATE TABLE IF NOT EXISTS records (
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER,
    data TEXT,
    -- The record as the server sent it (at ``version``), kept while queued edits lie over it
    -- in ``data``: what the pad shows again when one of them is refused or loses. NULL when
    -- ``data`` is the server's record as it is (or the record is only on this pad).
    server TEXT,
    PRIMARY KEY (entity, id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
-- Records the officer deleted, kept until the server has applied the delete: a delete it
-- refuses (a submitted record, one a colleague changed) brings the record back.
CREATE TABLE IF NOT EXISTS deleted (
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER,
    data TEXT,
    PRIMARY KEY (entity, id)
);
CREATE TABLE IF NOT EXISTS uploads (
    photo_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',  -- pending, stored, failed
    error TEXT,
    author TEXT  -- as in the outbox: uploaded with its author's token only
);
"""
#: Columns added since the first release, for files written by an older client.
_ADDED_COLUMNS = (("outbox", "author"), ("records", "server"), ("uploads", "author"))

#: Part size of photo uploads: small enough that a dropped 4G link re-sends little of a photo.
UPLOAD_PART_BYTES = 256 * 1024
#: Upload errors that mean "ask the server how far it is"; any other 4xx is final.
_RESUMING_UPLOAD_ERRORS = frozenset({"not_found", "offset_mismatch"})
#: What the server takes, told apart by the file's first bytes (it judges by content too).
_IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def image_content_type(head: bytes) -> str | None:
    """JPEG, PNG or WebP by the first bytes of the file; None for anything else."""
    for signature, content_type in _IMAGE_SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


class SyncClient:
    def __init__(
        self,
        transport: Transport | str,
        db_path: str,
        device_id: str,
        *,
        batch_size: int = 100,
        max_attempts: int = 6,
        backoff_s: float = 0.2,
        max_wait_s: float = 120.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.transport = RequestsTransport(transport) if isinstance(transport, str) else transport
        self.device_id = device_id
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        #: The longest wait a Retry-After may impose within one call; a server or proxy asking
        #: for more (a maintenance window) ends the call with its answer instead of blocking
        #: the app's sync for hours. Nothing queued is lost: the next sync sends it.
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.sleep = sleep
        self.db = sqlite3.connect(db_path)
        # WAL: a save or a settled batch costs one write to the log instead of rewriting the
        # database and a rollback journal; a crash still loses nothing committed.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        with self._writing():
            for table, column in _ADDED_COLUMNS:
                if column not in {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")

    @contextmanager
    def _writing(self):
        """One write transaction, taken before its first read, so that another client on the
        same file (the app's screen saving while a background service syncs) never writes
        between what this one reads and what it writes from that: an edit folded into a change
        that was being sent, or a change's body rewritten from a stale read, would be lost.
        Nested uses are part of the outer one."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.rollback()
            raise
        self.db.commit()

    # -- local state ---------------------------------------------------------------------------

    def _meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value: str | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def token(self) -> str | None:
        return self._meta("token")

    def get(self, entity: str, record_id) -> dict | None:
        row = self.db.execute(
            "SELECT data FROM records WHERE entity = ? AND id = ?", (entity, str(record_id))
        ).fetchone()
        return json.loads(row[0]) if row and row[0] is not None else None

    def version(self, entity: str, record_id) -> int | None:
        row = self.db.execute(
            "SELECT version FROM records WHERE entity = ? AND id = ?", (entity, str(record_id))
        ).fetchone()
        return row[0] if row else None

    def records(self, entity: str) -> dict[str, dict]:
        return {
            record_id: json.loads(data)
            for record_id, data in self.db.execute(
                "SELECT id, data FROM records WHERE entity = ? AND data IS NOT NULL", (entity,)
            )
        }

    def pending(self) -> int:
        """How many changes are queued on this pad (a colleague's too, which wait for them)."""
        return self.db.execute("SELECT count(*) FROM outbox WHERE failed = 0").fetchone()[0]

    def failed(self) -> list[dict]:
        """Changes the server refused for good, with its error, for the app to show."""
        return [
            {**json.loads(body), "error": json.loads(error) if error else None}
            for body, error in self.db.execute(
                "SELECT body, error FROM outbox WHERE failed = 1 ORDER BY seq"
            )
        ]

    # -- clock ---------------------------------------------------------------------------------

    def next_hlc(self) -> str:
        """A hybrid logical clock: never goes backwards, even when the wall clock does."""
        now_ms = int(self.clock() * 1000)
        last_ms, last_counter = (int(x) for x in (self._meta("hlc") or "0:0").split(":"))
        if now_ms > last_ms:
            physical, counter = now_ms, 0
        elif last_counter < MAX_HLC_COUNTER:
            physical, counter = last_ms, last_counter + 1
        else:  # the counter has four digits: move on a millisecond instead
            physical, counter = last_ms + 1, 0
        self._set_meta("hlc", f"{physical}:{counter}")
        return f"{physical:016d}:{counter:04d}:{self.device_id}"

    # -- working offline -------------------------------------------------------------------------

    def save(self, entity: str, record_id, fields: dict, *, op: str = "upsert") -> str:
        """Queue a change (a create with all fields, or an edit with what changed) and apply it
        to the local copy. Returns its change id. ``ValueError`` if ``fields`` is not JSON
        (``NaN`` or an infinity, say: the server could never take it), holds text no UTF-8 body
        can carry (an unpaired surrogate: half of an emoji), or if a delete has any.

        An edit of a record whose last change has not been sent yet is folded into that change
        when it rewrites everything that change wrote (so a create and its edits travel as one
        create); otherwise it is a change of its own, so that each value keeps the clock of the
        moment it was written. A delete replaces an edit not sent yet. Once a change has been
        sent, it is never altered, or a retry would no longer be the same change.
        """
        record_id = str(record_id)
        if op == "delete" and fields:
            raise ValueError(f"{entity} {record_id}: a delete carries no fields")
        try:
            json.dumps(fields, ensure_ascii=False, allow_nan=False).encode()
        except UnicodeEncodeError:
            raise ValueError(
                f"{entity} {record_id}: {_not_unicode(fields)} holds text that is not Unicode"
                " (half of a character: an unpaired surrogate)"
            ) from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{entity} {record_id}: the fields are not JSON ({exc})") from None
        with self._writing():
            if entity == "photo" and op == "delete":
                # A photo the officer discarded: its bytes are not evidence of anything.
                self.db.execute(
                    "DELETE FROM uploads WHERE photo_id = ? AND state != 'stored'", (record_id,)
                )
            author = self._meta("user")
            waiting = self.db.execute(
                "SELECT seq, body, sent, author FROM outbox"
                " WHERE entity = ? AND record_id = ? AND failed = 0 ORDER BY seq",
                (entity, record_id),
            ).fetchall()
            last = waiting[-1] if waiting else None
            # Only an unsent change of the same author takes the edit in: a colleague's goes
            # with their token, and must not carry this officer's edit.
            unsent = json.loads(last[1]) if last and not last[2] and last[3] == author else None
            shown = self.version(entity, record_id)
            if op == "delete" and entity != "track" and not waiting and shown is None:
                # A record only this pad has (its create was refused, kept in failed()): the
                # server never stored it, so a delete would only be refused in turn. It goes
                # from the pad; the refusal stays in failed() for the app to show.
                self.db.execute(
                    "DELETE FROM records WHERE entity = ? AND id = ?", (entity, record_id)
                )
                return str(uuid.uuid4())
            if op == "upsert" and entity != "track" and not waiting and shown is None:
                # Nothing of the record is queued and the server never gave a version: a
                # record only this pad has, whose create was refused (kept aside in failed()).
                # The officer's correction goes as a create of the record as the pad shows it.
                fields = merge_fields(self.get(entity, record_id) or {}, fields)
            base = (
                _edit_base([json.loads(body) for _, body, _, _ in waiting], fields, shown)
                if op == "upsert" and entity != "track"
                else shown
            )
            if unsent and unsent["op"] == "upsert" and entity != "track":
                change_id = self._fold(last[0], unsent, entity, record_id, op, fields, base)
                if change_id:
                    return change_id
            return self._queue(entity, record_id, op, fields, base, author)

    def _fold(
        self, seq: int, unsent: dict, entity: str, record_id: str, op: str, fields: dict, base
    ) -> str | None:
        """Fold a save into the record's last change, ``unsent``, where the rule allows (see
        :meth:`save`); its change id, or None when the save is to be a change of its own."""
        creating = unsent["base_version"] is None and not self._server_may_know(entity, record_id)
        if op == "delete" and creating:
            # Created and deleted before the server heard of it: nothing to send.
            if self._unless_sent("DELETE FROM outbox WHERE seq = ?", seq):
                self.db.execute(
                    "DELETE FROM records WHERE entity = ? AND id = ?", (entity, record_id)
                )
                return unsent["change_id"]
            return None
        if op == "delete":
            # The edit not sent yet is moot: the delete goes in its place, on the version the
            # pad showed.
            unsent.update(
                op="delete",
                fields={},
                hlc=self.next_hlc(),
                base_version=self.version(entity, record_id),
            )
            if self._unless_sent(
                "UPDATE outbox SET body = ? WHERE seq = ?", json.dumps(unsent), seq
            ):
                self._delete_locally(entity, record_id)
                return unsent["change_id"]
            return None
        if creating or (
            clock_keys(unsent["fields"]) <= clock_keys(fields) and base == unsent["base_version"]
        ):
            unsent["fields"] = merge_fields(unsent["fields"], fields)
            unsent["hlc"] = self.next_hlc()
            if self._unless_sent(
                "UPDATE outbox SET body = ? WHERE seq = ?", json.dumps(unsent), seq
            ):
                self._apply_locally(entity, record_id, fields)
                return unsent["change_id"]
        return None

    def _unless_sent(self, statement: str, *params) -> bool:
        """Run ``statement`` (ending ``WHERE seq = ?``) on an outbox change only while it has
        not been sent; whether it ran. Once sent, a change is never altered: a retry must be
        the same change."""
        return self.db.execute(statement + " AND sent = 0", params).rowcount > 0

    def _queue(
        self,
        entity: str,
        record_id: str,
        op: str,
        fields: dict,
        base: int | None,
        author: str | None,
    ) -> str:
        """Put a new change in the outbox and apply it to the local copy; its change id."""
        change_id = str(uuid.uuid4())
        body = {
            "change_id": change_id,
            "entity": entity,
            "id": record_id,
            "op": op,
            "base_version": base,
            "hlc": self.next_hlc(),
            "fields": fields,
        }
        self.db.execute(
            "INSERT INTO outbox (change_id, entity, record_id, body, author)"
            " VALUES (?, ?, ?, ?, ?)",
            (change_id, entity, record_id, json.dumps(body), author),
        )
        if op == "delete":
            self._delete_locally(entity, record_id)
        elif entity != "track":
            self._apply_locally(entity, record_id, fields)
        return change_id

    def _server_may_know(self, entity: str, record_id: str) -> bool:
        """Whether the server has (or may have) the record: a version from it, or a change of
        it sent whose answer has not come back."""
        if self.version(entity, record_id) is not None:
            return True
        return (
            self.db.execute(
                "SELECT 1 FROM outbox WHERE entity = ? AND record_id = ? AND sent = 1"
                " AND failed = 0",
                (entity, record_id),
            ).fetchone()
            is not None
        )

    def _apply_locally(self, entity: str, record_id: str, fields: dict) -> None:
        """Lay a saved change over the local copy, keeping the server's record it lies over."""
        row = self.db.execute(
            "SELECT version, data, server FROM records WHERE entity = ? AND id = ?",
            (entity, record_id),
        ).fetchone()
        version, data, server = row or (None, None, None)
        if server is None and version is not None:
            server = data  # the first edit over the server's record
        local = json.loads(data) if data is not None else {}
        self.db.execute(
            "INSERT OR REPLACE INTO records (entity, id, version, data, server)"
            " VALUES (?, ?, ?, ?, ?)",
            (entity, record_id, version, json.dumps(merge_fields(local, fields)), server),
        )

    def _delete_locally(self, entity: str, record_id: str) -> None:
        """Take the record out of the local copy, keeping it aside until the server has
        applied the delete (it may refuse it)."""
        self.db.execute(
            "INSERT OR REPLACE INTO deleted (entity, id, version, data)"
            " SELECT entity, id, version, data FROM records WHERE entity = ? AND id = ?",
            (entity, record_id),
        )
        self.db.execute("DELETE FROM records WHERE entity = ? AND id = ?", (entity, record_id))

    # -- talking to the server -------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        headers: dict | None = None,
        retry_statuses: frozenset[int] = RETRYABLE_STATUS,
        signed: bool = True,
        **kwargs,
    ) -> Response:
        """One request, retried with backoff while the network or the server is failing; with
        the signed-in user's token unless ``signed`` is false."""
        auth = {"Authorization": f"Bearer {self.token}"} if signed and self.token else {}
        headers = auth | (headers or {})
        for attempt in range(self.max_attempts):
            try:
                response = self.transport.request(method, path, headers=headers, **kwargs)
            except TransportError:
                response = None
            if response is not None and _someone_else_answered(method, response, kwargs):
                response = None  # a Wi-Fi login page: the server was not reached
            if response is not None and response.status not in retry_statuses:
                return response
            if attempt + 1 == self.max_attempts:
                if response is None:
                    raise TransportError(
                        f"{method} {path}: no answer after {self.max_attempts} attempts"
                    )
                return response
            delay = self.backoff_s * (2**attempt) * random.uniform(0.5, 1.5)
            if response is not None:
                asked = _retry_after(response, self.clock())
                if asked > self.max_wait_s:
                    return response
                delay = max(delay, asked)
            self.sleep(delay)
        raise AssertionError("unreachable")

    def login(self, username: str, password: str, device_name: str | None = None) -> dict:
        """Sign in on this pad; returns the user. Pads are shared between shifts: when another
        user signs in than the last one, the local copy (the last user's scope) is dropped and
        the next pull brings the new user's. Changes a user queued stay queued, and go when
        that user signs in again (:meth:`push`)."""
        response = self._call(
            "POST",
            "/auth/token",
            json_body={
                "username": username,
                "password": password,
                "device_id": self.device_id,
                "device_name": device_name,
            },
            # Too many attempts: the officer is told at once (the answer says how long to
            # wait), rather than the sign-in screen hanging for a quarter of an hour.
            retry_statuses=RETRYABLE_STATUS - {429},
            # Whoever signs in is named by the body; the last user's token would name them.
            signed=False,
        )
        if response.status != 201:
            raise SyncError(response)
        user = response.body["user"]
        with self._writing():
            if self._meta("user") not in (None, str(user["id"])):
                # The server refuses one user's cursor to another (422), and the copy holds
                # what the last user may see.
                self._start_over()
            self._set_meta("user", str(user["id"]))
            self._set_meta("token", response.body["token"])
        return user

    def push(self) -> list[dict]:
        """Send the outbox in batches until it is empty or only holds changes that must wait;
        returns the server's result for each change sent, in order.

        Only the signed-in user's changes go: a colleague's, queued on this pad before a shift
        change, wait for them to sign in again (their token, their scope). A batch holds one
        change of each record: a later change of the same record goes in the next batch, once
        the first one's answer says which version it edits. A change refused for a reason that
        can pass (``not_found``: a photo queued before its inspection's create) waits while the
        rest of the outbox goes, and is sent once more when the rest has applied something (its
        result then comes twice). A batch the server finds too large (413) is sent in halves."""
        results: list[dict] = []
        self._push(results)
        return results

    def _push(self, results: list[dict]) -> None:
        """:meth:`push`, adding each result to ``results`` as its batch is settled (so that
        what settled is known even when a later batch raises)."""
        skip: set[int] = set()
        progressed = False  # something applied since the waiting changes were last sent
        limit = self.batch_size
        while True:
            # The batch is read and marked sent in one transaction: a save on another client
            # of this file then folds its edit into a change only before it is marked.
            with self._writing():
                rows = self._next_batch(skip, limit)
                batch = [self._ready(seq, body, sent) for seq, body, sent in rows]
                self.db.executemany(
                    "UPDATE outbox SET sent = 1 WHERE seq = ? AND sent = 0",
                    [(seq,) for seq, _, sent in rows if not sent],
                )
            if not rows and skip and progressed:
                skip.clear()
                progressed = False
                continue
            if not rows:
                return
            response = self._call(
                "POST",
                "/sync/push",
                json_body={
                    "device_id": self.device_id,
                    "changes": batch,
                },
            )
            if response.status == 413 and len(rows) > 1:
                limit = max(1, len(rows) // 2)
                continue
            if response.status == 413:  # one change alone is too large: it never will go
                with self._writing():
                    self._fail(rows[0][0], batch[0], response.body)
                continue
            if response.status != 200:
                raise SyncError(response)
            with self._writing():
                for (seq, _, _), change, result in zip(
                    rows, batch, response.body["results"], strict=True
                ):
                    results.append(result)
                    self._settle(seq, change, result, skip)
                    progressed = progressed or result["status"] != "rejected"

    def _ready(self, seq: int, body: str, sent: int) -> dict:
        """A change of the batch as it goes."""
        change = json.loads(body)
        if not sent and change["base_version"] is None and change["op"] == "upsert":
            # Queued before the record's create was acknowledged: now we know which version
            # it edits. (Only ever done before the first send.)
            known = self.version(change["entity"], change["id"])
            if known is not None:
                change["base_version"] = known
                self.db.execute(
                    "UPDATE outbox SET body = ? WHERE seq = ?", (json.dumps(change), seq)
                )
        return change

    def _fail(self, seq: int, body: dict, error) -> None:
        """Keep a change aside for good, with the server's error, and show the record as the
        server holds it: a refused delete gives the record back, a refused edit its value
        before. A refused create stays shown (only this pad has it, for the officer to
        correct), and the record's next queued change, an edit of it, becomes its create."""
        self.db.execute(
            "UPDATE outbox SET failed = 1, error = ? WHERE seq = ?", (json.dumps(error), seq)
        )
        entity, record_id = body["entity"], body["id"]
        if body["op"] == "delete":
            self._undelete(entity, record_id)
        elif entity == "track":
            pass
        elif body["base_version"] is None and self.version(entity, record_id) is None:
            self._create_again(entity, record_id)
        else:
            self._rebuild(entity, record_id)

    def _create_again(self, entity: str, record_id: str) -> None:
        """After a refused create, the record's first change still queued (an edit of the
        record that was to be created, if not sent yet) carries the whole record as the refused
        changes before it wrote it, so the server can take it as the create."""
        merged: dict = {}
        for seq, body, sent, failed in self.db.execute(
            "SELECT seq, body, sent, failed FROM outbox WHERE entity = ? AND record_id = ?"
            " ORDER BY seq",
            (entity, record_id),
        ).fetchall():
            change = json.loads(body)
            if failed:
                if change["op"] == "upsert":
                    merged = merge_fields(merged, change["fields"])
                continue
            if not sent and change["op"] == "upsert" and change["base_version"] is None:
                change["fields"] = merge_fields(merged, change["fields"])
                self.db.execute(
                    "UPDATE outbox SET body = ? WHERE seq = ?", (json.dumps(change), seq)
                )
            return

    def _logged_not_stored(self, entity: str, record_id: str, create: dict, queued) -> None:
        """After a create the server logged instead of storing: the record's next change still
        to be sent carries the create's fields, so it goes whole, and waits beside the create
        in the log (sent bare, it was refused for the fields the create held); with none, the
        copy the server does not hold leaves the pad, as a record whose push lost does."""
        for later_seq, later, sent in queued:
            change = json.loads(later)
            if not sent and change["op"] == "upsert" and change["base_version"] is None:
                change["fields"] = merge_fields(create["fields"], change["fields"])
                self.db.execute(
                    "UPDATE outbox SET body = ? WHERE seq = ?", (json.dumps(change), later_seq)
                )
                return
        if not queued:
            self.db.execute("DELETE FROM records WHERE entity = ? AND id = ?", (entity, record_id))

    def _undelete(self, entity: str, record_id: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO records (entity, id, version, data)"
            " SELECT entity, id, version, data FROM deleted WHERE entity = ? AND id = ?",
            (entity, record_id),
        )
        self.db.execute("DELETE FROM deleted WHERE entity = ? AND id = ?", (entity, record_id))

    def _next_batch(self, skip: set[int], limit: int) -> list[tuple]:
        """The next changes to send, oldest first: at most ``limit``, one of each record, none
        of another user's, and none of a record whose earlier change waits (``skip``, or
        another user's)."""
        me = self._meta("user")
        rows, records, waiting = [], set(), set()
        # Read on until the batch is full: rows of records that wait, or of records already in
        # the batch, may stand in front of any number of others.
        for seq, entity, record_id, body, sent, author in self.db.execute(
            "SELECT seq, entity, record_id, body, sent, author FROM outbox WHERE failed = 0"
            " ORDER BY seq"
        ):
            key = (entity, record_id)
            if seq in skip or key in waiting or author not in (None, me):
                waiting.add(key)
                continue
            if key in records:
                continue  # in a later batch, after this one's answer
            records.add(key)
            rows.append((seq, body, sent))
            if len(rows) == limit:
                break
        return rows

    def _settle(self, seq: int, body: dict, result: dict, skip: set[int]) -> None:
        entity, record_id = body["entity"], body["id"]
        if result["status"] == "rejected":
            error = result["error"] or {}
            counted = self.db.execute(
                "UPDATE outbox SET attempts = attempts + 1 WHERE seq = ? RETURNING attempts",
                (seq,),
            ).fetchone()
            if counted is None:
                return  # settled already, by another client of this file
            if error.get("error") in RETRYABLE_REJECTIONS and counted[0] < MAX_WAITS:
                skip.add(seq)  # later, after the changes it waits for
            else:
                self._fail(seq, body, error)
            return
        if self.db.execute("DELETE FROM outbox WHERE seq = ?", (seq,)).rowcount == 0:
            return  # settled already, by another client of this file (the same answer)
        if entity == "track":
            return
        if body["op"] == "delete":
            if result["status"] == "applied":
                self.db.execute(
                    "DELETE FROM deleted WHERE entity = ? AND id = ?", (entity, record_id)
                )
            else:  # refused: the record stays on the server, and comes back here
                self._undelete(entity, record_id)
            return
        row = self.db.execute(
            "SELECT version, data, server FROM records WHERE entity = ? AND id = ?",
            (entity, record_id),
        ).fetchone()
        held = row[0] if row else None
        queued = self.db.execute(
            "SELECT seq, body, sent FROM outbox WHERE entity = ? AND record_id = ? AND failed = 0",
            (entity, record_id),
        ).fetchall()
        if (
            result["status"] == "conflict"
            and body["base_version"] is None
            and held is None
            and result["version"] is None
        ):
            # A create the server logged instead of storing (a photo of an inspection deleted
            # meanwhile, a new photo of an approved one): it holds no such record, and no pull
            # will ever remove this copy. The entry in the conflict log keeps what was sent.
            self._logged_not_stored(entity, record_id, body, queued)
            return
        if result["status"] == "applied":
            # The base was current: changes of the record queued on the same base edit the
            # version this one made.
            for later_seq, later, sent in queued:
                change = json.loads(later)
                if not sent and change["base_version"] == body["base_version"]:
                    change["base_version"] = result["version"]
                    self.db.execute(
                        "UPDATE outbox SET body = ? WHERE seq = ?", (json.dumps(change), later_seq)
                    )
        if row is None:
            return
        if held is not None and result["version"] <= held:
            # The pad holds that version, or a later one, already: pulled while the change
            # waited (a lost answer, a replayed one), shown with the change laid over it. Where
            # the server kept its own value (a conflict, a later write), that is its value:
            # show the server's record, under what is still queued.
            self._rebuild(entity, record_id)
        elif result["status"] == "applied":
            # The local copy is the server's new version, under what is still queued of it.
            server = None
            if queued:
                _, data, kept = row
                before = kept if kept is not None else (data if held is not None else "{}")
                server = json.dumps(merge_fields(json.loads(before), body["fields"]))
            self.db.execute(
                "UPDATE records SET version = ?, server = ? WHERE entity = ? AND id = ?",
                (result["version"], server, entity, record_id),
            )
        # Else merged or a conflict into a version the pad has not seen: the next pull brings
        # it, with what is still queued laid over it.

    def _rebuild(self, entity: str, record_id: str) -> None:
        """Show the server's record again, with the changes still queued of it laid over it:
        after a change was refused for good, or lost to a value the server kept."""
        row = self.db.execute(
            "SELECT server FROM records WHERE entity = ? AND id = ?", (entity, record_id)
        ).fetchone()
        if row is None or row[0] is None:
            return  # nothing laid over the server's record, or only this pad has the record
        edits = self._unsent_fields(entity, record_id).get((entity, record_id))
        server = json.loads(row[0])
        data = merge_fields(server, edits) if edits else server
        self.db.execute(
            "UPDATE records SET data = ?, server = ? WHERE entity = ? AND id = ?",
            (json.dumps(data), row[0] if edits else None, entity, record_id),
        )

    def pull(self, limit: int = 500) -> int:
        """Bring the local copy up to date; returns how many changes were applied.

        The pad starts over (drops its copy and pulls without a cursor) when the server says
        so (``reset``) and when it no longer takes the cursor (a 422 naming it: the server's
        secret key changed, say). Queued changes stay, and stay shown."""
        applied = 0
        while True:
            params = {"limit": limit}
            cursor = self._meta("cursor")
            if cursor:
                params["cursor"] = cursor
            response = self._call("GET", "/sync/pull", params=params)
            if response.status == 422 and cursor and _names(response, "cursor"):
                with self._writing():
                    self._start_over()
                continue
            if response.status != 200:
                raise SyncError(response)
            page = response.body
            with self._writing():
                if page.get("reset"):
                    self._start_over()
                    continue
                unsent = self._unsent_fields()
                for change in page["changes"]:
                    self._apply(change, unsent)
                    applied += 1
                self._set_meta("cursor", page["cursor"])
            if not page["has_more"]:
                break
        return applied

    def _start_over(self) -> None:
        """Drop the local copy and the cursor, so that the next pull brings everything again,
        except what only this pad has: records whose create is queued (sent or not: one sent
        whose answer is lost may come back, or not, if the scope changed) or was refused (for
        the officer to correct)."""
        self.db.execute(
            "DELETE FROM records WHERE version IS NOT NULL OR NOT EXISTS (SELECT 1 FROM outbox o"
            " WHERE o.entity = records.entity AND o.record_id = records.id"
            " AND json_extract(o.body, '$.base_version') IS NULL)"
        )
        self._set_meta("cursor", None)

    def _unsent_fields(
        self, entity: str | None = None, record_id: str | None = None
    ) -> dict[tuple[str, str], dict | None]:
        """Fields of queued local edits, by record (all, or the one named): they stay on top of
        what the server sends. None for a record the officer deleted (the delete not applied
        yet)."""
        if entity is None:
            rows = self.db.execute(
                "SELECT entity, record_id, body FROM outbox WHERE failed = 0 ORDER BY seq"
            )
        else:
            rows = self.db.execute(
                "SELECT entity, record_id, body FROM outbox"
                " WHERE entity = ? AND record_id = ? AND failed = 0 ORDER BY seq",
                (entity, record_id),
            )
        edits: dict[tuple[str, str], dict | None] = {}
        for entity, record_id, body in rows:
            change = json.loads(body)
            key = (entity, record_id)
            if change["op"] == "delete":
                edits[key] = None
            elif edits.get(key, {}) is not None:
                edits[key] = merge_fields(edits.get(key, {}), change["fields"])
        return edits

    def _apply(self, change: dict, unsent: dict[tuple[str, str], dict | None]) -> None:
        key = (change["entity"], change["id"])
        if change["op"] == "delete":
            for table in ("records", "deleted"):
                self.db.execute(f"DELETE FROM {table} WHERE entity = ? AND id = ?", key)
            return
        local_edits = unsent.get(key, {})
        if local_edits is None:
            # Deleted here, the delete not applied yet: keep the news aside with the record,
            # in case the server refuses the delete.
            self.db.execute(
                "UPDATE deleted SET version = ?, data = ? WHERE entity = ? AND id = ?",
                (change["version"], json.dumps(change["data"]), *key),
            )
            return
        if local_edits:
            data = json.dumps(merge_fields(change["data"], local_edits))
            server = json.dumps(change["data"])
        else:
            data, server = json.dumps(change["data"]), None
        self.db.execute(
            "INSERT OR REPLACE INTO records (entity, id, version, data, server)"
            " VALUES (?, ?, ?, ?, ?)",
            (*key, change["version"], data, server),
        )

    # -- photos ----------------------------------------------------------------------------------

    def add_photo(
        self,
        path: str | Path,
        inspection_id,
        *,
        taken_at: str | datetime,
        item_code: str | None = None,
        location: dict | None = None,
        photo_id=None,
    ) -> str:
        """Queue a photo taken for an inspection: its metadata as a ``photo`` change, its bytes
        for :meth:`upload_photos`. Returns the photo id, for the inspection's ``photo_ids`` or
        an answer's.

        The file is read now for its digest and size, and again when it is uploaded: it must
        stay where it is, unchanged, until :meth:`uploads` says it is stored (the server keeps
        the bytes as evidence and refuses others under the same id). ``ValueError`` if it is
        not a JPEG, PNG or WebP image.
        """
        path = Path(path)
        with open(path, "rb") as source:
            head = source.read(12)
            source.seek(0)
            digest = hashlib.file_digest(source, "sha256").hexdigest()
            size = source.tell()
        content_type = image_content_type(head)
        if content_type is None:
            raise ValueError(f"{path}: not a JPEG, PNG or WebP image")
        if isinstance(taken_at, datetime):
            if taken_at.tzinfo is None:
                raise ValueError("taken_at needs a time zone")
            taken_at = taken_at.isoformat()
        photo_id = str(photo_id or uuid.uuid4())
        fields = {
            "inspection_id": str(inspection_id),
            "taken_at": taken_at,
            "sha256": digest,
            "size": size,
            "content_type": content_type,
        }
        if item_code is not None:
            fields["item_code"] = item_code
        if location is not None:
            fields["location"] = location
        try:
            with self._writing():
                self.db.execute(
                    "INSERT INTO uploads (photo_id, path, sha256, size, content_type, author)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (photo_id, str(path.resolve()), digest, size, content_type, self._meta("user")),
                )
                self.save("photo", photo_id, fields)
        except sqlite3.IntegrityError:
            raise ValueError(f"photo {photo_id} is already queued on this device") from None
        return photo_id

    def uploads(self) -> list[dict]:
        """Every photo queued on this device: ``state`` is ``pending`` (bytes not all on the
        server yet), ``stored``, or ``failed`` with the server's ``error`` (for the app to show)."""
        return [
            {
                "photo_id": photo_id,
                "path": path,
                "size": size,
                "state": state,
                "error": json.loads(error) if error else None,
            }
            for photo_id, path, size, state, error in self.db.execute(
                "SELECT photo_id, path, size, state, error FROM uploads ORDER BY rowid"
            )
        ]

    def upload_photos(self, part_bytes: int = UPLOAD_PART_BYTES) -> dict[str, str]:
        """Upload the bytes of every pending photo of the signed-in user (a colleague's wait
        for them), each resumed where the server holds it; returns the state each is left in.
        Raises :class:`TransportError` when the network stays down (what is on the server stays
        there: the next call resumes)."""
        states: dict[str, str] = {}
        self._upload_pending(states, part_bytes)
        return states

    def _upload_pending(self, states: dict[str, str], part_bytes: int) -> None:
        """:meth:`upload_photos`, noting in ``states`` the state each photo is left in as it
        goes."""
        pending = self.db.execute(
            "SELECT photo_id, path, sha256, size, content_type FROM uploads"
            " WHERE state = 'pending' AND (author IS NULL OR author = ?) ORDER BY rowid",
            (self._meta("user"),),
        ).fetchall()
        states.update((row[0], "pending") for row in pending)
        for photo_id, path, sha256, size, content_type in pending:
            try:
                with open(path, "rb") as source:
                    state, error = self._upload(
                        photo_id, source, sha256, size, content_type, part_bytes
                    )
            except FileNotFoundError:
                state, error = "failed", {"error": "file_missing", "message": f"{path} is gone"}
            with self._writing():
                self.db.execute(
                    "UPDATE uploads SET state = ?, error = ? WHERE photo_id = ?",
                    (state, json.dumps(error) if error else None, photo_id),
                )
            states[photo_id] = state

    def _upload(
        self, photo_id: str, source, sha256: str, size: int, content_type: str, part_bytes: int
    ) -> tuple[str, dict | None]:
        url = f"/photos/{photo_id}"
        best, stalls, error = -1, 0, None
        while True:
            held = self._call("HEAD", url)
            if held.status in _NOT_NOW:
                return "pending", {"error": str(held.status)}
            offset, kept = self._held(held)
            if kept is not None:
                if kept == sha256:
                    return "stored", None
                message = f"the server keeps other bytes under this photo id (sha256 {kept})"
                return "failed", {"error": "id_conflict", "message": message}
            if offset > best:
                best, stalls = offset, 0
            else:
                stalls += 1
                if stalls > 5:
                    return "pending", error  # tried again at the next call
            if offset >= size:
                offset = 0  # what it holds is not these bytes: a PUT starts them again
            state, error = self._send_parts(
                url, source, offset, sha256, size, content_type, part_bytes
            )
            if state != "resume":
                return state, error

    def _send_parts(
        self, url, source, offset, sha256, size, content_type, part_bytes
    ) -> tuple[str, dict | None]:
        """Send the bytes from ``offset`` on, a part a request: ``stored``, ``failed`` with the
        server's error, or ``resume`` when the server holds other than ``offset`` bytes."""
        while True:
            source.seek(offset)
            part = source.read(part_bytes)
            if offset == 0:  # the first part names the bytes and their length
                headers = {
                    "Content-Type": content_type,
                    "X-Content-SHA256": sha256,
                    "Upload-Length": str(size),
                }
                response = self._call("PUT", url, body=part, headers=headers)
            else:
                headers = {
                    "Content-Type": "application/offset+octet-stream",
                    "X-Content-SHA256": sha256,
                    "Upload-Offset": str(offset),
                }
                response = self._call("PATCH", url, body=part, headers=headers)
            if response.status in (200, 201):
                return "stored", None
            if response.status in (202, 204):
                offset = _upload_offset(response)
                continue
            error = response.body if isinstance(response.body, dict) else {}
            if response.status in _NOT_NOW:
                return "pending", error or {"error": str(response.status)}
            if response.status == 401 or response.status >= 500:
                raise SyncError(response)  # a sign-in or the server's health: not these bytes
            if error.get("error") in _RESUMING_UPLOAD_ERRORS:
                # A part whose answer was lost arrived all the same, or the server dropped
                # what it held: ask how far it is.
                return "resume", error
            return "failed", error or {"error": str(response.status)}

    def photo(self, photo_id, size: str = "thumb") -> bytes | None:
        """A photo's image from the server (``thumb``, ``medium`` or ``original``), for showing
        a colleague's photos; None while its bytes have not reached the server."""
        response = self._call("GET", f"/photos/{photo_id}", params={"size": size}, raw=True)
        if response.status == 404:
            return None
        if response.status != 200:
            raise SyncError(response)
        return response.body

    @staticmethod
    def _held(response: Response) -> tuple[int, str | None]:
        """How many of the photo's bytes the server holds, by the answer to a ``HEAD``, and
        once it keeps them as the photo, their digest."""
        if response.status == 404:
            return 0, None
        if response.status != 200:
            raise SyncError(response)
        return _upload_offset(response), _header(response, "X-Content-SHA256")

    def sync(self) -> SyncReport:
        """Push the outbox, upload the photos' bytes, then pull (which then says ``uploaded``);
        returns what happened, for the app to show.

        Photos whose upload meets a dropped link or an ailing server are left ``pending`` (the
        next sync resumes them): the report still comes, with the push's conflicts. When the
        push or the pull raises, the results of what was pushed before are kept, and come in
        the next sync's report: a lost conflict is always told."""
        # Kept by user: on a shared pad, the officer whose value lost is the one to tell.
        unreported = f"unreported:{self._meta('user')}"
        results = json.loads(self._meta(unreported) or "[]")
        try:
            self._push(results)
            uploads: dict[str, str] = {}
            with suppress(TransportError, SyncError):  # what it holds stays pending
                self._upload_pending(uploads, UPLOAD_PART_BYTES)
            pulled = self.pull()
        except BaseException:
            if results:
                with self._writing():
                    self._set_meta(unreported, json.dumps(results))
            raise
        if self._meta(unreported) is not None:
            with self._writing():
                self.db.execute("DELETE FROM meta WHERE key = ?", (unreported,))
        return SyncReport(results=results, uploads=uploads, pulled=pulled)

    def close(self) -> None:
        self.db.close()
