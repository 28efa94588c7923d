#!/usr/bin/env python3
"""
test_dashboard_proxy.py - the dashboard behind a reverse proxy (docs/dashboard.md, "Errors";
docs/security.md puts a TLS proxy in front of the collector).

A small proxy on loopback forwards every request to the collector and answers 502, as nginx
does, when the collector does not answer. With the collector stopped the page must take the
502s for what they are, the collector unreachable: the "collector unreachable (the proxy
answers 502)" banner, "(disconnected)" in the tab title, and one GET /healthz per try at
growing intervals. Before, an HTTP answer counted as reachable: every 5 s the page sent all
its requests again through the proxy, and the backoff never started.

The proxy also plays an older collector, without GET /api/v1/me (404): a viewer then sees
Acknowledge buttons, and the collector's 403 to a click teaches the page: the notice says
why, and the buttons go.
"""
import json
import http.server
import os
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
import test_dashboard as D  # noqa: E402

DOWN_S = 16  # tries 5 and 10 s apart: at most 2 requests in this time


class Proxy:
    """A threaded HTTP proxy to one upstream, 502 when it does not answer; logs the paths."""

    def __init__(self, env, upstream):
        self.upstream = upstream
        self.paths = []
        self.hidden = set()  # paths answered 404 as a collector without them would
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.forward(None)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                self.forward(self.rfile.read(min(n, 1 << 20)))

            def forward(self, body):
                with proxy.lock:
                    proxy.paths.append(self.path)
                    hidden = self.path in proxy.hidden
                if hidden:
                    data = b'{"error":"not found"}'
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "accept", "content-type")}
                req = urllib.request.Request(proxy.upstream + self.path, data=body,
                                             headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(req, timeout=5) as r:
                        status, ctype, data = r.status, r.headers.get("Content-Type"), r.read()
                except urllib.error.HTTPError as e:
                    status, ctype, data = e.code, e.headers.get("Content-Type"), e.read()
                except OSError:
                    status, ctype, data = 502, "text/html", b"<html>502 Bad Gateway</html>"
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        env.register(self)

    def take(self):
        with self.lock:
            got, self.paths = self.paths, []
        return got

    def cleanup(self):
        self.server.shutdown()
        self.server.server_close()


def main(env):
    broker = env.broker()
    coll = env.collector(broker)
    proxy = Proxy(env, coll.base)
    b = D.Browser(env)
    T.log("step: the dashboard through the proxy")
    b.driver.get(proxy.base + "/#token=" + T.OPERATOR_TOKEN)
    T.wait_until(lambda: D.visible(b, "main") and D.text_of(b, "health") == "collector ok",
                 D.UI_WAIT_S, "the dashboard's main view, collector ok")

    T.log("step: a collector without /api/v1/me: a viewer's click, answered 403, hides the buttons")
    now = int(time.time() * 1000)
    T.publish_ok(broker, "sp/v1/px-1/gw-1/birth", json.dumps(
        {"v": 1, "ts": now, "devices": [{"dev": "chg-1", "kind": "charger", "ports": 2}]}), retain=True)
    T.publish_ok(broker, "sp/v1/px-1/gw-1/data", json.dumps({"v": 1, "seq": 1, "ts": now, "records": [
        {"t": "fault", "dev": "chg-1", "ts": now, "code": "P1", "active": True, "port": 1}]}))
    alert = T.wait_until(lambda: (coll.api_ok("/api/v1/alerts", {"site": "px-1"}) or [None])[0],
                         15, "the fault's alert")
    with proxy.lock:
        proxy.hidden.add("/api/v1/me")
    b.driver.get(proxy.base + "/#token=" + T.VIEWER_TOKEN)
    T.wait_until(lambda: (D.row_of(b, "active-alerts", alert["rule"]) or {}).get("ack"),
                 D.UI_WAIT_S, "an Acknowledge button while the role is not known")
    T.check("/api/v1/me" in proxy.take(), "the page asked for its role")
    D.click(b, "#active-alerts button.ack[data-alert-id='%d']" % alert["id"], "Acknowledge as a viewer")
    T.wait_until(lambda: b.js("return document.getElementById('name-dialog').open"), 10,
                 "the name dialog (a fresh browser has no name)")
    D.fill(b, "name-input", "viewer-x")
    D.click(b, "#name-save", "Save")
    T.wait_until(lambda: D.visible(b, "notice") and "needs an operator token"
                 in D.text_of(b, "notice-text"), D.UI_WAIT_S, "the 403's notice")
    T.wait_until(lambda: (lambda r: r if r and not r["ack"] else None)(
        D.row_of(b, "active-alerts", alert["rule"])), D.UI_WAIT_S,
        "the Acknowledge button gone after the 403")
    T.check("read only" in D.text_of(b, "operator"), "the header: %r" % D.text_of(b, "operator"))
    T.check_eq(coll.api_ok("/api/v1/alerts", {"site": "px-1"})[0]["state"], "active_unack",
               "the alert after a viewer's click")
    with proxy.lock:
        proxy.hidden.clear()
    b.driver.get(proxy.base + "/#token=" + T.OPERATOR_TOKEN)
    T.wait_until(lambda: D.visible(b, "main") and D.text_of(b, "health") == "collector ok"
                 and (D.row_of(b, "active-alerts", alert["rule"]) or {}).get("ack"),
                 D.UI_WAIT_S, "an operator's Acknowledge button")

    T.log("step: collector stopped: the proxy answers 502")
    coll.terminate()
    T.wait_until(lambda: D.visible(b, "banner")
                 and "collector unreachable" in D.text_of(b, "banner"), D.UI_WAIT_S,
                 "the 'collector unreachable' banner")
    T.check("the proxy answers 502" in D.text_of(b, "banner"), "the banner: %r"
            % D.text_of(b, "banner"))
    T.check(b.driver.title.startswith("(disconnected) "), "the tab title: %r" % b.driver.title)
    proxy.take()
    time.sleep(DOWN_S)
    tries = proxy.take()
    T.check(len(tries) <= 2 and all(p == "/healthz" for p in tries),
            "in %d s of a stopped collector the page asked the proxy for %r (at most 2 GET "
            "/healthz, 5 and 10 s apart)" % (DOWN_S, tries))

    T.log("step: collector back: the banner goes")
    coll.start()
    T.wait_until(lambda: not D.visible(b, "banner") and D.text_of(b, "health") == "collector ok",
                 D.UI_WAIT_S + 10, "the banner gone after the collector's restart")


if __name__ == "__main__":
    D.skip_unless_browser()
    T.run(main)
