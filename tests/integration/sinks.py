"""
sinks.py - peers the collector delivers to, for integration tests: a real
SMTP server (SmtpSink, alert mails) and a real HTTP server (HttpSink, city
summaries), each on 127.0.0.1 at a free port, recording what arrives and
able to misbehave on request (STYLE.md rule 23).

    import sinks

    def main(env):
        smtp = sinks.SmtpSink(env)              # smtp.url: smtp://127.0.0.1:PORT
        city = sinks.HttpSink(env)              # city.url(): http://127.0.0.1:PORT/api/summaries
        ...
        smtp.wait_for(1, timeout=30)
        msg = smtp.messages()[0]["message"]    # email.message.EmailMessage
        smtp.set_mode("stuck")                 # the next connections get no greeting at all

Modes (set_mode() switches at any time; the URL stays the same):
  SmtpSink  "ok"     aiosmtpd serves the connection and records each mail
            "fail"   the server answers 451 (temporary failure) to DATA;
                     the attempt is recorded under rejected()
            "stuck"  accepts the TCP connection and never says anything;
                     held until the mode changes or cleanup()
  HttpSink  "ok"     200 {"ok":true}
            "fail"   503 {"error":"unavailable"}
            "hang"   reads the request, never answers; the connection is
                     held until the mode changes or cleanup(), then closed
                     without an answer
Every request is recorded in every mode, with the status it got (None for
a hang), so a test can count attempts as well as deliveries.

Bounds: bodies up to 1 MB (larger: SMTP 552 / HTTP 413, not recorded),
at most 64 held or served connections at once (more are closed at once),
at most 10,000 records kept (the oldest go first; dropped() counts them).
Servers run in daemon threads; cleanup() (called by env.cleanup(), see
sptest.Env.register) closes every socket. Only the standard library and
Debian's python3-aiosmtpd are used, so run tests with /usr/bin/python3.

Run this file to test the sinks themselves:  /usr/bin/python3 sinks.py
"""

import asyncio
import collections
import email
import email.policy
import http.server
import json
import socket
import threading
import time

import sptest as T

MAX_BODY = 1024 * 1024
MAX_CONNECTIONS = 64
MAX_RECORDS = 10000


class Headers(dict):
    """Request headers as sent (names as the client spelled them), looked up
    case-insensitively, as HTTP means them: h["idempotency-key"] works too."""

    def _key(self, name):
        if dict.__contains__(self, name):
            return name
        low = name.lower() if isinstance(name, str) else name
        for k in self.keys():
            if isinstance(k, str) and k.lower() == low:
                return k
        return name

    def __getitem__(self, name):
        return dict.__getitem__(self, self._key(name))

    def __contains__(self, name):
        return dict.__contains__(self, self._key(name))

    def get(self, name, default=None):
        return dict.get(self, self._key(name), default)


class _Records:
    """A bounded, thread-safe list of what a sink received."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = collections.deque()
        self.dropped = 0

    def add(self, item):
        with self._lock:
            if len(self._items) >= MAX_RECORDS:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)

    def copy(self):
        with self._lock:
            return list(self._items)

    def __len__(self):
        with self._lock:
            return len(self._items)


# ---------------------------------------------------------------- SMTP

class _SmtpHandler:
    """aiosmtpd handler: runs on the controller's event loop thread."""

    def __init__(self, sink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        rec = {
            "mail_from": envelope.mail_from,
            "rcpts": list(envelope.rcpt_tos),
            "raw": bytes(raw),
            "message": msg,
            "msg": msg,  # the same, shorter
            "at": time.time(),
        }
        if self.sink.mode == "fail":
            self.sink._rejected.add(rec)
            return "451 4.3.0 sink told to fail: try again later"
        self.sink._messages.add(rec)
        return "250 2.0.0 OK: recorded"


class _Holder(asyncio.Protocol):
    """A connection in "stuck" mode: accepted, read and dropped, never answered."""

    def __init__(self, sink):
        self.sink = sink
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        if not self.sink._hold(transport):
            transport.abort()

    def data_received(self, data):
        pass  # swallowed: the client waits for a greeting that never comes

    def connection_lost(self, exc):
        self.sink._unhold(self.transport)


class SmtpSink:
    """A real SMTP server (aiosmtpd) on 127.0.0.1:<free port>; see the module doc."""

    MODES = ("ok", "fail", "stuck")

    def __init__(self, env, mode="ok", name="smtp-sink", port=None):
        """port: a fixed port (the demo); default a free one."""
        from aiosmtpd.controller import Controller  # Debian: python3-aiosmtpd
        from aiosmtpd.smtp import SMTP

        T.check(mode in self.MODES, "SmtpSink mode %r not one of %s" % (mode, self.MODES))
        fixed_port = port
        self.name = name
        self.mode = "ok"  # the controller's start-up probe must be served normally
        self._messages = _Records()
        self._rejected = _Records()
        self._lock = threading.Lock()
        self._held = set()
        self._closed = False
        sink = self

        class _Controller(Controller):
            def factory(self):
                # called by the event loop for every new connection
                if sink.mode == "stuck":
                    return _Holder(sink)
                return SMTP(self.handler, **self.SMTP_kwargs)

        last = None
        for _ in range(5):  # a free port can be taken between looking and binding
            port = fixed_port or T.free_port()
            ctl = _Controller(_SmtpHandler(self), hostname="127.0.0.1", port=port,
                              server_hostname="sink.sitepulse.test", data_size_limit=MAX_BODY,
                              ready_timeout=10)
            try:
                ctl.start()
                break
            except Exception as e:  # bind failure, start-up timeout
                last = e
                try:
                    ctl.stop(no_assert=True)
                except Exception:
                    pass
        else:
            raise T.TestFailure("%s: cannot start: %s" % (name, last))
        self._ctl = ctl
        self.port = port
        env.register(self)
        self.mode = mode
        T.log("%s: %s (mode %s)" % (name, self.url, mode))

    @property
    def url(self):
        return "smtp://127.0.0.1:%d" % self.port

    # -- holding connections (event loop thread) --
    def _hold(self, transport):
        with self._lock:
            if self._closed or len(self._held) >= MAX_CONNECTIONS:
                return False
            self._held.add(transport)
            return True

    def _unhold(self, transport):
        with self._lock:
            self._held.discard(transport)

    def _release_held(self):
        with self._lock:
            held = list(self._held)
            self._held.clear()
        for tr in held:
            try:
                self._ctl.loop.call_soon_threadsafe(tr.abort)
            except RuntimeError:
                pass  # the loop is already closed: so is the socket

    def held(self):
        """Connections currently held open by "stuck" mode."""
        with self._lock:
            return len(self._held)

    # -- the test's side --
    def set_mode(self, mode):
        T.check(mode in self.MODES, "SmtpSink mode %r not one of %s" % (mode, self.MODES))
        self.mode = mode
        if mode != "stuck":
            self._release_held()
        T.log("%s: mode %s" % (self.name, mode))

    def messages(self):
        """Every mail accepted, oldest first: dicts with mail_from, rcpts, message
        (email.message.EmailMessage, policy default: headers decoded; also
        under "msg"), raw (bytes), at (time.time())."""
        return self._messages.copy()

    def rejected(self):
        """Mails refused with 451 in "fail" mode (same dicts as messages())."""
        return self._rejected.copy()

    def message_ids(self):
        """The Message-ID of every accepted mail, in order, duplicates kept."""
        return [m["message"].get("Message-ID") for m in self._messages.copy()]

    def dropped(self):
        return self._messages.dropped + self._rejected.dropped

    def wait_for(self, n, timeout=30):
        """Waits until at least n mails were accepted; returns messages()."""
        T.wait_until(lambda: len(self._messages) >= n, timeout,
                     "%s to receive %d mail(s) (has %d)" % (self.name, n, len(self._messages)))
        return self.messages()

    def cleanup(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._release_held()
        try:
            self._ctl.stop(no_assert=True)
        except Exception as e:
            print("%s: stop: %s" % (self.name, e))


# ---------------------------------------------------------------- HTTP

class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, sink, port=0):
        self.sink = sink
        super().__init__(("127.0.0.1", port), _HttpHandler)

    def process_request(self, request, client_address):
        if not self.sink._track(request):
            # over the bound: closed at once, never a thread
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.sink._untrack(request)
        super().shutdown_request(request)


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as libcurl expects
    timeout = 30                   # an idle kept-alive connection is closed after this

    def log_message(self, fmt, *args):
        pass  # quiet: the records are what tests look at

    def _answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self):
        """The request body (Content-Length or chunked), or None if over MAX_BODY."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline(64).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                if len(out) + size > MAX_BODY:
                    return None
                out += self.rfile.read(size)
                self.rfile.readline(8)
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            return None
        return self.rfile.read(n)

    def do_POST(self):
        sink = self.server.sink
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._answer(400, {"error": "bad body framing"})
            return
        if body is None:
            self.close_connection = True
            self._answer(413, {"error": "body larger than 1 MB"})
            return
        try:
            parsed = json.loads(body.decode("utf-8"))
        except ValueError:
            parsed = None
        mode = sink.mode
        status = {"ok": 200, "fail": 503, "hang": None}[mode]
        sink._requests.add({
            "method": "POST",
            "path": self.path,
            "headers": Headers(self.headers.items()),
            "body": body,
            "json": parsed,
            "status": status,
            "at": time.time(),
        })
        if mode == "hang":
            # no answer, ever: held until the mode changes or cleanup, then closed
            sink._hang_released.wait()
            self.close_connection = True
            return
        if mode == "fail":
            self._answer(503, {"error": "unavailable"})
        else:
            self._answer(200, {"ok": True})

    def do_GET(self):
        self._answer(405, {"error": "POST only"})


class HttpSink:
    """A real HTTP server on 127.0.0.1:<free port> recording POSTs; see the module doc."""

    MODES = ("ok", "fail", "hang")

    def __init__(self, env, mode="ok", name="http-sink", port=None):
        """port: a fixed port (the demo); default a free one."""
        T.check(mode in self.MODES, "HttpSink mode %r not one of %s" % (mode, self.MODES))
        self.name = name
        self.mode = mode
        self._requests = _Records()
        self._lock = threading.Lock()
        self._conns = set()
        self._closed = False
        self._hang_released = threading.Event()
        if mode != "hang":
            self._hang_released.set()
        self._srv = _HttpServer(self, port or 0)
        self.port = self._srv.server_address[1]
        self._t = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.1},
                                   name=name, daemon=True)
        self._t.start()
        env.register(self)
        T.log("%s: %s (mode %s)" % (name, self.url(), mode))

    def url(self, path="/api/summaries"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    # -- connection bookkeeping (server threads) --
    def _track(self, sock):
        with self._lock:
            if self._closed or len(self._conns) >= MAX_CONNECTIONS:
                return False
            self._conns.add(sock)
            return True

    def _untrack(self, sock):
        with self._lock:
            self._conns.discard(sock)

    def connections(self):
        with self._lock:
            return len(self._conns)

    # -- the test's side --
    def set_mode(self, mode):
        T.check(mode in self.MODES, "HttpSink mode %r not one of %s" % (mode, self.MODES))
        with self._lock:
            self.mode = mode
            if mode == "hang":
                self._hang_released = threading.Event()
                old = None
            else:
                old = self._hang_released
        if old is not None:
            old.set()  # requests held by "hang" are closed unanswered
        T.log("%s: mode %s" % (self.name, mode))

    def requests(self):
        """Every POST received, oldest first, in every mode: dicts with method, path,
        headers (Headers: a dict looked up case-insensitively), body (bytes), json
        (parsed or None), status (200, 503, None for a hang), at (time.time())."""
        return self._requests.copy()

    def keys(self, delivered_only=False):
        """The Idempotency-Key of every request (of those answered 200 if
        delivered_only), in order, duplicates kept."""
        return [r["headers"].get("Idempotency-Key") for r in self._requests.copy()
                if not delivered_only or r["status"] == 200]

    def dropped(self):
        return self._requests.dropped

    def wait_for(self, n, timeout=30, delivered_only=False):
        """Waits until at least n requests arrived (answered 200 if delivered_only);
        returns requests()."""
        def enough():
            return len(self.keys(delivered_only)) >= n
        T.wait_until(enough, timeout, "%s to receive %d request(s) (has %d)"
                     % (self.name, n, len(self.keys(delivered_only))))
        return self.requests()

    def cleanup(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns = list(self._conns)
            released = self._hang_released
        released.set()
        self._srv.shutdown()
        self._srv.server_close()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass


# ---------------------------------------------------------------- self-test

def _selftest():
    import smtplib
    import urllib.error
    import urllib.request

    class Env:
        def __init__(self):
            self.parts = []

        def register(self, part):
            self.parts.append(part)

        def cleanup(self):
            for p in self.parts:
                p.cleanup()

    env = Env()
    try:
        # -- SMTP: a mail is recorded with its envelope and parsed headers
        smtp = SmtpSink(env)
        mail = ("From: sitepulse@example.org\r\nTo: ops@example.org\r\n"
                "Message-ID: <sitepulse.alert.1.opened.1@s1.sitepulse>\r\n"
                "Subject: =?UTF-8?B?wrBD?=\r\n\r\nhello\r\n")
        with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as c:
            c.sendmail("sitepulse@example.org", ["ops@example.org", "crew@example.org"], mail)
        got = smtp.wait_for(1, timeout=5)
        T.check_eq(got[0]["mail_from"], "sitepulse@example.org", "envelope from")
        T.check_eq(got[0]["rcpts"], ["ops@example.org", "crew@example.org"], "envelope rcpts")
        T.check_eq(str(got[0]["message"]["Subject"]), "\u00b0C", "decoded subject")
        T.check_eq(got[0]["msg"]["From"], "sitepulse@example.org", "From, compared as text")
        T.check_eq(smtp.message_ids(), ["<sitepulse.alert.1.opened.1@s1.sitepulse>"], "ids")

        # -- stuck: connected, no greeting; back to ok: served again, held one closed
        smtp.set_mode("stuck")
        s = socket.create_connection(("127.0.0.1", smtp.port), timeout=3)
        s.settimeout(0.7)
        try:
            data = s.recv(100)
            raise T.TestFailure("stuck SMTP sink said %r" % data)
        except socket.timeout:
            pass
        T.wait_until(lambda: smtp.held() == 1, 3, "one held connection")
        smtp.set_mode("ok")
        s.settimeout(3)
        T.check_eq(s.recv(100), b"", "held connection closed at the switch")
        s.close()
        with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as c:
            c.sendmail("a@example.org", ["b@example.org"], mail)
        smtp.wait_for(2, timeout=5)
        T.check_eq(len(smtp.message_ids()), 2, "duplicates kept")

        # -- fail: 451 to DATA, recorded as rejected
        smtp.set_mode("fail")
        try:
            with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as c:
                c.sendmail("a@example.org", ["b@example.org"], mail)
            raise T.TestFailure("fail mode accepted a mail")
        except smtplib.SMTPDataError as e:
            T.check_eq(e.smtp_code, 451, "fail mode reply")
        T.check_eq(len(smtp.rejected()), 1, "rejected recorded")
        T.check_eq(len(smtp.messages()), 2, "not among the accepted")
        smtp.set_mode("ok")

        # -- HTTP: a POST is recorded with headers, body and JSON
        web = HttpSink(env)

        def post(body, key, timeout=5):
            req = urllib.request.Request(web.url(), data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Idempotency-Key": key,
                                                  "Authorization": "Bearer t"})
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())

        T.check_eq(post({"v": 1, "site": "s1"}, "s1:0"), (200, {"ok": True}), "ok answer")
        reqs = web.wait_for(1, timeout=5)
        T.check_eq(reqs[0]["path"], "/api/summaries", "path")
        T.check_eq(reqs[0]["json"], {"v": 1, "site": "s1"}, "json")
        T.check_eq(reqs[0]["headers"].get("Authorization"), "Bearer t", "headers")
        T.check_eq(reqs[0]["headers"]["idempotency-key"], "s1:0", "headers, any case")
        T.check("content-type" in reqs[0]["headers"], "headers: in, any case")
        web.set_mode("fail")
        try:
            post({"v": 1}, "s1:1")
            raise T.TestFailure("fail mode answered 2xx")
        except urllib.error.HTTPError as e:
            T.check_eq(e.code, 503, "fail status")
        web.set_mode("hang")
        t0 = time.monotonic()
        try:
            post({"v": 1}, "s1:2", timeout=0.7)
            raise T.TestFailure("hang mode answered")
        except (socket.timeout, urllib.error.URLError) as e:
            T.check("timed out" in str(e), "hang: expected a timeout, got %r" % e)
        T.check(time.monotonic() - t0 < 3, "hang timeout took too long")
        web.set_mode("ok")
        T.check_eq(post({"v": 1}, "s1:3"), (200, {"ok": True}), "ok again")
        T.check_eq(web.keys(), ["s1:0", "s1:1", "s1:2", "s1:3"], "all keys")
        T.check_eq(web.keys(delivered_only=True), ["s1:0", "s1:3"], "delivered keys")
        # too large: 413, not recorded
        big = urllib.request.Request(web.url(), data=b"x" * (MAX_BODY + 1), method="POST")
        try:
            urllib.request.urlopen(big, timeout=5)
            raise T.TestFailure("an oversized body was accepted")
        except urllib.error.HTTPError as e:
            T.check_eq(e.code, 413, "oversized body")
        T.check_eq(len(web.requests()), 4, "oversized not recorded")
    finally:
        env.cleanup()
    # closed for good
    T.check(not T.port_open(smtp.port), "SMTP port still open after cleanup")
    T.check(not T.port_open(web.port), "HTTP port still open after cleanup")
    T.log("sinks self-test: PASS")


# ---------------------------------------------------------------- demo

def _serve(argv):
    """sinks.py --serve DIR SMTP_PORT HTTP_PORT: the demo's crews and city (scripts/demo).
    Writes every mail to DIR/mail/NNNN.eml and every summary to DIR/city/KEY.json, with a
    line on stdout each, until SIGTERM/SIGINT."""
    import os
    import signal as sig
    out, smtp_port, http_port = argv[0], int(argv[1]), int(argv[2])

    class Env:
        parts = []

        def register(self, part):
            self.parts.append(part)

    env = Env()
    stop = threading.Event()
    for s_ in (sig.SIGTERM, sig.SIGINT):
        sig.signal(s_, lambda *_: stop.set())
    smtp = SmtpSink(env, port=smtp_port)
    web = HttpSink(env, port=http_port)
    os.makedirs(os.path.join(out, "mail"), exist_ok=True)
    os.makedirs(os.path.join(out, "city"), exist_ok=True)
    seen_mail = seen_city = 0
    try:
        while not stop.wait(0.5):
            mails, posts = smtp.messages(), web.requests()
            for i, m in enumerate(mails[seen_mail:], seen_mail + 1):
                with open(os.path.join(out, "mail", "%04d.eml" % i), "wb") as f:
                    f.write(m["raw"] if isinstance(m.get("raw"), bytes) else bytes(m["message"]))
                print("mail %04d to %s: %s" % (i, ",".join(m["rcpts"]), m["message"]["Subject"]),
                      flush=True)
            for r in posts[seen_city:]:
                key = (r["headers"].get("Idempotency-Key") or "unknown").replace("/", "_")
                with open(os.path.join(out, "city", key + ".json"), "wb") as f:
                    f.write(r["body"])
                print("city summary %s (%d bytes)" % (key, len(r["body"])), flush=True)
            seen_mail, seen_city = len(mails), len(posts)
    finally:
        for p in env.parts:
            p.cleanup()


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        _serve(sys.argv[2:])
    else:
        _selftest()
