"""Two leaders review one inspection at the same moment, on PostgreSQL with real commits: both
pass the If-Match check, one wins, the other gets 409 and nothing of its review is kept."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from fieldapp.audit.models import AuditEntry
from fieldapp.db import db
from fieldapp.inspections import operations
from tests.conftest import Api, sign_in
from tests.review_helpers import add_second_leader, inspection_path, push_inspection
from tests.test_sync_concurrency import device_for


def test_two_leaders_at_the_same_moment_one_wins_the_other_gets_409(pg_app, monkeypatch):
    app, world = pg_app
    add_second_leader(app, world, "deputy1")
    inspection_id = push_inspection(world, device_for(app, "officer1", "pad-race-review"))
    leaders = [sign_in(app, "leader1", "race-l1"), sign_in(app, "deputy1", "race-l2")]
    etag = leaders[0].get(inspection_path(inspection_id)).headers["ETag"]

    # Both requests wait here, after their If-Match check and before writing anything.
    both_checked = threading.Barrier(2, timeout=30)
    review = operations.review

    def review_together(*args, **kwargs):
        both_checked.wait()
        return review(*args, **kwargs)

    monkeypatch.setattr(operations, "review", review_together)
    answers: dict[str, object] = {}

    def send(api: Api, decision: str) -> None:
        try:
            answers[decision] = api.post(
                f"{inspection_path(inspection_id)}/review",
                json={"decision": decision, "comment": "并发审核"},
                headers={"If-Match": etag},
            )
        except BaseException as exc:  # surfaced by the main thread
            answers[decision] = exc

    threads = [
        threading.Thread(target=send, args=(leaders[0], "approve")),
        threading.Thread(target=send, args=(leaders[1], "return")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(answer.status_code for answer in answers.values())
    assert statuses == [200, 409], answers
    [winner] = [d for d, a in answers.items() if a.status_code == 200]
    [loser] = [a for a in answers.values() if a.status_code == 409]
    assert loser.get_json()["error"] == "version_conflict"

    record = leaders[0].get(inspection_path(inspection_id)).get_json()
    assert record["review"]["status"] == {"approve": "approved", "return": "returned"}[winner]
    assert record["version"] == 2
    with app.app_context():
        reviews = db.session.scalars(
            sa.select(AuditEntry.action).where(
                AuditEntry.record_id == inspection_id,
                AuditEntry.action.in_(["inspection.approve", "inspection.return"]),
            )
        ).all()
    assert reviews == [f"inspection.{winner}"]
