"""The merge rules, table by table, and their invariants under random inputs (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.hlc import HLC, HLCError
from sync.merge import (
    UNKNOWN,
    Rule,
    merge_fields,
    merge_lww,
    merge_set,
    removals,
    restorations,
)

EARLY = HLC(1_000, 0, "pad-a")
LATE = HLC(2_000, 0, "pad-b")
#: pad-a's clock, an hour ahead, clamped to the server's time (2 000 ms) in a batch of two
CLAMPED_A = HLC(2_000, 0, "pad-a", clamped_at=2_000, batch_until=2_000)


# -- hybrid logical clocks ---------------------------------------------------------------------


def test_hlc_round_trips_and_orders():
    clock = HLC.parse("0001763712000123:0002:d-7f3a")
    assert (clock.physical_ms, clock.counter, clock.node) == (1763712000123, 2, "d-7f3a")
    assert str(clock) == "0001763712000123:0002:d-7f3a"
    assert HLC(5, 1, "a") > HLC(5, 0, "z") > HLC(4, 9, "z")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "123:0001:d",
        "0001763712000123:2:d",
        "0001763712000123:0002:",
        "0001763712000123:0002:bad id",
        42,
    ],
)
def test_malformed_hlc_is_refused(text):
    with pytest.raises(HLCError):
        HLC.parse(text)


def test_clock_far_ahead_is_clamped():
    now = 1_000_000
    assert HLC(now + 60_000, 3, "d").clamped(now) == (HLC(now + 60_000, 3, "d"), False)
    # To the server's time: a device far ahead must not beat an edit made after it arrived.
    assert HLC(now + 60_001, 3, "d").clamped(now) == (HLC(now, 3, "d"), True)


# -- last writer wins --------------------------------------------------------------------------

LWW_TABLE = [
    # base, server, client, client clock, server clock -> stored, client won, conflict kept
    ("a", "a", "b", EARLY, LATE, "b", True, None),  # only the device changed it
    ("a", "s", "s", EARLY, LATE, "s", False, None),  # both made the same change
    ("a", "s", "a", LATE, EARLY, "s", False, None),  # device holds the base value
    ("a", "s", "c", LATE, EARLY, "c", True, "client"),  # both changed: later device wins
    ("a", "s", "c", EARLY, LATE, "s", False, "server"),  # both changed: later server wins
    ("a", "s", "c", EARLY, None, "c", True, "client"),  # server value has no clock: oldest
    (UNKNOWN, "s", "c", LATE, EARLY, "c", True, "client"),  # unknown base: rule decides
    (UNKNOWN, "s", "s", EARLY, LATE, "s", False, None),
    # The same value, written later by another device: it stays and takes the later clock.
    ("a", "s", "s", LATE, EARLY, "s", True, None),
    (UNKNOWN, "s", "s", LATE, EARLY, "s", True, None),
    # ... but a device sending its own value again (a replay) leaves its clock alone.
    ("a", "s", "s", HLC(3_000, 0, "pad-a"), EARLY, "s", False, None),
    # A device clamped to the server's time (2 000) replaces its own value accepted unclamped
    # up to a minute ahead: its own clock, further ahead now, says that edit came first.
    ("a", "s", "c", CLAMPED_A, HLC(50_000, 0, "pad-a"), "c", True, None),
    # ... but not another device's later clock, nor one of its own past that minute.
    ("a", "s", "c", CLAMPED_A, HLC(50_000, 0, "pad-b"), "s", False, "server"),
    ("a", "s", "c", CLAMPED_A, HLC(62_001, 0, "pad-a"), "s", False, "server"),
    # ... and, within its batch, its clocks keep their order: the later one stays.
    ("a", "s", "c", CLAMPED_A, HLC(2_000, 1, "pad-a"), "s", False, "server"),
]


@pytest.mark.parametrize(
    ("base", "server", "client", "cc", "sc", "stored", "won", "kept"), LWW_TABLE
)
def test_last_writer_wins(base, server, client, cc, sc, stored, won, kept):
    value, client_won, conflict = merge_lww("findings", base, server, client, cc, sc)
    assert (value, client_won) == (stored, won)
    if kept is None:
        assert conflict is None
    else:
        assert conflict.kept == kept
        assert {conflict.server, conflict.client} == {server, client}


# -- sets --------------------------------------------------------------------------------------

SET_TABLE = [
    # base, server, client -> merged
    ([], [], ["p1"], ["p1"]),
    (["p1"], ["p1", "p2"], ["p1", "p3"], ["p1", "p2", "p3"]),  # both added
    (["p1", "p2"], ["p1", "p2"], ["p2"], ["p2"]),  # device removed p1
    (["p1", "p2"], ["p2"], ["p1", "p2", "p3"], ["p2", "p3"]),  # server removed p1, device added
    (["p1"], ["p1"], [], []),
    (UNKNOWN, ["p1"], ["p2"], ["p1", "p2"]),  # no base: nothing counts as removed
]

READDED_TABLE = [
    # base, server, client, added back by the server since the base -> merged
    (["p1"], ["p1"], [], {"p1"}, ["p1"]),  # the device's removal loses to the addition
    (["p1", "p2"], ["p1", "p2"], [], {"p1"}, ["p1"]),  # p2 was not added back: removed
    (["p1"], ["p1"], ["p3"], {"p1"}, ["p1", "p3"]),
]


@pytest.mark.parametrize(("base", "server", "client", "readded", "merged"), READDED_TABLE)
def test_set_merge_keeps_elements_the_server_added_back(base, server, client, readded, merged):
    assert merge_set(base, server, client, readded) == merged


@pytest.mark.parametrize(("base", "server", "client", "merged"), SET_TABLE)
def test_three_way_set_merge(base, server, client, merged):
    assert merge_set(base, server, client) == merged


ids = st.lists(st.sampled_from([f"p{i}" for i in range(8)]), unique=True, max_size=6)


@given(ids, ids, ids, ids)
def test_set_merge_keeps_every_addition_and_only_chosen_removals(base, server, client, readded):
    readded = set(readded) & set(base) & set(server)  # what the history can report
    merged = set(merge_set(base, server, client, readded))
    added = (set(server) - set(base)) | (set(client) - set(base)) | readded
    assert added <= merged
    for element in set(base) - merged:
        assert element not in server or element not in client  # someone removed it
    assert merged <= set(base) | set(server) | set(client)


def test_a_removal_of_an_element_added_back_since_the_base_is_refused_and_logged():
    """The server removed p1 and added it back after the device's base; the device removed
    it offline. The two are concurrent: the addition wins, the removal waits in the log."""
    rules = {"photo_ids": Rule.SET}
    base, server, client = {"photo_ids": ["p1", "p2"]}, {"photo_ids": ["p1", "p2"]}, ["p2", "p3"]
    assert removals(rules, base, server, {"photo_ids": client}) == {"photo_ids": {"p1"}}

    result = merge_fields(
        rules, base, server, {"photo_ids": client}, LATE, {}, readded={"photo_ids": {"p1"}}
    )

    assert result.values == {"photo_ids": ["p1", "p2", "p3"]}
    [conflict] = result.conflicts
    assert (conflict.field, conflict.kept) == ("photo_ids", "server")
    assert conflict.server == ["p1", "p2", "p3"]  # what the record holds
    assert conflict.client == ["p2", "p3"]  # what resolving it for the device writes
    # Not added back: the device's removal is the only change to p1.
    plain = merge_fields(rules, base, server, {"photo_ids": client}, LATE, {})
    assert plain.values == {"photo_ids": ["p2", "p3"]} and plain.conflicts == []


def test_a_photo_of_an_answer_added_back_since_the_base_stays_and_the_removal_is_logged():
    base = {"answers": {"S01": answer("fail", "x", ["p1"]), "S02": answer("pass")}}
    server = {"answers": {"S01": answer("fail", "x", ["p1"]), "S02": answer("pass")}}
    client = {"answers": {"S01": answer("fail", "x", []), "S02": answer("pass", "", ["p9"])}}
    readded = {"answers.S01.photo_ids": {"p1"}}
    assert removals(RULES, base, server, client) == readded

    result = merge_fields(RULES, base, server, client, LATE, {}, readded=readded)

    assert result.values["answers"]["S01"] == answer("fail", "x", ["p1"])
    assert result.values["answers"]["S02"] == answer("pass", "", ["p9"])
    [conflict] = result.conflicts  # about the item's photo list alone
    assert (conflict.field, conflict.kept) == ("answers.S01.photo_ids", "server")
    assert (conflict.base, conflict.server, conflict.client) == (["p1"], ["p1"], [])
    # Its note changed on the device alone: the note applies, the removal still waits.
    client["answers"]["S01"] = answer("fail", "改", [])
    noted = merge_fields(RULES, base, server, client, LATE, {}, readded=readded)
    assert noted.values["answers"]["S01"] == answer("fail", "改", ["p1"])
    assert [(c.field, c.client) for c in noted.conflicts] == [("answers.S01.photo_ids", [])]
    # Its note changed on both sides too: one entry for the note, one for the photo list.
    server["answers"]["S01"] = answer("fail", "服务端", ["p1"])
    both = merge_fields(
        RULES, base, server, client, EARLY, {"answers.S01": str(LATE)}, readded=readded
    )
    assert both.values["answers"]["S01"] == answer("fail", "服务端", ["p1"])  # the later note
    assert [(c.field, c.kept) for c in both.conflicts] == [
        ("answers.S01", "server"),
        ("answers.S01.photo_ids", "server"),
    ]


def test_a_value_written_again_later_takes_the_later_clock_and_beats_an_edit_in_between():
    """pad-a stored "甲" at EARLY; pad-c, offline, wrote "丙" at 1,500; pad-b wrote "甲" too, at
    LATE. However the pushes arrive, the record ends with pad-b's later "甲"."""
    base, rules = {"findings": ""}, {"findings": Rule.LWW}
    reassert = merge_fields(
        rules, base, {"findings": "甲"}, {"findings": "甲"}, LATE, {"findings": str(EARLY)}
    )
    assert reassert.values == {} and reassert.clocks == {"findings": str(LATE)}
    in_between = HLC(1_500, 0, "pad-c")
    after = merge_fields(
        rules, base, {"findings": "甲"}, {"findings": "丙"}, in_between, reassert.clocks
    )
    assert after.values == {} and after.conflicts[0].kept == "server"
    # The same for an answer item.
    item = {"S01": answer("fail", "甲")}
    clocks = {"answers.S01": str(EARLY)}
    again = merge_fields(RULES, {"answers": {}}, {"answers": item}, {"answers": item}, LATE, clocks)
    assert again.values == {} and again.clocks == {"answers.S01": str(LATE)}


def test_a_value_written_back_to_the_base_on_the_device_is_an_edit_decided_by_clock():
    """A device sends only what it changed: its base value, sent, was written back to it."""
    value, won, conflict = merge_lww("findings", "a", "s", "a", LATE, EARLY, written=True)
    assert (value, won) == ("a", True) and (conflict.server, conflict.kept) == ("s", "client")
    value, won, conflict = merge_lww("findings", "a", "s", "a", EARLY, LATE, written=True)
    assert (value, won) == ("s", False) and (conflict.client, conflict.kept) == ("a", "server")
    # The server value is the device's own earlier write: replaced, nothing to log.
    own = HLC(3_000, 0, "pad-a")
    assert merge_lww("findings", "a", "s", "a", own, EARLY, written=True) == ("a", True, None)


def test_a_photo_the_device_removed_itself_and_holds_again_is_an_addition():
    # p1 was in the device's base; its own push took it off; its list has p1 again.
    assert merge_set(["p1", "p2"], ["p2"], ["p1", "p2"]) == ["p2"]  # as a base element
    assert merge_set(["p1", "p2"], ["p2"], ["p1", "p2"], restored={"p1"}) == ["p2", "p1"]
    base = {"photo_ids": ["p1", "p2"]}
    server, client = {"photo_ids": ["p2"]}, {"photo_ids": ["p1", "p2"]}
    assert restorations(RULES, base, server, client) == {"photo_ids": {"p1"}}


def test_removals_are_only_looked_up_for_elements_the_server_still_holds():
    base = {"photo_ids": ["p1", "p2"], "answers": {"S01": answer("fail", "", ["p3"])}}
    server = {"photo_ids": ["p2"], "answers": {"S01": answer("fail", "", ["p3"])}}
    client = {
        "photo_ids": [],
        "answers": {"S01": answer("fail", "", ["p3"]), "S09": answer("pass")},
    }
    assert removals(RULES, base, server, client) == {"photo_ids": {"p2"}}
    assert removals(RULES, None, server, client) == {}  # no base: nothing counts as removed


# -- answers, item by item ---------------------------------------------------------------------

RULES = {"findings": Rule.LWW, "photo_ids": Rule.SET, "answers": Rule.ITEMS, "outcome": Rule.LWW}


def answer(result, note="", photos=()):
    return {"result": result, "note": note, "photo_ids": list(photos)}


def test_answers_merge_per_item():
    base = {"answers": {"S01": answer("pass"), "S02": answer("pass")}}
    server = {"answers": {"S01": answer("fail", "门外摆摊"), "S02": answer("pass")}}
    client = {"answers": {"S02": answer("fail", "占道堆物")}}
    result = merge_fields(RULES, base, server, client, LATE, {})
    assert result.values["answers"]["S01"] == answer("fail", "门外摆摊")
    assert result.values["answers"]["S02"] == answer("fail", "占道堆物")
    assert result.conflicts == []
    assert result.clocks == {"answers.S02": str(LATE)}


def test_same_item_on_both_sides_later_clock_wins_and_photos_merge():
    base = {"answers": {"S03": answer("pass", "", ["p1"])}}
    server = {"answers": {"S03": answer("fail", "油烟直排", ["p1", "p2"])}}
    client = {"answers": {"S03": answer("fail", "油烟净化器未开", ["p1", "p3"])}}
    clocks = {"answers.S03": str(EARLY)}
    result = merge_fields(RULES, base, server, client, LATE, clocks)
    assert result.values["answers"]["S03"] == answer("fail", "油烟净化器未开", ["p1", "p2", "p3"])
    [conflict] = result.conflicts
    assert conflict.field == "answers.S03" and conflict.kept == "client"
    assert conflict.server["note"] == "油烟直排"

    older = merge_fields(RULES, base, server, client, HLC(500, 0, "pad-a"), clocks)
    assert older.values["answers"]["S03"] == answer("fail", "油烟直排", ["p1", "p2", "p3"])
    assert older.conflicts[0].kept == "server"


def test_only_photos_differ_is_not_a_conflict():
    base = {"answers": {"S01": answer("fail", "x", ["p1"])}}
    server = {"answers": {"S01": answer("fail", "x", ["p1", "p2"])}}
    client = {"answers": {"S01": answer("fail", "x", ["p1", "p3"])}}
    result = merge_fields(RULES, base, server, client, EARLY, {})
    assert result.conflicts == []
    assert result.values["answers"]["S01"]["photo_ids"] == ["p1", "p2", "p3"]


def test_fields_changed_on_one_side_each_merge_cleanly():
    base = {"findings": "", "outcome": None}
    server = {"findings": "", "outcome": "compliant"}
    client = {"findings": "店门外堆放纸箱"}
    result = merge_fields(RULES, base, server, client, EARLY, {"outcome": str(LATE)})
    assert result.values == {"findings": "店门外堆放纸箱"}
    assert result.conflicts == []


# -- invariant: nothing is lost ----------------------------------------------------------------

values = st.sampled_from(["", "a", "b", "c"])
clocks = st.builds(HLC, st.integers(0, 5), st.integers(0, 2), st.sampled_from(["pad-a", "pad-b"]))


@given(base=values, server=values, client=values, client_clock=clocks, server_clock=clocks)
def test_lww_keeps_one_value_and_logs_the_other(base, server, client, client_clock, server_clock):
    stored, _, conflict = merge_lww("f", base, server, client, client_clock, server_clock)
    kept_or_logged = {stored} | ({conflict.server, conflict.client} if conflict else set())
    # The server's own change is never lost, unless the device that wrote it replaces it.
    replaced_by_its_writer = server_clock.node == client_clock.node and client_clock > server_clock
    assert server in kept_or_logged or server == base or replaced_by_its_writer
    assert client in kept_or_logged or client == base  # nor the device's
    assert stored in (server, client)


# -- a field written since the base, back to the base's value ------------------------------------


def test_a_field_written_back_to_its_base_value_is_changed_on_both_sides():
    # base "" -> someone wrote "x", then "" again at LATE; the device wrote "mine" on base "".
    value, _, conflict = merge_lww("findings", "", "", "mine", EARLY, LATE, written=True)
    assert value == "" and conflict.kept == "server"  # the later write of "" stands
    assert (conflict.server, conflict.client) == ("", "mine")
    # The device's edit is the later: it stands, and the "" it replaces is the one it saw at
    # its base, so nothing unseen is lost and nothing is logged.
    later_edit = HLC(3_000, 0, "pad-a")
    assert merge_lww("findings", "", "", "mine", later_edit, LATE, written=True) == (
        "mine",
        True,
        None,
    )
    # Not written since the base: the device's change is the only one.
    assert merge_lww("findings", "", "", "mine", EARLY, LATE) == ("mine", True, None)


def test_an_answer_item_written_back_to_its_base_value_is_changed_on_both_sides():
    base = {"S01": {"result": "pass", "note": "", "photo_ids": []}}
    client = {"S01": {"result": "fail", "note": "mine", "photo_ids": []}}
    clocks = {"answers.S01": str(LATE)}

    def merge(written: frozenset):
        rules, server = {"answers": Rule.ITEMS}, {"answers": base}
        return merge_fields(rules, server, server, {"answers": client}, EARLY, clocks, written)

    result = merge(frozenset({"answers.S01"}))
    assert result.values == {}  # the later write of the base value stands
    [conflict] = result.conflicts
    assert (conflict.field, conflict.kept) == ("answers.S01", "server")
    untouched = merge(frozenset())
    assert untouched.values["answers"]["S01"]["note"] == "mine" and untouched.conflicts == []
