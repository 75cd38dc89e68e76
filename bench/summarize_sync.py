#!/usr/bin/env python3
"""Print the side-by-side table of one sync benchmark run (bench/run_sync_bench.sh).

Reads ``<OUT>/runs/<server>.<round>.json`` (one run of one server per round) and
``<OUT>/runs/<fieldapp-db>.scale.json``; writes ``<OUT>/summary.json``. Each goal's ratio is
taken round by round, between runs made minutes apart, and the median of those is quoted.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

#: (fieldapp, peer, figure) pairs that the goals compare.
GOALS = (
    ("fieldapp-postgresql", "kinto-pg", "push_rps"),
    ("fieldapp-sqlite", "pouch-leveldb", "push_rps"),
    ("fieldapp-sqlite", "pouch-leveldb", "pull_all_rps"),
    ("fieldapp-postgresql", "pouch-leveldb", "pull_all_rps"),
)
FIGURES = ("push_rps", "push_stale_rps", "pull_all_rps", "pull_mid_rps", "worker_peak_rss_mib")


def load(out: Path) -> tuple[dict[str, dict[int, dict]], dict[str, dict]]:
    """Each server's runs by round, and fieldapp's pull-cost-by-size results by server."""
    rounds: dict[str, dict[int, dict]] = defaultdict(dict)
    scale: dict[str, dict] = {}
    for path in sorted((out / "runs").glob("*.json")):
        server, part = path.stem.rsplit(".", 1)
        data = json.loads(path.read_text())
        if part == "scale":
            scale[server] = data["pull_scale"]
        else:
            [run] = data["runs"]
            rounds[server][int(part)] = run
    return rounds, scale


def summarize(rounds: dict[str, dict[int, dict]], scale: dict[str, dict]) -> dict:
    medians = {
        server: {
            key: statistics.median(run[key] for run in runs.values())
            for key in FIGURES
            if all(key in run for run in runs.values())
        }
        for server, runs in rounds.items()
    }
    ratios = {}
    for ours, peer, key in GOALS:
        shared = sorted(set(rounds.get(ours, {})) & set(rounds.get(peer, {})))
        if shared:
            each = [rounds[ours][r][key] / rounds[peer][r][key] for r in shared]
            ratios[f"{ours} / {peer} {key}"] = {"rounds": each, "median": statistics.median(each)}
    return {"medians": medians, "ratios": ratios, "pull_scale": scale}


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
    rounds, scale = load(out)
    summary = summarize(rounds, scale)
    print("| server | push rec/s | stale push rec/s | pull since 0 rec/s | pull since mid rec/s |")
    print("|---|---|---|---|---|")
    for server, m in summary["medians"].items():
        stale = f"{m['push_stale_rps']:.0f}" if "push_stale_rps" in m else "-"
        pulls = f"{m['pull_all_rps']:.0f} | {m['pull_mid_rps']:.0f}"
        print(f"| {server} | {m['push_rps']:.0f} | {stale} | {pulls} |")
    for name, ratio in summary["ratios"].items():
        each = ", ".join(f"{r:.2f}" for r in ratio["rounds"])
        print(f"{name}: {ratio['median']:.2f} (rounds: {each})")
    for server, result in scale.items():
        print(
            f"{server} pull 500 after cursor: {result['pull_500_s']} s, ratio {result['ratio']:.2f}"
        )
        if "http_ratio" in result:
            print(
                f"{server} pull 500 after cursor over plain HTTP: {result['http_pull_500_s']} s,"
                f" ratio {result['http_ratio']:.2f}"
            )
        print(
            f"{server} first 500 from the start: {result['first_500_s']} s,"
            f" ratio {result['first_ratio']:.2f}"
        )
    for server, m in summary["medians"].items():
        if "worker_peak_rss_mib" in m:
            print(f"{server} worker peak RSS (500-change push): {m['worker_peak_rss_mib']:.0f} MiB")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
