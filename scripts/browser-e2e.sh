#!/usr/bin/env bash
# Browser end-to-end: a person in headless Chromium and a real MCP client.
#
#   scripts/browser-e2e.sh
#
# Starts the broker (`serve --dev`) on a free loopback port with a throwaway
# SQLite database and two upstreams, so /authorize shows the chooser: the
# built-in development provider, and "Corp SSO", an OpenID provider whose
# issuer is a closed loopback port (it is down: choosing it shows the
# provider-unavailable page). Then e2e/mcp_browser_client.py (the official MCP
# Python SDK) discovers, registers and starts the authorization; its "open the
# browser" step runs e2e/browser-flow.mjs, which drives Chromium through
# chooser -> provider-down page -> back -> dev sign-in -> consent -> Allow ->
# the client's loopback redirect URI; the SDK redeems the code and the client
# calls `whoami`. Screenshots of the chooser, dev sign-in, consent and two
# error pages go to target/e2e-screenshots/ (kept by CI), each checked to
# render (status, heading, branding, no template syntax, non-blank pixels).
#
# Tools are installed on first use and cached:
#   Debian's chromium (apt-get, as root) when /usr/bin/chromium is missing;
#   playwright-core (npm, pinned, no browser download) in $CACHE/e2e-npm;
#   the MCP SDK in the venv shared with scripts/python-sdk-test.sh.
#
# Environment:
#   MCP_AUTH_BROKER_CACHE  cache root (default ~/.cache/mcp-auth-broker)
#   PY_VENV                virtualenv (default $CACHE/venv)
#   CARGO_TARGET_DIR       cargo's target dir (default $CACHE/target)
#   E2E_CHROMIUM           the browser (default /usr/bin/chromium)
#   E2E_SCREENSHOTS        where screenshots go (default target/e2e-screenshots)
#   E2E_BROKER_BIN         a broker binary to use as is (default: cargo build)
#
# Last line on success: `browser e2e: chooser, consent, error pages rendered; whoami = dev@example.com`.
set -euo pipefail

PLAYWRIGHT_VERSION="1.65.1"
MCP_VERSION="2.3.0"   # as scripts/python-sdk-test.sh

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MCP_AUTH_BROKER_CACHE:-$HOME/.cache/mcp-auth-broker}"
NPM_DIR="$CACHE/e2e-npm"
PY_VENV="${PY_VENV:-$CACHE/venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"
SHOTS="${E2E_SCREENSHOTS:-$ROOT/target/e2e-screenshots}"

START=$SECONDS
WORK=""
BROKER_PID=""
OK=0
say() { printf 'browser-e2e: %s\n' "$*"; }

cleanup() {
    local rc=$?
    trap - EXIT
    if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    if [[ "$OK" != 1 ]]; then
        if [[ -n "$WORK" && -s "$WORK/broker.log" ]]; then
            echo "---- broker log (last 60 lines) ----" >&2
            tail -n 60 "$WORK/broker.log" >&2
            echo "---- end of broker log ----" >&2
        fi
        echo "browser e2e: FAILED" >&2
        [[ -n "$WORK" ]] && rm -rf "$WORK"
        exit 1
    fi
    [[ -n "$WORK" ]] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. tools -----------------------------------------------------------------
if [[ ! -x "$CHROMIUM" ]]; then
    [[ "$CHROMIUM" == /usr/bin/chromium ]] || { echo "no browser at $CHROMIUM" >&2; exit 1; }
    [[ "$(id -u)" == 0 ]] || { echo "/usr/bin/chromium is missing: apt-get install chromium (as root)" >&2; exit 1; }
    say "installing Debian's chromium (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi
command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "browser-e2e: node and npm are needed (Playwright)" >&2; exit 1; }
if [[ "$(cat "$NPM_DIR/.requirements" 2>/dev/null)" != "playwright-core@$PLAYWRIGHT_VERSION" ]]; then
    say "installing playwright-core@$PLAYWRIGHT_VERSION into $NPM_DIR (no browser download)"
    rm -rf "$NPM_DIR" && mkdir -p "$NPM_DIR"
    echo '{"private": true}' > "$NPM_DIR/package.json"
    # playwright-core never downloads browsers; the variable makes sure of it.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$NPM_DIR" --no-save --no-audit --no-fund \
        --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION"
    echo "playwright-core@$PLAYWRIGHT_VERSION" > "$NPM_DIR/.requirements"
fi
if [[ ! -x "$PY_VENV/bin/python" ]]; then
    say "creating virtualenv $PY_VENV"
    python3 -m venv "$PY_VENV"
fi
if [[ "$("$PY_VENV/bin/python" -c 'import importlib.metadata as m
try: print(m.version("mcp"))
except m.PackageNotFoundError: print("")' 2>/dev/null || true)" != "$MCP_VERSION" ]]; then
    say "installing mcp==$MCP_VERSION into $PY_VENV"
    "$PY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "mcp==$MCP_VERSION"
fi
say "tools: $("$CHROMIUM" --version 2>/dev/null | head -n 1), playwright-core $PLAYWRIGHT_VERSION, node $(node --version), mcp $MCP_VERSION ($((SECONDS - START)) s)"

# --- 2. the broker ------------------------------------------------------------
if [[ -n "${E2E_BROKER_BIN:-}" ]]; then
    BIN="$E2E_BROKER_BIN"
else
    (cd "$ROOT" && cargo build --quiet)
    BIN="$CARGO_TARGET_DIR/debug/mcp-auth-broker"
fi
[[ -x "$BIN" ]] || { echo "no broker binary at $BIN" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/browser-e2e.XXXXXX")"
free_port() { "$PY_VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
PORT="$(free_port)"
DOWN_PORT="$(free_port)"   # nothing listens there: the "Corp SSO" provider is down
while [[ "$DOWN_PORT" == "$PORT" ]]; do DOWN_PORT="$(free_port)"; done
BASE="http://127.0.0.1:$PORT"

PRODUCT_NAME="Example Corp MCP Sign-in"
PRIMARY_COLOR="#0a7d4f"
cat > "$WORK/broker.toml" <<TOML
# Written by scripts/browser-e2e.sh. serve --dev adds the built-in "dev"
# upstream ("Development sign-in") in front of this one: two, so a chooser.
[branding]
product_name = "$PRODUCT_NAME"
primary_color = "$PRIMARY_COLOR"

[[upstreams]]
id = "corp-sso"
kind = "oidc"
display_name = "Corp SSO"
issuer = "http://127.0.0.1:$DOWN_PORT/realms/corp"
client_id = "mcp-auth-broker-e2e"
client_secret = "unused-the-provider-is-down"
TOML

(
    cd "$WORK"
    exec env \
        NO_COLOR=1 \
        BROKER_CONFIG="$WORK/broker.toml" \
        BROKER__SERVER__BIND="127.0.0.1:$PORT" \
        BROKER__SERVER__PUBLIC_URL="$BASE" \
        BROKER__DATABASE__URL="sqlite://$WORK/broker.db?mode=rwc" \
        "$BIN" serve --dev
) >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!

ready=0
for _ in $(seq 1 60); do
    kill -0 "$BROKER_PID" 2>/dev/null || { echo "broker exited during start-up" >&2; exit 1; }
    if curl -fsS --max-time 2 "$BASE/healthz" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.25
done
[[ "$ready" == 1 ]] || { echo "broker not healthy at $BASE/healthz after 15 s" >&2; exit 1; }
say "broker (serve --dev) on $BASE; upstreams: dev (built in), corp-sso (issuer on closed port $DOWN_PORT)"

# --- 3. the flow: MCP SDK client + Chromium -----------------------------------
rm -rf "$SHOTS" && mkdir -p "$SHOTS"
t0=$SECONDS
E2E_NPM_DIR="$NPM_DIR" \
E2E_CHROMIUM="$CHROMIUM" \
E2E_SCREENSHOTS="$SHOTS" \
E2E_EMAIL="dev@example.com" \
E2E_PRODUCT_NAME="$PRODUCT_NAME" \
E2E_PRIMARY_COLOR="$PRIMARY_COLOR" \
E2E_DEV_LABEL="Development sign-in" \
E2E_DOWN_ID="corp-sso" \
E2E_DOWN_LABEL="Corp SSO" \
    "$PY_VENV/bin/python" "$ROOT/e2e/mcp_browser_client.py" "$BASE" | tee "$WORK/client.out" ||
    { echo "browser e2e flow failed against $BASE" >&2; exit 1; }
whoami="$(sed -n 's/^whoami = //p' "$WORK/client.out" | tail -n 1)"
[[ "$whoami" == "dev@example.com" ]] || { echo "whoami is '$whoami', not dev@example.com" >&2; exit 1; }

# --- 4. the artifacts, checked once more from the outside ----------------------
for name in 01-chooser 02-error-upstream-unavailable 03-dev-login 04-consent 05-error-unknown-client; do
    f="$SHOTS/$name.png"
    [[ -s "$f" ]] || { echo "missing screenshot $f" >&2; exit 1; }
    [[ "$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')" == 89504e470d0a1a0a ]] || { echo "$f is not a PNG" >&2; exit 1; }
    size=$(stat -c %s "$f")
    (( size > 8192 )) || { echo "$f is only $size bytes" >&2; exit 1; }
done
say "screenshots: $(cd "$SHOTS" && ls *.png | tr '\n' ' ')in ${SHOTS#"$ROOT"/} (flow $((SECONDS - t0)) s, total $((SECONDS - START)) s)"
OK=1
echo "browser e2e: chooser, consent, error pages rendered; whoami = $whoami"
