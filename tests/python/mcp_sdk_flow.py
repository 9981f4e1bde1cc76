"""End-to-end check of the broker with the official MCP Python SDK (PyPI `mcp`, 2.x).

Usage: python mcp_sdk_flow.py http://127.0.0.1:PORT

The broker must run in dev mode (`mcp-auth-broker serve --dev`): its built-in
OpenID provider under /dev-idp stands in for the person's browser login, and
dev@example.com is on the allowlist. The SDK's `OAuthClientProvider` does the
OAuth part on its own: protected-resource and authorization-server metadata
discovery, dynamic client registration, PKCE, the RFC 9207 `iss` check and the
token exchange. This script only plays the browser (redirect_handler) and the
loopback redirect listener (callback_handler).

Exit status 0 on success; 1 with a `FAIL:` line on stderr otherwise.
"""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

# mcp 2.x is built on httpx2 (the successor of httpx, same API); 1.x on httpx.
try:
    import httpx2 as httpx
except ImportError:  # pragma: no cover - mcp 1.x
    import httpx  # type: ignore[no-redef]

from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

try:
    from mcp.client.streamable_http import streamable_http_client
except ImportError:  # pragma: no cover - older SDKs
    from mcp.client.streamable_http import streamablehttp_client as streamable_http_client  # type: ignore

DEV_EMAIL = "dev@example.com"
# Nothing listens here: the browser driver stops at the first redirect to it.
REDIRECT_URI = "http://127.0.0.1:3030/callback"
MAX_BROWSER_STEPS = 10


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


class FormParser(HTMLParser):
    """Collects every <form> with its method, action, <input>s and submit <button>s."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._current = {
                "method": a.get("method", "get").lower(),
                "action": a.get("action", ""),
                "inputs": [],
                "buttons": [],
            }
            self.forms.append(self._current)
        elif self._current is not None and tag == "input":
            self._current["inputs"].append(a)
        elif self._current is not None and tag == "button":
            self._current["buttons"].append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> list[dict]:
    parser = FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def hidden_fields(form: dict) -> dict[str, str]:
    return {i["name"]: i.get("value", "") for i in form["inputs"] if i.get("type") == "hidden" and i.get("name")}


class Browser:
    """Plays the person at the browser: a cookie-keeping client that follows no redirect on its own."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.trail: list[str] = []
        self.result: AuthorizationCodeResult | None = None
        self.final_redirect: str | None = None

    def _note(self, response: httpx.Response) -> None:
        url = response.request.url
        self.trail.append(f"{response.request.method} {url.path} -> {response.status_code}")

    async def redirect_handler(self, authorization_url: str) -> None:
        check(
            authorization_url.startswith(self.base_url + "/"),
            f"authorization URL {authorization_url} is not on the broker {self.base_url}",
        )
        query = parse_qs(urlsplit(authorization_url).query)
        for param in ("client_id", "code_challenge", "state", "redirect_uri"):
            check(param in query, f"authorization URL lacks {param}: {authorization_url}")
        check(query.get("code_challenge_method") == ["S256"], "SDK did not ask for PKCE S256")

        async with httpx.AsyncClient(follow_redirects=False, timeout=30.0) as client:
            response = await client.get(authorization_url)
            for _ in range(MAX_BROWSER_STEPS):
                self._note(response)
                if response.status_code in (301, 302, 303, 307, 308):
                    location = response.headers.get("location")
                    check(bool(location), f"{response.status_code} without Location at {response.request.url}")
                    target = urljoin(str(response.request.url), location)
                    if target.startswith(REDIRECT_URI):
                        self._finish(target)
                        return
                    response = await client.get(target)
                    continue
                check(
                    response.status_code == 200,
                    f"unexpected {response.status_code} at {response.request.url}: {response.text[:500]}",
                )
                response = await self._submit_page(client, response)
        raise Failure(f"no redirect to {REDIRECT_URI} after {MAX_BROWSER_STEPS} steps: {self.trail}")

    async def _submit_page(self, client: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
        forms = [f for f in parse_forms(page.text) if f["method"] == "post"]
        check(bool(forms), f"page {page.request.url} has no POST form: {page.text[:500]}")
        form = forms[0]
        action = urljoin(str(page.request.url), form["action"]) if form["action"] else str(page.request.url)
        fields = hidden_fields(form)
        names = {i.get("name") for i in form["inputs"]}
        decisions = {b.get("value") for b in form["buttons"] if b.get("name") == "decision"}
        if "ticket" in fields:
            # The dev identity provider's login form.
            check("email" in names, f"login form has no email input: {form}")
            fields["email"] = DEV_EMAIL
            fields["email_verified"] = "true"
        elif "allow" in decisions:
            # The broker's consent page.
            for name in ("request", "csrf"):
                check(name in fields, f"consent form lacks hidden {name}: {form}")
            fields["decision"] = "allow"
        else:
            raise Failure(f"unrecognised form at {page.request.url}: {form}")
        return await client.post(action, data=fields)

    def _finish(self, location: str) -> None:
        self.final_redirect = location
        query = parse_qs(urlsplit(location).query)
        check("error" not in query, f"authorization failed: {location}")
        check(len(query.get("code", [])) == 1, f"final redirect has no single code: {location}")
        check(len(query.get("state", [])) == 1, f"final redirect has no single state: {location}")
        iss = query.get("iss", [None])[0]
        self.result = AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=iss)

    async def callback_handler(self) -> AuthorizationCodeResult:
        check(self.result is not None, "callback_handler called before the browser reached the redirect URI")
        return self.result  # type: ignore[return-value]


async def run(base_url: str) -> None:
    mcp_url = base_url + "/mcp"

    # Independently read the issuer so we can check what the SDK saw and what `iss` says.
    async with httpx.AsyncClient(timeout=10.0) as plain:
        as_meta = (await plain.get(base_url + "/.well-known/oauth-authorization-server")).json()
    issuer = as_meta["issuer"]

    browser = Browser(base_url)
    storage = InMemoryTokenStorage()
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="mcp-sdk-flow test",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )

    sdk_requests: list[str] = []

    async def log_request(request: httpx.Request) -> None:
        sdk_requests.append(f"{request.method} {request.url.path}")

    http_client = httpx.AsyncClient(
        auth=provider,
        timeout=httpx.Timeout(30.0, read=60.0),
        event_hooks={"request": [log_request]},
    )
    async with http_client:
        async with streamable_http_client(mcp_url, http_client=http_client) as streams:
            read_stream, write_stream = streams[0], streams[1]
            async with ClientSession(read_stream, write_stream) as session:
                init = await session.initialize()
                tools = await session.list_tools()
                names = [t.name for t in tools.tools]
                check("whoami" in names, f"tools/list has no whoami: {names}")
                result = await session.call_tool("whoami", {})

    check(not result.is_error if hasattr(result, "is_error") else not result.isError, f"whoami failed: {result}")
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    check(bool(texts), f"whoami returned no text content: {result}")
    try:
        who = json.loads(texts[0])
    except json.JSONDecodeError as exc:
        raise Failure(f"whoami text is not JSON: {texts[0]!r}") from exc
    check(who.get("email") == DEV_EMAIL, f"whoami email {who.get('email')!r} != {DEV_EMAIL!r}: {who}")

    # The SDK did the OAuth work itself: discovery, registration, token exchange.
    for expected in (
        "GET /.well-known/oauth-protected-resource/mcp",
        "GET /.well-known/oauth-authorization-server",
        "POST /register",
        "POST /token",
    ):
        check(expected in sdk_requests, f"SDK never sent {expected}; it sent {sdk_requests}")
    check(storage.client_info is not None, "SDK stored no client registration")
    check(storage.tokens is not None, "SDK stored no tokens")
    sdk_meta = provider.context.oauth_metadata
    check(sdk_meta is not None and str(sdk_meta.issuer) == issuer, f"SDK discovered issuer {sdk_meta and sdk_meta.issuer}")

    # RFC 9207: the final redirect names the issuer (the SDK checks this too).
    check(browser.result is not None and browser.result.iss is not None, f"final redirect has no iss: {browser.final_redirect}")
    check(browser.result.iss == issuer, f"iss {browser.result.iss!r} != issuer {issuer!r}")

    server = init.server_info
    print(f"issuer:        {issuer}")
    print(f"server:        {server.name} {server.version} (protocol {init.protocol_version})")
    print(
        f"registration:  client_id={storage.client_info.client_id} "
        f"auth_method={storage.client_info.token_endpoint_auth_method}"
    )
    print(f"token:         type={storage.tokens.token_type} scope={storage.tokens.scope} expires_in={storage.tokens.expires_in} refresh={'yes' if storage.tokens.refresh_token else 'no'}")
    print(f"browser:       {' | '.join(browser.trail)}")
    print(f"sdk requests:  {', '.join(sdk_requests)}")
    print(f"tools:         {', '.join(names)}")
    print(f"whoami:        email={who.get('email')} role={who.get('role')} scopes={who.get('scopes')}")
    print("OK: MCP Python SDK completed discovery, DCR, PKCE, token exchange and called whoami")


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} BASE_URL   (e.g. http://127.0.0.1:8080)", file=sys.stderr)
        return 2
    base_url = sys.argv[1].rstrip("/")
    try:
        asyncio.run(asyncio.wait_for(run(base_url), timeout=120))
    except Failure as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    except BaseException as exc:  # noqa: BLE001 - report anything the SDK raised, then fail
        traceback.print_exc()
        print(f"FAIL: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
