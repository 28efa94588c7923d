#!/usr/bin/env python3
"""
test_city.py - city summaries end to end (CONTRACT §6), with a real HTTP
server on loopback (sinks.py) as the city endpoint.

[city] period_s = 60 (the smallest), grace_s = 2. Two sites stream; the
test waits for each site's first whole minute with data to be summarized
and checks:
  - the POST: Content-Type application/json, Authorization: Bearer TOKEN,
    Idempotency-Key SITE:PERIOD_START; periods aligned to the minute in UTC;
  - the body: CONTRACT §6's fields and types; every lift and charger of
    the site; counters consistent with the agent's journal (trips and
    door_cycles deltas, sessions, energy); online_pct 100 for a device that
    reported all minute; the alerts block for a smoke alarm in the minute;
  - a hanging endpoint (reads the request, never answers): the collector
    keeps ingesting (/healthz 200, every record stored), summaries wait in
    the outbox (summaries_queued >= 1, summaries_failed_total grows); once
    it answers again every period is delivered, each site's in order, and
    each Idempotency-Key is answered 2xx exactly once;
  - GET /api/v1/summaries?site= lists what was built, newest first;
  - kill -9 and restart: no period is summarized twice or skipped;
  - a flooding device (site city-c, raw messages: more readings in one
    minute than [city] device_records_max) is left out of that minute's
    summary, logged and counted; its neighbour is in it, and the site's
    summaries go on.
"""
import collections
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import HttpSink  # noqa: E402

PERIOD_MS = 60000
TOKEN = "city-token-0123456789"
RECORDS_MAX = 5000  # [city] device_records_max: far above what the simulated devices send


def delivered(http):
    """{key: [bodies answered 2xx]}"""
    out = collections.defaultdict(list)
    for r in http.requests():
        if r.get("status") and 200 <= r["status"] < 300:
            out[r["headers"].get("Idempotency-Key")].append(r)
    return out


def first_full_period(agent):
    """The start of the first whole minute after the agent's first record."""
    recs = agent.journal_records()[0]
    first = min(r["ts"] for r in recs)
    return (first // PERIOD_MS + 1) * PERIOD_MS


def journal_between(agent, dev, start, end):
    return sorted((r for r in agent.journal_records()[0]
                   if r["dev"] == dev and start <= r["ts"] < end), key=lambda r: r["ts"])


def flood(broker):
    """Site city-c: lift-ok sends one reading and lift-flood RECORDS_MAX + 20, all within the
    first 8 s of one minute (waiting, bounded, until that much of it has passed). Returns the
    minute's start."""
    for _ in range(100):
        now = int(time.time() * 1000)
        if now % PERIOD_MS >= 8000:
            break
        time.sleep(0.1)
    start = now - now % PERIOD_MS
    topic = "sp/v1/city-c/gw-c/"
    T.publish_ok(broker, topic + "birth", json.dumps({"v": 1, "ts": now, "devices": [
        {"dev": d, "kind": "lift", "floors": [0, 6], "rated_speed": 1.0}
        for d in ("lift-ok", "lift-flood")]}), retain=True)
    T.publish_ok(broker, topic + "state", json.dumps({"online": True, "ts": now}), retain=True)

    def lift(dev, ts):
        return {"t": "lift", "dev": dev, "ts": ts, "floor": 1, "dir": "stop", "door": "closed",
                "door_zone": True, "occupied": False, "speed": 0, "mode": "normal",
                "power": "mains", "safety_ok": True}
    lines = [json.dumps({"v": 1, "seq": 1, "ts": start + 500, "records": [lift("lift-ok", start + 500)]})]
    n = RECORDS_MAX + 20
    for m in range(n // 20):
        ts0 = start + 1000 + m * 20
        lines.append(json.dumps({"v": 1, "seq": 2 + m, "ts": ts0 + 19, "records": [
            lift("lift-flood", ts0 + i) for i in range(20)]}))
    rc, out = T.publish_lines(broker, topic + "data", lines)
    T.check(rc == 0, "mosquitto_pub -l of city-c's flood: exit %d %s" % (rc, out))
    return start


def check_body(body, site, start, agent):
    T.check_eq(body["v"], 1, "v")
    T.check_eq(body["site"], site, "site")
    T.check_eq(body["period_start"], start, "period_start")
    T.check_eq(body["period_end"], start + PERIOD_MS, "period_end")
    T.check(body["generated_at"] >= start + PERIOD_MS, "generated after the period: %r" % body)
    lifts = {x["dev"]: x for x in body["lifts"]}
    chargers = {x["dev"]: x for x in body["chargers"]}
    T.check_eq(sorted(lifts), sorted(d for d in agent.devices if d.startswith("lift")), "lifts")
    T.check_eq(sorted(chargers), sorted(d for d in agent.devices if d.startswith("chg")), "chargers")
    for dev, x in lifts.items():
        for k in ("trips", "door_cycles", "run_s", "downtime_s", "trapped"):
            T.check(isinstance(x[k], int) and x[k] >= 0, "%s %s: %r" % (dev, k, x[k]))
        for k in ("availability_pct", "online_pct"):
            T.check(isinstance(x[k], (int, float)) and 0 <= x[k] <= 100, "%s %s: %r" % (dev, k, x[k]))
        T.check(isinstance(x["faults"], dict), "%s faults: %r" % (dev, x["faults"]))
        recs = journal_between(agent, dev, start - 3600000, start + PERIOD_MS)
        inside = [r for r in recs if r["ts"] >= start and "trips" in r]
        before = [r for r in recs if r["ts"] < start and "trips" in r]
        if inside and before:
            T.check_eq(x["trips"], inside[-1]["trips"] - before[-1]["trips"], "%s trips" % dev)
            T.check_eq(x["door_cycles"], inside[-1]["door_cycles"] - before[-1]["door_cycles"],
                       "%s door_cycles" % dev)
        T.check_eq(x["online_pct"], 100, "%s online_pct (reported all minute)" % dev)
    for dev, x in chargers.items():
        sessions = [r for r in journal_between(agent, dev, start, start + PERIOD_MS)
                    if r["t"] == "session"]
        T.check_eq(x["sessions"], len(sessions), "%s sessions" % dev)
        T.check_eq(x["energy_wh"], int(round(sum(s["wh"] for s in sessions))), "%s energy_wh" % dev)
        T.check_eq(sum(x["stops"].values()), len(sessions), "%s stops" % dev)
        T.check(0 <= x["utilization_pct"] <= 100, "%s utilization_pct %r" % (dev, x["utilization_pct"]))
        T.check_eq(x["online_pct"], 100, "%s online_pct" % dev)
    al = body["alerts"]
    for k in ("opened", "cleared", "active_at_end"):
        T.check(isinstance(al[k], int) and al[k] >= 0, "alerts.%s: %r" % (k, al))
    T.check(isinstance(al["by_severity"], dict), "alerts.by_severity: %r" % al)
    return body


def main(env):
    http = HttpSink(env)
    broker = env.broker()
    coll = env.collector(broker, extra={
        "city": {"url": http.url("/api/summaries"), "token": TOKEN, "period_s": 60, "grace_s": 2,
                 "timeout_s": 3, "retry_min_s": 1, "retry_max_s": 2,
                 "device_records_max": RECORDS_MAX},
    })
    common = dict(heartbeat_s=1, time_scale=5, batch_ms=200, resend_s=2, ack_wait_s=1)
    a = env.agent(broker, "city-a", "gw-1", seed=31, lifts=2, chargers=1, ports=4, **common)
    b = env.agent(broker, "city-b", "gw-1", seed=32, lifts=1, chargers=1, ports=2,
                  args=["--scenario", "chg-1:smoke@1+500"], **common)
    T.wait_until(lambda: a.created() > 0 and b.created() > 0, 20, "both agents streaming")
    start_c = flood(broker)
    start_a, start_b = first_full_period(a), first_full_period(b)
    key_a, key_b = "city-a:%d" % start_a, "city-b:%d" % start_b

    T.log("step: waiting for the first whole minute of each site to be delivered (up to ~2 min)")
    T.wait_until(lambda: key_a in delivered(http) and key_b in delivered(http), 150,
                 "summaries %s and %s delivered" % (key_a, key_b), 0.5)
    for key, site, start, ag in ((key_a, "city-a", start_a, a), (key_b, "city-b", start_b, b)):
        req = delivered(http)[key][0]
        T.check_eq(req["path"], "/api/summaries", "POST path")
        T.check_eq(req["headers"].get("Authorization"), "Bearer " + TOKEN, "Authorization")
        T.check(req["headers"].get("Content-Type", "").startswith("application/json"),
                "Content-Type: %r" % req["headers"])
        T.check_eq(start % PERIOD_MS, 0, "period aligned to the minute")
        body = check_body(req["json"], site, start, ag)
        T.log("%s: %s" % (key, json.dumps(body)[:600]))
    smoke = [x for x in coll.api_ok("/api/v1/alerts", {"site": "city-b"}) if x["rule"] == "charger.smoke"]
    T.check(smoke, "charger.smoke at city-b")
    b_body = delivered(http)[key_b][0]["json"]
    if smoke and smoke[0]["opened_at"] < start_b:
        T.check(b_body["alerts"]["active_at_end"] >= 1, "the smoke alarm active at the end: %r"
                % b_body["alerts"])
        T.check(b_body["alerts"]["by_severity"].get("critical", 0) >= 0, "by_severity")

    T.log("step: the flooding device at city-c, left out of its minute's summary")
    key_c = "city-c:%d" % start_c
    T.wait_until(lambda: key_c in delivered(http), 90, "summary %s delivered" % key_c, 0.5)
    body = delivered(http)[key_c][0]["json"]
    T.check_eq([x["dev"] for x in body["lifts"]], ["lift-ok"],
               "city-c's lifts in %s: lift-flood left out" % key_c)
    T.check_eq(len(T.stored_records(coll, "city-c", ["lift-flood"])), RECORDS_MAX + 20,
               "lift-flood's readings, all stored")
    T.check(coll.metrics()["sitepulse_summary_devices_left_out_total"] >= 1,
            "sitepulse_summary_devices_left_out_total")
    T.check("lift-flood left out" in coll.proc.log_text(), "the log names the device left out")

    T.log("step: the endpoint hangs; ingest goes on, summaries wait")
    http.set_mode("hang")
    failed0 = coll.metrics()["sitepulse_summaries_failed_total"]
    with T.HealthProbe(coll) as probe:
        T.wait_until(lambda: coll.metrics()["sitepulse_summaries_failed_total"] > failed0, 150,
                     "a delivery attempt to time out against the hanging endpoint", 0.5)
        T.check(coll.metrics()["sitepulse_summaries_queued"] >= 1, "summaries wait in the outbox")
        T.wait_stored_equals_journal(coll, [a], 30, "city-a stored while the endpoint hangs")
    T.check(not probe.bad, "/healthz was not 200 while the endpoint hung: %r" % probe.bad[:5])

    T.log("step: kill -9 and restart, then the endpoint answers again")
    coll.kill9()
    coll.start()
    http.set_mode("ok")
    coll.wait_healthy(20)

    def all_delivered():
        # what the collector built (the API) has all been answered 2xx (the sink); the queued
        # gauge alone would not do: it reads 0 for a moment after a restart
        built = {"%s:%d" % (x["site"], x["period_start"]) for site in ("city-a", "city-b")
                 for x in coll.api_ok("/api/v1/summaries", {"site": site})}
        return built and built <= set(delivered(http)) and \
            coll.metrics()["sitepulse_summaries_queued"] == 0
    T.wait_until(all_delivered, 60, "every summary built delivered", 0.5)
    d = delivered(http)
    for key, reqs in d.items():
        T.check_eq(len(reqs), 1, "2xx answers for %s" % key)
    for site in ("city-a", "city-b"):
        starts = sorted(int(k.split(":")[1]) for k in d if k.startswith(site + ":"))
        T.check(starts == list(range(starts[0], starts[-1] + 1, PERIOD_MS)),
                "%s: every period once, none skipped: %r" % (site, starts))
        order = [int(r["headers"]["Idempotency-Key"].split(":")[1]) for r in http.requests()
                 if r["headers"].get("Idempotency-Key", "").startswith(site + ":")
                 and 200 <= (r.get("status") or 0) < 300]
        T.check(order == sorted(order), "%s delivered in period order: %r" % (site, order))
        listed = coll.api_ok("/api/v1/summaries", {"site": site})
        T.check_eq([x["period_start"] for x in listed], sorted(starts, reverse=True),
                   "%s: /api/v1/summaries, newest first, is what was delivered" % site)
    st, data = coll.api("/api/v1/summaries")
    T.check(st == 400 and data.get("error"), "summaries without site: %d %r" % (st, data))

    m = coll.metrics()
    T.check(m["sitepulse_summaries_sent_total"] >= 1, "summaries_sent_total after the restart")
    for ag in (a, b):
        ag.terminate()


if __name__ == "__main__":
    T.run(main)
