#!/usr/bin/env python3
"""A leader's review screens on demo databases of different sizes, side by side in one run.

For each database given (``--db NAME=URL``, e.g. a ``small`` and a ``district`` demo built with
``fieldapp demo --scale ... --no-serve``), signs in as ``leader1`` and times, in process, each
read a leader's screen makes (the inspection list, one filter by officer, one record, the review
queue, overdue rectifications, overdue tasks, the conflict queue), ``--runs`` times each, and
one review (approve, with its task closing, case opening and risk re-scoring) of ``--runs``
pending inspections, each rolled back. Prints the median of each and, for every database after
the first, the ratio to the first: a page should cost the same however large the district is.

Usage: bench/review_bench.py --db small=sqlite:///a.sqlite3 --db district=sqlite:///b.sqlite3
       [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "fieldapp-demo"


def measure(app, runs: int) -> tuple[dict[str, float], int]:
    from fieldapp.actor import Actor
    from fieldapp.auth.models import User
    from fieldapp.db import db
    from fieldapp.inspections import operations
    from fieldapp.inspections.models import Inspection, InspectionStatus, ReviewStatus

    client = app.test_client()
    answer = client.post(
        "/api/v1/auth/token",
        json={"username": "leader1", "password": PASSWORD, "device_id": "bench-review"},
    )
    token = answer.get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with app.app_context():
        leader = db.session.scalar(sa.select(User).where(User.username == "leader1"))
        squadron_id, leader_id = leader.squadron_id, leader.id
        officer_id = db.session.scalar(
            sa.select(User.id).where(User.squadron_id == squadron_id, User.role == "officer")
        )
        some = db.session.scalar(
            sa.select(Inspection.id).where(Inspection.squadron_id == squadron_id).limit(1)
        )
        pending = db.session.scalars(
            sa.select(Inspection.id)
            .where(
                Inspection.squadron_id == squadron_id,
                Inspection.status == InspectionStatus.submitted,
                Inspection.review_status == ReviewStatus.pending,
            )
            .limit(runs)
        ).all()
        total = db.session.scalar(sa.select(sa.func.count()).select_from(Inspection))
    reads = {
        "inspections": "/api/v1/inspections?per_page=50",
        "inspections by officer": f"/api/v1/inspections?officer_id={officer_id}&per_page=50",
        "one inspection": f"/api/v1/inspections/{some}",
        "review queue": "/api/v1/review/queue?per_page=50",
        "overdue rectifications": "/api/v1/rectifications?overdue=true&per_page=50",
        "overdue tasks": "/api/v1/tasks?overdue=true&per_page=50",
        "conflict queue": "/api/v1/conflicts?per_page=50",
    }
    medians, counts = {}, {}
    for name, path in reads.items():
        client.get(path, headers=headers)  # warm up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            response = client.get(path, headers=headers)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.get_json()
        medians[name] = statistics.median(times)
        body = response.get_json()
        counts[name] = len(body["items"]) if "items" in body else 1
    times = []
    with app.app_context():
        actor = Actor(db.session.get(User, leader_id))
        for inspection_id in pending:
            inspection = db.session.get(Inspection, inspection_id)
            t0 = time.perf_counter()
            operations.review(actor, inspection, "approve", None, datetime.now(UTC))
            db.session.flush()
            times.append(time.perf_counter() - t0)
            db.session.rollback()
    if times:
        medians["approve (rolled back)"] = statistics.median(times)
        counts["approve (rolled back)"] = len(times)
    return medians, counts, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", action="append", required=True, help="NAME=URL")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    from fieldapp import create_app

    results = []
    for spec in args.db:
        name, _, url = spec.partition("=")
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "LOG_LEVEL": "WARNING"})
        medians, counts, total = measure(app, args.runs)
        results.append((name, total, medians, counts))
        print(f"{name}: {total:,} inspections", flush=True)
    first_name, _, first, _ = results[0]
    keys = list(dict.fromkeys(k for _, _, m, _ in results for k in m))
    header = f"{'median ms (items)':<26}" + "".join(f"{name:>16}" for name, *_ in results)
    header += "".join(f"{name + '/' + first_name:>20}" for name, *_ in results[1:])
    print(header)
    nan = float("nan")
    for key in keys:
        row = f"{key:<26}" + "".join(
            f"{m.get(key, nan) * 1000:>10.1f} ({c.get(key, 0):>3})" for _, _, m, c in results
        )
        row += "".join(
            f"{m.get(key, nan) / first.get(key, nan):>20.2f}" for _, _, m, _ in results[1:]
        )
        print(row)


if __name__ == "__main__":
    main()
