"""Helpers for sync tests: a fake device that numbers its clock and builds changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

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
        "answers": dict(SHOP_ANSWERS)
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
