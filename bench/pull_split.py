#!/usr/bin/env python3
"""Where an HTTP pull's time goes: fetching pages from gunicorn vs parsing them on the client.

Pushes N creates with the device client, then pulls everything since 0 in pages, as the peers'
benchmark does, timing the fetch (request and body) apart from the standard library's JSON
parse. Prints bytes per change and both times for each of --runs pulls. With ``--encoding``
the pages are asked for compressed that way (zstd, br, gzip; default identity, as the peers'
benchmark asks): the bytes are then those on the wire, and fetching includes decompressing.

Usage: bench/pull_split.py [--db sqlite|postgresql] [--n 5000] [--page 1000] [--runs 3]
                           [--encoding identity|zstd|br|gzip]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import requests  # noqa: E402
from sync_bench import Server, client, inspection, prepare, scratch_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--encoding", choices=("identity", "zstd", "br", "gzip"), default="identity"
    )
    args = parser.parse_args()
    with scratch_database(args.db, "fieldapp_pull_split") as (db, workdir):
        world = prepare(db, workdir / "instance")
        server = Server(db, workdir / "instance", 2)
        try:
            run(args, server, world, workdir)
        finally:
            server.stop()


def run(args, server: Server, world: dict, workdir: Path) -> None:
    pad = client(server.url, workdir, "officer1", "pad-split", 100)
    for n in range(args.n):
        pad.save("inspection", uuid.uuid4(), inspection(world, n, ["officer1", "officer2"]))
    pad.push()
    # The squadron's leader pulls, as in bench/sync_bench.py (and in the peers' benchmark, a
    # reader that wrote nothing).
    reader = client(server.url, workdir, "leader1", "pad-split-reader", 100)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {reader.token}"
    session.headers["Accept-Encoding"] = args.encoding
    for _ in range(args.runs):
        fetch_s = parse_s = 0.0
        size = count = 0
        cursor = None
        while True:
            params = {"limit": args.page} | ({"cursor": cursor} if cursor else {})
            t0 = time.perf_counter()
            response = session.get(f"{server.url}/sync/pull", params=params, timeout=120)
            raw = response.content
            t1 = time.perf_counter()
            assert response.headers.get("Content-Encoding", "identity") == args.encoding
            page = json.loads(raw)
            parse_s += time.perf_counter() - t1
            fetch_s += t1 - t0
            size += int(response.headers["Content-Length"])
            count += len(page["changes"])
            cursor = page["cursor"]
            if not page["has_more"]:
                break
        total = fetch_s + parse_s
        print(
            f"[{args.db}, {args.encoding}] {count} changes, {size / count:.0f} B each:"
            f" fetch {fetch_s * 1000:.0f} ms, parse {parse_s * 1000:.0f} ms"
            f" ({parse_s / total:.0%}), {count / total:.0f} rec/s"
        )


if __name__ == "__main__":
    main()
