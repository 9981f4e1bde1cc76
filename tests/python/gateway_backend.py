"""A backend MCP server for the gateway tests (tests/gateway_python.rs), built
with the official MCP Python SDK (PyPI `mcp` 2.x, `MCPServer`, formerly
FastMCP) and served with Streamable HTTP, stateful (Mcp-Session-Id) and with
SSE responses, the SDK's defaults.

Usage: python gateway_backend.py

It listens on a free loopback port and prints `PORT <n>` as its first line,
then serves until killed. Tools:

  seen_headers  the HTTP headers of the request that called it (so the test
                can check what the gateway forwarded, and what it did not)
  echo          its `text` argument back
  ticks         a progress notification, a pause, then the result: the test
                checks the notification arrives before the result does (the
                gateway streams SSE, it does not buffer it)
  announce      tools/list_changed on the session's standalone stream (the
                one a client opens with GET)
  fail          a tool error (isError)
  whoami        the caller, from the broker's JWT in its Authorization
                header, verified with PyJWT exactly as the README shows
                (the broker's URL is an argument: it starts after us)
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import jwt
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("gateway-test-backend")
# This server's own URL: the audience of the broker's JWTs for it.
AUDIENCE = ""


@server.tool()
def seen_headers(ctx: Context) -> str:
    """The request headers this tool was called with, as JSON."""
    headers = ctx.headers or {}
    return json.dumps({k.lower(): v for k, v in headers.items()})


@server.tool()
def echo(text: str) -> str:
    """Sends the text back."""
    return text


@server.tool()
async def ticks(pause_ms: int, ctx: Context) -> str:
    """One progress notification, a pause, then the result."""
    await ctx.report_progress(1, 2, "first tick")
    await asyncio.sleep(pause_ms / 1000)
    return "done"


@server.tool()
async def announce(ctx: Context) -> str:
    """Tells the session's GET stream that the tool list changed."""
    await ctx.session.send_tool_list_changed()
    return "announced"


@server.tool()
def whoami(broker: str, ctx: Context) -> str:
    """The caller, from the broker's JWT."""
    # As in the README ("Gateway to backend MCP servers"):
    jwks = jwt.PyJWKClient(f"{broker}/jwks.json")
    token = (ctx.headers or {})["authorization"].removeprefix("Bearer ")
    key = jwks.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["RS256", "ES256"], audience=AUDIENCE, issuer=broker)
    return json.dumps(claims)


@server.tool()
def fail() -> str:
    """Always a tool error."""
    raise ToolError("this tool always fails")


async def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    global AUDIENCE
    AUDIENCE = f"http://127.0.0.1:{port}/mcp"
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning")
    print(f"PORT {port}", flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
