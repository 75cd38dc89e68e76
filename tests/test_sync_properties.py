"""Property: whatever the interleaving of device edits, server edits, retries and pulls, no
value is lost silently, and devices that pull end with the server's state.

Two officers' devices correct the same shop offline while the leader edits it online. Every
value written is unique, so we can follow each one: at the end it is in the record, or in the
conflict log, or a later write overwrote it knowing it (its base version already held it).
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sync_helpers import FakeDevice

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
            write = {"field": field, "value": value, "base": officer.known_version, "applied": None}
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
        superseded = write["applied"] is not None and any(
            later["field"] == field and later["base"] >= write["applied"] and later is not write
            for later in writes
        )
        assert kept or in_log or superseded, (write, final, conflicts)
