"""Properties of sync under random interleavings.

Two officers' devices correct the same shop offline while the leader edits it online: whatever
the interleaving of device edits, server edits, retries and pulls, no value is lost silently,
and devices that pull end with the server's state. Every value written is unique, so we can
follow each one: at the end it is in the record, or in the conflict log, or a later write
overwrote it knowing it (its base version already held it, or it came from the same device,
which wrote the value it replaces).

Two officers push batches of edits of one inspection, fresh and stale, with refused ones in
between: the version each answer gives is the version the history lists with that value.
"""

from __future__ import annotations

import itertools
import uuid

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.sync_helpers import FakeDevice, new_inspection

FIELDS = ("name", "address")

steps = st.lists(
    st.one_of(
        st.tuples(st.just("edit"), st.integers(0, 1), st.sampled_from(FIELDS)),
        st.tuples(st.just("push"), st.integers(0, 1), st.just("")),
        st.tuples(st.just("retry"), st.integers(0, 1), st.just("")),
        st.tuples(st.just("pull"), st.integers(0, 1), st.just("")),
        st.tuples(st.just("server"), st.just(0), st.sampled_from(FIELDS)),
    ),
    min_size=1,
    max_size=25,
)


class Officer:
    def __init__(self, device: FakeDevice, target_id: str):
        self.device = device
        self.target_id = target_id
        self.known_version = 1
        self.local: dict = {}
        self.outbox: list[tuple[dict, dict]] = []  # (change, write record)
        self.last_batch: list[dict] = []

    def pull(self):
        for change in self.device.pull_all():
            if change["entity"] == "target" and change["id"] == self.target_id:
                self.known_version = change["version"]
                self.local = {f: change["data"][f] for f in FIELDS}


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=steps)
def test_no_value_is_lost_and_devices_converge(login, world, plan):
    leader = login("leader1")
    created = leader.post(
        "/api/v1/targets",
        json={
            "kind": "shop",
            "name": "起始店名",
            "address": "起始地址",
            "squadron_id": world.squadrons[0].id,
            "location": {"lon": 121.47, "lat": 31.37},
            "business_type": "retail",
        },
    )
    assert created.status_code == 201
    target_id = created.get_json()["id"]
    officers = [Officer(FakeDevice(login(name)), target_id) for name in ("officer1", "officer2")]
    for officer in officers:
        officer.pull()
    unique = (f"值{n}" for n in itertools.count())
    writes: list[dict] = []

    def push(officer: Officer, batch: list[tuple[dict, dict]]):
        if not batch:
            return
        results = officer.device.push_ok(*[change for change, _ in batch])
        for (_, write), result in zip(batch, results, strict=True):
            assert result["status"] != "rejected", result
            lost = any(
                c["field"] == write["field"] and c["kept"] == "server" for c in result["conflicts"]
            )
            if not result["replayed"]:
                write["applied"] = None if lost else result["version"]
            if result["status"] == "applied":
                officer.known_version = max(officer.known_version, result["version"])

    for action, who, field in plan:
        officer = officers[who]
        if action == "edit":
            value = next(unique)
            write = {
                "field": field,
                "value": value,
                "base": officer.known_version,
                "applied": None,
                "device": who,
            }
            writes.append(write)
            change = officer.device.change(
                "target", target_id, {field: value}, base_version=officer.known_version
            )
            officer.local[field] = value
            officer.outbox.append((change, write))
        elif action == "push":
            push(officer, officer.outbox)
            officer.last_batch, officer.outbox = officer.outbox, []
        elif action == "retry":
            push(officer, officer.last_batch)  # a lost answer: the same batch again
        elif action == "pull":
            officer.pull()
        else:
            current = leader.get(f"/api/v1/targets/{target_id}")
            value = next(unique)
            response = leader.patch(
                f"/api/v1/targets/{target_id}",
                json={field: value},
                headers={"If-Match": current.headers["ETag"]},
            )
            assert response.status_code == 200
            writes.append(
                {
                    "field": field,
                    "value": value,
                    "base": current.get_json()["version"],
                    "applied": response.get_json()["version"],
                    "device": "leader",
                }
            )

    for officer in officers:  # everyone comes back online
        push(officer, officer.outbox)
        officer.outbox = []
    for officer in officers:
        officer.pull()

    final = leader.get(f"/api/v1/targets/{target_id}").get_json()
    for officer in officers:
        assert officer.local == {f: final[f] for f in FIELDS}

    conflicts = leader.get(f"/api/v1/conflicts?record_id={target_id}&per_page=200").get_json()[
        "items"
    ]
    logged = {(c["field"], c["server_value"]) for c in conflicts} | {
        (c["field"], c["client_value"]) for c in conflicts
    }
    for write in writes:
        field, value = write["field"], write["value"]
        kept = final[field] == value
        in_log = (field, value) in logged
        position = writes.index(write)
        superseded = write["applied"] is not None and any(
            later["field"] == field
            and later is not write
            and (
                later["base"] >= write["applied"]
                or (later["device"] == write["device"] and later["applied"] is not None)
            )
            for later in writes[position + 1 :]
        )
        assert kept or in_log or superseded, (write, final, conflicts)


#: A batch: who pushes it, and its edits: the field (or a refusal), and whether the edit is
#: based on version 1 (stale) rather than the last version its device was answered.
inspection_batches = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.lists(
            st.tuples(st.sampled_from(("findings", "legal_basis", "refused")), st.booleans()),
            min_size=1,
            max_size=5,
        ),
    ),
    min_size=1,
    max_size=6,
)
UNKNOWN_ITEM = {"Z99": {"result": "fail", "note": "不存在的检查项", "photo_ids": []}}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=inspection_batches)
def test_the_version_each_edit_is_answered_is_the_one_its_value_is_stored_in(login, world, plan):
    devices = [FakeDevice(login(name)) for name in ("officer1", "officer2")]
    record = uuid.uuid4()
    devices[0].push_ok(
        devices[0].change("inspection", record, new_inspection(world, ["officer1", "officer2"]))
    )
    known = [1, 1]
    unique = (f"值{n}" for n in itertools.count())
    answered: list[tuple[str, str, dict]] = []
    for who, edits in plan:
        changes, written = [], []
        for field, stale in edits:
            base = 1 if stale else known[who]
            if field == "refused":
                fields, value = {"answers": UNKNOWN_ITEM}, None
            else:
                value = next(unique)
                fields = {field: value}
            written.append((field, value))
            changes.append(devices[who].change("inspection", record, fields, base_version=base))
        for (field, value), result in zip(written, devices[who].push_ok(*changes), strict=True):
            if value is None:
                assert result["status"] == "rejected", result
                continue
            assert result["status"] in ("applied", "merged", "conflict"), result
            answered.append((field, value, result))
            known[who] = max(known[who], result["version"])

    leader = login("leader1")
    history = leader.get(f"/api/v1/inspections/{record}/history").get_json()
    versions = [entry["version"] for entry in history]
    assert versions == list(range(1, len(versions) + 1))
    assert leader.get(f"/api/v1/inspections/{record}").get_json()["version"] == versions[-1]
    conflicts = leader.get(f"/api/v1/conflicts?record_id={record}&per_page=200").get_json()
    logged = {(c["field"], c["client_value"]) for c in conflicts["items"]}
    in_history = {entry["version"]: entry["changes"] for entry in history}
    latest = 1  # every change is to this one record, one after another
    for field, value, result in answered:
        lost = any(c["field"] == field and c["kept"] == "server" for c in result["conflicts"])
        if lost:  # nothing changed: the record stays at its version
            assert result["version"] == latest, (field, value, result)
            assert (field, value) in logged, (field, value, result)
        else:  # a new value: the next version, which holds it
            latest += 1
            assert result["version"] == latest, (field, value, result)
            assert in_history[latest][field]["to"] == value, (field, value, result)
    assert versions[-1] == latest


#: Photo lists: each officer adds new photos and removes ones it holds, offline, and pushes,
#: retries and pulls in any order. (who, action, which photo of its list to remove)
photo_steps = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.sampled_from(("add", "remove", "push", "retry", "pull")),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=25,
)


class PhotoTaker:
    """A device editing an inspection's photo list: its list, the version it last read, and
    its edits not sent yet (each: the list it wrote, on the list at its base)."""

    def __init__(self, device: FakeDevice, record):
        self.device = device
        self.record = record
        self.version = 1
        self.photos: list[str] = []
        self.base_photos: list[str] = []
        self.outbox: list[dict] = []
        self.last_batch: list[dict] = []

    def edit(self, photos: list[str]) -> None:
        change = self.device.change(
            "inspection", self.record, {"photo_ids": photos}, base_version=self.version
        )
        self.outbox.append({"change": change, "base": list(self.base_photos), "sent": photos})
        self.photos = photos

    def pull(self, stored: dict) -> None:
        if not self.outbox:  # as the client does: a record with edits to send is not replaced
            self.version, self.photos = stored["version"], list(stored["photo_ids"])
            self.base_photos = list(self.photos)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=photo_steps)
# officer1 adds a photo and pushes; officer2 reads it and removes it; officer1's answer was lost
# and it sends the same change again (replayed: the photo stays removed).
@example(
    plan=[
        (0, "add", 0),
        (0, "push", 0),
        (1, "pull", 0),
        (1, "remove", 0),
        (1, "push", 0),
        (0, "retry", 0),
    ]
)
# officer1 adds a photo; officer2 reads it and removes it; officer1, still on its first base,
# sends it again (added back); officer2, on the base it read, removes it again.
@example(
    plan=[
        (0, "add", 0),
        (0, "push", 0),
        (1, "pull", 0),
        (1, "remove", 0),
        (1, "push", 0),
        (0, "add", 0),
        (0, "push", 0),
        (1, "add", 0),
        (1, "push", 0),
    ]
)
def test_photo_lists_keep_every_addition_and_log_every_removal_not_applied(login, world, plan):
    """An addition always reaches the record; a removal reaches it or, where the server added
    the photo back after the device's base, waits in the conflict log; at the end every photo
    ever added is on the record or was removed by someone who had it in their list; and
    devices that pull hold the record's list."""
    record = uuid.uuid4()
    first = FakeDevice(login("officer1"))
    first.push_ok(
        first.change("inspection", record, new_inspection(world, ["officer1", "officer2"]))
    )
    takers = [PhotoTaker(first, record), PhotoTaker(FakeDevice(login("officer2")), record)]
    leader = login("leader1")
    added: set[str] = set()
    removed_knowingly: set[str] = set()

    def stored() -> dict:
        return leader.get(f"/api/v1/inspections/{record}").get_json()

    lists = {1: []}  # the record's photo list at each version

    def push(taker: PhotoTaker, batch: list[dict]) -> None:
        for edit in batch:  # one change of the record per batch, as the client sends them
            before = stored()
            [result] = taker.device.push_ok(edit["change"])
            assert result["status"] in ("applied", "merged", "conflict"), result
            now = stored()
            lists[now["version"]] = now["photo_ids"]
            removed_knowingly.update(set(edit["base"]) - set(edit["sent"]))
            if result["replayed"]:
                # A retry changes nothing: the first delivery applied the additions, and a
                # colleague who read them since may have removed them.
                assert now == before, (edit, before, now)
                continue
            for photo in set(edit["sent"]) - set(edit["base"]):
                assert photo in now["photo_ids"], (photo, edit, now)  # additions always apply
            base = edit["change"]["base_version"]
            for photo in (set(edit["base"]) - set(edit["sent"])) & set(before["photo_ids"]):
                added_back = any(photo not in lists[v] for v in range(base + 1, before["version"]))
                if added_back:  # concurrent with the removal: the photo stays, logged
                    assert photo in now["photo_ids"], (photo, edit, lists)
                    assert any(
                        c["field"] == "photo_ids" and c["kept"] == "server"
                        for c in result["conflicts"]
                    ), result
                else:  # the device's removal is the only change to it
                    assert photo not in now["photo_ids"], (photo, edit, lists)

    for who, action, which in plan:
        taker = takers[who]
        if action == "add":
            photo = str(uuid.uuid4())
            added.add(photo)
            taker.edit([*taker.photos, photo])
        elif action == "remove" and taker.photos:
            gone = taker.photos[which % len(taker.photos)]
            taker.edit([p for p in taker.photos if p != gone])
        elif action == "push":
            push(taker, taker.outbox)
            taker.last_batch, taker.outbox = taker.outbox, []
        elif action == "retry":
            push(taker, taker.last_batch)  # the answer was lost: the same changes again
        elif action == "pull":
            taker.pull(stored())

    for taker in takers:
        push(taker, taker.outbox)
        taker.outbox = []
    final = stored()
    for taker in takers:
        taker.pull(final)
        assert taker.photos == final["photo_ids"]
    for photo in added - set(final["photo_ids"]):
        assert photo in removed_knowingly, (photo, final["photo_ids"])
