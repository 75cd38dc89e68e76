#!/usr/bin/env python3
"""What uploading a photo in parts costs, through the reference device client.

A phone-like 2.5 MB JPEG (12 MP, noise over gradients, as ``bench/photo_bench.py`` makes it) is
uploaded with ``SyncClient.upload_photos`` to fieldapp under gunicorn (as README tells production
to serve it) on SQLite, whole (one ``PUT``) and in parts of each ``--parts`` size (``PUT`` of the
first, ``PATCH`` of the rest), alternating, a new photo id each time; median of ``--runs``. The
ratio to the whole upload is the price of resuming after a drop (a part in flight is all that
is lost) on a link that does not drop.

Usage: bench/upload_bench.py [--runs 9] [--parts 65536,262144,1048576]
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

from photo_bench import photo_like  # noqa: E402
from sync_bench import Server, client, prepare, scratch_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--parts", default="65536,262144,1048576")
    args = parser.parse_args()
    parts = [int(size) for size in args.parts.split(",")]

    with scratch_database("sqlite", "fieldapp_upload") as (db, workdir):
        prepare(db, workdir / "instance")
        photo = workdir / "shopfront.jpg"
        photo.write_bytes(photo_like(4000, 3000, 90, blur=1.0))
        size = photo.stat().st_size
        server = Server(db, workdir / "instance", 1)
        try:
            pad = client(server.url, workdir, "officer1", "pad-upload", 100)
            whole = size  # a part as large as the photo: one PUT
            times: dict[int, list[float]] = {part: [] for part in [whole, *parts]}
            for run in range(args.runs + 1):
                for part in times:
                    pad.add_photo(photo, uuid.uuid4(), taken_at="2026-11-20T09:41:00+08:00")
                    t0 = time.perf_counter()
                    states = pad.upload_photos(part_bytes=part)
                    elapsed = time.perf_counter() - t0
                    assert list(states.values()) == ["stored"], states
                    if run:  # the first round warms the server up
                        times[part].append(elapsed)
        finally:
            server.stop()

    base = statistics.median(times[whole])
    print(f"photo: {size:,} bytes; median of {args.runs} uploads each, alternating")
    for part, samples in times.items():
        median = statistics.median(samples)
        label = "whole (one PUT)" if part == whole else f"parts of {part // 1024} KiB"
        requests = 1 if part == whole else -(-size // part)
        print(
            f"  {label:18} {median * 1000:7.1f} ms  {median / base:5.2f}×  "
            f"(a HEAD and {requests} upload request{'s' if requests > 1 else ''})"
        )


if __name__ == "__main__":
    main()
