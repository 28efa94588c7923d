#!/usr/bin/env python3
"""
test_alerts.py - alert rules end to end (docs/alerts.md, CONTRACT §4, §5).

Real mosquitto, collector and agents whose simulators play injected
scenarios (--scenario):
  - site alerts-a: a passenger trapped between floors (lift.trapped, hold
    3 s from [rule.lift.trapped]), a charger port overheating
    (port.over_temp), smoke in the charger cabinet (charger.smoke). Each
    opens exactly one alert, with the hold respected (checked against the
    agent's own journal: the condition held for 3 s of device time before
    opened_at and without a break), and each clears once the scenario ends;
  - site alerts-b: smoke again, but [site.alerts-b.rule.charger.smoke]
    disables the rule there: readings with smoke stored, no alert;
  - the API: /api/v1/alerts filters (state, site, severity, limit, bad
    values 400), active_alerts in /sites and /devices while an alert is
    active, acknowledgement (viewer 403, operator 200 with acked_by, again
    409, unknown 404, GET 405, a body naming who, a bad body 400);
  - /metrics: sitepulse_alerts{state,severity} agrees with the API;
  - a fault raise resent after its own clear went through (site alerts-d,
    raw messages: seq 2 clears E12, then seq 1 raises it, older): no alert,
    counted in sitepulse_fault_raises_stale_total and logged; a late raise
    of another code, never cleared, still opens its alert; and the same
    with a collector restart between the clear and the late raise;
  - a late message of a device the newer messages did not mention (site
    alerts-e, raw messages: seq 2 a lift record, then seq 1 a charger's
    smoke episode) opens and clears its alert; a late smoke record older
    than its charger's newest does not;
  - a device clock set back an hour while its smoke alert is open and a
    port's long-session hold pending (site alerts-f, raw messages, [store]
    clock_step_s = 3): its records are ignored at first, then taken as the
    new time: the alert clears (at its opened_at, never before) and the
    hold, moved and ended in the same batch, leaves no row behind; counted
    in sitepulse_device_clock_steps_total and logged;
  - kill -9 of the collector while a hold is pending (site alerts-c, hold
    8 s): after the restart exactly one alert opens, no earlier than 8 s
    after the condition began.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

HOLD_TRAPPED_S = 3
HOLD_C_S = 8
CLOCK_STEP_S = 3


def post(coll, path, token, body=b""):
    return coll.api_post(path, token, body)


def alerts(coll, **params):
    return coll.api_ok("/api/v1/alerts", dict(params, limit=10000))


def trapped(rec):
    return (rec.get("t") == "lift" and rec.get("occupied") is True and rec.get("door") == "closed"
            and rec.get("dir") == "stop" and rec.get("mode") not in ("inspection", "out_of_service"))


def check_hold(agent, alert, hold_ms):
    """The condition held for hold_ms of device time before opened_at, unbroken."""
    recs = sorted((r for r in agent.journal_records()[0]
                   if r["t"] == "lift" and r["dev"] == alert["dev"]), key=lambda r: r["ts"])
    before = [r for r in recs if r["ts"] <= alert["opened_at"]]
    T.check(before and trapped(before[-1]),
            "%s: the last lift record before opened_at must show the passenger trapped: %r"
            % (alert, before[-1:]))
    since = None
    for r in before:
        since = (since or r["ts"]) if trapped(r) else None
    T.check(since is not None and alert["opened_at"] - since >= hold_ms,
            "alert %d opened %s ms after the condition began (since %s); hold is %d ms"
            % (alert["id"], alert["opened_at"] - since if since else None, since, hold_ms))
    T.check(alert["opened_at"] - since <= hold_ms + 3000,
            "alert %d opened %d ms after the condition began: late (hold %d ms)"
            % (alert["id"], alert["opened_at"] - since, hold_ms))


def site_holds(coll, site):
    """The pending holds stored for a site's devices: [(rule, since)]."""
    db = T.db_open_ro(coll.db_path)
    try:
        return db.execute("SELECT h.rule, h.since FROM alert_holds h JOIN devices d"
                          " ON d.id = h.device_id WHERE d.site = ?", (site,)).fetchall()
    finally:
        db.close()


def one_per_condition(items):
    keys = [(a["rule"], a["site"], a["dev"], a["port"]) for a in items]
    T.check(len(keys) == len(set(keys)), "an alert was opened twice: %r" % items)


def main(env):
    broker = env.broker()
    coll = env.collector(broker, extra={
        "rule.lift.trapped": {"hold_s": HOLD_TRAPPED_S},
        "site.alerts-b.rule.charger.smoke": {"enabled": False},
        "site.alerts-c.rule.lift.trapped": {"hold_s": HOLD_C_S},
        "store": {"clock_step_s": CLOCK_STEP_S},
    })
    common = dict(heartbeat_s=1, time_scale=5, batch_ms=200, resend_s=2, ack_wait_s=1)
    a = env.agent(broker, "alerts-a", "gw-1", seed=11, lifts=1, chargers=1, ports=4,
                  args=["--scenario", "lift-1:trapped_between_floors@2+14",
                        "--scenario", "chg-1/2:port_overheat@2+8",
                        "--scenario", "chg-1:smoke@3+4"], **common)
    b = env.agent(broker, "alerts-b", "gw-1", seed=12, lifts=0, chargers=1, ports=2,
                  args=["--scenario", "chg-1:smoke@2+4"], **common)

    T.log("step: waiting for the trapped passenger's alert to be active")

    def trapped_active():
        got = [x for x in alerts(coll, state="active", site="alerts-a") if x["rule"] == "lift.trapped"]
        return got[0] if got else None
    active = T.wait_until(trapped_active, 40, "an active lift.trapped alert at alerts-a")
    T.check_eq(active["severity"], "critical", "lift.trapped severity")
    T.check_eq(active["state"], "active_unack", "a new alert's state")
    T.check(active["port"] is None and active["cleared_at"] is None and active["acked_at"] is None
            and active["acked_by"] is None, "a new alert's nulls: %r" % active)
    T.check("trapped" in active["detail"], "detail names the situation: %r" % active["detail"])
    sites = {s["site"]: s for s in coll.api_ok("/api/v1/sites")}
    T.check(sites["alerts-a"]["active_alerts"] >= 1, "sites: active_alerts %r" % sites["alerts-a"])
    devs = {d["dev"]: d for d in coll.api_ok("/api/v1/devices", {"site": "alerts-a"})}
    T.check(devs["lift-1"]["active_alerts"] >= 1, "devices: active_alerts %r" % devs["lift-1"])

    T.log("step: acknowledging it (viewer refused, operator accepted, twice refused)")
    st, body = post(coll, "/api/v1/alerts/%d/ack" % active["id"], T.VIEWER_TOKEN)
    T.check_eq(st, 403, "ack with a viewer token")
    st, body = post(coll, "/api/v1/alerts/%d/ack" % active["id"], None)
    T.check_eq(st, 401, "ack without a token")
    st, body = post(coll, "/api/v1/alerts/%d/ack" % active["id"], T.OPERATOR_TOKEN, b"{\"by\":1}")
    T.check_eq(st, 400, "ack with a bad body")
    st, body = post(coll, "/api/v1/alerts/%d/ack" % active["id"], T.OPERATOR_TOKEN,
                    json.dumps({"by": "Li Wei"}).encode())
    T.check_eq(st, 200, "ack by an operator")
    T.check(body["id"] == active["id"] and body["state"] in ("active_ack", "cleared_ack")
            and body["acked_by"] == "Li Wei" and body["acked_at"] > 0, "acked alert: %r" % body)
    st, body = post(coll, "/api/v1/alerts/%d/ack" % active["id"], T.OPERATOR_TOKEN)
    T.check_eq(st, 409, "second ack")
    T.check(isinstance(body, dict) and body.get("error"), "409 body: %r" % body)
    st, _ = post(coll, "/api/v1/alerts/987654321/ack", T.OPERATOR_TOKEN)
    T.check_eq(st, 404, "ack of an unknown alert")
    st, _ = coll.api("/api/v1/alerts/%d/ack" % active["id"], token=T.OPERATOR_TOKEN)
    T.check_eq(st, 405, "GET on the ack route")
    for bad in ({"state": "open"}, {"severity": "fatal"}, {"site": "Bad Site"}, {"limit": "0"}):
        st, data = coll.api("/api/v1/alerts", bad)
        T.check(st == 400 and data.get("error"), "GET /api/v1/alerts %r: %d %r" % (bad, st, data))

    T.log("step: waiting until every alert at alerts-a has cleared")

    def all_cleared():
        got = alerts(coll, site="alerts-a")
        rules = {x["rule"] for x in got}
        done = ({"lift.trapped", "port.over_temp", "charger.smoke"} <= rules
                and all(x["cleared_at"] for x in got if x["rule"] in
                        ("lift.trapped", "port.over_temp", "charger.smoke")))
        return got if done else None
    got = T.wait_until(all_cleared, 60, "lift.trapped, port.over_temp and charger.smoke cleared")
    T.log("alerts at alerts-a: %s" % [(x["id"], x["rule"], x["dev"], x["port"], x["state"]) for x in got])
    by_rule = {}
    for x in got:
        by_rule.setdefault(x["rule"], []).append(x)
    T.check_eq(len(by_rule["lift.trapped"]), 1, "lift.trapped alerts (no spam)")
    T.check_eq(len(by_rule["charger.smoke"]), 1, "charger.smoke alerts")
    T.check_eq(len(by_rule["port.over_temp"]), 1, "port.over_temp alerts")
    t = by_rule["lift.trapped"][0]
    T.check_eq(t["state"], "cleared_ack", "the acknowledged, cleared alert's state")
    T.check(t["cleared_at"] >= t["opened_at"], "cleared after opened: %r" % t)
    check_hold(a, t, HOLD_TRAPPED_S * 1000)
    p = by_rule["port.over_temp"][0]
    T.check_eq(p["port"], 2, "port.over_temp port")
    T.check_eq(p["state"], "cleared_unack", "an unacknowledged, cleared alert's state")
    T.check("°C" in p["detail"], "over_temp detail with the temperature: %r" % p["detail"])
    one_per_condition(got)

    T.log("step: filters and the disabled rule at alerts-b")
    T.check_eq(len(alerts(coll, site="alerts-a", state="active",
                          severity="critical")), 0, "active critical alerts after clearing")
    crit = alerts(coll, site="alerts-a", severity="critical")
    T.check(crit and all(x["severity"] == "critical" for x in crit), "severity filter: %r" % crit)
    T.check_eq(len(coll.api_ok("/api/v1/alerts", {"site": "alerts-a", "limit": 1})), 1, "limit=1")
    ids = [x["id"] for x in alerts(coll)]
    opened = [x["opened_at"] for x in alerts(coll)]
    T.check(opened == sorted(opened, reverse=True), "newest first: %r" % list(zip(ids, opened)))
    T.wait_until(lambda: any(r["t"] == "station" and r.get("smoke") for r in
                             T.stored_records(coll, "alerts-b", ["chg-1"])),
                 30, "smoke readings stored at alerts-b")
    T.check_eq([x for x in alerts(coll, site="alerts-b") if x["rule"] == "charger.smoke"], [],
               "charger.smoke alerts at alerts-b, where the rule is disabled")

    T.log("step: /metrics agrees with the API")
    m = coll.metrics()
    for state in ("active_unack", "active_ack", "cleared_unack", "cleared_ack"):
        for sev in ("critical", "major", "minor", "warning"):
            n = sum(1 for x in alerts(coll) if x["state"] == state and x["severity"] == sev)
            T.check_eq(m['sitepulse_alerts{state="%s",severity="%s"}' % (state, sev)], n,
                       "sitepulse_alerts{%s,%s}" % (state, sev))
    T.check(m["sitepulse_alerts_opened_total"] >= 3, "alerts_opened_total %r" % m)

    T.log("step: a fault raise resent after its own clear (alerts-d, raw messages)")
    late_raise_after_clear(broker, coll)
    late_message_of_another_device(broker, coll)
    T.log("step: a device clock set back while its alert is open (alerts-f, raw messages)")
    clock_set_back(broker, coll)

    T.log("step: kill -9 while a hold is pending (alerts-c, hold %d s)" % HOLD_C_S)
    c = env.agent(broker, "alerts-c", "gw-1", seed=13, lifts=1, chargers=0,
                  args=["--scenario", "lift-1:trapped_between_floors@1+40"], **common)

    def hold_pending():
        return [since for rule, since in site_holds(coll, "alerts-c") if rule == "lift.trapped"]
    since = T.wait_until(hold_pending, 40, "a pending lift.trapped hold at alerts-c")[0]
    coll.kill9()
    T.check_eq([x for x in alerts_after_restart(coll) if x["site"] == "alerts-c"], [],
               "alerts at alerts-c right after the restart (the hold had not run out)")
    x = T.wait_until(lambda: [x for x in alerts(coll, site="alerts-c") if x["rule"] == "lift.trapped"],
                     40, "the alerts-c alert after the restart")
    T.check_eq(len(x), 1, "alerts-c lift.trapped alerts after kill -9 and restart")
    T.check(x[0]["opened_at"] - since >= HOLD_C_S * 1000,
            "alerts-c opened %d ms after the hold began; hold %d s" % (x[0]["opened_at"] - since, HOLD_C_S))
    check_hold(c, x[0], HOLD_C_S * 1000)
    T.wait_until(lambda: len([y for y in alerts(coll, site="alerts-c")]) == 1
                 and c.created() > 0, 10, "alerts-c still one alert")
    for ag in (a, b, c):
        ag.terminate()


def late_raise_after_clear(broker, coll):
    """seq 2 clears lift-x's E12, then seq 1 (behind it: late) raises it 5 s earlier; then
    seq 4 (any record), then seq 3 raises E30, late as well, with no clear anywhere."""
    topic = "sp/v1/alerts-d/gw-x/"
    now = int(time.time() * 1000)
    T.publish_ok(broker, topic + "birth", json.dumps({"v": 1, "ts": now, "devices": [
        {"dev": "lift-x", "kind": "lift", "floors": [0, 6], "rated_speed": 1.0}]}), retain=True)
    T.publish_ok(broker, topic + "state", json.dumps({"online": True, "ts": now}), retain=True)

    def fault(seq, ts, code, active):
        T.publish_ok(broker, topic + "data", json.dumps({"v": 1, "seq": seq, "ts": ts, "records": [
            {"t": "fault", "dev": "lift-x", "ts": ts, "code": code, "active": active}]}))
    stale0 = coll.metrics().get("sitepulse_fault_raises_stale_total", 0)
    fault(2, now, "E12", False)
    fault(1, now - 5000, "E12", True)
    fault(4, now + 1000, "E99", False)
    fault(3, now - 3000, "E30", True)
    T.wait_until(lambda: alerts(coll, site="alerts-d") or None, 30,
                 "the late E30 raise's alert at alerts-d")
    T.wait_until(lambda: len(T.stored_records(coll, "alerts-d", ["lift-x"])) == 4, 20,
                 "the four fault records stored at alerts-d")
    got = alerts(coll, site="alerts-d")
    T.check_eq([(x["rule"], x["state"], x["opened_at"]) for x in got],
               [("lift.fault.E30", "active_unack", now - 3000)],
               "alerts at alerts-d: E30's only, none for E12 (cleared before its raise came)")
    T.check_eq(coll.metrics()["sitepulse_fault_raises_stale_total"], stale0 + 1,
               "sitepulse_fault_raises_stale_total")
    T.check("late fault raise" in coll.proc.log_text(), "the collector's log names the ignored raise")

    # the clear is remembered in the store: a restart between it and the late raise changes nothing
    fault(6, now + 2000, "E40", False)
    T.wait_until(lambda: len(T.stored_records(coll, "alerts-d", ["lift-x"])) == 5, 20,
                 "E40's clear stored at alerts-d")
    coll.restart()
    fault(5, now + 1500, "E40", True)
    T.wait_until(lambda: len(T.stored_records(coll, "alerts-d", ["lift-x"])) == 6, 20,
                 "E40's late raise stored at alerts-d")
    T.check_eq([x["rule"] for x in alerts(coll, site="alerts-d")], ["lift.fault.E30"],
               "alerts at alerts-d after the restart: E40's raise came after its clear, none")
    T.check_eq(coll.metrics()["sitepulse_fault_raises_stale_total"], 1,
               "sitepulse_fault_raises_stale_total of the restarted collector")


def late_message_of_another_device(broker, coll):
    """seq 2 holds only a lift record; seq 1, behind it (late), holds charger chg-e's smoke
    episode: false, true 10 s later, false 20 s after that. The newer message said nothing
    of chg-e, so its records are news: one charger.smoke alert, opened and cleared at their
    times. Then seq 4 says no smoke at T+60 s and seq 3, behind it, smoke at T+50 s: older
    than what chg-e's rules already judged, so no alert (an episode already over)."""
    topic = "sp/v1/alerts-e/gw-x/"
    now = int(time.time() * 1000)
    T.publish_ok(broker, topic + "birth", json.dumps({"v": 1, "ts": now, "devices": [
        {"dev": "lift-e", "kind": "lift", "floors": [0, 6], "rated_speed": 1.0},
        {"dev": "chg-e", "kind": "charger", "ports": 2}]}), retain=True)
    T.publish_ok(broker, topic + "state", json.dumps({"online": True, "ts": now}), retain=True)

    def data(seq, records):
        T.publish_ok(broker, topic + "data", json.dumps(
            {"v": 1, "seq": seq, "ts": max(r["ts"] for r in records), "records": records}))

    def smoke(ts, on):
        return {"t": "station", "dev": "chg-e", "ts": ts, "smoke": on}
    t0 = now - 60000
    data(2, [{"t": "lift", "dev": "lift-e", "ts": t0 + 40000, "floor": 1, "dir": "stop",
              "door": "closed", "door_zone": True, "occupied": False, "mode": "normal"}])
    data(1, [smoke(t0, False), smoke(t0 + 10000, True), smoke(t0 + 30000, False)])
    T.wait_until(lambda: len(T.stored_records(coll, "alerts-e", ["lift-e", "chg-e"])) == 4, 20,
                 "the four records stored at alerts-e")
    def smoke_alerts():
        return [x for x in alerts(coll, site="alerts-e") if x["rule"] == "charger.smoke"]
    T.wait_until(lambda: smoke_alerts() or None, 10,
                 "the smoke alert of the late message at alerts-e")
    got = smoke_alerts()
    T.check_eq([(x["rule"], x["dev"], x["opened_at"], x["cleared_at"]) for x in got],
               [("charger.smoke", "chg-e", t0 + 10000, t0 + 30000)],
               "alerts at alerts-e: the late message's smoke episode, opened and cleared")

    data(4, [smoke(t0 + 60000, False)])
    data(3, [smoke(t0 + 50000, True)])
    T.wait_until(lambda: len(T.stored_records(coll, "alerts-e", ["lift-e", "chg-e"])) == 6, 20,
                 "the two further records stored at alerts-e")
    time.sleep(1.5)  # a tick or two: a hold or alert from the late smoke would show by now
    T.check_eq(len(smoke_alerts()), 1,
               "alerts at alerts-e: none for smoke older than chg-e's newest record")


def clock_set_back(broker, coll):
    """chg-f reports smoke (an alert opens) and port 1 charging (an 8 h hold begins), then its
    clock is set back an hour and it reports no smoke and port 1 idle, in order, once a second:
    ignored while they are behind for less than the clock step, then the clock is taken as set
    back: the alert clears, the hold moves with the clock and ends on the same message."""
    topic = "sp/v1/alerts-f/gw-x/"
    now = int(time.time() * 1000)
    T.publish_ok(broker, topic + "birth", json.dumps({"v": 1, "ts": now, "devices": [
        {"dev": "chg-f", "kind": "charger", "ports": 2}]}), retain=True)
    T.publish_ok(broker, topic + "state", json.dumps({"online": True, "ts": now}), retain=True)

    def smoke(seq, ts, on):
        T.publish_ok(broker, topic + "data", json.dumps({"v": 1, "seq": seq, "ts": ts, "records": [
            {"t": "station", "dev": "chg-f", "ts": ts, "smoke": on},
            {"t": "port", "dev": "chg-f", "ts": ts, "port": 1,
             "state": "charging" if on else "idle"}]}))

    def holds():
        return [rule for rule, _ in site_holds(coll, "alerts-f")]

    def smoke_alerts():
        return [x for x in alerts(coll, site="alerts-f") if x["rule"] == "charger.smoke"]
    steps0 = coll.metrics().get("sitepulse_device_clock_steps_total", 0)
    smoke(1, now, True)
    opened = T.wait_until(lambda: smoke_alerts() or None, 20, "the smoke alert at alerts-f")[0]
    back = now - 3600 * 1000
    smoke(2, back, False)
    T.wait_until(lambda: len(T.stored_records(coll, "alerts-f", ["chg-f"])) == 4, 20,
                 "the first records behind the clock stored at alerts-f")
    T.check_eq([x["cleared_at"] for x in smoke_alerts()], [None],
               "the smoke alert while chg-f's records are behind its clock for less than the step")
    T.check_eq(holds(), ["port.long_session"], "the pending hold at alerts-f")
    seq = 2
    for i in range(1, 4 * CLOCK_STEP_S):
        time.sleep(1)
        seq += 1
        smoke(seq, back + i * 1000, False)
        if smoke_alerts()[0]["cleared_at"] is not None:
            break
    got = T.wait_until(lambda: [x for x in smoke_alerts() if x["cleared_at"]] or None, 10,
                       "the smoke alert at alerts-f cleared once the clock step was taken")
    T.check_eq([(x["id"], x["opened_at"], x["cleared_at"]) for x in got],
               [(opened["id"], now, now)],
               "alerts at alerts-f: the one smoke alert, cleared at its opened_at, never before")
    T.check_eq(holds(), [], "holds at alerts-f once the moved hold ended in the same batch")
    T.check(seq - 2 >= CLOCK_STEP_S, "cleared after %d records sent a second apart; the step is %d s"
            % (seq - 2, CLOCK_STEP_S))
    T.check_eq(coll.metrics()["sitepulse_device_clock_steps_total"], steps0 + 1,
               "sitepulse_device_clock_steps_total")
    T.check("device clock set back" in coll.proc.log_text(),
            "the collector's log names the clock step")


def alerts_after_restart(coll):
    coll.start()
    return alerts(coll)


if __name__ == "__main__":
    T.run(main)
