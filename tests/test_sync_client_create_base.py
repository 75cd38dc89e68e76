"""Device client: an edit over several waiting changes, one a create still unanswered, goes on
the create's base."""

from __future__ import annotations

import uuid

from tests.sync_helpers import make_client, new_inspection
from tests.test_sync_client_edges import lose_the_answer_of_the_next_push


def test_edit_of_create_item_and_later_field_keeps_create_base(login, client, world, tmp_path):
    """pad0 creates a draft; the answer is lost (server v1). pad1 writes S01's note "X" (v2);
    pad0 pulls v2 but shows its own create's S01 over it. The officer writes findings and
    legal_basis (a change on v2), then S01 and findings in one save: S01 was written by the
    waiting create, so it must go on the create's base and meet "X" as concurrent (logged).
    min() skips the create's None base and queues S01 on v2: "X" is replaced, nothing logged."""
    run = uuid.uuid4().hex[:8]
    pads = [
        make_client(client, tmp_path, name, f"pad-{run}-{n}")
        for n, name in enumerate(("officer1", "officer2"))
    ]
    inspection_id = str(uuid.uuid4())
    pads[0].save("inspection", inspection_id, new_inspection(world, ["officer1", "officer2"]))
    lose_the_answer_of_the_next_push(pads[0])
    pads[1].pull()
    pads[1].save(
        "inspection",
        inspection_id,
        {"answers": {"S01": {"result": "fail", "note": "X", "photo_ids": []}}},
    )
    pads[1].sync()
    pads[0].pull()
    assert pads[0].get("inspection", inspection_id)["answers"]["S01"]["note"] == ""
    pads[0].save("inspection", inspection_id, {"findings": "F", "legal_basis": "L"})
    pads[0].save(
        "inspection",
        inspection_id,
        {"findings": "F2", "answers": {"S01": {"result": "pass", "note": "mine", "photo_ids": []}}},
    )
    pads[0].push()

    leader = login("leader1", f"lead-{run}")
    logged = leader.get(f"/api/v1/conflicts?record_id={inspection_id}").get_json()["items"]
    assert any(c["field"].startswith("answers.S01") for c in logged), logged
