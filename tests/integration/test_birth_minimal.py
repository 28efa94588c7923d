#!/usr/bin/env python3
"""
test_birth_minimal.py - a birth whose device entries give only dev and kind
(CONTRACT §3.1 marks no field of a birth as required; docs/protocol.md, Birth).

A fake gateway announces lift-1 and chg-1 with nothing but dev and kind, and
lift-2 / chg-2 with everything. Checks:
  - all four devices are known at once (/api/v1/devices: kind, agent), with
    no data yet: the old collector refused the bare entries (missing_field
    floors / ports), so such a device was missing from the API and the
    dashboard until it sent a record;
  - their info holds what the birth gave, nothing made up (no floors, ports);
  - without floors or ports given, a lift's floor and a charger's port are
    checked against the contract's own bounds only (floor 200, port 30 stored);
  - the complete entries still bound them (lift-2 floor 8 of [-1,7], chg-2
    port 13 of 12: out_of_range), and a later complete birth of lift-1 does too.
"""
import sptest as T

SITE = "birth-1"


def main(env):
    broker = env.broker()
    coll = env.collector(broker)
    gw = T.FakeGateway(broker, SITE, "gw-1")
    m0 = coll.metrics()
    gw.birth([{"dev": "lift-1", "kind": "lift"}, {"dev": "chg-1", "kind": "charger"},
              {"dev": "lift-2", "kind": "lift", "floors": [-1, 7], "rated_speed": 1.0, "rated_load": 630},
              {"dev": "chg-2", "kind": "charger", "ports": 12, "port_limit_w": 1000}])

    T.log("step: all four devices known from the birth alone")

    def devices():
        return {d["dev"]: d for d in coll.api_ok("/api/v1/devices", {"site": SITE})}
    T.wait_until(lambda: len(devices()) == 4, 10, "four devices in /api/v1/devices (have %s)"
                 % sorted(devices()))
    devs = devices()
    for dev, kind in (("lift-1", "lift"), ("chg-1", "charger"), ("lift-2", "lift"), ("chg-2", "charger")):
        T.check_eq(devs[dev]["kind"], kind, "%s kind" % dev)
        T.check_eq(devs[dev]["agent"], "gw-1", "%s agent" % dev)
    T.check_eq(devs["lift-1"]["info"], {"dev": "lift-1", "kind": "lift"}, "lift-1 info")
    T.check_eq(devs["chg-1"]["info"], {"dev": "chg-1", "kind": "charger"}, "chg-1 info")
    T.check_eq(devs["lift-2"]["info"]["floors"], [-1, 7], "lift-2 floors")
    T.check_eq(devs["chg-2"]["info"]["ports"], 12, "chg-2 ports")
    rej = {k: v - m0.get(k, 0) for k, v in coll.metrics().items()
           if k.startswith("sitepulse_records_rejected_total") and v - m0.get(k, 0)}
    T.check_eq(rej, {}, "birth entries rejected")

    T.log("step: records checked against what each birth gave")
    now = T.now_ms()
    base = {"t": "lift", "dir": "stop", "door": "closed", "door_zone": True, "occupied": False,
            "mode": "normal"}
    good = [dict(base, dev="lift-1", ts=now, floor=200),
            {"t": "port", "dev": "chg-1", "ts": now, "port": 30, "state": "idle"},
            dict(base, dev="lift-2", ts=now, floor=7),
            {"t": "port", "dev": "chg-2", "ts": now, "port": 12, "state": "idle"}]
    bad = [dict(base, dev="lift-2", ts=now + 1, floor=8),
           {"t": "port", "dev": "chg-2", "ts": now + 1, "port": 13, "state": "idle"}]
    m1 = coll.metrics()
    gw.send(good + bad)
    key = 'sitepulse_records_rejected_total{reason="out_of_range"}'
    T.wait_until(lambda: coll.metrics().get(key, 0) - m1.get(key, 0) >= 2, 10, "two out_of_range")
    for r in good:
        got = coll.api_ok("/api/v1/readings", {"site": SITE, "dev": r["dev"]})
        T.check(any(x["ts"] == r["ts"] for x in got), "%s: record not stored: %s" % (r["dev"], r))

    T.log("step: a complete birth of lift-1 bounds its floors from then on")
    gw.birth([{"dev": "lift-1", "kind": "lift", "floors": [0, 9], "rated_speed": 1.0}])
    T.wait_until(lambda: devices()["lift-1"]["info"].get("floors") == [0, 9], 10, "lift-1's new floors")
    m2 = coll.metrics()
    gw.send([dict(base, dev="lift-1", ts=T.now_ms(), floor=200)])
    T.wait_until(lambda: coll.metrics().get(key, 0) - m2.get(key, 0) >= 1, 10,
                 "floor 200 of lift-1 out_of_range")
    T.check_eq(coll.healthz(), 200, "collector /healthz")


if __name__ == "__main__":
    T.run(main)
