#!/usr/bin/env python3
"""Where a push of creates spends its time end to end: the device client's own work against the
HTTP call (gunicorn and the server), batch by batch.

Serves a prepared database with gunicorn as ``bench/sync_bench.py`` does, saves the benchmark's
creates into the reference device client in batches and times each ``push()`` and, inside it,
each HTTP call. Prints the medians per batch: the whole push, the call, and the client's work
around the call (reading its outbox, encoding, settling the answers).

Usage: bench/push_split.py [--db sqlite|postgresql] [--n 5000] [--batch 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sync_bench import Database, Server, client, inspection, prepare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fieldapp-push-split-"))
    db = Database(args.db, workdir, f"fieldapp_split_{uuid.uuid4().hex[:6]}")
    world = prepare(db, workdir / "instance")
    server = Server(db, workdir / "instance", workers=2)
    try:
        pad = client(server.url, workdir, "officer1", "pad-split", args.batch)
        calls: list[float] = []
        send = pad._call

        def timed_call(*call_args, **kwargs):
            started = time.perf_counter()
            try:
                return send(*call_args, **kwargs)
            finally:
                calls.append(time.perf_counter() - started)

        pad._call = timed_call
        pushes: list[float] = []
        for start in range(0, args.n, args.batch):
            for n in range(start, min(start + args.batch, args.n)):
                pad.save("inspection", uuid.uuid4(), inspection(world, n, ["officer1", "officer2"]))
            started = time.perf_counter()
            pad.push()
            pushes.append(time.perf_counter() - started)
        push_ms, call_ms = statistics.median(pushes) * 1000, statistics.median(calls) * 1000
        print(
            f"[{args.db}] per batch of {args.batch} (median of {len(pushes)}):"
            f" push {push_ms:.1f} ms = HTTP call {call_ms:.1f} ms"
            f" + client {push_ms - call_ms:.1f} ms;"
            f" {args.n / sum(pushes):.0f} rec/s"
        )
    finally:
        server.stop()
        db.drop()


if __name__ == "__main__":
    main()
