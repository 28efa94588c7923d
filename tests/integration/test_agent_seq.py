#!/usr/bin/env python3
"""
test_agent_seq.py - the agent's sequence numbers and publish window at their
edges (CONTRACT §3.2, §3.4; docs/protocol.md, Acknowledgement).

(window) No collector, no ack ever, max_unacked 3: the agent publishes
    exactly seqs 1..3 (a subscriber on its data topic sees those and no
    other, go-backs included) - the window is max_unacked messages from the
    oldest held one, not one fewer.
(overflow) No collector yet, spool_max_mb 1 on a big site, max_unacked 3:
    the spool's overflow policy drops the oldest messages, so the oldest held
    seq ends up far beyond max_unacked with no ack at all. When a collector
    (gap_window_s 3) starts, everything still held must be published and
    stored exactly once, and the dropped messages declared missing: the window
    follows the oldest held message, it does not stay anchored at the ack.
(rollback) The collector has acked seq A; the agent's spool is put back to a
    copy taken earlier (spool_sync off + power loss, a VM snapshot or backup
    restored), whose next seq S is <= A. The restarted agent must continue at
    A + 1 (logged), so the collector counts no duplicates and stores every
    new message; it is silent for its first seconds (--scenario :silent@0+4)
    so that no message is sealed before the retained ack has come.
(learn) A new spool while a retained ack of seq 41 waits on the broker, with
    ack_wait_s = 0: the agent must start at seq 42, not at 1 (it learns "no
    ack" only after the broker granted its subscription, plus a grace).
    Three agents, one after another, so a lucky race cannot hide the bug.
(flood) 300 malformed acks and 300 bad commands: the agent logs about them
    at most 10 lines per 10 s (it used to log each one) and keeps working.
    Before them, an ack of seq 2^53 - 1 (the last seq JSON holds exactly):
    ignored and logged; taken, it would empty the spool and make the agent
    continue at seq 2^53, which no collector accepts.
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402


class DataWatcher:
    """mosquitto_sub on an agent's data topic, writing one payload per line to a file."""

    def __init__(self, env, broker, site, agent_id, name):
        self.path = os.path.join(env.subdir(name), "data.jsonl")
        self.f = open(self.path, "wb")
        argv = [T.MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                "-t", "sp/v1/%s/%s/data" % (site, agent_id)]
        self.p = subprocess.Popen(argv, stdout=self.f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        env.register(self)
        # subscribed once a marker published on the topic comes through (no collector
        # listens on these brokers, so nothing else sees it)
        topic = "sp/v1/%s/%s/data" % (site, agent_id)

        def marked():
            T.check(self.p.poll() is None, "mosquitto_sub exited")
            T.publish_ok(broker, topic, '{"marker":1}')
            with open(self.path, "rb") as f:
                return b"marker" in f.read()
        T.wait_until(marked, 10, "mosquitto_sub to receive a marker", interval=0.2)

    def seqs(self):
        with open(self.path, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        return [json.loads(l)["seq"] for l in lines if l.startswith(b"{\"v\"")]

    def cleanup(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
        self.f.close()


def part_window(env):
    T.log("==== (window) no ack, max_unacked 3: exactly seqs 1..3 are published")
    broker = env.broker(name="broker-w")
    watch = DataWatcher(env, broker, "seqwin-1", "gw-1", "watch-w")
    agent = env.agent(broker, "seqwin-1", "gw-1", seed=5, resend_s=1, ack_wait_s=1,
                      extra={"mqtt": {"max_unacked": 3}})
    T.wait_until(lambda: agent.created() >= 6, 30, "the agent to create 6 messages")
    # resend_s 1 doubling: go-backs after 1, 2 and 4 s; watch through two of them
    t_end = time.monotonic() + 4
    T.wait_until(lambda: time.monotonic() >= t_end and len(watch.seqs()) >= 6, 15,
                 "4 s of publishing with at least one go-back")
    seqs = watch.seqs()
    T.log("published: %s; created: %d" % (seqs, agent.created()))
    T.check_eq(sorted(set(seqs)), [1, 2, 3], "distinct seqs published without an ack")
    agent.cleanup()
    watch.cleanup()
    broker.cleanup()


def part_overflow(env):
    T.log("==== (overflow) dropped messages push the oldest held seq past max_unacked")
    site = "seqovf-1"
    broker = env.broker(name="broker-o")
    coll = env.collector(broker, name="collector-o", gap_window_s=3, start=False)
    silent_at = 8
    agent = env.agent(broker, site, "gw-1", seed=41, lifts=2, chargers=64, ports=64, resend_s=1,
                      extra={"agent": {"spool_max_mb": 1, "batch_max": 1000},
                             "mqtt": {"max_unacked": 3}},
                      args=["--scenario", ":silent@%d" % silent_at])
    t0 = time.monotonic()

    def overflowed():
        msgs, dropped = agent.journal_messages()
        return dropped and max(dropped) > 3 + 3 and dropped
    # 66 devices and 4,096 ports are heavy for the agent under ASan on a busy host: it once took
    # 9 s to publish its first message, and the 1 MB spool more than 30 s to overflow
    T.wait_until(overflowed, 90, "the spool to drop messages beyond seq 6", interval=0.2)
    T.wait_until(lambda: time.monotonic() - t0 > silent_at + 1.5, silent_at + 5,
                 "the agent to fall silent")
    last = agent.last_seq()
    msgs, dropped = agent.journal_messages()
    T.log("created %d messages (last seq %d), dropped %d (seqs %d..%d)"
          % (len(msgs), last, len(dropped), min(dropped), max(dropped)))
    T.check(min(s for s, _ in msgs if s not in dropped) > 3,
            "the oldest held seq must be beyond max_unacked for this test")

    T.log("step: the collector starts")
    coll.start()
    T.wait_until(agent.acked_all, 60, "the ack to cover the last seq %d" % last, interval=0.3)
    T.check_drops_accounted(coll, msgs, dropped)
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status")
    kept = [r for s, p in msgs if s not in dropped for r in p["records"]]
    rc, _ = coll.terminate()
    T.check_eq(rc, 0, "collector exit status")
    T.assert_exactly_once(kept, T.db_site_records(coll.db_path, site), "messages kept by the spool")
    broker.cleanup()


def copy_spool(src, dst_dir):
    """Copies the SQLite spool (and its -wal / -shm if any) into dst_dir; returns the copy."""
    os.makedirs(dst_dir, exist_ok=True)
    for side in ("", "-wal", "-shm"):
        if os.path.exists(src + side):
            shutil.copy2(src + side, os.path.join(dst_dir, os.path.basename(src) + side))
    return os.path.join(dst_dir, os.path.basename(src))


def restore_spool(copy, dst):
    for side in ("", "-wal", "-shm"):
        if os.path.exists(dst + side):
            os.unlink(dst + side)
        if os.path.exists(copy + side):
            shutil.copy2(copy + side, dst + side)


def part_rollback(env):
    T.log("==== (rollback) a spool put back behind the collector's ack continues at ack + 1")
    site = "seqrb-1"
    broker = env.broker(name="broker-r")
    coll = env.collector(broker, name="collector-r")
    agent = env.agent(broker, site, "gw-1", seed=7, resend_s=2)
    T.wait_until(lambda: agent.created() >= 3, 30, "3 messages")
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status")
    T.wait_until(agent.acked_all, 20, "the ack to cover seq %d" % agent.last_seq(), interval=0.2)
    snap = copy_spool(agent.spool, env.subdir("spool-snapshot"))
    snap_next = agent.last_seq() + 1
    T.log("spool copied (its next seq is %d)" % snap_next)

    agent.start()
    T.wait_until(lambda: agent.last_seq() >= snap_next + 5, 30, "5 more messages")
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status")
    T.wait_until(agent.acked_all, 20, "the ack to cover seq %d" % agent.last_seq(), interval=0.2)
    ack = T.retained_ack(broker, site, "gw-1")
    dup0 = coll.metrics()["sitepulse_messages_duplicate_total"]
    T.log("acked to seq %d; %d duplicates so far; putting the spool back to next seq %d"
          % (ack, dup0, snap_next))
    restore_spool(snap, agent.spool)

    log_at = len(agent.proc.log_text())
    agent.start(["--scenario", ":silent@0+4"])
    T.wait_until(lambda: agent.last_seq() >= ack + 5 and agent.acked_all(), 40,
                 "5 messages after seq %d, acknowledged" % ack, interval=0.3)
    rc, _ = agent.terminate()
    T.check_eq(rc, 0, "agent exit status")
    T.wait_until(agent.acked_all, 20, "the ack to cover seq %d" % agent.last_seq(), interval=0.2)
    dup1 = coll.metrics()["sitepulse_messages_duplicate_total"]
    T.check_eq(dup1, dup0, "duplicates counted by the collector after the rollback")
    lines = [l for l in agent.proc.log_text()[log_at:].splitlines() if "continuing at seq" in l]
    T.log("agent: %s" % (lines[0].strip() if lines else "(no line)"))
    T.check(len(lines) == 1 and ("continuing at seq %d" % (ack + 1)) in lines[0],
            "the agent must log once that it continues at seq %d: %r" % (ack + 1, lines))
    recs, seqs, dropped = agent.journal_records()
    T.check_eq(seqs, set(range(1, len(seqs) + 1)), "created seqs are 1..N")
    rc, _ = coll.terminate()
    T.check_eq(rc, 0, "collector exit status")
    T.assert_exactly_once(recs, T.db_site_records(coll.db_path, site), "after the rollback")
    broker.cleanup()


def part_learn(env):
    T.log("==== (learn) a new spool with ack_wait_s 0 continues at the retained ack + 1")
    broker = env.broker(name="broker-l")
    for i in range(1, 4):
        site = "seqlearn-%d" % i
        T.publish_ok(broker, "sp/v1/%s/gw-1/ack" % site, '{"v":1,"seq":41,"ts":%d}'
                     % int(time.time() * 1000), retain=True)
        agent = env.agent(broker, site, "gw-1", seed=i, ack_wait_s=0)
        T.wait_until(lambda: agent.created() >= 1, 20, "%s to create a message" % agent.name)
        msgs, _ = agent.journal_messages()
        started = [l for l in agent.proc.log_text().splitlines() if "new spool: starting" in l]
        T.log("%s: first seq %d; %s" % (agent.name, msgs[0][0],
                                        started[0].strip() if started else "(no line)"))
        # (the line too: an ack applied after a wrong start moves the next seq to 42 as well,
        # but only for messages not yet created)
        T.check(started and "starting at seq 42" in started[0],
                "%s: the new spool must start at seq 42: %r" % (agent.name, started))
        T.check_eq(msgs[0][0], 42, "%s: first seq of a new spool with a retained ack of 41"
                   % agent.name)
        agent.cleanup()
    T.log("step: no retained ack, ack_wait_s 0: the new spool still starts (at 1)")
    agent = env.agent(broker, "seqlearn-0", "gw-1", seed=9, ack_wait_s=0)
    T.wait_until(lambda: agent.created() >= 1, 20, "%s to create a message" % agent.name)
    T.check_eq(agent.journal_messages()[0][0][0], 1, "first seq without any ack")
    agent.cleanup()
    broker.cleanup()


def part_flood(env):
    T.log("==== (flood) malformed acks and bad commands are logged at most 10 per 10 s")
    site = "seqflood-1"
    broker = env.broker(name="broker-f")
    agent = env.agent(broker, site, "gw-1", seed=3)
    T.wait_until(lambda: agent.created() >= 1, 20, "the agent to run")
    base = "sp/v1/%s/gw-1/" % site
    seq_max = 2 ** 53 - 1
    T.publish_ok(broker, base + "ack", json.dumps({"v": 1, "seq": seq_max,
                                                  "ts": int(time.time() * 1000)}))
    T.wait_until(lambda: "ignoring ack of seq %d" % seq_max in agent.proc.log_text(), 20,
                 "the agent to log the ack of seq %d as ignored" % seq_max)
    created = agent.created()
    T.wait_until(lambda: agent.created() > created, 20, "a message created after that ack")
    T.check(agent.last_seq() < 1000, "the agent's seqs after an ack of seq %d: last %d"
            % (seq_max, agent.last_seq()))
    rc, out = T.publish_lines(broker, base + "ack", ["{not json %d" % i for i in range(300)])
    T.check_eq(rc, 0, "mosquitto_pub of 300 malformed acks (%s)" % out)
    rc, out = T.publish_lines(broker, base + "cmd", ['{"v":1,"id":"x%d"}' % i for i in range(300)])
    T.check_eq(rc, 0, "mosquitto_pub of 300 bad commands (%s)" % out)
    T.publish_ok(broker, base + "cmd", '{"v":1,"id":"c-flood-end","ts":%d,"cmd":"port_off",'
                 '"dev":"chg-1","port":3}' % int(time.time() * 1000))
    T.wait_until(lambda: "command c-flood-end: port_off" in agent.proc.log_text(), 20,
                 "the agent to apply the command sent after the flood")
    text = agent.proc.log_text()
    bad = [l for l in text.splitlines() if "malformed ack" in l or "bad command" in l]
    T.log("%d lines about 600 bad messages" % len(bad))
    T.check(len(bad) <= 12, "bad input must be logged rate-limited: %d lines" % len(bad))
    T.check(agent.proc.running(), "the agent must keep running")
    agent.cleanup()
    broker.cleanup()


def main(env):
    part_window(env)
    part_overflow(env)
    part_rollback(env)
    part_learn(env)
    part_flood(env)


if __name__ == "__main__":
    T.run(main)
