#!/usr/bin/env python3
"""
test_stop.py - a graceful stop under load loses nothing (CONTRACT §3.4, §7).

One publisher like an agent streams data messages seq 1..N (QoS 1, one
station record each) at about 400 a second into one collector, from
mosquitto_pub -l: unlike an agent it has no spool and never sends anything
twice. Mid-stream the collector gets SIGTERM (exit 0 within 5 s), and is
started again while the stream goes on. Paho acknowledges a message to the
broker before it hands it over, so every message the stopping collector was
given must be stored, and every one it was not must still wait in its
persistent session for the restart. At the end:
  - every seq is stored exactly once;
  - sitepulse_messages_missing_total is 0 in both runs ([store]
    gap_window_s = 3, so a lost message would be declared missing, and the
    ack would pass it, within the test);
  - the retained ack reaches N;
  - neither run logged a message arriving after its ingest queue closed or
    left unstored at stop.
Before the fix the collector closed its ingest queue first and disconnected
last: ~1 s of the stream (hundreds of messages) was acknowledged to the
broker and thrown away.
"""
import json
import signal
import subprocess
import tempfile
import threading
import time

import sptest as T

SITE, AGENT, DEV = "stop-1", "gw-1", "chg-1"
N = 2000            # messages in the stream
RATE = 400          # messages a second: ~5 s of stream
STOP_AFTER = 500    # SIGTERM once this many have been written


def now_ms():
    return int(time.time() * 1000)


class Stream:
    """mosquitto_pub -l fed at RATE lines a second from a thread; .written counts them."""

    def __init__(self, broker, t0):
        self.t0 = t0
        self.written = 0
        self.result = None
        self.out = tempfile.TemporaryFile()
        self.p = subprocess.Popen([T.MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(broker.port),
                                   "-q", "1", "-i", "stop-test-publisher",
                                   "-t", "sp/v1/%s/%s/data" % (SITE, AGENT), "-l"],
                                  stdin=subprocess.PIPE, stdout=self.out, stderr=subprocess.STDOUT)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def line(self, seq):
        return json.dumps({"v": 1, "seq": seq, "ts": now_ms(), "records": [
            {"t": "station", "dev": DEV, "ts": self.t0 + seq, "smoke": False, "power_w": seq}]},
            separators=(",", ":")).encode() + b"\n"

    def _run(self):
        start = time.monotonic()
        try:
            for seq in range(1, N + 1):
                self.p.stdin.write(self.line(seq))
                self.written = seq
                if seq % 20 == 0:
                    self.p.stdin.flush()
                    # pacing the publisher, not waiting for a condition
                    ahead = start + seq / RATE - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
            self.p.stdin.close()
            self.result = self.p.wait(30)
        except Exception as e:  # reported by finish()
            self.result = "%s: %s" % (type(e).__name__, e)

    def finish(self, timeout):
        self.thread.join(timeout)
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
        self.out.seek(0)
        return self.result, self.out.read().decode("utf-8", "replace").strip()


def main(env):
    broker = env.broker()
    coll = env.collector(broker, gap_window_s=3)
    t0 = now_ms() - 3600000

    T.log("step: a stream of %d messages at %d/s; SIGTERM after %d" % (N, RATE, STOP_AFTER))
    stream = Stream(broker, t0)
    T.wait_until(lambda: stream.written >= STOP_AFTER, 20, "%d messages written" % STOP_AFTER)
    T.wait_until(lambda: coll.metrics().get("sitepulse_messages_stored_total", 0) > 0, 10,
                 "the collector to store some of the stream")
    rc, el = coll.terminate(signal.SIGTERM, 10)
    T.check(rc == 0, "collector: SIGTERM -> exit 0 expected, got %s" % rc)
    T.check(el <= 5.0, "collector: SIGTERM must end it within 5 s, took %.2f s" % el)
    first_log = coll.proc.log_text()
    T.log("  stopped with %d of %d messages written" % (stream.written, N))
    T.check(stream.written < N, "the stream must still be running when the collector stops "
            "(it wrote all %d already: make N larger)" % N)

    T.log("step: restart while the stream goes on; then every seq must be stored once")
    coll.start()
    rc, out = stream.finish(60)
    T.check(rc == 0, "mosquitto_pub -l stream failed: %s %s" % (rc, out))

    def acked():
        return (T.retained_ack(broker, SITE, AGENT) or 0) >= N
    T.wait_until(acked, 30, "the ack of %s/%s to reach %d" % (SITE, AGENT, N), interval=0.3)
    stored = T.stored_records(coll, SITE, [DEV])
    seqs = sorted(r["ts"] - t0 for r in stored)
    missing = sorted(set(range(1, N + 1)) - set(seqs))
    T.check(not missing, "%d of %d seqs not stored (the first: %s): taken from the broker and "
            "dropped at the stop" % (len(missing), N, missing[:10]))
    T.check_eq(len(seqs), N, "readings stored (each seq once)")
    m = coll.metrics()
    T.check_eq(m.get("sitepulse_messages_missing_total", 0), 0.0,
               "sitepulse_messages_missing_total after the restart")
    for name, text in (("first run", first_log), ("second run", coll.proc.log_text())):
        T.check("declared" not in text or "messages missing" not in text,
                "%s: no message may be declared missing" % name)
        T.check("after the ingest queue closed" not in text,
                "%s: no message may arrive after the ingest queue closed" % name)
        T.check("were not stored within" not in text,
                "%s: the stop must store everything it took" % name)
    rc, el = coll.terminate()
    T.check(rc == 0 and el <= 5.0, "collector: SIGTERM -> exit 0 within 5 s, got %s after %.2f s"
            % (rc, el))


if __name__ == "__main__":
    T.run(main)
