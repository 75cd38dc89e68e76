"""The hash chain of the audit log: the canonical encoding of an entry, and checking a run of
entries against it. Pure functions: nothing here reads the database.

An entry's hash is ``sha256(canonical(entry))`` in lowercase hex, where ``canonical`` is the JSON
object of its ten hashed fields ::

    {"action", "actor_id", "after", "at", "before", "device_id", "entity", "prev_hash",
     "record_id", "seq"}

encoded as ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
allow_nan=False)`` (keys sorted, no spaces, non-ASCII as ``\\uXXXX``; numbers as Python writes
them), ``at`` as ISO 8601 in UTC with microseconds (``2026-11-21T09:38:29.123456+00:00``) and ids
as strings. Anyone can re-check the log from a database dump with these few lines.

Writing splits the work so that the part done while holding the chain's lock is tiny:
:func:`content_members` encodes the eight fields known before the lock (done outside it), and
:func:`link` adds ``prev_hash`` and ``seq`` and hashes (inside it).

Checking reads the hashed columns as the database stores them (:func:`stored_hash`), not
through the ORM's types: an entry an insider rewrote so that it no longer reads back (JSON
cut off, a number Python reads as infinity, a time past year 9999) is named ``altered`` like
any other rewrite, not a crash of the check.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

HASHED_FIELDS = (
    "action",
    "actor_id",
    "after",
    "at",
    "before",
    "device_id",
    "entity",
    "prev_hash",
    "record_id",
    "seq",
)


# Built once: json.dumps with options builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)
_PLAIN = json.JSONEncoder(allow_nan=False)
_string = json.encoder.encode_basestring_ascii


def dumps(value: Any) -> str:
    """The canonical JSON text of ``value`` (what ``json.dumps`` with the options above gives)."""
    if value is None:
        return "null"
    if type(value) is str:
        return _string(value)
    return _CANONICAL.encode(value)


def as_stored(value: Any) -> Any:
    """``value`` as it reads back from a JSON column (string keys, lists for tuples)."""
    return None if value is None else json.loads(_PLAIN.encode(value))


def format_at(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def content_members(
    *,
    at: datetime,
    actor_id: uuid.UUID | str | None,
    device_id: str | None,
    action: str,
    entity: str,
    record_id: str | None,
    before: Any,
    after: Any,
    **_unhashed: Any,
) -> tuple[str, str]:
    """The canonical JSON members of an entry's content, split around ``prev_hash`` and
    ``seq`` (which sort between ``entity`` and ``record_id``, and after it)."""
    head = (
        f'"action":{dumps(action)},"actor_id":{dumps(_text(actor_id))},'
        f'"after":{dumps(after)},"at":{dumps(format_at(at))},"before":{dumps(before)},'
        f'"device_id":{dumps(device_id)},"entity":{dumps(entity)}'
    )
    return head, f'"record_id":{dumps(_text(record_id))}'


def link(members: tuple[str, str], prev_hash: str, seq: int) -> str:
    """The hash of an entry at ``seq`` after ``prev_hash`` with these content members."""
    head, record_id = members
    text = f'{{{head},"prev_hash":"{prev_hash}",{record_id},"seq":{seq}}}'
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def entry_hash(row: Any) -> str:
    """The hash an entry (a row with the hashed fields as attributes) must carry."""
    members = content_members(
        at=row.at,
        actor_id=row.actor_id,
        device_id=row.device_id,
        action=row.action,
        entity=row.entity,
        record_id=row.record_id,
        before=row.before,
        after=row.after,
    )
    return link(members, row.prev_hash, row.seq)


#: What decoding or encoding a stored entry raises when it is not what the application wrote:
#: malformed JSON, a value the canonical JSON refuses (``1e400`` reads as infinity), a time
#: Python cannot hold or parse, a non-UUID actor, nesting too deep to decode.
UNREADABLE = (ValueError, TypeError, OverflowError, RecursionError)


def _stored_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _stored_at(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _stored_uuid(text: str | None) -> str | None:
    return None if text is None else str(uuid.UUID(text))


def stored_hash(row: Any) -> str:
    """The hash an entry must carry, from its hashed columns as stored: ``at`` as ISO 8601
    text (UTC when it names no offset), ``before`` and ``after`` as JSON text, ``actor_id``
    as a UUID's text (with or without hyphens). Raises one of :data:`UNREADABLE` when a
    column does not decode to a value the application could have written."""
    members = content_members(
        at=_stored_at(row.at),
        actor_id=_stored_uuid(row.actor_id),
        device_id=row.device_id,
        action=row.action,
        entity=row.entity,
        record_id=row.record_id,
        before=_stored_json(row.before),
        after=_stored_json(row.after),
    )
    return link(members, row.prev_hash, row.seq)


@dataclass
class Verdict:
    """What checking the chain found: ``first_bad_seq`` is the first entry that was altered,
    removed or moved (None when the chain holds)."""

    ok: bool = True
    entries: int = 0
    first_bad_seq: int | None = None
    problem: str | None = None
    last_seq: int = 0
    last_hash: str | None = None


def check(
    rows: Iterable[Any],
    head: tuple[int, str] | None,
    genesis: str,
    hash_of: Callable[[Any], str] = entry_hash,
) -> Iterator[Verdict]:
    """Walk ``rows`` (in ``seq`` order) and check every link; yields the running verdict after
    each row (for progress) and once more at the end. Stops at the first bad entry.
    ``hash_of(row)`` is the hash the row must carry (:func:`entry_hash` for decoded rows,
    :func:`stored_hash` for rows as stored).

    - a ``seq`` that is not the previous one plus one: the entries in between were removed
      (``missing``), unless the chain had already reached its head: then the row is one added
      past the end behind the application's back (``unexpected``, naming it);
    - ``hash`` not the hash of the entry's own fields (which include its ``seq`` and
      ``prev_hash``), or fields that do not read back as anything the application writes:
      the entry was changed or moved to another place (``altered``);
    - ``prev_hash`` not the previous entry's hash while the entry itself is intact: the previous
      entry was rewritten with a recomputed hash (``altered``, naming the previous entry);
    - the last entry is not the one the chain head names: entries were cut off the end
      (``missing``) or added behind the application's back (``unexpected``); an entry
      numbered 0 or below is ``unexpected`` too;
    - no chain head (``head`` None; its row deleted): nothing says where the chain ends, so
      entries cut off the end could not be seen (``head_missing``, naming no entry).
    """
    verdict = Verdict(last_hash=genesis)

    def bad(seq: int | None, problem: str) -> Verdict:
        verdict.ok, verdict.first_bad_seq, verdict.problem = False, seq, problem
        return verdict

    for row in rows:
        expected = verdict.last_seq + 1
        if row.seq > expected:
            if head is None or verdict.last_seq < head[0]:
                yield bad(expected, "missing")
            else:  # past the head: the first entry numbered beyond it was added
                yield bad(head[0] + 1 if verdict.last_seq > head[0] else row.seq, "unexpected")
            return
        if row.seq < expected:  # numbered before the first entry (seq 0 or below)
            yield bad(row.seq, "unexpected")
            return
        try:
            intact = hash_of(row) == row.hash
        except UNREADABLE:
            intact = False
        if not intact:
            yield bad(row.seq, "altered")
            return
        if row.prev_hash != verdict.last_hash:
            yield bad(verdict.last_seq or row.seq, "altered")
            return
        verdict.entries += 1
        verdict.last_seq, verdict.last_hash = row.seq, row.hash
        yield verdict
    if head is None:
        yield bad(None, "head_missing")
        return
    head_seq, head_hash = head
    if head_seq > verdict.last_seq:
        yield bad(verdict.last_seq + 1, "missing")
    elif head_seq < verdict.last_seq:
        yield bad(head_seq + 1, "unexpected")
    elif head_hash != verdict.last_hash:
        yield bad(verdict.last_seq, "altered")
    else:
        yield verdict
