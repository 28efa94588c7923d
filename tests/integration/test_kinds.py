#!/usr/bin/env python3
"""
test_kinds.py - a device first seen in a fault record, which names no kind
(docs/protocol.md, "Data"; docs/alerts.md, "Faults").

One fake gateway (mosquitto_pub), every message waiting for its ack:
  (1) chg-1 sends a fault raise without a port before any birth: the device
      is stored of kind unknown and the fault opens lift.fault.E7 (the guess
      for a fault without a port). Then the birth says charger, the fault is
      raised again (no second alert), and its clear ends that alert (the old
      collector judged the clear as charger.fault, found nothing to end, and
      left lift.fault.E7 open for ever);
  (2) box-1 the same, but a port record tells its kind: box-1 is a charger
      from then on (the API says so), a lift record of it is refused as
      kind_mismatch, and the fault's clear ends lift.fault.F1;
  (3) box-2: a fault raise, a station record (charger), a restart of the
      collector (the alert reloaded from the store), the clear: the alert
      ends.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE, AGENT = "kinds-1", "gw-kinds"
KIND_MISMATCH = 'sitepulse_records_rejected_total{reason="kind_mismatch"}'


class Clock:
    """Record timestamps, distinct and increasing."""

    def __init__(self):
        self.last = 0

    def __call__(self):
        self.last = max(self.last + 1, T.now_ms())
        return self.last


ts = Clock()


def fault(dev, code, active):
    return {"t": "fault", "dev": dev, "ts": ts(), "code": code, "active": active}


def port(dev):
    return {"t": "port", "dev": dev, "ts": ts(), "port": 1, "state": "idle", "v": 230.0,
            "a": 0.0, "w": 0.0, "temp_c": 25.0, "session_wh": 0.0}


def station(dev):
    return {"t": "station", "dev": dev, "ts": ts(), "smoke": False, "power_w": 0.0}


def lift(dev):
    return {"t": "lift", "dev": dev, "ts": ts(), "floor": 1, "dir": "stop", "door": "closed",
            "door_zone": True, "occupied": False, "speed": 0, "mode": "normal"}


def device(coll, dev):
    return {d["dev"]: d for d in coll.api_ok("/api/v1/devices", {"site": SITE})}.get(dev)


def alerts_of(coll, dev):
    got = coll.api_ok("/api/v1/alerts", {"site": SITE, "limit": 10000})
    return [x for x in got if x["dev"] == dev]


def wait_kind(coll, dev, kind):
    T.wait_until(lambda: (device(coll, dev) or {}).get("kind") == kind, 10,
                 "%s of kind %s in /api/v1/devices" % (dev, kind))


def raise_unknown(coll, gw, dev, code):
    """A fault raise of a device not yet known: stored as unknown, alerted as a lift's fault."""
    gw.send([fault(dev, code, True)])
    got = T.wait_until(lambda: alerts_of(coll, dev), 10, "the alert of %s's fault %s" % (dev, code))
    T.check_eq([(x["rule"], x["state"]) for x in got], [("lift.fault." + code, "active_unack")],
               "%s's alert after a fault raise of unknown kind" % dev)
    T.check_eq(device(coll, dev)["kind"], "unknown", "%s's kind before anything tells it" % dev)
    return got[0]["id"]


def wait_cleared(coll, dev, alert_id, what):
    def cleared():
        got = alerts_of(coll, dev)
        return [x for x in got if x["cleared_at"] is not None] and got
    try:
        got = T.wait_until(cleared, 10, what)
    except T.TestFailure:
        T.log("alerts of %s: %s" % (dev, [(x["id"], x["rule"], x["state"]) for x in alerts_of(coll, dev)]))
        raise
    T.check_eq([(x["id"], x["state"]) for x in got], [(alert_id, "cleared_unack")],
               "%s: the one alert, cleared (no other opened)" % dev)


def main(env):
    broker = env.broker()
    coll = env.collector(broker)
    gw = T.FakeGateway(broker, SITE, AGENT)
    gw.state(True)

    T.log("(1) a charger's fault before its birth, then the birth, then the clear")
    a1 = raise_unknown(coll, gw, "chg-1", "E7")
    gw.birth([{"dev": "chg-1", "kind": "charger", "ports": 2, "port_limit_w": 1000}])
    wait_kind(coll, "chg-1", "charger")
    gw.send([fault("chg-1", "E7", True)])  # raised again: the open alert stays the one
    gw.send([fault("chg-1", "E7", False)])
    wait_cleared(coll, "chg-1", a1, "lift.fault.E7 of chg-1 cleared by its clear after the birth")

    T.log("(2) the kind learnt from a port record; a lift record then refused")
    a2 = raise_unknown(coll, gw, "box-1", "F1")
    m0 = coll.metrics()
    gw.send([port("box-1")])
    wait_kind(coll, "box-1", "charger")
    gw.send([lift("box-1")])
    T.wait_until(lambda: coll.metrics().get(KIND_MISMATCH, 0) - m0.get(KIND_MISMATCH, 0) == 1, 10,
                 "the lift record of charger box-1 refused as kind_mismatch")
    stored = T.stored_records(coll, SITE, ["box-1"])
    T.check_eq(sorted(r["t"] for r in stored), ["fault", "port"], "box-1's stored records")
    gw.send([fault("box-1", "F1", False)])
    wait_cleared(coll, "box-1", a2, "lift.fault.F1 of box-1 cleared once it is a charger")
    T.check_eq(device(coll, "box-1")["kind"], "charger", "box-1's kind at the end")

    T.log("(3) the same across a restart of the collector")
    a3 = raise_unknown(coll, gw, "box-2", "G1")
    gw.send([station("box-2")])
    wait_kind(coll, "box-2", "charger")
    coll.restart()
    gw.send([fault("box-2", "G1", False)])
    wait_cleared(coll, "box-2", a3, "lift.fault.G1 of box-2 cleared after the restart")
    T.check_eq(device(coll, "box-2")["kind"], "charger", "box-2's kind after the restart")

    T.check_eq(coll.metrics().get(KIND_MISMATCH, 0), 0.0, "kind_mismatch rejections since the restart")
    rc, el = coll.terminate()
    T.check(rc == 0 and el <= 5, "collector: SIGTERM -> exit 0 within 5 s, got %s after %.2f s" % (rc, el))


if __name__ == "__main__":
    T.run(main)
