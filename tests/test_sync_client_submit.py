"""Device client: a submit after a create whose answer was lost reaches the server whole."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.sync_helpers import make_client, new_inspection
from tests.test_sync_client_edges import lose_the_answer_of_the_next_push


def test_submit_after_a_create_whose_answer_was_lost_reaches_the_server(
    login, client, world, tmp_path
):
    """pad0 creates a draft; the answer is lost. The officer then submits it: status (written
    by the waiting create) goes on the create's base, ended_at and outcome on the version the
    pad showed, as two changes, status first. The submit must reach the server."""
    run = uuid.uuid4().hex[:8]
    pad = make_client(client, tmp_path, "officer1", f"pad-{run}")
    inspection_id = str(uuid.uuid4())
    pad.save("inspection", inspection_id, new_inspection(world, ["officer1"]))
    lose_the_answer_of_the_next_push(pad)
    pad.save(
        "inspection",
        inspection_id,
        {
            "status": "submitted",
            "ended_at": datetime(2026, 11, 20, 9, 50, tzinfo=UTC).isoformat(),
            "outcome": "compliant",
        },
    )
    pad.sync()

    assert pad.failed() == []
    server = login("officer1").get(f"/api/v1/inspections/{inspection_id}").get_json()
    assert server["status"] == "submitted", server["status"]
    assert pad.get("inspection", inspection_id)["status"] == server["status"]
