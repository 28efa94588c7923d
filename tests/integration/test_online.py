#!/usr/bin/env python3
"""
test_online.py - a device's online state is the same in /api/v1/sites and
/api/v1/devices the moment its reading is acknowledged (docs/protocol.md).

The site list counts from the stored last_seen, which the writer otherwise
writes only every device_offline_s / 10 (6 s here); for a device new or
back from a silence it writes it in the reading's own transaction
(collector/writer.c, seen_due_now). With [store] device_offline_s = 60, fake
agents publishing with mosquitto_pub, each step checked right after the
end-to-end ack:
  (1) a new device's first reading: online in both at once;
  (2) a device whose only reading is 90 s old: offline in both;
  (3) the same device with a reading of now: online in both at once — three
      devices in turn, so a flush landing by chance between the ack and the
      look cannot hide a missing write;
  (4) a device that reports again soon (its last_seen fresh) stays online.
A reading older than the bound never makes a device online.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE, AGENT = "online-1", "gw-on"
OFFLINE_S = 60
DEVICES = ["chg-%d" % i for i in range(1, 5)]


def now_ms():
    return int(time.time() * 1000)


def topic(kind):
    return "sp/v1/%s/%s/%s" % (SITE, AGENT, kind)


class Fake:
    """One fake agent: publishes data messages in seq order and waits for each ack."""

    def __init__(self, broker):
        self.broker = broker
        self.seq = 0

    def send(self, dev, ts):
        self.seq += 1
        rec = {"t": "station", "dev": dev, "ts": ts, "smoke": False, "power_w": 0, "energy_wh": 0}
        T.publish_ok(self.broker, topic("data"), json.dumps(
            {"v": 1, "seq": self.seq, "ts": now_ms(), "records": [rec]}, separators=(",", ":")))
        T.wait_until(lambda: (T.retained_ack(self.broker, SITE, AGENT) or 0) >= self.seq, 15,
                     "ack of seq %d" % self.seq)


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


def main(env):
    broker = env.broker()
    coll = env.collector(broker, extra={"store": {"device_offline_s": OFFLINE_S}})
    birth = {"v": 1, "ts": now_ms(), "fw": "online 0.0",
             "devices": [{"dev": d, "kind": "charger", "ports": 2, "port_limit_w": 1000}
                         for d in DEVICES]}
    T.publish_ok(broker, topic("birth"), json.dumps(birth))
    T.publish_ok(broker, topic("state"), json.dumps({"online": True, "ts": now_ms()}))
    T.wait_until(lambda: len(coll.api_ok("/api/v1/devices", {"site": SITE})) == len(DEVICES), 15,
                 "the birth's devices")
    fake = Fake(broker)

    T.log("(1) a new device's first reading")
    fake.send(DEVICES[0], now_ms())
    expect(coll, DEVICES[:1], "new device")

    T.log("(2) devices whose only reading is older than device_offline_s")
    for d in DEVICES[1:]:
        fake.send(d, now_ms() - (OFFLINE_S + 30) * 1000)
    expect(coll, DEVICES[:1], "readings 90 s old")

    T.log("(3) each back with a reading of now, looked at right after its ack")
    for i, d in enumerate(DEVICES[1:], 2):
        fake.send(d, now_ms())
        expect(coll, DEVICES[:i], "%s back" % d)

    T.log("(4) a device heard from again soon stays online; an old reading changes nothing")
    fake.send(DEVICES[0], now_ms())
    fake.send(DEVICES[1], now_ms() - (OFFLINE_S + 30) * 1000)
    expect(coll, DEVICES, "all back")
    m = coll.metrics()
    T.check_eq(m.get("sitepulse_records_stored_total{kind=\"station\"}", 0), float(fake.seq),
               "station records stored")
    rejected = {k: v for k, v in m.items() if "_rejected_total" in k and v}
    T.check(not rejected, "nothing may be rejected: %r" % rejected)


if __name__ == "__main__":
    T.run(main)
