"""A tiny HTTP client for wispd's unix socket, for the Python parts of the
integration tests (test_metrics.py, test_openapi.py): standard library only."""
import http.client
import json
import socket


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("wispd", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def request(sock, method, path, body=None, raw=None, headers=False):
    """One request; returns (status, content type, body bytes), and the
    response headers (a dict) if asked. body is sent as JSON, raw as it is."""
    c = UnixConnection(sock)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data is not None else {})
    r = c.getresponse()
    out = r.read()
    ctype = r.getheader("Content-Type") or ""
    hdrs = dict(r.getheaders())
    c.close()
    return (r.status, ctype, out, hdrs) if headers else (r.status, ctype, out)


def get_json(sock, path):
    status, _, body = request(sock, "GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
    return json.loads(body)


class Checks:
    """PASS/FAIL lines in the integration tests' format (lib.sh)."""

    def __init__(self):
        self.failed = 0

    def ok(self, name):
        print(f"PASS: {name}", flush=True)

    def bad(self, name, why):
        self.failed += 1
        why = " ".join(str(why).split())[:400]
        print(f"FAIL: {name}: {why}", flush=True)

    def check(self, name, cond, why):
        if cond:
            self.ok(name)
        else:
            self.bad(name, why)
        return cond
