#!/usr/bin/env python3
"""Independent reader for kp's tests: consumes a topic with confluent-kafka
(librdkafka's consumer, not kp) and prints one JSON object per record with
keys/values/headers base64-encoded, so the test can compare bytes exactly.

usage: consume.py BOOTSTRAP TOPIC EXPECTED_COUNT [--timeout S] [--isolation read_committed|read_uncommitted]
                  [--config KEY=VALUE ...]   (extra librdkafka settings, e.g. TLS)
Stops when EXPECTED_COUNT records were read or after the timeout (exit 3
if fewer arrived). Prints the records sorted by (partition, offset).

Partitions are assigned explicitly from the beginning (no consumer group):
right after a topic is created, a broker's metadata may not list every
partition yet, and a group subscription would then silently skip one until
its next metadata refresh. The partition list is re-read every second and new
partitions are added.
"""
import argparse
import base64
import json
import sys
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition


def b64(b):
    return None if b is None else base64.b64encode(b).decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("topic")
    ap.add_argument("count", type=int)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--isolation", default="read_uncommitted")
    ap.add_argument("--config", action="append", default=[])
    a = ap.parse_args()
    extra = dict(kv.split("=", 1) for kv in a.config)
    c = Consumer({**extra, **{
        "bootstrap.servers": a.bootstrap,
        "group.id": "kp-verify-" + uuid.uuid4().hex,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": a.isolation,
        "enable.partition.eof": False,
    }})
    assigned = set()

    def assign_new_partitions():
        md = c.list_topics(a.topic, timeout=5)
        t = md.topics.get(a.topic)
        if t is None or t.error is not None:
            return
        new = [p for p in t.partitions if p not in assigned]
        if new:
            c.incremental_assign([TopicPartition(a.topic, p, OFFSET_BEGINNING) for p in new])
            assigned.update(new)

    out = []
    deadline = time.time() + a.timeout
    next_check = 0.0
    while len(out) < a.count and time.time() < deadline:
        if time.time() >= next_check:
            assign_new_partitions()
            next_check = time.time() + 1.0
        for m in c.consume(num_messages=10000, timeout=0.5):
            if m.error():
                if m.error().code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue
                print("consume error: %s" % m.error(), file=sys.stderr)
                continue
            ts_type, ts = m.timestamp()
            out.append({
                "partition": m.partition(),
                "offset": m.offset(),
                "key": b64(m.key()),
                "value": b64(m.value()),
                "headers": [[k, b64(v)] for k, v in (m.headers() or [])],
                "timestamp": ts,
                "timestamp_type": ts_type,
            })
    # Linger briefly to catch records beyond the expected count (duplicates).
    end = time.time() + 1.0
    while time.time() < end:
        for m in c.consume(num_messages=10000, timeout=0.2):
            if not m.error():
                ts_type, ts = m.timestamp()
                out.append({"partition": m.partition(), "offset": m.offset(), "key": b64(m.key()),
                            "value": b64(m.value()), "headers": [[k, b64(v)] for k, v in (m.headers() or [])],
                            "timestamp": ts, "timestamp_type": ts_type})
    c.close()
    out.sort(key=lambda r: (r["partition"], r["offset"]))
    for r in out:
        print(json.dumps(r))
    if len(out) < a.count:
        print("only %d of %d records arrived within %.0fs (partitions assigned: %s)" % (len(out), a.count, a.timeout, sorted(assigned)), file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
