#!/usr/bin/env python3
"""
test_city_restart.py - a period that became due while the collector was down is
summarized only after the data of that period has come in (CONTRACT §3.4: killing the
collector loses nothing; §6: one summary per period, never built again).

[city] period_s = 60, grace_s = 5; one agent streams all along. Once the site's first
minute P1 is summarized, the collector is killed (kill -9) and stays down past the next
minute's end + grace. Meanwhile the broker queues the agent's messages for the collector's
session. Restarted, the collector used to build that minute at once, before it had received
any of it: the city got every device offline (online_pct ~10) and none of the minute's trips,
sessions or alerts, for good. Now the period waits until the collector has been receiving
for grace_s: its summary shows the devices online all minute, as the stored readings do.

While it is down a second gateway announces lift-new and sends its first reading, after the
minute ended: the minute's summary, built once the collector knows lift-new, leaves it out
(it listed every device known at build time, and lift-new got a row of a whole minute's
outage).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE = "cityr-1"
GRACE_S = 5


def summaries(coll):
    return {x["period_start"]: x for x in coll.api_ok("/api/v1/summaries", {"site": SITE})}


def main(env):
    broker = env.broker()
    coll = env.collector(broker, extra={
        "city": {"url": "", "period_s": 60, "grace_s": GRACE_S},
        "store": {"device_offline_s": 10}})
    ag = env.agent(broker, SITE, "gw-1", seed=3, lifts=1, chargers=1, ports=2, heartbeat_s=1,
                   batch_ms=200)

    T.log("step: the site's first summary (up to ~2 min)")
    T.wait_until(lambda: summaries(coll), 150, "the first summary of %s" % SITE, 0.5)
    first = max(summaries(coll))
    p2 = summaries(coll)[first]["period_end"]
    coll.kill9()
    T.log("step: collector killed %.1f s into the next minute; down past its end + grace"
          % ((T.now_ms() - p2) / 1000))
    T.check(T.now_ms() < p2 + 50000, "the kill must come early in the minute it tests")
    T.wait_until(lambda: T.now_ms() >= p2 + 60000 + GRACE_S * 1000 + 3000, 90,
                 "the minute's end + grace to pass", 0.5)

    T.log("step: meanwhile a second gateway announces lift-new and sends its first reading, "
          "after the minute ended")
    gw = T.FakeGateway(broker, SITE, "gw-2")
    gw.state(True)
    gw.birth([{"dev": "lift-new", "kind": "lift", "floors": [0, 6], "rated_speed": 1.0}])
    gw.publish([T.idle_lift("lift-new", T.now_ms())])

    T.log("step: restart; the minute is due at once")
    started = T.now_ms()
    coll.start()
    body = T.wait_until(lambda: summaries(coll).get(p2), 60, "the summary of the minute", 0.3)
    built_after = (body["generated_at"] - started) / 1000
    T.log("built %.1f s after the restart: lifts %s, chargers %s"
          % (built_after, [(x["dev"], x["online_pct"]) for x in body["lifts"]],
             [(x["dev"], x["online_pct"]) for x in body["chargers"]]))
    T.check(built_after >= GRACE_S, "built at least grace_s after the restart, got %.1f s" % built_after)
    devices = body["lifts"] + body["chargers"]
    # lift-new, first heard after the minute, was not there: no row of a whole minute's outage
    T.check_eq(sorted(d["dev"] for d in devices), ["chg-1", "lift-1"], "devices in the summary")
    T.check("lift-new" in {d["dev"] for d in coll.api_ok("/api/v1/devices", {"site": SITE})},
            "lift-new known to the collector when the minute was built")
    for d in devices:
        T.check(d["online_pct"] >= 95, "%s online all minute per the summary, got %s"
                % (d["dev"], d["online_pct"]))
    log = coll.proc.log_text()
    T.check("periods due wait until the collector has been receiving" in log,
            "the INFO line saying why the due period waits")
    T.check("the periods due are built now" in log, "the INFO line when they are built")

    T.log("step: every record of the minute is stored and exactly once")
    T.wait_until(ag.acked_all, 30, "the agent's backlog acknowledged", 0.3)
    recs = [r for r in ag.journal_records()[0] if p2 <= r["ts"] < p2 + 60000]
    T.check(len(recs) > 60, "the agent's records of the minute (%d)" % len(recs))
    stored = [r for r in T.db_site_records(coll.db_path, SITE) if p2 <= r["ts"] < p2 + 60000]
    T.assert_exactly_once(recs, stored, "the minute's records")
    rc, _ = ag.terminate()
    T.check_eq(rc, 0, "agent exit status")
    rc, _ = coll.terminate()
    T.check_eq(rc, 0, "collector exit status")


if __name__ == "__main__":
    T.run(main)
