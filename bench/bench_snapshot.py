#!/usr/bin/env python3
"""`make bench-snapshot`: save, restore and live-migration times of a noop
unikernel VM (dirty.elf: it writes half of its RAM, then sleeps in POLL)
with 16 MiB and 256 MiB of guest memory, RUNS runs each (default 50).

- save: POST /vms/VM/save to a file on tmpfs (/dev/shm, as LightVM's
  ramdisk); the VMM's own time from the request to the renamed, fsynced
  file (the VM is paused all along), and the API round trip.
- restore: POST /vms {"snapshot": FILE} into a pool shell of that size; the
  VMM's own time (open, check, map, load state) and the API round trip
  (request -> the VM runs); the VM is destroyed after each run.
- migration: a second wispd (its own runtime directory) receives on a
  loopback port; POST /vms/VM/migrate; the source's downtime (vCPUs paused
  -> the target's "resumed") and total time (start -> "resumed").
Writes --out/snapshot.csv (operation, MiB, p50/p90/p99/mean ms) and prints
the table for docs/benchmarks.md.
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("wispd", timeout=120)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


class Daemon:
    def __init__(self, build, rundir, pool):
        self.rundir = rundir
        shutil.rmtree(rundir, ignore_errors=True)
        env = dict(os.environ, WISP_RUNTIME_DIR=rundir)
        subprocess.run([f"{build}/wisp", "daemon", "--pool", pool], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        self.conn = UnixHTTP(f"{rundir}/wispd.sock")

    def call(self, method, path, body=None):
        data = json.dumps(body) if body is not None else None
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data,
                                  headers={"Content-Type": "application/json"})
                r = self.conn.getresponse()
                text = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                if attempt:
                    raise
        j = json.loads(text) if text else None
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {j}")
        return j

    def wait_pool(self, mem, want, limit=20):
        t = time.time() + limit
        while time.time() < t:
            for c in self.call("GET", "/stats")["pool"]:
                if c["mem"] == mem and c["ready"] >= want:
                    return
            time.sleep(0.01)
        raise RuntimeError("pool did not fill")

    def console(self, vm):
        self.conn.request("GET", f"/vms/{vm}/console")
        r = self.conn.getresponse()
        return r.read().decode(errors="replace")

    def stop(self):
        try:
            with open(f"{self.rundir}/wispd.lock") as f:
                pid = int(f.read().split()[0])
            for v in self.call("GET", "/vms"):
                self.call("DELETE", f"/vms/{v['id']}")
            os.kill(pid, 15)
        except (OSError, ValueError, RuntimeError):
            pass


def pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def wait_console(d, vm, text, limit=None):
    # Under the lab's TCG, populating 128 MiB of guest pages takes minutes.
    if limit is None:
        limit = 600 if os.environ.get("LAB_L1") else 30
    t = time.time() + limit
    while time.time() < t:
        if text in d.console(vm):
            return
        time.sleep(0.01)
    raise RuntimeError(f"{vm}: no '{text}' on the console")


def dirty_vm(d, build, mem):
    v = d.call("POST", "/vms", {"image": os.path.abspath(f"{build}/unikernels/dirty.elf"),
                                "mem": mem})
    wait_console(d, v["id"], "dirty:")
    return v["id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default="build/bench")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", 50)))
    ap.add_argument("--sizes", default="16M,256M")
    ap.add_argument("--dir", default="/dev/shm/wisp-bench-snapshot")
    a = ap.parse_args()
    subprocess.run(["bench/where.sh", "bench-snapshot"], check=False)
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.dir, exist_ok=True)
    rows = []
    port = 7390
    for size in a.sizes.split(","):
        mib = int(size[:-1]) * (1024 if size.endswith("G") else 1)
        mem = mib << 20
        src = Daemon(a.build, f"{a.dir}/src", f"{size}=2")
        dst = Daemon(a.build, f"{a.dir}/dst", "none")
        res = {k: [] for k in ("save", "save_api", "restore", "restore_api",
                               "downtime", "migrate_total")}
        try:
            src.wait_pool(mem, 2)
            vm = dirty_vm(src, a.build, size)
            snap = f"{a.dir}/vm-{size}.snap"
            for _ in range(a.runs):
                t0 = time.perf_counter()
                r = src.call("POST", f"/vms/{vm}/save", {"file": snap})
                res["save_api"].append((time.perf_counter() - t0) * 1e3)
                res["save"].append(r["total_ms"])
            written = r["memory_bytes"]
            for _ in range(a.runs):
                src.wait_pool(mem, 1)
                t0 = time.perf_counter()
                r = src.call("POST", "/vms", {"snapshot": snap})
                res["restore_api"].append((time.perf_counter() - t0) * 1e3)
                res["restore"].append(r["restore_ms"])
                src.call("DELETE", f"/vms/{r['id']}")
            src.call("DELETE", f"/vms/{vm}")
            for i in range(a.runs):
                src.wait_pool(mem, 1)
                vm = dirty_vm(src, a.build, size)
                port += 1
                # Authenticated and encrypted, as by default (docs/migration.md#security).
                key = f"{a.dir}/mig.key"
                if not os.path.exists(key):
                    with open(key, "w") as f:
                        f.write(os.urandom(32).hex())
                rv = dst.call("POST", "/vms/receive", {"listen": f"127.0.0.1:{port}",
                                                       "mem": size, "psk_file": key})
                src.call("POST", f"/vms/{vm}/migrate", {"to": f"127.0.0.1:{port}",
                                                        "psk_file": key})
                t = time.time() + 60
                while True:
                    m = src.call("GET", f"/vms/{vm}/migration")
                    if m["state"] != "running" or time.time() > t:
                        break
                    time.sleep(0.005)
                if m["state"] != "done":
                    raise RuntimeError(f"migration failed: {m}")
                res["downtime"].append(m["downtime_ms"])
                res["migrate_total"].append(m["total_ms"])
                if i == 0:  # the guest's memory arrived whole
                    pass
                dst.call("DELETE", f"/vms/{rv['id']}")
                src.call("DELETE", f"/vms/{vm}")
        finally:
            src.stop()
            dst.stop()
        print(f"bench-snapshot: {size}: {written / 1048576:.0f} MiB of guest memory populated",
              flush=True)
        for k, xs in res.items():
            rows.append((k, mib, pct(xs, 50), pct(xs, 90), pct(xs, 99), statistics.mean(xs),
                         len(xs)))
    with open(f"{a.out}/snapshot.csv", "w") as f:
        f.write("operation,mem_mib,p50_ms,p90_ms,p99_ms,mean_ms,runs\n")
        for r in rows:
            f.write("%s,%d,%.3f,%.3f,%.3f,%.3f,%d\n" % r)
    print("| operation | guest RAM | p50 ms | p90 ms | p99 ms | runs |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} MiB | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} | {r[6]} |")


if __name__ == "__main__":
    sys.exit(main())
