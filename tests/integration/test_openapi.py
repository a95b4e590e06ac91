#!/usr/bin/python3
"""docs/openapi.yaml against wispd, both ways (called by test_metrics.sh).

--static: the file alone (OpenAPI 3.0, every $ref resolves, every error
response is the Error body, every route string in api.c's dispatch code is
documented).

Live, against a running daemon:
- documented -> served: every documented operation is called (its request
  examples first, with their paths replaced by real files) and must answer
  a documented status, 2xx at least once; every JSON answer must match the
  documented schema for that status, closed (no member the schema lacks);
- served -> documented: every documented path and a list of plausible
  undocumented ones are probed with every method; whatever is not
  documented must answer 404 or 405 with the Error body.

Usage: test_openapi.py --static OPENAPI
       test_openapi.py OPENAPI SOCKET IDLE_IMAGE TMPDIR"""
import json
import os
import re
import socket
import sys
import time

import yaml

sys.path.insert(0, sys.path[0])
from wispd_client import Checks, request  # noqa: E402

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


class Spec:
    def __init__(self, path):
        self.doc = yaml.safe_load(open(path))

    def resolve(self, node):
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"external $ref {ref}")
            node = self.doc
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if part not in node:
                    raise ValueError(f"$ref {ref} does not resolve")
                node = node[part]
            seen += 1
            if seen > 20:
                raise ValueError(f"$ref loop at {ref}")
        return node

    def operations(self):
        """(template, method, operation)"""
        for tmpl, item in self.doc["paths"].items():
            item = self.resolve(item)
            for m, op in item.items():
                if m.upper() in METHODS:
                    yield tmpl, m.upper(), op

    def best_template(self, path):
        """The documented path template that path falls under: a literal
        path first (/vms/receive), then templates (/vms/{vm})."""
        if path in self.doc["paths"]:
            return path
        for tmpl in self.doc["paths"]:
            rx = "^" + re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(tmpl)) + "$"
            if "{" in tmpl and re.match(rx, path):
                return tmpl
        return None


def type_ok(t, v):
    return {
        "object": isinstance(v, dict),
        "array": isinstance(v, list),
        "string": isinstance(v, str),
        "integer": isinstance(v, int) and not isinstance(v, bool),
        "number": isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": isinstance(v, bool),
    }[t]


def validate(spec, schema, v, where, closed=True):
    """Problems with v against schema (a list of strings)."""
    s = spec.resolve(schema)
    out = []
    if v is None:
        return [] if s.get("nullable") else [f"{where}: null"]
    if "allOf" in s:
        props = {}
        for sub in s["allOf"]:
            out += validate(spec, sub, v, where, closed=False)
            props.update(spec.resolve(sub).get("properties", {}))
        if closed and isinstance(v, dict):
            out += [f"{where}.{k}: not documented" for k in v if k not in props]
        return out
    if "oneOf" in s:
        n = sum(1 for sub in s["oneOf"] if not validate(spec, sub, v, where))
        return [] if n == 1 else [f"{where}: matches {n} of oneOf"]
    if "type" in s and not type_ok(s["type"], v):
        return [f"{where}: {type(v).__name__} is not {s['type']}"]
    if "enum" in s and v not in s["enum"]:
        out.append(f"{where}: {v!r} not in {s['enum']}")
    if "pattern" in s and isinstance(v, str) and not re.search(s["pattern"], v):
        out.append(f"{where}: {v!r} does not match {s['pattern']}")
    if "minimum" in s and isinstance(v, (int, float)) and v < s["minimum"]:
        out.append(f"{where}: {v} < {s['minimum']}")
    if "maximum" in s and isinstance(v, (int, float)) and v > s["maximum"]:
        out.append(f"{where}: {v} > {s['maximum']}")
    if isinstance(v, dict):
        props = s.get("properties", {})
        out += [f"{where}.{k}: required, missing" for k in s.get("required", []) if k not in v]
        extra = s.get("additionalProperties", None)
        for k, x in v.items():
            if k in props:
                out += validate(spec, props[k], x, f"{where}.{k}")
            elif isinstance(extra, dict):
                out += validate(spec, extra, x, f"{where}.{k}")
            elif closed or extra is False:
                out.append(f"{where}.{k}: not documented")
    if isinstance(v, list) and "items" in s:
        for i, x in enumerate(v):
            out += validate(spec, s["items"], x, f"{where}[{i}]")
    return out


def dispatch_routes(api_c):
    """The paths route() and the sub-paths route_vm() compare against."""
    src = open(api_c).read()
    route = src[src.index("static void route("):]
    route = route[: route.index("\n}\n")]
    rvm = src[src.index("static void route_vm("):]
    rvm = rvm[: rvm.index("\n}\n")]
    return (set(re.findall(r'strcmp\(url, "(/[^"]*)"\)', route)),
            set(re.findall(r'strcmp\(sub, "([a-z]+)"\)', rvm)))


def static_checks(spec, c, api_c):
    d = spec.doc
    c.check("openapi-version", str(d.get("openapi", "")).startswith("3.0."), f"openapi: {d.get('openapi')}")
    problems, ids = [], set()
    try:
        ops = list(spec.operations())
    except ValueError as e:
        c.bad("openapi-refs", e)
        return
    for tmpl, m, op in ops:
        name = f"{m} {tmpl}"
        oid = op.get("operationId")
        if not oid:
            problems.append(f"{name}: no operationId")
        ids.add(oid)
        resp = op.get("responses", {})
        if not any(str(s).startswith("2") for s in resp):
            problems.append(f"{name}: no 2xx response")
        if "413" not in resp:
            problems.append(f"{name}: no 413 (a body over 64 KiB)")
        if "{vm}" in tmpl and "404" not in resp:
            problems.append(f"{name}: no 404 for an unknown VM")
        for status, r in resp.items():
            try:
                r = spec.resolve(r)
                for ctype, media in r.get("content", {}).items():
                    spec.resolve(media.get("schema", {}))
                    if str(status)[0] in "45" and (ctype != "application/json" or spec.resolve(media["schema"]) is not spec.resolve({"$ref": "#/components/schemas/Error"})):
                        problems.append(f"{name} {status}: not the Error body")
            except ValueError as e:
                problems.append(f"{name} {status}: {e}")
            if not r.get("description"):
                problems.append(f"{name} {status}: no description")
    if len(ids) != len({id(op) for _, _, op in ops}):
        problems.append("operationIds are not unique")
    c.check("openapi-well-formed", not problems, "; ".join(problems[:5]))
    # Every route string in the dispatch code is documented (necessary, not
    # sufficient: the live probe does the rest).
    paths, subs = dispatch_routes(api_c)
    undocumented = [p for p in paths if p not in d["paths"]]
    undocumented += [f"/vms/{{vm}}/{s}" for s in subs if f"/vms/{{vm}}/{s}" not in d["paths"]]
    c.check("dispatch-strings-documented", paths and subs and not undocumented,
            f"routes in api.c {sorted(paths)}, subs {sorted(subs)}; undocumented: {undocumented}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    if sys.argv[1] == "--static":
        spec, c = Spec(sys.argv[2]), Checks()
        static_checks(spec, c, "src/control/api.c")
        return 1 if c.failed else 0
    spec_path, sock, idle, tmp = sys.argv[1:5]
    spec, c = Spec(spec_path), Checks()
    uk = os.path.dirname(idle)
    port = free_port()
    with open(os.path.join(tmp, "mig.key"), "w") as f:  # the examples' PSK
        f.write(os.urandom(32).hex() + "\n")
    subst = {
        "/srv/idle.elf": idle,
        "/srv/vrng.elf": os.path.join(uk, "vrng.elf"),
        "/srv/web1.snap": os.path.join(tmp, "web1.snap"),
        "/etc/wisp/mig.key": os.path.join(tmp, "mig.key"),
        7000: port,
        "127.0.0.1:7000": f"127.0.0.1:{port}",
    }

    def fill(x):
        if isinstance(x, dict):
            return {k: fill(v) for k, v in x.items()}
        if isinstance(x, list):
            return [fill(v) for v in x]
        return subst.get(x, x)

    ops = {(t, m): op for t, m, op in spec.operations()}
    seen = {k: set() for k in ops}
    problems = []

    def call(method, path, body=None, raw=None, want=None):
        """Call, check against the spec, return (status, parsed body)."""
        status, ctype, data, headers = request(sock, method, path, body=body, raw=raw, headers=True)
        tmpl = spec.best_template(path.split("?")[0])
        op = ops.get((tmpl, method))
        where = f"{method} {path}"
        if op is None:
            problems.append(f"{where}: not documented (answered {status})")
            return status, None
        seen[(tmpl, method)].add(status)
        resp = op["responses"].get(str(status))
        if resp is None:
            problems.append(f"{where}: status {status} not documented ({data[:120]!r})")
            return status, None
        if want is not None and status != want:
            problems.append(f"{where}: {status}, wanted {want} ({data[:160]!r})")
        resp = spec.resolve(resp)
        content = resp.get("content", {})
        if not content:
            if data:
                problems.append(f"{where}: {status} has a body, none documented")
            return status, None
        media = content.get(ctype.split(";")[0].strip())
        if media is None:
            problems.append(f"{where}: content type {ctype!r} not documented ({list(content)})")
            return status, None
        if ctype.startswith("application/json"):
            try:
                j = json.loads(data)
            except ValueError as e:
                problems.append(f"{where}: body is not JSON: {e}")
                return status, None
            problems.extend(validate(spec, media["schema"], j, f"{where} {status}"))
            return status, j
        for h in resp.get("headers", {}):
            if "follow" not in path and (headers.get(h) is None or not headers[h].isdigit()):
                problems.append(f"{where}: header {h}: {headers.get(h)!r}")
        return status, data

    # --- documented -> served: the examples, then every operation ---------
    examples = {}
    for (t, m), op in ops.items():
        if "$ref" in spec.doc["paths"][t]:
            continue  # an alias (/vms/): its examples are the original's
        for name, ex in (op.get("requestBody", {}).get("content", {}).get("application/json", {})
                         .get("examples", {})).items():
            examples[(t, m, name)] = fill(ex["value"])
    ex = lambda t, m, n: examples.pop((t, m, n))  # noqa: E731
    call("GET", "/version", want=200)
    call("POST", "/vms", ex("/vms", "POST", "unikernel"), want=201)
    _, r = call("POST", "/vms", ex("/vms", "POST", "with-a-device"), want=201)
    call("POST", "/vms/", {"image": idle, "name": "probe"}, want=201)  # kept for the probes
    call("GET", "/vms", want=200)
    call("GET", "/vms/", want=200)
    call("GET", "/vms/web1", want=200)
    call("GET", "/vms/web1/", want=200)
    call("GET", "/vms/web1/stats", want=200)
    call("GET", "/vms/web1/console", want=200)
    call("GET", "/vms/web1/console?offset=0", want=200)
    call("POST", "/vms/web1/pause", want=200)
    call("POST", "/vms/web1/resume", want=200)
    call("GET", "/vms/web1/migration", want=200)
    call("POST", "/vms/web1/save", ex("/vms/{vm}/save", "POST", "save"), want=200)
    _, r = call("POST", "/vms", ex("/vms", "POST", "restore"), want=201)
    if not (isinstance(r, dict) and isinstance(r.get("restore_ms"), (int, float))):
        problems.append(f"restore: no restore_ms in {r}")
    call("POST", "/vms/receive", ex("/vms/receive", "POST", "receive"), want=201)
    call("POST", "/vms/web2/migrate", ex("/vms/{vm}/migrate", "POST", "migrate"), want=202)
    for _ in range(200):
        _, m = call("GET", "/vms/web2/migration", want=200)
        if not isinstance(m, dict) or m.get("state") != "running":
            break
        time.sleep(0.05)
    if not (isinstance(m, dict) and m.get("state") == "done"):
        problems.append(f"migration example did not finish: {m}")
    for _ in range(100):
        _, v = call("GET", "/vms/web3", want=200)
        if isinstance(v, dict) and v.get("state") == "running":
            break
        time.sleep(0.05)
    call("GET", "/vms/rng1/stats", want=200)
    call("GET", "/stats", want=200)
    call("GET", "/metrics", want=200)
    if examples:
        problems.append(f"examples not exercised: {sorted(examples)}")

    # Errors: each a documented status with the Error body.
    call("GET", "/vms/nope", want=404)
    for (t, m), op in ops.items():
        if "{vm}" in t:
            call(m, t.replace("{vm}", "nope"), body={} if m == "POST" else None, want=404)
    call("POST", "/vms", raw=b"{nope", want=400)
    call("POST", "/vms", {"image": idle, "name": "web1"}, want=409)
    call("POST", "/vms", {"image": idle, "memory": "1G"}, want=400)
    call("POST", "/vms/web1/resume", want=409)
    call("POST", "/vms/web1/save", {}, want=400)
    call("POST", "/vms/web1/migrate", {"to": "nowhere"}, want=400)
    call("GET", "/vms/web1/console?offset=x", want=400)
    call("POST", "/vms/receive", {}, want=400)
    call("POST", "/vms", raw=b" " * (70 << 10), want=413)
    call("GET", "/version", raw=b" " * (70 << 10), want=413)
    call("DELETE", "/vms/web1/", want=204)
    for vm in ("rng1", "web2", "web3"):
        call("DELETE", f"/vms/{vm}", want=204)
    call("POST", "/vms/web2/pause", want=404)
    missing = [f"{m} {t}" for (t, m), st in seen.items() if not any(200 <= s < 300 for s in st)]
    c.check("documented-routes-work", not problems and not missing,
            "; ".join(problems[:5]) + (f"; never answered 2xx: {missing}" if missing else ""))

    # --- served -> documented: probe paths x methods ---------------------------
    probes = [t.replace("{vm}", "probe") for t in spec.doc["paths"]]
    probes += ["/", "/v1", "/v1/vms", "/api", "/version/", "/stats/", "/metrics/", "/health", "/healthz",
               "/ping", "/info", "/events", "/pool", "/shells", "/openapi.yaml", "/VMS", "/Version",
               "/vms//stats", "/vms/receive/x", "/vms/probe/stats/x", "/vms/probe/console/x", "/vms/probe//",
               "/vms/probe/snapshot", "/vms/probe/logs", "/vms/probe/config", "/vms/probe/exec",
               "/vms/probe/restore", "/vms/probe/destroy", "/vms/probe/start", "/vms/probe/stop",
               "/vms/probe/events", "/vms/probe/metrics", "/vms/probe/info", "/vms/probe/PAUSE"]
    probes += [f"/vms/probe/{sub}" for sub in dispatch_routes("src/control/api.c")[1]]
    probes += [p for p in dispatch_routes("src/control/api.c")[0] if p not in probes]
    served_undocumented, bad_errors = [], []
    for path in probes:
        tmpl = spec.best_template(path)
        for m in METHODS:
            if tmpl and (tmpl, m) in ops:
                continue  # documented: exercised above
            status, ctype, data = request(sock, m, path, body={} if m in ("POST", "PUT", "PATCH") else None)
            if status not in (404, 405):
                served_undocumented.append(f"{m} {path} -> {status}")
            elif m != "HEAD":
                try:
                    j = json.loads(data)
                    if set(j) != {"error"} or not isinstance(j["error"], str) or not ctype.startswith("application/json"):
                        raise ValueError(j)
                except ValueError:
                    bad_errors.append(f"{m} {path} -> {status} {data[:80]!r}")
    c.check("served-routes-documented", not served_undocumented,
            f"served but not in {spec_path}: {served_undocumented[:6]}")
    c.check("undocumented-answer-error-body", not bad_errors, f"{bad_errors[:4]}")
    request(sock, "DELETE", "/vms/probe")
    print(f"openapi: {len(ops)} operations, {len(probes)} paths x {len(METHODS)} methods probed", flush=True)
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
