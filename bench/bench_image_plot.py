#!/usr/bin/env python3
"""`make bench-image`, the summary: reads build/bench/image-sizes.csv
(bench_image_sizes.sh) and build/bench/image-boot.csv (bench_image.sh),
prints the table with the goals of issue 13 marked, and writes
docs/bench/image.csv and docs/bench/image.png (a bar chart)."""
import csv
import os
import statistics
import sys

B = os.environ.get("BUILD", "build")
sizes_csv, boot_csv = f"{B}/bench/image-sizes.csv", f"{B}/bench/image-boot.csv"
APPS = ["redis", "nginx", "memcached"]
SIZE_GOAL = {"redis": 10e6, "nginx": 8e6}


def read(path):
    if not os.path.exists(path):
        print(f"bench-image: {path} missing")
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


sizes = read(sizes_csv)
boots = read(boot_csv)
size = {(r["app"], r["kind"]): int(r["value"]) for r in sizes}
boot = {}
rps = {}
for r in boots:
    if r["metric"] == "boot_ms" and r["value"] not in ("", "FAIL"):
        boot.setdefault((r["app"], r["vmm"]), []).append(int(r["value"]))
    elif r["metric"] == "rps":
        rps[(r["app"], r["vmm"])] = float(r["value"])

rows = [("metric", "app", "subject", "value", "goal", "met")]


def mark(ok):
    return "" if ok is None else ("met" if ok else "NOT met")


print("\nbench-image: sizes (bytes)")
print(f"{'app':10} {'wisp image':>12} {'unpacked':>12} {'debootstrap':>14} {'container':>12}  goal")
for a in APPS:
    w, u = size.get((a, "wisp-initramfs")), size.get((a, "wisp-unpacked"))
    d = size.get((a, "debootstrap-minbase"))
    c = next((v for (app, k), v in size.items() if app == a and k.startswith("container-")), None)
    g = SIZE_GOAL.get(a)
    ok = None if g is None or w is None else w <= g
    print(f"{a:10} {w or '-':>12} {u or '-':>12} {d or '-':>14} {c or 'n/a':>12}  "
          f"{'<= %d MB %s' % (g / 1e6, mark(ok)) if g else ''}")
    rows.append(("image_bytes", a, "wisp-initramfs", w, f"<= {g:.0f}" if g else "", mark(ok)))
    rows.append(("image_bytes", a, "wisp-unpacked", u, "", ""))
    rows.append(("image_bytes", a, "debootstrap-minbase", d if d else "n/a", "", ""))
    rows.append(("image_bytes", a, "container", c if c else "n/a (none local)", "", ""))

print("\nbench-image: boot -> ready, median ms (ready = first answer to the server's protocol)")
print(f"{'app':10} {'wisp':>8} {'qemu':>8} {'runc':>8} {'wisp/qemu':>10} {'wisp/runc':>10}")
for a in APPS:
    m = {v: statistics.median(boot[(a, v)]) if boot.get((a, v)) else None for v in ("wisp", "qemu", "runc")}
    rq = m["wisp"] / m["qemu"] if m["wisp"] and m["qemu"] else None
    rr = m["wisp"] / m["runc"] if m["wisp"] and m["runc"] else None
    f = lambda x, p=0: "-" if x is None else f"{x:.{p}f}"
    print(f"{a:10} {f(m['wisp']):>8} {f(m['qemu']):>8} {f(m['runc']):>8} {f(rq, 2):>10} {f(rr, 2):>10}")
    for v in ("wisp", "qemu", "runc"):
        rows.append(("boot_ready_ms_median", a, v, f(m[v]), "", ""))
    rows.append(("boot_ratio", a, "wisp/qemu", f(rq, 2), "<= 0.5", mark(None if rq is None else rq <= 0.5)))
    rows.append(("boot_ratio", a, "wisp/runc", f(rr, 2), "<= 2", mark(None if rr is None else rr <= 2)))

if rps:
    print("\nbench-image: redis-benchmark, requests/s (TCG: ratios only)")
    for t in sorted({a for a, _ in rps}):
        w, r = rps.get((t, "wisp")), rps.get((t, "runc"))
        ratio = w / r if w and r else None
        print(f"{t:14} wisp {w or '-':>10} runc {r or '-':>10} wisp/runc {'-' if ratio is None else f'{ratio:.2f}'}")
        rows.append(("rps_ratio", t, "wisp/runc", "-" if ratio is None else f"{ratio:.2f}", "", ""))

os.makedirs("docs/bench", exist_ok=True)
with open("docs/bench/image.csv", "w", newline="") as f:
    csv.writer(f).writerows(rows)
print("\nbench-image: wrote docs/bench/image.csv")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("bench-image: matplotlib missing: no chart")
    sys.exit(0)
fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
x = range(len(APPS))
kinds = [("wisp-initramfs", "wisp image"), ("debootstrap-minbase", "debootstrap minbase")]
for i, (k, label) in enumerate(kinds):
    ax[0].bar([p + i * 0.4 for p in x], [size.get((a, k), 0) / 1e6 for a in APPS], 0.4, label=label)
ax[0].set_yscale("log")
ax[0].set_ylabel("MB (log)")
ax[0].set_title("image size")
for i, v in enumerate(("wisp", "qemu", "runc")):
    vals = [statistics.median(boot[(a, v)]) / 1000 if boot.get((a, v)) else 0 for a in APPS]
    ax[1].bar([p + i * 0.27 for p in x], vals, 0.27, label=v if v != "qemu" else "qemu microvm")
ax[1].set_ylabel("s (L2 under TCG: ratios only)")
ax[1].set_title("boot -> first answer")
tests = sorted({a for a, _ in rps})
for i, v in enumerate(("wisp", "runc")):
    ax[2].bar([p + i * 0.4 for p in range(len(tests))], [rps.get((t, v), 0) for t in tests], 0.4, label=v)
ax[2].set_xticks([p + 0.2 for p in range(len(tests))])
ax[2].set_xticklabels(tests)
ax[2].set_title("redis-benchmark req/s")
for a in ax[:2]:
    a.set_xticks([p + 0.3 for p in x])
    a.set_xticklabels(APPS)
for a in ax:
    a.legend()
fig.tight_layout()
fig.savefig("docs/bench/image.png", dpi=110)
print("bench-image: wrote docs/bench/image.png")
