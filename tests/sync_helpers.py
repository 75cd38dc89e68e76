"""Helpers for sync tests: a fake device that numbers its clock and builds changes; the
reference client over Flask's test client, with faults to order."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import UTC, datetime

from sync.client import Response, SyncClient, TransportError
from tests.conftest import PASSWORD

SHOP_ANSWERS = {
    "S01": {"result": "pass", "note": "", "photo_ids": []},
    "S02": {"result": "pass", "note": "", "photo_ids": []},
    "S03": {"result": "pass", "note": "", "photo_ids": []},
}


#: A shop an officer finds and reports from the street.
NEW_SHOP = {
    "kind": "shop",
    "name": "新开张水果店",
    "address": "宝山区淞滨路88号",
    "location": {"lon": 121.48, "lat": 31.38},
    "business_type": "fresh_produce",
}


class FakeDevice:
    """What a device app does: keeps an HLC, builds changes, pushes and pulls."""

    def __init__(self, api, clock_ms: int = 1_763_712_000_000):
        self.api = api
        self.device_id = api.device_id
        self.physical = clock_ms
        self.counter = 0
        self.cursor = None

    def tick(self, ms: int = 1000) -> str:
        self.physical += ms
        self.counter = 0
        return f"{self.physical:016d}:{self.counter:04d}:{self.device_id}"

    def clock_at(self, ms: int) -> str:
        """This device's clock reading at ``ms`` (for edits whose order a test sets)."""
        return f"{ms:016d}:0000:{self.device_id}"

    def change(
        self,
        entity: str,
        record_id,
        fields: dict | None = None,
        *,
        base_version=None,
        op: str = "upsert",
        change_id=None,
        hlc: str | None = None,
    ) -> dict:
        return {
            "change_id": str(change_id or uuid.uuid4()),
            "entity": entity,
            "id": str(record_id),
            "op": op,
            "base_version": base_version,
            "hlc": hlc or self.tick(),
            "fields": fields or {},
        }

    def push(self, *changes, device_id: str | None = None):
        return self.api.post(
            "/api/v1/sync/push",
            json={"device_id": device_id or self.device_id, "changes": list(changes)},
        )

    def push_ok(self, *changes) -> list[dict]:
        response = self.push(*changes)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["results"]

    def create_inspections(self, world, officers, count: int) -> list[uuid.UUID]:
        """Push ``count`` new draft inspections in one batch; their ids, in order."""
        ids = [uuid.uuid4() for _ in range(count)]
        self.push_ok(
            *[self.change("inspection", i, new_inspection(world, list(officers))) for i in ids]
        )
        return ids

    def pull_all(self, limit: int = 500) -> list[dict]:
        """Pull pages until done, from this device's cursor; returns the changes."""
        changes = []
        while True:
            query = f"?limit={limit}" + (f"&cursor={self.cursor}" if self.cursor else "")
            response = self.api.get(f"/api/v1/sync/pull{query}")
            assert response.status_code == 200, response.get_json()
            page = response.get_json()
            changes += page["changes"]
            self.cursor = page["cursor"]
            if not page["has_more"]:
                return changes


def photo_metadata(inspection_id, **overrides) -> dict:
    """A photo's metadata as a device pushes it, for the inspection ``inspection_id``."""
    return {
        "inspection_id": str(inspection_id),
        "taken_at": "2026-11-20T09:35:00+08:00",
        "sha256": "ab" * 32,
        "size": 123456,
        "content_type": "image/jpeg",
    } | overrides


def new_inspection(world, officers, *, status="draft", target="shop1", **overrides) -> dict:
    fields = {
        "target_id": str(world.targets[target].id),
        "checklist_id": world.checklists["shop" if target.startswith("shop") else "site"].id,
        "checklist_version": 1,
        "officer_ids": [str(world.users[name].id) for name in officers],
        "origin": "patrol",
        "started_at": datetime(2026, 11, 20, 9, 30, tzinfo=UTC).isoformat(),
        "location": {"lon": 121.4701, "lat": 31.3702, "accuracy_m": 8.0, "crs": "wgs84"},
        # A deep copy: a test that changes an item must not change every later test's.
        "answers": copy.deepcopy(SHOP_ANSWERS)
        if target.startswith("shop")
        else {"C01": {"result": "pass", "note": "", "photo_ids": []}},
        "status": status,
    }
    if status == "submitted":
        fields |= {
            "ended_at": datetime(2026, 11, 20, 9, 50, tzinfo=UTC).isoformat(),
            "outcome": "compliant",
        }
    return fields | overrides


class FlaskTransport:
    """The client's transport over Flask's test client, with faults to order."""

    def __init__(
        self,
        client,
        *,
        lose_answers: float = 0.0,
        fail_before: float = 0.0,
        unavailable: float = 0.0,
        seed: int = 0,
    ):
        self.client = client
        self.random = random.Random(seed)
        self.lose_answers, self.fail_before, self.unavailable = (
            lose_answers,
            fail_before,
            unavailable,
        )
        self.calls = 0

    def request(
        self, method, path, *, json_body=None, body=None, params=None, headers=None, raw=False
    ) -> Response:
        self.calls += 1
        if self.random.random() < self.fail_before:
            raise TransportError("connection reset before the request was sent")
        if self.random.random() < self.unavailable:
            return Response(503, {"error": "unavailable"}, {})
        answer = self.client.open(
            f"/api/v1{path}",
            method=method,
            json=json_body,
            data=body,
            query_string=params,
            headers=headers,
        )
        try:
            if self.random.random() < self.lose_answers:
                raise TransportError("the answer was lost on the way back")
            if raw and answer.status_code < 400:
                return Response(answer.status_code, answer.data, dict(answer.headers))
            return Response(answer.status_code, answer.get_json(silent=True), dict(answer.headers))
        finally:
            answer.close()  # a photo is sent from its file


def make_client(flask_client, tmp_path, username, device_id, **faults) -> SyncClient:
    client = SyncClient(
        FlaskTransport(flask_client, **faults),
        str(tmp_path / f"{device_id}.sqlite3"),
        device_id,
        backoff_s=0,
        sleep=lambda s: None,
    )
    client.login(username, PASSWORD)
    return client


def until_through(action):
    """What the app does: when the network gives up, try again at the next chance; returns
    what ``action`` returns once it gets through."""
    for _ in range(20):
        try:
            return action()
        except TransportError:
            continue
    raise AssertionError("never got through")


def shared_draft(world, device) -> uuid.UUID:
    """A draft of officer1 and officer2 that ``device`` creates; its id."""
    record = uuid.uuid4()
    [created] = device.push_ok(
        device.change("inspection", record, new_inspection(world, ["officer1", "officer2"]))
    )
    assert created["status"] == "applied", created
    return record
