#!/usr/bin/env bash
# Runs the sync benchmark of fieldapp and of the peer servers side by side, in one run, on this
# machine, and leaves the JSON summaries in $OUT (default bench/results/). Loopback only.
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

bash "$PEERS_SH" start kinto-pg
python3 "$PEER_BENCH" --peer kinto --url http://127.0.0.1:8889/v1 --auth admin:bench-secret \
  --label kinto-pg --n "$N" --runs "$RUNS" --json-out "$OUT/kinto-pg.json"
bash "$PEERS_SH" stop
bash "$PEERS_SH" start pouch
python3 "$PEER_BENCH" --peer couch --url http://127.0.0.1:5985 --label pouch-leveldb \
  --n "$N" --runs "$RUNS" --json-out "$OUT/pouch-leveldb.json"
bash "$PEERS_SH" stop

"$PY" bench/sync_bench.py --db sqlite --n "$N" --runs "$RUNS" --json-out "$OUT/fieldapp-sqlite.json"
"$PY" bench/sync_bench.py --db postgresql --n "$N" --runs "$RUNS" --json-out "$OUT/fieldapp-postgresql.json"
"$PY" bench/summarize_sync.py "$OUT"
