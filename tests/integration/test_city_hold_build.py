#!/usr/bin/env python3
"""
test_city_hold_build.py - a city endpoint that does not answer does not slow
the building of summaries (docs/protocol.md "City summary": the endpoint out
of reach), with a real HTTP server on loopback (sinks.py) that reads each
request and never answers.

Twenty sites (one agent each, one lift) start early in one minute; when it
ends the collector builds their twenty summaries, BUILD_BUDGET (8) per turn
of its city thread, the thread that also delivers them. Wanted:

  - all twenty are built while at most two attempts reach the endpoint: the
    first goes unanswered (timeout_s), and the summaries built after it wait
    for the endpoint's backoff with the rest. Before, the first summary of
    each turn's new ones was tried at once, each attempt taking timeout_s:
    three attempts, and a thousand sites' period an hour late in the outbox;
  - once the endpoint answers, every summary is delivered, each once, each
    site's periods in order.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import HttpSink  # noqa: E402

PERIOD_MS = 60000
SITES = ["hb-%02d" % i for i in range(20)]
TIMEOUT_S = 4
RETRY_MIN_S = 12  # the endpoint's first backoff: longer than building twenty takes
RETRY_MAX_S = 24


def built(coll):
    """{site: [period_start, ...]} of the summaries the collector built."""
    return {site: [x["period_start"] for x in coll.api_ok("/api/v1/summaries", {"site": site})]
            for site in SITES}


def main(env):
    http = HttpSink(env, mode="hang")
    broker = env.broker()
    coll = env.collector(broker, extra={
        "city": {"url": http.url(), "token": "t0k3n-city", "period_s": 60, "grace_s": 2,
                 "timeout_s": TIMEOUT_S, "retry_min_s": RETRY_MIN_S,
                 "retry_max_s": RETRY_MAX_S},
    })

    T.log("step: waiting for the start of a minute, then twenty sites stream")
    for _ in range(700):  # bounded: at most 70 s
        if 1000 <= int(time.time() * 1000) % PERIOD_MS <= 15000:
            break
        time.sleep(0.1)
    minute = int(time.time() * 1000) // PERIOD_MS * PERIOD_MS  # each site's first period
    agents = [env.agent(broker, site, "gw-1", seed=90 + i, lifts=1, chargers=0, heartbeat_s=2,
                        batch_ms=500) for i, site in enumerate(SITES)]
    T.wait_until(lambda: all(a.created() > 0 for a in agents), 30, "all agents streaming")

    T.log("step: the minute ends; every site's summary of it is built (up to ~1.5 min)")
    T.wait_until(lambda: all(minute in v for v in built(coll).values()), 100,
                 "the summaries of minute %d of all %d sites" % (minute, len(SITES)), 0.2)
    tried = http.requests()
    T.log("%d summaries built; %d attempts reached the endpoint meanwhile"
          % (sum(len(v) for v in built(coll).values()), len(tried)))
    T.check(1 <= len(tried) <= 2,
            "%d delivery attempts while %d summaries were built against an endpoint that "
            "does not answer (timeout_s %d, backoff %d s): at most 2, the rest waits for the "
            "endpoint's backoff; keys %r" % (len(tried), len(SITES), TIMEOUT_S, RETRY_MIN_S,
                                            [r["headers"].get("Idempotency-Key") for r in tried]))

    T.log("step: the endpoint answers again")
    http.set_mode("ok")

    def everything_out():
        want = {"%s:%d" % (site, p) for site, v in built(coll).items() for p in v}
        return want <= set(http.keys(delivered_only=True))
    T.wait_until(everything_out, RETRY_MAX_S + 30, "every summary built delivered", 0.5)
    keys = http.keys(delivered_only=True)
    T.check_eq(len(keys), len(set(keys)), "summaries delivered twice: %r" % keys)
    for site in SITES:
        order = [int(k.split(":")[1]) for k in keys if k.startswith(site + ":")]
        T.check(order == sorted(order), "%s delivered in period order: %r" % (site, order))
    for a in agents:
        a.terminate()


if __name__ == "__main__":
    T.run(main)
