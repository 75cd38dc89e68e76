"""Properties of the reference device client under random interleavings.

Two officers' pads (``sync/client.py``) work on one shared inspection: they save edits of
``findings`` and of single answer items, push, pull and sync in any order, lose the answer of a
push now and then, and their clocks move forward by random amounts (sometimes more than a
minute ahead of the server, which then clamps them). At the end both pads sync until their
outboxes are empty and pull. Then:

1. Convergence: each pad's local copy shows the server's ``findings`` and answers, at the
   server's version.
2. No silent loss: every value a pad saved is the server's final value, or in the conflict log
   (as either side of an entry for its field or answer item), or was overwritten by a save
   made on a pad that showed it: the officer saw it and replaced it (docs/sync.md, "Merging":
   "every value written is in the record, in the conflict log, or was overwritten by a write
   that had seen it"). That covers a value folded into a later save before it left its device,
   a value the same pad replaced after pushing it, and a colleague's value pulled and then
   rewritten. Nothing is kept aside in ``failed()`` and nothing stays queued.

Two interleavings it found, where a push sent again after a pull is answered from the
exactly-once record, left a pad behind the server until ``sync/client.py`` read such a record
again: ``FOUND`` below keeps them as fixed cases.

Every value written is unique (a counter is part of it) and never "", so no field can be
reverted to exactly its base value while a pad is offline: the documented "ABA" limitation
(server value == base lets an older edit through without a log entry) cannot arise here.
"""

from __future__ import annotations

import itertools
import time
import uuid

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from sync.client import TransportError
from tests.sync_helpers import make_client, new_inspection

ITEMS = ("S01", "S02", "S03")
OFFICERS = ("officer1", "officer2")

who = st.integers(0, 1)
text = st.text(alphabet="店门口纸箱油烟abc xyz", min_size=0, max_size=6)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("findings"), who, text),
        st.tuples(
            st.just("answer"),
            who,
            st.tuples(st.sampled_from(ITEMS), st.sampled_from(("pass", "fail")), text),
        ),
        st.tuples(st.just("push"), who, st.none()),
        st.tuples(st.just("pull"), who, st.none()),
        st.tuples(st.just("sync"), who, st.none()),
        st.tuples(st.just("lost_push"), who, st.none()),
        # milliseconds; thirty steps of up to 5 minutes can take a pad past the server's
        # clock (it starts an hour behind), where the server clamps its clocks
        st.tuples(st.just("clock"), who, st.integers(1, 300_000)),
    ),
    min_size=1,
    max_size=30,
)


def key_values(record: dict) -> dict[str, object]:
    """What the properties follow: ``findings`` and each answer item's result and note."""
    values: dict[str, object] = {"findings": record.get("findings") or ""}
    for code, item in (record.get("answers") or {}).items():
        values[f"answers.{code}"] = (item["result"], item["note"])
    return values


def written_value(key: str, values: dict[str, object]):
    """The traced value of ``key``: the findings text, or an answer item's note."""
    value = values.get(key)
    return value[1] if isinstance(value, tuple) else value


def tally(what: str) -> None:
    """Count ``what`` in hypothesis' statistics (``--hypothesis-show-statistics``)."""
    if currently_in_test_context():
        event(what)


def no_rejections(results: list[dict]) -> None:
    for result in results:
        assert result["status"] != "rejected", result


def run_plan(login, client, world, tmp_path, plan) -> None:
    """Play ``plan`` on two fresh pads over a fresh shared inspection; assert the properties."""
    run = uuid.uuid4().hex[:8]  # fixtures are shared by the examples: new pads each time
    pads = [
        make_client(client, tmp_path, name, f"pad-{run}-{n}") for n, name in enumerate(OFFICERS)
    ]
    start = time.time() - 3600
    clocks = [start, start]
    for n, pad in enumerate(pads):
        pad.clock = lambda n=n: clocks[n]

    inspection_id = str(uuid.uuid4())
    pads[0].save("inspection", inspection_id, new_inspection(world, list(OFFICERS)))
    no_rejections(pads[0].sync().results)
    pads[1].pull()
    assert pads[0].pending() == 0 and pads[1].get("inspection", inspection_id) is not None

    unique = itertools.count()
    # (pad, key, value) of every save, and (key, value) pairs a pad showed when it saved over
    # them: replaced by an officer who saw them.
    saves: list[tuple[int, str, str]] = []
    seen_and_replaced: set[tuple[str, str]] = set()

    def save(n: int, key: str, fields: dict, value: str) -> None:
        shown = key_values(pads[n].get("inspection", inspection_id))
        before = written_value(key, shown)
        if before != value:
            seen_and_replaced.add((key, before))
        pads[n].save("inspection", inspection_id, fields)
        saves.append((n, key, value))
        assert written_value(key, key_values(pads[n].get("inspection", inspection_id))) == value

    for action, n, arg in plan:
        pad = pads[n]
        if action == "findings":
            value = f"{arg}#{next(unique)}"
            save(n, "findings", {"findings": value}, value)
        elif action == "answer":
            code, result, note = arg
            value = f"{note}#{next(unique)}"
            fields = {"answers": {code: {"result": result, "note": value, "photo_ids": []}}}
            save(n, f"answers.{code}", fields, value)
        elif action == "push":
            no_rejections(pad.push())
        elif action == "pull":
            pad.pull()
        elif action == "sync":
            no_rejections(pad.sync().results)
        elif action == "lost_push":
            if pad.pending():  # an empty outbox sends nothing, so nothing can be lost
                pad.transport.lose_answers = 1.0
                with pytest.raises(TransportError):
                    pad.push()
                pad.transport.lose_answers = 0.0
        else:
            clocks[n] += arg / 1000

    for _ in range(3):  # everyone comes back online
        for pad in pads:
            no_rejections(pad.sync().results)
    for pad in pads:
        pad.pull()
        assert pad.pending() == 0 and pad.failed() == []

    leader = login("leader1", f"lead-{run}")
    server = leader.get(f"/api/v1/inspections/{inspection_id}").get_json()
    final = key_values(server)

    # 1. Convergence: the values, and the version the pad will base its next edit on (a pad
    # behind the version it shows would have the server see its colleague's edits, which it
    # has seen, as concurrent with its next one).
    for n, pad in enumerate(pads):
        local = key_values(pad.get("inspection", inspection_id))
        assert local == final, f"pad {n} diverged, plan {plan!r}"
        version = pad.version("inspection", inspection_id)
        assert version == server["version"], f"pad {n} at version {version}, plan {plan!r}"

    # 2. No silent loss.
    conflicts = leader.get(f"/api/v1/conflicts?record_id={inspection_id}&per_page=200").get_json()[
        "items"
    ]

    def logged_as(value) -> str | None:
        return value if not isinstance(value, dict) else value.get("note")

    logged = {
        (c["field"], logged_as(c[side]))
        for c in conflicts
        for side in ("server_value", "client_value")
    }
    tally(f"conflict log entries: {min(len(conflicts), 3)}{'+' if len(conflicts) >= 3 else ''}")
    for n, key, value in saves:
        kept = written_value(key, final) == value
        in_log = (key, value) in logged
        replaced = (key, value) in seen_and_replaced
        assert kept or in_log or replaced, (
            f"{(n, key, value)} lost: final {final}, log {conflicts}, plan {plan!r}"
        )
        tally("a save " + ("kept" if kept else "logged" if in_log else "replaced knowingly"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=steps)
def test_two_pads_converge_and_lose_nothing_silently(login, client, world, tmp_path, plan):
    run_plan(login, client, world, tmp_path, plan)


#: Found by the test above, shrunk by hand. Pad 0's push reaches the server but its answer is
#: lost; pad 0 then pulls a colleague's later version, with its own change (still queued, as
#: far as it knows) laid on top; the push sent again is answered from the exactly-once record:
#: ``applied`` at the older version, ``replayed: true``. ``SyncClient._settle`` took that
#: stale answer as news: it set the local version back to the older one and did not read the
#: record again, so the pad kept showing its own value where the colleague's won. It now
#: keeps the newer version and reads the inspection again at the next pull.
FOUND = {
    # The pad showed "#0" (lost to pad 1's later "#1", in the conflict log), the server "#1";
    # the pad stayed at version 2, the server at 3, and no later pull mended it.
    "replayed push shows a value the server does not hold": [
        ("findings", 0, ""),
        ("clock", 1, 1000),
        ("findings", 1, ""),
        ("lost_push", 0, None),
        ("push", 1, None),
        ("pull", 0, None),
    ],
    # Values converged but pad 0 went back to version 2 with the server at 3: its next edit
    # of S01 (over the note it had seen) was merged as concurrent with pad 1's, and lost to it
    # when pad 1's clock was later.
    "replayed push sets the local version back": [
        ("findings", 0, ""),
        ("answer", 1, ("S01", "pass", "")),
        ("lost_push", 0, None),
        ("push", 1, None),
        ("pull", 0, None),
    ],
    # Pad 0's "#0" was sent and its answer lost; a pull brought pad 1's "#1" (version 3) under
    # it, the pad still showing its own "#0". Its next edit, "#4", went out on version 3, as if
    # the officer had seen "#1": it replaced "#1" with no log entry. A change queued behind one
    # still waiting now takes that change's base.
    "an edit behind a lost push claims a version it did not show": [
        ("findings", 0, ""),
        ("lost_push", 0, None),
        ("pull", 1, None),
        ("findings", 1, ""),
        ("push", 1, None),
        ("pull", 0, None),
        ("findings", 0, ""),
    ],
    # The same with an answer edit queued between: the findings edit went behind the answer
    # change (which never wrote findings) on the pulled version, and replaced "#1" unlogged.
    "an edit behind two waiting changes claims a version it did not show": [
        ("findings", 0, ""),
        ("lost_push", 0, None),
        ("pull", 1, None),
        ("findings", 1, ""),
        ("answer", 0, ("S01", "pass", "")),
        ("push", 1, None),
        ("pull", 0, None),
        ("findings", 0, ""),
    ],
}


@pytest.mark.parametrize("plan", list(FOUND.values()), ids=list(FOUND))
def test_a_push_replayed_after_a_pull_leaves_the_pad_where_the_server_is(
    login, client, world, tmp_path, plan
):
    run_plan(login, client, world, tmp_path, plan)
