#!/usr/bin/env python3
"""Sync benchmark: fieldapp served by gunicorn, driven over HTTP by the reference device client.

The workload has the shape of ../shared/peers/bench_sync.py so the figures compare with the peer
servers measured in the same run (see bench/run_sync_bench.sh):

  push         N inspection creates in batches of B (the peers' workload)
  push_stale   N edits with stale bases, half of them conflicting (merge, conflict log,
               version history and audit entry all included)
  pull_all     every change since 0, paged
  pull_mid     every change since the cursor taken when half the creates were pushed
  pull_scale   time to pull 500 changes after a cursor with SMALL and LARGE records stored
  push_rss     the gunicorn worker's peak RSS growth during one 500-change push

Usage: bench/sync_bench.py --db sqlite|postgresql [--n 5000] [--runs 3] [--json-out FILE]
Prints one line per run and a JSON summary with medians. Loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sync.client import SyncClient  # noqa: E402

PASSWORD = "bench-password-1"
PG_ADMIN = os.environ.get("FIELDAPP_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Database:
    """A fresh database for one run: an SQLite file or a new PostgreSQL database."""

    def __init__(self, kind: str, workdir: Path, name: str):
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / (name + '.sqlite3')}"
        else:
            admin = sa.create_engine(
                PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            admin.dispose()
            self.url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        self.name = name

    def settle(self) -> None:
        """Write what an import left in the write-ahead log out to the tables (CHECKPOINT).

        Loading a million records leaves half a gigabyte of WAL, which PostgreSQL writes back
        over the next minutes while the timed pulls run: the large database's pulls shared the
        disk with its own import, the small one's did not (a pull ratio of 1.67 in one run,
        0.75 in the next). Both sizes are settled alike; the planner's statistics are left as
        the import left them, stale (``sync/pull.py`` must not depend on them)."""
        if self.kind == "postgresql":
            admin = sa.create_engine(
                PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as conn:
                conn.exec_driver_sql("CHECKPOINT")
            admin.dispose()
        else:
            engine = sa.create_engine(self.url)
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()

    def maintenance_running(self) -> set[str]:
        """What PostgreSQL's autovacuum is doing in this database right now (it shares the two
        cores with the timed pulls); nothing on SQLite."""
        if self.kind != "postgresql":
            return set()
        admin = sa.create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with admin.connect() as conn:
                return set(
                    conn.execute(
                        sa.text(
                            "SELECT query FROM pg_stat_activity"
                            " WHERE backend_type = 'autovacuum worker' AND datname = :name"
                        ),
                        {"name": self.name},
                    ).scalars()
                )
        finally:
            admin.dispose()

    def drop(self) -> None:
        if self.kind == "postgresql":
            admin = sa.create_engine(
                PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            admin.dispose()


@contextlib.contextmanager
def scratch_database(kind: str, name: str):
    """``(database, workdir)``: a fresh database and a temporary folder, both gone afterwards.
    ``FIELDAPP_BENCH_DB`` names the database instead of ``name``, so that runs by several people
    do not collide."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        database = Database(kind, workdir, os.environ.get("FIELDAPP_BENCH_DB", name))
        try:
            yield database, workdir
        finally:
            database.drop()


def prepare(db: Database, instance: Path, extra_targets: int = 0) -> dict:
    """Migrate, and add a squadron, officers, the shop checklist and 400 shops (plus padding).
    Then freeze what the process holds, out of the garbage collector's way."""
    os.environ["FIELDAPP_INSTANCE_PATH"] = str(instance)
    from flask_migrate import upgrade

    from fieldapp import create_app
    from fieldapp.actor import Actor
    from fieldapp.auth import operations as auth_ops
    from fieldapp.auth.models import Role
    from fieldapp.checklists import operations as checklist_ops
    from fieldapp.db import change_counter
    from fieldapp.db import db as fdb
    from fieldapp.org import operations as org_ops
    from fieldapp.org.models import District
    from fieldapp.targets.models import Target, TargetKind
    from fieldapp.targets.operations import code_for

    app = create_app({"SQLALCHEMY_DATABASE_URI": db.url})
    system = Actor.for_system("bench")
    with app.app_context():
        upgrade()
        district = District(code="310113", name="宝山区")
        fdb.session.add(district)
        fdb.session.flush()
        ring = [[121.40, 31.30], [121.60, 31.30], [121.60, 31.50], [121.40, 31.50], [121.40, 31.30]]
        squadron = org_ops.create_squadron(
            system, district, "吴淞中队", {"type": "Polygon", "coordinates": [ring]}
        )
        settings = app.extensions["fieldapp.auth"]
        users = {
            name: auth_ops.create_user(
                system,
                settings,
                username=name,
                name=name,
                role=role,
                password=PASSWORD,
                district_id=district.id,
                squadron=squadron,
            ).id
            for name, role in (
                ("officer1", Role.officer),
                ("officer2", Role.officer),
                ("leader1", Role.leader),
            )
        }
        checklist = checklist_ops.create_checklist(
            system,
            TargetKind.shop,
            "沿街商户市容环境检查表",
            [
                {"code": f"S{n:02d}", "text": f"检查项{n}", "severity": "moderate"}
                for n in range(1, 11)
            ],
        )
        checklist_id = checklist.id
        fdb.session.commit()
        total = 400 + extra_targets
        seq = fdb.session.scalar(sa.select(change_counter.c.value))
        rows, target_ids = [], []
        for n in range(total):
            target_id = uuid.UUID(int=n + 1, version=4)
            if n < 400:
                target_ids.append(str(target_id))
            rows.append(
                {
                    "id": target_id,
                    "kind": "shop",
                    "code": code_for(target_id, "shop"),
                    "name": f"商户{n}",
                    "address": f"淞滨路{n}号",
                    "squadron_id": squadron.id,
                    "lon": 121.45 + (n % 1000) / 1e5,
                    "lat": 31.35 + (n // 1000) / 1e5,
                    "credit_class": "B",
                    "sensitive_surroundings": False,
                    "business_type": "retail",
                    "active": True,
                    "field_clocks": {},
                    "field_versions": {},
                    "version": 1,
                    "change_seq": seq + n + 1,
                    "created_at": _now(),
                    "updated_at": _now(),
                }
            )
            if len(rows) == 20_000:
                fdb.session.execute(sa.insert(Target.__table__), rows)
                rows = []
        if rows:
            fdb.session.execute(sa.insert(Target.__table__), rows)
        fdb.session.execute(sa.update(change_counter).values(value=seq + total))
        fdb.session.commit()
        fdb.engine.dispose()
    # The benchmark's own process now holds the whole app (models, schemas, metadata) besides
    # the device clients. Frozen, the collector no longer traces it: its full collections took
    # 120-450 ms each, every few pages parsed, and were charged to the timed pulls. The peers'
    # client is a process of its own without a server in it.
    gc.collect()
    gc.freeze()
    return {
        "users": {k: str(v) for k, v in users.items()},
        "checklist_id": checklist_id,
        "targets": target_ids,
    }


def _now():
    from fieldapp.db import utcnow

    return utcnow()


class Server:
    """fieldapp under gunicorn, as README tells production to run it."""

    def __init__(self, db: Database, instance: Path, workers: int):
        self.port = free_port()
        env = {
            **os.environ,
            "FIELDAPP_DATABASE_URL": db.url,
            "FIELDAPP_INSTANCE_PATH": str(instance),
            "FIELDAPP_LOG_LEVEL": "WARNING",
            # Serve the code of this checkout, whatever else is installed.
            "PYTHONPATH": str(ROOT),
        }
        gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
        self.process = subprocess.Popen(
            [
                gunicorn,
                "-c",
                "python:fieldapp.web.gunicorn_conf",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "300",
                "--log-level",
                "warning",
                "fieldapp:create_app()",
            ],
            env=env,
            cwd=str(ROOT),
        )
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(p) for p in out.split()]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def inspection(world: dict, n: int, officers: list[str]) -> dict:
    return {
        "target_id": world["targets"][n % len(world["targets"])],
        "checklist_id": world["checklist_id"],
        "checklist_version": 1,
        "officer_ids": [world["users"][o] for o in officers],
        "origin": "patrol",
        "started_at": "2026-11-20T09:30:00+08:00",
        "location": {"lon": 121.4701, "lat": 31.3702, "accuracy_m": 8.0, "crs": "gcj02"},
        "answers": {
            f"S{k:02d}": {
                "result": "fail" if (n + k) % 7 == 0 else "pass",
                "note": "",
                "photo_ids": [],
            }
            for k in range(1, 11)
        },
        "findings": f"店门外堆放纸箱，第{n}号记录",
        "photo_ids": [str(uuid.uuid4()) for _ in range(n % 3)],
        "status": "draft",
    }


def plain_session(token: str):
    """A plain HTTP session that asks for pages as the peers' benchmark does: uncompressed
    (http.client sends "identity"), so the rates compare. Devices that accept compression get
    smaller pages (bench/pull_split.py)."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    session.headers["Accept-Encoding"] = "identity"
    return session


def raw_page(session, url: str, cursor: str | None, page: int) -> dict:
    """One pull page after ``cursor``, parsed by the standard library (as requests does)."""
    params = {"limit": page} | ({"cursor": cursor} if cursor else {})
    response = session.get(f"{url}/sync/pull", params=params, timeout=120)
    response.raise_for_status()
    return response.json()


def raw_pull(url: str, token: str, cursor: str | None, page: int) -> list[str]:
    """Every change after ``cursor`` with plain HTTP requests, keeping only the ids."""
    session = plain_session(token)
    ids: list[str] = []
    while True:
        body = raw_page(session, url, cursor, page)
        ids += [c["id"] for c in body["changes"]]
        cursor = body["cursor"]
        if not body["has_more"]:
            return ids


def client(url: str, workdir: Path, user: str, device: str, batch: int) -> SyncClient:
    pad = SyncClient(
        url, str(workdir / f"{device}-{uuid.uuid4().hex[:6]}.sqlite3"), device, batch_size=batch
    )
    pad.login(user, PASSWORD)
    return pad


def run_once(args, workdir: Path, run: int) -> dict:
    db = Database(args.db, workdir, f"fieldapp_bench_{os.getpid()}_{run}")
    instance = workdir / f"instance-{run}"
    world = prepare(db, instance)
    server = Server(db, instance, args.workers)
    try:
        officer = client(server.url, workdir, "officer1", f"pad-a{run}", args.batch)
        colleague = client(server.url, workdir, "officer2", f"pad-b{run}", args.batch)
        mid_reader = client(server.url, workdir, "leader1", f"pad-m{run}", args.batch)
        ids = [uuid.uuid4() for _ in range(args.n)]
        half = args.n // 2
        push_s = 0.0
        for start in range(0, args.n, args.batch):
            for n in range(start, min(start + args.batch, args.n)):
                officer.save("inspection", ids[n], inspection(world, n, ["officer1", "officer2"]))
            t0 = time.perf_counter()
            results = officer.push()
            push_s += time.perf_counter() - t0
            assert all(r["status"] == "applied" for r in results), results[:3]
            if start + args.batch == half:
                mid_reader.pull(limit=args.page)  # the midpoint cursor (not timed)

        # Stale edits: the colleague edits findings of every record first (version 2); then the
        # officer, still at version 1, edits findings of half (conflicts) and outcome of the rest.
        for n, record in enumerate(ids):
            colleague.db.execute(
                "INSERT OR REPLACE INTO records (entity, id, version, data) VALUES (?,?,?,?)",
                ("inspection", str(record), 1, "{}"),
            )
            colleague.save("inspection", record, {"findings": f"同事补充{n}"})
        colleague.push()
        for n, record in enumerate(ids):
            officer.save(
                "inspection",
                record,
                {"findings": f"本人修改{n}"} if n % 2 == 0 else {"outcome": "corrected_on_site"},
            )
        t0 = time.perf_counter()
        stale = officer.push()
        stale_s = time.perf_counter() - t0
        statuses = {
            s: sum(1 for r in stale if r["status"] == s) for s in ("merged", "conflict", "rejected")
        }
        assert statuses["rejected"] == 0, [r for r in stale if r["status"] == "rejected"][:2]

        # Pull as the peers' benchmark does (HTTP, collect ids): the server's rate.
        mid_cursor = mid_reader._meta("cursor")
        t0 = time.perf_counter()
        raw_all = raw_pull(server.url, mid_reader.token, None, args.page)
        raw_all_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        raw_mid = raw_pull(server.url, mid_reader.token, mid_cursor, args.page)
        raw_mid_s = time.perf_counter() - t0
        # And through the device client, which also stores every record locally.
        reader = client(server.url, workdir, "leader1", f"pad-r{run}", args.batch)
        t0 = time.perf_counter()
        pulled_all = reader.pull(limit=args.page)
        pull_all_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        pulled_mid = mid_reader.pull(limit=args.page)
        pull_mid_s = time.perf_counter() - t0
        lossless = set(reader.records("inspection")) == {str(i) for i in ids} and set(
            mid_reader.records("inspection")
        ) == {str(i) for i in ids}

        rss = measure_push_rss(server, world, workdir, run, args.batch)
        return {
            "push_rps": args.n / push_s,
            "push_stale_rps": args.n / stale_s,
            "pull_all_rps": len(raw_all) / raw_all_s,
            "pull_mid_rps": len(raw_mid) / raw_mid_s,
            "client_pull_all_rps": pulled_all / pull_all_s,
            "client_pull_mid_rps": pulled_mid / pull_mid_s,
            "pulled_all": len(raw_all),
            "pulled_mid": len(raw_mid),
            "stale_statuses": statuses,
            "lossless": lossless,
            **rss,
        }
    finally:
        server.stop()
        db.drop()


def measure_push_rss(server: Server, world: dict, workdir: Path, run: int, batch: int) -> dict:
    """Peak RSS growth of the worker that serves one 500-change push (single worker)."""
    pad = client(server.url, workdir, "officer1", f"pad-rss{run}", 500)
    workers = server.worker_pids()
    before = {pid: rss_kib(pid, "VmRSS") for pid in workers}
    cleared = all(reset_peak(pid) for pid in workers)
    for n in range(500):
        pad.save("inspection", uuid.uuid4(), inspection(world, n, ["officer1"]))
    pad.push()
    peaks = {pid: rss_kib(pid, "VmHWM") for pid in workers}
    return {
        "worker_rss_mib": max(before.values()) / 1024,
        "worker_peak_rss_mib": max(peaks.values()) / 1024,
        "peak_reset": cleared,
    }


def pull_scale(args, workdir: Path) -> dict:
    """Time to pull 500 changes after a cursor, with few and with many records stored: the
    cursor at the end (a device that syncs often), and at the start (a first sync, with every
    stored record still to come).

    After the cursor, two timings of the same 500 changes: the device client's pull (which also
    writes them into its local copy, by then holding every stored record, so its own SQLite
    grows with the server's database), and before it the page fetched over plain HTTP and
    parsed, as the peers' benchmark pulls: the server's cost alone."""
    out, raw, first, samples = {}, {}, {}, {}
    for stored in (args.small, args.large):
        db = Database(args.db, workdir, f"fieldapp_scale_{os.getpid()}_{stored}")
        instance = workdir / f"scale-{stored}"
        t0 = time.perf_counter()
        world = prepare(db, instance, extra_targets=stored)
        db.settle()
        print(f"  prepared {stored:,} records in {time.perf_counter() - t0:.0f}s", flush=True)
        server = Server(db, instance, 1)
        try:
            reader = client(server.url, workdir, "leader1", f"scale-r{stored}", 500)
            first[stored] = first_page_s(server.url, reader.token, args.scale_runs)
            reader.pull(limit=1000)  # up to date: the cursor is at the end
            writer = client(server.url, workdir, "officer1", f"scale-w{stored}", 500)
            session = plain_session(reader.token)
            timings, raw_timings, busy = [], [], set()
            for _ in range(args.scale_runs):
                for n in range(500):
                    writer.save("inspection", uuid.uuid4(), inspection(world, n, ["officer1"]))
                writer.push()
                t0 = time.perf_counter()
                fetched = raw_page(session, server.url, reader._meta("cursor"), 500)
                raw_timings.append(time.perf_counter() - t0)
                assert len(fetched["changes"]) >= 500, len(fetched["changes"])
                t0 = time.perf_counter()
                got = reader.pull(limit=500)
                timings.append(time.perf_counter() - t0)
                assert got >= 500, got
                busy |= db.maintenance_running()
            out[stored] = statistics.median(timings)
            raw[stored] = statistics.median(raw_timings)
            samples[stored] = {
                "client_ms": [round(t * 1000, 1) for t in timings],
                "http_ms": [round(t * 1000, 1) for t in raw_timings],
                "maintenance": sorted(busy),
            }
            print(
                f"  {stored:,} stored: client {samples[stored]['client_ms']} ms, "
                f"plain HTTP {samples[stored]['http_ms']} ms; background maintenance seen "
                f"after the pulls: {', '.join(busy) or 'none'}",
                flush=True,
            )
        finally:
            server.stop()
            db.drop()
    return {
        "pull_500_s": out,
        "ratio": out[args.large] / out[args.small],
        "http_pull_500_s": raw,
        "http_ratio": raw[args.large] / raw[args.small],
        "first_500_s": first,
        "first_ratio": first[args.large] / first[args.small],
        "samples": samples,
    }


def first_page_s(url: str, token: str, runs: int) -> float:
    """Median time of the first page of 500 from the start (fetched and parsed), after one
    untimed request that warms the worker and the database's cache."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    session.get(f"{url}/sync/pull", params={"limit": 500}, timeout=300).raise_for_status()
    timings = []
    for _ in range(runs):
        t0 = time.perf_counter()
        page = session.get(f"{url}/sync/pull", params={"limit": 500}, timeout=300).json()
        timings.append(time.perf_counter() - t0)
        assert len(page["changes"]) == 500 and page["has_more"], len(page["changes"])
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], required=True)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument(
        "--scale-runs",
        type=int,
        default=7,
        help="pulls timed per database size (the median is taken): single pages of 30 to "
        "130 ms swing with the machine",
    )
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--scale-only", action="store_true", help="only the pull-cost-by-size part")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fieldapp-bench-"))
    runs = []
    for run in range(0 if args.scale_only else args.runs):
        result = run_once(args, workdir, run)
        runs.append(result)
        print(
            f"[fieldapp-{args.db}] run {run + 1}: push {result['push_rps']:.0f} rec/s | "
            f"stale push {result['push_stale_rps']:.0f} rec/s {result['stale_statuses']} | "
            f"pull since 0 {result['pull_all_rps']:.0f} rec/s ({result['pulled_all']}) | "
            f"pull since mid {result['pull_mid_rps']:.0f} rec/s ({result['pulled_mid']}) | "
            f"worker RSS {result['worker_rss_mib']:.0f} MiB, "
            f"peak {result['worker_peak_rss_mib']:.0f} MiB | "
            f"lossless={result['lossless']}",
            flush=True,
        )
    keys = (
        "push_rps",
        "push_stale_rps",
        "pull_all_rps",
        "pull_mid_rps",
        "client_pull_all_rps",
        "client_pull_mid_rps",
        "worker_peak_rss_mib",
    )
    summary = {
        "label": f"fieldapp-{args.db}",
        "n": args.n,
        "batch": args.batch,
        "page": args.page,
        "runs": runs,
        "median": {k: statistics.median(r[k] for r in runs) for k in keys} if runs else {},
        "all_lossless": all(r["lossless"] for r in runs),
    }
    if not args.skip_scale:
        summary["pull_scale"] = pull_scale(args, workdir)
        scale = summary["pull_scale"]
        print(
            f"[fieldapp-{args.db}] pull 500 after cursor: {args.small:,} stored "
            f"{scale['pull_500_s'][args.small] * 1000:.0f} ms, {args.large:,} stored "
            f"{scale['pull_500_s'][args.large] * 1000:.0f} ms, ratio {scale['ratio']:.2f} "
            f"(over plain HTTP: {scale['http_pull_500_s'][args.small] * 1000:.0f} and "
            f"{scale['http_pull_500_s'][args.large] * 1000:.0f} ms, "
            f"ratio {scale['http_ratio']:.2f}); "
            f"first 500 from the start: {scale['first_500_s'][args.small] * 1000:.0f} ms and "
            f"{scale['first_500_s'][args.large] * 1000:.0f} ms, ratio {scale['first_ratio']:.2f}",
            flush=True,
        )
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2, default=str))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2, default=str))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
