#!/usr/bin/env python3
"""
test_progress.py - an agent's sequence state survives kill -9 of the collector
both in the progress log and after a fold of it (docs/internals/exactly-once.md,
"The progress log").

With [store] progress_fold_commits = 3 the collector folds the log after every
three commits that logged sequence state. Agent gw-1 of site prog-a sends one
message at a time and waits for its ack, so each is a commit of its own:
  - the file, read while the collector runs, shows the log growing by one row per
    such commit and emptied at each fold, with agents.acked caught up then and
    only then;
  - kill -9 while the log holds seqs newer than agents.acked, restart: the ack is
    the newest seq at once, the log's seqs sent again are duplicates (counted, not
    stored again), the next seq is stored;
  - the same with an out-of-order seq in the log (its done set): sent again it is a
    duplicate, and the seq before it moves the ack over both;
  - 300 agents at once (sp-loadgen): all stored and acked, every one heard (online,
    last_seen), and after a kill -9 the same messages again are all duplicates;
  - a clean stop folds: the log is empty and agents.acked the last seq.
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE, AGENT, DEV = "prog-a", "gw-1", "lift-1"
TOPIC = "sp/v1/%s/%s/data" % (SITE, AGENT)
FOLD = 3
MANY = 300  # agents of the many-agents step: past the liveness index's first 256 slots


def lift(ts):
    return {"t": "lift", "dev": DEV, "ts": ts, "floor": 1, "dir": "stop", "door": "closed",
            "door_zone": True, "occupied": False, "speed": 0, "mode": "normal",
            "power": "mains", "safety_ok": True}


def send(broker, seq):
    ts = int(time.time() * 1000)
    T.publish_ok(broker, TOPIC, json.dumps({"v": 1, "seq": seq, "ts": ts, "records": [lift(ts)]}))


def send_acked(broker, seq, ack=None):
    """Publishes seq and waits for the retained ack to reach `ack` (default seq)."""
    send(broker, seq)
    want = seq if ack is None else ack
    T.wait_until(lambda: T.retained_ack(broker, SITE, AGENT) == want, 15,
                 "the ack of seq %d to be %d" % (seq, want))


def db_state(coll):
    """(rows of the progress log, agents.acked of gw-1) read from the file."""
    db = T.db_open_ro(coll.db_path)
    try:
        rows = db.execute("SELECT count(*) FROM progress_log").fetchone()[0]
        acked = db.execute("SELECT acked FROM agents WHERE site = ? AND agent = ?",
                           (SITE, AGENT)).fetchone()[0]
        return rows, acked
    finally:
        db.close()


def stored_seqs(coll):
    """The seqs of gw-1's stored readings, from the file (one reading per message)."""
    db = T.db_open_ro(coll.db_path)
    try:
        agent_id = db.execute("SELECT id FROM agents WHERE site = ? AND agent = ?",
                              (SITE, AGENT)).fetchone()[0]
        return sorted(r[2] for r in T.db_chunk_records(db) if r[1] == agent_id)
    finally:
        db.close()


def duplicates(coll):
    return coll.metrics().get("sitepulse_messages_duplicate_total", 0)


def log_holds_newer(broker, coll, seq):
    """Sends seqs from seq on, one at a time, until the file shows the log holding
    the newest while agents.acked is behind it, with fewer than FOLD rows (so no
    commit without sequence state, the heartbeat's, can fold it). Returns the
    last seq sent and agents.acked."""
    for _ in range(FOLD + 2):
        send_acked(broker, seq)
        rows, acked = db_state(coll)
        if 1 <= rows < FOLD and acked < seq:
            return seq, acked
        seq += 1
    raise T.TestFailure("the log never held the newest seq with fewer than %d rows" % FOLD)


def many_agents(broker, coll):
    """300 agents at once (sp-loadgen, over one connection): every one's state goes
    through the log (300 entries a commit), every one is heard (the liveness index
    grows past its first 256 slots), and after a kill -9 the same messages again
    are all duplicates."""
    argv = [os.path.join(T.BIN_DIR, "sp-loadgen"), "--uri", broker.uri, "--agents", str(MANY),
            "--devices", "1", "--count", str(4 * MANY), "--agent-prefix", "many-",
            "--site-prefix", "many-s", "--wait-acks", "--ack-timeout", "60", "--timeout", "120"]

    def load(what):
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=150)
        out = json.loads(r.stdout.decode("utf-8") or "{}")
        T.check(r.returncode == 0 and out.get("all_acked"), "sp-loadgen (%s): exit %d, %s %s"
                % (what, r.returncode, out, r.stderr.decode("utf-8", "replace")[-400:]))

    def heard():
        db = T.db_open_ro(coll.db_path)
        try:
            return db.execute("SELECT count(*) FROM agents WHERE agent LIKE 'many-%' AND "
                              "online = 1 AND last_seen > 0").fetchone()[0]
        finally:
            db.close()
    stored0 = coll.metrics()["sitepulse_messages_stored_total"]
    load("first")
    T.wait_until(lambda: coll.metrics()["sitepulse_messages_stored_total"] == stored0 + 4 * MANY,
                 20, "%d messages stored" % (4 * MANY))
    T.wait_until(lambda: heard() == MANY, 10, "all %d agents heard (online, last_seen)" % MANY)
    coll.kill9()
    coll.start()
    dup0 = duplicates(coll)
    load("again after kill -9")
    T.wait_until(lambda: duplicates(coll) == dup0 + 4 * MANY, 20,
                 "the %d messages sent again counted duplicates" % (4 * MANY))
    T.check_eq(coll.metrics()["sitepulse_messages_stored_total"], 0,
               "messages the restarted collector stored")


def main(env):
    broker = env.broker()
    coll = env.collector(broker, extra={"store": {"progress_fold_commits": FOLD}})

    T.log("step: seqs 1..9 one at a time: the log grows by a row per commit, a fold empties it")
    history = []
    for seq in range(1, 10):
        send_acked(broker, seq)
        # the commit is durable before its ack is published: the file shows it
        history.append((seq,) + db_state(coll))
    T.log("seq, log rows, agents.acked after it: %r" % history)
    # a commit of sequence state either adds a row, the row's acked unchanged, or folds
    # (its own state into the row: the log empty, acked the seq); a heartbeat's commit,
    # between two seqs, may fold a log of FOLD rows (the next seq then leaves one row)
    prev_rows, prev_acked = 0, 0
    for seq, rows, acked in history:
        logged = rows == prev_rows + 1 and acked == prev_acked
        folded = rows == 0 and acked == seq
        folded_before = prev_rows == FOLD and rows == 1 and acked == seq - 1
        T.check(rows <= FOLD and (logged or folded or folded_before),
                "after seq %d: %d log rows, agents.acked %d (before: %d, %d)"
                % (seq, rows, acked, prev_rows, prev_acked))
        prev_rows, prev_acked = rows, acked
    T.check(any(r >= 2 and a < s - 1 for s, r, a in history),
            "the log held several seqs ahead of agents.acked: %r" % history)
    T.check(any(r == 0 and a == s for s, r, a in history[FOLD:]),
            "a fold caught agents.acked up: %r" % history)

    T.log("step: kill -9 while seqs are only in the log; restart; sent again they are duplicates")
    last, acked = log_holds_newer(broker, coll, 10)
    coll.kill9()
    coll.start()
    T.wait_until(lambda: T.retained_ack(broker, SITE, AGENT) == last, 15,
                 "the restarted collector's ack to be %d (from the log)" % last)
    dup0 = duplicates(coll)
    for seq in range(acked + 1, last + 1):
        send(broker, seq)
    T.wait_until(lambda: duplicates(coll) >= dup0 + last - acked, 15,
                 "seqs %d..%d counted duplicates" % (acked + 1, last))
    send_acked(broker, last + 1)
    last += 1
    T.check_eq(stored_seqs(coll), list(range(1, last + 1)), "seqs stored once each")

    T.log("step: seq %d before %d (out of order: the log's done set); kill -9; restart"
          % (last + 2, last + 1))
    T.wait_until(lambda: db_state(coll)[0] < FOLD, 5, "fewer than %d log rows" % FOLD)
    send(broker, last + 2)
    T.wait_until(lambda: last + 2 in stored_seqs(coll), 15, "seq %d stored" % (last + 2))
    rows, acked = db_state(coll)
    T.check(1 <= rows <= FOLD and acked <= last, "seq %d is only in the log: %d rows, "
            "agents.acked %d" % (last + 2, rows, acked))
    coll.kill9()
    coll.start()
    dup0 = duplicates(coll)
    send(broker, last + 2)
    T.wait_until(lambda: duplicates(coll) >= dup0 + 1, 15, "seq %d again counted a duplicate"
                 % (last + 2))
    send_acked(broker, last + 1, ack=last + 2)
    last += 2
    T.check_eq(stored_seqs(coll), list(range(1, last + 1)), "seqs stored once each")

    T.log("step: %d agents at once (sp-loadgen); kill -9; the same messages again" % MANY)
    many_agents(broker, coll)

    T.log("step: a clean stop folds")
    coll.terminate()
    T.check_eq(db_state(coll), (0, last), "log rows and agents.acked after a clean stop")
    T.check_eq(T.db_integrity(coll.db_path), ["ok"], "integrity_check")


if __name__ == "__main__":
    T.run(main)
