#!/usr/bin/env python3
"""Location and case-file checks for 10,000 inspections at once, beside one at a time.

Builds the district demo (about 14,700 inspections, 3,000 shops, 80 sites with boundaries, two
squadron polygons) in a temporary instance, or uses ``--instance`` if it holds one, then:

- bulk: ``check_inspections`` over the ``--count`` most recent inspections (every flag, the
  location ones with prepared geometries parsed once per target and squadron), ``--runs``
  times, median;
- one at a time: the same function called per inspection (geometries parsed again per row, a
  query set per row) on a sample of ``--sample``, scaled to ``--count``.

On PostgreSQL pass ``--database-url`` (an empty database, or one holding the demo).

Usage: bench/checks_bench.py [--instance DIR] [--database-url URL] [--count 10000] [--runs 3]
       [--sample 300] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance")
    parser.add_argument("--database-url")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--json-out")
    args = parser.parse_args()

    holder = None
    instance = args.instance
    if instance is None:
        holder = tempfile.TemporaryDirectory()
        instance = holder.name
    env = {**os.environ, "FIELDAPP_INSTANCE_PATH": instance, "FIELDAPP_LOG_LEVEL": "WARNING"}
    env.pop("FIELDAPP_DATABASE_URL", None)
    if args.database_url:
        env["FIELDAPP_DATABASE_URL"] = args.database_url
    fieldapp = str(Path(sys.executable).with_name("fieldapp"))
    started = time.perf_counter()
    built = subprocess.run(
        [fieldapp, "demo", "--scale", "district", "--no-serve"], env=env, capture_output=True
    )
    if built.returncode != 0:
        sys.exit(built.stderr.decode())
    print(f"demo district ready in {time.perf_counter() - started:.0f} s", flush=True)

    os.environ.clear()
    os.environ.update(env)
    import sqlalchemy as sa

    from fieldapp import create_app
    from fieldapp.checks import operations as checks
    from fieldapp.db import db, utcnow
    from fieldapp.inspections.models import Inspection

    app = create_app()
    with app.app_context():
        settings = checks.CheckSettings.from_config(app.config)
        ids = db.session.scalars(
            sa.select(Inspection.id).order_by(Inspection.started_at.desc()).limit(args.count)
        ).all()
        now = utcnow()
        bulk_times, found = [], {}
        for _ in range(args.runs):
            db.session.expire_all()
            started = time.perf_counter()
            found = checks.check_inspections(ids, settings, now)
            bulk_times.append(time.perf_counter() - started)
        sample = random.Random(7).sample(ids, min(args.sample, len(ids)))
        started = time.perf_counter()
        for inspection_id in sample:
            checks.check_inspections([inspection_id], settings, now)
        one_each = (time.perf_counter() - started) / len(sample) * len(ids)
        counts = checks.count_flags(found)
        db.session.rollback()
    bulk = statistics.median(bulk_times)
    figures = {
        "database": app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0],
        "inspections": len(ids),
        "runs": args.runs,
        "bulk_median_s": round(bulk, 2),
        "bulk_runs_s": [round(t, 2) for t in bulk_times],
        "one_at_a_time_scaled_s": round(one_each, 1),
        "speedup": round(one_each / bulk, 1),
        "flags": dict(counts.most_common()),
        "inspections_flagged": sum(1 for flags in found.values() if flags),
    }
    print(
        f"[{figures['database']}] checks for {len(ids):,} inspections: "
        f"bulk median {bulk:.2f} s over {args.runs} runs "
        f"({', '.join(f'{t:.2f}' for t in bulk_times)}); one at a time {one_each:.1f} s "
        f"(sample of {len(sample)}, scaled) -> {one_each / bulk:.1f}x"
    )
    print("flags raised: " + ", ".join(f"{k} {v:,}" for k, v in counts.most_common()))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    if holder is not None:
        holder.cleanup()


if __name__ == "__main__":
    main()
