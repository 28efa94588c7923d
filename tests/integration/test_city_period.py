#!/usr/bin/env python3
"""
test_city_period.py - a change of [city] period_s keeps the summaries aligned to the clock
in UTC and never summarizes a stretch of time twice (CONTRACT §6).

One agent streams. The collector runs with period_s = 120 until the site's first summary
is delivered (period P, [s, s + 120 s)), then is restarted with period_s = 60. The next
summary must start at s + 120 s, where the delivered one ended, on a whole minute: the old
collector went on from s + 60 s, so its next summary covered [s + 60 s, s + 120 s) a second
time, and the city counted that minute's trips, sessions and alerts twice.

Then it is restarted with period_s = 120 again. That summary ended at s + 180 s, which is
not on the 2-minute grid: one bridging summary must cover [s + 180 s, s + 240 s), so the
city gets that minute once. The old collector went on at s + 240 s and that minute was in
no summary.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import HttpSink  # noqa: E402

SITE = "cityp-1"


def delivered(http):
    """[(period_start, period_end)] of the summaries answered 2xx, in order."""
    return [(r["json"]["period_start"], r["json"]["period_end"]) for r in http.requests()
            if r.get("status") and 200 <= r["status"] < 300 and r.get("json")
            and r["json"].get("site") == SITE]


def main(env):
    http = HttpSink(env)
    broker = env.broker()
    city = {"url": http.url(), "token": "t", "period_s": 120, "grace_s": 1, "timeout_s": 3,
            "retry_min_s": 1, "retry_max_s": 2}
    coll = env.collector(broker, extra={"city": city})
    ag = env.agent(broker, SITE, "gw-1", seed=5, lifts=1, chargers=1, ports=2, heartbeat_s=1,
                   batch_ms=200)
    T.log("step: the first summary with period_s = 120 (up to ~2 min)")
    T.wait_until(lambda: delivered(http), 150, "the first summary of %s" % SITE, 0.5)
    start, end = delivered(http)[0]
    T.check_eq(end - start, 120000, "the first period's length")
    T.check_eq(start % 120000, 0, "the first period aligned to 2 min")

    T.log("step: restart with period_s = 60; the next summary follows on at %d" % end)
    coll.terminate()
    city["period_s"] = 60
    coll.extra["city"] = city
    coll.write_config()
    coll.start()
    T.wait_until(lambda: len(delivered(http)) >= 2, 90, "the next summary of %s" % SITE, 0.5)
    periods = delivered(http)
    T.log("periods delivered: %s" % periods)
    nxt = periods[1]
    T.check_eq(nxt[0], end, "the next period's start: where the last one ended, no minute twice")
    T.check_eq(nxt[1] - nxt[0], 60000, "the next period's length (period_s = 60)")
    T.check_eq(nxt[0] % 60000, 0, "the next period aligned to the minute")
    listed = sorted(x["period_start"] for x in coll.api_ok("/api/v1/summaries", {"site": SITE}))
    T.check_eq(listed[:2], [start, end], "/api/v1/summaries: the two periods, none in between")

    end2 = nxt[1]
    T.log("step: restart with period_s = 120; %d is off its grid: a bridge to %d"
          % (end2, end2 + 60000))
    coll.terminate()
    city["period_s"] = 120
    coll.extra["city"] = city
    coll.write_config()
    coll.start()
    T.wait_until(lambda: len(delivered(http)) >= 3, 90, "the bridging summary of %s" % SITE, 0.5)
    bridge = delivered(http)[2]
    T.log("periods delivered: %s" % delivered(http))
    T.check_eq(bridge[0], end2, "the bridge starts where the last summary ended")
    T.check_eq(bridge[1], end2 + 60000, "the bridge ends at the next whole 2 minutes")
    T.check_eq(bridge[1] % 120000, 0, "the bridge's end aligned to 2 min")
    T.check("bridging summary" in coll.proc.log_text(), "the collector logs the bridge")
    ag.terminate()


if __name__ == "__main__":
    T.run(main)
