#!/usr/bin/env python3
"""
test_soak.py - the fault-injection soak: exactly once under load and faults
(CONTRACT §3.4), bounded to about 3-4 minutes.

Four agents (four sites) stream together through one mosquitto (persistence
off) to one collector at 2,000+ records/s (each: 4 lifts, 22 chargers of 24
ports, heartbeat 1 s, time_scale 20, batch_ms 200, resend_s 2, ack_wait_s as by
default). One of them reaches the broker through a TCP proxy (sptest.TcpProxy).
For STREAM_S seconds, at random moments drawn from a seeded random.Random (the
seed is printed; SP_SOAK_SEED=N replays a run's schedule):
  - kill -9 of the collector, 5 times, restarted 0.5-3 s later on the same
    database;
  - mosquitto stopped and started on the same port, twice (persistence off:
    whatever it held in flight, the collector's session and the retained acks
    are lost), 0.5-3 s down;
  - kill -9 of an agent, twice, restarted 0.5-3 s later with the same spool
    and journal;
  - the proxied agent cut off the broker for 60 s (every connection closed,
    new ones refused).
Then every agent stops (SIGTERM) and starts again with --scenario :silent@0
(it creates nothing more but publishes its spool), and the test waits
(bounded) until each agent's retained ack covers its last created seq. The
collector's final /metrics must show no missing and no rejected message.
With everything stopped, the collector's SQLite file is read (read-only):
per site, the stored records equal the journals' records as multisets (zero
lost, zero duplicated), each agent's stored seqs are exactly its created
seqs, and PRAGMA integrity_check is ok. Compaction of stored readings runs
all along ([store] compact_after_s = 2) and must have merged chunks, and
caught up once the agents are silent (its backlog and lag gauges 0). The
achieved rate (records created / elapsed, from the journals) must be at
least 2,000 records/s.

Alerts, mails and city summaries go through the same faults: every agent's
simulator plays smoke in a cabinet, an overheating port and a trapped
passenger (again after each of its restarts); a real SMTP server and a real
HTTP server on loopback (sinks.py) stand for the crews and the city
([city] period_s = 60). At the end (check_alerts_mails_summaries):
  - alerts: never two of a condition (rule, site, dev, port) active at once;
    every run of smoke and of over-temperature in the journals (in time
    order) is covered by exactly one alert of its device: none missed, none
    doubled;
  - mails: before the collector stops, every alert event the API lists has
    its mail; at the end the Message-IDs received are exactly those of the
    alerts' opened and cleared events (min_severity minor), each at least
    once, except an event after that wait (a hold the once-a-second tick
    opened from the agents' last records), whose mail must then be waiting
    in the durable outbox;
  - summaries: for every site, every period that ended (plus grace) is
    delivered (2xx) under its Idempotency-Key, with no period skipped and
    none outside; a resend after a kill -9 carries the same key.
"""
import collections
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402
from sinks import HttpSink, SmtpSink  # noqa: E402

STREAM_S = 140            # streaming phase with faults
CUT_S = 60                # the proxied agent is cut off this long
DRAIN_TIMEOUT_S = 120     # silent agents: bound for every ack to cover the last seq
MIN_RATE = 2000.0         # records created per second, all agents together
# ack_wait_s is left at the agent's default (main): how long an agent waits for the collector
# after a broker restart is exactly the margin this soak tests (docs/alerts.md, late data)
AGENT_KW = dict(lifts=4, chargers=22, ports=24, heartbeat_s=1, time_scale=20, batch_ms=200,
                resend_s=2)
FAULTS = ["collector"] * 5 + ["broker"] * 2 + ["agent"] * 2
PERIOD_MS = 60000
GRACE_S = 20              # city summaries wait this long for late data
SMOKE_LIMIT = None        # station smoke: any
OVER_TEMP = (60.0, 55.0)  # port.over_temp: opens at >= 60 °C, clears below 55 °C


def scenarios(i):
    """Situations the agent i plays (seconds after each of its starts). Each lasts several
    seconds: a condition that begins and ends entirely within messages resent behind newer
    ones opens no alert (docs/alerts.md, late data), and a kill -9 of the collector can leave
    a second or two of messages to be resent so."""
    return ["--scenario", "chg-1:smoke@%d+8" % (12 + 3 * i),
            "--scenario", "chg-2/2:port_overheat@%d+6" % (40 + 5 * i),
            "--scenario", "lift-1:trapped_between_floors@%d+10" % (70 + 4 * i)]


def schedule(rng, agents):
    """The fault plan: a list of (t, action, target, note) in time order, t in seconds
    from the start of streaming. The 9 point faults get one time slot each (so one
    is over before the next starts); the cut overlaps whatever comes."""
    kinds = FAULTS[:]
    rng.shuffle(kinds)
    first, last = 8.0, STREAM_S - 6.0
    slot = (last - first) / len(kinds)
    plan = []
    for i, kind in enumerate(kinds):
        t = first + i * slot + rng.uniform(0, slot - 4.0)
        down = round(rng.uniform(0.5, 3.0), 2)
        target = rng.choice(agents) if kind == "agent" else None
        plan.append((t, "kill", kind, target, down))
        plan.append((t + down, "start", kind, target, down))
    cut_at = rng.uniform(10.0, STREAM_S - CUT_S - 15.0)
    plan.append((cut_at, "cut", "proxy", None, CUT_S))
    plan.append((cut_at + CUT_S, "restore", "proxy", None, CUT_S))
    plan.sort(key=lambda e: e[0])
    return plan


def journal_bytes(agents):
    return sum(os.path.getsize(a.journal) for a in agents if os.path.exists(a.journal))


class DupCounter:
    """The collector's duplicate counter is per run; remember the last value seen
    in each run (a kill -9 loses what came after the last sample: a lower bound)."""

    def __init__(self, coll):
        self.coll = coll
        self.last = {}

    def sample(self):
        if not self.coll.proc.running():
            return
        try:
            st, body = T.http_get(self.coll.base + "/metrics", timeout=1)
        except OSError:
            return
        if st == 200:
            m = T.parse_metrics(body.decode("utf-8"))
            self.last[self.coll.proc.starts] = m.get("sitepulse_messages_duplicate_total", 0)

    def total(self):
        return int(sum(self.last.values()))


def run_faults(rng, broker, coll, agents, proxy, cut_agent):
    plan = schedule(rng, agents)
    T.log("fault plan (seconds from the start of streaming):")
    for t, action, kind, target, arg in plan:
        T.log("  %6.1f  %-7s %-9s %s" % (t, action, kind, target.name if target else
                                         ("%s s" % arg if action != "restore" else "")))
    done = collections.Counter()
    dups = DupCounter(coll)
    t0 = time.monotonic()
    idx = 0
    refused_before_restore = 0
    down = set()              # what is down on purpose right now
    last_progress = t0
    while True:
        now = time.monotonic() - t0
        if idx < len(plan) and now >= plan[idx][0]:
            t, action, kind, target, arg = plan[idx]
            idx += 1
            T.log("FAULT @%.1f s (planned %.1f): %s %s%s" % (now, t, action, kind,
                                                           " " + target.name if target else ""))
            who = target or kind
            if action == "kill":
                down.add(who)
            elif action == "start":
                down.discard(who)
            if action == "kill" and kind == "collector":
                dups.sample()
                coll.kill9()
                done["collector kill -9"] += 1
            elif action == "start" and kind == "collector":
                coll.start(wait=False)
            elif action == "kill" and kind == "broker":
                broker.stop()
                done["broker restart"] += 1
            elif action == "start" and kind == "broker":
                broker.start()
            elif action == "kill" and kind == "agent":
                target.kill9()
                done["agent kill -9"] += 1
            elif action == "start" and kind == "agent":
                target.start()
            elif action == "cut":
                proxy.cut()
                done["agent cut 60 s"] += 1
            elif action == "restore":
                refused_before_restore = proxy.refused
                proxy.restore()
            continue
        if now >= STREAM_S:
            break
        # between faults: everything that should run does
        for a in agents:
            if a not in down and not a.proc.running():
                raise T.ProcessDied("%s exited unexpectedly with %s:\n%s"
                                    % (a.name, a.proc.returncode(), a.proc.log_tail(20)))
        if "collector" not in down:
            coll.ensure_running()
        if "broker" not in down and not broker.proc.running():
            raise T.ProcessDied("mosquitto exited unexpectedly:\n%s" % broker.proc.log_tail(20))
        if time.monotonic() - last_progress >= 10:
            last_progress = time.monotonic()
            dups.sample()
            T.log("  streaming %.0f s: journals %.1f MB, collector %s, proxy %d connection(s)%s"
                  % (now, journal_bytes(agents) / 1e6, coll.healthz(), proxy.connections(),
                     " (cut)" if proxy.is_cut else ""))
        nxt = plan[idx][0] if idx < len(plan) else STREAM_S
        time.sleep(max(0.0, min(0.1, nxt - (time.monotonic() - t0))))
    T.check(sum(done.values()) == len(FAULTS) + 1, "every planned fault happened: %s" % dict(done))
    T.check(refused_before_restore >= 1, "the cut agent must have tried to reconnect through the "
            "proxy during the cut (refused %d times)" % refused_before_restore)
    T.log("the proxy refused %d connection attempt(s) of %s during the cut"
          % (refused_before_restore, cut_agent.name))
    return done, dups


def runs(records, on, off):
    """Maximal runs [(start ts, end ts)] of a condition in time order: on(r) starts one,
    off(r) ends it (between the two nothing changes: hysteresis)."""
    out, start, last = [], None, None
    for r in sorted(records, key=lambda r: r["ts"]):
        if start is None and on(r):
            start = last = r["ts"]
        elif start is not None and off(r):
            out.append((start, last))
            start = None
        elif start is not None:
            last = r["ts"]
    if start is not None:
        out.append((start, last))
    return out


def check_alerts(db, agents):
    rows = db.execute("SELECT id, rule, site, dev, coalesce(port, 0), severity, opened_at, cleared_at"
                      " FROM alerts ORDER BY opened_at, id").fetchall()
    by_key = collections.defaultdict(list)
    for r in rows:
        by_key[r[1:5]].append(r)
    for key, items in by_key.items():
        for a, b in zip(items, items[1:]):
            T.check(a[7] is not None and b[6] >= a[7],
                    "two alerts of %r active at once: %r and %r" % (key, a, b))
    conditions = [("charger.smoke", "chg-1", 0, "station",
                   lambda r: r.get("smoke") is True, lambda r: r.get("smoke") is False),
                  ("port.over_temp", "chg-2", 2, "port",
                   lambda r: r.get("port") == 2 and r.get("temp_c", -1e9) >= OVER_TEMP[0],
                   lambda r: r.get("port") == 2 and r.get("temp_c", 1e9) < OVER_TEMP[1])]
    checked = 0
    for ag in agents:
        recs = ag.journal_records()[0]
        for rule, dev, port, kind, on, off in conditions:
            mine = [r for r in recs if r["dev"] == dev and r["t"] == kind]
            alerts = by_key.get((rule, ag.site, dev, port), [])
            for start, end in runs(mine, on, off):
                over = [a for a in alerts if a[6] <= end and (a[7] is None or a[7] >= start)]
                T.check(len(over) == 1, "%s %s/%s: the run %d..%d is covered by %d alerts: %r"
                        % (rule, ag.site, dev, start, end, len(over), over))
                checked += 1
    T.check(checked >= len(agents) * 2, "runs of smoke and over-temperature checked: %d" % checked)
    T.log("alerts: %d in all; %d runs of smoke / over-temperature each covered by one alert"
          % (len(rows), checked))
    return rows


MAILED = ("critical", "major", "minor")   # [smtp] min_severity minor (the default)


def mail_events(alerts):
    """{Message-ID: time of its event} of (id, site, severity, opened_at, cleared_at)."""
    out = {}
    for aid, site, severity, opened_at, cleared_at in alerts:
        if severity in MAILED:
            out["<sitepulse.alert.%d.opened.%d@%s.sitepulse>" % (aid, opened_at, site)] = opened_at
            if cleared_at is not None:
                out["<sitepulse.alert.%d.cleared.%d@%s.sitepulse>" % (aid, opened_at, site)] = cleared_at
    return out


def wait_mails(coll, smtp):
    """Until every alert event the API lists has its mail and none is queued; returns the
    wall-clock ms at which that held."""
    state = {}

    def delivered():
        api = coll.api_ok("/api/v1/alerts", {"limit": 10000})
        want = mail_events((a["id"], a["site"], a["severity"], a["opened_at"], a["cleared_at"])
                           for a in api)
        state["missing"] = sorted(set(want) - set(smtp.message_ids()))
        # the gauge is refreshed once a second: the listing above decides, the gauge confirms
        return not state["missing"] and coll.metrics()["sitepulse_mail_queued"] == 0
    try:
        T.wait_until(delivered, 60, "every alert event the API lists mailed", 0.5)
    except T.TestFailure as e:
        raise T.TestFailure("%s; not received: %s" % (e, state.get("missing")))
    return int(time.time() * 1000)


def check_mails(rows, smtp, pending, mailed_by_ms):
    """The Message-IDs received are those of the alerts' events. An event may lack its mail
    only if it came after wait_mails had seen every mail delivered (a hold the tick opened
    from the agents' last records) and its mail waits in the durable outbox."""
    want = mail_events((aid, site, severity, opened_at, cleared_at)
                       for aid, _, site, _, _, severity, opened_at, cleared_at in rows)
    got = collections.Counter(smtp.message_ids())
    T.check_eq(sorted(set(got) - set(want)), [], "mails no alert event accounts for")
    # an event's time is the device's; it is stored within a tick (1 s) of it
    late = {k for k, at in want.items() if at >= mailed_by_ms - 5000}
    missing = set(want) - set(got)
    T.check_eq(sorted(missing - (late & pending)), [],
               "alert events without their mail (neither received nor, if after the mail wait, "
               "in the outbox)")
    T.log("mails: %d Message-IDs, all expected; %d delivered twice (a kill -9 after the server "
          "took them); %d event(s) after the last wait, their mail in the outbox"
          % (len(got), sum(1 for n in got.values() if n > 1), len(missing)))


def due_periods(http_keys, sites, first, until_ms):
    """Every site's periods from its first summarized one to the last that ended by until_ms."""
    want = set()
    for site in sites:
        if site not in first:
            continue
        p = first[site]
        while p + PERIOD_MS <= until_ms:
            want.add("%s:%d" % (site, p))
            p += PERIOD_MS
    return want


def check_summaries(coll, http, agents):
    t_due = int(time.time() * 1000) - (GRACE_S + 5) * 1000
    sites = [a.site for a in agents]

    def delivered():
        ok = collections.Counter(r["headers"].get("Idempotency-Key") for r in http.requests()
                                 if r.get("status") and 200 <= r["status"] < 300)
        first = {}
        for k in ok:
            site, p = k.rsplit(":", 1)
            first[site] = min(first.get(site, int(p)), int(p))
        return ok, first
    state = {}

    def all_due():
        ok, first = delivered()
        state["missing"] = sorted(due_periods(ok, sites, first, t_due) - set(ok))
        return len(first) == len(sites) and not state["missing"]
    try:
        T.wait_until(all_due, 60, "every due period of every site delivered", 0.5)
    except T.TestFailure as e:
        raise T.TestFailure("%s; missing: %s" % (e, state.get("missing")))
    ok, first = delivered()
    for key in ok:
        site, p = key.rsplit(":", 1)
        T.check(site in sites and int(p) % PERIOD_MS == 0, "an unexpected key: %r" % key)
        p = int(p)
        while p > first[site]:
            p -= PERIOD_MS
            T.check("%s:%d" % (site, p) in ok, "%s: period %d skipped" % (site, p))
    T.log("summaries: %d periods delivered for %d sites; %d delivered twice under the same key"
          % (len(ok), len(first), sum(1 for n in ok.values() if n > 1)))


def check_alerts_mails_summaries(coll, agents, db_path, smtp, http, mailed_by_ms):
    """See the module's doc: alerts from the database (read-only), mails from the SMTP
    server, summaries from the HTTP server."""
    db = T.db_open_ro(db_path)
    try:
        rows = check_alerts(db, agents)
        pending = {k for (k,) in db.execute("SELECT key FROM outbox WHERE box = 0 AND sent_at IS NULL")}
    finally:
        db.close()
    check_mails(rows, smtp, pending, mailed_by_ms)


def main(env):
    seed = int(os.environ.get("SP_SOAK_SEED") or int.from_bytes(os.urandom(4), "big"))
    T.log("soak seed %d (replay this schedule with SP_SOAK_SEED=%d)" % (seed, seed))
    rng = random.Random(seed)

    smtp = SmtpSink(env)
    http = HttpSink(env)
    broker = env.broker()
    proxy = T.TcpProxy(env, broker.port, name="proxy")
    # compaction 2 s after a chunk is written instead of 65 min: it runs all along, through
    # every kill -9 and broker restart, and the record-by-record comparison covers it too
    coll = env.collector(broker, gap_window_s=600, extra={
        "store": {"compact_after_s": 2},
        "smtp": {"url": smtp.url, "to": "crew@soak.example", "max_per_hour": 1000,
                 "timeout_s": 5, "retry_min_s": 1, "retry_max_s": 2},
        "city": {"url": http.url("/summaries"), "token": "soak-city-token", "period_s": 60,
                 "grace_s": GRACE_S, "timeout_s": 5, "retry_min_s": 1, "retry_max_s": 2},
        "rule.lift.trapped": {"hold_s": 3},
    })
    ack_wait_s = int(T.config_default(T.AGENT_BIN, "agent", "ack_wait_s"))
    T.log("agents wait up to %d s for the collector's ack after a connect (the default)"
          % ack_wait_s)
    cut_idx = rng.randrange(4)
    agents = []
    for i in range(4):
        site = "soak-%d" % (i + 1)
        agents.append(env.agent(broker, site, "gw-%d" % (i + 1), seed=1000 + i, start=False,
                                uri=proxy.uri if i == cut_idx else None, args=scenarios(i),
                                ack_wait_s=ack_wait_s, **AGENT_KW))
    cut_agent = agents[cut_idx]
    T.log("%s reaches the broker through the proxy" % cut_agent.name)
    t_start = time.monotonic()
    for a in agents:
        a.start()
    T.wait_journal_growth(agents, 2, 20, "every agent to create messages")
    T.wait_until(lambda: all((T.retained_ack(broker, a.site, a.agent_id) or 0) >= 1 for a in agents), 20,
                 "every agent's first ack")

    done, dups = run_faults(rng, broker, coll, agents, proxy, cut_agent)

    T.log("step: SIGTERM to every agent")
    for a in agents:
        rc, el = a.terminate(signal.SIGTERM, 10)
        T.check(rc == 0 and el <= 5.0, "%s: SIGTERM -> exit 0 within 5 s expected, got %s after %.2f s"
                % (a.name, rc, el))
    t_stop = time.monotonic()
    created = {}
    for a in agents:
        msgs, dropped = a.journal_messages()
        T.check(not dropped, "%s: no message may be dropped from the spool: %r" % (a.name, sorted(dropped)[:10]))
        created[a.name] = (len(msgs), sum(len(m["records"]) for _, m in msgs), a.last_seq())
    records = sum(c[1] for c in created.values())
    elapsed = t_stop - t_start
    rate = records / elapsed
    T.log("created: %s" % ", ".join("%s %d messages / %d records" % (k, v[0], v[1]) for k, v in created.items()))
    T.log("rate: %d records in %.1f s = %.0f records/s" % (records, elapsed, rate))

    T.log("step: the agents again, silent, until their spools are acknowledged")
    coll.ensure_running()
    coll.wait_healthy(20)
    for a in agents:
        a.start(["--scenario", ":silent@0"])
    t_drain = time.monotonic()
    state = {}

    def all_acked():
        coll.ensure_running()
        lag = {}
        for a in agents:
            ack = T.retained_ack(broker, a.site, a.agent_id)
            if ack is None or ack < created[a.name][2]:
                lag[a.name] = (ack, created[a.name][2])
        state["lag"] = lag
        return not lag
    try:
        T.wait_until(all_acked, DRAIN_TIMEOUT_S, "every retained ack to cover its agent's last seq",
                     interval=0.5)
    except T.TestFailure as e:
        raise T.TestFailure("%s; (ack, last seq): %s" % (e, state.get("lag")))
    T.log("drained %.1f s after the silent restart" % (time.monotonic() - t_drain))
    for a in agents:
        T.check_eq(a.last_seq(), created[a.name][2], "%s: last seq after the silent restart" % a.name)

    m = coll.metrics()
    dups.sample()
    T.check_eq(m["sitepulse_messages_missing_total"], 0.0, "messages_missing_total (final run)")
    rejected = {k: v for k, v in m.items() if "_rejected_total" in k and v}
    T.check(not rejected, "nothing may be rejected: %r" % rejected)
    T.check_eq(m.get("sitepulse_store_ok"), 1.0, "sitepulse_store_ok")
    T.check(m.get("sitepulse_chunks_compacted_total", 0) > 0,
            "compaction merged chunks in the final run: %r" % m.get("sitepulse_chunks_compacted_total"))
    T.check_eq(m.get("sitepulse_compactions_failed_total"), 0.0, "sitepulse_compactions_failed_total")
    # nothing new comes now: compaction (2 s after a chunk is written) catches up with what the
    # run and the drain wrote, and its last pass says so
    T.wait_until(lambda: (coll.metrics().get("sitepulse_compaction_backlog_chunks"),
                          coll.metrics().get("sitepulse_compaction_lag_seconds")) == (0.0, 0.0),
                 30, "sitepulse_compaction_backlog_chunks and _lag_seconds 0 once the agents are silent")

    T.log("step: every alert mail and every due city summary delivered")
    mailed_by_ms = wait_mails(coll, smtp)
    check_summaries(coll, http, agents)

    T.log("step: stop everything")
    for a in agents:
        rc, el = a.terminate(signal.SIGTERM, 10)
        T.check(rc == 0 and el <= 5.0, "%s (silent): SIGTERM -> exit 0 within 5 s, got %s after %.2f s"
                % (a.name, rc, el))
    rc, el = coll.terminate()
    T.check(rc == 0 and el <= 5.0, "collector: SIGTERM -> exit 0 within 5 s, got %s after %.2f s" % (rc, el))
    proxy.close()
    broker.stop()

    T.log("step: the database, read-only, record by record")
    check_database(coll.db_path, agents)
    check_alerts_mails_summaries(coll, agents, coll.db_path, smtp, http, mailed_by_ms)

    print("\n==== soak summary (seed %d)\n"
          "  records created and stored exactly once: %d (%d messages, 4 sites)\n"
          "  streaming: %.1f s at %.0f records/s\n"
          "  faults: %s\n"
          "  duplicates ignored by the collector (sum over its %d runs, lower bound): %d\n"
          % (seed, records, sum(c[0] for c in created.values()), elapsed, rate,
             ", ".join("%s x%d" % (k, v) for k, v in sorted(done.items())), coll.proc.starts,
             dups.total()), flush=True)
    T.check(rate >= MIN_RATE, "achieved rate %.0f records/s, below %d" % (rate, MIN_RATE))


def check_database(path, agents):
    T.check_eq(T.db_integrity(path), ["ok"], "PRAGMA integrity_check")
    db = T.db_open_ro(path)
    try:
        ids = {(site, agent): aid for aid, site, agent in db.execute("SELECT id, site, agent FROM agents")}
        # the seqs with stored readings, per agent_id (one pass over reading_chunks)
        seqs_of = collections.defaultdict(set)
        for _, agent_id, seq, _, _, _ in T.db_chunk_records(db):
            seqs_of[agent_id].add(seq)
        for a in agents:
            key = (a.site, a.agent_id)
            T.check(key in ids, "agent %s/%s missing from table agents" % key)
            msgs, _ = a.journal_messages()
            seqs = [s for s, _ in msgs]
            T.check_eq(len(set(seqs)), len(seqs), "%s: each seq journalled once" % a.name)
            T.check_eq(set(seqs), set(range(1, len(seqs) + 1)), "%s: created seqs are 1..N" % a.name)
            stored_seqs = seqs_of.get(ids[key], set())
            lost = sorted(set(seqs) - stored_seqs)
            extra = sorted(stored_seqs - set(seqs))
            T.check(not lost and not extra, "%s: seqs created but not stored %s, stored but not created %s"
                    % (a.name, lost[:10], extra[:10]))
            journal = [r for _, m in msgs for r in m["records"]]
            del msgs
            T.assert_exactly_once(journal, T.db_site_records(path, a.site), "%s, database" % a.site)
    finally:
        db.close()


if __name__ == "__main__":
    T.run(main)
