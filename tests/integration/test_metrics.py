#!/usr/bin/python3
"""GET /metrics against a running wispd (called by test_metrics.sh).

The exposition must pass two parsers: Debian's prometheus_client text
parser, and the strict one below (the 0.0.4 text format's grammar, HELP and
TYPE before every family's samples, families contiguous and unique, counters
named *_total, histograms whole and cumulative, no duplicate series, label
values escaped). Then its values must agree with GET /stats and `wisp stats
--json` (taken before and after each scrape: a running VM's counters lie
between the two; a finished one's are equal), and device I/O counters must
move while a VM does I/O.

Usage: test_metrics.py SOCKET WISP MOVING_VM ESCAPED_VM ESCAPED_IMAGE"""
import json
import math
import re
import subprocess
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, sys.path[0])
from wispd_client import Checks, get_json, request  # noqa: E402

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    rf"^({NAME})(?:\{{((?:{LABEL}={VALUE})(?:,{LABEL}={VALUE})*)?\}})? "
    r"([-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|NaN|[-+]?Inf))$"
)
PAIR = re.compile(rf"({LABEL})=({VALUE})")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def unescape(v):
    out, i = [], 1
    while i < len(v) - 1:
        if v[i] == "\\":
            out.append({"\\": "\\", '"': '"', "n": "\n"}[v[i + 1]])
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


def strict_parse(text):
    """Families {name: {type, help, samples: [(name, labels, value)]}}, or
    raise ValueError naming the first problem."""
    if not text.endswith("\n"):
        raise ValueError("the exposition does not end with a newline")
    fams, order, cur, seen = {}, [], None, set()
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {n} ({line[:80]!r})"
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            if len(parts) < 4 or not re.fullmatch(NAME, parts[2]):
                raise ValueError(f"{where}: malformed HELP")
            name = parts[2]
            if re.search(r"\\[^\\n]", parts[3].replace("\\\\", "")):
                raise ValueError(f"{where}: bad escape in HELP")
            if name in fams:
                raise ValueError(f"{where}: second HELP for {name}")
            fams[name] = {"help": parts[3], "type": None, "samples": []}
            order.append(name)
            cur = name
        elif line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[3] not in TYPES:
                raise ValueError(f"{where}: malformed TYPE")
            if parts[2] != cur or fams[cur]["type"] is not None or fams[cur]["samples"]:
                raise ValueError(f"{where}: TYPE not right after its HELP")
            fams[cur]["type"] = parts[3]
        elif line.startswith("#") or not line.strip():
            raise ValueError(f"{where}: comment or blank line (wispd writes neither)")
        else:
            m = SAMPLE.match(line)
            if not m:
                raise ValueError(f"{where}: not a sample line")
            name, labels, value = m.group(1), m.group(2) or "", m.group(3)
            if cur is None or fams[cur]["type"] is None:
                raise ValueError(f"{where}: sample before its family's HELP and TYPE")
            t = fams[cur]["type"]
            allowed = {cur} if t != "histogram" else {cur + s for s in ("_bucket", "_sum", "_count")}
            if name not in allowed:
                raise ValueError(f"{where}: sample {name} outside its family {cur} (or no HELP/TYPE)")
            pairs = PAIR.findall(labels)
            if ",".join(f"{k}={v}" for k, v in pairs) != labels:
                raise ValueError(f"{where}: malformed labels")
            lab = {}
            for k, v in pairs:
                if k in lab or k.startswith("__"):
                    raise ValueError(f"{where}: label {k} repeated or reserved")
                lab[k] = unescape(v)
            key = (name, tuple(sorted(lab.items())))
            if key in seen:
                raise ValueError(f"{where}: duplicate series")
            seen.add(key)
            fams[cur]["samples"].append((name, lab, float(value)))
    for name in order:
        f = fams[name]
        if f["type"] is None:
            raise ValueError(f"{name}: HELP without TYPE")
        if f["type"] == "counter":
            if not name.endswith("_total"):
                raise ValueError(f"counter {name} is not named *_total")
            if any(v < 0 or math.isnan(v) for _, _, v in f["samples"]):
                raise ValueError(f"counter {name} has a negative or NaN sample")
        elif name.endswith("_total"):
            raise ValueError(f"{name} is named *_total but is a {f['type']}")
        if f["type"] == "histogram":
            check_histogram(name, f["samples"])
        if name.startswith("wisp_vm_"):
            for _, lab, _ in f["samples"]:
                if not lab.get("id") or not lab.get("name"):
                    raise ValueError(f"{name}: a per-VM sample without id and name labels")
    return fams


def check_histogram(name, samples):
    groups = {}
    for sname, lab, v in samples:
        rest = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if sname.endswith("_bucket"):
            if "le" not in lab:
                raise ValueError(f"{name}: bucket without le")
            g["buckets"].append((float(lab["le"]), v))
        elif sname.endswith("_sum"):
            g["sum"] = v
        else:
            g["count"] = v
    for rest, g in groups.items():
        b = g["buckets"]
        if not b or b[-1][0] != math.inf or g["sum"] is None or g["count"] is None:
            raise ValueError(f"{name}{dict(rest)}: needs buckets up to +Inf, _sum and _count")
        if any(b[i][0] >= b[i + 1][0] or b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            raise ValueError(f"{name}{dict(rest)}: buckets not increasing and cumulative")
        if b[-1][1] != g["count"]:
            raise ValueError(f"{name}{dict(rest)}: +Inf bucket {b[-1][1]} != _count {g['count']}")


def value(fams, name, /, **labels):
    """The one sample of family `name` whose labels include `labels`."""
    fam = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name not in fams and name.endswith(suffix):
            fam = name[: -len(suffix)]
    hits = [v for n, lab, v in fams.get(fam, {}).get("samples", [])
            if n == name and all(lab.get(k) == str(x) for k, x in labels.items())]
    return hits[0] if len(hits) == 1 else None


def scrape(sock):
    status, ctype, body = request(sock, "GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"GET /metrics: {status} {body[:200]!r}")
    return ctype, body.decode()


def main():
    sock, wisp, moving, escaped_vm, escaped_image = sys.argv[1:6]
    c = Checks()

    def vm_stats(vm):
        out = subprocess.run([wisp, "stats", "--json", vm], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    vms = get_json(sock, "/vms")
    before = {v["name"]: vm_stats(v["name"]) for v in vms}
    d_before = get_json(sock, "/stats")
    ctype, text = scrape(sock)
    d_after = get_json(sock, "/stats")
    after = {v["name"]: vm_stats(v["name"]) for v in vms}
    c.check("content-type", ctype.startswith("text/plain; version=0.0.4"), f"got {ctype!r}")

    try:
        fams = strict_parse(text)
        c.ok("strict-parser")
    except ValueError as e:
        c.bad("strict-parser", e)
        return 1
    try:
        theirs = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                theirs[(s.name, tuple(sorted(s.labels.items())))] = s.value
        ours = {(n, tuple(sorted(lab.items()))): v for f in fams.values() for n, lab, v in f["samples"]}
        c.check("prometheus-client-parser", theirs == ours,
                f"prometheus_client read {len(theirs)} series, we read {len(ours)}; "
                f"differ: {sorted(set(theirs.items()) ^ set(ours.items()))[:3]}")
    except Exception as e:  # the parser raises plain exceptions
        c.bad("prometheus-client-parser", f"{type(e).__name__}: {e}")

    # Daemon-wide series against GET /stats.
    stable = d_before["creates"] == d_after["creates"] and d_before["pool"] == d_after["pool"]
    cr = d_after["creates"]
    got = {
        "pool": value(fams, "wispd_vm_creates_total", **{"from": "pool"}),
        "cold": value(fams, "wispd_vm_creates_total", **{"from": "cold"}),
        "failed": value(fams, "wispd_vm_create_errors_total"),
    }
    want = {"pool": cr["from_pool"], "cold": cr["cold"], "failed": cr["failed"]}
    c.check("creates-match-stats", stable and got == want and cr["total"] == cr["from_pool"] + cr["cold"]
            and cr["total"] > 0 and cr["cold"] > 0 and cr["failed"] > 0,
            f"metrics {got}, /stats {cr} (stable: {stable})")
    c.check("destroys-match-stats", value(fams, "wispd_vm_destroys_total") == d_after["destroys"],
            f"{value(fams, 'wispd_vm_destroys_total')} vs {d_after['destroys']}")
    bad_pool = []
    for p in d_after["pool"]:
        for key, metric in (("target", "wispd_pool_target_shells"), ("ready", "wispd_pool_ready_shells"),
                            ("starting", "wispd_pool_starting_shells"), ("hits", "wispd_pool_hits_total"),
                            ("refills", "wispd_pool_refills_total"),
                            ("shell_failures", "wispd_pool_shell_failures_total")):
            lab = {"mem": p["mem"], "cpus": p["cpus"], "kind": p["kind"]}
            if value(fams, metric, **lab) != p[key]:
                bad_pool.append(f"{metric}{lab} {value(fams, metric, **lab)} != {key} {p[key]}")
    c.check("pool-matches-stats", stable and not bad_pool and d_after["pool"][0]["hits"] > 0
            and d_after["pool"][0]["refills"] >= d_after["pool"][0]["target"] + d_after["pool"][0]["hits"],
            "; ".join(bad_pool) or f"unstable or implausible pool {d_after['pool']}")
    by_state = {s: value(fams, "wispd_vms", state=s) for s in d_after["states"]}
    c.check("vms-by-state-match-stats", by_state == {s: float(n) for s, n in d_after["states"].items()},
            f"{by_state} vs {d_after['states']}")

    # Per-VM series against each VM's stats.
    problems = []
    for v in vms:
        n, b, a = v["name"], before[v["name"]], after[v["name"]]
        lab = {"id": v["id"], "name": n}
        if value(fams, "wisp_vm_info", **lab, image=v["image"]) != 1:
            problems.append(f"{n}: no wisp_vm_info with image {v['image']!r}")
        states = [s for s in d_after["states"] if value(fams, "wisp_vm_state", **lab, state=s) == 1]
        if states != [a["state"]] and states != [b["state"]]:
            problems.append(f"{n}: state {states} vs {b['state']}/{a['state']}")
        for kind in b["exits"]:
            m = value(fams, "wisp_vm_vcpu_exits_total", **lab, kind=kind)
            if m is None or not b["exits"][kind] <= m <= a["exits"][kind]:
                problems.append(f"{n}: exits {kind} {m} not within {b['exits'][kind]}..{a['exits'][kind]}")
        if value(fams, "wisp_vm_memory_bytes", **lab) != a["memory"]["guest"]:
            problems.append(f"{n}: memory {value(fams, 'wisp_vm_memory_bytes', **lab)} vs {a['memory']['guest']}")
        rss, pss = value(fams, "wisp_vm_vmm_rss_bytes", **lab), value(fams, "wisp_vm_vmm_pss_bytes", **lab)
        live = a["state"] in ("running", "paused")
        if live and not (rss > 0 and pss > 0 and min(b["memory"]["vmm_rss"], a["memory"]["vmm_rss"]) / 2 <= rss
                         <= 2 * max(b["memory"]["vmm_rss"], a["memory"]["vmm_rss"])):
            problems.append(f"{n}: rss {rss} pss {pss} vs stats {a['memory']}")
        if b["state"] in ("exited", "crashed") and (rss, pss) != (0, 0):
            problems.append(f"{n}: a finished VM's VMM memory {rss}/{pss} is not 0")
        bt = a["boot"]
        for until, key in (("first_instruction", "started_ns"), ("first_hypercall", "first_hypercall_ns")):
            m = value(fams, "wisp_vm_boot_seconds", **lab, until=until)
            if bt[key] and bt[key] >= bt["request_ns"]:
                if m is None or abs(m - (bt[key] - bt["request_ns"]) / 1e9) > 1e-6:
                    problems.append(f"{n}: boot {until} {m} vs {(bt[key] - bt['request_ns']) / 1e9}")
        devs_b = {d["slot"]: d for d in b.get("devices", [])}
        devs_a = {d["slot"]: d for d in a.get("devices", [])}
        for slot, d in devs_a.items():
            dl = dict(lab, device=d["type"], slot=slot)
            for metric, key, extra in (("wisp_vm_device_io_bytes_total", "tx_bytes", {"direction": "tx"}),
                                       ("wisp_vm_device_io_bytes_total", "rx_bytes", {"direction": "rx"}),
                                       ("wisp_vm_device_io_operations_total", "ops", {}),
                                       ("wisp_vm_device_notifications_total", "notifies", {}),
                                       ("wisp_vm_device_interrupts_total", "interrupts", {}),
                                       ("wisp_vm_device_guest_errors_total", "guest_errors", {})):
                m = value(fams, metric, **dl, **extra)
                lo = devs_b.get(slot, {}).get(key, 0)
                if m is None or not lo <= m <= d[key]:
                    problems.append(f"{n}: {metric} {d['type']} {key} {m} not within {lo}..{d[key]}")
        if not devs_a and any(lab2.get("id") == v["id"] for _, lab2, _ in fams["wisp_vm_device_io_bytes_total"]["samples"]):
            problems.append(f"{n}: device series for a VM without devices")
    c.check("per-vm-series-match-stats", not problems, "; ".join(problems[:4]))

    # Device I/O: an exited VM that did I/O shows it; a running one's counters move.
    dev_vms = [v for v in vms if after[v["name"]].get("devices")]
    did_io = [v["name"] for v in dev_vms if any(d["rx_bytes"] > 0 and d["ops"] > 0 for d in after[v["name"]]["devices"])]
    c.check("device-io-counted", len(did_io) >= 2, f"VMs with device I/O: {did_io} (of {[v['name'] for v in dev_vms]})")
    mv = next(v for v in vms if v["name"] == moving)
    lab = {"id": mv["id"], "name": moving}
    rx0 = value(fams, "wisp_vm_device_io_bytes_total", **lab, direction="rx")
    ops0 = value(fams, "wisp_vm_device_io_operations_total", **lab)
    time.sleep(0.5)
    fams2 = strict_parse(scrape(sock)[1])
    rx1 = value(fams2, "wisp_vm_device_io_bytes_total", **lab, direction="rx")
    ops1 = value(fams2, "wisp_vm_device_io_operations_total", **lab)
    c.check("device-io-moves", rx0 is not None and ops0 is not None and rx1 > rx0 and ops1 > ops0,
            f"{moving}: rx {rx0} -> {rx1}, ops {ops0} -> {ops1}")

    # Label escaping: an image path with a quote, a backslash and a newline.
    ev = next(v for v in vms if v["name"] == escaped_vm)
    raw = [ln for ln in text.split("\n") if ln.startswith("wisp_vm_info{") and f'name="{escaped_vm}"' in ln]
    c.check("label-escaping", ev["image"] == escaped_image and value(fams, "wisp_vm_info", name=escaped_vm, image=escaped_image) == 1
            and len(raw) == 1 and '\\"' in raw[0] and "\\\\" in raw[0] and "\\n" in raw[0],
            f"image {ev['image']!r}, line {raw}")

    # The latency histogram counts each request once, by route and method.
    def count(f, route, method):
        return value(f, "wispd_api_request_duration_seconds_count", route=route, method=method) or 0
    k0 = count(fams2, "/vms/{vm}/stats", "GET")
    n404 = value(fams2, "wispd_api_responses_total", code=404) or 0
    for v in vms[:3]:
        request(sock, "GET", f"/vms/{v['name']}/stats")
    request(sock, "GET", "/vms/no-such-vm")
    fams3 = strict_parse(scrape(sock)[1])
    k1 = count(fams3, "/vms/{vm}/stats", "GET")
    c.check("api-histogram-counts", k1 - k0 == min(3, len(vms)) and count(fams3, "/metrics", "GET") >= 2
            and (value(fams3, "wispd_api_responses_total", code=404) or 0) - n404 == 1,
            f"stats count {k0} -> {k1}, /metrics {count(fams3, '/metrics', 'GET')}, 404s {n404} -> "
            f"{value(fams3, 'wispd_api_responses_total', code=404)}")
    print(f"metrics: {sum(len(f['samples']) for f in fams.values())} samples in {len(fams)} families, "
          f"{len(text)} bytes", flush=True)
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
