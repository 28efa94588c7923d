#!/usr/bin/env python3
"""
test_api_response_budget.py - the API's answers queued for their readers are bounded
all together ([api] response_mb; docs/security.md): a slow reader cannot make the
collector hold one big answer per connection (64 MiB each, 64 connections an address).

Fake gateways announce 1,000 chargers of 64 ports (more if the kernel's socket buffers are
larger than Debian's 4 MB) and send each port's state: GET /api/v1/devices?current=1 is an
answer of about 6 MB, more than twice what the kernel takes from a reader that does not
read. With response_mb at 1.5 answers:
  - a reader that asks for it and then reads nothing (a receive buffer of 4 KB) holds
    its answer queued; the same request from another client is refused 503 "server
    busy", counted in sitepulse_http_refused_total{status="503"} and logged;
  - /healthz and small answers go out meanwhile;
  - once the slow reader is gone, the same request is answered in full again.
"""
import json
import os
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE = "budget-1"
QUERY = {"site": SITE, "current": "1"}
PORTS = 64
PER_CHARGER = 6300  # bytes of the answer per charger of 64 ports (measured: 6.3 MB for 1,000)


def socket_buffer_max():
    """The most a TCP socket's send buffer grows to (tcp_wmem's third field): the kernel
    takes up to that much of an answer off the collector whether the reader reads or not."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


# an answer more than twice what the kernel buffers, so that most of it waits in the collector
CHARGERS = max(1000, -(-int(2.2 * socket_buffer_max() / PER_CHARGER) // 500) * 500)
BUDGET_MB = -(-int(1.5 * CHARGERS * PER_CHARGER) // (1 << 20))  # one answer fits, two do not


def refused_503(coll):
    return coll.metrics().get('sitepulse_http_refused_total{status="503"}', 0.0)


def slow_reader(coll):
    """A connection that asks for the big answer, takes its first bytes and then reads
    nothing more: returns the socket (the caller closes it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(("127.0.0.1", coll.http_port))
    path = "/api/v1/devices?" + urllib.parse.urlencode(QUERY)
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n"
               % (path, T.VIEWER_TOKEN)).encode())
    head = s.recv(64)
    T.check(head.startswith(b"HTTP/1.1 200"), "the slow reader's answer: %r" % head)
    return s


def main(env):
    broker = env.broker()
    coll = env.collector(broker, extra={"api": {"response_mb": BUDGET_MB}})
    T.log("step: %d chargers of %d ports, each port's state" % (CHARGERS, PORTS))
    now = T.now_ms()
    for g in range(CHARGERS // 500):  # a birth holds at most 512 devices
        gw = T.FakeGateway(broker, SITE, "gw-%d" % g)
        devs = ["chg-%05d" % (g * 500 + i) for i in range(500)]
        gw.birth([{"dev": d, "kind": "charger", "ports": PORTS} for d in devs])
        gw.state(True)
        recs = [{"t": "port", "dev": d, "ts": now, "port": p, "state": "idle", "w": 0,
                 "temp_c": 25.5} for d in devs for p in range(1, PORTS + 1)]
        for i in range(0, len(recs), 1000):
            gw.send(recs[i:i + 1000], timeout=30)
    status, devs = coll.api("/api/v1/devices", QUERY, timeout=30)
    T.check_eq(status, 200, "the whole answer, nobody else reading")
    T.check_eq(len(devs), CHARGERS, "devices in it")
    size = len(json.dumps(devs, separators=(",", ":")))
    T.log("the answer holds about %.1f MB" % (size / 1e6))
    T.check(size > 2 * socket_buffer_max() and 2 * size > BUDGET_MB << 20,
            "the answer (%d bytes) must outgrow the kernel's buffers (%d) and two of it the "
            "budget (%d MB)" % (size, socket_buffer_max(), BUDGET_MB))

    T.log("step: a slow reader holds its answer; the same request meanwhile")
    before = refused_503(coll)
    s = slow_reader(coll)
    try:
        time.sleep(0.5)
        status, body = coll.api("/api/v1/devices", QUERY, timeout=30)
        T.check_eq(status, 503, "a second big answer while the first waits for its reader")
        T.check("server busy" in (body or {}).get("error", ""), "the error says why: %r" % body)
        T.check_eq(refused_503(coll) - before, 1.0, "counted in sitepulse_http_refused_total{503}")
        T.check_eq(coll.healthz(), 200, "/healthz meanwhile")
        status, small = coll.api("/api/v1/devices", {"site": SITE})
        T.check_eq((status, len(small)), (200, CHARGERS), "a smaller answer meanwhile")
        T.check("server busy: answers of" in coll.proc.log_text(), "the refusal logged")
    finally:
        s.close()

    T.log("step: the slow reader gone, the same request is answered in full")
    got = T.wait_until(lambda: (lambda r: r[0] == 200 and r)(coll.api("/api/v1/devices", QUERY,
                                                                      timeout=30)),
                       15, "the big answer again", 0.3)
    T.check_eq(len(got[1]), CHARGERS, "devices in it")
    rc, _ = coll.terminate()
    T.check_eq(rc, 0, "collector exit status")


if __name__ == "__main__":
    T.run(main)
