#!/usr/bin/env python3
"""How much of a push is the database's own work: the SQL of batches of creates, replayed bare.

Pushes the benchmark's creates in batches through the app (Flask's test client, in process) on
one copy of a prepared SQLite database, recording every statement with its bound parameters and
where each transaction commits. Then replays those statements with nothing but ``sqlite3`` on a
second copy of the same database, batch by batch, and prints the median time per batch of both.

The replay is the floor for what the push writes (five tables, the savepoints, the commit's
fsync), whatever Python the server runs around it.

Usage: bench/push_floor.py [--n 5000] [--batch 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from profile_sync import _login, inspection_change  # noqa: E402
from sync_bench import inspection, prepare, scratch_database  # noqa: E402

COMMIT = object()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="app and replay runs, alternated")
    args = parser.parse_args()
    with scratch_database("sqlite", "fieldapp_floor") as (db, workdir):
        world = prepare(db, workdir / "instance")
        source = Path(db.url.removeprefix("sqlite:///"))
        token = _log_in(source)
        _checkpoint(source)
        app_ms, bare_ms, commit_ms = [], [], []
        for round_ in range(args.rounds):
            copy = workdir / f"app-{round_}.sqlite3"
            shutil.copyfile(source, copy)
            batches, timings = push_through_app(copy, token, world, args)
            app_ms += timings
            copy = workdir / f"bare-{round_}.sqlite3"
            shutil.copyfile(source, copy)
            timings, commits = replay(copy, batches)
            bare_ms += timings
            commit_ms += commits
        app, bare = statistics.median(app_ms), statistics.median(bare_ms)
        statements = sum(len(b) for b in batches) / len(batches) - 1
        print(
            f"per batch of {args.batch} creates (median of {len(app_ms)}): "
            f"app {app:.1f} ms, its SQL replayed bare {bare:.1f} ms "
            f"({bare / app:.0%} of the app's time; {statements:.0f} statements a batch, "
            f"the commit {statistics.median(commit_ms):.1f} ms)"
        )


def _checkpoint(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _app(path: Path):
    from fieldapp import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "LOG_LEVEL": "WARNING"})


def _log_in(path: Path) -> tuple[str, str]:
    """Log the officer in on the database at ``path``: (authorization header, device id)."""
    from fieldapp.db import db as sqla

    app = _app(path)
    http, device = _login(app, "officer1")
    with app.app_context():
        sqla.engine.dispose()
    return http.environ_base["HTTP_AUTHORIZATION"], device


def push_through_app(
    path: Path, token: tuple[str, str], world: dict, args
) -> tuple[list[list], list[float]]:
    """Push the creates through the app on ``path``: each batch's recorded statements (and
    commit), and each batch's time in milliseconds."""
    from fieldapp.db import db as sqla

    app = _app(path)
    http = app.test_client()
    http.environ_base["HTTP_AUTHORIZATION"], device = token
    with app.app_context():
        engine = sqla.engine
    recorded: list = []

    def _record(conn, cursor, statement, parameters, context, executemany):
        recorded.append((statement, parameters, executemany))

    def _commit(conn):
        recorded.append(COMMIT)

    event.listen(engine, "before_cursor_execute", _record)
    event.listen(engine, "commit", _commit)
    batches, timings = [], []
    try:
        for start in range(0, args.n, args.batch):
            changes = [
                inspection_change(
                    device,
                    uuid.uuid4(),
                    inspection(world, n, ["officer1", "officer2"]),
                    1_763_712_000_000 + n,
                )
                for n in range(start, min(start + args.batch, args.n))
            ]
            recorded.clear()
            t0 = time.perf_counter()
            body = {"device_id": device, "changes": changes}
            response = http.post("/api/v1/sync/push", json=body)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.get_json()
            batches.append(list(recorded))
    finally:
        event.remove(engine, "before_cursor_execute", _record)
        event.remove(engine, "commit", _commit)
        engine.dispose()
    return batches, timings


def replay(path: Path, batches: list[list]) -> tuple[list[float], list[float]]:
    """Run the recorded statements on ``path`` with the bare driver, set up as the app sets up
    its connections: each batch's time, and its commit's, in milliseconds."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("foreign_keys=ON", "busy_timeout=30000", "journal_mode=WAL"):
        conn.execute(f"PRAGMA {pragma}")
    timings, commits = [], []
    for batch in batches:
        t0 = time.perf_counter()
        cursor = conn.cursor()
        for item in batch:
            if item is COMMIT:
                t1 = time.perf_counter()
                conn.commit()
                commits.append((time.perf_counter() - t1) * 1000)
                continue
            statement, parameters, executemany = item
            if executemany:
                cursor.executemany(statement, parameters)
            else:
                cursor.execute(statement, parameters)
                cursor.fetchall()
        timings.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return timings, commits


if __name__ == "__main__":
    main()
