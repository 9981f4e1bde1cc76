#!/usr/bin/env bash
# Authenticated MCP calls under load, as BENCHMARKS.md reports them: a
# release broker (`serve --dev`), one access token, and wrk sending
# `tools/call whoami` over 16 connections from the same machine. Every
# request goes through the bearer layer (verified-token cache, revocation
# view, scope), rmcp's stateless Streamable HTTP server and the tool.
#
#   scripts/bench-mcp.sh                     # 15 s
#   LOAD_SECONDS=60 CONNECTIONS=32 scripts/bench-mcp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-auth-broker/target}"
LOAD_SECONDS="${LOAD_SECONDS:-15}"
CONNECTIONS="${CONNECTIONS:-16}"
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }; }

cargo build --release --quiet --bin mcp-auth-broker
cargo bench --no-run --quiet --bench token_endpoint 2>/dev/null
BENCH=$(ls -t "$CARGO_TARGET_DIR"/release/deps/token_endpoint-* | grep -v '\.d$' | head -n 1)
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env -i PATH="$PATH" BROKER__SERVER__BIND="127.0.0.1:$port" \
  BROKER__SERVER__PUBLIC_URL="http://127.0.0.1:$port" \
  BROKER__DATABASE__URL="sqlite://$work/bench.db?mode=rwc" \
  BROKER__RATE_LIMIT__ENABLED=false BROKER__LOG__LEVEL=warn \
  "$CARGO_TARGET_DIR/release/mcp-auth-broker" serve --dev > "$work/broker.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null; do sleep 0.01; done
token=$(BROKER_URL="http://127.0.0.1:$port" MODE=access-token "$BENCH")

cat > "$work/whoami.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
wrk.headers["Authorization"] = "Bearer $token"
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
# One call first: the answer must be the tool's, not an error.
curl -sf -X POST "http://127.0.0.1:$port/mcp" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
  -H 'MCP-Protocol-Version: 2025-06-18' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}' |
  grep -q 'dev@example.com' || { echo "whoami did not answer" >&2; exit 1; }
wrk -t2 -c"$CONNECTIONS" -d"${LOAD_SECONDS}s" --latency -s "$work/whoami.lua" "http://127.0.0.1:$port/mcp"
echo "broker RSS after the load: $(awk '/^VmRSS/ { printf "%.1f MiB", $2/1024 }' /proc/$pid/status)"
