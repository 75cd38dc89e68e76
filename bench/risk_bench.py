#!/usr/bin/env python3
"""Full risk recompute at city scale, beside a one-target-at-a-time loop over the same data.

Runs against a demo database (build one with ``fieldapp demo --scale city --no-serve``; on
PostgreSQL set ``FIELDAPP_DATABASE_URL`` first). Every run is rolled back, so the database is
left as it was. The settings table is brought to the shipped defaults first (committed).

- recompute: ``assess_targets`` over every target (set-based: a few queries and bulk writes per
  20,000 targets), in one process and with worker processes (``--workers 1,2``), ``--runs``
  times each, interleaved, medians;
- naive: the same assessment one target at a time (its own queries and writes per target) over
  a random sample of ``--sample`` targets, timed and scaled to the whole city.

Usage: bench/risk_bench.py --database-url URL [--runs 3] [--workers 1,2] [--sample 2000]
       [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument(
        "--workers",
        type=lambda text: [int(w) for w in text.split(",")],
        default=[1, 2],
        help="worker counts to compare, e.g. 1,2 (default)",
    )
    parser.add_argument("--json-out")
    args = parser.parse_args()

    from fieldapp import create_app
    from fieldapp.actor import Actor
    from fieldapp.db import db
    from fieldapp.risk.defaults import DEFAULT_SETTINGS
    from fieldapp.risk.models import RiskSetting
    from fieldapp.risk.operations import assess_targets
    from fieldapp.targets.models import Target

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "LOG_LEVEL": "WARNING"})
    actor = Actor.for_system("bench")
    now = datetime.now(UTC)
    with app.app_context():
        for key, entry in DEFAULT_SETTINGS.items():
            db.session.merge(
                RiskSetting(key=key, value=entry["value"], description=entry["description"])
            )
        db.session.commit()
        ids = db.session.scalars(sa.select(Target.id)).all()
        print(f"{len(ids):,} targets on {db.engine.dialect.name}", flush=True)

        recompute = {workers: [] for workers in args.workers}
        for run in range(args.runs):  # interleaved: a noisy spell hits every variant alike
            for workers in args.workers:
                t0 = time.perf_counter()
                summary = assess_targets(actor, now, workers=workers)
                db.session.flush()
                seconds = time.perf_counter() - t0
                db.session.rollback()
                recompute[workers].append(seconds)
                print(
                    f"recompute run {run + 1}, {workers} worker(s): {seconds:.1f} s "
                    f"({summary.changed:,} rewritten, {summary.level_changes:,} level changes)",
                    flush=True,
                )

        sample = random.Random(1).sample(ids, min(args.sample, len(ids)))
        t0 = time.perf_counter()
        for target_id in sample:
            assess_targets(actor, now, [target_id])
        db.session.flush()
        naive_sample = time.perf_counter() - t0
        db.session.rollback()
        per_target_ms = naive_sample / len(sample) * 1000
        naive_total = per_target_ms * len(ids) / 1000
        print(
            f"naive: {len(sample):,} targets one at a time in {naive_sample:.1f} s "
            f"({per_target_ms:.2f} ms each): {naive_total:.0f} s for all",
            flush=True,
        )
    medians = {workers: statistics.median(times) for workers, times in recompute.items()}
    best = min(medians.values())
    report = {
        "database": args.database_url.split(":", 1)[0],
        "targets": len(ids),
        "recompute_s": {w: [round(s, 2) for s in times] for w, times in recompute.items()},
        "recompute_median_s": {w: round(m, 2) for w, m in medians.items()},
        "naive_sample": len(sample),
        "naive_ms_per_target": round(per_target_ms, 2),
        "naive_estimated_total_s": round(naive_total, 1),
        "speedup_best_vs_naive": round(naive_total / best, 1),
    }
    print(json.dumps(report, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
