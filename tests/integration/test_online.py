#!/usr/bin/env python3
"""
test_online.py - a device's online state (docs/protocol.md, docs/alerts.md
"Offline"): judged by when its readings arrive, not by the ts its clock puts
on them, and the same in /api/v1/sites and /api/v1/devices the moment its
reading is acknowledged.

The site list and the offline sweep read the stored arrival (heard), which
the writer otherwise writes only every device_offline_s / 10 (2 s here); for
a device new or back from a silence it writes it in the reading's own
transaction (collector/writer.c, seen_due_now). With [store]
device_offline_s = 20, fake agents publishing with mosquitto_pub, each step
checked right after the end-to-end ack:
  (1) a new device's first reading: online in both at once; so is one whose
      clock runs 90 s behind (more than device_offline_s) and one whose
      clock runs an hour ahead;
  (2) those three keep reporting while three others fall silent: after
      device_offline_s the silent ones are offline in both and have their
      charger.offline alerts; the one whose clock is behind has none;
  (3) each silent device back (with a clock behind, ahead, right), looked at
      right after its ack: online in both at once — three devices in turn,
      so a flush landing by chance between the ack and the look cannot hide
      a missing write — and its alert clears at its reading's arrival.
Then the gateway's own clock, from the ts of its state messages: one sent at
the start, while the collector's broker link had been up less than
device_offline_s (it may have been kept by the broker), is not judged
though 2 h off; later ones an hour ahead and 2 h behind are logged and
counted in sitepulse_gateway_clocks_off_total, a right one is not. Readings
stamped an hour after they arrived are counted in sitepulse_records_ahead_total
and their devices named in the log; no others.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE, AGENT = "online-1", "gw-on"
OFFLINE_S = 20
REPORTING = ["chg-1", "chg-2", "chg-3"]   # clock right, 90 s behind, an hour ahead
SILENT = ["chg-4", "chg-5", "chg-6"]
DEVICES = REPORTING + SILENT
BEHIND_MS = (OFFLINE_S + 70) * 1000
AHEAD_MS = 3600 * 1000
SKEW = {"chg-1": 0, "chg-2": -BEHIND_MS, "chg-3": AHEAD_MS,
        "chg-4": -BEHIND_MS, "chg-5": AHEAD_MS, "chg-6": 0}


def now_ms():
    return int(time.time() * 1000)


class Fake(T.FakeGateway):
    """The gateway: its devices' readings, each stamped by the device's own clock (SKEW)."""

    def __init__(self, broker):
        super().__init__(broker, SITE, AGENT)
        self.sent = {}  # readings per device

    def reading(self, dev, ts=None):
        """A reading of dev (stamped ts if given); when its ack came."""
        self.sent[dev] = self.sent.get(dev, 0) + 1
        ts = now_ms() + SKEW[dev] if ts is None else ts
        return self.send([{"t": "station", "dev": dev, "ts": ts, "smoke": False, "power_w": 0,
                           "energy_wh": 0}])[1]


def views(coll):
    """(online count of the site list, set of online devices of the device list)."""
    sites = {s["site"]: s for s in coll.api_ok("/api/v1/sites")}
    devs = coll.api_ok("/api/v1/devices", {"site": SITE})
    return sites[SITE]["online"], {d["dev"] for d in devs if d["online"]}


def expect(coll, online, what):
    n, devs = views(coll)
    T.check(devs == set(online), "%s: /api/v1/devices online %s, want %s"
            % (what, sorted(devs), sorted(online)))
    T.check(n == len(online), "%s: /api/v1/sites says %d online, /api/v1/devices %d (%s)"
            % (what, n, len(online), sorted(online)))


def offline_alerts(coll):
    return {a["dev"]: a for a in coll.api_ok("/api/v1/alerts", {"site": SITE, "state": "all"})
            if a["rule"] == "charger.offline"}


def main(env):
    broker = env.broker()
    coll = env.collector(broker, extra={"store": {"device_offline_s": OFFLINE_S}})
    fake = Fake(broker)
    fake.birth([{"dev": d, "kind": "charger", "ports": 2, "port_limit_w": 1000} for d in DEVICES],
               fw="online 0.0")
    # 2 h off, but sent before the collector's link settled: not judged
    fake.state(True, ts=now_ms() - 2 * 3600 * 1000, retain=False)
    T.wait_until(lambda: len(coll.api_ok("/api/v1/devices", {"site": SITE})) == len(DEVICES), 15,
                 "the birth's devices")

    T.log("(1) first readings: clock right, 90 s behind, an hour ahead")
    for i, d in enumerate(REPORTING, 1):
        fake.reading(d)
        expect(coll, REPORTING[:i], "%s's first reading" % d)
    for d in SILENT:
        fake.reading(d)
    silent_since = now_ms()
    expect(coll, DEVICES, "every device's first reading")

    T.log("(2) %s keep reporting, %s fall silent" % (REPORTING, SILENT))
    deadline = silent_since + (OFFLINE_S + 8) * 1000
    while now_ms() < deadline and set(offline_alerts(coll)) != set(SILENT):
        for d in REPORTING:
            fake.reading(d)
        time.sleep(1.0)
    got = offline_alerts(coll)
    T.check_eq(sorted(got), sorted(SILENT), "charger.offline alerts while the others report")
    for d in SILENT:
        a = got.get(d)
        T.check(a is not None and a["cleared_at"] is None and
                a["opened_at"] >= silent_since + OFFLINE_S * 1000 - 5000,
                "%s's alert: opened device_offline_s after its last reading arrived: %r" % (d, a))
    fake.reading(REPORTING[0])
    expect(coll, REPORTING, "the silent ones offline")

    T.log("(3) each silent device back, looked at right after its ack")
    back_at = {}
    for i, d in enumerate(SILENT, 1):
        before = now_ms()
        fake.reading(d)
        back_at[d] = (before, now_ms())
        expect(coll, REPORTING + SILENT[:i], "%s back" % d)
    T.wait_until(lambda: all(a["cleared_at"] for a in offline_alerts(coll).values()), 15,
                 "every charger.offline alert cleared", 0.5)
    for d, a in offline_alerts(coll).items():
        lo, hi = back_at[d]
        T.check(lo - 1000 <= a["cleared_at"] <= hi + 1000,  # (kept in whole seconds, up)
                "%s's alert cleared at %d: when its reading arrived (%d..%d), whatever its ts"
                % (d, a["cleared_at"], lo, hi))
    devs = {d["dev"]: d for d in coll.api_ok("/api/v1/devices", {"site": SITE})}
    T.check(devs["chg-5"]["last_seen"] > now_ms() + AHEAD_MS - 600 * 1000,
            "last_seen stays the device's own clock: %r" % devs["chg-5"]["last_seen"])

    m = coll.metrics()
    T.check_eq(m.get("sitepulse_records_stored_total{kind=\"station\"}", 0), float(fake.seq),
               "station records stored")
    rejected = {k: v for k, v in m.items() if "_rejected_total" in k and v}
    T.check(not rejected, "nothing may be rejected: %r" % rejected)
    T.check_eq(m.get("sitepulse_gateway_clocks_off_total"), 0.0,
               "a state sent before the link settled is not judged")
    ahead = [d for d in DEVICES if SKEW[d] > 0]
    T.check_eq(m.get("sitepulse_records_ahead_total"), float(sum(fake.sent[d] for d in ahead)),
               "readings stamped an hour after they arrived (%s), and only those" % ahead)
    log = coll.proc.log_text()
    for d in ahead:
        T.check("device %s/%s: a reading stamped 3600 s after it arrived" % (SITE, d) in log,
                "the log names %s, whose clock runs ahead" % d)

    T.log("(4) the gateway's clock, from its state messages")
    clocks_off = "sitepulse_gateway_clocks_off_total"
    for n, (skew, words) in enumerate([(AHEAD_MS, "3600 s ahead of"),
                                       (-2 * 3600 * 1000, "7200 s behind")], 1):
        fake.state(True, ts=now_ms() + skew, retain=False)
        T.wait_until(lambda: coll.metrics().get(clocks_off) == float(n), 15,
                     "%s = %d" % (clocks_off, n))
        T.check("gateway %s/%s: its clock is %s the collector's" % (SITE, AGENT, words)
                in coll.proc.log_text(), "the log says the clock is %s ours" % words)
    fake.state(True, retain=False)
    fake.reading(REPORTING[0])  # stored after the state: the state was handled
    T.check_eq(coll.metrics().get(clocks_off), 2.0, "a right clock is not counted")


if __name__ == "__main__":
    T.run(main)
