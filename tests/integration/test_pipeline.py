#!/usr/bin/env python3
"""
test_pipeline.py - the whole pipeline without faults.

Three agents (three sites, seeds 1..3, 2 lifts and 2 chargers x 6 ports each,
fast simulator) stream through one mosquitto to one collector for about 8 s;
then the agents stop with SIGTERM (exit 0) and the test waits (bounded) until
the collector serves exactly the records the agents' journals list. Checks:
  - exactly once per site, the retained end-to-end ack reaches the last seq;
  - every lift / station / port reports at least every heartbeat (1 s);
  - /api/v1/sites, /api/v1/devices (kind, agent, latest, online, last_seen);
  - /api/v1/readings: newest first, t=, from=, to=, limit=;
  - 401 without / with a wrong token, 400 for bad parameters, 404 unknown device;
  - every metric name of CONTRACT §5 exists; messages_stored_total equals the
    number of created messages, records_stored_total{kind} the records by kind;
  - an agent whose last data and goodbye ({"online":false}) are handled together
    is offline afterwards.
"""
import collections
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITES = [("pipe-1", "gw-1", 1), ("pipe-2", "gw-2", 2), ("pipe-3", "gw-3", 3)]
RUN_S = 8.0


def check_error_body(data, what):
    T.check(isinstance(data, dict) and isinstance(data.get("error"), str) and data["error"],
            "%s: error body must be {\"error\":\"...\"}, got %r" % (what, data))


def main(env):
    broker = env.broker()
    coll = env.collector(broker)
    agents = [env.agent(broker, site, aid, seed=seed, lifts=2, chargers=2, ports=6,
                        heartbeat_s=1, time_scale=20, batch_ms=200, resend_s=2, ack_wait_s=1)
              for site, aid, seed in SITES]
    t_start = time.monotonic()

    with T.HealthProbe(coll) as probe:
        T.log("step: streaming; waiting until all 12 devices are online")

        def all_online():
            st, sites = coll.api("/api/v1/sites")
            if st != 200:
                return False
            by = {s["site"]: s for s in sites}
            return all(site in by and by[site]["devices"] == 4 and by[site]["online"] == 4
                       for site, _, _ in SITES) and by
        sites = T.wait_until(all_online, 20, "/api/v1/sites to show 3 sites x 4 online devices")
        T.log("sites while streaming: %s" % sorted(sites.values(), key=lambda s: s["site"]))
        for site, aid, _ in SITES:
            devs = coll.api_ok("/api/v1/devices", {"site": site})
            T.check(all(d["online"] is True for d in devs),
                    "devices of %s must be online while the agent streams: %r" % (site, devs))

        T.log("step: letting the agents run until %.0f s have passed" % RUN_S)
        T.wait_until(lambda: time.monotonic() - t_start >= RUN_S and all(a.created() >= 5 for a in agents),
                     RUN_S + 20, "%.0f s of streaming with >= 5 messages per agent" % RUN_S, 0.2)
        T.log("created so far: %s" % {a.name: a.created() for a in agents})

        T.log("step: SIGTERM to every agent")
        for a in agents:
            rc, el = a.terminate(signal.SIGTERM, 10)
            T.check(rc == 0, "%s: SIGTERM must end it with exit 0, got %s" % (a.name, rc))
            T.check(el <= 5.0, "%s: SIGTERM must end it within 5 s, took %.2f s" % (a.name, el))

        T.log("step: waiting until stored == journal for every site")
        T.wait_stored_equals_journal(coll, agents, 30)
    T.check(not probe.bad, "/healthz was not 200 during the run: %r" % probe.bad[:10])
    T.log("healthz polled %d times, always 200" % probe.samples)

    total_msgs, total_recs = 0, 0
    kinds = collections.Counter()
    journals = {}
    for a in agents:
        recs, seqs, dropped = a.journal_records()
        journals[a.site] = recs
        T.check(not dropped, "%s: no message may be dropped from the spool: %r" % (a.name, dropped))
        T.check_eq(seqs, set(range(1, len(seqs) + 1)), "%s: created seqs are 1..N" % a.name)
        T.assert_exactly_once(recs, T.stored_records(coll, a.site, a.devices), a.site)
        total_msgs += len(seqs)
        total_recs += len(recs)
        kinds.update(r["t"] for r in recs)
    T.log("created %d messages with %d records: %s" % (total_msgs, total_recs, dict(kinds)))
    for a in agents:
        check_heartbeats(a, journals[a.site])

    T.log("step: the retained ack of each agent reaches its last seq")
    for a in agents:
        last = a.last_seq()
        T.wait_until(lambda: (T.retained_ack(broker, a.site, a.agent_id) or -1) >= last, 10,
                     "retained ack of %s to reach seq %d" % (a.name, last), 0.2)

    check_sites_and_devices(coll, agents, journals)
    check_readings(coll, journals)
    check_auth_and_errors(coll)
    check_metrics(coll, total_msgs, kinds)

    check_goodbye_order(broker, coll)

    rc, el = coll.terminate()
    T.check(rc == 0 and el <= 5.0, "collector: SIGTERM must end it with exit 0 within 5 s, got %s "
            "after %.2f s" % (rc, el))


def check_goodbye_order(broker, coll):
    """An agent's last data message and its {"online":false} goodbye, handled by
    the collector together (here: both waiting in the collector's persistent
    session, behind a backlog), must leave the agent offline: the goodbye is
    the agent's last word. Deterministic form of the race the graceful stop
    above can hit."""
    T.log("step: data then goodbye, handled in one go, leave the agent offline")
    site, now = "pipe-bye", int(time.time() * 1000)
    T.publish_ok(broker, "sp/v1/%s/gw-bye/birth" % site, json.dumps(
        {"v": 1, "ts": now, "devices": [{"dev": "chg-1", "kind": "charger", "ports": 2}]}))
    T.publish_ok(broker, "sp/v1/%s/gw-bye/state" % site, json.dumps({"online": True, "ts": now}))
    T.wait_until(lambda: coll.api_ok("/api/v1/devices", {"site": site}), 10, "gw-bye's device to be known")
    rc, _ = coll.terminate()
    T.check(rc == 0, "collector: SIGTERM -> exit 0 expected, got %s" % rc)
    # while the collector is away, its session collects: a backlog, then gw-bye's last data and goodbye
    backlog = [json.dumps({"v": 1, "seq": i, "ts": now, "records": [
        {"t": "station", "dev": "chg-9", "ts": now + i, "smoke": False}]}) for i in range(1, 301)]
    rc, out = T.publish_lines(broker, "sp/v1/%s/gw-other/data" % site, backlog)
    T.check(rc == 0, "mosquitto_pub -l: %d %s" % (rc, out))
    T.publish_ok(broker, "sp/v1/%s/gw-bye/data" % site, json.dumps(
        {"v": 1, "seq": 1, "ts": now, "records": [{"t": "station", "dev": "chg-1", "ts": now, "smoke": False}]}))
    T.publish_ok(broker, "sp/v1/%s/gw-bye/state" % site, json.dumps({"online": False, "ts": now}))
    coll.start()
    T.wait_until(lambda: len(T.stored_records(coll, site, ["chg-1", "chg-9"])) == 301, 15,
                 "the backlog and gw-bye's last data to be stored")
    last = {}

    def bye_offline():
        d = [x for x in coll.api_ok("/api/v1/devices", {"site": site}) if x["dev"] == "chg-1"]
        last["dev"] = d
        return d and d[0]["online"] is False
    try:
        T.wait_until(bye_offline, 5, "gw-bye's device to be offline after its goodbye")
    except T.TestFailure as e:
        raise T.TestFailure("%s\n  gw-bye published data seq 1 and then {\"online\":false} (retained, "
                            "QoS 1) on its state topic; the collector still reports its device online: "
                            "%r" % (e, last.get("dev")))


def check_heartbeats(agent, recs, heartbeat_ms=1000, slack_ms=500):
    """CONTRACT §3.2: a lift sends a lift record, a charger a station record and one
    port record per port, at least every heartbeat (here heartbeat_s = 1)."""
    series = collections.defaultdict(list)
    for r in recs:
        if r["t"] in ("lift", "station", "port"):
            series[(r["dev"], r["t"], r.get("port"))].append(r["ts"])
    want = [("lift-%d" % i, "lift", None) for i in (1, 2)]
    want += [("chg-%d" % i, "station", None) for i in (1, 2)]
    want += [("chg-%d" % i, "port", p) for i in (1, 2) for p in range(1, 7)]
    T.check_eq(sorted(series, key=str), sorted(want, key=str), "%s: record series (dev, t, port)" % agent.name)
    worst = 0
    for key, ts in series.items():
        ts.sort()
        gap = max((b - a for a, b in zip(ts, ts[1:])), default=0)
        worst = max(worst, gap)
        T.check(gap <= heartbeat_ms + slack_ms, "%s: %s reported with a gap of %d ms (heartbeat_s = 1)"
                % (agent.name, key, gap))
    T.log("%s: every device reported at least every %d ms (worst gap %d ms)"
          % (agent.name, heartbeat_ms + slack_ms, worst))


def check_sites_and_devices(coll, agents, journals):
    T.log("step: /api/v1/sites and /api/v1/devices after the agents stopped")

    last = {}

    def offline():
        sites = coll.api_ok("/api/v1/sites")
        last["sites"] = sites
        return all(s["online"] == 0 for s in sites) and sites
    try:
        sites = T.wait_until(offline, 10, "every device to be offline after the agents said goodbye")
    except T.TestFailure as e:
        raise T.TestFailure("%s\n  sites: %r\n  each agent published {\"online\":false} on its state "
                            "topic after its last data message (SIGTERM); a site that still counts "
                            "online devices ignored that goodbye (see also the goodbye step of this "
                            "test)" % (e, last.get("sites")))
    T.check_eq(sorted(s["site"] for s in sites), sorted(s for s, _, _ in SITES), "sites listed")
    for s in sites:
        T.check_eq(s["devices"], 4, "devices of site %s" % s["site"])
        T.check(s.get("active_alerts") == 0, "site %s: active_alerts 0 expected: %r" % (s["site"], s))

    # liveness (last_seen) is written at most once a second: give it that second
    def last_seen_current():
        for a in agents:
            for d in coll.api_ok("/api/v1/devices", {"site": a.site}):
                own = [r["ts"] for r in journals[a.site] if r["dev"] == d["dev"]]
                if d["last_seen"] != max(own):
                    return False
        return True
    T.wait_until(last_seen_current, 5, "every device's last_seen to reach its newest record")

    all_devs = coll.api_ok("/api/v1/devices")
    T.check_eq(len(all_devs), 12, "devices without site= (all sites)")
    for a in agents:
        devs = coll.api_ok("/api/v1/devices", {"site": a.site})
        T.check_eq(sorted(d["dev"] for d in devs), sorted(a.devices), "devices of %s" % a.site)
        for d in devs:
            what = "device %s/%s" % (a.site, d["dev"])
            T.check_eq(d["site"], a.site, what + " site")
            T.check_eq(d["kind"], "lift" if d["dev"].startswith("lift-") else "charger", what + " kind")
            T.check_eq(d["agent"], a.agent_id, what + " agent")
            T.check(d["online"] is False, what + ": online must be false after the agent stopped: %r" % d)
            own = [r for r in journals[a.site] if r["dev"] == d["dev"]]
            T.check_eq(d["last_seen"], max(r["ts"] for r in own), what + " last_seen (newest record ts)")
            rows = coll.api_ok("/api/v1/readings", {"site": a.site, "dev": d["dev"], "limit": 1})
            T.check_eq(d["latest"], rows[0], what + " latest (== newest reading)")
            T.check("active_alerts" in d, what + ": active_alerts missing")


def check_readings(coll, journals):
    T.log("step: /api/v1/readings order and filters")
    site = SITES[0][0]
    for dev in ("chg-1", "lift-1"):
        full = coll.api_ok("/api/v1/readings", {"site": site, "dev": dev, "limit": 10000})
        own = [r for r in journals[site] if r["dev"] == dev]
        T.check(len(full) >= 5, "%s/%s: expected a few readings, got %d" % (site, dev, len(full)))
        T.check_eq(len(full), len(own), "%s/%s: readings count vs journal" % (site, dev))
        ts = [r["ts"] for r in full]
        T.check(ts == sorted(ts, reverse=True), "%s/%s: readings must be newest first: %r"
                % (site, dev, ts[:20]))
        # default limit: 1000
        dflt = coll.api_ok("/api/v1/readings", {"site": site, "dev": dev})
        T.check_eq(dflt, full[:1000], "%s/%s: no limit= (default 1000)" % (site, dev))
        # limit
        T.check_eq(coll.api_ok("/api/v1/readings", {"site": site, "dev": dev, "limit": 5}),
                   full[:5], "%s/%s limit=5" % (site, dev))
        # t=
        for kind in sorted({r["t"] for r in full} | {"session"}):
            got = coll.api_ok("/api/v1/readings", {"site": site, "dev": dev, "t": kind, "limit": 10000})
            T.check_eq(got, [r for r in full if r["t"] == kind], "%s/%s t=%s" % (site, dev, kind))
        kind0 = full[0]["t"]
        T.check_eq(coll.api_ok("/api/v1/readings", {"site": site, "dev": dev, "t": kind0, "limit": 3}),
                   [r for r in full if r["t"] == kind0][:3], "%s/%s t=%s&limit=3" % (site, dev, kind0))
        # from= / to= (inclusive)
        uts = sorted(set(ts))
        lo, hi = uts[len(uts) // 3], uts[2 * len(uts) // 3]
        for params, keep in (({"from": lo}, lambda t: t >= lo), ({"to": hi}, lambda t: t <= hi),
                             ({"from": lo, "to": hi}, lambda t: lo <= t <= hi),
                             ({"from": lo, "to": lo}, lambda t: t == lo)):
            p = dict(params, site=site, dev=dev, limit=10000)
            T.check_eq(coll.api_ok("/api/v1/readings", p), [r for r in full if keep(r["ts"])],
                       "%s/%s %s" % (site, dev, params))
        far = max(ts) + 10 ** 9
        T.check_eq(coll.api_ok("/api/v1/readings", {"site": site, "dev": dev, "from": far}), [],
                   "%s/%s from= after every reading" % (site, dev))


def check_auth_and_errors(coll):
    T.log("step: authentication and parameter errors")
    refused0 = coll.metrics().get("sitepulse_http_unauthorized_total")
    T.check(refused0 is not None, "/metrics has sitepulse_http_unauthorized_total")
    q = {"site": SITES[0][0], "dev": "lift-1"}
    for path, params in (("/api/v1/sites", None), ("/api/v1/devices", {"site": SITES[0][0]}),
                         ("/api/v1/readings", q)):
        st, data = coll.api(path, params, token=None)
        T.check_eq(st, 401, "GET %s without a token" % path)
        check_error_body(data, "401 of %s" % path)
        st, _ = coll.api(path, params, token="not-a-valid-token-at-all")
        T.check_eq(st, 401, "GET %s with a wrong token" % path)
        st, _ = coll.api(path, params, token=T.VIEWER_TOKEN + "x")
        T.check_eq(st, 401, "GET %s with a token that only starts like a good one" % path)
        st, _ = coll.api(path, params, token=T.OPERATOR_TOKEN)
        T.check_eq(st, 200, "GET %s with the operator token" % path)
    st, _ = T.http_get(coll.base + "/api/v1/sites", {"Authorization": "Basic " + T.VIEWER_TOKEN})
    T.check_eq(st, 401, "GET /api/v1/sites with a Basic (not Bearer) authorization")
    # 3 paths x 3 refused tokens, and the Basic one: each counted once
    T.check_eq(coll.metrics().get("sitepulse_http_unauthorized_total") - refused0, 10.0,
               "refused API requests counted in sitepulse_http_unauthorized_total")

    bad = [
        ({"limit": 0}, "limit=0"), ({"limit": 10001}, "limit=10001"), ({"limit": "x"}, "limit=x"),
        ({"limit": -1}, "limit=-1"), ({"from": "x"}, "from=x"), ({"to": "1.5"}, "to=1.5"),
        ({"from": 2000000000000, "to": 1000000000000}, "from > to"), ({"t": "toaster"}, "t=toaster"),
        ({"site": "BAD!"}, "site=BAD!"), ({"dev": "Bad Dev"}, "dev=Bad Dev"),
        # %00: C string functions would read it cut short, as a valid site or device
        ({"site": q["site"] + "\x00x"}, "site=%s%%00x" % q["site"]),
        ({"dev": q["dev"] + "\x00../x"}, "dev=%s%%00../x" % q["dev"]),
        ({"limit": "5\x00"}, "limit=5%00"),
    ]
    for extra, what in bad:
        st, data = coll.api("/api/v1/readings", dict(q, **extra))
        T.check_eq(st, 400, "GET /api/v1/readings with %s" % what)
        check_error_body(data, "400 for %s" % what)
    for params, what in (({"site": SITES[0][0]}, "without dev="), ({"dev": "lift-1"}, "without site=")):
        st, _ = coll.api("/api/v1/readings", params)
        T.check_eq(st, 400, "GET /api/v1/readings %s" % what)
    st, _ = coll.api("/api/v1/devices", {"site": "BAD!"})
    T.check_eq(st, 400, "GET /api/v1/devices?site=BAD!")
    st, _ = coll.api("/api/v1/devices", {"site": SITES[0][0] + "\x00x"})
    T.check_eq(st, 400, "GET /api/v1/devices?site=%s%%00x" % SITES[0][0])

    for params, what in (({"site": SITES[0][0], "dev": "lift-99"}, "unknown device"),
                         ({"site": "no-such-site", "dev": "lift-1"}, "unknown site")):
        st, data = coll.api("/api/v1/readings", params)
        T.check_eq(st, 404, "GET /api/v1/readings for an %s" % what)
        check_error_body(data, "404 for an %s" % what)
    # an unknown site is a filter matching nothing (docs/protocol.md, "Unknown names")
    for path in ("/api/v1/devices", "/api/v1/alerts", "/api/v1/summaries"):
        T.check_eq(coll.api(path, {"site": "no-such-site"}), (200, []),
                   "GET %s?site=no-such-site" % path)
    st, _ = coll.api("/api/v1/no-such-route")
    T.check_eq(st, 404, "GET /api/v1/no-such-route")
    T.check_eq(coll.api_ok("/api/v1/devices", {"site": "no-such-site"}), [],
               "devices of an unknown site")

    st, body = T.http_get(coll.base + "/healthz")
    T.check_eq(st, 200, "/healthz (no token needed)")
    T.check(b'"status":"ok"' in body.replace(b" ", b""), "/healthz body: %r" % body)


def check_metrics(coll, total_msgs, kinds):
    T.log("step: /metrics")
    m = coll.metrics()
    names = T.metric_names(m)
    missing = [n for n in T.CONTRACT_METRICS if n not in names]
    T.check(not missing, "metrics missing from /metrics (CONTRACT §5): %s" % missing)
    for label in ('sitepulse_messages_rejected_total{reason="bad_json"}',
                  'sitepulse_records_rejected_total{reason="out_of_range"}',
                  'sitepulse_records_stored_total{kind="lift"}',
                  'sitepulse_queue_depth{queue="ingest"}'):
        T.check(label in m, "series %s missing from /metrics" % label)
    T.check_eq(m["sitepulse_messages_stored_total"], float(total_msgs),
               "sitepulse_messages_stored_total (= messages the agents created)")
    T.check(m["sitepulse_messages_received_total"] >= total_msgs,
            "messages_received_total %s < created %d" % (m["sitepulse_messages_received_total"], total_msgs))
    for kind in ("lift", "station", "port", "session", "fault"):
        T.check_eq(m['sitepulse_records_stored_total{kind="%s"}' % kind], float(kinds.get(kind, 0)),
                   "records_stored_total{kind=%s}" % kind)
    rejected = {k: v for k, v in m.items() if "_rejected_total" in k and v != 0}
    T.check(not rejected, "nothing may be rejected in a clean run: %r" % rejected)
    T.check_eq(m["sitepulse_messages_missing_total"], 0.0, "messages_missing_total")
    # the device gauges are recomputed at most every 5 s (api_routes.c DEVICE_COUNTS_TTL_MS)
    lift_offline = 'sitepulse_devices{kind="lift",online="false"}'
    T.wait_until(lambda: coll.metrics().get(lift_offline) == 6.0, 8,
                 "%s to be 6 (every lift offline after the agents stopped)" % lift_offline)
    T.log("duplicates (resends) in this run: %d" % m["sitepulse_messages_duplicate_total"])


if __name__ == "__main__":
    T.run(main)
