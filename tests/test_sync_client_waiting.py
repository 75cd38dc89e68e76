"""Device client: a change queued behind changes still waiting for their answer.

What the officer rewrites of a waiting change's fields was made over that change's value (the
local copy shows it over any version a pull brought since), so it goes on that change's base;
everything else (other fields, a delete) edits the version the pad showed."""

from __future__ import annotations

import time
import uuid

from tests.sync_helpers import make_client, new_inspection
from tests.test_sync_client_edges import lose_the_answer_of_the_next_push


def _two_pads(client, tmp_path, world, skew_s: float = 0.0):
    run = uuid.uuid4().hex[:8]
    pads = [
        make_client(client, tmp_path, name, f"pad-{run}-{n}")
        for n, name in enumerate(("officer1", "officer2"))
    ]
    start = time.time() - 3600
    clocks = [start, start + skew_s]
    for n, pad in enumerate(pads):
        pad.clock = lambda n=n: clocks[n]
    inspection_id = str(uuid.uuid4())
    pads[0].save("inspection", inspection_id, new_inspection(world, ["officer1", "officer2"]))
    pads[0].sync()
    pads[1].pull()
    return run, pads, clocks, inspection_id


def _server(login, run, inspection_id):
    return login("leader1", f"lead-{run}").get(f"/api/v1/inspections/{inspection_id}")


def test_an_edit_of_a_field_the_waiting_change_did_not_touch_edits_what_the_pad_showed(
    login, client, world, tmp_path
):
    """pad0 has findings "B" waiting. pad1 (its clock 10 minutes ahead) sets legal_basis "X";
    pad0 pulls it, the officer sees "X" and replaces it with "Y". That edit was made over "X"
    (nothing of the waiting change covers legal_basis), so "Y" stands."""
    run, pads, clocks, inspection_id = _two_pads(client, tmp_path, world, skew_s=600)
    clocks[0] += 1
    pads[0].save("inspection", inspection_id, {"findings": "B"})  # waits (not sent yet)
    clocks[1] += 2
    pads[1].save("inspection", inspection_id, {"legal_basis": "X"})
    pads[1].sync()
    pads[0].pull()
    assert pads[0].get("inspection", inspection_id)["legal_basis"] == "X"
    clocks[0] += 60
    pads[0].save("inspection", inspection_id, {"legal_basis": "Y"})
    pads[0].push()

    server = _server(login, run, inspection_id).get_json()
    assert (server["findings"], server["legal_basis"]) == ("B", "Y")


def test_a_delete_behind_a_waiting_edit_deletes_the_version_the_pad_showed(
    login, client, world, tmp_path
):
    """pad0's edit went out and its answer was lost; pad1 then edited the draft, pad0 pulled
    that version and the officer deleted the draft. The delete was made over the latest
    version, so it deletes the record."""
    run, pads, clocks, inspection_id = _two_pads(client, tmp_path, world)
    clocks[0] += 1
    pads[0].save("inspection", inspection_id, {"findings": "B"})
    lose_the_answer_of_the_next_push(pads[0])
    clocks[1] += 2
    pads[1].pull()
    pads[1].save("inspection", inspection_id, {"legal_basis": "X"})
    pads[1].sync()
    pads[0].pull()
    clocks[0] += 5
    pads[0].save("inspection", inspection_id, {}, op="delete")
    results = pads[0].push()

    assert [r["status"] for r in results] == ["applied", "applied"], results
    assert _server(login, run, inspection_id).status_code == 404


def test_a_target_edit_behind_a_waiting_one_edits_what_the_pad_showed_and_converges(
    login, client, world, tmp_path
):
    """The same for a shop: pad0's address correction waits; pad1 (clock ahead) renames the
    shop; pad0 pulls the new name and the officer corrects it. That correction was made over
    the name the pad showed: it must stand, and both pads end with what the server holds."""
    run, pads, clocks, _ = _two_pads(client, tmp_path, world, skew_s=600)
    target_id = str(world.targets["shop1"].id)
    clocks[0] += 1
    pads[0].save("target", target_id, {"address": "宝山区淞滨路1号"})
    clocks[1] += 2
    pads[1].save("target", target_id, {"name": "同事改的店名"})
    pads[1].sync()
    pads[0].pull()
    assert pads[0].get("target", target_id)["name"] == "同事改的店名"
    clocks[0] += 60
    pads[0].save("target", target_id, {"name": "本人改的店名"})
    pads[0].push()
    for pad in pads:
        pad.sync()
        pad.pull()

    server = login("leader1", f"lead-{run}").get(f"/api/v1/targets/{target_id}").get_json()
    assert server["name"] == "本人改的店名", server["name"]
    for n, pad in enumerate(pads):
        assert pad.get("target", target_id)["name"] == server["name"], n
