"""A real MCP client (the official Python SDK, PyPI `mcp`) whose "open the
browser" step hands the authorization URL to headless Chromium.

Usage: python mcp_browser_client.py BASE_URL      (run by scripts/browser-e2e.sh)

What a desktop MCP client does, done here for real:
  * the SDK's OAuthClientProvider discovers the broker, registers (DCR), makes
    the PKCE authorization URL and later exchanges the code;
  * redirect_handler = "open the browser": starts e2e/browser-flow.mjs
    (Playwright driving Debian's Chromium) on that URL and returns at once;
  * callback_handler = a loopback HTTP listener on the registered redirect URI
    (RFC 8252 §7.3): it gets the browser's final redirect with code, state
    and iss, and answers with a small "you may close this window" page;
  * then the SDK redeems the code and the client calls the `whoami` tool.

The browser driver's own checks (pages rendered, screenshots) decide its exit
status; this client fails if it fails. Environment: E2E_NODE (default node),
plus everything browser-flow.mjs reads, which is passed through.

Exit status 0 on success, printing `whoami = EMAIL` last; 1 with `FAIL:` otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

try:
    import httpx2 as httpx  # mcp 2.x
except ImportError:  # pragma: no cover - mcp 1.x
    import httpx  # type: ignore[no-redef]

from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

try:
    from mcp.client.streamable_http import streamable_http_client
except ImportError:  # pragma: no cover - older SDKs
    from mcp.client.streamable_http import streamablehttp_client as streamable_http_client  # type: ignore

HERE = Path(__file__).resolve().parent
BROWSER_SCRIPT = HERE / "browser-flow.mjs"
CLIENT_NAME = "Browser E2E MCP client"
BROWSER_TIMEOUT = 90.0


class Failure(Exception):
    """A check failed; the message says which."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


class InMemoryTokenStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class LoopbackRedirect:
    """The client's redirect URI: a one-shot HTTP listener on 127.0.0.1."""

    LANDING = (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Signed in</title></head>"
        "<body><h1>Signed in</h1><p>{client} received the authorization response; "
        "you may close this window.</p></body></html>"
    ).format(client=CLIENT_NAME)

    def __init__(self) -> None:
        self.server: asyncio.base_events.Server | None = None
        self.result: asyncio.Future[AuthorizationCodeResult] | None = None
        self.redirect_uri = ""
        self.raw_query = ""

    async def start(self) -> None:
        self.result = asyncio.get_running_loop().create_future()
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.redirect_uri = f"http://127.0.0.1:{port}/callback"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            url = urlsplit(target)
            if method == "GET" and url.path == "/callback":
                status, body = "200 OK", self.LANDING
                self._deliver(url.query)
            elif url.path == "/favicon.ico":
                status, body = "204 No Content", ""
            else:
                status, body = "404 Not Found", "not found"
            data = body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, ConnectionError):
            pass
        finally:
            writer.close()

    def _deliver(self, query: str) -> None:
        assert self.result is not None
        if self.result.done():
            return
        self.raw_query = query
        q = parse_qs(query)
        if "error" in q:
            self.result.set_exception(
                Failure(f"authorization failed: {q['error'][0]}: {q.get('error_description', [''])[0]}")
            )
        elif len(q.get("code", [])) != 1 or len(q.get("state", [])) != 1:
            self.result.set_exception(Failure(f"redirect without a single code and state: ?{query}"))
        else:
            self.result.set_result(
                AuthorizationCodeResult(code=q["code"][0], state=q["state"][0], iss=q.get("iss", [None])[0])
            )


class SystemBrowser:
    """What `webbrowser.open` is to a desktop client: here, Playwright + Chromium."""

    def __init__(self, base_url: str, redirect: LoopbackRedirect) -> None:
        self.base_url = base_url
        self.redirect = redirect
        self.process: asyncio.subprocess.Process | None = None
        self.authorization_url = ""

    async def redirect_handler(self, authorization_url: str) -> None:
        check(
            authorization_url.startswith(self.base_url + "/authorize?"),
            f"authorization URL {authorization_url} is not the broker's /authorize",
        )
        query = parse_qs(urlsplit(authorization_url).query)
        check(query.get("code_challenge_method") == ["S256"], "SDK did not ask for PKCE S256")
        check(query.get("redirect_uri") == [self.redirect.redirect_uri], f"SDK used redirect_uri {query.get('redirect_uri')}")
        self.authorization_url = authorization_url
        print(f"client:  opening the browser on {authorization_url[:90]}…", flush=True)
        env = dict(os.environ)
        env.update(
            E2E_AUTH_URL=authorization_url,
            E2E_BASE_URL=self.base_url,
            E2E_REDIRECT_URI=self.redirect.redirect_uri,
            E2E_CLIENT_NAME=CLIENT_NAME,
        )
        self.process = await asyncio.create_subprocess_exec(
            os.environ.get("E2E_NODE", "node"), str(BROWSER_SCRIPT), env=env
        )

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.redirect.result is not None
        check(self.process is not None, "callback_handler called before the browser was opened")
        browser_exit = asyncio.ensure_future(self.process.wait())
        done, _ = await asyncio.wait(
            {self.redirect.result, browser_exit}, timeout=BROWSER_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if self.redirect.result in done:
            result = self.redirect.result.result()  # raises Failure on an error redirect
            print("client:  redirect URI received code, state and iss", flush=True)
            return result
        if browser_exit in done:
            raise Failure(f"the browser driver exited ({self.process.returncode}) before the redirect arrived")
        raise Failure(f"no redirect to {self.redirect.redirect_uri} within {BROWSER_TIMEOUT:.0f} s")

    async def wait_closed(self) -> None:
        check(self.process is not None, "the browser was never opened (the SDK did not start an authorization)")
        try:
            rc = await asyncio.wait_for(self.process.wait(), timeout=BROWSER_TIMEOUT)
        except asyncio.TimeoutError:
            self.process.kill()
            raise Failure("the browser driver did not finish") from None
        check(rc == 0, f"the browser driver failed (exit {rc})")

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()


async def run(base_url: str) -> str:
    mcp_url = base_url + "/mcp"
    async with httpx.AsyncClient(timeout=10.0) as plain:
        issuer = (await plain.get(base_url + "/.well-known/oauth-authorization-server")).json()["issuer"]

    redirect = LoopbackRedirect()
    await redirect.start()
    browser = SystemBrowser(base_url, redirect)
    storage = InMemoryTokenStorage()
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name=CLIENT_NAME,
            redirect_uris=[redirect.redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    try:
        async with httpx.AsyncClient(auth=provider, timeout=httpx.Timeout(30.0, read=60.0)) as http_client:
            async with streamable_http_client(mcp_url, http_client=http_client) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await session.initialize()
                    result = await session.call_tool("whoami", {})
        # The browser goes on to its error-page checks while the SDK redeems the code.
        await browser.wait_closed()
    finally:
        browser.kill()
        await redirect.close()

    check(storage.client_info is not None and storage.tokens is not None, "the SDK stored no registration or tokens")
    check(
        parse_qs(redirect.raw_query).get("iss") == [issuer],
        f"the redirect's iss is not the issuer {issuer}: ?{redirect.raw_query}",
    )
    is_error = result.is_error if hasattr(result, "is_error") else result.isError
    check(not is_error, f"whoami failed: {result}")
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    check(bool(texts), f"whoami returned no text: {result}")
    try:
        who = json.loads(texts[0])
    except json.JSONDecodeError as exc:
        raise Failure(f"whoami text is not JSON: {texts[0]!r}") from exc
    email = who.get("email")
    expected = os.environ.get("E2E_EMAIL", "dev@example.com")
    check(email == expected, f"whoami email {email!r} != {expected!r}: {who}")
    print(
        f"client:  token exchange done (client_id={storage.client_info.client_id}, "
        f"refresh={'yes' if storage.tokens.refresh_token else 'no'}); whoami: {json.dumps(who)}",
        flush=True,
    )
    return email


def first_failure(exc: BaseException) -> Failure | None:
    if isinstance(exc, Failure):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = first_failure(inner)
        if found is not None:
            return found
    return None


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} BASE_URL", file=sys.stderr)
        return 2
    try:
        email = asyncio.run(asyncio.wait_for(run(sys.argv[1].rstrip("/")), timeout=150))
    except Failure as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:  # anyio task groups wrap what a handler raised
        failure = first_failure(group)
        if failure is None:
            traceback.print_exc()
        print(f"FAIL: {failure or group}", file=sys.stderr)
        return 1
    except BaseException as exc:  # noqa: BLE001 - report whatever the SDK raised
        traceback.print_exc()
        print(f"FAIL: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"whoami = {email}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
