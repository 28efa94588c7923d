#!/usr/bin/env python3
"""
test_offline.py - the offline alerts end to end (docs/alerts.md "Offline";
DOMAIN N01/N02), with [store] device_offline_s = 10 and
[rule.gateway.offline] hold_s = 3, mails to a real SMTP server (sinks.py).
Times are seconds after the agents start:

  - off-a: chg-1 loses its link (link_lost@14+20) while the rest of the site
    reports: one charger.offline alert for chg-1, opened once it has been
    silent for 10 s, cleared by its next reading; nothing for the others;
  - off-b: the agent is stopped at 14 (SIGTERM: its state says offline) and
    started again 20 s later: one gateway.offline alert (dev gw-1), none for
    its devices, cleared once it is back; its devices, silent while it was
    away, open nothing after it returns;
  - off-c: the agent stays connected but sends nothing (:silent@14+25): one
    gateway.offline alert that says so, none for its devices, cleared after;
  - every one of these alerts is mailed, opened and cleared (Message-IDs);
  - then the collector is killed (-9) and kept down for 15 s while the
    agents go on: after its restart, with their backlogs replayed, no
    offline alert opens for devices that were only waiting for it;
  - a new gateway (off-n, raw messages) says online and sends its first data
    3 s later, as an agent waiting for the collector's ack does: no
    gateway.offline alert (its silence runs from its connect).
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import SmtpSink  # noqa: E402

OFFLINE_S = 10
GATEWAY_HOLD_S = 3
OUTAGE_AT = 14


def alerts(coll, **params):
    return coll.api_ok("/api/v1/alerts", dict(params, limit=10000))


def offline_alerts(coll):
    return [a for a in alerts(coll) if a["rule"].endswith(".offline")]


def keyed(items):
    return sorted((a["site"], a["rule"], a["dev"]) for a in items)


def main(env):
    smtp = SmtpSink(env)
    broker = env.broker()
    coll = env.collector(broker, extra={
        "store": {"device_offline_s": OFFLINE_S},
        "rule.gateway.offline": {"hold_s": GATEWAY_HOLD_S},
        "smtp": {"url": smtp.url, "to": "crew@offline.example", "retry_min_s": 1,
                 "retry_max_s": 2},
    })
    common = dict(heartbeat_s=1, time_scale=5, batch_ms=200, resend_s=2, ack_wait_s=1,
                  lifts=1, chargers=2, ports=2)
    a = env.agent(broker, "off-a", "gw-1", seed=21, start=False,
                  args=["--scenario", "chg-1:link_lost@%d+20" % OUTAGE_AT], **common)
    b = env.agent(broker, "off-b", "gw-1", seed=22, start=False, **common)
    c = env.agent(broker, "off-c", "gw-1", seed=23, start=False,
                  args=["--scenario", ":silent@%d+25" % OUTAGE_AT], **common)
    t0 = time.monotonic()
    for ag in (a, b, c):
        ag.start()

    def at(s):
        left = t0 + s - time.monotonic()
        if left > 0:
            time.sleep(left)

    at(OUTAGE_AT)
    T.log("step: off-b's agent stops (SIGTERM); off-a/chg-1 and off-c go quiet by themselves")
    rc, _ = b.terminate(signal.SIGTERM)
    T.check_eq(rc, 0, "off-b agent: SIGTERM exit status")

    want = [("off-a", "charger.offline", "chg-1"), ("off-b", "gateway.offline", "gw-1"),
            ("off-c", "gateway.offline", "gw-1")]
    T.log("step: waiting for exactly the three offline alerts")
    T.wait_until(lambda: keyed(offline_alerts(coll)) == want, 30,
                 "the offline alerts %r" % want, 0.5)
    found = {(x["site"], x["rule"]): x for x in offline_alerts(coll)}
    chg = found[("off-a", "charger.offline")]
    T.check(chg["severity"] == "major" and chg["port"] is None and chg["cleared_at"] is None,
            "charger.offline: %r" % chg)
    T.check("no reading for" in chg["detail"] and "gateway gw-1 is online" in chg["detail"],
            "charger.offline detail: %r" % chg["detail"])
    last = max(r["ts"] for r in a.journal_records()[0] if r["dev"] == "chg-1"
               and r["ts"] < chg["opened_at"])
    # silence runs from when the last reading arrived (the agent batches: a little after its ts)
    T.check(last + OFFLINE_S * 1000 <= chg["opened_at"] <= last + OFFLINE_S * 1000 + 3000,
            "charger.offline opened_at %d = its last reading (ts %d) + device_offline_s"
            % (chg["opened_at"], last))
    gb = found[("off-b", "gateway.offline")]
    T.check("offline for" in gb["detail"] and "connection to the broker ended" in gb["detail"],
            "gateway.offline (stopped) detail: %r" % gb["detail"])
    gc = found[("off-c", "gateway.offline")]
    T.check("silent" in gc["detail"], "gateway.offline (silent) detail: %r" % gc["detail"])
    sites = {s["site"]: s for s in coll.api_ok("/api/v1/sites")}
    T.check(sites["off-b"]["active_alerts"] >= 1, "off-b counts its gateway's alert: %r"
            % sites["off-b"])
    devs = {d["dev"]: d for d in coll.api_ok("/api/v1/devices", {"site": "off-a"})}
    T.check(devs["chg-1"]["active_alerts"] == 1 and not devs["chg-1"]["online"],
            "off-a/chg-1 in /devices: %r" % devs["chg-1"])

    at(OUTAGE_AT + 20)
    T.log("step: off-b's agent starts again; chg-1's link and off-c come back by themselves")
    b.start()
    T.log("step: waiting until every offline alert has cleared")
    T.wait_until(lambda: offline_alerts(coll) and
                 all(x["cleared_at"] for x in offline_alerts(coll)), 40,
                 "every offline alert cleared", 0.5)
    at(OUTAGE_AT + 25 + OFFLINE_S + 5)  # past the devices' grace after the gateways' return
    got = offline_alerts(coll)
    T.check_eq(keyed(got), want, "offline alerts, once everything is back")
    for x in got:
        T.check(x["cleared_at"] >= x["opened_at"], "cleared after opened: %r" % x)
    cleared = {(x["site"], x["rule"]): x for x in got}
    chg = cleared[("off-a", "charger.offline")]
    first_back = min(r["ts"] for r in a.journal_records()[0] if r["dev"] == "chg-1"
                     and r["ts"] > chg["opened_at"])
    T.check(first_back <= chg["cleared_at"] <= first_back + 3000,
            "charger.offline cleared_at %d: chg-1's first reading back %d"
            % (chg["cleared_at"], first_back))

    T.log("step: every offline alert mailed, opened and cleared")
    mids = set()
    for x in got:
        for ev in ("opened", "cleared"):
            mids.add("<sitepulse.alert.%d.%s.%d@%s.sitepulse>" % (x["id"], ev, x["opened_at"],
                                                                 x["site"]))
    T.wait_until(lambda: mids <= set(smtp.message_ids()), 30, "the offline alerts' mails", 0.5)

    T.log("step: the collector down (kill -9) for longer than device_offline_s, then back")
    before = {x["id"] for x in alerts(coll)}
    coll.kill9()
    time.sleep(OFFLINE_S + 5)
    coll.start()
    # sweeps wait for the broker link to be up device_offline_s; give them that and more
    time.sleep(OFFLINE_S + 8)
    new = [x for x in offline_alerts(coll) if x["id"] not in before]
    T.check_eq(new, [], "offline alerts opened after the collector's own outage")

    T.log("step: a new gateway says online, then sends its first data 3 s later (its ack wait)")
    new_gateway(broker, coll)
    m = coll.metrics()
    T.check_eq(m.get("sitepulse_store_ok"), 1.0, "sitepulse_store_ok")
    for ag in (a, b, c):
        rc, _ = ag.terminate(signal.SIGTERM)
        T.check_eq(rc, 0, "%s: SIGTERM exit status" % ag.name)


def new_gateway(broker, coll):
    """A gateway never heard from before publishes its state and, as an agent waits for the
    collector's ack (ack_wait_s) before any data, its first data 3 s later, while sweeps run
    (every second here). Its silence runs from its connect: no gateway.offline alert (it
    was opened at once, dated 1970 and past its hold, when judged from last_seen 0)."""
    topic = "sp/v1/off-n/gw-new/"
    now = int(time.time() * 1000)
    T.publish_ok(broker, topic + "state", json.dumps({"online": True, "ts": now}), retain=True)
    time.sleep(3)
    ts = int(time.time() * 1000)
    T.publish_ok(broker, topic + "birth", json.dumps({"v": 1, "ts": ts, "devices": [
        {"dev": "lift-n", "kind": "lift", "floors": [0, 6], "rated_speed": 1.0}]}), retain=True)
    T.publish_ok(broker, topic + "data", json.dumps({"v": 1, "seq": 1, "ts": ts, "records": [
        {"t": "lift", "dev": "lift-n", "ts": ts, "floor": 1, "dir": "stop", "door": "closed",
         "door_zone": True, "occupied": False, "mode": "normal"}]}))
    T.wait_until(lambda: T.stored_records(coll, "off-n", ["lift-n"]) or None, 10,
                 "off-n/lift-n's first reading stored")
    time.sleep(2)  # a sweep or two after the data
    T.check_eq([(x["rule"], x["opened_at"]) for x in alerts(coll, site="off-n")], [],
               "alerts of the new gateway off-n/gw-new")


if __name__ == "__main__":
    T.run(main)
