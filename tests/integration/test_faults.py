#!/usr/bin/env python3
"""
test_faults.py - exactly-once storage across faults (CONTRACT §3.4).

Two agents (two sites) stream through one mosquitto (persistence off) to one
collector. While they stream, each fault strikes right after an agent created
a message (so something is in flight):
  (a) kill -9 of an agent, restarted with the same spool and journal;
  (b) mosquitto stopped (SIGTERM) and started again on the same port: what it
      held in flight is lost, the collector's session and the retained acks too;
  (b2) the same with kill -9 of mosquitto;
  (c) kill -9 of the collector, restarted on the same database (in round 2
      twice: the second time right after it became healthy, while it drains
      what the broker kept for its session);
  (d) SIGTERM to an agent while the broker is down, then both start again;
  (e) an agent loses its spool and must continue at ack + 1.
Rounds 1 and 2 repeat (a)-(c) with different victims and timing.
After each fault the agents keep streaming and the collector catches up. At
the end the agents stop with SIGTERM and the test waits (bounded) until the
collector serves exactly the journals' records. Then, with the collector
stopped, the database is read (read-only): each created seq is stored, no
(agent_id, seq, body) occurs more often than the journal says, and
PRAGMA integrity_check is ok. Duplicate deliveries are expected (counted in
sitepulse_messages_duplicate_total); duplicate storage is not.
"""
import collections
import json
import os
import signal
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

AGENT_KW = dict(lifts=2, chargers=3, ports=8, heartbeat_s=1, time_scale=20, batch_ms=200,
                resend_s=1, ack_wait_s=1)


def strike_after_new_message(agent, what, fault):
    """Waits until `agent` has just created a message, then runs fault()."""
    n = agent.created()
    T.wait_until(lambda: agent.created() > n, 15, "%s to create a message before %s" % (agent.name, what),
                 interval=0.1)
    T.log("FAULT %s (right after %s created seq %d)" % (what, agent.name, agent.last_seq()))
    fault()


def fault_round(rnd, broker, coll, agents):
    """One round of every fault; returns the collector's duplicate count before its kill."""
    a1, a2 = agents
    # (a) kill -9 of an agent
    T.log("step: round %d (a) kill -9 of an agent" % rnd)
    victim = agents[rnd % 2]
    strike_after_new_message(victim, "kill -9 agent %s" % victim.name, victim.kill9)
    T.wait_journal_growth([a for a in agents if a is not victim], 2, 15,
                          "the other agent to keep streaming")
    before = victim.last_seq()
    victim.start()
    if rnd == 2:
        # and once more, soon after the restart (while it reconnects / resends)
        T.wait_until(lambda: victim.last_seq() > before, 20, "%s to create a message" % victim.name, 0.1)
        victim.kill9()
        before = victim.last_seq()
        victim.start()
    T.wait_until(lambda: victim.last_seq() >= before + 3, 20, "%s to create new messages after its "
                 "restart" % victim.name, 0.1)
    T.wait_caught_up(coll, agents, 30, "the records of the killed agent to be stored after restart")

    # (b) broker stop and start on the same port; (b2) the same with kill -9
    for how in ("stop", "kill"):
        T.log("step: round %d (b) broker %s and start on the same port" % (rnd, how))
        strike_after_new_message(agents[(rnd + 1) % 2], "broker %s" % how,
                                 broker.stop if how == "stop" else broker.kill)
        T.check(not T.port_open(broker.port), "broker port must be closed after %s" % how)
        T.wait_journal_growth(agents, 2, 15, "agents to keep creating messages while the broker is down")
        T.wait_until(lambda: coll.healthz() == 503, 10, "collector /healthz 503 while the broker is down")
        broker.start()
        coll.wait_healthy(20)
        T.wait_journal_growth(agents, 2, 15)
        T.wait_caught_up(coll, agents, 40, "everything created around the broker %s to be stored" % how)

    # (c) kill -9 of the collector; in round 2 again while it drains what the broker kept for it
    T.log("step: round %d (c) kill -9 of the collector" % rnd)
    dups = coll.metrics()["sitepulse_messages_duplicate_total"]
    strike_after_new_message(a1, "kill -9 collector", coll.kill9)
    T.wait_journal_growth(agents, 3 if rnd == 1 else 6, 20,
                          "agents to keep creating messages while the collector is down")
    coll.start(wait=True, timeout=20)
    if rnd == 2:
        T.log("FAULT kill -9 collector again right after it became healthy (draining its backlog)")
        coll.kill9()
        T.wait_journal_growth(agents, 1, 15)
        coll.start(wait=True, timeout=20)
    T.wait_journal_growth(agents, 2, 15)
    T.wait_caught_up(coll, agents, 40, "everything created around the collector kill to be stored")
    return dups


def main(env):
    broker = env.broker()
    coll = env.collector(broker, gap_window_s=600)
    a1 = env.agent(broker, "fault-1", "gw-1", seed=11, **AGENT_KW)
    a2 = env.agent(broker, "fault-2", "gw-2", seed=12, **AGENT_KW)
    agents = [a1, a2]
    dup_total = 0.0

    T.log("step: baseline streaming")
    T.wait_journal_growth(agents, 3, 20)
    T.wait_caught_up(coll, agents, 20, "baseline records to be stored")

    for rnd in (1, 2):
        dup_total += fault_round(rnd, broker, coll, agents)

    # (d) an agent stops gracefully while the broker is down: what it sealed on the way out
    # stays in its spool and is delivered after both are back
    T.log("step: (d) SIGTERM to an agent while the broker is down")
    strike_after_new_message(a1, "broker kill before stopping %s" % a1.name, broker.kill)
    T.wait_journal_growth([a1], 2, 15, "%s to spool messages while the broker is down" % a1.name)
    rc, el = a1.terminate(signal.SIGTERM, 10)
    T.check(rc == 0 and el <= 5.0, "%s: SIGTERM without broker -> exit 0 within 5 s expected, got %s "
            "after %.2f s" % (a1.name, rc, el))
    broker.start()
    coll.wait_healthy(20)
    a1.start()
    T.wait_journal_growth(agents, 2, 15)
    T.wait_caught_up(coll, agents, 40, "the messages sealed while the broker was down to be stored")

    # (e) an agent that lost its spool continues at ack + 1 (CONTRACT §3.4)
    T.log("step: (e) an agent loses its spool")
    rc, el = a2.terminate(signal.SIGTERM, 10)
    T.check(rc == 0, "%s: SIGTERM -> exit 0 expected, got %s" % (a2.name, rc))
    T.wait_stored_equals_journal(coll, [a2], 30, "%s fully stored before it loses its spool" % a2.name)
    last = a2.last_seq()
    T.wait_until(lambda: T.retained_ack(broker, a2.site, a2.agent_id) == last, 10,
                 "the retained ack of %s to be %d" % (a2.name, last))
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(a2.spool + suffix):
            os.unlink(a2.spool + suffix)
    a2.start()
    T.wait_until(lambda: a2.last_seq() >= last + 3, 20, "%s to continue after seq %d with a new spool "
                 "(a journal that does not grow means seqs are reused)" % (a2.name, last), 0.1)
    started = [l for l in a2.proc.log_text().splitlines() if "starting at seq" in l]
    T.check(started and started[-1].rstrip().endswith("seq %d" % (last + 1)),
            "%s with a new spool must continue at ack + 1 = %d; log says: %r" % (a2.name, last + 1,
                                                                               started[-1:]))
    T.wait_caught_up(coll, agents, 30, "the new spool's messages to be stored")

    T.log("step: stopping the agents (SIGTERM)")
    for a in agents:
        rc, el = a.terminate(signal.SIGTERM, 10)
        T.check(rc == 0 and el <= 5.0, "%s: SIGTERM -> exit 0 within 5 s expected, got %s after %.2f s"
                % (a.name, rc, el))
    T.wait_stored_equals_journal(coll, agents, 40)

    journals = {}
    for a in agents:
        recs, seqs, dropped = a.journal_records()
        T.check(not dropped, "%s: no message may be dropped from the spool: %r" % (a.name, dropped))
        T.check_eq(seqs, set(range(1, len(seqs) + 1)), "%s: created seqs are 1..N (no seq reused "
                   "or skipped across the kill -9)" % a.name)
        T.assert_exactly_once(recs, T.stored_records(coll, a.site, a.devices), a.name)
        journals[(a.site, a.agent_id)] = a.journal_messages()[0]
    T.log("created: %s" % {a.name: a.last_seq() for a in agents})

    T.log("step: retained acks reach the last seqs")
    for a in agents:
        last = a.last_seq()
        T.wait_until(lambda: (T.retained_ack(broker, a.site, a.agent_id) or -1) >= last, 10,
                     "retained ack of %s to reach seq %d" % (a.name, last), 0.2)

    m = coll.metrics()
    dup_total += m["sitepulse_messages_duplicate_total"]
    T.log("metrics since the collector's restart: stored %d, duplicate %d, missing %d; duplicates "
          "over the whole run >= %d" % (m["sitepulse_messages_stored_total"],
                                        m["sitepulse_messages_duplicate_total"],
                                        m["sitepulse_messages_missing_total"], dup_total))
    T.check_eq(m["sitepulse_messages_missing_total"], 0.0, "messages_missing_total (gap window 600 s)")
    rejected = {k: v for k, v in m.items() if "_rejected_total" in k and v != 0}
    T.check(not rejected, "nothing may be rejected: %r" % rejected)

    rc, el = coll.terminate()
    T.check(rc == 0 and el <= 5.0, "collector: SIGTERM -> exit 0 within 5 s expected, got %s after "
            "%.2f s" % (rc, el))
    check_database(coll.db_path, journals)


def check_database(path, journals):
    T.log("step: the database, read-only")
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        ic = [r[0] for r in db.execute("PRAGMA integrity_check")]
        T.check_eq(ic, ["ok"], "PRAGMA integrity_check")
        agents = {(site, agent): aid for aid, site, agent in
                  db.execute("SELECT id, site, agent FROM agents")}
        # every stored reading as (seq, body text), per agent_id (one pass over reading_chunks)
        stored = collections.defaultdict(list)
        for _, agent_id, seq, _, _, body in T.db_chunk_records(db):
            stored[agent_id].append((seq, body))
        for key, msgs in journals.items():
            T.check(key in agents, "agent %s/%s missing from table agents" % key)
            aid = agents[key]
            # how often each (seq, record) may occur: as often as the journal has it
            want = collections.Counter()
            for seq, payload in msgs:
                for r in payload["records"]:
                    want[(seq, T.canon(r))] += 1
            have = collections.Counter()
            for seq, body in stored[aid]:
                have[(seq, T.canon(json.loads(body)))] += 1
            over = [(k, have[k], want.get(k, 0)) for k in have if have[k] > want.get(k, 0)]
            T.check(not over, "%s/%s: (agent_id, seq, body) stored more often than created: %s"
                    % (key + (over[:5],)))
            # identical (seq, body text) stored more than once, as (seq, body, count)
            raw_dups = sorted((seq, body, n) for (seq, body), n in
                              collections.Counter(stored[aid]).items() if n > 1)
            journal_dups = [k for k, n in want.items() if n > 1]
            T.check(len(raw_dups) <= len(journal_dups),
                    "%s/%s: (agent_id, seq, body) triples occurring twice: %r" % (key + (raw_dups[:5],)))
            seqs = {s for s, _ in stored[aid]}
            T.check_eq(seqs, {s for s, _ in msgs}, "%s/%s: seqs with readings in the database" % key)
            T.check_eq(sum(have.values()), sum(want.values()), "%s/%s: readings rows" % key)
            T.log("database: %s/%s: %d messages, %d readings, each once" % (key + (len(seqs), sum(have.values()))))
    finally:
        db.close()


if __name__ == "__main__":
    T.run(main)
