#!/usr/bin/env python3
"""Write the seed inputs in tests/fuzz/seeds/ (a developer tool; the seeds
are committed, so CI never runs this). Each seed is a valid conversation
with the device in the command language of fuzz_device.h, which libFuzzer
then mutates."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def chain(q, bufs, payload=b""):
    out = b"c" + bytes([q, len(bufs) - 1])
    for off, length, flags in bufs:
        out += struct.pack("<HHB", off, length, flags)
    return out + struct.pack("<H", len(payload)) + payload


def kick(q):
    return b"k" + bytes([q])


def host(data):
    return b"h" + bytes([len(data)]) + data


def vsock_hdr(src_port, dst_port, op, length=0, flags=0):
    return struct.pack("<QQIIIHHIII", 3, 2, src_port, dst_port, length, 1, op, flags, 65536, 0)


def snap(off=0, xor=b"", cut=0xffff):
    """Save, XOR xor into the state at off, keep cut bytes, restore."""
    return b"S" + struct.pack("<HB", off, len(xor)) + xor + struct.pack("<H", cut)


def con_ctrl(port, event, value):
    return struct.pack("<IHH", port, event, value)


def blk_hdr(kind, sector):
    return struct.pack("<IIQ", kind, 0, sector)


seeds = {
    "rng": [bytes([0, 3]) + chain(0, [(0, 64, 1)]) + kick(0),
            bytes([3, 4]) + chain(0, [(0, 16, 1), (0x100, 16, 1)]) + kick(0) + b"R" + chain(0, [(0, 8, 1)]) + kick(0)],
    "blk": [bytes([0, 4]) + chain(0, [(0, 16, 0), (0x100, 512, 1), (0x400, 1, 1)], blk_hdr(0, 1)) + kick(0),
            bytes([2, 4]) + chain(0, [(0, 16, 0), (0x100, 512, 0), (0x400, 1, 1)], blk_hdr(1, 3)) + kick(0)
            + chain(0, [(0x800, 16, 0), (0x900, 1, 1)], blk_hdr(4, 0)) + kick(0)
            + chain(0, [(0xa00, 16, 0), (0xb00, 20, 1), (0xc00, 1, 1)], blk_hdr(8, 0)) + kick(0)],
    "net": [bytes([0, 4]) + chain(1, [(0, 72, 0)], bytes(12) + b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(46)) + kick(1),
            bytes([1, 4]) + chain(0, [(0x1000, 1526, 1)]) + kick(0) + host(bytes(12) + b"frame from the tap") + b"l"],
    "console": [bytes([0, 3]) + chain(1, [(0, 5, 0)], b"hello") + kick(1),
                bytes([0, 3]) + chain(0, [(0x100, 64, 1)]) + kick(0) + host(b"typed\n") + b"l",
                # MULTIPORT (feature bit 1, fuzz byte bit 3): the control exchange.
                bytes([8, 3]) + chain(2, [(0x200, 8, 1)]) + chain(2, [(0x210, 8, 1)]) + kick(2)
                + chain(0, [(0x100, 64, 1)]) + kick(0) + host(b"early\n") + b"l"
                + chain(3, [(0x300, 8, 0)], con_ctrl(0xffffffff, 0, 1)) + kick(3)
                + chain(3, [(0x310, 8, 0)], con_ctrl(0, 3, 1)) + kick(3)
                + chain(3, [(0x320, 8, 0)], con_ctrl(0, 6, 1)) + kick(3) + b"l",
                # A snapshot mid-exchange restored over the live device, then
                # one with the console's own struct changed.
                bytes([8, 3]) + chain(2, [(0x200, 8, 1)]) + kick(2)
                + chain(3, [(0x300, 8, 0)], con_ctrl(0xffffffff, 0, 1)) + kick(3) + snap()
                + chain(2, [(0x210, 8, 1)]) + kick(2) + snap(0x1b0, b"\x01\x00\x00\x00\x02") + b"l"],
    "vsock": [bytes([0, 4]) + b"".join(chain(0, [(0x1000 * i, 4096, 1)]) for i in range(4)) + kick(0)
              + host(b"\x00CONNECT 5\nhi") + b"l"
              + chain(1, [(0x8000, 44, 0)], vsock_hdr(5, 1 << 30, 2)) + kick(1)
              + chain(1, [(0x9000, 47, 0)], vsock_hdr(5, 1 << 30, 5, 3) + b"abc") + kick(1) + host(b"\x01more") + b"l",
              bytes([0, 4]) + b"".join(chain(0, [(0x1000 * i, 4096, 1)]) for i in range(4)) + kick(0)
              + chain(1, [(0x8000, 44, 0)], vsock_hdr(5000, 1, 1)) + kick(1) + host(b"\x03")
              + chain(1, [(0x9000, 46, 0)], vsock_hdr(5000, 1, 5, 2) + b"hi") + kick(1) + host(b"\x03")
              + chain(1, [(0xa000, 44, 0)], vsock_hdr(5000, 1, 4, 0, 3)) + kick(1),
              # A stream open at a snapshot: the event queue gets TRANSPORT_RESET
              # and the old stream's next packet an RST.
              bytes([0, 4]) + b"".join(chain(0, [(0x1000 * i, 4096, 1)]) for i in range(4)) + kick(0)
              + chain(2, [(0x6000, 4, 1)]) + kick(2)
              + host(b"\x00CONNECT 5\nhi") + b"l" + snap()
              + chain(1, [(0x9000, 44, 0)], vsock_hdr(5, 1 << 30, 7)) + kick(1)
              + snap(0, b"", 100)],
}

# The walker: desc at 0, avail at 0x100, used at 0x200; one chain of a
# readable and a writable buffer, and an indirect one.
ram = bytearray(0x2000)
struct.pack_into("<QIHH", ram, 0, 0x1000, 16, 1, 1)
struct.pack_into("<QIHH", ram, 16, 0x1100, 32, 2, 0)
struct.pack_into("<QIHH", ram, 32, 0x1800, 32, 4, 0)
struct.pack_into("<QIHH", ram, 0x1800, 0x1200, 8, 2, 0)
struct.pack_into("<HHHH", ram, 0x100, 0, 2, 0, 2)
seeds["virtq"] = [bytes([3, 3]) + struct.pack("<HHH", 0, 0x100, 0x200) + bytes(ram)]

# wispd's API (fuzz_api.c): the requests of docs/api.md, records separated
# by 0x1e; '!' VMM type state err REASON is a fake VMM's reply (type and
# state as in ctl_proto.h less 16: 2 INFO, 1 FAILED, 3 EXIT, 4 PROGRESS).
RS = b"\x1e"


def api(*records):
    return RS.join(records)


def vmm_reply(vmm, kind, state, err=0, reason=b""):
    return b"!" + bytes([vmm, kind, state, err]) + reason


RUNNING, PAUSED, EXITED = 2, 3, 4
create = b'POST /vms\n{"image": "/etc/passwd", "name": "web1", "mem": "32M", "args": ["a", "b c"]}'
seeds["api"] = [
    api(b"GET /version", b"GET /stats", b"GET /vms", b"GET /vms/none", b"PUT /vms", b"GET /metrics"),
    api(b"P", create, vmm_reply(0, 2, RUNNING), b"GET /vms/web1", b"GET /vms", b"POST /vms/web1/pause",
        vmm_reply(0, 2, PAUSED), b"POST /vms/web1/resume", vmm_reply(0, 2, RUNNING),
        b'POST /vms/web1/save\n{"file": "/srv/web1.snap"}', vmm_reply(0, 2, RUNNING),
        b"GET /vms/web1/stats", vmm_reply(0, 2, RUNNING), b"GET /metrics", vmm_reply(0, 2, RUNNING),
        b"GET /vms/web1/console",
        b"GET /vms/web1/console?offset=1024", b"GET /vms/web1/console?follow=1",
        b'POST /vms/web1/migrate\n{"to": "127.0.0.1:7000", "psk_file": "/etc/wisp/mig.key"}', vmm_reply(0, 2, RUNNING),
        vmm_reply(0, 4, RUNNING, 0x20), b"GET /vms/web1/migration", b"GET /stats",
        b"DELETE /vms/web1", b"GET /vms/web1"),
    api(b'POST /vms\n{"image": "/etc/passwd", "mem": 67108864, "cpus": 1}', vmm_reply(0, 1, 1, 1, b"not an ELF"),
        b'POST /vms\n{"snapshot": "/srv/web1.snap", "name": "web2"}',
        b'POST /vms/receive\n{"listen": "127.0.0.1:7000", "mem": "32M", "transport": "cleartext", "name": "web3"}', vmm_reply(1, 2, 6), b"GET /vms/web3",
        vmm_reply(1, 5, RUNNING), b"GET /vms/web3/stats", b"GET /metrics", b"T", b"G\x01", b"GET /vms/web3"),
    api(b'POST /vms\n{"kernel": "/etc/passwd", "kind": "linux", "mem": "64M", "cpus": 2, '
        b'"cmdline": "console=ttyS0", "devices": [{"type": "virtio-rng"}]}', vmm_reply(0, 2, RUNNING),
        b"POST /vms/web1/pause", create, vmm_reply(1, 3, EXITED, 0, b"guest exited with status 0"),
        b"GET /vms/web1", b'POST /vms\n{"image": "relative.elf"}', b'POST /vms\n[1, 2]',
        b'POST /vms\n{"image": 5}', b'POST /vms\n{"image": "/etc/passwd", "mem": "1T"}'),
]

# The VM configuration (fuzz_config.c): byte 0 even, JSON (docs/config.md);
# odd, `wisp run`'s flags one per line.
seeds["config"] = [
    b"\0" + b"""{
  "version": 1,
  "kind": "linux",
  "name": "web1",
  "mem": "256M",
  "cpus": 2,
  "kernel": "/srv/guest/bzImage",
  "initrd": "/srv/guest/initrd.lz4",
  "cmdline": "console=ttyS0 reboot=t panic=-1",
  "devices": [
    {"type": "virtio-blk", "path": "/srv/web1.ext4"},
    {"type": "virtio-net", "tap": "tap-web1"},
    {"type": "virtio-vsock", "socket": "/run/web1.vsock", "cid": 3},
    {"type": "virtio-rng"}
  ]
}""",
    b"\0" + b'{"image": "/srv/echo.elf", "args": ["one", "two words"]}',
    b"\0" + b'{"image": "a.elf", "mem": 67108864, "devices": [{"type": "rng-device", "seed": 7}, '
    b'{"type": "virtio-blk", "path": "d.img", "ro": true, "id": "disk0", "size": 1048576}, '
    b'{"type": "virtio-net", "tap": "tap0", "mac": "52:54:00:12:34:56"}, '
    b'{"type": "virtio-console", "socket": "/run/c.sock"}]}',
    b"\1image=hello.elf\nmem=64M\ndisk=/srv/a.img,ro,id=root\nnet=tap=tap0,mac=52:54:00:00:00:01\n"
    b"vsock=/run/v.sock,cid=5\nconsole=virtio,sock=/run/c.sock\nrng\nrng-device=42",
]

# PCI config space (fuzz_pci.c): 7-byte commands op, a, b, u32 v. What a
# driver does (docs/pci.md, docs/rng-device.md): find the RNG device in
# slot 1 by its IDs, size BAR0, place it back, enable memory decoding, read
# RNG and write SEED; then move the BAR, snapshot the bus, turn decoding off.
def pcmd(op, a, b, v):
    return struct.pack("<BBBI", op, a, b, v)


def cfg(slot, reg, width=4, value=None):
    b = {1: 0, 2: 1, 4: 2}[width] | (4 if value is not None else 0) | (reg >> 2) << 3
    return pcmd(1, slot | (reg & 3) << 5, b, value or 0)


RNG_BAR = 0xc0000000
seeds["pci"] = [
    cfg(0, 0x00) + cfg(1, 0x00) + cfg(1, 0x08) + cfg(1, 0x10) + cfg(1, 0x10, 4, 0xffffffff)
    + cfg(1, 0x10) + cfg(1, 0x10, 4, RNG_BAR) + cfg(1, 0x04, 2, 2) + pcmd(2, 0, 2, RNG_BAR)
    + pcmd(2, 0, 2, RNG_BAR) + pcmd(2, 7, 6, RNG_BAR + 4) + pcmd(2, 0, 2, RNG_BAR),
    cfg(1, 0x04, 2, 2) + cfg(1, 0x10, 4, 0xc0100000) + pcmd(2, 0, 2, 0xc0100000)
    + pcmd(3, 0x55, 0, 0x100) + pcmd(3, 0, 0, 0) + pcmd(3, 1, 0, 0x1c3c) + cfg(1, 0x3c, 1, 0x0a)
    + cfg(1, 0x04, 2, 0) + pcmd(2, 0, 2, 0xc0100000) + pcmd(0, 0, 1, 0) + pcmd(0, 4, 0, 0)
    + pcmd(0, 0, 6, 0x80000800) + pcmd(0, 5, 1, 0) + cfg(2, 0x00),
]

# The control messages (fuzz_ctl.c): records of head, u16 length, u16
# present, bytes. To wispd (head bit 0 clear) from VMM head >> 2: 0 a
# starting shell, 1 a ready one, 2 a starting cold VM, 3 running, 4 adopted;
# to the VMM (bit 0 set; bit 1: with a file). Layouts as in ctl_proto.h.
def ctl_rec(head, msg, length=None):
    length = len(msg) if length is None else length
    return struct.pack("<BHH", head, length, len(msg)) + msg


def info(kind, state, mem=32 << 20, reason=b"", error=0, exit_status=0, name=b"", mig=(0, 0), devs=()):
    m = bytearray(1128)
    struct.pack_into("<IIIiii", m, 0, kind, state, 0, 4242, exit_status, error)
    m[24:24 + 12] = b"0123456789ab"
    m[40:40 + len(name)] = name
    struct.pack_into("<Q", m, 104, mem)
    m[208:208 + len(reason)] = reason
    struct.pack_into("<II", m, 504, *mig)
    # struct ctl_dev_stats at 552, 72 bytes each: type, slot, ops, tx, rx, ...
    struct.pack_into("<I", m, 544, len(devs))
    for i, (dtype, ops, tx, rx) in enumerate(devs):
        struct.pack_into("<16sIIQQQQQQ", m, 552 + 72 * i, dtype, i, 0, ops, tx, rx, ops, ops, 0)
    return bytes(m)


def to_wispd(vmm, msg):
    return ctl_rec(vmm << 2, msg)


def to_vmm(msg, fd=False, length=None):
    return ctl_rec(1 | (2 if fd else 0), msg, length)


api_view = struct.pack("<BHH", 0xff, 0, 0)


READY, FAILED, INFO, EXIT, PROGRESS, STATE = 16, 17, 18, 19, 20, 21
CONFIG, PAUSE, RESUME, QUERY, DESTROY, SAVE, MIGRATE = 1, 2, 3, 4, 5, 6, 7
vmconfig = b'{"version":1,"kind":"linux","mem":33554432,"cpus":2,"kernel":"/srv/bzImage","cmdline":"console=ttyS0","devices":[{"type":"virtio-rng"}]}'
cfg_msg = struct.pack("<II", CONFIG, 8 | 1) + b"web1".ljust(64, b"\0") + struct.pack("<QQ", 1, 2) + vmconfig
seeds["ctl"] = [
    to_wispd(0, info(READY, 0)) + to_wispd(2, info(INFO, 2, name=b"vm2"))
    + to_wispd(3, info(INFO, 3, devs=[(b"virtio-rng", 18, 0, 65568), (b"virtio-blk", 9, 144, 1 << 20)]))
    + to_wispd(3, info(PROGRESS, 2, mig=(1, 1))) + to_wispd(3, info(PROGRESS, 2, reason=b"refused", mig=(3, 2)))
    + to_wispd(4, info(EXIT, 4, reason=b"guest exited with status 3", exit_status=3))
    + to_wispd(1, info(FAILED, 0, reason=b"no KVM", error=-19)) + to_wispd(3, info(STATE, 2)) + api_view,
    to_wispd(2, info(FAILED, 1, reason=b"image: not an ELF file", error=-8)) + to_wispd(0, info(READY, 0))
    + to_wispd(0, info(READY, 0)) + to_wispd(3, info(EXIT, 5, reason=b"triple fault", exit_status=126))
    + to_wispd(3, info(INFO, 2)) + api_view,
    to_vmm(struct.pack("<II", QUERY, 0)) + to_vmm(cfg_msg, True, 4184)
    + to_vmm(struct.pack("<II", PAUSE, 0)) + to_vmm(struct.pack("<II", RESUME, 0))
    + to_vmm(struct.pack("<II", QUERY, 0)) + to_vmm(struct.pack("<II", SAVE, 0) + b"/srv/web1.snap", length=1032)
    + to_vmm(struct.pack("<II", MIGRATE, 0) + b"target".ljust(256, b"\0") + b"7000", length=280)
    + api_view + to_vmm(struct.pack("<II", DESTROY, 0)),
    to_vmm(cfg_msg[:8] + b"bad name!", True, 4184) + to_vmm(struct.pack("<II", CONFIG, 0), True, 4184)
    + to_vmm(struct.pack("<II", CONFIG, 0), False, 4184) + to_vmm(struct.pack("<II", DESTROY, 0)),
]

# The migration stream (fuzz_migrate.c): a flag byte (1: fix checksums),
# the hello, pages, round marks and a state section (the snapshot seed's).
MIG_MAGIC = 0x5047494d50534957


def mig_hello(mem=32 << 20, version=1, vcpus=1):
    return struct.pack("<QIIQ", MIG_MAGIC, version, vcpus, mem)


def mig_pages(off, count, fill):
    return struct.pack("<IIQQ", 1, count, off, 0) + bytes([fill]) * (4096 * count)


def mig_round(n):
    return struct.pack("<II", 2, n)


def mig_state(data):
    return struct.pack("<IIQQ", 3, 0, len(data), 0) + data


with open(os.path.join(HERE, "seeds", "snapshot", "daemon-vm"), "rb") as f:
    state = f.read()
seeds["migrate"] = [
    b"\x01" + mig_hello() + mig_pages(0x1000, 1, 0x90) + mig_round(1) + mig_state(state),
    b"\x01" + mig_hello() + mig_pages(0, 2, 0) + mig_round(1) + mig_pages(0x3000, 1, 7)
    + mig_round(2) + mig_state(state),
    b"\x00" + mig_hello(version=2) + mig_round(1),
    b"\x01" + mig_hello() + mig_state(state),
    b"\x01" + mig_hello(mem=64 << 20) + mig_round(1),
]

for target, inputs in seeds.items():
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    for i, data in enumerate(inputs):
        with open(os.path.join(d, "seed%d" % i), "wb") as f:
            f.write(data)
