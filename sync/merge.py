"""Three-way merge rules, as pure functions.

A device sends the fields it changed since ``base_version``. The server compares, field by
field, the value at that base, its value now, and the device's value:

- changed on one side only: that side's value stands (a clean merge);
- changed to the same value on both sides: nothing to decide;
- changed differently on both sides: the field's rule decides, and the value it does not keep is
  returned as a :class:`FieldConflict` for the conflict log, so nothing is silently lost.

Rules (see API.md, "Field rules for inspection"):

- ``LWW``: the later hybrid logical clock wins (the clock of the server value is the clock of
  the write that set it);
- ``SET``: a three-way set merge: additions from both sides are kept, and a removal applies only
  where that side removed the element (photo ids). An element the server removed and added back
  after the base is an addition too: the device's removal of it is not applied (add wins, as in
  an observed-remove set) and is logged;
- ``ITEMS``: a map merged key by key (checklist answers); within a key, ``result`` and ``note``
  follow ``LWW`` and ``photo_ids`` follow ``SET``.

When the base is unknown (:data:`UNKNOWN`, e.g. a record older than the version history), every
difference counts as changed on both sides: the rule still decides and the loser is logged.

"Changed on the server side" is more than "differs from the base": a field written after the
base and set back to the base's value was changed too (its later write must still win against
an older edit, or be logged). ``written`` says which fields (and ``answers.<code>``) were
written after the base; it comes from the record's ``field_versions``. The same holds for set
elements: ``readded`` says, per set (``photo_ids``, ``answers.<code>.photo_ids``), which of
the elements the device removed were added back by the server after the base; it comes from
the version history (see :func:`removals` for the elements to look up).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sync.hlc import HLC, MAX_SKEW_MS, SERVER_NODE, later


class Rule(enum.Enum):
    LWW = "lww"
    SET = "set"
    ITEMS = "items"


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


#: The base value is not known.
UNKNOWN: Any = _Unknown()


@dataclass(frozen=True)
class FieldConflict:
    """A field changed on both sides; ``kept`` says whose value the record now holds."""

    field: str
    base: Any
    server: Any
    client: Any
    kept: str  # "server" | "client"


@dataclass
class MergeResult:
    #: field -> value to write (only fields whose stored value changes)
    values: dict[str, Any] = field(default_factory=dict)
    #: clock key -> clock of the value now stored (for fields the client's value set, or
    #: re-asserted: see :func:`merge_lww`)
    clocks: dict[str, str] = field(default_factory=dict)
    conflicts: list[FieldConflict] = field(default_factory=list)


def merge_set(
    base: list | Any | None,
    server: list | None,
    client: list | None,
    readded: Set = frozenset(),
    restored: Set = frozenset(),
) -> list:
    """Three-way set merge, keeping the server's order and appending the client's additions.

    ``readded``: elements the server added back after the base; the client's removal of them is
    concurrent with that addition, and the addition wins. ``restored``: elements the client
    itself removed after the base (a change of its own the server applied) and holds again: it
    added them back."""
    server = list(server or [])
    client = list(client or [])
    base_set = set() if base is UNKNOWN or base is None else set(base)
    client_set = set(client)
    removed_by_client = base_set - client_set - set(readded)
    added_by_client = [x for x in client if x not in base_set or x in restored]
    merged = [x for x in server if x not in removed_by_client]
    merged += [x for x in added_by_client if x not in merged]
    return merged


def merge_lww(
    name: str,
    base: Any,
    server: Any,
    client: Any,
    client_clock: HLC,
    server_clock: HLC | None,
    written: bool = False,
) -> tuple[Any, bool, FieldConflict | None]:
    """One last-writer-wins field (``written``: the server wrote it after the base). Returns
    (stored value, client value stored?, conflict).

    The value the device's later clock replaces is logged unless it is the device's base value:
    the device saw that one (someone wrote it again since, back or re-asserted, but no value
    the device did not see is lost).

    A device sends only the fields it changed (API.md): one it sends with its base value was
    written back to it (changed and changed back, folded into one change), and is decided by
    clock like any other change against a server value written since the base.

    A device writing the value already stored, later than another writer stored it, re-asserts
    it: the value stays and takes the device's clock (client value "stored"), so that an edit
    made between the two writes loses to the later one, as it would have had the values
    differed."""
    if client == server:
        return server, reasserts(client_clock, server_clock), None
    if base is not UNKNOWN and server == base and not written:
        return client, True, None
    if _rewrites_its_own(client_clock, server_clock):
        return client, True, None  # also when it puts back its base value
    if base is not UNKNOWN and client == base and not written:
        # A record older than field_versions (nothing noted as written): the device holds the
        # base value, the server another; the server's is the change.
        return server, False, None
    known_base = _known_item(base)
    if clock_later(client_clock, server_clock):
        if base is not UNKNOWN and server == base:
            return client, True, None  # the value it replaces is the one the device saw
        return client, True, FieldConflict(name, known_base, server, client, kept="client")
    return server, False, FieldConflict(name, known_base, server, client, kept="server")


def _rewrites_its_own(client_clock: HLC, server_clock: HLC | None) -> bool:
    """Whether the value now stored was written by the same device, earlier: the device saw it
    and replaces it (its change queued behind its own earlier one, on the same base), so there
    is nothing to log: no one else's value is lost.

    A clamped clock (the device's ran far ahead) tells that only of a value clamped in the same
    batch, where clamped clocks follow the device's own, or accepted unclamped after the time
    it was clamped to (see :func:`clock_later`): against one stored by an earlier push at or
    before that time (clamped then, or not: the two look alike), it says which arrived last,
    not which the device wrote last (a pad an hour ahead whose later edit arrived first would
    have it replaced by the earlier one), so that value is logged."""
    return (
        server_clock is not None
        and server_clock.node == client_clock.node
        and server_clock.node != SERVER_NODE
        and clock_later(client_clock, server_clock)
        and (client_clock.clamped_at is None or server_clock.physical_ms >= client_clock.clamped_at)
    )


def clock_later(client_clock: HLC, server_clock: HLC | None) -> bool:
    """Whether the device's ``client_clock`` is later than the stored ``server_clock``.

    By the clocks themselves (:func:`sync.hlc.later`), except that a clamped clock (clamped to
    the server's time) is later than a clock of its own device stored past its batch's clamped
    clocks and at most a minute past the server's time: one accepted unclamped (up to a minute
    ahead) from an earlier push. The device's own clock, more than a minute ahead now, runs
    past it, so the device made that edit earlier; clamped below it, its later edit would
    lose to it."""
    if (
        client_clock.clamped_at is not None
        and server_clock is not None
        and server_clock.node == client_clock.node
        and server_clock.node != SERVER_NODE
        and client_clock.batch_until is not None
        and client_clock.batch_until < server_clock.physical_ms
        and server_clock.physical_ms <= client_clock.clamped_at + MAX_SKEW_MS
    ):
        return True
    return later(client_clock, server_clock)


def _removal_refused(
    name: str, base: Any, merged: list, client: list | None, readded: Set
) -> FieldConflict | None:
    """The conflict to log when the device removed elements the server added back since the
    base: the record keeps them. ``name`` is the photo list's (``photo_ids``,
    ``answers.<code>.photo_ids``); ``server`` the list the record holds, ``client`` that list
    without the elements (resolving for the device removes those, and nothing else)."""
    refused = (set(_known(base)) - set(client or [])) & set(readded) & set(merged)
    if not refused:
        return None
    without = [x for x in merged if x not in refused]
    return FieldConflict(name, _known(base), merged, without, kept="server")


def _known(base: Any) -> list:
    return [] if base is UNKNOWN or base is None else list(base)


def removals(rules: Mapping[str, Rule], base: Mapping | None, server: Mapping, client: Mapping):
    """Per set (``photo_ids``, ``answers.<code>.photo_ids``), the elements the device removed
    since its base that the server still holds: those the server may have removed and added
    back meanwhile, to be looked up in the version history and passed to :func:`merge_fields`
    as ``readded``."""
    return _set_differences(rules, base, server, client, lambda b, s, c: (b - c) & s)


def _set_differences(rules, base, server, client, pick) -> dict[str, set]:
    """``pick(base, server, client)`` of each set the device's change holds, where non-empty."""
    if base is None:
        return {}
    found: dict[str, set] = {}
    for name, client_value in client.items():
        rule = rules[name]
        if rule is Rule.SET:
            picked = pick(
                set(_known(base.get(name))), set(server.get(name) or []), set(client_value or [])
            )
            if picked:
                found[name] = picked
        elif rule is Rule.ITEMS:
            base_items, server_items = base.get(name) or {}, server.get(name) or {}
            for code, item in (client_value or {}).items():
                b, s = base_items.get(code), server_items.get(code)
                if not b or item is None:
                    continue
                picked = pick(
                    set(b.get("photo_ids") or []),
                    set((s or {}).get("photo_ids") or []),
                    set(item.get("photo_ids") or []),
                )
                if picked:
                    found[f"{name}.{code}.photo_ids"] = picked
    return found


def reasserts(client_clock: HLC, server_clock: HLC | None) -> bool:
    """Whether a device writing the value already stored moves its clock: when another writer
    stored it, earlier. (The device's own value, sent again, keeps the clock it had: an outbox
    replaying an edit changes nothing.)"""
    return (
        server_clock is not None
        and server_clock.node != client_clock.node
        and later(client_clock, server_clock)
    )


def restorations(rules: Mapping[str, Rule], base: Mapping | None, server: Mapping, client: Mapping):
    """Per set (``photo_ids``, ``answers.<code>.photo_ids``), the elements the device holds as
    at its base that the server no longer holds: those the device may have removed itself and
    put back since, to be looked up in the version history and passed to :func:`merge_fields`
    as ``restored``."""
    return _set_differences(rules, base, server, client, lambda b, s, c: (b & c) - s)


ANSWER_DEFAULT = {"result": None, "note": "", "photo_ids": []}


def normalize_answer(answer: Mapping | None) -> dict | None:
    if answer is None:
        return None
    return {
        "result": answer.get("result"),
        "note": answer.get("note") or "",
        "photo_ids": list(answer.get("photo_ids") or []),
    }


def _known_item(base: Any) -> Any:
    """A base value as the conflict log keeps it: None where it is not known."""
    return None if base is UNKNOWN else base


def _core(answer: Mapping | None) -> tuple | None:
    return None if answer is None else (answer["result"], answer["note"])


def merge_items(
    name: str,
    base: Mapping | Any,
    server: Mapping | None,
    client: Mapping,
    client_clock: HLC,
    clocks: Mapping[str, str],
    written: Set[str] = frozenset(),
    readded: Mapping[str, Set] = MappingProxyType({}),
    restored: Mapping[str, Set] = MappingProxyType({}),
) -> tuple[dict, dict[str, str], list[FieldConflict]]:
    """Checklist answers, item by item. Returns (merged map, clock updates, conflicts)."""
    server = dict(server or {})
    merged = {code: normalize_answer(a) for code, a in server.items()}
    new_clocks: dict[str, str] = {}
    conflicts: list[FieldConflict] = []
    for code, raw in client.items():
        key = f"{name}.{code}"
        c = normalize_answer(raw)
        s = merged.get(code)
        b = UNKNOWN if base is UNKNOWN else normalize_answer((base or {}).get(code))
        untouched = key not in written  # by the server since the base
        photos_key = f"{key}.photo_ids"
        added_back = readded.get(photos_key, frozenset())
        if c == s:
            server_clock = HLC.parse(clocks[key]) if key in clocks else None
            if reasserts(client_clock, server_clock):
                new_clocks[key] = str(client_clock)
            continue
        if s is None or (b is not UNKNOWN and s == b and untouched and not added_back):
            merged[code] = c
            new_clocks[key] = str(client_clock)
            continue
        base_photos = UNKNOWN if b is UNKNOWN or b is None else b["photo_ids"]
        photos = merge_set(
            base_photos, s["photo_ids"], c["photo_ids"], added_back, restored.get(photos_key, ())
        )
        core_b = UNKNOWN if b is UNKNOWN else _core(b)
        server_clock = HLC.parse(clocks[key]) if key in clocks else None
        # An item sent with the base's result and note was sent for its photos, unless its
        # photos are the base's too: then its result and note were written back to the base.
        photos_only = (
            core_b is not UNKNOWN
            and _core(c) == core_b
            and (c["photo_ids"] != b["photo_ids"] or untouched)
        )
        if _core(c) == _core(s) or (
            photos_only and not _rewrites_its_own(client_clock, server_clock)
        ):
            merged[code] = {**s, "photo_ids": photos}
        elif core_b is not UNKNOWN and _core(s) == core_b and untouched:
            merged[code] = {**c, "photo_ids": photos}
            new_clocks[key] = str(client_clock)
        else:
            if _rewrites_its_own(client_clock, server_clock):
                merged[code] = {**c, "photo_ids": photos}
                new_clocks[key] = str(client_clock)
            elif clock_later(client_clock, server_clock):
                merged[code] = {**c, "photo_ids": photos}
                new_clocks[key] = str(client_clock)
                # The item it replaces is the device's base item: seen, so not logged.
                if core_b is UNKNOWN or _core(s) != core_b:
                    conflicts.append(FieldConflict(key, _known_item(b), s, c, kept="client"))
            else:
                merged[code] = {**s, "photo_ids": photos}
                conflicts.append(FieldConflict(key, _known_item(b), s, c, kept="server"))
        refused = _removal_refused(photos_key, base_photos, photos, c["photo_ids"], added_back)
        if refused is not None:
            conflicts.append(refused)
    return merged, new_clocks, conflicts


def merge_fields(
    rules: Mapping[str, Rule],
    base: Mapping | None,
    server: Mapping,
    client: Mapping,
    client_clock: HLC,
    clocks: Mapping[str, str],
    written: Set[str] = frozenset(),
    readded: Mapping[str, Set] = MappingProxyType({}),
    restored: Mapping[str, Set] = MappingProxyType({}),
) -> MergeResult:
    """Merge the client's changed ``client`` fields into the record ``server``.

    ``base`` is the record as the client last saw it (None when unknown); ``clocks`` maps each
    field (and ``answers.<code>``) to the clock of its current server value; ``written`` holds
    those the server wrote after the base; ``readded`` the set elements it added back after it;
    ``restored`` those the device removed after it and holds again.
    """
    result = MergeResult()
    for name, client_value in client.items():
        rule = rules[name]
        base_value = UNKNOWN if base is None else base.get(name)
        server_value = server.get(name)
        if rule is Rule.SET:
            added_back = readded.get(name, frozenset())
            merged = merge_set(
                base_value, server_value, client_value, added_back, restored.get(name, ())
            )
            if merged != list(server_value or []):
                result.values[name] = merged
            refused = _removal_refused(name, base_value, merged, client_value, added_back)
            if refused is not None:
                result.conflicts.append(refused)
        elif rule is Rule.ITEMS:
            merged, new_clocks, conflicts = merge_items(
                name,
                base_value,
                server_value,
                client_value,
                client_clock,
                clocks,
                written,
                readded,
                restored,
            )
            if merged != {k: normalize_answer(v) for k, v in (server_value or {}).items()}:
                result.values[name] = merged
            result.clocks.update(new_clocks)
            result.conflicts += conflicts
        else:
            server_clock = HLC.parse(clocks[name]) if name in clocks else None
            stored, client_won, conflict = merge_lww(
                name,
                base_value,
                server_value,
                client_value,
                client_clock,
                server_clock,
                name in written,
            )
            if client_won:
                if stored != server_value:
                    result.values[name] = stored
                result.clocks[name] = str(client_clock)
            if conflict is not None:
                result.conflicts.append(conflict)
    return result
