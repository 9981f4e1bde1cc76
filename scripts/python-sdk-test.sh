#!/usr/bin/env bash
# End-to-end test with the official MCP Python SDK: starts the broker in dev
# mode on a throwaway SQLite database and lets the SDK discover, register,
# authorize (PKCE, driven through the dev identity provider and the consent
# page by tests/python/mcp_sdk_flow.py), exchange the code and call `whoami`.
#
#   scripts/python-sdk-test.sh
#
# Environment:
#   PY_VENV           virtualenv to create or reuse (default ~/.cache/mcp-auth-broker/venv)
#   CARGO_TARGET_DIR  cargo's target dir (default ~/.cache/mcp-auth-broker/target)
#   PYTHON            interpreter for creating the venv (default python3)
#
# Last line: `1 passed, 0 failed` (exit 0) or `0 passed, 1 failed` (exit 1).
set -euo pipefail

MCP_VERSION="2.3.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY_VENV="${PY_VENV:-$HOME/.cache/mcp-auth-broker/venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-auth-broker/target}"
PYTHON="${PYTHON:-python3}"

WORK=""
BROKER_PID=""
PASSED=0

cleanup() {
    local rc=$?
    trap - EXIT
    if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    if [[ "$PASSED" != 1 ]]; then
        if [[ -n "$WORK" && -s "$WORK/broker.log" ]]; then
            echo "---- broker log ----" >&2
            cat "$WORK/broker.log" >&2
            echo "---- end of broker log ----" >&2
        fi
        [[ -n "$WORK" ]] && rm -rf "$WORK"
        echo "0 passed, 1 failed"
        exit 1
    fi
    [[ -n "$WORK" ]] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Python environment with the pinned SDK.
if [[ ! -x "$PY_VENV/bin/python" ]]; then
    echo "creating virtualenv $PY_VENV" >&2
    "$PYTHON" -m venv "$PY_VENV"
fi
installed="$("$PY_VENV/bin/python" -c 'import importlib.metadata as m
try:
    print(m.version("mcp"))
except m.PackageNotFoundError:
    print("")' 2>/dev/null || true)"
if [[ "$installed" != "$MCP_VERSION" ]]; then
    echo "installing mcp==$MCP_VERSION into $PY_VENV" >&2
    "$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "mcp==$MCP_VERSION"
fi

# 2. The broker binary.
(cd "$ROOT" && cargo build --quiet)
BIN="$CARGO_TARGET_DIR/debug/mcp-auth-broker"
[[ -x "$BIN" ]] || { echo "no broker binary at $BIN" >&2; exit 1; }

# 3. Start the broker in dev mode on a free loopback port and a temporary database.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcp-sdk-test.XXXXXX")"
PORT="$("$PY_VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE="http://127.0.0.1:$PORT"

(
    cd "$WORK"
    exec env \
        NO_COLOR=1 \
        BROKER__SERVER__BIND="127.0.0.1:$PORT" \
        BROKER__SERVER__PUBLIC_URL="$BASE" \
        BROKER__DATABASE__URL="sqlite://$WORK/broker.db?mode=rwc" \
        "$BIN" serve --dev
) >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!

ready=0
for _ in $(seq 1 60); do
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
        echo "broker exited during start-up" >&2
        exit 1
    fi
    if curl -fsS --max-time 2 "$BASE/healthz" >/dev/null 2>&1; then
        ready=1
        break
    fi
    sleep 0.5
done
if [[ "$ready" != 1 ]]; then
    echo "broker not healthy at $BASE/healthz after 30 s" >&2
    exit 1
fi

# 4. The SDK flow.
if "$PY_VENV/bin/python" "$ROOT/tests/python/mcp_sdk_flow.py" "$BASE"; then
    PASSED=1
    echo "1 passed, 0 failed"
else
    echo "python SDK flow failed against $BASE" >&2
    exit 1
fi
