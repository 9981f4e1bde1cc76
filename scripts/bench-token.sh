#!/usr/bin/env bash
# The token endpoint under load, as BENCHMARKS.md reports it: for SQLite and
# PostgreSQL, RS256 and ES256, a release broker (`serve --dev`, rate limits
# off) is started, timed to ready, measured idle, loaded by
# benches/token_endpoint.rs (code redemptions, then refresh grants with
# rotation from WORKERS clients), and measured again.
#
#   scripts/bench-token.sh                       # all four combinations
#   ENGINES=postgres ALGORITHMS=ES256 LOAD_SECONDS=60 REQUESTS=100000 scripts/bench-token.sh
#
# PostgreSQL: PG_URL (default postgres://postgres@127.0.0.1:5432/postgres);
# a scratch database is created and dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-auth-broker/target}"
ENGINES="${ENGINES:-sqlite postgres}"
ALGORITHMS="${ALGORITHMS:-ES256 RS256}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export WORKERS="${WORKERS:-16}" LOAD_SECONDS="${LOAD_SECONDS:-15}"

cargo build --release --quiet --bin mcp-auth-broker
cargo bench --no-run --quiet --bench token_endpoint 2>/dev/null
BENCH=$(ls -t "$CARGO_TARGET_DIR"/release/deps/token_endpoint-* | grep -v '\.d$' | head -n 1)
BROKER="$CARGO_TARGET_DIR/release/mcp-auth-broker"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

printf '%-9s %-6s %9s %9s %10s %12s %11s %11s\n' engine alg ready_ms idle_MiB refresh/s redeem_p99ms grants load_MiB
for engine in $ENGINES; do
  for alg in $ALGORITHMS; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    case "$engine" in
      sqlite) db="sqlite://$work/bench-$alg.db?mode=rwc" ;;
      postgres)
        name="broker_bench_$(date +%s%N)"
        psql "$PG_URL" -qc "CREATE DATABASE $name"
        db="${PG_URL%/*}/$name" ;;
    esac
    start=$(date +%s%N)
    env -i PATH="$PATH" BROKER__SERVER__BIND="127.0.0.1:$port" \
      BROKER__SERVER__PUBLIC_URL="http://127.0.0.1:$port" BROKER__DATABASE__URL="$db" \
      BROKER__DATABASE__MAX_CONNECTIONS=16 BROKER__TOKENS__ALGORITHM="$alg" \
      BROKER__RATE_LIMIT__ENABLED=false BROKER__LOG__LEVEL=warn \
      "$BROKER" serve --dev > "$work/broker.log" 2>&1 &
    pid=$!
    until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null; do sleep 0.01; done
    ready_ms=$(( ($(date +%s%N) - start) / 1000000 ))
    sleep 1
    idle=$(rss_kib $pid)
    result=$(BROKER_URL="http://127.0.0.1:$port" "$BENCH")
    loaded=$(rss_kib $pid)
    kill $pid; wait $pid 2>/dev/null || true
    [ "$engine" = postgres ] && psql "$PG_URL" -qc "DROP DATABASE $name WITH (FORCE)"
    python3 - "$engine" "$alg" "$ready_ms" "$idle" "$loaded" "$result" <<'PY'
import json, sys
engine, alg, ready, idle, loaded, result = sys.argv[1:]
r = json.loads(result)
print(f"{engine:<9} {alg:<6} {int(ready):>9} {int(idle)/1024:>9.1f} {r['refresh_grants_per_second']:>10.0f} "
      f"{r['code_redemption_p99_ms']:>12.2f} {r['refresh_grants']:>11} {int(loaded)/1024:>11.1f}"
      + (f"   ({r['refresh_errors']} errors)" if r['refresh_errors'] else ""))
PY
  done
done
