#!/usr/bin/python3
"""`make bench-linux-create` (docs/control-plane.md, "Linux guests: create ->
/init"): create -> the guest's /init running, for one Linux guest (the same
kernel, initramfs, command line, memory and vCPU count each time), four ways,
interleaved round by round (the order rotates each round):

  pool  `wisp create` served from a warm pool shell of the guest's class
  cold  `wisp create` with no shell (a second wispd, --pool none)
  run   `wisp run --kernel --initrd`
  qemu  QEMU microvm (-M microvm,acpi=off -accel kvm)

The initramfs holds one static /init (bench/linux_init.c) that writes a
marker line to the console first thing. Each way's clock starts just before
its command is started and stops when the marker is seen: on the VMM's
standard output for `wisp run` and QEMU (a pipe, read as it arrives), in the
VM's console ring (runtime dir vms/<id>/console, polled every 0.5 ms) for
daemon VMs. The daemon creates also record when `wisp create` returned.
Each way waits 0.5 s first (the last VM's teardown, a refill); a pool
create waits for its class's shell to be ready. Each daemon create's
boot.from is recorded and printed: a pool shell serves a Linux guest only
when wispd has a class of its kind, memory and vCPUs. Writes
build/bench/linux-create.csv. Needs root (wispd's jail), KVM that runs Linux
guests (the lab's L1), qemu-system-x86.
"""
import argparse
import http.client
import json
import mmap
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MARKER = b"wisp-bench-init: /init running"


def newc(entries):
    """A newc cpio archive (the initramfs format) of (path, mode, data, rdev)."""
    out = bytearray()
    ino = 1000

    def pad(n):
        out.extend(b"\0" * ((4 - n % 4) % 4))

    for path, mode, data, rdev in entries + [("TRAILER!!!", 0, b"", (0, 0))]:
        name = path.encode() + b"\0"
        ino += 1
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name), 0]
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        out.extend(hdr + name)
        pad(len(hdr) + len(name))
        out.extend(data)
        pad(len(data))
    return bytes(out)


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("wispd", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def api(run_dir, path):
    c = UnixHTTP(os.path.join(run_dir, "wispd.sock"))
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return json.loads(body)


def ms(t0, t1):
    return (t1 - t0) * 1000.0


class Bench:
    def __init__(self, a):
        self.a = a
        self.wisp = os.path.abspath(os.path.join(a.build, "wisp"))
        self.kernel = os.path.abspath(a.kernel)
        self.cmdline = "console=ttyS0 reboot=t panic=-1 quiet"
        self.tmp = tempfile.mkdtemp(prefix="wisp-bench-lc.")
        self.daemons = {}
        self.served = {"pool": [], "cold": []}

    def env(self, run_dir):
        e = dict(os.environ)
        e["WISP_RUNTIME_DIR"] = run_dir
        return e

    def start_daemon(self, name, pool):
        d = os.path.join(self.tmp, name)
        os.mkdir(d)
        subprocess.run([self.wisp, "daemon", "--pool", pool, "--answer-timeout", "120s"],
                       env=self.env(d), check=True, stdout=subprocess.DEVNULL)
        self.daemons[name] = d

    def stop_daemons(self):
        for d in self.daemons.values():
            try:
                pid = int(open(os.path.join(d, "wispd.lock")).readline())
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                pass

    def pool_ready(self, d):
        for c in api(d, "/stats").get("pool", []):
            if c.get("mem") == self.mem_bytes and c.get("ready", 0) > 0:
                return True
        return False

    def daemon_create(self, way):
        d = self.daemons[way]
        if way == "pool":
            deadline = time.monotonic() + 120
            while not self.pool_ready(d):
                if time.monotonic() > deadline:
                    raise RuntimeError("the pool has no ready shell after 120 s")
                time.sleep(0.05)
        time.sleep(0.5)  # the refill's and the last VM's teardown over
        t0 = time.monotonic()
        p = subprocess.run([self.wisp, "create", "--mem", self.a.mem_arg, "--cpus", str(self.a.cpus),
                            "--kernel", self.kernel, "--initrd", self.initrd, "--cmdline", self.cmdline],
                           env=self.env(d), capture_output=True, text=True)
        t_reply = time.monotonic()
        if p.returncode != 0:
            raise RuntimeError("wisp create (%s): %s" % (way, p.stderr.strip()))
        vm = p.stdout.strip()
        path = os.path.join(d, "vms", vm, "console")
        try:
            with open(path, "rb") as f:
                m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            deadline = time.monotonic() + self.a.timeout
            while m.find(MARKER) < 0:
                if time.monotonic() > deadline:
                    tail = bytes(m[-400:]).replace(b"\0", b"")
                    raise RuntimeError("%s: no marker in %d s: %r" % (way, self.a.timeout, tail[-300:]))
                time.sleep(0.0005)
            t1 = time.monotonic()
            m.close()
            frm = "pool" if api(d, "/vms/" + vm)["from_pool"] else "cold"
            if way == "cold" and frm != "cold":
                raise RuntimeError("a create with no pool was served from %s" % frm)
            self.served[way].append(frm)
        finally:
            subprocess.run([self.wisp, "destroy", vm], env=self.env(d),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return ms(t0, t1), ms(t0, t_reply)

    def process_boot(self, way):
        if way == "run":
            cmd = [self.wisp, "run", "--kernel", self.kernel, "--initrd", self.initrd,
                   "--cmdline", self.cmdline, "--mem", self.a.mem_arg, "--cpus", str(self.a.cpus)]
        else:
            cmd = ["qemu-system-x86_64", "-accel", "kvm", "-M", "microvm,acpi=off", "-cpu", "host",
                   "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
                   "-serial", "stdio", "-no-reboot", "-m", str(self.mem >> 20), "-smp", str(self.a.cpus),
                   "-kernel", self.kernel, "-initrd", self.initrd, "-append", self.cmdline]
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        buf = b""
        t1 = None
        deadline = t0 + self.a.timeout
        try:
            while t1 is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("%s: no marker in %d s: %r" % (way, self.a.timeout, buf[-300:]))
                r, _, _ = select.select([p.stdout], [], [], left)
                if not r:
                    continue
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError("%s exited before the marker: %r" % (way, buf[-300:]))
                buf += chunk
                if MARKER in buf:
                    t1 = time.monotonic()
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
        return ms(t0, t1), None

    def run(self):
        a = self.a
        self.mem_bytes = parse_size(a.mem_arg)
        self.mem = self.mem_bytes
        init = open(a.init, "rb").read()
        self.initrd = os.path.abspath(os.path.join(a.out, "linux-create.cpio"))
        with open(self.initrd, "wb") as f:
            f.write(newc([("dev", 0o40755, b"", (0, 0)), ("dev/console", 0o20600, b"", (5, 1)),
                          ("init", 0o100755, init, (0, 0))]))
        # A Linux class of the guest's memory and vCPUs; a wispd without
        # Linux classes gets a unikernel class of its memory (its Linux
        # creates then go cold: the summary says where they were served).
        try:
            self.start_daemon("pool", "linux:%dM:%d=1" % (self.mem_bytes >> 20, a.cpus))
        except subprocess.CalledProcessError:
            print("bench-linux-create: this wispd has no Linux pool classes; pool: %dM=1" %
                  (self.mem_bytes >> 20))
            shutil.rmtree(os.path.join(self.tmp, "pool"), ignore_errors=True)
            self.start_daemon("pool", "%dM=1" % (self.mem_bytes >> 20))
        self.start_daemon("cold", "none")
        ways = ["pool", "cold", "run", "qemu"]
        res = {w: [] for w in ways}
        reply = {w: [] for w in ways}
        csv = open(os.path.join(a.out, "linux-create.csv"), "w")
        csv.write("way,round,init_ms,create_reply_ms\n")
        for r in range(1, a.rounds + 1):
            order = ways[(r - 1) % 4:] + ways[:(r - 1) % 4]
            for w in order:
                if w in ("pool", "cold"):
                    t, rep = self.daemon_create(w)
                else:
                    t, rep = self.process_boot(w)
                res[w].append(t)
                if rep is not None:
                    reply[w].append(rep)
                csv.write("%s,%d,%.1f,%s\n" % (w, r, t, "" if rep is None else "%.1f" % rep))
                csv.flush()
                print("bench-linux-create: round %d %-4s create -> /init %8.1f ms%s" %
                      (r, w, t, "" if rep is None else " (wisp create returned at %.1f ms)" % rep),
                      flush=True)
        csv.close()
        q = statistics.median(res["qemu"])
        print()
        print("create -> /init, medians of %d rounds (ms), %s, %d vCPU, one Linux kernel and initramfs:" %
              (a.rounds, a.mem_arg, a.cpus))
        names = {"pool": "wisp create, warm pool shell", "cold": "wisp create, cold (--pool none)",
                 "run": "wisp run --kernel --initrd", "qemu": "QEMU microvm"}
        for w in ways:
            m = statistics.median(res[w])
            extra = ""
            if reply[w]:
                extra = "  (create returned: %.1f)" % statistics.median(reply[w])
            print("  %-32s %8.1f  min %8.1f  max %8.1f  qemu/this %.2fx%s" %
                  (names[w], m, min(res[w]), max(res[w]), q / m, extra))
        for w in ("pool", "cold"):
            print("  %s creates served: %s" % (w, ", ".join("%s %d" % (f, self.served[w].count(f))
                                                        for f in sorted(set(self.served[w])))))
        print("  pool/cold %.3f, pool/run %.3f" % (statistics.median(res["pool"]) / statistics.median(res["cold"]),
                                                  statistics.median(res["pool"]) / statistics.median(res["run"])))
        print("CSV: %s" % os.path.join(a.out, "linux-create.csv"))


def parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if s[-1].upper() in units:
        return int(s[:-1]) * units[s[-1].upper()]
    return int(s)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default="build")
    p.add_argument("--out", default="build/bench")
    p.add_argument("--kernel", default="build/guest-kernel/bzImage")
    p.add_argument("--init", default="build/bench/linux-init")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--mem", dest="mem_arg", default="128M")
    p.add_argument("--cpus", type=int, default=1)
    p.add_argument("--timeout", type=int, default=120, help="seconds to wait for a marker")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for f in (a.kernel, a.init, os.path.join(a.build, "wisp")):
        if not os.access(f, os.R_OK):
            sys.exit("bench-linux-create: %s missing (make all guest-kernel %s/bench/linux-init)" % (f, a.build))
    subprocess.run(["bench/where.sh", "bench-linux-create"], env=dict(os.environ, BUILD=a.build))
    b = Bench(a)
    try:
        b.run()
    except RuntimeError as e:
        sys.exit("bench-linux-create: error: %s" % e)
    finally:
        b.stop_daemons()


if __name__ == "__main__":
    main()
