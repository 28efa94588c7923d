#!/usr/bin/env python3
"""
test_hostile.py - the collector against hostile input (CONTRACT §3).

One collector, one well-behaved agent streaming (site hostile-1, agent
gw-good), and between its messages the test publishes, with mosquitto_pub, as
a fake agent gw-fake of the same site: a birth declaring its own devices, then
malformed JSON, wrong types, out-of-range values, bad ids, bad topics, an
oversized payload, too many records, payloads on the wrong topic, kind
mismatches, a foreign device, deeply nested JSON, invalid UTF-8, a message
mixing good and bad records, size and count boundaries (exactly 256 KiB,
exactly 1000 records), a redelivered message, hostile births and states, a
flood of 300 broken messages, poison messages (the ack must pass them) and a
gap in the seqs (declared missing after gap_window_s, stored when it comes late).
Last, once the good agent has stopped, a rejected message (v 2) sent twice by
gw-redo: rejected once, a duplicate the second time (not rejected or logged
again), and gw-redo's ack published again (its ts moves).

Then: the good agent's records are stored exactly once; exactly the fake
agent's good records are stored (none of the bad ones); the collector stayed
healthy (/healthz polled every 0.2 s all along) and ends with exit 0 on
SIGTERM; the rejection counters grew by at least the rejections provoked,
reason by reason (codec.h names).
"""
import collections
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sptest as T  # noqa: E402

SITE = "hostile-1"
GOOD = "gw-good"
FAKE = "gw-fake"
MSG = 'sitepulse_messages_rejected_total{reason="%s"}'
REC = 'sitepulse_records_rejected_total{reason="%s"}'
PAYLOAD_MAX = 256 * 1024
GAP_WINDOW_S = 3


def topic(kind, site=SITE, agent=FAKE):
    return "sp/v1/%s/%s/%s" % (site, agent, kind)


class Fake:
    """The fake agent: seqs, unique timestamps, expectations."""

    def __init__(self, broker):
        self.broker = broker
        self.seq = 0
        self.t0 = int(time.time() * 1000) - 600000
        self.n = 0
        self.good = []                          # records that must be stored
        self.expect = collections.Counter()     # metric series -> minimum increase
        self.sent = 0
        self.poison_good = []

    def ts(self):
        self.n += 1
        return self.t0 + self.n

    def next_seq(self):
        self.seq += 1
        return self.seq

    # records
    def port(self, dev="fchg-1", port=1, **kw):
        r = {"t": "port", "dev": dev, "ts": self.ts(), "port": port, "state": "charging",
             "v": 229.5, "a": 3.25, "w": 745.5, "temp_c": 31.5, "session_wh": 12.5}
        r.update(kw)
        return r

    def lift(self, dev="flift-1", **kw):
        r = {"t": "lift", "dev": dev, "ts": self.ts(), "floor": 2, "dir": "up", "door": "closed",
             "door_zone": False, "occupied": True, "speed": 0.75, "mode": "normal"}
        r.update(kw)
        return r

    def station(self, dev="fchg-1", **kw):
        r = {"t": "station", "dev": dev, "ts": self.ts(), "smoke": False, "power_w": 1234.5}
        r.update(kw)
        return r

    def fault(self, dev="fchg-1", **kw):
        r = {"t": "fault", "dev": dev, "ts": self.ts(), "code": "E.OVERTEMP-1", "active": True,
             "port": 2, "detail": "port 2 at 71.5 \u00b0C"}
        r.update(kw)
        return r

    def data(self, records, seq=None, **extra):
        m = {"v": 1, "seq": self.next_seq() if seq is None else seq,
             "ts": int(time.time() * 1000), "records": records}
        m.update(extra)
        return m

    # publishing
    def pub(self, kind, payload, what, msg_reasons=(), rec_reasons=(), good=(), t=None):
        if isinstance(payload, dict):
            payload = json.dumps(payload, separators=(",", ":"))
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        T.publish_ok(self.broker, t or topic(kind), payload)
        self.sent += 1
        for r in msg_reasons:
            self.expect[MSG % r] += 1
        for r in rec_reasons:
            self.expect[REC % r] += 1
        self.good.extend(good)
        T.log("  sent %-46s %7d bytes -> %s" % (
            what, len(payload), ", ".join(["msg:" + r for r in msg_reasons]
                                          + ["rec:" + r for r in rec_reasons]) or "accepted"))


def nested(depth):
    return "[" * depth + "]" * depth


def main(env):
    broker = env.broker()
    coll = env.collector(broker, gap_window_s=GAP_WINDOW_S)
    good = env.agent(broker, SITE, GOOD, seed=5, lifts=1, chargers=1, ports=4, heartbeat_s=1,
                     time_scale=20, batch_ms=200, resend_s=2, ack_wait_s=1)
    T.wait_until(lambda: {"lift-1", "chg-1"} <= {d["dev"] for d in coll.api_ok("/api/v1/devices",
                                                                               {"site": SITE})},
                 20, "the good agent's devices to be known")
    m0 = coll.metrics()
    fk = Fake(broker)

    with T.HealthProbe(coll) as probe:
        T.log("step: the fake agent's birth and state")
        birth = {"v": 1, "ts": int(time.time() * 1000), "fw": "fake 0.0", "devices": [
            {"dev": "fchg-1", "kind": "charger", "ports": 4, "port_limit_w": 1000},
            {"dev": "flift-1", "kind": "lift", "floors": [0, 5], "rated_speed": 1.0, "rated_load": 630},
            {"dev": "Bad Dev", "kind": "lift", "floors": [0, 5], "rated_speed": 1.0},
            {"dev": "ftoaster-1", "kind": "toaster"},
        ]}
        fk.pub("birth", birth, "birth (2 good devices, 2 bad)", rec_reasons=["bad_id", "bad_enum"])
        fk.pub("state", {"online": True, "ts": int(time.time() * 1000)}, "state online")

        def fake_devices():
            devs = {d["dev"]: d for d in coll.api_ok("/api/v1/devices", {"site": SITE})}
            return ("fchg-1" in devs and "flift-1" in devs) and devs
        devs = T.wait_until(fake_devices, 10, "the fake agent's birth to be processed")
        T.check_eq((devs["fchg-1"]["kind"], devs["fchg-1"]["agent"]), ("charger", FAKE), "fchg-1 kind, agent")
        T.check_eq((devs["flift-1"]["kind"], devs["flift-1"]["agent"]), ("lift", FAKE), "flift-1 kind, agent")

        steps = hostile_steps(fk)
        T.log("step: %d hostile publications, interleaved with the good agent's messages" % len(steps))
        for i, step in enumerate(steps):
            step()
            if i % 6 == 5:
                T.wait_journal_growth([good], 1, 10, "the good agent to keep streaming")
            T.check(coll.proc.running(), "the collector died after %d hostile publications:\n%s"
                    % (i + 1, coll.proc.log_tail(20)))

        check_gap(broker, coll, fk)

        T.log("step: waiting until every expected rejection is counted")

        def counted():
            m = coll.metrics()
            short = {k: (m.get(k, 0) - m0.get(k, 0), n) for k, n in fk.expect.items()
                     if m.get(k, 0) - m0.get(k, 0) < n}
            if short:
                raise T.TestFailure("not yet counted (got, want): %r" % short)
            return True
        T.wait_until(counted, 20, "the rejection counters to reach the expected values")

        T.log("step: the good agent keeps streaming, then stops")
        T.wait_journal_growth([good], 2, 10)
        rc, el = good.terminate(signal.SIGTERM)
        T.check(rc == 0 and el <= 5, "good agent: SIGTERM -> exit 0 within 5 s, got %s after %.2f s" % (rc, el))
        T.wait_stored_equals_journal(coll, [good], 30, "the good agent's records to be stored")
        check_rejected_again(broker, coll, fk)
    T.check(not probe.bad, "/healthz must stay 200 under hostile input; non-200 answers: %r" % probe.bad[:10])
    T.log("healthz polled %d times, always 200" % probe.samples)

    recs, _, _ = good.journal_records()
    T.assert_exactly_once(recs, T.stored_records(coll, SITE, good.devices), "good agent")

    T.log("step: exactly the fake agent's good records are stored")
    all_devs = {d["dev"]: d for d in coll.api_ok("/api/v1/devices", {"site": SITE})}
    fake_devs = sorted(d for d, v in all_devs.items() if v["agent"] == FAKE)
    T.log("fake agent's devices: %s" % fake_devs)
    T.check_eq(sorted(fake_devs), ["fchg-1", "flift-1", "fnew-1"], "devices owned by the fake agent")
    T.check_eq(all_devs["lift-1"]["agent"], GOOD, "lift-1 still belongs to the good agent")
    T.check_eq(sorted(all_devs), sorted(["chg-1", "lift-1", "fchg-1", "flift-1", "fnew-1", "pchg-1",
                                         "gchg-1", "rchg-1"]),
               "devices of the site (no bad ids, no toaster)")
    T.assert_exactly_once(fk.good, T.stored_records(coll, SITE, fake_devs), "fake agent's good records")
    T.assert_exactly_once(fk.poison_good, T.stored_records(coll, SITE, ["pchg-1"]), "gw-poison's good records")
    T.log("step: the ack of gw-poison passes its rejected messages (seq 2 and 3)")
    T.wait_until(lambda: (T.retained_ack(broker, SITE, "gw-poison") or -1) >= 4, 10,
                 "the retained ack of gw-poison to reach seq 4")

    m = coll.metrics()
    T.log("rejection counters (increase / at least expected):")
    report, short = [], []
    keys = sorted(set(k for k in m if "_rejected_total" in k and m[k] != m0.get(k, 0)) | set(fk.expect))
    for k in keys:
        d = m.get(k, 0) - m0.get(k, 0)
        report.append("  %-62s %4d / %d" % (k, d, fk.expect.get(k, 0)))
        if d < fk.expect.get(k, 0):
            short.append(k)
    print("\n".join(report), flush=True)
    T.check(not short, "rejection counters below the provoked rejections: %s" % short)
    unprovoked = [k for k in keys if k not in fk.expect]
    T.check(not unprovoked, "rejections nobody provoked (misclassified, or the good agent's "
            "records rejected): %s" % unprovoked)
    T.check(m["sitepulse_messages_duplicate_total"] - m0.get("sitepulse_messages_duplicate_total", 0) >= 1,
            "the redelivered fake message must count as a duplicate")
    T.check_eq(m.get(MSG % "too_many_devices", 0), 0.0, "too_many_devices (never provoked)")

    rc, el = coll.terminate()
    T.check(rc == 0 and el <= 5, "collector: SIGTERM -> exit 0 within 5 s, got %s after %.2f s" % (rc, el))


def check_gap(broker, coll, fk):
    """A seq that never comes is declared missing after gap_window_s, so the ack
    moves on; when it comes after all it is still stored (CONTRACT §3.2, §3.4)."""
    T.log("step: a gap in gw-gappy's seqs (gap window %d s)" % GAP_WINDOW_S)
    t = topic("data", agent="gw-gappy")
    recs = {n: fk.station(dev="gchg-1") for n in (1, 2, 3, 4)}
    m0 = coll.metrics()
    for seq in (1, 2, 4):
        fk.pub("data", {"v": 1, "seq": seq, "ts": int(time.time() * 1000), "records": [recs[seq]]},
               "gw-gappy seq %d" % seq, t=t)
    t_sent = time.monotonic()
    T.wait_until(lambda: T.retained_ack(broker, SITE, "gw-gappy") == 2, GAP_WINDOW_S,
                 "the ack of gw-gappy to stop at 2 (seq 3 missing)")
    # just before the window ends seq 3 must still be open: the ack still at 2. (Asked of
    # gw-gappy's own ack: other agents' gaps may expire meanwhile and move the counter.)
    wait = t_sent + GAP_WINDOW_S - 1.0 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
        T.check_eq(T.retained_ack(broker, SITE, "gw-gappy"), 2,
                   "gw-gappy's ack 1 s before the gap window ends (seq 3 not yet declared missing)")
    T.wait_until(lambda: T.retained_ack(broker, SITE, "gw-gappy") == 4, GAP_WINDOW_S + 10,
                 "the ack of gw-gappy to pass the gap after the gap window")
    T.check(time.monotonic() - t_sent >= GAP_WINDOW_S - 0.5,
            "the ack passed the gap after %.1f s, before the %d s gap window"
            % (time.monotonic() - t_sent, GAP_WINDOW_S))
    m1 = coll.metrics()
    T.check(m1["sitepulse_messages_missing_total"] >= m0["sitepulse_messages_missing_total"] + 1,
            "sitepulse_messages_missing_total must count the gap: %s -> %s"
            % (m0["sitepulse_messages_missing_total"], m1["sitepulse_messages_missing_total"]))
    fk.pub("data", {"v": 1, "seq": 3, "ts": int(time.time() * 1000), "records": [recs[3]]},
           "gw-gappy seq 3, late", t=t)
    T.wait_until(lambda: len(T.stored_records(coll, SITE, ["gchg-1"])) == 4, 10,
                 "the late seq 3 to be stored")
    T.assert_exactly_once(list(recs.values()), T.stored_records(coll, SITE, ["gchg-1"]), "gw-gappy")
    fk.pub("data", {"v": 1, "seq": 3, "ts": int(time.time() * 1000), "records": [recs[3]]},
           "gw-gappy seq 3 once more (duplicate)", t=t)
    fk.pub("data", {"v": 1, "seq": 5, "ts": int(time.time() * 1000), "records": [fk.station(dev="gchg-1")]},
           "gw-gappy seq 5", t=t)
    T.wait_until(lambda: T.retained_ack(broker, SITE, "gw-gappy") == 5, 10, "the ack of gw-gappy to reach 5")
    T.check_eq(len(T.stored_records(coll, SITE, ["gchg-1"])), 5, "readings of gchg-1 (seq 3 stored once)")


def check_rejected_again(broker, coll, fk):
    """A rejected message that comes again is a duplicate like any other: counted
    as rejected once (and logged once), as a duplicate the second time, and its
    agent's ack is published again (it evidently missed it). Run once the good
    agent has stopped, so that nobody else moves the counters."""
    T.log("step: a rejected message (v 2) redelivered as gw-redo")
    t = topic("data", agent="gw-redo")
    fk.pub("data", {"v": 1, "seq": 1, "ts": int(time.time() * 1000), "records": [fk.station(dev="rchg-1")]},
           "gw-redo seq 1 (good)", t=t)
    bad = json.dumps({"v": 2, "seq": 2, "ts": int(time.time() * 1000), "records": [fk.port(dev="rchg-1")]},
                     separators=(",", ":"))
    fk.pub("data", bad, "gw-redo seq 2 (bad version)", ["bad_version"], t=t)
    T.wait_until(lambda: T.retained_ack(broker, SITE, "gw-redo") == 2, 10,
                 "the ack of gw-redo to pass its rejected seq 2")

    def ack_ts():
        raw = T.retained(broker, topic("ack", agent="gw-redo"))
        return raw and json.loads(raw.decode("utf-8"))["ts"]

    def settled():
        # published again within a second at most (pacing): the same ts 1.2 s apart is the last
        a = ack_ts()
        time.sleep(1.2)
        return a is not None and ack_ts() == a and a
    ts0 = T.wait_until(settled, 15, "gw-redo's ack to settle")
    m0 = coll.metrics()
    log_at = len(coll.proc.log_text())
    fk.pub("data", bad, "gw-redo seq 2 again (redelivered)", t=t)
    keys = (MSG % "bad_version", "sitepulse_messages_duplicate_total")

    def handled():
        m = coll.metrics()
        return any(m.get(k, 0) > m0.get(k, 0) for k in keys) and m
    m1 = T.wait_until(handled, 10, "the redelivery to be counted (as a duplicate or a rejection)")
    grew = {k: m1.get(k, 0) - m0.get(k, 0) for k in keys}
    T.log("counted for the redelivery: %s" % grew)
    T.check_eq(grew[MSG % "bad_version"], 0, "bad_version rejections counted for the redelivery")
    T.check_eq(grew["sitepulse_messages_duplicate_total"], 1, "duplicates counted for the redelivery")
    ts1 = T.wait_until(lambda: (ack_ts() or 0) > ts0 and ack_ts(), 10,
                       "gw-redo's ack (ts %s) to be published again after the duplicate" % ts0)
    T.check_eq(T.retained_ack(broker, SITE, "gw-redo"), 2, "gw-redo's ack after the duplicate")
    T.log("gw-redo's ack published again: ts %d -> %d" % (ts0, ts1))
    again = [l for l in coll.proc.log_text()[log_at:].splitlines() if "gw-redo seq 2" in l]
    T.check(not again, "the redelivered rejection must not be logged again: %s" % again)


def hostile_steps(fk):
    """The hostile publications, in order, as closures (so seqs and timestamps
    are taken when they are sent)."""
    S = []

    def add(fn):
        S.append(fn)

    # a good message first, kept for the redelivery below
    first = {}

    def good_first():
        recs = [fk.port(port=1), fk.lift(), fk.station()]
        first["msg"] = fk.data(recs)
        fk.pub("data", first["msg"], "good message (3 records)", good=recs)
    add(good_first)

    # the same member twice: ambiguous between parsers, so the whole message is
    # refused and its seqs stay open (sent early: check_gap needs them expired by then)
    add(lambda: fk.pub("data", '{"v":1,"seq":%d,"seq":%d,"ts":%d,"records":[{"t":"station",'
                       '"dev":"fchg-1","ts":%d,"smoke":false}]}' % (fk.next_seq(), fk.next_seq(),
                                                                 int(time.time() * 1000), fk.ts()),
                       "seq twice", ["duplicate_field"]))
    # syntactically broken
    add(lambda: fk.pub("data", '{"v":1,"seq":%d,"ts":%d,"records":[' % (fk.next_seq(), fk.ts()),
                       "truncated JSON", ["bad_json"]))
    add(lambda: fk.pub("data", json.dumps(fk.data([fk.port()])) + " trailing", "JSON + trailing garbage",
                       ["bad_json"]))
    add(lambda: fk.pub("data", b'{"v":1,"seq":\xff\xfe}', "raw invalid bytes", ["bad_json"]))
    add(lambda: fk.pub("data", b"", "empty payload", ["bad_json"]))
    add(lambda: fk.pub("data", "[1,2,3]", "an array, not an object", ["not_object"]))
    add(lambda: fk.pub("data", "NaN", "a bare NaN", ["bad_json"]))

    # deeply nested: beyond any sane parser's limit (whole message), and inside a record
    add(lambda: fk.pub("data", '{"v":1,"seq":%d,"ts":%d,"records":[{"t":"station","dev":"fchg-1",'
                       '"ts":%d,"smoke":false}],"x":%s}' % (fk.next_seq(), int(time.time() * 1000),
                                                            fk.ts(), nested(100000)),
                       "100000-deep nesting", ["bad_json"]))
    add(lambda: fk.pub("data", '{"v":1,"seq":%d,"ts":%d,"records":[{"t":"station","dev":"fchg-1",'
                       '"ts":%d,"smoke":false,"x":%s}]}' % (fk.next_seq(), int(time.time() * 1000),
                                                           fk.ts(), nested(5000)),
                       "5000-deep nesting in a record", ["bad_json"]))

    # wrong types and ranges at the message level
    add(lambda: fk.pub("data", dict(fk.data([fk.port()]), seq=str(fk.next_seq())), "seq as a string",
                       ["bad_type"]))
    add(lambda: fk.pub("data", fk.data([fk.port()], seq=fk.next_seq() + 0.5), "seq 1.5-like",
                       ["bad_type"]))
    add(lambda: fk.pub("data", fk.data([fk.port()], seq=-3), "negative seq", ["out_of_range"]))
    add(lambda: fk.pub("data", fk.data([fk.port()], seq=1e300), "seq 1e300", ["out_of_range"]))
    add(lambda: fk.pub("data", fk.data([fk.port()], v=2), "version 2", ["bad_version"]))
    add(lambda: fk.pub("data", fk.data([fk.port()], v="1"), "version as a string", ["bad_type"]))
    add(lambda: fk.pub("data", {k: v for k, v in fk.data([fk.port()]).items() if k != "ts"},
                       "no ts", ["missing_field"]))
    add(lambda: fk.pub("data", fk.data([fk.port()], ts=1000), "message ts in 1970", ["bad_ts"]))
    add(lambda: fk.pub("data", fk.data([]), "empty records", ["no_records"]))
    add(lambda: fk.pub("data", fk.data({"t": "port"}), "records not an array", ["bad_type"]))
    add(lambda: fk.pub("data", fk.data([fk.station() for _ in range(2000)]), "2000 records",
                       ["too_many_records"]))

    # sizes
    def sized(total, reasons, what):
        recs = [fk.station(dev="fchg-1")]
        m = fk.data(recs, pad="")
        base = len(json.dumps(m, separators=(",", ":")))
        m["pad"] = "p" * (total - base)
        body = json.dumps(m, separators=(",", ":"))
        assert len(body) == total, (len(body), total)
        fk.pub("data", body, what, reasons, good=[] if reasons else recs)
    add(lambda: sized(300 * 1024, ["too_large"], "300 KiB"))
    add(lambda: sized(PAYLOAD_MAX + 1, ["too_large"], "256 KiB + 1 byte"))
    add(lambda: sized(PAYLOAD_MAX, [], "exactly 256 KiB (allowed)"))

    def thousand():
        recs = [fk.port(port=1 + i % 4, state="idle", v=230.0 + i % 7 * 0.5, a=0, w=0) for i in range(1000)]
        fk.pub("data", fk.data(recs), "exactly 1000 records (allowed)", good=recs)
    add(thousand)

    # payloads on the wrong topic
    add(lambda: fk.pub("data", {"v": 1, "ts": int(time.time() * 1000), "devices": [
        {"dev": "fchg-1", "kind": "charger", "ports": 4}]}, "a birth payload on the data topic",
        ["missing_field"]))
    add(lambda: fk.pub("birth", fk.data([fk.port()], seq=999999), "a data payload on the birth topic",
                       ["missing_field"]))

    # hostile births and states
    add(lambda: fk.pub("birth", '{"v":1,"devices":[', "truncated birth", ["bad_json"]))
    add(lambda: fk.pub("state", '{"online":"yes"}', "state online as a string", ["bad_type"]))
    add(lambda: fk.pub("state", "garbage", "state garbage", ["bad_json"]))
    add(lambda: fk.pub("state", {"online": True, "ts": int(time.time() * 1000)}, "state online again"))

    # bad topics (the collector's filters match them; their ids are not identifiers)
    add(lambda: fk.pub("data", fk.data([fk.port()]), "topic with site BAD!", ["bad_topic"],
                       t="sp/v1/BAD!/x/data"))
    add(lambda: fk.pub("data", fk.data([fk.port()]), "topic with uppercase agent", ["bad_topic"],
                       t="sp/v1/%s/GW-FAKE/data" % SITE))
    add(lambda: fk.pub("birth", "{}", "topic with a blank in the agent", ["bad_topic"],
                       t="sp/v1/%s/bad agent/birth" % SITE))
    add(lambda: fk.pub("data", fk.data([fk.port()]), "topic with a 65-character site", ["bad_topic"],
                       t="sp/v1/%s/x/data" % ("s" * 65)))

    # one message mixing good and bad records: the good ones are stored
    def mixed():
        good = [fk.port(port=2), fk.lift(floor=5), fk.fault(), fk.station(dev="fnew-1"),
                fk.lift(x_future_field={"a": [1, 2]})]
        good_stored = good[:4] + [{k: v for k, v in good[4].items() if k != "x_future_field"}]
        bad = [
            (fk.port(port=99), "out_of_range"),                       # beyond 64
            (fk.port(port=3, v=-5.0), "out_of_range"),                # negative voltage
            (fk.port(port=4, temp_c=1e9), "out_of_range"),
            (fk.port(port=5), "out_of_range"),                        # fchg-1 has 4 ports (birth)
            (fk.lift(floor=7), "out_of_range"),                       # flift-1 serves 0..5 (birth)
            (fk.port(dev="Bad Dev"), "bad_id"),
            (fk.port(dev="x" * 65), "bad_id"),
            (fk.port(dev=17), "bad_type"),
            (fk.lift(dev="fchg-1"), "kind_mismatch"),                 # a lift record for a charger
            (fk.port(dev="flift-1"), "kind_mismatch"),                # a port record for a lift
            (fk.lift(dev="lift-1"), "foreign_device"),                # the good agent's lift
            (fk.fault(detail="x" * 300), "bad_text"),                 # longer than 256 bytes
            (fk.fault(detail="bell\u0007"), "bad_text"),              # control character
            (fk.fault(code="has space"), "bad_text"),
            (fk.port(state="exploding"), "bad_enum"),
            ({"t": "toaster", "dev": "fchg-1", "ts": fk.ts()}, "unknown_kind"),
            (fk.port(ts=1000), "bad_ts"),
            (fk.port(ts=int(time.time() * 1000) + 3 * 86400000), "bad_ts"),
            (fk.lift(door_zone=1), "bad_type"),
            (fk.port(port="1"), "bad_type"),
            (fk.port(port=1.5), "bad_type"),
            ({k: v for k, v in fk.lift().items() if k != "floor"}, "missing_field"),
            ({"dev": "fchg-1", "ts": fk.ts()}, "missing_field"),
            (5, "not_object"),
        ]
        recs = []
        for i, (r, _) in enumerate(bad):
            recs.append(r)
            if i < len(good):
                recs.append(good[i])
        body = json.dumps(fk.data(recs), separators=(",", ":"))
        # duplicate field: the same key twice in one record (json.dumps cannot write it)
        dup = '{"t":"port","dev":"fchg-1","ts":%d,"port":1,"port":2,"state":"idle"}' % fk.ts()
        # invalid UTF-8 in a fault detail (raw bytes, not an escape)
        badutf = ('{"t":"fault","dev":"fchg-1","ts":%d,"code":"E1","active":false,"detail":"caf'
                  % fk.ts()).encode() + b'\xc3\x28 \xff"}'
        payload = body[:-2].encode() + b"," + dup.encode() + b"," + badutf + b"]}"
        fk.pub("data", payload, "mixed: %d good + %d bad records" % (len(good), len(bad) + 2),
               rec_reasons=[r for _, r in bad] + ["duplicate_field", "bad_text"], good=good_stored)
    add(mixed)

    # the first message again (a redelivery): ignored, counted as duplicate
    add(lambda: fk.pub("data", first["msg"], "the first good message again (same seq)"))

    # a flood of garbage in one connection: the collector keeps up and stays healthy
    def flood():
        lines = []
        for i in range(300):
            lines.append(['{"v":1,"seq":', "not json %d" % i, '{"v":1,"seq":%d,' % (i + 1),
                          "[" * 50][i % 4])
        rc, out = T.publish_lines(fk.broker, topic("data", agent="gw-flood"), lines)
        T.check(rc == 0, "mosquitto_pub -l flood failed (%d): %s" % (rc, out))
        fk.expect[MSG % "bad_json"] += 300
        T.log("  sent a flood of 300 broken messages as gw-flood")
    add(flood)

    # poison messages are handled: the ack passes over them (CONTRACT §3, §3.4)
    def poison():
        t = topic("data", agent="gw-poison")
        fk.poison_good = [fk.station(dev="pchg-1"), fk.station(dev="pchg-1", smoke=True)]
        fk.pub("data", {"v": 1, "seq": 1, "ts": int(time.time() * 1000),
                        "records": [fk.poison_good[0]]}, "gw-poison seq 1 (good)", t=t)
        fk.pub("data", {"v": 2, "seq": 2, "ts": int(time.time() * 1000), "records": []},
               "gw-poison seq 2 (bad version)", ["bad_version"], t=t)
        fk.pub("data", {"v": 1, "seq": 3, "ts": int(time.time() * 1000),
                        "records": [fk.port(dev="pchg-1", port=0)]}, "gw-poison seq 3 (only bad records)",
               rec_reasons=["out_of_range"], t=t)
        fk.pub("data", {"v": 1, "seq": 4, "ts": int(time.time() * 1000),
                        "records": [fk.poison_good[1]]}, "gw-poison seq 4 (good)", t=t)
    add(poison)

    # a last good message after all that
    def good_last():
        recs = [fk.port(port=4, state="full"), fk.lift(floor=0, dir="stop", door="open")]
        fk.pub("data", fk.data(recs), "good message after all (2 records)", good=recs)
    add(good_last)
    return S


if __name__ == "__main__":
    T.run(main)
