#!/usr/bin/env python3
"""The server's own cost of one pull page, in process (no HTTP, no client parse).

Prepares the benchmark's squadron (plus ``--targets`` more shops), pushes ``--n`` inspection
creates through the API, then times, as the squadron's leader and as an officer who did them:
- ``inspections``: reading and encoding the first ``--page`` inspections after the cursor
  (``sync.pull._inspections``);
- ``page``: the whole first page from the start (``sync.pull.pull``: every table, merged).
Medians of ``--runs`` timings, printed per puller.

Usage: bench/pull_page.py [--db sqlite|postgresql] [--n 3000] [--targets 0] [--page 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from profile_sync import _login, inspection_change  # noqa: E402
from sync_bench import Database, inspection, prepare, scratch_database  # noqa: E402

#: The devices' clock at the first change (2025-11-21).
CLOCK_MS = 1_763_712_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--targets", type=int, default=0, help="shops beyond the 400")
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with scratch_database(args.db, "fieldapp_pull_page") as (db, workdir):
        run(args, db, workdir)


def run(args, db: Database, workdir: Path) -> None:
    import sqlalchemy as sa

    from fieldapp import create_app
    from fieldapp.actor import Actor
    from fieldapp.auth.models import User
    from fieldapp.auth.policy import Policy
    from fieldapp.db import db as fdb
    from fieldapp.web import gunicorn_conf
    from sync import pull

    world = prepare(db, workdir / "instance", extra_targets=args.targets)
    app = create_app({"SQLALCHEMY_DATABASE_URI": db.url, "LOG_LEVEL": "WARNING"})
    gunicorn_conf.post_worker_init(worker=None)  # as each gunicorn worker does
    http, device = _login(app, "officer1")
    changes = [
        inspection_change(
            device, uuid.uuid4(), inspection(world, n, ["officer1", "officer2"]), CLOCK_MS + n
        )
        for n in range(args.n)
    ]
    for start in range(0, args.n, 100):
        body = {"device_id": device, "changes": changes[start : start + 100]}
        assert http.post("/api/v1/sync/push", json=body).status_code == 200
    with app.app_context():
        for username in ("leader1", "officer1"):
            user = fdb.session.scalar(sa.select(User).where(User.username == username))
            policy = Policy(Actor(user=user))
            work = {
                "inspections": lambda policy=policy: pull._inspections(
                    policy, 0, pull._news(0, args.db)[0], args.page, args.db
                ),
                "page": lambda policy=policy: pull.pull(policy, None, args.page, "bench"),
            }
            timings: dict[str, list[float]] = {name: [] for name in work}
            for _ in range(args.runs):
                for name, call in work.items():
                    t0 = time.perf_counter()
                    call()
                    timings[name].append(time.perf_counter() - t0)
            print(
                f"[{args.db}] {username}: "
                + ", ".join(
                    f"{name} {statistics.median(t) * 1000:.1f} ms" for name, t in timings.items()
                )
                + f" (page of {args.page}, {args.n:,} inspections, {400 + args.targets:,} shops)",
                flush=True,
            )


if __name__ == "__main__":
    main()
