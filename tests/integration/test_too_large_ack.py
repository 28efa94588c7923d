#!/usr/bin/env python3
"""
test_too_large_ack.py - a data message over 256 KiB is rejected, and still
counts as handled for the end-to-end ack (CONTRACT §3, §3.4).

A fake gateway (mosquitto_pub) sends, with the default gap window (600 s):
  seq 1  exactly 256 KiB, valid: stored;
  seq 2  256 KiB + 1 byte, valid JSON: rejected too_large;
  seq 3  a good message.
The ack must reach 3 within seconds: seq 2 was rejected, and a rejected
message counts as handled. The old collector refused an oversized payload
before reading it, so its seq was unknown: the ack stayed at 1 for the whole
gap window (10 minutes) while the agent sent seq 2 and 3 again and again.
Seq 2 sent again is a duplicate, not a second rejection. Then, as gw-2:
400 KiB of valid JSON (within the 512 KiB the collector reads for a seq:
attributed too), 1.5 MiB (beyond it: not read, left to the gap window as
before) and 300 KiB of broken JSON (no seq to read); each is counted
too_large exactly once, and the collector stays healthy.
"""
import json
import time

import sptest as T

SITE = "big-1"
LIMIT = 256 * 1024


def station(ts):
    return {"t": "station", "dev": "chg-1", "ts": ts, "smoke": False}


def sized(seq, total):
    """A valid data message of exactly total bytes (padded with an unknown field)."""
    m = {"v": 1, "seq": seq, "ts": T.now_ms(), "records": [station(T.now_ms())], "pad": ""}
    base = len(json.dumps(m, separators=(",", ":")))
    m["pad"] = "p" * (total - base)
    body = json.dumps(m, separators=(",", ":"))
    assert len(body) == total, (len(body), total)
    return body


def too_large(coll):
    return coll.metrics().get('sitepulse_messages_rejected_total{reason="too_large"}', 0)


def main(env):
    # the harness's broker refuses packets over 1 MiB; this one takes the 1.5 MiB message
    broker = T.Broker(env)
    with open(broker.conf) as f:
        conf = f.read()
    with open(broker.conf, "w") as f:
        f.write(conf.replace("max_packet_size 1048576", "max_packet_size 4194304"))
    broker.start()
    coll = env.collector(broker)  # gap_window_s: the default 600 s
    gw = T.FakeGateway(broker, SITE, "gw-1")
    gw.birth([{"dev": "chg-1", "kind": "charger", "ports": 4}])

    T.log("step: seq 1 of exactly 256 KiB, seq 2 of 256 KiB + 1, seq 3 good")
    T.publish_ok(broker, gw.topic("data"), sized(1, LIMIT))
    T.publish_ok(broker, gw.topic("data"), sized(2, LIMIT + 1))
    T.publish_ok(broker, gw.topic("data"), json.dumps(
        {"v": 1, "seq": 3, "ts": T.now_ms(), "records": [station(T.now_ms())]}))
    t0 = time.monotonic()
    T.wait_until(lambda: (T.retained_ack(broker, SITE, "gw-1") or 0) >= 3, 10,
                 "gw-1's ack to pass the rejected seq 2 (ack %s)" % T.retained_ack(broker, SITE, "gw-1"))
    T.log("  ack 3 after %.2f s" % (time.monotonic() - t0))
    T.check_eq(too_large(coll), 1, "too_large rejections")
    m = coll.metrics()
    T.check_eq(m.get("sitepulse_messages_stored_total", 0), 2, "messages stored (seq 1 and 3)")
    T.check_eq(m.get("sitepulse_messages_missing_total", 0), 0, "messages declared missing")

    T.log("step: seq 2 again (the agent resends it): a duplicate, not a second rejection")
    T.publish_ok(broker, gw.topic("data"), sized(2, LIMIT + 1))
    T.wait_until(lambda: coll.metrics().get("sitepulse_messages_duplicate_total", 0) >= 1, 10,
                 "seq 2 again counted as a duplicate")
    T.check_eq(too_large(coll), 1, "too_large rejections after the resend")

    T.log("step: gw-2: 400 KiB (seq 1), 1.5 MiB (seq 2), 300 KiB of broken JSON, seq 4 good")
    gw2 = T.FakeGateway(broker, SITE, "gw-2")
    T.publish_ok(broker, gw2.topic("data"), sized(1, 400 * 1024))
    T.wait_until(lambda: (T.retained_ack(broker, SITE, "gw-2") or 0) >= 1, 10, "gw-2's ack of seq 1")
    T.publish_ok(broker, gw2.topic("data"), sized(2, 1536 * 1024))
    T.publish_ok(broker, gw2.topic("data"), '{"v":1,"seq":3,"x":"' + "p" * (300 * 1024))
    T.publish_ok(broker, gw2.topic("data"), json.dumps(
        {"v": 1, "seq": 4, "ts": T.now_ms(), "records": [station(T.now_ms())]}))
    T.wait_until(lambda: too_large(coll) == 4, 10, "four too_large rejections in all")
    time.sleep(1.0)  # nothing more may be counted
    T.check_eq(too_large(coll), 4, "too_large rejections")
    # seq 2 and 3 could not be read: gw-2's ack stays at 1 until the gap window
    T.check_eq(T.retained_ack(broker, SITE, "gw-2"), 1, "gw-2's ack (seq 2, 3 unreadable)")
    T.check_eq(coll.healthz(), 200, "collector /healthz")
    rc, _ = coll.terminate()
    T.check_eq(rc, 0, "collector exit status")


if __name__ == "__main__":
    T.run(main)
