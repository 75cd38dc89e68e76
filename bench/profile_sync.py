#!/usr/bin/env python3
"""Where sync time goes, in process: the benchmark's workload through Flask's test client.

No HTTP server and no device client, so the figures are the server's own work per phase:
creates in batches, stale edits (half conflicting) and pull pages. With ``--profile PHASE`` the
phase runs under cProfile and the top functions by cumulative time are printed.

Usage: bench/profile_sync.py [--db sqlite|postgresql] [--n 2000] [--profile push|stale|pull]
[--submitted]
(``PROFILE_SORT=tottime`` orders by own time; ``PROFILE_CALLEES=<regex>`` and
``PROFILE_CALLERS=<regex>`` also print what the matching functions call and what calls them;
``PROFILE_OUT=<file>`` keeps the raw profile for pstats or snakeviz)
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sync_bench import PASSWORD, Database, inspection, prepare, scratch_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--page", type=int, default=500)
    parser.add_argument("--profile", choices=("push", "stale", "pull"))
    parser.add_argument(
        "--submitted",
        action="store_true",
        help="push the creates submitted, not as drafts (the peers' workload): a batch then "
        "also re-assesses the targets it inspected",
    )
    parser.add_argument(
        "--stop-after",
        choices=("push", "stale", "pull"),
        default="pull",
        help="end after this phase (a sampling profiler attached to the whole run then sees "
        "only the phases up to it)",
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="count the SQL statements each phase sends, by their opening words",
    )
    parser.add_argument(
        "--insert-times",
        action="store_true",
        help="time each batch insert (COPY on PostgreSQL) and print the median per table",
    )
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="leave the garbage collector as Python sets it (production tunes it: gunicorn_conf)",
    )
    args = parser.parse_args()

    with scratch_database(args.db, "fieldapp_profile") as (db, workdir):
        run(args, db, workdir)


def run(args, db: Database, workdir: Path) -> None:
    world = prepare(db, workdir / "instance")
    from fieldapp import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": db.url, "LOG_LEVEL": "WARNING"})
    if not args.default_gc:
        from fieldapp.web import gunicorn_conf

        gunicorn_conf.post_worker_init(worker=None)  # as each gunicorn worker does
    clients = {name: _login(app, name) for name in ("officer1", "officer2", "leader1")}
    ids = [uuid.uuid4() for _ in range(args.n)]
    clock = [1_763_712_000_000]

    def change(device, record, fields, base=None):
        clock[0] += 1
        return inspection_change(device, record, fields, clock[0], base)

    def push(name, changes):
        http, device = clients[name]
        for start in range(0, len(changes), args.batch):
            body = {"device_id": device, "changes": changes[start : start + args.batch]}
            response = http.post("/api/v1/sync/push", json=body)
            assert response.status_code == 200, response.get_json()

    statements = Counter()
    if args.statements:
        from fieldapp.db import db as sqla

        with app.app_context():
            engine = sqla.engine

        @event.listens_for(engine, "before_cursor_execute")
        def _count(conn, cursor, statement, parameters, context, executemany):
            statements[" ".join(statement.split())[:90]] += 1

    insert_ms: dict[str, list[float]] = defaultdict(list)
    if args.insert_times:
        from fieldapp import db as fieldapp_db

        untimed = fieldapp_db.insert_rows

        def timed_insert(connection, table, rows):
            t0 = time.perf_counter()
            try:
                return untimed(connection, table, rows)
            finally:
                insert_ms[table.name].append((time.perf_counter() - t0) * 1000)

        # Every caller looks insert_rows up in its own module, where it was imported.
        for module in list(sys.modules.values()):
            if getattr(module, "insert_rows", None) is untimed:
                module.insert_rows = timed_insert

    def phase(name, work):
        profiler = cProfile.Profile() if args.profile == name else None
        insert_ms.clear()
        statements.clear()
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        work()
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - t0
        print(f"{name:6} {args.n / seconds:8.0f} rec/s  ({seconds:.2f} s)")
        if insert_ms:
            medians = {table: statistics.median(ms) for table, ms in insert_ms.items()}
            for table, median in sorted(medians.items()):
                count = len(insert_ms[table])
                print(f"       insert {table:22} {median:6.2f} ms (median of {count})")
            print(f"       insert, all tables   {sum(medians.values()):6.2f} ms (sum of medians)")
        if args.statements:
            total = sum(statements.values())
            print(f"       {total} statements, {total / args.n:.2f} per change")
            for text, count in statements.most_common(25):
                print(f"{count:8}  {text}")
        if profiler:
            if os.environ.get("PROFILE_OUT"):
                profiler.dump_stats(os.environ["PROFILE_OUT"])
            stats = pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative"))
            stats.print_stats(45)
            stats.print_stats("fieldapp/audit")
            if os.environ.get("PROFILE_CALLERS"):
                stats.print_callers(os.environ["PROFILE_CALLERS"])
            if os.environ.get("PROFILE_CALLEES"):
                stats.print_callees(os.environ["PROFILE_CALLEES"])

    submitted = (
        {"status": "submitted", "outcome": "compliant", "ended_at": "2026-11-20T10:00:00+08:00"}
        if args.submitted
        else {}
    )
    creates = [
        change("pad-officer1", i, inspection(world, n, ["officer1", "officer2"]) | submitted)
        for n, i in enumerate(ids)
    ]
    phase("push", lambda: push("officer1", creates))
    if args.stop_after == "push":
        return
    push(
        "officer2",
        [change("pad-officer2", i, {"findings": f"同事补充{n}"}, 1) for n, i in enumerate(ids)],
    )
    stale = [
        change(
            "pad-officer1",
            i,
            {"findings": f"本人修改{n}"} if n % 2 == 0 else {"outcome": "corrected_on_site"},
            1,
        )
        for n, i in enumerate(ids)
    ]
    phase("stale", lambda: push("officer1", stale))
    if args.stop_after == "stale":
        return

    def pull():
        http, _ = clients["leader1"]
        cursor, seen = None, 0
        while True:
            query = {"limit": args.page} | ({"cursor": cursor} if cursor else {})
            body = http.get("/api/v1/sync/pull", query_string=query).get_json()
            seen += len(body["changes"])
            cursor = body["cursor"]
            if not body["has_more"]:
                break
        assert seen >= args.n, seen

    phase("pull", pull)


def inspection_change(device: str, record, fields: dict, clock_ms: int, base=None) -> dict:
    """A device's change of an inspection, as the push endpoint takes it."""
    return {
        "change_id": str(uuid.uuid4()),
        "entity": "inspection",
        "id": str(record),
        "op": "upsert",
        "base_version": base,
        "hlc": f"{clock_ms:016d}:0000:{device}",
        "fields": fields,
    }


def _login(app, username: str):
    http = app.test_client()
    device = f"pad-{username}"
    response = http.post(
        "/api/v1/auth/token",
        json={"username": username, "password": PASSWORD, "device_id": device},
    )
    assert response.status_code == 201, response.get_json()
    http.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {response.get_json()['token']}"
    return http, device


if __name__ == "__main__":
    main()
