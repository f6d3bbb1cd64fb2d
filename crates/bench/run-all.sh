#!/usr/bin/env bash
# Runs the figures of BENCHMARKS.md: every workload on the databases given,
# appending one JSON line per run to $OUT (default bench-results.jsonl).
#   PG=postgres://postgres@127.0.0.1:5432/?sslmode=disable \
#     SQLITE=sqlite:///var/tmp/punctual-bench/x.db crates/bench/run-all.sh
# BIN: the punctual-bench binary (default: the release build in the target dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="${BIN:-$TARGET/release/punctual-bench}"
OUT="${OUT:-bench-results.jsonl}"
RUNS="${RUNS:-3}"
# W3-W5 take minutes each (a million jobs inserted per run): once by default.
HEAVY_RUNS="${HEAVY_RUNS:-1}"
W3_SECONDS="${W3_SECONDS:-60}"
# A database on the same host: no TLS on loopback (see BENCHMARKS.md).
PG="${PG:-postgres://postgres@127.0.0.1:5432/?sslmode=disable}"
SQLITE="${SQLITE:-sqlite:///var/tmp/punctual-bench/bench.db}"

run() {
    echo "== $* (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "$BIN" "$@" | tee -a "$OUT"
}

DATABASE_URL="$PG" run sink
for db in "$PG" "$SQLITE"; do
    for _ in $(seq "$RUNS"); do
        DATABASE_URL="$db" run w1 --jobs 20000
        DATABASE_URL="$db" run w2 --jobs 1000
        DATABASE_URL="$db" run w2 --jobs 20000
    done
done
for _ in $(seq "$HEAVY_RUNS"); do
    for db in "$PG" "$SQLITE"; do
        DATABASE_URL="$db" run w3 --jobs 10000,1000000 --duration "$W3_SECONDS"
    done
    for db in "$PG" "$SQLITE"; do
        DATABASE_URL="$db" run w4 --concurrency 64 --duration 10 --under-load 1000
        DATABASE_URL="$db" run w5 --jobs 1000000
    done
done
