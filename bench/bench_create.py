#!/usr/bin/env python3
"""`make bench-create`: VM creation time with N VMs already running, against
fork+exec and crun (LightVM's Figure 9, on KVM).

For each N in --levels (default 0 100 1000 5000 10000):
  1. ramp wispd up to N running VMs (idle.elf: the noop unikernel's idle
     variant, which stays alive sleeping in the POLL hypercall),
  2. measure the memory they take (MemAvailable, the memory cgroup of wispd
     and its VMMs, the VMMs' PSS),
  3. time K creates of noop.elf, request -> the guest's first hypercall
     (wisp-bench create: the client's CLOCK_MONOTONIC against the VMM's
     stamp of the first hypercall), each from a full shell pool,
  4. time K fork+exec+wait of a static binary and K2 `crun run` of a busybox
     container (/bin/true), in the same run, with the N VMs still there.
Writes create.csv, memory.csv and create.png to --out, prints a summary.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time


def log(msg):
    print(f"bench-create: {msg}", flush=True)


def pct(xs, p):
    s = sorted(xs)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def meminfo(key="MemAvailable"):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # KiB
    return 0


def cpu_busy(seconds=1.0):
    """Fraction of all CPUs busy over `seconds` (everyone's work)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = snap()
    time.sleep(seconds)
    t1, i1 = snap()
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(limit, max_wait):
    """Wait (up to max_wait s) until the machine is below `limit` busy: the
    host is shared, and other jobs' load is not ours to measure."""
    start = time.time()
    busy = cpu_busy()
    while busy > limit and time.time() - start < max_wait:
        busy = cpu_busy()
    return busy


class Memcg:
    """A v1 memory cgroup holding wispd and its VMMs (None if unavailable)."""

    def __init__(self, name):
        self.path = f"/sys/fs/cgroup/memory/{name}"
        try:
            os.makedirs(self.path, exist_ok=True)
            open(self.path + "/memory.usage_in_bytes").read()
        except OSError:
            self.path = None

    def usage_kib(self):
        if not self.path:
            return None
        return int(open(self.path + "/memory.usage_in_bytes").read()) // 1024

    def kmem_kib(self):
        try:
            return int(open(self.path + "/memory.kmem.usage_in_bytes").read()) // 1024
        except (OSError, TypeError):
            return None

    def remove(self, wait=120):
        """Remove the cgroup once its last task is gone (10,000 VMMs take a
        while to tear down)."""
        if not self.path:
            return
        end = time.time() + wait
        while True:
            try:
                os.rmdir(self.path)
                return
            except OSError:
                if time.time() > end:
                    log(f"could not remove {self.path}")
                    return
                time.sleep(0.5)


def run_tool(args, timeout=3600):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout.splitlines()


def api(sock, method, path):
    r = subprocess.run(["curl", "-s", "--unix-socket", sock, "-X", method, "http://wispd" + path],
                       capture_output=True, text=True)
    return json.loads(r.stdout) if r.stdout.strip() else None


def vmm_pids(rundir):
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if len(cmd) > 4 and cmd[0].endswith(b"wisp-vmm") and rundir.encode() in cmd[4]:
            pids.append(int(p))
    return pids


def smaps(pid):
    out = {}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            k, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                out[k] = int(rest.split()[0])
    except OSError:
        pass
    return out


def build_bundle(out):
    """An OCI bundle: a read-only busybox rootfs, `crun spec` + /bin/true."""
    bundle = os.path.join(out, "oci-busybox")
    rootfs = os.path.join(bundle, "rootfs")
    shutil.rmtree(bundle, ignore_errors=True)
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
    for tool in ("true", "sh"):
        os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    subprocess.run(["crun", "spec"], cwd=bundle, check=True)
    cfgp = os.path.join(bundle, "config.json")
    cfg = json.load(open(cfgp))
    cfg["process"]["args"] = ["/bin/true"]
    cfg["process"]["terminal"] = False
    cfg["root"] = {"path": os.path.abspath(rootfs), "readonly": True}
    json.dump(cfg, open(cfgp, "w"), indent=2)
    return bundle


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default="build/bench")
    # In the lab, L1 has 4 GiB and one TCG vCPU: levels it can hold.
    in_lab = bool(os.environ.get("LAB_L1"))
    ap.add_argument("--levels", default="0,50,200" if in_lab else "0,100,1000,5000,10000")
    ap.add_argument("--creates", type=int, default=50 if in_lab else 200, help="Wisp creates per level")
    ap.add_argument("--spawns", type=int, default=200, help="fork+exec per level")
    ap.add_argument("--cruns", type=int, default=30, help="crun runs per level")
    ap.add_argument("--cli", type=int, default=10, help="`wisp create` CLI runs per level")
    ap.add_argument("--pool", default="32M=8")
    ap.add_argument("--quiet", type=float, default=0.25,
                    help="wait until other load is below this fraction of the CPUs")
    args = ap.parse_args()
    subprocess.run(["bench/where.sh", "bench-create"], check=False)
    levels = [int(x) for x in args.levels.split(",")]
    b = os.path.abspath(args.build)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    tool = os.path.join(out, "wisp-bench")
    noop = os.path.join(b, "unikernels/noop.elf")
    idle = os.path.join(b, "unikernels/idle.elf")
    exit0 = os.path.join(out, "true")  # bench/true.c, static
    rundir = f"/dev/shm/wisp-bench-{os.getpid()}"  # tmpfs, like /run
    sock = os.path.join(rundir, "wispd.sock")
    have_crun = shutil.which("crun") is not None and os.path.exists("/bin/busybox")
    bundle = build_bundle(out) if have_crun else None
    memcg = Memcg(f"wisp-bench-{os.getpid()}")

    mem_base = meminfo()
    cg_path = memcg.path
    wispd = subprocess.Popen(
        ["sh", "-c", (f"echo $$ > {cg_path}/cgroup.procs; " if cg_path else "") +
         f'exec "$0" --foreground --runtime-dir {rundir} --pool {args.pool}',
         os.path.join(b, "wispd")],
        stderr=open(os.path.join(out, "wispd.log"), "w"))
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    lat_rows, mem_rows, notes = [], [], []
    ramp_lat = {}  # cold-path creates (the pool runs dry while ramping)
    running = 0
    try:
        # Wait for the pool, then take the zero point of memory.
        run_tool([tool, "create", sock, noop, "1"])
        time.sleep(1)
        mem0 = meminfo()
        cg0 = memcg.usage_kib()
        kmem0 = memcg.kmem_kib()
        log(f"wispd up; pool {args.pool}; MemAvailable {mem0 // 1024} MiB")
        for n in levels:
            if n > running:
                t = time.time()
                try:
                    lines = run_tool([tool, "ramp", sock, idle, str(n - running)])
                except RuntimeError as e:
                    notes.append(f"ramp to {n} failed: {e}")
                    log(notes[-1])
                    st = api(sock, "GET", "/stats") or {}
                    running = st.get("vms", running)
                    break
                running = n
                ramp = [float(x) for x in lines]
                ramp_lat[n] = ramp
                log(f"ramped to {n} VMs in {time.time() - t:.1f} s "
                    f"(create p50 {pct(ramp, 50):.0f} us while ramping)")
                time.sleep(2)
            st = api(sock, "GET", "/stats")
            if st["states"]["running"] < n:
                notes.append(f"only {st['states']['running']} of {n} VMs running")
            # Memory of the N running VMs.
            pids = vmm_pids(rundir)
            sample = pids[:: max(1, len(pids) // 500)]
            sm = [smaps(p) for p in sample]
            pss = statistics.mean([s.get("Pss", 0) for s in sm]) if sm else 0
            rss = statistics.mean([s.get("Rss", 0) for s in sm]) if sm else 0
            threads = statistics.mean(
                [len(os.listdir(f"/proc/{p}/task")) for p in sample if os.path.exists(f"/proc/{p}")]
            ) if sample else 0
            wfds = len(os.listdir(f"/proc/{wispd.pid}/fd"))
            row = {"n_running": n, "vmm_processes": len(pids), "threads_per_vmm": round(threads, 2),
                   "wispd_fds": wfds, "vmm_pss_kib": round(pss, 1), "vmm_rss_kib": round(rss, 1)}
            if n:
                row["memavail_kib_per_vm"] = round((mem0 - meminfo()) / n, 1)
                if cg0 is not None:
                    row["memcg_kib_per_vm"] = round((memcg.usage_kib() - cg0) / n, 1)
                if kmem0 is not None:
                    row["memcg_kmem_kib_per_vm"] = round((memcg.kmem_kib() - kmem0) / n, 1)
            mem_rows.append(row)
            log(f"N={n}: {json.dumps(row)}")
            # Timings, on a machine as quiet as we can get it.
            busy = wait_quiet(args.quiet, 120)
            w = [line.split() for line in run_tool([tool, "create", sock, noop, str(args.creates)])]
            first = [float(x[0]) for x in w]
            reply = [float(x[1]) for x in w]
            cold = sum(1 for x in w if x[2] != "pool")
            split = [[float(x[i]) for x in w] for i in (3, 4, 5)]
            destroy = [float(x[6]) for x in w]
            cli = []
            for _ in range(args.cli):
                t0 = time.perf_counter()
                r = subprocess.run([os.path.join(b, "wisp"), "create", noop],
                                   env=dict(os.environ, WISP_SOCKET=sock), capture_output=True, text=True)
                cli.append((time.perf_counter() - t0) * 1e6)
                api(sock, "DELETE", "/vms/" + r.stdout.strip())
            fe = [float(x) for x in run_tool([tool, "spawn", exit0, str(args.spawns)])]
            cr = [float(x) for x in run_tool([tool, "crun", bundle, str(args.cruns)])] if bundle else []
            for system, xs in (("wisp", first), ("wisp-reply", reply), ("wisp-destroy", destroy),
                               ("wisp-cold", ramp_lat.get(n, [])), ("wisp-cli", cli),
                               ("fork+exec", fe), ("crun", cr)):
                if xs:
                    lat_rows.append({"system": system, "n_running": n, "samples": len(xs),
                                     "p50_us": round(pct(xs, 50), 1), "p90_us": round(pct(xs, 90), 1),
                                     "p99_us": round(pct(xs, 99), 1),
                                     "mean_us": round(statistics.mean(xs), 1)})
            log(f"N={n} (cpu busy before: {busy:.0%}): wisp create->first hypercall p50 "
                f"{pct(first, 50):.0f} us p99 {pct(first, 99):.0f} (cold {cold}); reply p50 "
                f"{pct(reply, 50):.0f}; split p50: client->wispd {pct(split[0], 50):.0f}, "
                f"wispd->VMM started {pct(split[1], 50):.0f}, ->first hypercall "
                f"{pct(split[2], 50):.0f}; destroy p50 {pct(destroy, 50):.0f}; "
                f"wisp create CLI p50 {pct(cli, 50) / 1000:.1f} ms; fork+exec p50 {pct(fe, 50):.0f} p99 {pct(fe, 99):.0f}"
                + (f"; crun p50 {pct(cr, 50):.0f} p99 {pct(cr, 99):.0f}" if cr else ""))
    finally:
        # Destroy every VM (teardown runs in the dying VMMs), stop wispd.
        t = time.time()
        try:
            n = run_tool([tool, "destroy-all", sock])[0]
            log(f"destroyed {n} VMs in {time.time() - t:.1f} s (their teardown goes on in the kernel)")
        except RuntimeError as e:
            log(f"destroy failed: {e}")
        wispd.send_signal(signal.SIGTERM)
        wispd.wait(timeout=60)
        for _ in range(600):
            if not vmm_pids(rundir):
                break
            time.sleep(0.1)
        shutil.rmtree(rundir, ignore_errors=True)
        memcg.remove()

    with open(os.path.join(out, "create.csv"), "w") as f:
        keys = ["system", "n_running", "samples", "p50_us", "p90_us", "p99_us", "mean_us"]
        f.write(",".join(keys) + "\n")
        for r in lat_rows:
            f.write(",".join(str(r[k]) for k in keys) + "\n")
    with open(os.path.join(out, "memory.csv"), "w") as f:
        keys = ["n_running", "vmm_processes", "threads_per_vmm", "wispd_fds", "vmm_pss_kib",
                "vmm_rss_kib", "memavail_kib_per_vm", "memcg_kib_per_vm", "memcg_kmem_kib_per_vm"]
        f.write(",".join(keys) + "\n")
        for r in mem_rows:
            f.write(",".join(str(r.get(k, "")) for k in keys) + "\n")
    plot(lat_rows, os.path.join(out, "create.png"))

    print("\n  N     wisp p50/p99 us   fork+exec p50/p99   crun p50/p99        fork/wisp  crun/wisp")
    for n in sorted({r["n_running"] for r in lat_rows}):
        g = {r["system"]: r for r in lat_rows if r["n_running"] == n}
        w, fe, cr = g.get("wisp"), g.get("fork+exec"), g.get("crun")
        print(f"  {n:<5} {w['p50_us']:7.0f} / {w['p99_us']:<7.0f} {fe['p50_us']:7.0f} / "
              f"{fe['p99_us']:<9.0f} " +
              (f"{cr['p50_us']:8.0f} / {cr['p99_us']:<8.0f}" if cr else "      -            ") +
              f"  {fe['p50_us'] / w['p50_us']:6.2f}x" +
              (f"  {cr['p50_us'] / w['p50_us']:8.1f}x" if cr else ""))
    for r in mem_rows:
        if r["n_running"]:
            print(f"  memory at N={r['n_running']}: {r.get('memavail_kib_per_vm')} KiB/VM "
                  f"(MemAvailable), {r.get('memcg_kib_per_vm')} KiB/VM (memcg, of which kmem "
                  f"{r.get('memcg_kmem_kib_per_vm')}), VMM PSS {r['vmm_pss_kib']} KiB, "
                  f"{r['threads_per_vmm']} threads/VMM, wispd fds {r['wispd_fds']}")
    for note in notes:
        print("  note: " + note)
    print(f"\n  wrote {out}/create.csv, {out}/memory.csv, {out}/create.png")
    return 1 if notes else 0


def plot(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plot")
        return
    fig, ax = plt.subplots(figsize=(8, 5.5))
    styles = {"wisp": ("Wisp create (pool) -> first hypercall", "tab:blue"),
              "wisp-cold": ("Wisp create, cold path (while ramping up)", "tab:cyan"),
              "fork+exec": ("fork+exec+wait, static true", "tab:green"),
              "crun": ("crun run, busybox /bin/true", "tab:red")}
    for system, (label, color) in styles.items():
        pts = sorted((r["n_running"], r["p50_us"], r["p99_us"]) for r in rows if r["system"] == system)
        if not pts:
            continue
        xs = [max(p[0], 1) for p in pts]
        ax.plot(xs, [p[1] / 1000 for p in pts], "o-", color=color, label=label + " (p50)")
        ax.plot(xs, [p[2] / 1000 for p in pts], "x:", color=color, alpha=0.6, label="    p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("VMs already running (N = 0 drawn at 1)")
    ax.set_ylabel("creation time (ms)")
    ax.set_title("Creation time vs. VMs already running (cf. LightVM Figure 9)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
