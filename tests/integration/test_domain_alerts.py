#!/usr/bin/env python3
"""
test_domain_alerts.py - alerts a maintenance crew needs (../shared/DOMAIN.md §4),
end to end: real mosquitto, collector and SMTP sink (sinks.py), and a fake
gateway (mosquitto_pub) whose records the test writes by hand.

  - a passenger shut in a stopped car whose controller reports
    mode out_of_service (as controllers do after stopping a car on a fault):
    lift.trapped opens (it was suppressed in that mode, so nothing but the
    unmailed lift.mode warning), and its mail tells the crew the floor and the
    time in the site's zone with its offset;
  - a leak current hovering at the 30 mA limit (29 and 31 mA by turns):
    one charger.leakage alert, not one per record (hysteresis 0 opened 20
    alerts and sent 8 mails in 40 records);
  - a cabinet at 70 °C (station ambient_c): charger.over_temp opens (only
    ports' temperatures were judged);
  - a car outside the door zone at its top floor (the birth's floors), going
    up, for 25 s: lift.overtravel opens after its 20 s hold and is mailed
    (DOMAIN L03; there was no such rule);
  - a car standing at floor 2 while its door opens and closes again and
    again (door_cycles rising by 5): one lift.door_reopen alert (DOMAIN L14),
    not one per cycle, cleared when the car runs.
"""
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import SmtpSink  # noqa: E402

SITE = "dom-1"


def alerts(coll):
    return coll.api_ok("/api/v1/alerts", {"site": SITE, "state": "all", "limit": 10000})


def door_reopen(gw, coll, t0):
    """lift-3 stands at floor 2; its door opens and closes 7 times (an
    obstruction), door_cycles rising from 5000 to 5007: one alert, opened at
    the 5th cycle; then the car runs and it clears."""
    T.log("step: lift-3 at floor 2, its door cycling 7 times, then the car runs")
    base = T.idle_lift("lift-3", t0)
    base.update(floor=2, door_cycles=5000)
    recs = [base]
    for i in range(1, 8):
        ts = t0 + i * 4000
        recs.append(dict(base, ts=ts, door="open", door_cycles=5000 + i))
        recs.append(dict(base, ts=ts + 2000, door="closed", door_cycles=5000 + i))
    gw.send(recs)

    def reopened():
        got = [a for a in alerts(coll) if a["rule"] == "lift.door_reopen"]
        return got or None
    got = T.wait_until(reopened, 20, "lift.door_reopen opens")
    T.check_eq(len(got), 1, "lift.door_reopen alerts of 7 cycles at one floor")
    a = got[0]
    T.check_eq((a["dev"], a["severity"], a["state"], a["opened_at"]),
               ("lift-3", "minor", "active_unack", t0 + 5 * 4000),
               "lift.door_reopen: device, severity, state, opened_at (the 5th cycle)")
    T.check_eq(a["detail"], "door opened and closed 5 times in 16 s while the car stood at "
               "floor 2 (limit 5): possible door obstruction", "lift.door_reopen detail")

    run = dict(base, ts=t0 + 40000, dir="up", door_zone=False, speed=1.0, door_cycles=5007)
    gw.send([run])

    def cleared():
        now = [x for x in alerts(coll) if x["rule"] == "lift.door_reopen"]
        return now if now and all(x["state"].startswith("cleared") for x in now) else None
    now = T.wait_until(cleared, 20, "lift.door_reopen clears when the car runs")
    T.check_eq(len(now), 1, "still one lift.door_reopen alert")
    T.check_eq((now[0]["id"], now[0]["cleared_at"]), (a["id"], t0 + 40000),
               "the same alert, cleared at the run's record")
    T.check_eq(coll.metrics().get("sitepulse_door_counts_refused_total"), 0,
               "sitepulse_door_counts_refused_total (one lift counted: room to spare)")


def main(env):
    smtp = SmtpSink(env)
    broker = env.broker()
    coll = env.collector(broker, extra={
        "smtp": {"url": smtp.url, "from": "sitepulse@test.example", "to": "ops@test.example",
                 "timeout_s": 2, "retry_min_s": 1, "retry_max_s": 2},
        "site.%s" % SITE: {"mail_to": "crew-1@test.example", "timezone": "Asia/Shanghai"},
        "rule.lift.trapped": {"hold_s": 2},
    })
    gw = T.FakeGateway(broker, SITE, "gw-1")
    gw.birth([{"dev": "chg-1", "kind": "charger", "ports": 2, "port_limit_w": 1000},
              {"dev": "lift-1", "kind": "lift", "floors": [0, 6], "rated_speed": 1.0},
              {"dev": "lift-2", "kind": "lift", "floors": [-1, 7], "rated_speed": 1.0},
              {"dev": "lift-3", "kind": "lift", "floors": [0, 6], "rated_speed": 1.0}])
    gw.state(True)
    T.wait_until(lambda: len(coll.api_ok("/api/v1/devices", {"site": SITE})) == 4, 15,
                 "the birth's four devices")

    T.log("step: 40 s of station records, leak 29/31 mA by turns, cabinet at 70 °C")
    t0 = T.now_ms() - 120000
    gw.send([{"t": "station", "dev": "chg-1", "ts": t0 + i * 1000, "smoke": False,
              "leak_ma": 31 if i % 2 else 29, "ambient_c": 70, "supply_v": 225}
             for i in range(40)])

    T.log("step: a passenger trapped 30 s between floors, the lift out of service")
    rec = T.idle_lift("lift-1", t0)
    rec.update(occupied=True, mode="out_of_service", door_zone=False, floor=3)
    gw.send([rec, dict(rec, ts=t0 + 30000)])

    T.log("step: lift-2 outside the door zone at its top floor 7, going up, for 25 s")
    over = T.idle_lift("lift-2", t0)
    over.update(floor=7, dir="up", door_zone=False, speed=0.3)
    gw.send([over, dict(over, ts=t0 + 25000)])

    def opened():
        c = collections.Counter(a["rule"] for a in alerts(coll))
        return c if {"lift.trapped", "charger.over_temp", "lift.overtravel"} <= set(c) else None
    got = T.wait_until(opened, 20, "lift.trapped, charger.over_temp and lift.overtravel open")
    T.log("alerts: %s" % dict(got))
    T.check_eq(got["charger.leakage"], 1, "charger.leakage alerts of a hovering leak current")
    T.check_eq(got["lift.trapped"], 1, "lift.trapped alerts")
    T.check_eq(got["charger.over_temp"], 1, "charger.over_temp alerts")
    by_rule = {a["rule"]: a for a in alerts(coll)}
    T.check_eq(by_rule["lift.trapped"]["severity"], "critical", "lift.trapped severity")
    T.check_eq(by_rule["lift.trapped"]["opened_at"], t0 + 2000, "lift.trapped opened_at")
    T.check_eq(by_rule["charger.over_temp"]["detail"], "cabinet at 70.0 °C (limit 60 °C)",
               "charger.over_temp detail")
    T.check_eq(got["lift.overtravel"], 1, "lift.overtravel alerts")
    ot = by_rule["lift.overtravel"]
    T.check_eq((ot["dev"], ot["severity"], ot["opened_at"]), ("lift-2", "critical", t0 + 20000),
               "lift.overtravel: device, severity, opened_at")
    T.check_eq(ot["detail"], "car up at floor 7 outside the door zone for 20 s (top floor)",
               "lift.overtravel detail")

    T.log("step: the mails")
    T.wait_until(lambda: coll.metrics()["sitepulse_mail_queued"] == 0 and smtp.messages(), 20,
                 "mails delivered")
    subjects = collections.Counter(str(m["msg"]["Subject"]) for m in smtp.messages())
    T.log("subjects: %s" % dict(subjects))
    T.check_eq(subjects["[sitepulse] CRITICAL charger.leakage at %s/chg-1" % SITE], 1,
               "charger.leakage mails")
    trap = [m for m in smtp.messages()
            if str(m["msg"]["Subject"]) == "[sitepulse] CRITICAL lift.trapped at %s/lift-1" % SITE]
    T.check_eq(len(trap), 1, "lift.trapped mails")
    T.check_eq(subjects["[sitepulse] CRITICAL lift.overtravel at %s/lift-2" % SITE], 1,
               "lift.overtravel mails")
    if trap:
        T.check_eq(trap[0]["rcpts"], ["crew-1@test.example"], "lift.trapped recipients")
        body = trap[0]["msg"].get_payload(decode=True).decode("utf-8")
        T.check("between floors near floor 3" in body, "the mail names the floor: %r" % body)
        T.check("+08:00 (Asia/Shanghai)" in body, "the time with the site's offset: %r" % body)


    door_reopen(gw, coll, t0)


if __name__ == "__main__":
    T.run(main)
