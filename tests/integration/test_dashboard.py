#!/usr/bin/env python3
"""
test_dashboard.py - the operators' dashboard (GET /, docs/dashboard.md) in a
real headless Chromium driven by Selenium, against real mosquitto, collector
and agent processes.

  - the static files: GET / and its script and style with the security
    headers (Content-Security-Policy, nosniff, no-referrer, no-cache), the
    bytes of web/, HEAD allowed, POST 405 with "Allow: GET, HEAD" (and every
    route's 405 with its methods: POST for the ack route), no token needed (the data still
    needs one);
  - an agent plays a passenger trapped between floors ([rule.lift.trapped]
    hold_s 2): the page, opened with #token=OPERATOR, shows the active
    lift.trapped alert with the API's detail; the header counts it; the
    sites table lists the site; clicking the site lists its devices with a
    summary of their latest state;
  - hostile text: a device's fault detail `<img src=x onerror=...>` shows as
    literal text in the alerts table (and the devices table); no <img>
    exists, document.title is untouched;
  - the pointer on the active alerts table holds its rows: a new critical
    alert (charger.smoke) is not drawn under it, "1 new — updates paused"
    says so, the aria-live region announces it; it is drawn once the pointer
    leaves. The critical badge and the banner reach 4.5:1 contrast;
  - acknowledging: the first click asks the operator's name; the API then
    shows the alert active_ack, acked_by that name; the button is gone. With
    every list of alerts answering 4 s late (window.fetch wrapped in the
    page), the row shows acknowledged, without its button, at once from the
    ack's answer, and lists asked before it do not bring the button back; the
    notice names rule, site and device;
  - a 200 with an HTML page instead of the counts (a proxy's): a banner,
    "(stale)" in the tab title, the header marked stale, the last alerts and
    counts kept (before: "no alerts", counts 0, a fresh time);
  - after a 401 the tab title, the header's counts, health and time no
    longer show the old token's data;
  - a viewer token: Acknowledge shows the collector's 403 error text and
    acknowledges nothing; a bad token (401) brings back the sign-in form,
    which takes a good token;
  - the collector stopped: a visible "collector unreachable" banner and
    "(disconnected)" in the tab title, which go once the collector is back;
    while it is down the page tries one GET /healthz at a time, 5, 10, 20 s
    apart (at most 3 failed requests in 22 s, not every table every 5 s);
  - the broker stopped (the collector up, /healthz 503): a banner says
    "collector unhealthy: mqtt ..." and that alerts may not be arriving;
  - times in the site's zone: Chromium runs with TZ=Europe/Berlin, yet the
    lift.trapped alert (its site has no [site.S] section: Asia/Shanghai)
    shows its opened time in Shanghai with "+08:00", and an alert of a site
    configured as America/New_York in New York time with its offset;
  - a flood of newer alerts cannot hide a critical one: 1005 fault alerts
    (major) on another site, after the critical lift.trapped, push it out of
    the API's default list (1000, newest first: checked), yet the page still
    shows it and counts it, counts all 1005 majors, and says it shows only
    the newest 1000 of them;
  - the cleared fault shows in "Recently cleared", as text; an alert opened
    before 25 others that cleared first, cleared last, shows first there
    although it is not among the API's 20 newest opened cleared alerts;
  - the browser's log holds no error: a SEVERE entry fails the test, except
    the network lines of the 403, the 401 and the refused connections this
    test causes on purpose (each phase allows only its own).

Needs chromium, chromium-driver and python3-selenium (scripts/setup-deps
installs them); without them it prints SKIP and exits 77. Chromium runs
headless, without its sandbox (CI runs as root), with a fresh profile in the
test directory, no background networking, and dies with chromedriver, which
dies with the test (PR_SET_PDEATHSIG), so a killed test leaves no browser.
"""
import datetime
import json
import os
import re
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"

SITE = "dash-a"
FLOOD_SITE = "dash-flood"       # [site.dash-flood] timezone = FLOOD_ZONE
FLOOD_ZONE = "America/New_York"
BROWSER_TZ = "Europe/Berlin"    # the browser's own zone: never the one shown
FLOOD = 1005                    # major alerts: more than the page lists per severity (1000)
NAME = "Li Wei 李伟"
XSS = "<img src=x onerror=\"document.title='pwned'\">"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_TIMEOUT_S = 20      # page load, and every WebDriver command (HTTP to chromedriver)
SCRIPT_TIMEOUT_S = 10
UI_WAIT_S = 30           # the page refreshes every 5 s: a few rounds
DOWN_S = 22              # the collector stays stopped this long (the page's old way: ~20 failed requests)


def skip_unless_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER, SETPRIV) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python3-selenium")
    if missing:
        print("SKIP: test_dashboard needs %s (scripts/setup-deps installs them)" % ", ".join(missing))
        sys.exit(77)


# ---------------------------------------------------------------- the browser

class Browser:
    """chromedriver (a sptest.Proc: dies with the test) and one headless Chromium session."""

    def __init__(self, env):
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.remote.remote_connection import RemoteConnection

        self.env = env
        self.name = "chromedriver"
        self.dir = env.subdir("browser")
        self.port = T.free_port()
        # Chromium dies when chromedriver does (it is chromedriver's child)
        self.wrapper = os.path.join(self.dir, "chromium")
        with open(self.wrapper, "w") as f:
            # in another zone than any site's: the page must not show the browser's
            f.write("#!/bin/sh\nTZ=%s\nexport TZ\nexec %s --pdeathsig KILL %s \"$@\"\n"
                    % (BROWSER_TZ, SETPRIV, CHROMIUM))
        os.chmod(self.wrapper, 0o755)
        self.proc = T.Proc("chromedriver", [CHROMEDRIVER, "--port=%d" % self.port],
                           os.path.join(self.dir, "chromedriver.log"), self.dir)
        env.register(self)
        self.proc.start()
        T.wait_until(lambda: T.port_open(self.port), 15, "chromedriver on port %d" % self.port)

        opts = Options()
        opts.binary_location = self.wrapper
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--user-data-dir=%s" % os.path.join(self.dir, "profile"),
                  "--window-size=1400,1000", "--lang=en-US",
                  # offline: nothing but the collector on loopback
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-default-apps", "--disable-extensions",
                  "--disable-client-side-phishing-detection", "--disable-domain-reliability",
                  "--no-first-run", "--no-default-browser-check", "--no-pings",
                  "--disable-breakpad", "--metrics-recording-only",
                  "--disable-features=Translate,OptimizationHints,MediaRouter"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        RemoteConnection.set_timeout(PAGE_TIMEOUT_S + 10)  # bounds every WebDriver command
        T.log("browser: starting headless Chromium through chromedriver")
        self.driver = webdriver.Remote(command_executor="http://127.0.0.1:%d" % self.port,
                                       options=opts)
        self.driver.set_page_load_timeout(PAGE_TIMEOUT_S)
        self.driver.set_script_timeout(SCRIPT_TIMEOUT_S)
        self.driver.implicitly_wait(0)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def screenshot(self, name):
        try:
            path = os.path.join(self.env.dir, name + ".png")
            self.driver.save_screenshot(path)
            return path
        except Exception as e:  # a screenshot is an aid, never a failure
            T.log("screenshot %s: %s" % (name, e))
            return None

    def log_entries(self):
        return self.driver.get_log("browser")

    def cleanup(self):
        drv = getattr(self, "driver", None)
        if drv is not None:
            self.screenshot("last")
            try:
                drv.quit()
            except Exception as e:
                print("browser: quit: %s" % e)
            self.driver = None
        self.proc.stop(signal.SIGTERM, 5)


# ---------------------------------------------------------------- reading the page

ROWS_JS = """
return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr')).map(function (tr) {
    function t(sel) { var e = tr.querySelector(sel); return e ? e.textContent : null; }
    return {id: tr.getAttribute('data-alert-id'), rule: t('.c-rule'), where: t('.c-where'),
            detail: t('.c-detail'), state: t('.c-state'), dev: t('.c-dev'), kind: t('.c-kind'),
            opened: t('.c-opened .time'), severity: t('.c-sev'),
            online: t('.c-online'), latest: t('.c-latest'), seen: t('.c-seen .age'),
            text: tr.textContent,
            ack: !!tr.querySelector('button.ack'), imgs: tr.querySelectorAll('img').length};
});
"""


def rows(b, table):
    return b.js(ROWS_JS, "#" + table)


def row_of(b, table, rule):
    got = [r for r in rows(b, table) if r["rule"] == rule]
    return got[0] if got else None


def visible(b, element_id):
    return b.js("var e = document.getElementById(arguments[0]);"
                "return !!e && !e.hidden && e.getClientRects().length > 0;", element_id)


def text_of(b, element_id):
    return b.js("var e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
                element_id)


def click(b, css, what):
    """Clicks the first element matching css (a real click), retrying while the
    page replaces it (its 5 s refresh)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    def once():
        try:
            els = b.driver.find_elements(By.CSS_SELECTOR, css)
            if not els:
                return False
            els[0].click()
            return True
        except WebDriverException as e:  # stale, not yet interactable, ...
            raise T.TestFailure("click %s: %s" % (what, str(e).splitlines()[0]))
    T.wait_until(once, 10, "to click %s (%s)" % (what, css))


def fill(b, element_id, text):
    from selenium.webdriver.common.by import By
    el = b.driver.find_element(By.ID, element_id)
    el.clear()
    el.send_keys(text)


# ---------------------------------------------------------------- the browser's log

class BrowserLog:
    """Every entry of the browser's log, judged phase by phase: a SEVERE entry
    fails the test unless the current phase expects it (a network line the
    test caused on purpose)."""

    def __init__(self, browser):
        self.b = browser
        self.bad = []
        self.seen = 0

    def take(self, phase, allowed=()):
        """Reads what the browser logged since the last call; allowed: substrings
        that, all present in a SEVERE network line, make it expected. Returns the
        SEVERE entries' messages."""
        severe = []
        for e in self.b.log_entries():
            self.seen += 1
            msg = e.get("message", "")
            if e.get("level") != "SEVERE":
                continue
            severe.append(msg)
            ok = e.get("source") == "network" and any(all(s in msg for s in group)
                                                       for group in allowed)
            T.log("browser log (%s, %s%s): %s" % (phase, e.get("source"),
                                                  ", expected" if ok else "", msg[:300]))
            if not ok:
                self.bad.append((phase, e))
        return severe

    def check(self):
        T.check(not self.bad, "the browser logged %d error(s): %s" % (
            len(self.bad), "; ".join("[%s] %s: %s" % (p, e.get("source"), e.get("message", "")[:300])
                                     for p, e in self.bad)))


# ---------------------------------------------------------------- the static files

def head_or_get(url, method, headers=None):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        body = e.read()
        e.close()
        return e.code, e.headers, body


def check_static(coll):
    T.log("step: GET / and the dashboard's files: headers and bytes")
    for path, name, ctype in (("/", "dashboard.html", "text/html; charset=utf-8"),
                              ("/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"),
                              ("/dashboard.css", "dashboard.css", "text/css; charset=utf-8"),
                              ("/favicon.svg", "favicon.svg", "image/svg+xml")):
        with open(os.path.join(T.SOURCE_DIR, "web", name), "rb") as f:
            src = f.read()
        st, hd, body = head_or_get(coll.base + path, "GET")
        T.check_eq(st, 200, "GET %s" % path)
        T.check_eq(hd.get("Content-Type"), ctype, "GET %s Content-Type" % path)
        T.check_eq(hd.get("Content-Security-Policy"), CSP, "GET %s Content-Security-Policy" % path)
        T.check_eq(hd.get("X-Content-Type-Options"), "nosniff", "GET %s X-Content-Type-Options" % path)
        T.check_eq(hd.get("Referrer-Policy"), "no-referrer", "GET %s Referrer-Policy" % path)
        T.check_eq(hd.get("Cache-Control"), "no-cache", "GET %s Cache-Control" % path)
        T.check(body == src, "GET %s: %d bytes, web/%s has %d: not the same bytes"
                % (path, len(body), name, len(src)))
        st, hd, body = head_or_get(coll.base + path, "HEAD")
        T.check(st == 200 and body == b"" and hd.get("Content-Security-Policy") == CSP,
                "HEAD %s: %d, %d bytes, CSP %r" % (path, st, len(body), hd.get("Content-Security-Policy")))
        for method in ("POST", "PUT", "DELETE"):
            st, hd, body = head_or_get(coll.base + path, method)
            T.check(st == 405 and json.loads(body).get("error"), "%s %s: %d %r" % (method, path, st, body))
            T.check_eq(hd.get("Allow"), "GET, HEAD", "%s %s: 405's Allow header" % (method, path))
    T.log("step: every 405 names the route's methods in Allow (RFC 9110 15.5.6)")
    auth = {"Authorization": "Bearer " + T.OPERATOR_TOKEN}
    for path, headers, methods, allow in (
            ("/healthz", None, ("POST", "PUT", "DELETE", "PATCH"), "GET, HEAD"),
            ("/metrics", None, ("POST", "DELETE"), "GET, HEAD"),
            ("/api/v1/sites", auth, ("POST", "PUT", "DELETE"), "GET, HEAD"),
            ("/api/v1/alerts", auth, ("DELETE",), "GET, HEAD"),
            ("/api/v1/alerts/1/ack", auth, ("GET", "HEAD", "PUT", "DELETE"), "POST")):
        for method in methods:
            st, hd, body = head_or_get(coll.base + path, method, headers)
            T.check_eq(st, 405, "%s %s" % (method, path))
            T.check_eq(hd.get("Allow"), allow, "%s %s: 405's Allow header" % (method, path))
            if method != "HEAD":
                T.check(json.loads(body).get("error"), "%s %s: a JSON error: %r" % (method, path, body))
    html = head_or_get(coll.base + "/", "GET")[2].decode("utf-8")
    T.check("<script>" not in html and not re.search(r"<[^>]*\s(style|on[a-z]+)\s*=", html)
            and "<style" not in html and "http://" not in html and "https://" not in html,
            "dashboard.html: no inline script or style, no handler attributes, nothing from elsewhere")
    for path in ("/index.html", "/dashboard.html", "/favicon.ico", "/web/dashboard.js"):
        T.check_eq(head_or_get(coll.base + path, "GET")[0], 404, "GET %s" % path)
    st, _ = coll.api("/api/v1/sites", token=None)
    T.check_eq(st, 401, "the data still needs a token: GET /api/v1/sites without one")


# ---------------------------------------------------------------- helpers on the API

def active_alert(coll, rule, site=SITE):
    got = [a for a in coll.api_ok("/api/v1/alerts", {"state": "active", "site": site})
           if a["rule"] == rule]
    return got[0] if got else None


def zoned_time(ts, zone):
    """What the page may show for ts in zone: HH:MM:SS+hh:mm (today there) or the full form."""
    d = datetime.datetime.fromtimestamp(ts // 1000, zoneinfo.ZoneInfo(zone))
    off = d.strftime("%z")
    off = off[:3] + ":" + off[3:]
    return d.strftime("%H:%M:%S") + off, d.strftime("%Y-%m-%dT%H:%M:%S") + off


def check_zoned(shown, ts, zone, what):
    short, full = zoned_time(ts, zone)
    T.check(shown in (short, full), "%s: shows %r, expected %r or %r (%s time)"
            % (what, shown, short, full, zone))


def flood_faults(broker, seq, codes, active):
    """One data message of fault records, one per code, on the flood site's charger."""
    now = int(time.time() * 1000)
    recs = [{"t": "fault", "dev": "chg-f", "ts": now, "code": c, "active": active, "port": 1}
            for c in codes]
    T.publish_ok(broker, "sp/v1/%s/gw-f/data" % FLOOD_SITE,
                 json.dumps({"v": 1, "seq": seq, "ts": now, "records": recs}))


COUNT_ROWS_JS = """
var prefix = arguments[0];
return Array.from(document.querySelectorAll('#active-alerts tbody tr')).filter(function (tr) {
    var r = tr.querySelector('.c-rule');
    return r && r.textContent.indexOf(prefix) === 0;
}).length;
"""


def flood_step(b, coll, broker):
    """The reviewer's case: a critical alert, then more newer major alerts than any list holds."""
    T.log("step: %d newer fault alerts on %s must not hide the critical one" % (FLOOD, FLOOD_SITE))
    now = int(time.time() * 1000)
    T.publish_ok(broker, "sp/v1/%s/gw-f/birth" % FLOOD_SITE, json.dumps(
        {"v": 1, "ts": now, "devices": [{"dev": "chg-f", "kind": "charger", "ports": 1}]}),
        retain=True)
    codes = ["F%04d" % i for i in range(FLOOD)]
    flood_faults(broker, 1, codes[:1000], True)  # a data message holds at most 1000 records
    flood_faults(broker, 2, codes[1000:], True)

    def all_open():
        got = coll.api_ok("/api/v1/alerts", {"state": "active", "site": FLOOD_SITE, "limit": 10000})
        return got if len(got) == FLOOD else None
    flood = T.wait_until(all_open, 40, "%d active fault alerts at %s" % (FLOOD, FLOOD_SITE))
    # what the page used to ask: the default limit, newest first, has no room for the critical
    default = coll.api_ok("/api/v1/alerts", {"state": "active"})
    T.check(len(default) == 1000 and not [a for a in default if a["severity"] == "critical"],
            "the API's default list of active alerts: %d, %d critical (the reviewer's case)"
            % (len(default), len([a for a in default if a["severity"] == "critical"])))

    def page_agrees():
        every = coll.api_ok("/api/v1/alerts", {"state": "active", "limit": 10000})
        want = {s: len([a for a in every if a["severity"] == s])
                for s in ("critical", "major", "minor", "warning")}
        shown = {s: text_of(b, "count-" + s) for s in want}
        crit = b.js("return Array.from(document.querySelectorAll("
                    "'#active-alerts tbody tr.sev-row-critical .c-rule'))"
                    ".map(function (e) { return e.textContent; })")
        cut = text_of(b, "active-truncated") if visible(b, "active-truncated") else ""
        ok = (shown == {s: str(n) for s, n in want.items()} and want["critical"] >= 1
              and "lift.trapped" in crit and len(crit) == want["critical"]
              and "the newest 1000 of %d major" % want["major"] in cut)
        if not ok:  # "not yet", and what the page showed if it never comes
            raise T.TestFailure("the API counts %s; the page shows %s, critical rows %s, "
                                "notice %r" % (want, shown, crit[:5], cut))
        return want, shown, crit, cut
    want, shown, crit, cut = T.wait_until(page_agrees, UI_WAIT_S,
                                          "the page: true counts per severity, lift.trapped "
                                          "listed, and 'the newest 1000 of N major'")
    T.log("counts %s; critical rows %s; notice %r" % (shown, crit, cut))
    T.check_eq(b.js(COUNT_ROWS_JS, "charger.fault.F"), 1000, "flood rows listed (the newest 1000)")
    T.check(b.driver.title.startswith("(%d critical)" % want["critical"]),
            "the tab title counts the critical alerts: %r" % b.driver.title)

    T.log("step: the flood site's alerts in its own zone, %s" % FLOOD_ZONE)
    zones = {s["site"]: s.get("timezone") for s in coll.api_ok("/api/v1/sites")}
    T.check(zones.get(SITE) == "Asia/Shanghai" and zones.get(FLOOD_SITE) == FLOOD_ZONE,
            "/api/v1/sites timezone: %r" % zones)
    newest = max(flood, key=lambda a: (a["opened_at"], a["id"]))
    row = T.wait_until(lambda: row_of(b, "active-alerts", newest["rule"]), UI_WAIT_S,
                       "the newest flood alert's row")
    check_zoned(row["opened"], newest["opened_at"], FLOOD_ZONE, "a %s alert's opened time" % FLOOD_SITE)
    b.screenshot("flood")

    T.log("step: the flood clears")
    flood_faults(broker, 3, codes[:1000], False)
    flood_faults(broker, 4, codes[1000:], False)
    T.wait_until(lambda: not coll.api_ok("/api/v1/alerts", {"state": "active", "site": FLOOD_SITE}),
                 40, "the flood's alerts cleared")
    T.wait_until(lambda: b.js(COUNT_ROWS_JS, "charger.fault.F") == 0
                 and not visible(b, "active-truncated"), UI_WAIT_S,
                 "the flood gone from the page, and its notice")


def publish_x(broker, seq, recs):
    """One data message of gw-x (chg-x's gateway); each record gets ts now."""
    now = int(time.time() * 1000)
    for r in recs:
        r.setdefault("dev", "chg-x")
        r["ts"] = now
    T.publish_ok(broker, "sp/v1/%s/gw-x/data" % SITE,
                 json.dumps({"v": 1, "seq": seq, "ts": now, "records": recs}))


def publish_fault(broker, seq, active, code="X1", detail=XSS):
    publish_x(broker, seq, [{"t": "fault", "code": code, "active": active, "port": 1,
                             "detail": detail}])


# ---------------------------------------------------------------- the page's requests, tampered with

# Wraps window.fetch (which the page calls at each request) once; window.__fetchRules then says
# what to do with the page's GETs: {delay: ms before every GET of api/v1/alerts...,
# html: a path prefix answered 200 with an HTML page, as a misconfigured proxy would}.
FETCH_JS = """
if (!window.__origFetch) {
    window.__origFetch = window.fetch;
    window.fetch = function (u, o) {
        var f = window.__origFetch, r = window.__fetchRules || {}, url = String(u);
        var get = !o || !o.method || o.method === 'GET';
        if (get && r.html && url.indexOf(r.html) === 0)
            return Promise.resolve(new Response('<html><body>Sign in to the proxy</body></html>',
                                                {status: 200, headers: {'Content-Type': 'text/html'}}));
        if (get && r.delay && url.indexOf('api/v1/alerts') === 0)
            return new Promise(function (ok) { setTimeout(ok, r.delay); }).then(function () {
                return f(u, o);
            });
        return f(u, o);
    };
}
window.__fetchRules = arguments[0];
"""


def fetch_rules(b, rules):
    b.js(FETCH_JS, rules)


def hover(b, css):
    """Moves the pointer onto the first element matching css (pointermove events)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    el = b.driver.find_element(By.CSS_SELECTOR, css)
    ActionChains(b.driver).move_to_element(el).move_by_offset(3, 1).perform()


def contrast(b, css):
    """WCAG contrast ratio of the first css element's text colour on its background."""
    fg, bg = b.js("var s = getComputedStyle(document.querySelector(arguments[0]));"
                  "return [s.color, s.backgroundColor];", css)

    def lum(c):
        v = [int(x) / 255 for x in re.findall(r"[0-9.]+", c)[:3]]
        v = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in v]
        return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]
    a, z = sorted((lum(fg), lum(bg)), reverse=True)
    return (a + 0.05) / (z + 0.05), fg, bg


def pause_step(b, coll, broker):
    """A new critical alert while the pointer is on the active alerts table: the rows stay
    (a click hits the alert the operator saw), a line says 1 new, a live region announces it;
    it shows once the pointer leaves."""
    T.log("step: the pointer on the active alerts table holds its rows; a new critical alert waits")
    hover(b, "#active-alerts tbody tr .c-detail")
    before = [r["id"] for r in rows(b, "active-alerts")]
    publish_x(broker, 2, [{"t": "station", "smoke": True}])  # charger.smoke: critical
    smoke = T.wait_until(lambda: active_alert(coll, "charger.smoke"), 20, "charger.smoke in the API")
    hover(b, "#active-alerts tbody tr .c-rule")  # the operator's hand moves on the table
    T.wait_until(lambda: visible(b, "active-alerts-paused") and
                 text_of(b, "active-alerts-paused").startswith("1 new"), UI_WAIT_S,
                 "'1 new — updates paused' above the table")
    T.check(row_of(b, "active-alerts", "charger.smoke") is None,
            "charger.smoke drawn under the pointer: the rows moved")
    T.check_eq([r["id"] for r in rows(b, "active-alerts")], before, "the rows while paused")
    T.check("charger.smoke at %s / chg-x" % SITE in (text_of(b, "announce") or ""),
            "the live region: %r" % text_of(b, "announce"))
    T.check_eq(b.js("return document.getElementById('announce').getAttribute('aria-live')"),
               "assertive", "the live region's aria-live")
    b.screenshot("paused")
    hover(b, "h1")
    r = T.wait_until(lambda: row_of(b, "active-alerts", "charger.smoke"), 3,
                     "charger.smoke drawn once the pointer left the table")
    T.check_eq(r["id"], str(smoke["id"]), "charger.smoke's row")
    T.check(not visible(b, "active-alerts-paused"), "the pause line gone")
    T.log("step: the critical badge and the banner reach WCAG AA (4.5:1)")
    for css in ("#active-alerts .badge.sev-critical", "#banner"):
        ratio, fg, bg = contrast(b, css)
        T.check(ratio >= 4.5, "%s: %s on %s is %.2f:1" % (css, fg, bg, ratio))


def cleared_step(b, coll, broker):
    """The reviewer's case: an alert opened before more than 20 others that cleared first is
    not among the API's 20 newest opened cleared ones when it clears; the page still shows it."""
    T.log("step: a long-open alert that clears last shows in 'Recently cleared'")
    publish_fault(broker, 4, True, code="OLD1", detail="opened early")
    T.wait_until(lambda: active_alert(coll, "charger.fault.OLD1"), 20, "charger.fault.OLD1 open")
    codes = ["N%02d" % i for i in range(25)]

    def newer_active():
        return [a for a in coll.api_ok("/api/v1/alerts", {"state": "active", "site": SITE})
                if a["rule"].startswith("charger.fault.N")]
    publish_x(broker, 5, [{"t": "fault", "code": c, "active": True, "port": 1} for c in codes])
    T.wait_until(lambda: len(newer_active()) == 25, 20, "25 newer alerts")
    publish_x(broker, 6, [{"t": "fault", "code": c, "active": False, "port": 1} for c in codes])
    T.wait_until(lambda: not newer_active(), 20, "the 25 cleared")
    publish_fault(broker, 7, False, code="OLD1", detail="opened early")

    def old_cleared():
        return [a for a in coll.api_ok("/api/v1/alerts", {"state": "cleared", "site": SITE, "limit": 100})
                if a["rule"] == "charger.fault.OLD1"]
    old = T.wait_until(old_cleared, 20, "charger.fault.OLD1 cleared")[0]
    T.check(old["id"] not in [a["id"] for a in coll.api_ok("/api/v1/alerts",
                                                           {"state": "cleared", "limit": 20})],
            "charger.fault.OLD1 is not among the API's 20 newest opened cleared alerts")
    r = T.wait_until(lambda: (lambda x: x if x and x[0]["rule"] == "charger.fault.OLD1" else None)(
        rows(b, "cleared-alerts")), UI_WAIT_S, "charger.fault.OLD1 first in 'Recently cleared'")[0]
    T.check(r["ack"] and r["state"] == "unacknowledged", "its row: %r" % r)


def malformed_step(b):
    """A proxy's HTML page answered 200 to the counts: a failure, not 'no alerts'."""
    T.log("step: an HTML page with 200 instead of the counts: banner, stale, last data kept")
    T.wait_until(lambda: not visible(b, "banner"), UI_WAIT_S, "no banner before")
    crit = text_of(b, "count-critical")
    fetch_rules(b, {"html": "api/v1/alerts/counts"})
    T.wait_until(lambda: visible(b, "banner") and "api/v1/alerts/counts: the answer is not JSON"
                 in text_of(b, "banner"), UI_WAIT_S,
                 "the banner naming the unreadable answer")
    T.check(b.driver.title.startswith("(stale) "), "the tab title: %r" % b.driver.title)
    T.check_eq(text_of(b, "count-critical"), crit, "the critical count kept (not 0)")
    T.check(row_of(b, "active-alerts", "lift.trapped") is not None, "the last alerts kept")
    T.check(b.js("return document.getElementById('top').classList.contains('stale')"),
            "the header's counts marked stale")
    T.check("(stale)" in text_of(b, "updated"), "the header's time: %r" % text_of(b, "updated"))
    b.screenshot("malformed")
    fetch_rules(b, {})
    T.wait_until(lambda: not visible(b, "banner") and not b.driver.title.startswith("(stale)"),
                 UI_WAIT_S, "the banner gone with good answers")


# ---------------------------------------------------------------- the test

def main(env):
    broker = env.broker()
    coll = env.collector(broker, extra={"rule.lift.trapped": {"hold_s": 2},
                                        "site.%s" % FLOOD_SITE: {"timezone": FLOOD_ZONE}})
    check_static(coll)
    b = Browser(env)  # first: the trapped passenger's 60 s start with the agent
    log = BrowserLog(b)
    env.agent(broker, SITE, "gw-1", seed=21, lifts=1, chargers=1, ports=4, heartbeat_s=1,
              time_scale=5, args=["--scenario", "lift-1:trapped_between_floors@2+300"])
    # a second gateway with one charger, whose fault carries hostile text
    now = int(time.time() * 1000)
    T.publish_ok(broker, "sp/v1/%s/gw-x/birth" % SITE, json.dumps(
        {"v": 1, "ts": now, "devices": [{"dev": "chg-x", "kind": "charger", "ports": 2}]}), retain=True)
    T.publish_ok(broker, "sp/v1/%s/gw-x/state" % SITE, json.dumps({"online": True, "ts": now}),
                 retain=True)

    T.log("step: open the dashboard with #token=OPERATOR")
    b.driver.get(coll.base + "/#token=" + T.OPERATOR_TOKEN)
    T.wait_until(lambda: visible(b, "main") and not visible(b, "login"), UI_WAIT_S,
                 "the dashboard's main view (the token taken from the fragment)")
    T.check_eq(b.js("return location.hash"), "", "the fragment, removed from the address bar")
    T.check_eq(b.js("return sessionStorage.getItem('sitepulse.token')"), T.OPERATOR_TOKEN,
               "the token kept in sessionStorage")

    T.log("step: the active lift.trapped alert shows, with its detail")
    api_alert = T.wait_until(lambda: active_alert(coll, "lift.trapped"), 40,
                             "an active lift.trapped alert in the API")
    row = T.wait_until(lambda: row_of(b, "active-alerts", "lift.trapped"), UI_WAIT_S,
                       "the lift.trapped row in the active alerts table")
    T.check_eq(row["detail"], api_alert["detail"], "the row's detail (the API's)")
    T.check("trapped" in row["detail"], "detail %r" % row["detail"])
    T.check(row["where"] == "%s / lift-1" % SITE and row["ack"] and row["state"] == "unacknowledged",
            "the row: %r" % row)
    T.check_eq(row["id"], str(api_alert["id"]), "the row's alert id")
    T.check_eq(b.js("return Intl.DateTimeFormat().resolvedOptions().timeZone"), BROWSER_TZ,
               "the browser's own time zone")
    check_zoned(row["opened"], api_alert["opened_at"], "Asia/Shanghai",
                "lift.trapped's opened time (its site has the default zone)")
    T.wait_until(lambda: int(text_of(b, "count-critical")) >= 1, UI_WAIT_S,
                 "the header's critical count")
    T.check_eq(text_of(b, "health"), "collector ok", "the header's collector health")
    b.screenshot("alert")
    flood_step(b, coll, broker)

    T.log("step: the sites table lists the site; clicking it lists its devices")
    T.wait_until(lambda: SITE in [s.strip() for s in b.js(
        "return Array.from(document.querySelectorAll('#sites tbody button.site'))"
        ".map(function (e) { return e.textContent; })")], UI_WAIT_S, "the site in the sites table")
    T.check(not visible(b, "devices-section"), "the devices section before a site is chosen")
    # what the page asks from here on (the resource timing buffer holds 250 by default)
    b.js("performance.clearResourceTimings(); performance.setResourceTimingBufferSize(100000);")
    click(b, "#sites tbody button.site[title='show the devices of %s']" % SITE, "the site")

    def devices_listed():
        got = {r["dev"]: r for r in rows(b, "devices") if r["dev"]}
        ok = ({"lift-1", "chg-1", "chg-x"} <= set(got) and "floor" in (got["lift-1"]["latest"] or "")
              and "ports:" in (got["chg-1"]["latest"] or ""))
        return got if ok else None
    devs = T.wait_until(devices_listed, UI_WAIT_S, "lift-1, chg-1 and chg-x in the devices table")
    T.check_eq(text_of(b, "devices-site"), SITE, "the devices section's site")
    T.check(devs["lift-1"]["kind"] == "lift" and "online" in devs["lift-1"]["online"],
            "lift-1: %r" % devs["lift-1"])
    T.check("4 ports:" in devs["chg-1"]["latest"], "chg-1's ports in its summary: %r" % devs["chg-1"])
    # every port reports each second: all 4 known, from /devices?current=1 alone
    T.wait_until(lambda: (lambda r: r if r and "4 ports:" in (r["latest"] or "") and "unknown"
                          not in r["latest"] else None)(
        {x["dev"]: x for x in rows(b, "devices")}.get("chg-1")), UI_WAIT_S,
        "chg-1's 4 ports all known in its summary")
    api_devs = {d["dev"]: d for d in coll.api_ok("/api/v1/devices", {"site": SITE, "current": "1"})}
    cur = api_devs["chg-1"].get("current") or []
    T.check_eq(sorted(r["port"] for r in cur if r["t"] == "port"), [1, 2, 3, 4],
               "the ports in chg-1's current state (GET /api/v1/devices?current=1)")
    T.check("current" not in api_devs["lift-1"], "a lift has no current state: %r" % api_devs["lift-1"])
    T.check("current" not in coll.api_ok("/api/v1/devices", {"site": SITE})[0],
            "no current state without current=1")
    asked = b.js("return performance.getEntriesByType('resource').map(function (e) {"
                 " return new URL(e.name).pathname; })")
    T.check(asked.count("/api/v1/devices") >= 1 and "/api/v1/readings" not in asked,
            "the page reads the chargers' ports from /devices, with no /readings request: %r"
            % sorted(set(asked)))
    T.log("devices: %s" % {k: (v["online"], v["latest"]) for k, v in devs.items()})
    log.take("open")

    T.log("step: a device's hostile fault detail shows as text")
    publish_fault(broker, 1, True)
    xrow = T.wait_until(lambda: row_of(b, "active-alerts", "charger.fault.X1"), UI_WAIT_S,
                        "the charger.fault.X1 row")
    T.check(xrow["detail"].endswith(XSS), "the detail, as literal text: %r" % xrow["detail"])
    T.check_eq(b.js("return document.querySelectorAll('#active-alerts img').length"), 0,
               "<img> elements in the alerts table")
    T.wait_until(lambda: any(XSS in (r["latest"] or "") for r in rows(b, "devices")), UI_WAIT_S,
                 "chg-x's fault, as text, in the devices table")
    T.check_eq(b.js("return document.images.length"), 0, "<img> elements in the page")
    T.check("pwned" not in b.driver.title, "document.title: %r" % b.driver.title)
    T.check_eq(b.js("return window.__xss === undefined && document.title.indexOf('pwned') < 0"),
               True, "no script of the detail ran")
    b.screenshot("xss")
    pause_step(b, coll, broker)

    T.log("step: a device whose clock runs an hour ahead: its age says so, not 'just now'")
    now = int(time.time() * 1000)
    rec = {"t": "station", "dev": "chg-ahead", "ts": now + 3600 * 1000, "smoke": False}
    T.publish_ok(broker, "sp/v1/%s/gw-y/data" % SITE,
                 json.dumps({"v": 1, "seq": 1, "ts": now, "records": [rec]}))
    ahead = T.wait_until(lambda: {r["dev"]: r for r in rows(b, "devices")}.get("chg-ahead"),
                         UI_WAIT_S, "chg-ahead in the devices table")
    T.check(ahead["seen"] in ("1 h 0 min ahead of this clock", "59 min ahead of this clock"),
            "chg-ahead's age: %r" % ahead["seen"])
    lift = {r["dev"]: r for r in rows(b, "devices")}["lift-1"]
    T.check(lift["seen"] == "just now" or lift["seen"].endswith(" ago"),
            "lift-1's age: %r" % lift["seen"])

    T.log("step: acknowledge lift.trapped as %r (the name is asked once)" % NAME)
    click(b, "#active-alerts button.ack[data-alert-id='%d']" % api_alert["id"],
          "Acknowledge on lift.trapped")
    T.wait_until(lambda: b.js("return document.getElementById('name-dialog').open"), 10,
                 "the name dialog")
    fill(b, "name-input", NAME)
    # every list of alerts now answers 4 s late: a refresh is in flight across the acknowledgement
    fetch_rules(b, {"delay": 4000})
    click(b, "#name-save", "Save")
    hover(b, "h1")  # off the table: it is not paused, so only the page's bookkeeping keeps the row

    def row_acked():
        r = row_of(b, "active-alerts", "lift.trapped")
        return r if r and not r["ack"] and NAME in r["state"] else None
    T.wait_until(row_acked, 2.5, "the row acknowledged from the ack's answer, at once (the lists "
                 "are 4 s late), without its button")
    T.check("lift.trapped at %s / lift-1" % SITE in text_of(b, "notice-text"),
            "the notice names rule, site and device: %r" % text_of(b, "notice-text"))
    end = time.monotonic() + 9  # the lists asked before the answer arrive meanwhile
    while time.monotonic() < end:
        T.check(row_acked(), "the row after a list asked before the acknowledgement: %r"
                % row_of(b, "active-alerts", "lift.trapped"))
        time.sleep(0.2)
    fetch_rules(b, {})

    def acked():
        a = [x for x in coll.api_ok("/api/v1/alerts", {"site": SITE}) if x["id"] == api_alert["id"]]
        return a[0] if a and a[0]["acked_by"] else None
    a = T.wait_until(acked, UI_WAIT_S, "the API to show lift.trapped acknowledged")
    T.check(a["state"] == "active_ack" and a["acked_by"] == NAME,
            "acknowledged alert: state %r, acked_by %r" % (a["state"], a["acked_by"]))

    def button_gone():
        r = row_of(b, "active-alerts", "lift.trapped")
        return r if r and not r["ack"] and NAME in r["state"] else None
    T.wait_until(button_gone, UI_WAIT_S, "the Acknowledge button to go (state: acknowledged by the name)")
    T.check_eq(b.js("return sessionStorage.getItem('sitepulse.name')"), NAME, "the name kept")
    T.check(NAME in text_of(b, "operator"), "the header shows who acknowledges")
    log.take("acknowledge")
    malformed_step(b)
    log.take("malformed")

    T.log("step: a viewer token: no Acknowledge buttons (GET /api/v1/me), 'read only' in the header")
    b.driver.get(coll.base + "/#token=" + T.VIEWER_TOKEN)
    T.wait_until(lambda: b.js("return sessionStorage.getItem('sitepulse.token')") == T.VIEWER_TOKEN,
                 UI_WAIT_S, "the viewer token taken")
    x = active_alert(coll, "charger.fault.X1")
    T.check(x and x["state"] == "active_unack", "charger.fault.X1 before: %r" % x)
    T.wait_until(lambda: "read only" in text_of(b, "operator"), UI_WAIT_S,
                 "the header to say the viewer token is read only")
    T.wait_until(lambda: (lambda r: r if r and not r["ack"] else None)(
        row_of(b, "active-alerts", "charger.fault.X1")), UI_WAIT_S,
        "charger.fault.X1 listed without an Acknowledge button for a viewer")
    T.check(not any(r["ack"] for r in rows(b, "active-alerts") + rows(b, "cleared-alerts")),
            "no Acknowledge button anywhere for a viewer")
    T.check(not visible(b, "set-name"), "no 'set your name' for a viewer")
    T.check(visible(b, "main") and not visible(b, "login"), "the viewer sees the data")
    b.screenshot("viewer")
    log.take("viewer")

    T.log("step: a refused token (401) asks for a token again; the form takes a good one")
    b.driver.get(coll.base + "/#token=not-a-token-of-this-collector")
    T.wait_until(lambda: visible(b, "login") and "401" in text_of(b, "login-reason"), UI_WAIT_S,
                 "the sign-in form after a 401")
    T.check(not visible(b, "main"), "the data hidden after a 401")
    T.check_eq(b.driver.title, "sitepulse", "the tab title after a 401 (no old counts)")
    T.check_eq(text_of(b, "count-critical"), "–", "the header's critical count after a 401")
    T.check(text_of(b, "health") != "collector ok" and not text_of(b, "updated"),
            "the header's health and time after a 401: %r, %r"
            % (text_of(b, "health"), text_of(b, "updated")))
    T.check_eq(b.js("return sessionStorage.getItem('sitepulse.token')"), None,
               "the refused token dropped from sessionStorage")
    fill(b, "token-input", T.OPERATOR_TOKEN)
    click(b, "#login-form button[type=submit]", "Open")
    T.wait_until(lambda: visible(b, "main") and row_of(b, "active-alerts", "charger.fault.X1"),
                 UI_WAIT_S, "the alerts again after signing in with the form")
    log.take("401", allowed=[("/api/v1/", "401")])

    T.log("step: collector stopped: the banner says so; it goes when the collector is back")
    coll.terminate()
    T.wait_until(lambda: visible(b, "banner") and "collector unreachable" in text_of(b, "banner"),
                 UI_WAIT_S, "the 'collector unreachable' banner")
    T.check_eq(text_of(b, "health"), "collector unreachable", "the header's health while stopped")
    T.check(b.driver.title.startswith("(disconnected) "), "the tab title while stopped: %r"
            % b.driver.title)
    b.screenshot("unreachable")
    refused = [("ERR_CONNECTION_REFUSED",), ("ERR_EMPTY_RESPONSE",), ("ERR_CONNECTION_RESET",)]
    log.take("unreachable", allowed=refused)  # the round that found it gone: one line per request
    T.log("step: while it stays down, one GET /healthz per try, at growing intervals")
    time.sleep(DOWN_S)
    tries = log.take("unreachable", allowed=refused)
    T.check(len(tries) <= 3 and all("/healthz" in m for m in tries),
            "in %d s of a stopped collector the page tried: %r (at most 3 GET /healthz: "
            "5, 10, 20 s apart; not every table every 5 s)" % (DOWN_S, tries))
    T.check("next try in" in text_of(b, "banner"), "the banner: %r" % text_of(b, "banner"))
    coll.start()
    T.wait_until(lambda: not visible(b, "banner") and text_of(b, "health") == "collector ok",
                 UI_WAIT_S + 10, "the banner gone after the collector's restart (30 s at most "
                 "between tries)")
    T.check(not b.driver.title.startswith("(disconnected)"), "the tab title once back: %r"
            % b.driver.title)
    log.take("unreachable", allowed=refused)

    T.log("step: the fault clears: it shows in 'Recently cleared', as text")
    publish_fault(broker, 3, False)

    def cleared_row():
        r = row_of(b, "cleared-alerts", "charger.fault.X1")
        return r if r and XSS in r["detail"] else None
    c = T.wait_until(cleared_row, UI_WAIT_S, "charger.fault.X1 in the recently cleared table")
    T.check(c["ack"] and c["imgs"] == 0, "the cleared row: %r" % c)
    T.check(row_of(b, "active-alerts", "charger.fault.X1") is None, "the cleared fault left the active table")
    T.check_eq(b.js("return document.images.length"), 0, "<img> elements in the page")
    T.check("pwned" not in b.driver.title, "document.title: %r" % b.driver.title)
    b.screenshot("final")
    log.take("final")
    cleared_step(b, coll, broker)

    T.log("step: the broker stopped: /healthz says 503, and so does a banner, not only the pill")
    broker.stop()
    T.wait_until(lambda: visible(b, "banner") and "mqtt" in text_of(b, "banner")
                 and "may not be arriving" in text_of(b, "banner"), UI_WAIT_S,
                 "the 'collector unhealthy: mqtt ...' banner")
    T.log("banner: %s" % text_of(b, "banner"))
    b.screenshot("unhealthy")
    log.take("unhealthy", allowed=[("/healthz", "503")])
    log.check()
    T.log("browser log: %d entries read, none unexpected" % log.seen)


if __name__ == "__main__":
    skip_unless_browser()
    T.run(main)
