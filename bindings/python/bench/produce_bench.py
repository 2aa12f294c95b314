#!/usr/bin/env python3
"""Producer benchmark from one Python thread: kp's binding or confluent-kafka-python,
with the same produce loop (the one confluent-kafka's documentation shows):

    produce(topic, value, key, on_delivery=count)   # BufferError: poll(0.1), again
    poll(0)
    ... flush()

Flags follow perf/kp-perf.c (--bootstrap --topic --num-records --record-size --acks
--linger-ms --batch-size --compression, plus --key-count, --idempotence and
--producer-property k=v). Both clients get the same settings: batch.size, a 32 MiB
buffer (kp buffer.memory; librdkafka queue.buffering.max.kbytes, with no message
count limit), 5 requests in flight, and murmur2 key placement when records have keys.
The value is the same random A-Z string for every record.

Prints records/s (first produce to flush returned), the process's CPU seconds per
million records over the same span (all threads, resource.getrusage), and peak RSS
(VmHWM). With --output kp-perf (bindings/python/perf.sh, for perf/harness.py) it also
prints kp-perf's summary and CPU lines; it then accepts kp-perf's --keys, --throughput
-1 and --threads 1.
"""

from __future__ import annotations

import argparse
import random
import resource
import string
import sys
import time
from typing import Any, Dict, Optional


def parse() -> argparse.Namespace:
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--client", choices=("kp", "confluent"), required=True)
    a.add_argument("--bootstrap", required=True)
    a.add_argument("--topic", required=True)
    a.add_argument("--num-records", type=int, required=True)
    a.add_argument("--record-size", type=int, default=100)
    a.add_argument("--acks", default="1")
    a.add_argument("--linger-ms", type=int, default=5)
    a.add_argument("--batch-size", type=int, default=65536)
    a.add_argument("--compression", default="none")
    a.add_argument("--key-count", "--keys", type=int, default=0, help="keys drawn from this many (0: no key)")
    a.add_argument("--idempotence", choices=("true", "false"), default="false")
    a.add_argument("--producer-property", action="append", default=[], metavar="K=V")
    # perf/harness.py passes kp-perf's flags (bindings/python/perf.sh): these two
    # must be their defaults here (one thread, no rate limit).
    a.add_argument("--throughput", type=int, default=-1, help="kp-perf flag: only -1 (unlimited)")
    a.add_argument("--threads", type=int, default=1, help="kp-perf flag: only 1")
    a.add_argument("--output", choices=("own", "kp-perf"), default="own",
                   help="kp-perf: also print kp-perf's summary and CPU lines (for perf/harness.py)")
    o = a.parse_args()
    if o.throughput != -1 or o.threads != 1:
        a.error("only --throughput -1 and --threads 1 (one Python thread, as fast as it goes)")
    return o


def config(o: argparse.Namespace) -> Dict[str, Any]:
    conf: Dict[str, Any] = {
        "bootstrap.servers": o.bootstrap,
        "acks": o.acks,
        "linger.ms": o.linger_ms,
        "batch.size": o.batch_size,
        "compression.type": o.compression,
        "enable.idempotence": o.idempotence,
        "max.in.flight.requests.per.connection": 5,
    }
    if o.key_count:
        conf["partitioner"] = "murmur2_random"
    if o.client == "kp":
        conf["buffer.memory"] = 32 * 1024 * 1024
    else:
        conf["queue.buffering.max.kbytes"] = 32768
        conf["queue.buffering.max.messages"] = 10_000_000
    for kv in o.producer_property:
        k, _, v = kv.partition("=")
        conf[k] = v
    return conf


def main() -> int:
    o = parse()
    if o.client == "kp":
        import kp as client

        Producer: Any = client.Producer
    else:
        import confluent_kafka as client  # type: ignore[import-untyped]

        Producer = client.Producer
    p = Producer(config(o))
    value = "".join(random.choice(string.ascii_uppercase) for _ in range(o.record_size)).encode()
    keys = [str(i).encode() for i in range(o.key_count)]
    n = o.num_records
    done = [0, 0]  # delivered, failed
    first_error: list = []

    # --output kp-perf: send-to-report latency in ms from the record's CreateTime
    # (both clients stamp it at produce()), counted per millisecond.
    lat_ms: Dict[int, int] = {}
    wall_ms = time.time

    def on_delivery_timed(err: Optional[Any], msg: Any) -> None:
        if err is None:
            done[0] += 1
            ms = int(wall_ms() * 1000) - msg.timestamp()[1]
            lat_ms[ms] = lat_ms.get(ms, 0) + 1
        else:
            done[1] += 1
            if not first_error:
                first_error.append(err)

    def on_delivery(err: Optional[Any], msg: Any) -> None:
        if err is None:
            done[0] += 1
        else:
            done[1] += 1
            if not first_error:
                first_error.append(err)

    if o.output == "kp-perf":
        on_delivery = on_delivery_timed  # noqa: F811
    produce, poll, topic = p.produce, p.poll, o.topic
    rnd = random.Random(1)
    full = 0
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    if keys:
        for _ in range(n):
            key = keys[rnd.randrange(len(keys))]
            while True:
                try:
                    produce(topic, value, key, on_delivery=on_delivery)
                    break
                except BufferError:
                    full += 1
                    poll(0.1)
            poll(0)
    else:
        for _ in range(n):
            while True:
                try:
                    produce(topic, value, on_delivery=on_delivery)
                    break
                except BufferError:
                    full += 1
                    poll(0.1)
            poll(0)
    left = p.flush(120)
    t1 = time.perf_counter()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    elapsed = t1 - t0
    print(
        f"{o.client}: {n} records sent, {n / elapsed:.1f} records/sec "
        f"({n * o.record_size / elapsed / 2**20:.2f} MB/sec), "
        f"{cpu / n * 1e6:.3f} CPU s per million records, "
        f"peak RSS {peak_rss_mib():.1f} MiB, {elapsed:.3f} s, "
        f"delivered {done[0]} failed {done[1]} not reported {left} BufferError {full}"
    )
    if o.output == "kp-perf":
        print_kp_perf_summary(n, o.record_size, elapsed, lat_ms, done)
    if first_error:
        print(f"first error: {first_error[0]}", file=sys.stderr)
    return 0 if done[0] == n and left == 0 else 1


def peak_rss_mib() -> float:
    """VmHWM: this process's own peak. getrusage's ru_maxrss is floored at the
    parent's peak, which Linux carries into a child across fork and exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_kp_perf_summary(n: int, size: int, elapsed: float, lat_ms: Dict[int, int], done: list) -> None:
    """perf/kp-perf.c's two closing lines, which perf/harness.py parses: the
    latencies come from lat_ms (ms resolution), CPU and peak RSS are the whole
    process's (start-up and import included, as for the C programs)."""
    total = sum(lat_ms.values())
    ordered = sorted(lat_ms.items())

    def pct(q: float) -> float:
        want, seen = q * total, 0
        for ms, c in ordered:
            seen += c
            if seen >= want:
                return float(ms)
        return float(ordered[-1][0]) if ordered else 0.0

    avg = sum(ms * c for ms, c in ordered) / total if total else 0.0
    mx = float(ordered[-1][0]) if ordered else 0.0
    print(f"{n} records sent, {n / elapsed:.1f} records/sec ({n * size / elapsed / 2**20:.2f} MB/sec), "
          f"{avg:.2f} ms avg latency, {mx:.2f} ms max latency, {pct(0.5):.2f} ms 50th, "
          f"{pct(0.95):.2f} ms 95th, {pct(0.99):.2f} ms 99th, {pct(0.999):.2f} ms 99.9th.")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime
    print(f"client cpu {cpu:.2f} s (user {ru.ru_utime:.2f} s, sys {ru.ru_stime:.2f} s), "
          f"{cpu * 1e6 / max(done[0], 1):.2f} cpu-s per million records, peak rss {peak_rss_mib():.1f} MiB.")


if __name__ == "__main__":
    sys.exit(main())
