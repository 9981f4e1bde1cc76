// The person at the browser, played by Playwright (playwright-core) driving
// Debian's Chromium, headless. Started by e2e/mcp_browser_client.py in place
// of "open the system browser" on the authorization URL the MCP SDK made.
//
//   chooser  -> screenshot -> "Continue with <down upstream>" -> provider-down
//   error page -> screenshot -> back -> "Continue with Development sign-in"
//   -> dev provider: type the email, tick "verified", Sign in -> consent page
//   -> screenshot -> Allow -> the client's loopback redirect URI (the Python
//   client takes the code from there) -> then, in a fresh context, /authorize
//   with an unknown client_id -> error page -> screenshot.
//
// Every screenshot is checked to "render": the page's HTTP status, its <h1>,
// the branding (title, header, primary colour applied by the CSS), no template
// syntax ({{ {% %} {#) in the HTML, and the PNG itself (signature, size, and
// decoded pixels: enough dark "ink" and colours that it is not a blank page).
// Exit 0 when everything held; 1 with a `browser: FAIL` line otherwise.
//
// Environment (set by scripts/browser-e2e.sh and the Python client):
//   E2E_AUTH_URL E2E_BASE_URL E2E_REDIRECT_URI E2E_CLIENT_NAME E2E_EMAIL
//   E2E_SCREENSHOTS E2E_NPM_DIR E2E_CHROMIUM E2E_PRODUCT_NAME E2E_PRIMARY_COLOR
//   E2E_DEV_LABEL E2E_DOWN_ID E2E_DOWN_LABEL

import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { createRequire } from "node:module";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
};
const AUTH_URL = env("E2E_AUTH_URL");
const BASE = env("E2E_BASE_URL");
const REDIRECT_URI = env("E2E_REDIRECT_URI");
const CLIENT_NAME = env("E2E_CLIENT_NAME");
const EMAIL = env("E2E_EMAIL");
const SHOTS = env("E2E_SCREENSHOTS");
const PRODUCT = env("E2E_PRODUCT_NAME");
const PRIMARY = env("E2E_PRIMARY_COLOR"); // #rrggbb
const DEV_LABEL = env("E2E_DEV_LABEL");
const DOWN_ID = env("E2E_DOWN_ID");
const DOWN_LABEL = env("E2E_DOWN_LABEL");
const CHROMIUM = process.env.E2E_CHROMIUM || "/usr/bin/chromium";

// playwright-core lives in the script's npm cache, not beside this file.
const require = createRequire(path.join(env("E2E_NPM_DIR"), "package.json"));
const { chromium } = require("playwright-core");

const MIN_PNG_BYTES = 8 * 1024;
const MIN_INK_PIXELS = 400; // dark pixels: text and buttons were drawn
const MIN_COLOURS = 8;
const TEMPLATE_SYNTAX = ["{{", "}}", "{%", "%}", "{#", "#}"];

const log = (msg) => console.log(`browser: ${msg}`);
const report = [];

class Failure extends Error {}
function check(condition, message) {
  if (!condition) throw new Failure(message);
}

function hexToRgb(hex) {
  const h = hex.replace("#", "");
  const full = h.length === 3 ? [...h].map((c) => c + c).join("") : h;
  const n = parseInt(full, 16);
  return `rgb(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255})`;
}

// --- a small PNG reader: 8-bit RGB/RGBA, not interlaced (what Chromium writes) ---
function decodePng(buf) {
  const sig = "89504e470d0a1a0a";
  check(buf.subarray(0, 8).toString("hex") === sig, "not a PNG (bad signature)");
  let off = 8;
  let width, height, depth, type, interlace;
  const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const kind = buf.toString("latin1", off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (kind === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      depth = data[8];
      type = data[9];
      interlace = data[12];
    } else if (kind === "IDAT") idat.push(data);
    else if (kind === "IEND") break;
    off += 12 + len;
  }
  check(depth === 8 && (type === 2 || type === 6) && interlace === 0, `unexpected PNG format (depth ${depth}, colour type ${type})`);
  const bpp = type === 6 ? 4 : 3;
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const px = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = px.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? px.subarray((y - 1) * stride, y * stride) : null;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? row[x - bpp] : 0;
      const b = prev ? prev[x] : 0;
      const c = prev && x >= bpp ? prev[x - bpp] : 0;
      let v = src[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      row[x] = v & 255;
    }
  }
  let ink = 0;
  const colours = new Set();
  for (let i = 0; i < px.length; i += bpp) {
    const [r, g, b] = [px[i], px[i + 1], px[i + 2]];
    if (0.299 * r + 0.587 * g + 0.114 * b < 110) ink++;
    if (colours.size < 4096) colours.add((r << 16) | (g << 8) | b);
  }
  return { width, height, ink, colours: colours.size };
}

// --- the render check behind every screenshot ---
async function checkPage(page, name, expect) {
  const status = expect.response ? expect.response.status() : null;
  if (expect.status !== undefined) {
    check(status === expect.status, `${name}: HTTP ${status}, expected ${expect.status} (${page.url()})`);
  }
  await page.waitForLoadState("load");
  const h1 = (await page.locator("h1").first().innerText()).trim();
  check(expect.heading.test(h1), `${name}: <h1> is ${JSON.stringify(h1)}, expected ${expect.heading}`);
  const html = await page.content();
  const text = await page.locator("body").innerText();
  for (const token of TEMPLATE_SYNTAX) {
    check(!text.includes(token), `${name}: the page text shows template syntax ${token}: ${text.slice(0, 300)}`);
    // The HTML too, minus the inline <style> (CSS braces never double up, but be exact).
    check(!html.replace(/<style>[\s\S]*?<\/style>/, "").includes(token), `${name}: the HTML holds template syntax ${token}`);
  }
  for (const needle of expect.texts || []) {
    check(text.includes(needle), `${name}: the page does not say ${JSON.stringify(needle)}: ${text.slice(0, 400)}`);
  }
  const title = await page.title();
  check(title.endsWith(` · ${PRODUCT}`), `${name}: <title> ${JSON.stringify(title)} lacks the product name`);
  const header = (await page.locator("header").innerText()).trim();
  check(header === PRODUCT, `${name}: header shows ${JSON.stringify(header)}, not the branding's ${JSON.stringify(PRODUCT)}`);
  let styled = "no primary button";
  const primary = page.locator(".primary").first();
  if ((await primary.count()) > 0) {
    const bg = await primary.evaluate((el) => getComputedStyle(el).backgroundColor);
    check(bg === hexToRgb(PRIMARY), `${name}: primary button background ${bg}, branding says ${hexToRgb(PRIMARY)}`);
    styled = `primary ${PRIMARY}`;
  }
  const box = await page.locator("main").boundingBox();
  check(box && box.width > 200 && box.height > 100, `${name}: <main> is not laid out (${JSON.stringify(box)})`);

  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  check(fs.existsSync(file), `${name}: screenshot ${file} was not written`);
  const png = fs.readFileSync(file);
  check(png.length >= MIN_PNG_BYTES, `${name}: screenshot is only ${png.length} bytes (< ${MIN_PNG_BYTES}): blank?`);
  const pixels = decodePng(png);
  check(pixels.ink >= MIN_INK_PIXELS, `${name}: only ${pixels.ink} dark pixels: nothing drawn?`);
  check(pixels.colours >= MIN_COLOURS, `${name}: only ${pixels.colours} colours: blank?`);
  const line =
    `${name}.png: HTTP ${status ?? "(history)"}, h1 "${h1}", title+header branded, ${styled}, ` +
    `no template syntax, ${(png.length / 1024).toFixed(1)} KB ${pixels.width}x${pixels.height}, ` +
    `${pixels.ink} ink px, ${pixels.colours >= 4096 ? "4096+" : pixels.colours} colours`;
  report.push(line);
  log(`checked ${line}`);
  return { h1, text };
}

// Resolves with the last main-frame document response that is not a redirect.
function trackDocuments(page) {
  const state = { last: null };
  page.on("response", (r) => {
    const req = r.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame() && !(r.status() >= 300 && r.status() < 400)) {
      state.last = r;
    }
  });
  return state;
}

function watchConsole(page, problems) {
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()} [${m.location().url || page.url()}]`);
  });
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const started = Date.now();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      ...(process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : []),
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  log(`Chromium ${browser.version()} launched headless in ${Date.now() - started} ms`);
  const problems = [];
  try {
    const context = await browser.newContext({ viewport: { width: 900, height: 720 }, locale: "en-US" });
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    watchConsole(page, problems);
    const docs = trackDocuments(page);

    // 1. The chooser: two upstreams configured, no idp_hint from the client.
    const first = await page.goto(AUTH_URL);
    await checkPage(page, "01-chooser", {
      response: first,
      status: 200,
      heading: /^Sign in$/,
      texts: [`Continue with ${DEV_LABEL}`, `Continue with ${DOWN_LABEL}`],
    });
    const buttons = await page.locator("a.button").allInnerTexts();
    check(buttons.length === 2, `chooser: ${buttons.length} buttons, expected 2: ${buttons}`);

    // 2. The person tries the provider that is down: the provider-down page.
    await page.getByRole("link", { name: `Continue with ${DOWN_LABEL}` }).click();
    await page.waitForURL((u) => u.searchParams.get("idp_hint") === DOWN_ID);
    await checkPage(page, "02-error-upstream-unavailable", {
      response: docs.last,
      status: 502,
      heading: /^The identity provider is unavailable$/,
      texts: [`${DOWN_LABEL} cannot be reached right now`],
    });
    const retry = await page.getByRole("link", { name: "Try again" }).getAttribute("href");
    check(retry && new URL(retry).searchParams.get("idp_hint") === DOWN_ID, `"Try again" does not retry ${DOWN_ID}: ${retry}`);

    // 3. Back to the chooser, and the development provider this time.
    await page.goBack();
    await page.waitForLoadState("load");
    check((await page.locator("h1").innerText()).trim() === "Sign in", "Back did not return to the chooser");
    await page.getByRole("link", { name: `Continue with ${DEV_LABEL}` }).click();
    await page.waitForURL((u) => u.pathname.endsWith("/dev-idp/authorize"));
    await page.getByLabel("Email", { exact: true }).fill(EMAIL);
    await page.getByLabel("the email is verified").check();
    await checkPage(page, "03-dev-login", {
      response: docs.last,
      status: 200,
      heading: /^Development identity provider$/,
      texts: ["whoever you type here is who you are"],
    });

    // 4. Sign in at the provider -> the broker's callback -> the consent page.
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((u) => !u.pathname.startsWith("/dev-idp/"));
    await checkPage(page, "04-consent", {
      response: docs.last,
      status: 200,
      heading: new RegExp(`^Allow ${CLIENT_NAME} to use your MCP tools\\?$`),
      texts: [EMAIL, new URL(REDIRECT_URI).hostname, "Only allow applications you started yourself"],
    });
    const scopes = await page.locator("ul li code").allInnerTexts();
    check(scopes.length > 0, "consent page lists no scopes");

    // 5. Allow -> the broker redirects to the client's loopback redirect URI.
    await page.getByRole("button", { name: "Allow" }).click();
    await page.waitForURL((u) => u.href.startsWith(REDIRECT_URI));
    const landed = new URL(page.url());
    for (const p of ["code", "state", "iss"]) {
      check(landed.searchParams.get(p), `the redirect to the client lacks ${p}: ${page.url()}`);
    }
    check(landed.searchParams.get("iss") === BASE, `iss ${landed.searchParams.get("iss")} is not ${BASE}`);
    await page.waitForLoadState("load");
    check((await page.locator("h1").innerText()).trim() === "Signed in", "the client's redirect page did not load");
    log(`redirected to the client: ${landed.origin}${landed.pathname}?code=…&state=…&iss=${landed.searchParams.get("iss")} (scopes ${scopes.join(" ")})`);

    // 6. An application the broker does not know: its error page, fresh browser.
    const stranger = await browser.newContext({ viewport: { width: 900, height: 720 }, locale: "en-US" });
    const page2 = await stranger.newPage();
    watchConsole(page2, problems);
    const bad = new URL(`${BASE}/authorize`);
    bad.search = new URLSearchParams({
      response_type: "code",
      client_id: "e2e-no-such-client",
      redirect_uri: REDIRECT_URI,
      state: "e2e",
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
    }).toString();
    const badResponse = await page2.goto(bad.href);
    await checkPage(page2, "05-error-unknown-client", {
      response: badResponse,
      status: 400,
      heading: /^This sign-in request cannot be completed$/,
      texts: ["unknown client_id"],
    });
    check(!page2.url().startsWith(REDIRECT_URI), "an unknown client was redirected instead of shown an error page");
    await stranger.close();
    await context.close();

    // Console noise: report it; fail on script errors and CSP violations.
    for (const p of problems) log(`note: ${p}`);
    const serious = problems.filter((p) => p.startsWith("page error") || /Content Security Policy/i.test(p) && !/favicon/i.test(p));
    check(serious.length === 0, `the pages raised errors: ${serious.join(" | ")}`);
    fs.writeFileSync(path.join(SHOTS, "checks.txt"), report.join("\n") + "\n");
    log(`${report.length} pages rendered and checked in ${Date.now() - started} ms; screenshots in ${SHOTS}`);
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.log(`browser: FAIL: ${e instanceof Failure ? e.message : e.stack || e}`);
    process.exit(1);
  },
);
