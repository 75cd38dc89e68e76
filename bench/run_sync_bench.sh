#!/usr/bin/env bash
# Runs the sync benchmark of fieldapp and of the peer servers side by side, in one run, on this
# machine, round by round, and leaves each run's JSON in $OUT/runs and the summary in
# $OUT/summary.json (default OUT: bench/results/). Loopback only.
#   bench/run_sync_bench.sh            # everything (about half an hour on 2 cores)
#   RUNS=1 N=1000 bench/run_sync_bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
PEERS_SH=${PEERS_SH:-../shared/peers/peers.sh}
PEER_BENCH=${PEER_BENCH:-../shared/peers/bench_sync.py}
OUT=${OUT:-bench/results}
RUNS=${RUNS:-3}
N=${N:-5000}
mkdir -p "$OUT"
export PEERS=${PEERS:-/tmp/fieldapp-peers}

[ -x "$PEERS/kinto-venv/bin/kinto" ] || bash "$PEERS_SH" install
trap 'bash "$PEERS_SH" stop >/dev/null 2>&1 || true' EXIT

# Round by round, each server once per round: the machine's speed drifts over half an hour, and
# a ratio is only fair between runs made minutes apart. The summary takes medians per server
# and the ratio of each round.
rm -rf "$OUT/runs" && mkdir -p "$OUT/runs"
for run in $(seq 1 "$RUNS"); do
  echo "== round $run of $RUNS"
  bash "$PEERS_SH" start kinto-pg
  python3 "$PEER_BENCH" --peer kinto --url http://127.0.0.1:8889/v1 --auth admin:bench-secret \
    --label kinto-pg --n "$N" --runs 1 --json-out "$OUT/runs/kinto-pg.$run.json"
  bash "$PEERS_SH" stop
  bash "$PEERS_SH" start pouch
  python3 "$PEER_BENCH" --peer couch --url http://127.0.0.1:5985 --label pouch-leveldb \
    --n "$N" --runs 1 --json-out "$OUT/runs/pouch-leveldb.$run.json"
  bash "$PEERS_SH" stop
  for db in sqlite postgresql; do
    "$PY" bench/sync_bench.py --db "$db" --n "$N" --runs 1 --skip-scale \
      --json-out "$OUT/runs/fieldapp-$db.$run.json"
  done
done
for db in sqlite postgresql; do
  "$PY" bench/sync_bench.py --db "$db" --scale-only --json-out "$OUT/runs/fieldapp-$db.scale.json"
done
"$PY" bench/summarize_sync.py "$OUT"
