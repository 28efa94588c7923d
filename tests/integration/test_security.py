#!/usr/bin/env python3
"""Security: nobody gets in uninvited.

1. Broker with per-agent credentials and ACLs (written by scripts/mqtt-credentials from
   etc/mosquitto/sitepulse.conf's scheme): anonymous clients are refused; an agent cannot
   publish as another agent, nor read another agent's acks; data of both agents still
   arrives exactly once.
2. MQTT over TLS with a CA and certificates made here with openssl: broker verification
   with ca_file, client certificates required; a client without a certificate, and a
   collector trusting another CA, do not get in.
3. The API over HTTPS, with tokens configured as sha256 digests.
4. No secret (MQTT passwords, API tokens) appears in any log; a config file holding
   secrets draws a warning when other users can read it, and none when they cannot.
5. HTTP requests are refused on their headers, before their body: no token (401), a
   viewer acknowledging (403) or a declared body over 64 KiB (413) is answered without
   a byte of body sent; a chunked body that grows past 64 KiB gets its connection
   closed long before 16 MiB. An acknowledgement without "by" records "operator-N"
   (N the token's place in operator_tokens), nothing derived from the token.
6. Every refusal leaves a trace: sitepulse_http_refused_total{status} moves by exactly
   the refusals of each status (the ones above, "closed" for the chunked body, and a set
   of bad URLs: 400, 401, 404, 405), and an INFO line names method, path, client and
   status, never the query string or a header; a flood of 200 is counted in full and
   logged at most 10 lines a minute.
7. Requests libmicrohttpd answers by itself (a bad Content-Length, one beyond 2^64, a
   100 KB request line, 40 KiB of headers, HTTP/2.0) are counted too (400, 413, 414, 431,
   505) and logged at INFO, without the request's text (test_limits counts the
   connections closed over max_connections_per_ip, "limit").
"""
import collections
import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import sptest as T

SECRET_TOKEN = "viewer-secret-9f8e7d6c5b4a3210"
FIRST_OPERATOR = "operator-first-0011223344556677"  # T.OPERATOR_TOKEN is listed second
ANSWER_WAIT_S = 5      # an answer to headers alone comes at once; the old code waited for the body
STREAM_MAX = 64 << 20  # a chunked body the collector must stop reading long before its end
STREAM_BOUND = 16 << 20


def sh(argv, timeout=30, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def credentials(d, *args):
    r = sh([os.path.join(T.SOURCE_DIR, "scripts", "mqtt-credentials"), d] + list(args))
    T.check(r.returncode == 0, "mqtt-credentials %s: %s" % (args, r.stderr))
    return r.stdout.strip()


def make_pki(d):
    """A CA, a broker certificate for 127.0.0.1, client certificates, and a rogue CA."""
    def run(*argv):
        r = sh(list(argv), cwd=d)
        T.check(r.returncode == 0, "openssl %s failed: %s" % (argv[1], r.stderr[-500:]))

    for ca in ("ca", "rogue"):
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", ca + ".key", "-out", ca + ".pem", "-subj", "/CN=sitepulse test %s" % ca)
    for name, ext in (("broker", "subjectAltName=IP:127.0.0.1"), ("api", "subjectAltName=IP:127.0.0.1"),
                      ("collector", "extendedKeyUsage=clientAuth"), ("agent", "extendedKeyUsage=clientAuth")):
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=%s" % name)
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext + "\n")
        run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", name + ".pem", "-extfile", name + ".ext")
    return {n: os.path.join(d, n) for n in os.listdir(d)}


def stored_count(coll, site, dev):
    status, data = coll.api("/api/v1/readings", {"site": site, "dev": dev, "limit": 10000})
    return len(data) if status == 200 else 0


def acl_part(env):
    T.log("== part 1: credentials and ACLs")
    cred = env.subdir("cred")
    coll_pw = credentials(cred, "collector")
    # two sites: device ids are unique per site, and both simulated sites use lift-1, chg-1
    a_pw = credentials(cred, "agent", "sec-a", "gw-a")
    b_pw = credentials(cred, "agent", "sec-b", "gw-b")
    broker = env.broker(name="aclbroker",
                        listener_lines=["listener {port} 127.0.0.1", "allow_anonymous false"],
                        extra_lines=["password_file %s/sitepulse.passwd" % cred,
                                     "acl_file %s/sitepulse.acl" % cred])
    coll = env.collector(broker, name="aclcoll", client_id="sitepulse-collector",
                         extra={"mqtt": {"username": "sitepulse-collector", "password": coll_pw}})
    a = env.agent(broker, "sec-a", "gw-a", seed=11, lifts=1, chargers=1, ports=2, heartbeat_s=1,
                  time_scale=20, batch_ms=200, resend_s=2, ack_wait_s=1,
                  extra={"mqtt": {"username": "sec-a.gw-a", "password": a_pw}})
    b = env.agent(broker, "sec-b", "gw-b", seed=12, lifts=1, chargers=1, ports=2, heartbeat_s=1,
                  time_scale=20, batch_ms=200, resend_s=2, ack_wait_s=1,
                  extra={"mqtt": {"username": "sec-b.gw-b", "password": b_pw}})
    T.wait_until(lambda: stored_count(coll, "sec-a", "lift-1") > 0 and stored_count(coll, "sec-b", "lift-1") > 0,
                 20, "data of both agents stored")

    # anonymous and wrong-password clients are refused
    base = [T.MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1"]
    r = sh(base + ["-t", "sp/v1/sec-a/gw-a/state", "-m", '{"online":false}'])
    T.check(r.returncode != 0, "an anonymous client must be refused (exit %d)" % r.returncode)
    r = sh(base + ["-u", "sec-a.gw-a", "-P", "wrong", "-t", "sp/v1/sec-a/gw-a/state", "-m", "{}"])
    T.check(r.returncode != 0, "a wrong password must be refused")

    # agent a publishing as agent b: the broker drops it, the collector never sees it
    forged = ('{"v":1,"seq":900000,"ts":%d,"records":[{"t":"station","dev":"chg-1","ts":%d,'
              '"smoke":true,"leak_ma":99}]}' % (int(time.time() * 1000), int(time.time() * 1000)))
    before = coll.metrics().get("sitepulse_messages_received_total", 0)
    r = sh(base + ["-u", "sec-a.gw-a", "-P", a_pw, "-t", "sp/v1/sec-b/gw-b/data", "-m", forged])
    T.log("forged publish exit %d (mosquitto accepts and drops it for MQTT 3.1.1)" % r.returncode)
    r = sh(base + ["-u", "sec-a.gw-a", "-P", a_pw, "-t", "sp/v1/other/gw-x/data", "-m", forged])
    # a message that did get through would show up within a couple of seconds
    time.sleep(2)
    for rec in coll.api_ok("/api/v1/readings", {"site": "sec-b", "dev": "chg-1", "t": "station",
                                                "limit": 10000}):
        T.check(rec.get("leak_ma") != 99, "a record forged by another agent was stored: %r" % rec)
    sites = [s["site"] for s in coll.api_ok("/api/v1/sites")]
    T.check("other" not in sites, "an agent published under another site: %r" % sites)

    # reading acks: own yes, another agent's no (both are retained)
    sub = [T.MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-W", "3", "-C", "1"]
    T.wait_until(lambda: sh(sub + ["-u", "sec-b.gw-b", "-P", b_pw, "-t", "sp/v1/sec-b/gw-b/ack"]).stdout.strip(),
                 20, "agent b to read its own retained ack")
    r = sh(sub + ["-u", "sec-a.gw-a", "-P", a_pw, "-t", "sp/v1/sec-b/gw-b/ack"])
    T.check(r.stdout.strip() == "", "agent a could read agent b's ack: %r" % r.stdout)
    r = sh(sub + ["-u", "sec-a.gw-a", "-P", a_pw, "-t", "sp/v1/+/+/data"])
    T.check(r.stdout.strip() == "", "agent a could read other agents' data: %r" % r.stdout[:200])

    for ag in (a, b):
        rc, _ = ag.terminate()
        T.check(rc == 0, "%s exits 0" % ag.name)
    for ag in (a, b):
        T.wait_until(lambda: len(T.stored_records(coll, ag.site, ag.devices)) == len(ag.journal_records()[0]),
                     30, "%s fully stored" % ag.name)
        T.assert_exactly_once(ag.journal_records()[0], T.stored_records(coll, ag.site, ag.devices))
    coll.terminate()
    return [coll_pw, a_pw, b_pw]


def tls_part(env):
    T.log("== part 2: MQTT over TLS, API over HTTPS, hashed tokens")
    pki = make_pki(env.subdir("pki"))
    broker = env.broker(name="tlsbroker", scheme="ssl", listener_lines=[
        "listener {port} 127.0.0.1", "allow_anonymous true",
        "cafile %s" % pki["ca.pem"], "certfile %s" % pki["broker.pem"], "keyfile %s" % pki["broker.key"],
        "require_certificate true", "tls_version tlsv1.2"])
    digest = sh([T.COLLECTOR_BIN, "--hash-token", SECRET_TOKEN]).stdout.strip()
    T.check(digest.startswith("sha256:") and len(digest) == 71, "--hash-token prints sha256:HEX")
    mqtt_tls = {"ca_file": pki["ca.pem"], "cert_file": pki["collector.pem"], "key_file": pki["collector.key"]}
    coll = env.collector(broker, name="tlscoll", https_ca=pki["ca.pem"], extra={
        "mqtt": mqtt_tls,
        "api": {"tls_cert_file": pki["api.pem"], "tls_key_file": pki["api.key"],
                "viewer_tokens": digest}})
    ag = env.agent(broker, "tls", "gw-1", seed=21, lifts=1, chargers=1, ports=2, heartbeat_s=1,
                   time_scale=20, batch_ms=200, resend_s=2, ack_wait_s=1,
                   extra={"mqtt": {"ca_file": pki["ca.pem"], "cert_file": pki["agent.pem"],
                                   "key_file": pki["agent.key"]}})
    T.wait_until(lambda: len(T.stored_records(coll, "tls", ag.devices, token=SECRET_TOKEN)) >= 10, 30,
                 "TLS agent's readings visible over HTTPS with a hashed token")
    st, _ = coll.api("/api/v1/sites", token=digest)
    T.check(st == 401, "the digest itself is not a token (got %d)" % st)
    st, _ = coll.api("/api/v1/sites", token=T.VIEWER_TOKEN)
    T.check(st == 401, "a token not configured is refused (got %d)" % st)
    r = sh(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:%d/healthz" % coll.http_port])
    T.check(r.stdout != "200", "plain HTTP must not be served on the HTTPS port (%s)" % r.stdout)

    # a client without a certificate, and one trusting another CA, do not get in
    base = [T.MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t", "sp/v1/tls/x/state",
            "-m", "{}", "--cafile", pki["ca.pem"]]
    T.check(sh(base).returncode != 0, "a client without a certificate must be refused")
    T.check(sh(base + ["--cert", pki["agent.pem"], "--key", pki["agent.key"]]).returncode == 0,
            "the same client with its certificate gets in")
    rogue = env.collector(broker, name="roguecoll", start=False, client_id="rogue",
                          extra={"mqtt": dict(mqtt_tls, ca_file=pki["rogue.pem"])})
    rogue.start(wait=False)
    T.wait_until(lambda: "connect failed" in rogue.proc.log_text(), 20,
                 "a collector trusting another CA to fail verifying the broker")
    T.check(rogue.healthz() == 503, "that collector reports unhealthy")
    rogue.terminate()

    rc, _ = ag.terminate()
    T.check(rc == 0, "TLS agent exits 0")
    T.check(len(ag.journal_records()[0]) >= 10, "the TLS agent created data")
    T.wait_until(lambda: len(T.stored_records(coll, "tls", ag.devices, token=SECRET_TOKEN))
                 == len(ag.journal_records()[0]), 30, "TLS agent fully stored")
    T.assert_exactly_once(ag.journal_records()[0], T.stored_records(coll, "tls", ag.devices, token=SECRET_TOKEN))
    coll.terminate()


def config_warning_part(env):
    T.log("== part 3: warning for world-readable config files holding secrets")
    d = env.subdir("perm")
    path = os.path.join(d, "c.ini")
    with open(path, "w") as f:
        f.write("[api]\nviewer_tokens = %s\n" % SECRET_TOKEN)
    os.chmod(path, 0o644)
    r = sh([T.COLLECTOR_BIN, "--config", path, "--check-config"])
    T.check(r.returncode == 0 and "readable by other users" in r.stderr,
            "world-readable config with a token draws a warning: %r" % r.stderr)
    T.check(SECRET_TOKEN not in r.stderr + r.stdout, "the warning does not show the token")
    os.chmod(path, 0o600)
    r = sh([T.COLLECTOR_BIN, "--config", path, "--check-config"])
    T.check(r.returncode == 0 and "readable" not in r.stderr, "no warning once chmod 600: %r" % r.stderr)


def answer_to_headers(port, head):
    """Sends a request's headers only, never a body byte, and reads the answer for up to
    ANSWER_WAIT_S: (status or None, body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WAIT_S)
    buf = b""
    try:
        s.sendall(head)
        deadline = time.monotonic() + ANSWER_WAIT_S
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not chunk:
                break
            buf += chunk
            head_part, sep, body = buf.partition(b"\r\n\r\n")
            cl = [l for l in head_part.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if sep and cl and len(body) >= int(cl[0].split(b":", 1)[1]):
                break
    finally:
        s.close()
    if not buf.startswith(b"HTTP/1."):
        return None, buf
    return int(buf.split(b" ", 2)[1]), buf.partition(b"\r\n\r\n")[2]


def stream_chunked(port, token):
    """POSTs a chunked body of up to STREAM_MAX bytes, 64 KiB a chunk, until the server
    closes. Returns (bytes sent, seconds taken)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    s.settimeout(ANSWER_WAIT_S)
    sent = 0
    t0 = time.monotonic()
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(("POST /api/v1/alerts/1/ack HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n" % token).encode())
        chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
        while sent < STREAM_MAX:
            s.sendall(chunk)
            sent += 0x10000
    except OSError as e:  # reset, broken pipe, or a server that stopped reading (timeout)
        T.log("  chunked upload ended after %d bytes: %s" % (sent, e))
    finally:
        s.close()
    return sent, time.monotonic() - t0


def post(coll, path, token, body=b""):
    return coll.api_post(path, token, body)


def refused(coll):
    """sitepulse_http_refused_total by its status label."""
    m = coll.metrics()
    prefix = 'sitepulse_http_refused_total{status="'
    return {k[len(prefix):-2]: v for k, v in m.items() if k.startswith(prefix)}


def refusal_lines(coll):
    return [l for l in coll.proc.log_text().splitlines() if " api: refused " in l]


def refusals_part(env):
    """Every refusal is counted by status and logged (rate-limited), without the token.
    A collector of its own: the log's allowance of 10 lines a minute is all this part's."""
    T.log("== part 5: refusals counted by status and logged, never with a token")
    broker = env.broker(name="refbroker")
    coll = env.collector(broker, name="refcoll")
    before = refused(coll)
    lines_before = len(refusal_lines(coll))
    auth = {"Authorization": "Bearer " + T.VIEWER_TOKEN}
    wrong = {"Authorization": "Bearer " + SECRET_TOKEN}  # not configured here: 401
    base = coll.base
    bad = [  # (method, url, headers, status)
        ("GET", "/nowhere", None, 404),
        ("GET", "/api/v1/nowhere?token=" + SECRET_TOKEN, auth, 404),
        ("GET", "/api/v1/readings?site=s1&dev=d1&limit=%095&token=" + SECRET_TOKEN, auth, 400),
        ("GET", "/api/v1/readings?site=s1&dev=d1&limit=%2B5", auth, 400),
        ("GET", "/api/v1/alerts?state=open", auth, 400),
        ("GET", "/api/v1/sites", wrong, 401),
        ("GET", "/api/v1/sites", None, 401),
        ("DELETE", "/healthz", None, 405),
        ("GET", "/api/v1/readings?site=s1&dev=nobody", auth, 404),
    ]
    for method, url, headers, want in bad:
        req = urllib.request.Request(base + url, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                st = r.status
        except urllib.error.HTTPError as e:
            st = e.code
            e.close()
        T.check_eq(st, want, "%s %s" % (method, url.split("?")[0]))
    after = refused(coll)
    want = collections.Counter(str(w) for _, _, _, w in bad)
    for label in set(before) | set(after):
        T.check_eq(after.get(label, 0) - before.get(label, 0), want.get(label, 0),
                   "sitepulse_http_refused_total{status=\"%s\"} moved by" % label)
    for label in ("400", "401", "403", "404", "405", "409", "413", "414", "431", "500", "503",
                  "505", "closed", "limit", "other"):
        T.check(label in after, "sitepulse_http_refused_total{status=\"%s\"} is exported" % label)
    lines = refusal_lines(coll)[lines_before:]
    T.check(any("refused DELETE /healthz from 127.0.0.1: 405" in l for l in lines),
            "a log line names the 405's method, path, client and status: %r" % lines[-3:])
    T.check(any("refused GET /api/v1/readings from 127.0.0.1: 400 limit: 1..10000" in l for l in lines),
            "a log line names the 400 and its reason: %r" % lines[-3:])
    T.check(all("token=" not in l and "?" not in l.split(" from ")[0] for l in lines),
            "refusal lines carry no query string: %r" % lines)

    T.log("step: a flood of refusals is counted in full, logged only in part")
    n = 200
    before = refused(coll)
    t0 = time.monotonic()
    for i in range(n):
        T.check_eq(T.http_get(base + "/flood-%d" % i)[0], 404, "GET /flood-%d" % i)
    after = refused(coll)
    T.check_eq(after["404"] - before["404"], n, "404s counted during the flood")
    logged = len(refusal_lines(coll))
    T.log("  %d refusals in this part, %d logged" % (n + len(bad), logged))
    # the collector's first refusal opened the log's minute; within it, 10 lines at most
    if time.monotonic() - t0 < 50:
        T.check(logged <= 10, "at most 10 refusal lines a minute: %d logged of %d"
                % (logged, n + len(bad)))
    coll.terminate()
    broker.stop()


def raw_answer(port, data, src="127.0.0.1"):
    """Sends raw bytes (the server may close before it read them all) and reads the answer
    for up to ANSWER_WAIT_S: its status or None (closed without an answer)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(ANSWER_WAIT_S)
    buf = b""
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        try:
            s.sendall(data)
        except OSError:
            pass
        deadline = time.monotonic() + ANSWER_WAIT_S
        while time.monotonic() < deadline and len(buf) < 65536:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    return int(buf.split(b" ", 2)[1]) if buf.startswith(b"HTTP/1.") else None


def server_answers_part(coll):
    """What libmicrohttpd refuses by itself is counted and logged like the API's own
    refusals (its answers are not JSON: docs/protocol.md)."""
    T.log("== part 7: libmicrohttpd's own answers counted and logged")
    before = refused(coll)
    lines_before = len(refusal_lines(coll))
    get = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    cases = [  # (what, raw request, status)
        ("a Content-Length that is not a number", get + "Content-Length: ten\r\n\r\n", 400),
        ("a Content-Length beyond 2^64", get + "Content-Length: 99999999999999999999999\r\n\r\n",
         413),
        ("a 100 KB request line", "GET /healthz?q=%s HTTP/1.1\r\nHost: x\r\n\r\n" % ("q" * 100000),
         414),
        ("40 KiB of headers", get + "".join("X-Pad-%02d: %s\r\n" % (i, "h" * 1000) for i in range(41))
         + "\r\n", 431),
        ("HTTP/2.0", "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ]
    for what, raw, want in cases:
        st = raw_answer(coll.http_port, raw.encode())
        T.log("  %s -> %s" % (what, st))
        T.check_eq(st, want, "libmicrohttpd's answer to %s" % what)
    T.check_eq(coll.healthz(), 200, "the collector's health after libmicrohttpd's refusals")
    after = refused(coll)
    moved = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    T.check_eq(moved, {str(w): 1.0 for _, _, w in cases},
               "sitepulse_http_refused_total moved by libmicrohttpd's own answers")
    lines = refusal_lines(coll)[lines_before:]
    for _, _, want in cases:
        T.check(any("refused a request (libmicrohttpd's own answer): %d " % want in l for l in lines),
                "an INFO line for libmicrohttpd's %d: %r" % (want, lines))
    T.check(all("h" * 100 not in l and "q" * 100 not in l for l in lines),
            "no request text in the lines: %r" % lines)


def http_part(env):
    T.log("== part 4: HTTP bodies refused before they are read; acked_by without the token")
    broker = env.broker(name="httpbroker")
    coll = env.collector(broker, name="httpcoll", extra={
        "api": {"operator_tokens": "%s, %s" % (FIRST_OPERATOR, T.OPERATOR_TOKEN)}})
    port = coll.http_port
    # first, while the log's allowance of 10 refusal lines a minute is unused
    server_answers_part(coll)
    refused_at_start = refused(coll)
    ack = "POST /api/v1/alerts/1/ack HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for what, head, want in (
            ("no token, chunked", ack + "Transfer-Encoding: chunked\r\n\r\n", 401),
            ("no token, 300 MB declared", ack + "Content-Length: 300000000\r\n\r\n", 401),
            ("a viewer token", ack + "Authorization: Bearer %s\r\nContent-Length: 10\r\n\r\n"
             % T.VIEWER_TOKEN, 403),
            ("an operator token, 300 MB declared",
             ack + "Authorization: Bearer %s\r\nContent-Length: 300000000\r\n\r\n"
             % T.OPERATOR_TOKEN, 413),
            ("an operator token, 64 KiB + 1 declared on a GET route",
             "POST /api/v1/sites HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Length: 65537\r\n\r\n" % T.OPERATOR_TOKEN, 413)):
        status, body = answer_to_headers(port, head.encode())
        T.log("  headers only, %s -> %s %r" % (what, status, body[:80]))
        T.check(status == want and json.loads(body).get("error"),
                "%s: %s answered on the headers alone, with no body sent (got %s %r)"
                % (what, want, status, body[:200]))
    sent, took = stream_chunked(port, T.OPERATOR_TOKEN)
    T.log("  chunked body with an operator token: %d bytes sent in %.1f s" % (sent, took))
    T.check(sent < STREAM_BOUND, "a chunked body past 64 KiB: the collector read %d bytes of it "
            "(it must close the connection long before %d)" % (sent, STREAM_BOUND))
    T.check_eq(coll.healthz(), 200, "the collector's health after the refused bodies")
    counted = refused(coll)
    for label, n in (("401", 2), ("403", 1), ("413", 2), ("closed", 1)):
        T.check_eq(counted[label] - refused_at_start[label], n,
                   "sitepulse_http_refused_total{status=\"%s\"} after the refused bodies" % label)

    T.log("step: an acknowledgement without \"by\" is recorded as operator-2")
    now = int(time.time() * 1000)
    T.publish_ok(broker, "sp/v1/sec-h/gw-h/birth", json.dumps(
        {"v": 1, "ts": now, "devices": [{"dev": "chg-h", "kind": "charger", "ports": 1}]}),
        retain=True)
    T.publish_ok(broker, "sp/v1/sec-h/gw-h/data", json.dumps({"v": 1, "seq": 1, "ts": now, "records": [
        {"t": "fault", "dev": "chg-h", "ts": now, "code": "H1", "active": True, "port": 1}]}))
    alert = T.wait_until(lambda: (coll.api_ok("/api/v1/alerts", {"site": "sec-h"}) or [None])[0],
                         20, "the fault's alert")
    status, body = post(coll, "/api/v1/alerts/%d/ack" % alert["id"], T.OPERATOR_TOKEN)
    T.check_eq(status, 200, "an acknowledgement without a body")
    T.check_eq(body["acked_by"], "operator-2", "acked_by of the second operator token, no \"by\"")
    listed = coll.api_ok("/api/v1/alerts", {"site": "sec-h"})[0]
    T.check_eq(listed["acked_by"], "operator-2", "acked_by as every viewer reads it")
    digest = hashlib.sha256(T.OPERATOR_TOKEN.encode()).hexdigest()
    T.check(digest[:8] not in json.dumps(listed), "the token's hash prefix in the alert")
    coll.terminate()
    broker.stop()


def main(env):
    secrets = acl_part(env)
    tls_part(env)
    config_warning_part(env)
    http_part(env)
    refusals_part(env)
    secrets += [SECRET_TOKEN, T.VIEWER_TOKEN, T.OPERATOR_TOKEN, FIRST_OPERATOR]
    for p in env.parts:
        proc = getattr(p, "proc", None)
        if proc is None:
            continue
        text = proc.log_text()
        for s in secrets:
            T.check(s not in text, "a secret appears in %s" % proc.log_path)
    T.log("no secret in %d process logs" % len(env.parts))


if __name__ == "__main__":
    T.run(main)
