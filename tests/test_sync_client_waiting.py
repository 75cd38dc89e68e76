"""Device client: an edit queued behind a change still waiting for its answer.

The rule (docs/sync.md, "The device client"): an edit that rewrites a field (or answer item) a
change still waiting wrote goes, whole, on the earliest such change's base, not the version a
pull brought in the meantime: the local copy shows the waiting value over that version, so the
officer has not seen its value there. Its other fields then meet colleagues' writes since as
concurrent (the later clock wins, the other value is logged) rather than being split off: a
split would keep a submit from reaching the server whole. It folds into an unsent change only on
that change's base. Other edits, and deletes, edit the version the pad showed.

So what the officer wrote reaches the server or the conflict log: a colleague's value is never
replaced unseen, the officer's is never lost silently.

Each scenario is one officer ("mine": officer1's pad) and, mostly, a colleague (officer2's pad)
on one record; a change of mine waits (unsent, or sent with its answer lost) while the colleague
writes, and my pad pulls that. Then the officer acts, and the test checks what a user would
notice: the server's record, the conflict log, what each pad shows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sync.client import SyncClient
from tests.sync_helpers import make_client, new_inspection
from tests.test_sync_client_edges import lose_the_answer_of_the_next_push


@dataclass
class Pads:
    """The pads of a scenario (``mine`` first) and the record it is about. ``clocks`` are the
    pads' clocks in seconds, which the test moves; None where the pads keep the wall clock."""

    login: Callable
    run: str
    pads: list[SyncClient]
    clocks: list[float] | None
    kind: str
    record_id: str

    @property
    def mine(self) -> SyncClient:
        return self.pads[0]

    @property
    def colleague(self) -> SyncClient:
        return self.pads[1]

    def tick(self, pad: int, seconds: float) -> None:
        """Move a pad's clock on (pads on the wall clock need no moving)."""
        if self.clocks is not None:
            self.clocks[pad] += seconds

    def shown(self) -> dict:
        """The record as my pad shows it to the officer."""
        return self.mine.get(self.kind, self.record_id)

    def officer_saves(self, fields: dict, *, after_s: float = 0) -> None:
        """The officer saves ``fields`` on my pad, ``after_s`` seconds on."""
        self.tick(0, after_s)
        self.mine.save(self.kind, self.record_id, fields)

    def officer_deletes(self, *, after_s: float) -> None:
        self.tick(0, after_s)
        self.mine.save(self.kind, self.record_id, {}, op="delete")

    def on_server(self):
        """A team leader's read of the record on the server (the response)."""
        leader = self.login("leader1", f"lead-{self.run}")
        return leader.get(f"/api/v1/{self.kind}s/{self.record_id}")

    def logged(self, device_id: str | None = None) -> list[dict]:
        """The conflict log of the record, as a team leader reads it."""
        leader = self.login("leader1", device_id or f"lead-{self.run}")
        return leader.get(f"/api/v1/conflicts?record_id={self.record_id}").get_json()["items"]

    def assert_kept_or_logged(self, server: dict, field: str, value) -> None:
        """The officer's ``value`` of ``field`` is on the record or waits in the conflict log."""
        if server[field] == value:
            return
        logged = self.logged(f"lead-{self.run}-log")
        assert any(c["field"] == field and c["client_value"] == value for c in logged), logged


def pads_and_a_new_draft(login, client, tmp_path, officers: tuple[str, ...]) -> Pads:
    """A pad of each of ``officers``, on the wall clock, and the id of a draft not created yet."""
    run = uuid.uuid4().hex[:8]
    pads = [
        make_client(client, tmp_path, name, f"pad-{run}-{n}") for n, name in enumerate(officers)
    ]
    return Pads(login, run, pads, None, "inspection", str(uuid.uuid4()))


def two_pads_on_a_synced_draft(
    login, client, tmp_path, world, *, colleague_ahead_s: float = 0.0, on_shop: bool = False
) -> Pads:
    """officer1's pad creates a draft of both officers and syncs it; officer2's pad pulls it.
    The pads' clocks start an hour back, the colleague's ``colleague_ahead_s`` ahead. The
    scenario is about that draft or, ``on_shop``, about the shop shop1."""
    scene = pads_and_a_new_draft(login, client, tmp_path, ("officer1", "officer2"))
    start = time.time() - 3600
    scene.clocks = clocks = [start, start + colleague_ahead_s]
    for n, pad in enumerate(scene.pads):
        pad.clock = lambda n=n: clocks[n]
    scene.mine.save("inspection", scene.record_id, new_inspection(world, ["officer1", "officer2"]))
    scene.mine.sync()
    scene.colleague.pull()
    if on_shop:
        scene.kind, scene.record_id = "target", str(world.targets["shop1"].id)
    return scene


def my_change_waits(scene: Pads, fields: dict, *, answer_lost: bool) -> None:
    """My pad saves ``fields`` (a second on), and the change waits for its answer: unsent, or,
    ``answer_lost``, sent and applied with its answer lost on the way back."""
    scene.tick(0, 1)
    scene.mine.save(scene.kind, scene.record_id, fields)
    if answer_lost:
        lose_the_answer_of_the_next_push(scene.mine)


def mine_waits_while_the_colleague_writes(
    scene: Pads, mine: dict, theirs: dict, *, answer_lost: bool = False
) -> None:
    """My change ``mine`` waits (see :func:`my_change_waits`); meanwhile the colleague's pad
    (two seconds on) writes ``theirs`` and syncs, having pulled my change first where it reached
    the server; then my pad pulls the colleague's version."""
    my_change_waits(scene, mine, answer_lost=answer_lost)
    scene.tick(1, 2)
    if answer_lost:
        scene.colleague.pull()
    scene.colleague.save(scene.kind, scene.record_id, theirs)
    scene.colleague.sync()
    scene.mine.pull()


# -- what the waiting change did not write: edited on the version the pad showed -------------------


def test_an_edit_of_a_field_the_waiting_change_did_not_touch_edits_what_the_pad_showed(
    login, client, world, tmp_path
):
    """pad0 has findings "B" waiting. pad1 (its clock 10 minutes ahead) sets legal_basis "X";
    pad0 pulls it, the officer sees "X" and replaces it with "Y". That edit was made over "X"
    (nothing of the waiting change covers legal_basis), so "Y" stands."""
    scene = two_pads_on_a_synced_draft(login, client, tmp_path, world, colleague_ahead_s=600)
    mine_waits_while_the_colleague_writes(scene, {"findings": "B"}, {"legal_basis": "X"})
    assert scene.shown()["legal_basis"] == "X"

    scene.officer_saves({"legal_basis": "Y"}, after_s=60)
    scene.mine.push()

    server = scene.on_server().get_json()
    assert (server["findings"], server["legal_basis"]) == ("B", "Y")


def test_a_target_edit_behind_a_waiting_one_edits_what_the_pad_showed_and_converges(
    login, client, world, tmp_path
):
    """The same for a shop: pad0's address correction waits; pad1 (clock ahead) renames the
    shop; pad0 pulls the new name and the officer corrects it. That correction was made over
    the name the pad showed: it must stand, and both pads end with what the server holds."""
    scene = two_pads_on_a_synced_draft(
        login, client, tmp_path, world, colleague_ahead_s=600, on_shop=True
    )
    mine_waits_while_the_colleague_writes(
        scene, {"address": "宝山区淞滨路1号"}, {"name": "同事改的店名"}
    )
    assert scene.shown()["name"] == "同事改的店名"

    scene.officer_saves({"name": "本人改的店名"}, after_s=60)
    scene.mine.push()
    for pad in scene.pads:
        pad.sync()
        pad.pull()

    server = scene.on_server().get_json()
    assert server["name"] == "本人改的店名", server["name"]
    for n, pad in enumerate(scene.pads):
        assert pad.get("target", scene.record_id)["name"] == server["name"], n


# -- a delete: of the version the pad showed ------------------------------------------------------


def test_a_delete_behind_a_waiting_edit_deletes_the_version_the_pad_showed(
    login, client, world, tmp_path
):
    """pad0's edit went out and its answer was lost; pad1 then edited the draft, pad0 pulled
    that version and the officer deleted the draft. The delete was made over the latest
    version, so it deletes the record."""
    scene = two_pads_on_a_synced_draft(login, client, tmp_path, world)
    mine_waits_while_the_colleague_writes(
        scene, {"findings": "B"}, {"legal_basis": "X"}, answer_lost=True
    )

    scene.officer_deletes(after_s=5)
    results = scene.mine.push()

    assert [r["status"] for r in results] == ["applied", "applied"], results
    assert scene.on_server().status_code == 404


def test_a_delete_replacing_an_unsent_edit_deletes_the_version_the_pad_showed(
    login, client, world, tmp_path
):
    """pad0's findings "B" waits unsent (base v1). pad1 sets legal_basis "X" (v2); pad0 pulls
    v2 and shows it; the officer deletes the draft. The delete was made over v2 (docs: "a
    delete edit[s] the version the pad showed"), so it deletes the record."""
    scene = two_pads_on_a_synced_draft(login, client, tmp_path, world)
    mine_waits_while_the_colleague_writes(scene, {"findings": "B"}, {"legal_basis": "X"})
    assert scene.shown()["legal_basis"] == "X"

    scene.officer_deletes(after_s=5)
    results = scene.mine.push()

    assert [r["status"] for r in results] == ["applied"], results
    assert scene.on_server().status_code == 404


# -- what the waiting change wrote: edited, whole, on that change's base --------------------------


def test_an_edit_of_a_waiting_field_is_not_folded_into_a_change_on_a_newer_base(
    login, client, world, tmp_path
):
    """pad0's findings "B" went out, answer lost (server v2). pad1 writes findings "X" (v3);
    pad0 pulls v3 but shows "B" over it. The officer edits legal_basis (own change on v3),
    then saves legal_basis + findings together: that edit goes, whole, on B's base, so
    findings "C" meets "X" (never seen by the officer) as concurrent. (Before 1aacb50 it folded
    into the legal_basis change (base v3), so "C" replaced "X" with nothing logged.)"""
    scene = two_pads_on_a_synced_draft(login, client, tmp_path, world)
    mine_waits_while_the_colleague_writes(
        scene, {"findings": "B"}, {"findings": "X"}, answer_lost=True
    )
    assert scene.shown()["findings"] == "B"

    scene.officer_saves({"legal_basis": "L"}, after_s=5)
    scene.officer_saves({"legal_basis": "L2", "findings": "C"}, after_s=1)
    scene.mine.push()

    # pad1's "X" was replaced by a value made over "B", not over "X": it must be logged.
    logged = scene.logged()
    assert any(c["field"] == "findings" and c["server_value"] == "X" for c in logged), logged


def test_an_edit_folded_into_a_waiting_field_s_change_keeps_or_logs_its_other_field(
    login, client, world, tmp_path
):
    """pad0's findings "B" went out, answer lost. pad1 (clock 10 min ahead) sets legal_basis
    "X"; pad0 pulls and shows it. The officer rewrites findings ("C", on B's base), then saves
    findings "D" with legal_basis "Y" over the "X" he saw: the edit folds into the findings
    change on the old base, "Y" meets "X" as concurrent and loses by clock."""
    scene = two_pads_on_a_synced_draft(login, client, tmp_path, world, colleague_ahead_s=600)
    mine_waits_while_the_colleague_writes(
        scene, {"findings": "B"}, {"legal_basis": "X"}, answer_lost=True
    )
    assert scene.shown()["legal_basis"] == "X"

    scene.officer_saves({"findings": "C"}, after_s=5)
    scene.officer_saves({"findings": "D", "legal_basis": "Y"}, after_s=1)
    scene.mine.push()

    server = scene.on_server().get_json()
    assert server["findings"] == "D"
    scene.assert_kept_or_logged(server, "legal_basis", "Y")


def test_one_save_over_an_unsent_change_and_a_pulled_field_keeps_or_logs_that_field(
    login, client, world, tmp_path
):
    """Simplest form: pad0's findings "B" waits unsent (base v1). pad1 (clock 10 min ahead)
    sets legal_basis "X"; pad0 pulls v2 and shows "X". The officer saves findings "C" and
    legal_basis "Y" in one save: it folds into the findings change on v1, "Y" meets "X" as
    concurrent and loses by clock, though the officer wrote it over "X"."""
    scene = two_pads_on_a_synced_draft(login, client, tmp_path, world, colleague_ahead_s=600)
    mine_waits_while_the_colleague_writes(scene, {"findings": "B"}, {"legal_basis": "X"})
    assert scene.shown()["legal_basis"] == "X"

    scene.officer_saves({"findings": "C", "legal_basis": "Y"}, after_s=60)
    scene.mine.push()

    server = scene.on_server().get_json()
    assert server["findings"] == "C"
    scene.assert_kept_or_logged(server, "legal_basis", "Y")


def test_one_save_over_a_shop_s_unsent_change_and_its_pulled_name_keeps_or_logs_the_name(
    login, client, world, tmp_path
):
    """The same for a shop: pad0's address correction waits (unsent); pad1 (clock ahead)
    renames the shop; pad0 pulls the name and the officer corrects name and address in one
    save: folded onto the old base, the name made over "同事改的店名" loses to it by clock."""
    scene = two_pads_on_a_synced_draft(
        login, client, tmp_path, world, colleague_ahead_s=600, on_shop=True
    )
    mine_waits_while_the_colleague_writes(
        scene, {"address": "宝山区淞滨路1号"}, {"name": "同事改的店名"}
    )
    assert scene.shown()["name"] == "同事改的店名"

    scene.officer_saves({"address": "宝山区淞滨路2号", "name": "本人改的店名"}, after_s=60)
    scene.mine.push()
    for pad in scene.pads:
        pad.sync()

    server = scene.on_server().get_json()
    scene.assert_kept_or_logged(server, "name", "本人改的店名")
    for n, pad in enumerate(scene.pads):
        assert pad.get("target", scene.record_id)["name"] == server["name"], n


# -- a create whose answer was lost: its base (none) is the earliest of all -----------------------


def test_an_edit_of_an_item_a_lost_create_wrote_goes_on_the_create_s_base(
    login, client, world, tmp_path
):
    """pad0 creates a draft; the answer is lost (server v1). pad1 writes S01's note "X" (v2);
    pad0 pulls v2 but shows its own create's S01 over it. The officer writes findings and
    legal_basis (a change on v2), then S01 and findings in one save: S01 was written by the
    waiting create, so it must go on the create's base and meet "X" as concurrent (logged).
    (Before 1aacb50, min() skipped the create's None base and queued S01 on v2: "X" was
    replaced, nothing logged.)"""
    scene = pads_and_a_new_draft(login, client, tmp_path, ("officer1", "officer2"))
    mine_waits_while_the_colleague_writes(
        scene,
        new_inspection(world, ["officer1", "officer2"]),
        {"answers": {"S01": {"result": "fail", "note": "X", "photo_ids": []}}},
        answer_lost=True,
    )
    assert scene.shown()["answers"]["S01"]["note"] == ""

    scene.officer_saves({"findings": "F", "legal_basis": "L"})
    scene.officer_saves(
        {"findings": "F2", "answers": {"S01": {"result": "pass", "note": "mine", "photo_ids": []}}}
    )
    scene.mine.push()

    logged = scene.logged()
    assert any(c["field"].startswith("answers.S01") for c in logged), logged


def test_submit_after_a_create_whose_answer_was_lost_reaches_the_server(
    login, client, world, tmp_path
):
    """pad0 creates a draft; the answer is lost. The officer then submits it: status was
    written by the waiting create, so the submit goes, whole, on the create's base. The submit
    must reach the server. (Before 1aacb50 it was split: status on the create's base, ended_at
    and outcome on the version the pad showed, as two changes, and the status half was refused
    for good.)"""
    scene = pads_and_a_new_draft(login, client, tmp_path, ("officer1",))
    my_change_waits(scene, new_inspection(world, ["officer1"]), answer_lost=True)

    scene.officer_saves(
        {
            "status": "submitted",
            "ended_at": datetime(2026, 11, 20, 9, 50, tzinfo=UTC).isoformat(),
            "outcome": "compliant",
        }
    )
    scene.mine.sync()

    assert scene.mine.failed() == []
    server = login("officer1").get(f"/api/v1/inspections/{scene.record_id}").get_json()
    assert server["status"] == "submitted", server["status"]
    assert scene.shown()["status"] == server["status"]
