#!/usr/bin/env python3
"""Print the side-by-side table of one sync benchmark run (bench/run_sync_bench.sh)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    runs = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    print("| server | push rec/s | stale push rec/s | pull since 0 rec/s | pull since mid rec/s |")
    print("|---|---|---|---|---|")
    for name, data in runs.items():
        m = data["median"]
        stale = f"{m['push_stale_rps']:.0f}" if "push_stale_rps" in m else "-"
        pulls = f"{m['pull_all_rps']:.0f} | {m['pull_mid_rps']:.0f}"
        print(f"| {name} | {m['push_rps']:.0f} | {stale} | {pulls} |")

    def ratio(a, b, key):
        if a in runs and b in runs:
            print(f"{a} / {b} {key}: {runs[a]['median'][key] / runs[b]['median'][key]:.2f}")

    ratio("fieldapp-postgresql", "kinto-pg", "push_rps")
    ratio("fieldapp-sqlite", "pouch-leveldb", "push_rps")
    ratio("fieldapp-sqlite", "pouch-leveldb", "pull_all_rps")
    ratio("fieldapp-postgresql", "pouch-leveldb", "pull_all_rps")
    for name in ("fieldapp-sqlite", "fieldapp-postgresql"):
        if name in runs and "pull_scale" in runs[name]:
            scale = runs[name]["pull_scale"]
            ratio_text = f"{scale['ratio']:.2f}"
            print(f"{name} pull 500 after cursor: {scale['pull_500_s']} s, ratio {ratio_text}")
            if "first_500_s" in scale:
                print(
                    f"{name} first 500 from the start: {scale['first_500_s']} s,"
                    f" ratio {scale['first_ratio']:.2f}"
                )
        if name in runs:
            peak = runs[name]["median"]["worker_peak_rss_mib"]
            print(f"{name} worker peak RSS (500-change push): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
