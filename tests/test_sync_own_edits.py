"""An officer's edit that puts a value back as it was at the device's base.

A device sends only what it changed (API.md), so a field it sends with its base value was
changed and changed back: it is the officer's latest word, and it is merged by the field's rule
like any other edit — never taken for "nothing changed". Pads whose push was answered "merged"
keep their old base (docs/sync.md, "The device client"), which is how this arises."""

from __future__ import annotations

import time
import uuid

from tests.sync_helpers import FakeDevice, make_client, new_inspection


def _shared(client, tmp_path, world, **fields):
    """Two officers' pads with clocks the test moves (seconds), and an inspection of both that
    pad 0 created and pad 1 has pulled: (run, pads, clocks, inspection id)."""
    run = uuid.uuid4().hex[:8]
    pads = [
        make_client(client, tmp_path, name, f"pad-{run}-{n}")
        for n, name in enumerate(("officer1", "officer2"))
    ]
    start = time.time() - 3600
    clocks = [start, start]
    for n, pad in enumerate(pads):
        pad.clock = lambda n=n: clocks[n]
    inspection_id = str(uuid.uuid4())
    pads[0].save(
        "inspection", inspection_id, new_inspection(world, ["officer1", "officer2"], **fields)
    )
    pads[0].sync()
    pads[1].pull()
    return run, pads, clocks, inspection_id


def _pads(client, tmp_path, world, **fields):
    run, pads, clocks, inspection_id = _shared(client, tmp_path, world, **fields)
    # A colleague edits another field: pad 0's next push is "merged", not "applied".
    clocks[1] += 1
    pads[1].save("inspection", inspection_id, {"legal_basis": "《食品安全法》第五十四条"})
    assert [r["status"] for r in pads[1].sync().results] == ["applied"]
    clocks[0] += 5
    return run, pads, clocks, inspection_id


def test_an_officer_putting_a_field_back_after_a_merged_push_is_not_dropped(
    login, client, world, tmp_path
):
    """officer1 changes findings "A" -> "B" (push merged: a colleague had edited legal_basis),
    then, later, back to "A". Nobody else touched findings: the officer's own later edit
    stands (a device replacing its own earlier value), and the pad shows what the server has."""
    run, pads, clocks, inspection_id = _pads(client, tmp_path, world, findings="A")
    pads[0].save("inspection", inspection_id, {"findings": "B"})
    assert [r["status"] for r in pads[0].push()] == ["merged"]
    clocks[0] += 5
    pads[0].save("inspection", inspection_id, {"findings": "A"})
    pads[0].push()
    for pad in pads:
        pad.sync()
        pad.pull()

    server = login("leader1", f"lead-{run}").get(f"/api/v1/inspections/{inspection_id}").get_json()
    assert server["findings"] == "A", server["findings"]
    assert pads[0].get("inspection", inspection_id)["findings"] == server["findings"]


def test_an_officer_adding_a_photo_back_after_a_merged_push_is_not_dropped(
    login, client, world, tmp_path
):
    """The same for a photo list: officer1 takes photo p off (push merged), then puts it back.
    An addition is always kept (API.md: "additions from both sides kept"); the version history
    shows the removal was this pad's own, so p in its list is an addition, not its base."""
    p = str(uuid.uuid4())
    run, pads, clocks, inspection_id = _pads(client, tmp_path, world, photo_ids=[p])
    pads[0].save("inspection", inspection_id, {"photo_ids": []})
    assert [r["status"] for r in pads[0].push()] == ["merged"]
    clocks[0] += 5
    pads[0].save("inspection", inspection_id, {"photo_ids": [p]})
    pads[0].push()
    for pad in pads:
        pad.sync()
        pad.pull()

    server = login("leader1", f"lead-{run}").get(f"/api/v1/inspections/{inspection_id}").get_json()
    assert server["photo_ids"] == [p], server["photo_ids"]
    assert pads[0].get("inspection", inspection_id)["photo_ids"] == server["photo_ids"]


def test_an_officer_putting_an_answer_back_after_a_merged_push_is_not_dropped(
    login, client, world, tmp_path
):
    """The same for an answer item: fail with a note, then back to pass."""
    run, pads, clocks, inspection_id = _pads(client, tmp_path, world)
    item = {"result": "fail", "note": "占道", "photo_ids": []}
    pads[0].save("inspection", inspection_id, {"answers": {"S01": item}})
    assert [r["status"] for r in pads[0].push()] == ["merged"]
    clocks[0] += 5
    back = {"result": "pass", "note": "", "photo_ids": []}
    pads[0].save("inspection", inspection_id, {"answers": {"S01": back}})
    pads[0].push()
    for pad in pads:
        pad.sync()
        pad.pull()

    server = login("leader1", f"lead-{run}").get(f"/api/v1/inspections/{inspection_id}").get_json()
    assert server["answers"]["S01"] == back, server["answers"]["S01"]
    assert pads[0].get("inspection", inspection_id)["answers"]["S01"] == back


T = 1_763_712_000_000


def test_a_later_edit_back_to_the_base_value_wins_over_an_earlier_colleague_edit(login, world):
    """Base findings "A". officer2 writes "C" at T+1. officer1 (offline, base v1) writes "B"
    and then "A" again at T+5 (a pad folds them: the change sends findings "A"). Under
    last-writer-wins the later write, "A", stands, and "C" is logged."""
    officer1, officer2 = FakeDevice(login("officer1")), FakeDevice(login("officer2"))
    record = uuid.uuid4()
    officer1.push_ok(
        officer1.change(
            "inspection",
            record,
            new_inspection(world, ["officer1", "officer2"], findings="A"),
            hlc=officer1.clock_at(T),
        )
    )
    officer2.push_ok(
        officer2.change(
            "inspection", record, {"findings": "C"}, base_version=1, hlc=officer2.clock_at(T + 1)
        )
    )
    [result] = officer1.push_ok(
        officer1.change(
            "inspection", record, {"findings": "A"}, base_version=1, hlc=officer1.clock_at(T + 5)
        )
    )
    leader = login("leader1")
    final = leader.get(f"/api/v1/inspections/{record}").get_json()["findings"]
    logged = leader.get(f"/api/v1/conflicts?record_id={record}").get_json()["items"]
    assert result["status"] == "conflict" and final == "A"
    assert [(c["field"], c["server_value"], c["client_value"]) for c in logged] == [
        ("findings", "C", "A")
    ]


def test_a_pad_that_writes_a_field_back_to_its_base_converges_with_the_server(
    login, client, world, tmp_path
):
    """Reference client: pad 0 writes findings "B" then back to "A" (folded into one change
    of findings "A" on base v1); meanwhile pad 1's "C" reached the server and pad 0 pulled it
    (its unsent edit stays on top). pad 0's later "A" wins, "C" is logged, and both pads end
    with what the server holds."""
    run, pads, clocks, inspection_id = _shared(client, tmp_path, world, findings="A")

    clocks[1] += 1
    pads[1].save("inspection", inspection_id, {"findings": "C"})
    pads[1].sync()

    clocks[0] += 5
    pads[0].save("inspection", inspection_id, {"findings": "B"})
    pads[0].save("inspection", inspection_id, {"findings": "A"})
    pads[0].pull()
    results = pads[0].push()
    assert [r["status"] for r in results] == ["conflict"], results
    for pad in pads:
        pad.sync()
        pad.pull()

    leader = login("leader1", f"lead-{run}")
    server = leader.get(f"/api/v1/inspections/{inspection_id}").get_json()
    for n, pad in enumerate(pads):
        local = pad.get("inspection", inspection_id)
        assert local["findings"] == server["findings"], (n, local["findings"], server["findings"])
