"""Device client: an edit that rewrites what a change still waiting wrote goes, whole, on that
change's base (docs/sync.md, "The device client"), folded or not. Its other fields then meet a
colleague's writes since as concurrent: the later clock wins and the other value is logged —
never replaced unseen, never lost silently. (Splitting such an edit would keep a submit from
reaching the server whole.)"""

from __future__ import annotations

from tests.test_sync_client_edges import lose_the_answer_of_the_next_push
from tests.test_sync_client_waiting import _server, _two_pads


def test_fold_into_rest_change_keeps_waiting_field_on_its_base(login, client, world, tmp_path):
    """pad0's findings "B" went out, answer lost (server v2). pad1 writes findings "X" (v3);
    pad0 pulls v3 but shows "B" over it. The officer edits legal_basis (own change on v3),
    then saves legal_basis + findings together: that edit folds into the legal_basis change
    (base v3), so findings "C" replaces "X" (never seen by the officer) with nothing logged."""
    run, pads, clocks, inspection_id = _two_pads(client, tmp_path, world)
    clocks[0] += 1
    pads[0].save("inspection", inspection_id, {"findings": "B"})
    lose_the_answer_of_the_next_push(pads[0])
    clocks[1] += 2
    pads[1].pull()
    pads[1].save("inspection", inspection_id, {"findings": "X"})
    pads[1].sync()
    pads[0].pull()
    assert pads[0].get("inspection", inspection_id)["findings"] == "B"
    clocks[0] += 5
    pads[0].save("inspection", inspection_id, {"legal_basis": "L"})
    clocks[0] += 1
    pads[0].save("inspection", inspection_id, {"legal_basis": "L2", "findings": "C"})
    pads[0].push()

    leader = login("leader1", f"lead-{run}")
    logged = leader.get(f"/api/v1/conflicts?record_id={inspection_id}").get_json()["items"]
    # pad1's "X" was replaced by a value made over "B", not over "X": it must be logged.
    assert any(c["field"] == "findings" and c["server_value"] == "X" for c in logged), logged


def test_fold_into_own_base_change_keeps_other_field_on_shown_version(
    login, client, world, tmp_path
):
    """pad0's findings "B" went out, answer lost. pad1 (clock 10 min ahead) sets legal_basis
    "X"; pad0 pulls and shows it. The officer rewrites findings ("C", on B's base), then saves
    findings "D" with legal_basis "Y" over the "X" he saw: the edit folds into the findings
    change on the old base, "Y" meets "X" as concurrent and loses by clock."""
    run, pads, clocks, inspection_id = _two_pads(client, tmp_path, world, skew_s=600)
    clocks[0] += 1
    pads[0].save("inspection", inspection_id, {"findings": "B"})
    lose_the_answer_of_the_next_push(pads[0])
    clocks[1] += 2
    pads[1].pull()
    pads[1].save("inspection", inspection_id, {"legal_basis": "X"})
    pads[1].sync()
    pads[0].pull()
    assert pads[0].get("inspection", inspection_id)["legal_basis"] == "X"
    clocks[0] += 5
    pads[0].save("inspection", inspection_id, {"findings": "C"})
    clocks[0] += 1
    pads[0].save("inspection", inspection_id, {"findings": "D", "legal_basis": "Y"})
    pads[0].push()

    server = _server(login, run, inspection_id).get_json()
    assert server["findings"] == "D"
    _assert_kept_or_logged(login, run, inspection_id, server, "legal_basis", "Y")


def test_fold_into_unsent_change_on_older_base_keeps_seen_field(login, client, world, tmp_path):
    """Simplest form: pad0's findings "B" waits unsent (base v1). pad1 (clock 10 min ahead)
    sets legal_basis "X"; pad0 pulls v2 and shows "X". The officer saves findings "C" and
    legal_basis "Y" in one save: it folds into the findings change on v1, "Y" meets "X" as
    concurrent and loses by clock, though the officer wrote it over "X"."""
    run, pads, clocks, inspection_id = _two_pads(client, tmp_path, world, skew_s=600)
    clocks[0] += 1
    pads[0].save("inspection", inspection_id, {"findings": "B"})
    clocks[1] += 2
    pads[1].save("inspection", inspection_id, {"legal_basis": "X"})
    pads[1].sync()
    pads[0].pull()
    assert pads[0].get("inspection", inspection_id)["legal_basis"] == "X"
    clocks[0] += 60
    pads[0].save("inspection", inspection_id, {"findings": "C", "legal_basis": "Y"})
    pads[0].push()

    server = _server(login, run, inspection_id).get_json()
    assert server["findings"] == "C"
    _assert_kept_or_logged(login, run, inspection_id, server, "legal_basis", "Y")


def test_target_fold_into_unsent_change_on_older_base_keeps_seen_field(
    login, client, world, tmp_path
):
    """The same for a shop: pad0's address correction waits (unsent); pad1 (clock ahead)
    renames the shop; pad0 pulls the name and the officer corrects name and address in one
    save: folded onto the old base, the name made over "同事改的店名" loses to it by clock."""
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
    pads[0].save("target", target_id, {"address": "宝山区淞滨路2号", "name": "本人改的店名"})
    pads[0].push()
    for pad in pads:
        pad.sync()

    server = login("leader1", f"lead-{run}").get(f"/api/v1/targets/{target_id}").get_json()
    _assert_kept_or_logged(login, run, target_id, server, "name", "本人改的店名")
    for n, pad in enumerate(pads):
        assert pad.get("target", target_id)["name"] == server["name"], n


def _assert_kept_or_logged(login, run, record_id, server: dict, field: str, value) -> None:
    """The officer's ``value`` of ``field`` is on the record or waits in the conflict log."""
    if server[field] == value:
        return
    leader = login("leader1", f"lead-{run}-log")
    logged = leader.get(f"/api/v1/conflicts?record_id={record_id}").get_json()["items"]
    assert any(c["field"] == field and c["client_value"] == value for c in logged), logged
