#!/usr/bin/env python3
"""What chaining the audit log costs sync: bench/profile_sync.py on a checkout without the
chain (``--base``, a commit) and on this one, alternately, in one run; medians and ratios.

Usage: bench/audit_cost.py [--base f8305a3] [--db postgresql] [--db sqlite] [--n 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^(push|stale|pull)\s+(\d+) rec/s", re.MULTILINE)


def checkout(commit: str, into: Path) -> Path:
    """The tree of ``commit`` unpacked in ``into`` (``git archive``; the worktree is untouched)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    # Older checkouts name their database "fieldapp_profile" whoever runs them.
    script = into / "bench" / "profile_sync.py"
    named = '__import__("os").environ["FIELDAPP_BENCH_DB"]'
    script.write_text(script.read_text().replace('"fieldapp_profile"', named))
    return into


def run_once(tree: Path, db: str, n: int) -> dict[str, float]:
    """The phases' rates (wall clock) and ``cpu``: seconds of CPU the whole run took in the
    Python process (setup included; it is the same for both trees). On a loaded machine the
    CPU figure is the steadier of the two."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, str(tree / "bench" / "profile_sync.py"), "--db", db, "--n", str(n)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tree,
        env={**os.environ, "FIELDAPP_BENCH_DB": f"fieldapp_audit_cost_{os.getpid()}"},
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {phase: float(rate) for phase, rate in LINE.findall(result.stdout)} | {"cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="f8305a3", help="a commit without the audit chain")
    parser.add_argument("--db", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"without chain": checkout(args.base, Path(tmp) / "base"), "with chain": ROOT}
        for db in args.db or ["postgresql", "sqlite"]:
            rates: dict[str, dict[str, list[float]]] = {label: {} for label in trees}
            for run in range(args.runs):
                for label, tree in trees.items():
                    for phase, rate in run_once(tree, db, args.n).items():
                        rates[label].setdefault(phase, []).append(rate)
                print(f"{db}: run {run + 1} of {args.runs} done", file=sys.stderr)
            print(f"\n{db}, n={args.n}, {args.runs} runs each, alternating (records/s, median)")
            print(f"{'phase':8}{'without chain':>16}{'with chain':>14}{'ratio':>8}")
            for phase in ("push", "stale", "pull"):
                before = statistics.median(rates["without chain"][phase])
                after = statistics.median(rates["with chain"][phase])
                print(f"{phase:8}{before:>16.0f}{after:>14.0f}{after / before:>8.2f}")
            before = statistics.median(rates["without chain"]["cpu"])
            after = statistics.median(rates["with chain"]["cpu"])
            print(
                f"{'CPU s':8}{before:>16.1f}{after:>14.1f}{after / before:>8.2f}  (lower is better)"
            )


if __name__ == "__main__":
    main()
