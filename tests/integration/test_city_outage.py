#!/usr/bin/env python3
"""
test_city_outage.py - city summaries while the city endpoint is out of
reach (docs/protocol.md "City summary": endpoint out of reach), with a real
HTTP server (sinks.py) that is not there at first.

Nothing listens on the city port while four sites stream, so each site's
summaries wait in the outbox. Wanted:

  - the whole outbox waits for the endpoint: once its backoff has grown,
    the collector tries about once per backoff, not once per site and
    backoff (before the hold, each of the four sites' oldest summaries was
    retried on its own: ~4 attempts per backoff); the log says so;
  - ingest goes on (every record stored);
  - once the endpoint listens again every summary is delivered within a
    backoff or so, each once, each site's periods in order.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import HttpSink  # noqa: E402

PERIOD_MS = 60000
RETRY_MAX_S = 8
SITES = ("co-a", "co-b", "co-c", "co-d")
WINDOW_S = 24


def delivered_keys(http):
    return [r["headers"].get("Idempotency-Key") for r in http.requests()
            if r.get("status") and 200 <= r["status"] < 300]


def main(env):
    city_port = T.free_port()  # nothing listens here until the city "comes back"
    broker = env.broker()
    coll = env.collector(broker, extra={
        "city": {"url": "http://127.0.0.1:%d/api/summaries" % city_port, "token": "t0k3n-city",
                 "period_s": 60, "grace_s": 2, "timeout_s": 2, "retry_min_s": 1,
                 "retry_max_s": RETRY_MAX_S},
    })
    agents = [env.agent(broker, site, "gw-1", seed=60 + i, lifts=1, chargers=0, heartbeat_s=1,
                        batch_ms=200) for i, site in enumerate(SITES)]
    T.wait_until(lambda: all(a.created() > 0 for a in agents), 20, "all agents streaming")

    T.log("step: the endpoint is out of reach; every site's first minute queued (up to ~2.5 min)")
    m = T.wait_until(lambda: (lambda x: x if x["sitepulse_summaries_queued"] >= len(SITES)
                              and x["sitepulse_summaries_failed_total"] >= 5 else None)(
                                  coll.metrics()), 170,
                     "a summary of every site queued and the endpoint's backoff grown", 0.5)
    T.check_eq(m["sitepulse_summaries_sent_total"], 0, "summaries sent with no endpoint")

    T.log("step: %d s of the outage: attempts counted" % WINDOW_S)
    t0 = time.monotonic()
    failed0, built0 = m["sitepulse_summaries_failed_total"], m["sitepulse_summaries_built_total"]
    time.sleep(WINDOW_S)
    m = coll.metrics()
    took = time.monotonic() - t0
    attempts = m["sitepulse_summaries_failed_total"] - failed0
    built = m["sitepulse_summaries_built_total"] - built0
    queued = m["sitepulse_summaries_queued"]
    T.log("%d attempts in %.1f s with %d summaries waiting, %d built meanwhile"
          % (attempts, took, queued, built))
    # the hold: one attempt per backoff of the endpoint's (>= 0.8 x RETRY_MAX_S with jitter),
    # summaries built meanwhile waiting with the rest (test_city_hold_build.py); one per site
    # and backoff would be ~4x as many
    allowed = int(took / (0.8 * RETRY_MAX_S)) + 2
    T.check(attempts <= allowed,
            "%d delivery attempts in %.1f s against an unreachable endpoint with %d sites "
            "waiting (at most %d: the whole outbox waits one backoff of the endpoint's)"
            % (attempts, took, len(SITES), allowed))
    T.check(attempts >= 1, "no attempt at all in %.1f s of the outage" % took)
    T.check("all summaries wait" in coll.proc.log_text(), "the log says the summaries wait")
    T.wait_stored_equals_journal(coll, agents, 30, "every record stored during the outage")

    T.log("step: the endpoint listens again on the same port")
    back = time.monotonic()
    http = HttpSink(env, port=city_port)

    def everything_out():
        built_keys = {"%s:%d" % (x["site"], x["period_start"]) for site in SITES
                      for x in coll.api_ok("/api/v1/summaries", {"site": site})}
        return built_keys <= set(delivered_keys(http))
    T.wait_until(everything_out, RETRY_MAX_S + 15, "every summary built delivered", 0.2)
    T.log("all delivered %.1f s after the endpoint came back" % (time.monotonic() - back))
    keys = delivered_keys(http)
    T.check_eq(len(keys), len(set(keys)), "summaries delivered twice: %r" % keys)
    for site in SITES:
        order = [int(k.split(":")[1]) for k in keys if k.startswith(site + ":")]
        T.check(order and order == sorted(order), "%s delivered in period order: %r" % (site, order))
    for a in agents:
        a.terminate()


if __name__ == "__main__":
    T.run(main)
