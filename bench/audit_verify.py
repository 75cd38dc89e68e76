#!/usr/bin/env python3
"""How fast the audit log is chained and verified: writes N entries through the application's
own path (buffered, chained at commit, in transactions of --per-commit entries), then runs the
full chain check. Prints entries/s for both.

Usage: bench/audit_verify.py [--db sqlite|postgresql] [--n 200000] [--per-commit 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sync_bench import Database, scratch_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--per-commit", type=int, default=1000)
    args = parser.parse_args()
    with scratch_database(args.db, "fieldapp_audit_bench") as (db, workdir):
        run(args, db, workdir)


def run(args, database: Database, workdir: Path) -> None:
    import os

    os.environ["FIELDAPP_INSTANCE_PATH"] = str(workdir / "instance")
    from flask_migrate import upgrade

    from fieldapp import create_app
    from fieldapp.actor import Actor
    from fieldapp.audit import operations as audit
    from fieldapp.db import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": database.url, "LOG_LEVEL": "WARNING"})
    actor = Actor.for_system("bench")
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        for first in range(0, args.n, args.per_commit):
            audit.append(
                [
                    audit.entry_values(
                        actor,
                        "inspection.update",
                        "inspection",
                        f"record-{n}",
                        before={"findings": "", "status": "draft"},
                        after={"findings": f"门口堆物 {n}", "status": "submitted"},
                    )
                    for n in range(first, min(first + args.per_commit, args.n))
                ]
            )
            db.session.commit()
        written = time.perf_counter() - started
        started = time.perf_counter()
        verdict = audit.verify(db.session())
        checked = time.perf_counter() - started
        db.session.rollback()
    assert verdict.ok and verdict.entries == args.n, verdict
    print(f"{args.db}: {args.n:,} entries, {args.per_commit} per commit")
    print(f"  chain and write {args.n / written:10,.0f} entries/s  ({written:.1f} s)")
    print(f"  verify          {args.n / checked:10,.0f} entries/s  ({checked:.1f} s)")


if __name__ == "__main__":
    main()
