#!/usr/bin/env python3
"""kp benchmark harness: runs workloads W1..W6 against kp, librdkafka,
franz-go and the Java client, alternating clients (A B C D A B C D ...),
and reports medians. Run it through perf/run.sh (which builds first).

Targets
  sink   perf/kafka-sink (in-memory, answers at once: measures the client)
  real1  a real 1-broker Kafka 4.1.1 cluster (testbed/kafka.sh start 1)
  real3  a real 3-broker cluster (testbed/kafka.sh start 3)
The real clusters are our own (state in $BENCH_TESTBED_DIR, ports 45092 and
41092/42092/43092 by default, KP_TESTBED_PORT / KP_TESTBED_BASE move them),
started and stopped by this script.

W6 (many partitions: 6, 600, 2,000, 5,000; keyed, acks=all, idempotent, every
client with its own defaults otherwise) runs only when named, e.g.
BENCH_WORKLOADS=W6-p600-real3,W6-p2000-real3,W6-p5000-real3; its chart of
records/s, peak RSS and CPU against the partition count is STAMP-w6.png.

W1-sasl1 (W1 on real1 over the SASL_SSL listener, SCRAM-SHA-512 as admin, TLS
with the testbed's CA; issue 9) also runs only when named, for kp and
librdkafka only (the others are skipped), e.g.
BENCH_CLIENTS=kp,librdkafka BENCH_WORKLOADS=W1-real1,W1-sasl1.

Environment
  BENCH_QUICK=1        smoke run: 1 repetition, 1/10 of the records (~2-3 min)
  BENCH_REPS=N         repetitions (default 3; quick 1)
  BENCH_SCALE=F        multiply every record count by F (default 1; quick 0.1)
  BENCH_CLIENTS=a,b    subset of kp,librdkafka,franz-go,java (default), or kp-java: kp's Java
                       binding through JavaPerf (bindings/java/perf.sh), or kp-python /
                       confluent-python: kp's Python binding / confluent-kafka-python from one
                       Python thread (bindings/python/perf.sh; $KP_PYTHON or a venv it makes)
  BENCH_WORKLOADS=a,b  subset of workload ids (see WORKLOADS), e.g. W1-sink,W4-real1
  BENCH_KP_IDEMPOTENCE=0  run kp without idempotence in W2 (default 1: idempotent,
                       like the other clients; kp has it since commit 0f3b175)
  BENCH_TIMEOUT=S      per-run timeout in seconds (default 300)
  BENCH_WARMUP=0       skip the warm-up pass on a freshly started real cluster (default: each
                       client sends 1/5 of the workload's records once, unrecorded, so the
                       brokers' JIT is warm before the first measured run)
  BENCH_PRIME_MAX_RUNS=N  priming runs at most on a real-cluster topic of 2,000+
                       partitions, repeated until the rate stops climbing (default 4)
  BENCH_TESTBED_DIR    state dir of our clusters (default /tmp/kp-bench)
  BENCH_OUT            results dir (default perf/results)
  BENCH_KP_REV=REV     (perf/setup.sh) benchmark a clean build of commit REV instead of
                       the working tree, e.g. BENCH_KP_REV=HEAD perf/run.sh
  BENCH_KP_BASELINE=DIR  a second kp build made by perf/baseline.sh REV DIR, run as client
                       "kp-baseline" (name it in BENCH_CLIENTS) alternating with "kp": the
                       ratio table then reads kp / baseline (before/after comparisons)

  harness.py --report perf/results/STAMP.csv   rebuild STAMP.md/.json/.png from a CSV
"""
import csv
import hashlib
import shutil
import datetime as dt
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
BUILD = os.environ.get("BENCH_BUILD", os.path.join(REPO, "build", "bench"))
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
REPS = int(os.environ.get("BENCH_REPS", "1" if QUICK else "3"))
SCALE = float(os.environ.get("BENCH_SCALE", "0.1" if QUICK else "1"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "300"))
KP_IDEMPOTENCE = os.environ.get("BENCH_KP_IDEMPOTENCE", "1") not in ("", "0")
WARMUP = os.environ.get("BENCH_WARMUP", "1") not in ("", "0")
# Priming runs at most per real-cluster topic of 2,000+ partitions (see the run loop).
PRIME_MAX_RUNS = int(os.environ.get("BENCH_PRIME_MAX_RUNS", "4"))
TESTBED_DIR = os.environ.get("BENCH_TESTBED_DIR", "/tmp/kp-bench")
OUT = os.environ.get("BENCH_OUT", os.path.join(BENCH, "results"))
BATCH_SIZE = 65536
PARTITIONS = 6

TESTBED_ENV = dict(
    os.environ,
    KP_TESTBED_DIR=TESTBED_DIR,
    KP_TESTBED_JARS=os.environ.get("KP_TESTBED_JARS", os.path.join(REPO, ".testbed", "jars")),
    KP_TESTBED_PORT=os.environ.get("KP_TESTBED_PORT", "45092"),
    KP_TESTBED_BASE=os.environ.get("KP_TESTBED_BASE", "40092"),
)
TESTBED_ENV.pop("KP_BOOTSTRAP", None)

CLIENTS = {
    "kp": [os.path.join(BUILD, "kp-perf")],
    "librdkafka": [os.path.join(BUILD, "rdkafka-perf")],
    "franz-go": [os.path.join(BUILD, "franz-perf")],
    "java": [os.path.join(BENCH, "java-perf.sh")],
    "kp-java": [os.path.join(REPO, "bindings", "java", "perf.sh")],  # kp's Java binding (run only when named)
    # kp's Python binding and confluent-kafka-python, one Python thread each (run only when named)
    "kp-python": [os.path.join(REPO, "bindings", "python", "perf.sh"), "kp"],
    "confluent-python": [os.path.join(REPO, "bindings", "python", "perf.sh"), "confluent"],
}
# A baseline kp build (perf/baseline.sh), run only when named: BENCH_CLIENTS=kp,kp-baseline.
KP_BASELINE = os.environ.get("BENCH_KP_BASELINE", "")
if KP_BASELINE:
    CLIENTS["kp-baseline"] = [os.path.join(os.path.abspath(KP_BASELINE), "kp-perf")]
ONLY_WHEN_NAMED = ("kp-java", "kp-baseline", "kp-python", "confluent-python")
KP_NATIVE = ("kp", "kp-baseline")  # kp-perf programs (same flags, same library API)

# id, target, description, flags (records scaled by BENCH_SCALE)
WORKLOADS = [
    ("W1-sink", "sink", "throughput: 100 B, no key, acks=1, linger 5 ms, no compression",
     dict(records=5_000_000, size=100, acks="1", linger=5, compression="none")),
    ("W3-sink", "sink", "1 KiB values, zstd, acks=1, linger 5 ms",
     dict(records=1_000_000, size=1024, acks="1", linger=5, compression="zstd")),
    ("W4-sink", "sink", "latency: 10,000 records/s, linger 0, acks=all, 100 B",
     dict(records=100_000, size=100, acks="all", linger=0, compression="none", throughput=10_000)),
    ("W5-sink", "sink", "4 application threads, 100 B, acks=1, linger 5 ms",
     dict(records=5_000_000, size=100, acks="1", linger=5, compression="none", threads=4)),
    ("W1-real1", "real1", "throughput: 100 B, no key, acks=1, linger 5 ms, no compression",
     dict(records=2_000_000, size=100, acks="1", linger=5, compression="none")),
    # W1 over TLS + SASL/SCRAM (issue 9): the testbed's SASL_SSL listener, user admin,
    # CA from the testbed; kp and librdkafka only.
    ("W1-sasl1", "real1", "throughput over SASL_SSL (SCRAM-SHA-512): 100 B, no key, acks=1, linger 5 ms, "
     "no compression",
     dict(records=1_000_000, size=100, acks="1", linger=5, compression="none", sasl="SCRAM-SHA-512")),
    ("W4-real1", "real1", "latency: 10,000 records/s, linger 0, acks=all, 100 B",
     dict(records=100_000, size=100, acks="all", linger=0, compression="none", throughput=10_000)),
    ("W2-real3", "real3", "100 B, 10,000 keys, acks=all, idempotent, lz4, linger 5 ms (RF 3)",
     dict(records=1_000_000, size=100, acks="all", linger=5, compression="lz4", keys=10_000, idempotence=True)),
] + [
    # W6: many partitions. Every client keeps its own defaults (linger.ms, batch.size,
    # buffer.memory, compression none) apart from keys, acks=all and idempotence.
    (f"W6-p{p}-real3", "real3", f"many partitions: {p:,} partitions (RF 1), 100 B, 100,000 keys, acks=all, "
     "idempotent, client defaults otherwise",
     dict(records=1_000_000, size=100, acks="all", linger=None, compression="none", keys=100_000,
          idempotence=True, partitions=p, rf=1, defaults=True))
    for p in (6, 600, 2000, 5000)
]

SUMMARY_RE = re.compile(
    r"^(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, ([\d.]+) ms 50th, ([\d.]+) ms 95th, ([\d.]+) ms 99th, ([\d.]+) ms 99.9th\.")
CPU_RE = re.compile(r"^client cpu ([\d.]+) s .* peak rss ([\d.]+) MiB\.")

FIELDS = ["stamp", "workload", "target", "client", "rep", "rc", "records", "records_per_s", "mb_per_s",
          "avg_ms", "max_ms", "p50_ms", "p95_ms", "p99_ms", "p999_ms", "cpu_s", "cpu_s_per_m", "peak_rss_mib",
          "self_cpu_s", "self_rss_mib", "wall_s", "note", "command"]


def log(msg):
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def kafka_sh(*args, check=True, capture=False):
    cmd = [os.path.join(REPO, "testbed", "kafka.sh"), *args]
    r = subprocess.run(cmd, env=TESTBED_ENV, text=True, stdout=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode})")
    return r.stdout


class Target:
    def __init__(self, kind):
        self.kind = kind
        self.proc = None
        self.bootstrap = None
        self.sasl_bootstrap = self.tls_dir = None
        self.topics = set()

    def start(self):
        if self.kind == "sink":
            bs_file = os.path.join(TESTBED_DIR, "sink.bootstrap")
            os.makedirs(TESTBED_DIR, exist_ok=True)
            if os.path.exists(bs_file):
                os.unlink(bs_file)
            self.log = open(os.path.join(TESTBED_DIR, "sink.log"), "a")
            self.proc = subprocess.Popen(
                [os.path.join(BUILD, "kafka-sink"), "--brokers", "1", "--partitions", str(PARTITIONS),
                 "--bootstrap-file", bs_file], stdout=subprocess.DEVNULL, stderr=self.log)
            for _ in range(100):
                if os.path.exists(bs_file):
                    break
                time.sleep(0.05)
            self.bootstrap = open(bs_file).read().strip()
        else:
            nodes = "1" if self.kind == "real1" else "3"
            log(f"starting a {nodes}-broker Kafka cluster in {TESTBED_DIR}")
            kafka_sh("start", nodes)
            env = open(os.path.join(TESTBED_DIR, "cluster", "env")).read()
            self.bootstrap = re.search(r"KP_BOOTSTRAP=(\S+)", env).group(1)
            m = re.search(r"KP_SASL_SSL_BOOTSTRAP=(\S+)", env)
            self.sasl_bootstrap = m and m.group(1)
            m = re.search(r"KP_TLS_DIR=(\S+)", env)
            self.tls_dir = m and m.group(1)
        log(f"target {self.kind} up at {self.bootstrap}")

    def endpoint(self, w):
        """Bootstrap and client properties for workload w: the SASL_SSL listener
        (user admin, the testbed's CA, hostname checked) when w names a SASL mechanism."""
        if not w.get("sasl"):
            return self.bootstrap, {}
        if not self.sasl_bootstrap:
            raise RuntimeError(f"{self.kind} has no SASL_SSL listener (KP_TESTBED_SECURITY=0?)")
        return self.sasl_bootstrap, {
            "security.protocol": "SASL_SSL", "sasl.mechanism": w["sasl"], "sasl.username": "admin",
            "sasl.password": "admin-secret", "ssl.ca.location": os.path.join(self.tls_dir, "ca.pem"),
            "ssl.endpoint.identification.algorithm": "https"}

    def topic(self, name, partitions=PARTITIONS, rf=None):
        if self.kind != "sink" and name not in self.topics:
            rf = str(rf or ("3" if self.kind == "real3" else "1"))
            TESTBED_ENV["KP_BOOTSTRAP"] = self.bootstrap
            try:
                kafka_sh("create-topic", name, str(partitions), rf, capture=True)
            finally:
                TESTBED_ENV.pop("KP_BOOTSTRAP", None)
        self.topics.add(name)
        return name

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()
        elif self.kind != "sink":
            kafka_sh("stop", check=False)


SECURE_CLIENTS = ("kp", "kp-baseline", "librdkafka")  # the clients whose perf programs take security properties


def shown(cmd):
    """The command as logged: sasl.password masked."""
    return shlex.join(re.sub(r"^(sasl\.password)=.*", r"\1=***", a) for a in cmd)


def client_args(client, endpoint, topic, w):
    bootstrap, security = endpoint
    idem = bool(w.get("idempotence"))
    note = ""
    if client in KP_NATIVE and idem and not KP_IDEMPOTENCE:
        idem = False
        note = "kp without idempotence (BENCH_KP_IDEMPOTENCE=0)"
    if client == "java" and (w.get("keys") or w.get("threads", 1) > 1):
        note = (note + "; " if note else "") + "java via JavaPerf (ProducerPerformance has no keys/threads)"
    args = ["--bootstrap", bootstrap, "--topic", topic,
            "--num-records", str(max(1, int(w["records"] * SCALE))), "--record-size", str(w["size"]),
            "--throughput", str(w.get("throughput", -1)), "--acks", w["acks"]]
    if not w.get("defaults"):
        args += ["--linger-ms", str(w["linger"]), "--batch-size", str(BATCH_SIZE)]
    args += ["--compression", w["compression"], "--keys", str(w.get("keys", 0)), "--threads", str(w.get("threads", 1)),
             f"--idempotence={'true' if idem else 'false'}"]
    for k, v in security.items():
        if client == "librdkafka" and k == "sasl.mechanism":
            k = "sasl.mechanisms"
        args += ["--producer-property", f"{k}={v}"]
    return CLIENTS[client] + args, note


def run_one(cmd, logpath, timeout=None):
    """Run a client (killed after `timeout`, default BENCH_TIMEOUT seconds);
    return (rc, wall_s, rusage, stdout text)."""
    with open(logpath, "w") as lf:
        lf.write("$ " + shown(cmd) + "\n")
        lf.flush()
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=lf, text=True, start_new_session=True)
        out = []

        def pump():
            for line in p.stdout:
                out.append(line)
                lf.write(line)
                lf.flush()

        th = threading.Thread(target=pump, daemon=True)
        th.start()
        timer = threading.Timer(timeout or TIMEOUT, lambda: os.killpg(p.pid, signal.SIGKILL))
        timer.start()
        _, status, ru = os.wait4(p.pid, 0)
        timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        th.join(5)
        wall = time.monotonic() - t0
    return p.returncode, wall, ru, "".join(out)


def parse(text):
    s = c = None
    for line in text.splitlines():
        m = SUMMARY_RE.match(line)
        if m:
            s = m
        m = CPU_RE.match(line)
        if m:
            c = m
    return s, c


def versions():
    v = {}

    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, text=True, capture_output=True, cwd=REPO).stdout.strip()
        except Exception:
            return ""

    rev_file = os.path.join(BUILD, "kp-rev")
    if os.path.exists(rev_file):
        v["kp"] = f"kp @ {open(rev_file).read().strip()[:12]} (clean build of the commit, BENCH_KP_REV)"
    else:
        v["kp"] = "kp @ " + sh("git rev-parse --short HEAD") + \
            (" + uncommitted changes in the working tree" if sh("git status --porcelain -- src Cargo.toml") else "")
    if KP_BASELINE:
        base_rev = os.path.join(KP_BASELINE, "kp-rev")
        v["kp-baseline"] = "kp @ " + (open(base_rev).read().strip()[:12] if os.path.exists(base_rev) else "?") + \
            f" (perf/baseline.sh build in {KP_BASELINE}, with that commit's own kp-perf driver)"
    rs = sh("grep -A1 'name = \"rdkafka-sys\"' perf/rdkafka-driver/Cargo.lock | sed -n 's/version = \"\\(.*\\)\"/\\1/p'")
    v["librdkafka"] = f"librdkafka {rs.split('+')[-1]} (crate rdkafka-sys {rs}, static build)"
    v["franz-go"] = "franz-go " + sh("grep -o 'twmb/franz-go v[0-9.]*' perf/franz-driver/go.mod | cut -d' ' -f2") + \
        " (" + sh("go version | cut -d' ' -f3") + ")"
    v["java"] = "Kafka Java client 4.1.1 (" + sh("java -version 2>&1 | head -1") + ")"
    py = os.environ.get("KP_PYTHON", os.path.join(BUILD, "pyvenv", "bin", "python"))
    if os.path.exists(py):
        v["kp-python / confluent-python"] = sh(
            f"{shlex.quote(py)} -c 'import sys, kp, confluent_kafka as c, importlib.metadata as m; "
            f"print(\"Python\", sys.version.split()[0], \"- kp\", kp.version()[0], \"- confluent-kafka\", "
            f"m.version(\"confluent-kafka\"), \"librdkafka\", c.libversion()[0])'")
    v["cpu"] = sh("lscpu | sed -n 's/^Model name: *//p' | head -1") + f", {os.cpu_count()} cores"
    v["mem"] = sh("free -g | awk '/Mem:/{print $2\" GiB\"}'")
    v["kernel"] = platform.release()
    v["rustc"] = sh("rustc --version")
    v["gcc"] = sh("gcc --version | head -1")
    return v


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(rows, clients):
    """Medians per (workload, client) over successful runs."""
    out = {}
    for r in rows:
        if r["rc"] != 0 or r["records_per_s"] is None:
            continue
        out.setdefault((r["workload"], r["client"]), []).append(r)
    med = {}
    for key, rs in out.items():
        med[key] = {k: median([x[k] for x in rs]) for k in
                    ("records_per_s", "mb_per_s", "cpu_s_per_m", "peak_rss_mib", "p50_ms", "p99_ms", "p999_ms",
                     "avg_ms")}
        med[key]["n"] = len(rs)
    return med


def fmt(x, nd=1):
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}"


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


def markdown(med, clients, wls, v, stamp, failures):
    L = [f"Run {stamp}: {REPS} repetition(s), record counts x{SCALE:g}, batch.size={BATCH_SIZE}, "
         f"{PARTITIONS} partitions (W6: as named, client defaults), medians per cell.", ""]
    L.append("| workload | client | records/s | MB/s | CPU s / M rec | peak RSS MiB | p50 ms | p99 ms | p99.9 ms | runs |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for wid, _, _, wd in wls:
        for c in clients:
            if wd.get("sasl") and c not in SECURE_CLIENTS:
                continue
            m = med.get((wid, c))
            if not m:
                L.append(f"| {wid} | {c} | failed | | | | | | | 0 |")
                continue
            L.append(f"| {wid} | {c} | {fmt(m['records_per_s'], 0)} | {fmt(m['mb_per_s'])} | {fmt(m['cpu_s_per_m'], 2)} | "
                     f"{fmt(m['peak_rss_mib'])} | {fmt(m['p50_ms'], 2)} | {fmt(m['p99_ms'], 2)} | {fmt(m['p999_ms'], 2)} | {m['n']} |")
    # kp against the others; without "kp" in the run, the first kp client named
    # (kp-python against confluent-python, kp-java against java, ...).
    base = "kp" if "kp" in clients else next((c for c in clients if c.startswith("kp")), "kp")
    L += ["", f"Ratios {base} / other (throughput: >1 = kp faster; CPU, RSS, p99: <1 = kp better):", ""]
    L.append("| workload | vs | records/s | CPU s / M rec | peak RSS | p99 |")
    L.append("|---|---|---:|---:|---:|---:|")
    for wid, _, _, _ in wls:
        k = med.get((wid, base))
        if not k:
            continue
        for c in clients:
            if c == base or (wid, c) not in med:
                continue
            o = med[(wid, c)]
            L.append(f"| {wid} | {c} | {ratio(k['records_per_s'], o['records_per_s'])} | "
                     f"{ratio(k['cpu_s_per_m'], o['cpu_s_per_m'])} | {ratio(k['peak_rss_mib'], o['peak_rss_mib'])} | "
                     f"{ratio(k['p99_ms'], o['p99_ms'])} |")
    if failures:
        L += ["", "Failed runs:", ""] + [f"- {f}" for f in failures]
    L += ["", "Versions:", ""] + [f"- {k}: {val}" for k, val in v.items()]
    return "\n".join(L) + "\n"


def partitions_of(wid):
    w = next((w for w in WORKLOADS if w[0] == wid), None)
    return w[3].get("partitions", PARTITIONS) if w else PARTITIONS


def chart_w6(med, clients, wls, path):
    """W6: records/s and peak RSS against the partition count (log x), one line per client."""
    import matplotlib.pyplot as plt
    w6 = sorted((w[0] for w in wls if w[0].startswith("W6-")), key=partitions_of)
    xs = [partitions_of(w) for w in w6]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, key, title, ylabel, scale in (
            (axes[0], "records_per_s", "W6 throughput (median)", "thousand records/s", 1e-3),
            (axes[1], "peak_rss_mib", "W6 client peak RSS (median)", "MiB", 1.0),
            (axes[2], "cpu_s_per_m", "W6 client CPU per million records", "CPU seconds", 1.0)):
        for c in clients:
            pts = [(x, (med.get((w, c)) or {}).get(key)) for x, w in zip(xs, w6)]
            pts = [(x, y * scale) for x, y in pts if y is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=c)
        ax.set_xscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{x:,}" for x in xs])
        ax.set_xlabel("partitions")
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[1].axhline(32 + 24, color="grey", linestyle="--", linewidth=1, label="32 MiB buffer.memory + 24 MiB")
    axes[0].legend()
    axes[1].legend(fontsize=8)
    fig.suptitle(f"W6: 100 B keyed records, acks=all, idempotent, client defaults - medians of {REPS} run(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def chart(med, clients, wls, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no chart (perf/setup.sh installs it)")
        return
    if any(w[0].startswith("W6-") for w in wls):
        chart_w6(med, clients, wls, path[:-4] + "-w6.png")
        wls = [w for w in wls if not w[0].startswith("W6-")]
        if not wls:
            return
    tput = [w[0] for w in wls if "W4" not in w[0]]
    lat = [w[0] for w in wls if "W4" in w[0]]
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    width = 0.8 / max(1, len(clients))

    def bars(ax, wids, key, title, ylabel, scale=1.0):
        for i, c in enumerate(clients):
            vals = [(med.get((w, c)) or {}).get(key) for w in wids]
            xs = [j + i * width for j in range(len(wids))]
            ax.bar(xs, [(x or 0) * scale for x in vals], width, label=c)
        ax.set_xticks([j + width * (len(clients) - 1) / 2 for j in range(len(wids))])
        ax.set_xticklabels(wids, fontsize=8)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)

    bars(axes[0][0], tput, "records_per_s", "Throughput (median)", "thousand records/s", 1e-3)
    axes[0][0].legend()
    bars(axes[0][1], [w[0] for w in wls], "cpu_s_per_m", "Client CPU per million records (user+sys)",
         "CPU seconds (log scale)")
    axes[0][1].set_yscale("log")
    bars(axes[1][0], [w[0] for w in wls], "peak_rss_mib", "Client peak RSS", "MiB")
    ax = axes[1][1]
    cats = [(w, p) for w in lat for p in ("p50_ms", "p99_ms", "p999_ms")]
    for i, c in enumerate(clients):
        vals = [(med.get((w, c)) or {}).get(p) or 0 for w, p in cats]
        ax.bar([j + i * width for j in range(len(cats))], vals, width, label=c)
    ax.set_xticks([j + width * (len(clients) - 1) / 2 for j in range(len(cats))])
    ax.set_xticklabels([f"{w}\n{p[:-3]}" for w, p in cats], fontsize=7)
    ax.set_yscale("log")
    ax.set_title("W4 latency at 10k records/s (send -> callback)")
    ax.set_ylabel("ms (log scale)")
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"kp producer benchmarks - 2-core shared machine, medians of {REPS} run(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def report_from_csv(path):
    """Rebuild the .md/.json/.png of a finished run from its CSV."""
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            for k in FIELDS:
                if k in ("stamp", "workload", "target", "client", "note", "command"):
                    continue
                r[k] = float(r[k]) if r.get(k) not in (None, "") else None
            r["rc"] = int(r["rc"])
            rows.append(r)
    clients = list(dict.fromkeys(r["client"] for r in rows))
    seen = list(dict.fromkeys(r["workload"] for r in rows))
    wls = [w for w in WORKLOADS if w[0] in seen]
    global REPS, SCALE
    REPS = int(max(r["rep"] for r in rows))
    stamp = rows[0]["stamp"]
    if stamp.endswith("-quick"):
        SCALE = 0.1
    failures = [f"{r['workload']} {r['client']} rep {int(r['rep'])}: exit {r['rc']}" for r in rows
                if r["rc"] != 0 or r["records_per_s"] is None]
    med = summarize(rows, clients)
    base = path[:-4]
    v = None
    if os.path.exists(base + ".json"):  # keep the versions recorded at run time
        v = json.load(open(base + ".json")).get("versions")
    v = v or versions()
    md = markdown(med, clients, wls, v, stamp, failures)
    with open(base + ".md", "w") as f:
        f.write(md)
    with open(base + ".json", "w") as f:
        json.dump({"stamp": stamp, "reps": REPS, "scale": SCALE, "versions": v,
                   "medians": {f"{k[0]}|{k[1]}": m for k, m in med.items()}}, f, indent=1)
    chart(med, clients, wls, base + ".png")
    print(md)
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--report":
        return report_from_csv(sys.argv[2])
    clients = [c for c in os.environ.get("BENCH_CLIENTS", ",".join(c for c in CLIENTS if c not in ONLY_WHEN_NAMED)).split(",") if c]
    wanted = [w for w in os.environ.get("BENCH_WORKLOADS", "").split(",") if w]
    wls = [w for w in WORKLOADS if (w[0] in wanted if wanted else not (w[0].startswith("W6-") or w[3].get("sasl")))]
    for c in clients:
        if c == "kp-baseline" and not KP_BASELINE:
            sys.exit("client kp-baseline needs BENCH_KP_BASELINE=DIR (made by perf/baseline.sh REV DIR)")
        if c not in CLIENTS:
            sys.exit(f"unknown client {c}; known: {', '.join(CLIENTS)}")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-quick" if QUICK else "")
    os.makedirs(OUT, exist_ok=True)
    logdir = os.path.join(BUILD, "logs", stamp)
    os.makedirs(logdir, exist_ok=True)
    csv_path = os.path.join(OUT, f"{stamp}.csv")
    # Run kp from a private copy (kp-perf + its libkp.so snapshot): a rebuild of
    # build/bench during the run must not change the library under test.
    bindir = os.path.join(logdir, "bin")
    os.makedirs(os.path.join(bindir, "lib"), exist_ok=True)
    shutil.copy2(os.path.join(BUILD, "kp-perf"), bindir)
    for name in os.listdir(os.path.join(BUILD, "lib")):
        shutil.copy2(os.path.join(BUILD, "lib", name), os.path.join(bindir, "lib"), follow_symlinks=True)
    CLIENTS["kp"] = [os.path.join(bindir, "kp-perf")]
    KP_LIB_SHA = hashlib.sha256(open(os.path.join(bindir, "lib", "libkp.so"), "rb").read()).hexdigest()[:16]
    log(f"{len(wls)} workloads x {len(clients)} clients x {REPS} reps, scale {SCALE:g}; "
        f"CSV {os.path.relpath(csv_path, REPO)}, logs {os.path.relpath(logdir, REPO)}")
    rows, failures = [], []
    t_start = time.monotonic()
    with open(csv_path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=FIELDS)
        wr.writeheader()
        target = None
        try:
            for wid, kind, desc, w in wls:
                if target is None or target.kind != kind:
                    if target:
                        target.stop()
                    target = Target(kind)
                    target.start()
                    if WARMUP and kind != "sink":
                        # A fresh JVM broker is slow until its JIT warms up: the first
                        # client would pay for it. Every client sends once, unrecorded.
                        wtopic = target.topic(f"bench-warmup-{kind}-p{w.get('partitions', PARTITIONS)}",
                                              w.get("partitions", PARTITIONS), w.get("rf"))
                        ww = dict(w, records=max(1, int(w["records"] / 5)), throughput=-1)
                        for client in clients:
                            if w.get("sasl") and client not in SECURE_CLIENTS:
                                continue
                            cmd, _ = client_args(client, target.endpoint(ww), wtopic, ww)
                            rc, wall, _, _ = run_one(cmd, os.path.join(logdir, f"warmup-{kind}-{client}.log"))
                            log(f"  warm-up on {kind}: {client:10s} rc={rc} wall {wall:5.1f} s (not recorded)")
                topic = target.topic(f"bench-{wid.lower()}", w.get("partitions", PARTITIONS), w.get("rf"))
                log(f"{wid} ({kind}): {desc}")
                if kind != "sink" and clients:
                    # A fresh topic is slow on the broker for its first writes: at 2,000
                    # partitions the first client ran at a fifth of its speed on a used
                    # topic, and after a priming run of 50,000 records the next
                    # 1,000,000-record run was still 4-5x slower than the one after it
                    # (all clients alike). So every partition is written, unrecorded,
                    # as much as one measured run writes (many-partition workloads) or a
                    # twentieth of it, and every measured client finds the topic settled.
                    # At 2,000+ partitions one such run is not always enough (at 5,000,
                    # kp and librdkafka alike ran their first 2-3 million records on a
                    # fresh topic at 5-7 k records/s, then 50-110 k): priming repeats,
                    # up to PRIME_MAX_RUNS, until a run is less than 1.3x faster than
                    # the one before it.
                    parts = w.get("partitions", PARTITIONS)
                    primed = w["records"] if parts >= 600 else max(20 * parts, int(w["records"] / 20))
                    pw = dict(w, records=primed, throughput=-1, keys=max(w.get("keys", 0), 10 * parts))
                    primer = next((c for c in clients if not w.get("sasl") or c in SECURE_CLIENTS), None)
                    runs = PRIME_MAX_RUNS if parts >= 2000 else 1
                    last_rate = None
                    for i in range(1, runs + 1) if primer else ():
                        cmd, _ = client_args(primer, target.endpoint(pw), topic, pw)
                        # unrecorded, and slow on a fresh topic: three times the run timeout
                        rc, wall, _, text = run_one(cmd, os.path.join(logdir, f"prime-{wid}-{primer}-{i}.log"),
                                                    3 * TIMEOUT)
                        s, _ = parse(text)
                        rate = float(s.group(2)) if s else None
                        log(f"  priming {topic} ({i}): {primer} rc={rc} wall {wall:5.1f} s, "
                            f"{rate or 0:,.0f} records/s (not recorded)")
                        if rc != 0 or rate is None or (last_rate and rate < 1.3 * last_rate):
                            break
                        last_rate = rate
                for rep in range(1, REPS + 1):
                    for client in clients:
                        if w.get("sasl") and client not in SECURE_CLIENTS:
                            if rep == 1:
                                log(f"  {wid}: {client} skipped (its perf program takes no security properties)")
                            continue
                        cmd, note = client_args(client, target.endpoint(w), topic, w)
                        rc, wall, ru, text = run_one(cmd, os.path.join(logdir, f"{wid}-{client}-{rep}.log"))
                        s, c = parse(text)
                        cpu = ru.ru_utime + ru.ru_stime
                        row = dict(stamp=stamp, workload=wid, target=kind, client=client, rep=rep, rc=rc,
                                   wall_s=round(wall, 2), cpu_s=round(cpu, 3), peak_rss_mib=round(ru.ru_maxrss / 1024, 1),
                                   note=note, command=shown(cmd))
                        if s:
                            n = int(s.group(1))
                            row.update(records=n, records_per_s=float(s.group(2)), mb_per_s=float(s.group(3)),
                                       avg_ms=float(s.group(4)), max_ms=float(s.group(5)), p50_ms=float(s.group(6)),
                                       p95_ms=float(s.group(7)), p99_ms=float(s.group(8)), p999_ms=float(s.group(9)),
                                       cpu_s_per_m=round(cpu * 1e6 / n, 3) if n else None)
                        if c:
                            # The client's own peak RSS (VmHWM; /usr/bin/time for Java) is the one
                            # reported: wait4's ru_maxrss is floored at this harness's RSS, which
                            # Linux carries into a child across fork+exec.
                            row.update(self_cpu_s=float(c.group(1)), self_rss_mib=float(c.group(2)),
                                       peak_rss_mib=float(c.group(2)))
                        for k in FIELDS:
                            row.setdefault(k, None)
                        if rc != 0 or not s:
                            failures.append(f"{wid} {client} rep {rep}: exit {rc}, see {os.path.relpath(logdir, REPO)}/{wid}-{client}-{rep}.log")
                        rows.append(row)
                        wr.writerow(row)
                        f.flush()
                        log(f"  {wid} rep {rep} {client:10s} rc={rc} "
                            + (f"{row['records_per_s']:>11,.0f} rec/s  p99 {row['p99_ms']:8.2f} ms  " if s else "no summary  ")
                            + f"cpu {cpu:6.2f} s  rss {row['peak_rss_mib']:6.1f} MiB  wall {wall:5.1f} s")
        finally:
            if target:
                target.stop()
    med = summarize(rows, clients)
    v = versions()
    v["kp"] += f" (libkp.so sha256 {KP_LIB_SHA}...)"
    md = markdown(med, clients, wls, v, stamp, failures)
    md_path = os.path.join(OUT, f"{stamp}.md")
    with open(md_path, "w") as f:
        f.write(md)
    with open(os.path.join(OUT, f"{stamp}.json"), "w") as f:
        json.dump({"stamp": stamp, "reps": REPS, "scale": SCALE, "versions": v,
                   "medians": {f"{k[0]}|{k[1]}": m for k, m in med.items()}}, f, indent=1)
    png = os.path.join(OUT, f"{stamp}.png")
    chart(med, clients, wls, png)
    print()
    print(md)
    log(f"done in {time.monotonic() - t_start:.0f} s: {os.path.relpath(csv_path, REPO)}, "
        f"{os.path.relpath(md_path, REPO)}, {os.path.relpath(png, REPO)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
