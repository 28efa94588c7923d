"""
benchlib.py - the processes and measurements behind bench/run.

Everything runs on loopback, in a private work directory: mosquitto on a
free port with a generated configuration, the real sitepulse-collector with
a fresh database, sp-loadgen processes, mosquitto_sub as the counting
subscriber. Each child dies with the runner (PR_SET_PDEATHSIG) and is
killed at exit (atexit, SIGTERM/SIGINT handler): no process outlives a run.
Every wait polls a condition up to a deadline.

Measurements are taken from the outside only: /proc/PID/stat (CPU),
/proc/PID/status (VmHWM, VmRSS), the broker's log (subscriptions), the
collector's HTTP API, and its SQLite file after it has stopped.
Only the Python standard library is used (and tests/integration/chunkfmt.py,
the stored chunk format).
"""

import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

# the stored chunk format, read by the integration tests too
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import chunkfmt  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
VIEWER_TOKEN = "bench-viewer-token-0123456789abcdef"
OPERATOR_TOKEN = "bench-operator-token-0123456789abcdef"

_LIVE = set()  # every Proc started and not yet reaped


class BenchError(RuntimeError):
    """A run could not be measured; the message says what went wrong."""


class Stall(BenchError):
    """The collector stopped making progress; the message says what it was doing."""


def log(msg):
    print("  " + msg, flush=True)


def wait_until(fn, timeout, what, interval=0.05):
    """Calls fn() until it returns a truthy value (returned), up to timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except (OSError, ValueError, http.client.HTTPException) as e:
            last = "%s: %s" % (type(e).__name__, e)
        if time.monotonic() >= deadline:
            raise BenchError("timed out after %.0f s waiting for %s (last: %s)" % (timeout, what, last))
        time.sleep(interval)


def cpu_snapshot():
    """{pid: (name, CPU seconds)} of every process and kernel thread now running."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[int(pid)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def other_cpu(before, after, ours, seconds):
    """CPU of the processes not in ours between two snapshots, in cores, by name (kworker/1:2
    counts as kworker), largest first: what else ran on the machine, including kernel threads
    working for us (journal commits of our fsyncs: jbd2, kworker)."""
    by_name = {}
    for pid, (name, t) in after.items():
        if pid in ours:
            continue
        used = t - before[pid][1] if pid in before and before[pid][0] == name else t
        if used > 0:
            key = name.split("/")[0].split(":")[0]
            by_name[key] = by_name.get(key, 0.0) + used / seconds
    return sorted(((round(v, 3), k) for k, v in by_name.items()), reverse=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- processes

try:
    import ctypes
    _PRCTL = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except Exception:  # not glibc: atexit still cleans up
    _PRCTL = None


def _child_setup():
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the runner


def cmdline(argv):
    """argv as a shell command someone can paste."""
    out = []
    for a in argv:
        a = str(a)
        safe = a and all(c.isalnum() or c in "-_./:=,@%+" for c in a)
        out.append(a if safe else "'" + a.replace("'", "'\\''") + "'")
    return " ".join(out)


class Proc:
    """One child process; stderr (and stdout unless captured) go to a log file."""

    def __init__(self, name, argv, log_path, capture=False, stdout_null=False):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.capture = capture
        self.stdout_null = stdout_null
        self.p = None
        self.exited_at = None  # wall clock time.time() when the exit was seen
        self._waiter = None
        self._out = None

    def start(self):
        logf = open(self.log_path, "ab")
        logf.write(("---- %s\n" % cmdline(self.argv)).encode())
        logf.flush()
        stdout = subprocess.PIPE if self.capture else (subprocess.DEVNULL if self.stdout_null else logf)
        self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=logf,
                                  preexec_fn=_child_setup)
        logf.close()
        _LIVE.add(self)
        self._waiter = threading.Thread(target=self._wait, daemon=True)
        self._waiter.start()
        return self

    def _wait(self):
        if self.capture:
            self._out = self.p.stdout.read()
        self.p.wait()
        self.exited_at = time.time()

    @property
    def pid(self):
        return self.p.pid

    def running(self):
        return self.p is not None and self.p.poll() is None

    def join(self, timeout):
        """Waits for the exit; kills the process and raises on timeout."""
        self._waiter.join(timeout)
        if self._waiter.is_alive():
            self.kill()
            raise BenchError("%s did not finish within %.0f s (killed); see %s"
                             % (self.name, timeout, self.log_path))
        _LIVE.discard(self)
        return self.p.returncode

    def output(self):
        return self._out.decode(errors="replace") if self._out is not None else ""

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after timeout. Returns (exit code, seconds to exit)."""
        if self.p is None:
            return None, 0.0
        t0 = time.monotonic()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._waiter:
            self._waiter.join(5)
        _LIVE.discard(self)
        return self.p.returncode, time.monotonic() - t0

    def kill(self):
        if self.p is not None and self.p.poll() is None:
            self.p.kill()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        _LIVE.discard(self)

    # -- /proc
    def cpu_s(self):
        """utime + stime of the process (all its threads), seconds."""
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)

    def status_kb(self, key):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise BenchError("%s: no %s in /proc/%d/status" % (self.name, key, self.pid))

    def reset_peak(self):
        """Sets VmHWM back to the current VmRSS (Linux's clear_refs 5), so that a later VmHWM is
        the peak since now."""
        with open("/proc/%d/clear_refs" % self.pid, "w") as f:
            f.write("5")

    def log_tail(self, n=10):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


def kill_all():
    for p in list(_LIVE):
        p.kill()


atexit.register(kill_all)


# ---------------------------------------------------------------- mosquitto

class Broker:
    """mosquitto on a free loopback port, its configuration and log in dir."""

    def __init__(self, dir):
        os.makedirs(dir, exist_ok=True)
        self.dir = dir
        self.port = free_port()
        self.conf = os.path.join(dir, "mosquitto.conf")
        self.log_file = os.path.join(dir, "mosquitto.log")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "listener %d 127.0.0.1" % self.port,
                "allow_anonymous true",
                "persistence false",
                "max_queued_messages 1000000",
                "max_inflight_messages 1000",
                "log_dest file %s" % self.log_file,
                "log_type error", "log_type warning", "log_type notice",
                "log_type information", "log_type subscribe",
            ]) + "\n")
        # mosquitto started as root drops to its own user before opening the log
        open(self.log_file, "a").close()
        os.chmod(self.log_file, 0o666)
        self.proc = Proc("mosquitto", [MOSQUITTO, "-c", self.conf],
                         os.path.join(dir, "mosquitto.out"))

    @property
    def uri(self):
        return "tcp://127.0.0.1:%d" % self.port

    def start(self):
        self.proc.start()

        def up():
            if not self.proc.running():
                raise BenchError("mosquitto exited: %s" % self.proc.log_tail())
            return port_open(self.port)
        wait_until(up, 10, "mosquitto on port %d" % self.port)
        return self

    def wait_subscribed(self, client_id, topic_filter, timeout=15):
        """Waits for the log line 'CLIENT QOS FILTER' of a SUBSCRIBE."""
        want = " %s 1 %s" % (client_id, topic_filter)

        def seen():
            with open(self.log_file, errors="replace") as f:
                return any(line.rstrip("\n").endswith(want) for line in f)
        wait_until(seen, timeout, "%s to subscribe to %s" % (client_id, topic_filter))

    def stop(self):
        self.proc.stop(5)


# ---------------------------------------------------------------- collector

class Collector:
    """sitepulse-collector with a generated configuration and a database in dir."""

    def __init__(self, binary, broker, dir, db=None, log_level="warn", settings=()):
        os.makedirs(dir, exist_ok=True)
        self.dir = dir
        self.broker = broker
        self.db = db or os.path.join(dir, "sitepulse.db")
        self.http_port = free_port()
        self.client_id = "bench-collector"
        self.conf = os.path.join(dir, "collector.ini")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "[mqtt]", "uri = %s" % broker.uri, "client_id = %s" % self.client_id,
                "[store]", "path = %s" % self.db,
                "[api]", "listen = 127.0.0.1:%d" % self.http_port,
                "viewer_tokens = %s" % VIEWER_TOKEN, "operator_tokens = %s" % OPERATOR_TOKEN,
                "[log]", "level = %s" % log_level,
            ] + ["[%s]\n%s = %s" % s for s in settings]) + "\n")
        os.chmod(self.conf, 0o600)  # it holds tokens
        self.argv = [binary, "--config", self.conf]
        self.proc = Proc("collector", self.argv, os.path.join(dir, "collector.log"))
        self.exit_code = None
        self.stop_s = None

    def start(self, timeout=30):
        self.proc.start()

        def healthy():
            if not self.proc.running():
                raise BenchError("collector exited: %s" % self.proc.log_tail())
            status, _ = self.get("/healthz", auth=False)
            return status == 200
        wait_until(healthy, timeout, "collector /healthz 200")
        # healthy means connected; the data must not arrive before the subscription
        self.broker.wait_subscribed(self.client_id, "sp/v1/+/+/data", timeout)
        return self

    def get(self, path, auth=True, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            c.request("GET", path, headers={"Authorization": "Bearer " + VIEWER_TOKEN} if auth else {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def device_count(self):
        status, body = self.get("/api/v1/sites")
        if status != 200:
            return -1
        return sum(s["devices"] for s in json.loads(body))

    def last_commit_ms(self):
        """The writer's last commit (wall clock, ms) from /healthz: what the runner watches for
        progress. Not /metrics, whose device gauges cost a pass over every device (every 5 s,
        ~40 ms at 100k devices): polled every half second, that would be counted as the
        collector's cost per message."""
        _, body = self.get("/healthz", auth=False)  # 503 while unhealthy, same body
        return json.loads(body).get("last_commit_ms")

    def metrics(self):
        """The collector's /metrics as {series: value}; a labelled series keeps its labels."""
        status, body = self.get("/metrics", auth=False)
        if status != 200:
            raise BenchError("GET /metrics: HTTP %d" % status)
        out = {}
        for line in body.decode().splitlines():
            parts = line.rsplit(None, 1)
            if len(parts) == 2 and not line.startswith("#"):
                try:
                    out[parts[0]] = float(parts[1])  # labelled series keep their labels in the key
                except ValueError:
                    pass
        return out

    def stall_report(self, m, secs):
        """What a stuck collector says: counters, queue, and where each thread waits (gdb)."""
        text = ("collector STALLED: no commit for %d s; received %d, stored %d messages; ingest "
                "queue %d messages, %d bytes; queue full %d times"
                % (secs, m.get("sitepulse_messages_received_total", -1),
                   m.get("sitepulse_messages_stored_total", -1),
                   m.get('sitepulse_queue_depth{queue="ingest"}', -1),
                   m.get("sitepulse_queue_bytes", -1), m.get("sitepulse_queue_blocked_total", -1)))
        gdb = shutil.which("gdb")
        if gdb is None:
            return text + " (install gdb for thread stacks)"
        path = os.path.join(self.dir, "stall-threads.txt")
        try:
            r = subprocess.run([gdb, "-p", str(self.proc.pid), "-batch", "-ex", "thread apply all bt"],
                               capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            return text + " (gdb failed: %s)" % e
        with open(path, "w") as f:
            f.write(r.stdout)
        return text + "; threads: " + "; ".join(thread_summary(r.stdout)) + " (full stacks: %s)" % path

    def check_running(self):
        if not self.proc.running():
            raise BenchError("collector died (exit %s): %s"
                             % (self.proc.p.returncode, self.proc.log_tail()))

    def stop(self):
        """SIGTERM; records the exit code and how long the exit took (contract: 0, < 5 s)."""
        self.exit_code, self.stop_s = self.proc.stop(15)
        return self.exit_code

    def db_counts(self):
        """(readings, distinct (agent_id, seq)) from the database, read-only, after stop()."""
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True)
        try:
            rows = con.execute("SELECT coalesce(sum(n), 0) FROM reading_chunks").fetchone()[0]
            return rows, len(chunk_agent_seqs(con))
        finally:
            con.close()


def chunk_agent_seqs(con):
    """The set of distinct (agent_id, seq) of every stored reading, decoded from
    reading_chunks.meta only (bodies are not read; either format, chunkfmt).
    Raises BenchError when a chunk's meta is not whole entries or disagrees
    with its n."""
    seen = set()
    add = seen.add
    for cid, n, meta, fmt in con.execute("SELECT id, n, meta, fmt FROM reading_chunks"):
        entries = chunkfmt.meta_entries(bytes(meta), fmt)
        if entries is None or len(entries) != n:
            raise BenchError("reading_chunks id %d: meta of %d bytes (format %s) does not hold n = %d entries"
                             % (cid, len(meta), fmt, n))
        for _ts, seq, agent_id, _len, _kind in entries:
            add((agent_id, seq))
    return seen


class ApiClient:
    """One keep-alive HTTP/1.1 connection to the collector's API; get() times one request."""

    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.auth = {"Authorization": "Bearer " + token}

    def get(self, path, auth=True):
        """(seconds from sending the request to the last byte of the answer, body); 200 only."""
        t0 = time.perf_counter()
        self.conn.request("GET", path, headers=self.auth if auth else {})
        r = self.conn.getresponse()
        body = r.read()
        t = time.perf_counter() - t0
        if r.status != 200:
            raise BenchError("GET %s: HTTP %d %s" % (path, r.status, body[:200]))
        return t, body

    def close(self):
        self.conn.close()


def thread_summary(bt):
    """Per thread of a gdb 'thread apply all bt': its innermost frame that is not a plain wait,
    and the innermost frame of our own code (an absolute source path), e.g.
    'MQTTAsync_rcv: queue_push (queue.c:133)'. Threads only waiting for work are left out."""
    boring = ("futex", "pthread", "lll_", "nanosleep", "epoll_wait", "poll", "select",
              "start_thread", "clone", "??", "syscall")
    threads = []
    for line in bt.splitlines():
        if line.startswith("Thread "):
            threads.append((line.split('"')[1] if '"' in line else line.split()[1], []))
        elif line.startswith("#") and threads:
            words = line.split()
            fn = words[3] if len(words) > 3 and words[2] == "in" else words[1]
            where = line.rsplit(" at ", 1)[1].strip() if " at " in line else ""
            threads[-1][1].append((fn, where))
    out = []
    for name, frames in reversed(threads):
        first = next((f for f in frames if not any(b in f[0] for b in boring)), None)
        ours = next((f for f in frames if f[1].startswith("/") and not f[1].startswith("/usr")), None)
        if first is None or (ours is None and first[1] and not first[1].startswith("/")):
            continue
        text = "%s: %s" % (name, first[0])
        if ours and ours is not first:
            text += " <- %s" % ours[0]
        if ours:
            text += " (%s)" % os.path.basename(ours[1])
            outer = [f for f in frames if f[1].startswith("/") and not f[1].startswith("/usr")][-1]
            if outer is not ours:
                text += " in %s" % outer[0]
        out.append(text)
    return out


# ---------------------------------------------------------------- loaders

def last_json(proc):
    """The JSON object a finished tool printed as its last line of stdout, or None."""
    out = proc.output().strip()
    try:
        return json.loads(out.splitlines()[-1]) if out else None
    except ValueError:
        return None


class Loader:
    """One sp-loadgen process; result() is its JSON report."""

    def __init__(self, binary, dir, name, args):
        self.argv = [binary] + [str(a) for a in args]
        self.proc = Proc(name, self.argv, os.path.join(dir, name + ".log"), capture=True)

    def start(self):
        self.proc.start()
        return self

    def result(self, timeout):
        rc = self.proc.join(timeout)
        res = last_json(self.proc)
        if res is None or rc != 0 or not res.get("ok"):
            raise BenchError("%s failed (exit %s): %s %s" % (self.proc.name, rc,
                             (res or {}).get("error"), self.proc.log_tail(5).strip()))
        return res


# ---------------------------------------------------------------- page cache

def evict_file(path):
    """Drops the clean pages of this one file from the page cache (posix_fadvise DONTNEED):
    the next reads come from the disk. Touches no other file on the machine."""
    for p in (path, path + "-wal"):
        if os.path.exists(p):
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def preload_file(path):
    """Reads the whole file once so it is in the page cache; returns the seconds it took."""
    t0 = time.monotonic()
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass
    return time.monotonic() - t0


# ---------------------------------------------------------------- statistics

def summary(values):
    """median, min, max of a non-empty list (median of an even count: mean of the middle two)."""
    v = sorted(values)
    n = len(v)
    med = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    return med, v[0], v[-1]


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]
