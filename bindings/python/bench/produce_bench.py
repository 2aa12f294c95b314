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
million records over the same span (all threads, resource.getrusage), and peak RSS.
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
    a.add_argument("--key-count", type=int, default=0, help="keys drawn from this many (0: no key)")
    a.add_argument("--idempotence", choices=("true", "false"), default="false")
    a.add_argument("--producer-property", action="append", default=[], metavar="K=V")
    return a.parse_args()


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

    def on_delivery(err: Optional[Any], msg: Any) -> None:
        if err is None:
            done[0] += 1
        else:
            done[1] += 1
            if not first_error:
                first_error.append(err)

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
        f"peak RSS {ru1.ru_maxrss / 1024:.1f} MiB, {elapsed:.3f} s, "
        f"delivered {done[0]} failed {done[1]} not reported {left} BufferError {full}"
    )
    if first_error:
        print(f"first error: {first_error[0]}", file=sys.stderr)
    return 0 if done[0] == n and left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
