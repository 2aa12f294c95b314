#!/usr/bin/env python3
# An ordinary confluent-kafka producer application (the kind found in tutorials):
# reads lines, produces them with keys, counts delivery reports, handles BufferError.
# test_confluent_script.py runs it unchanged except for the import line.
import sys

from confluent_kafka import KafkaError, KafkaException, Producer

delivered = 0
failed = 0


def delivery_report(err, msg):
    global delivered, failed
    if err is not None:
        failed += 1
        sys.stderr.write("delivery failed: %s\n" % err)
        assert isinstance(err, KafkaError)
    else:
        delivered += 1
        assert msg.error() is None and msg.offset() >= 0


def main():
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    conf = {
        "bootstrap.servers": bootstrap,
        "client.id": "tutorial-producer",
        "linger.ms": 10,
        "compression.type": "lz4",
        "acks": "all",
    }
    p = Producer(**conf)
    md = p.list_topics(topic, timeout=10)
    print("partitions", len(md.topics[topic].partitions))
    for i in range(count):
        line = "line %d" % i
        while True:
            try:
                p.produce(topic, line.encode("utf-8"), key=str(i % 17), callback=delivery_report,
                          headers=[("seq", str(i).encode())])
                break
            except BufferError:
                sys.stderr.write("queue full (%d messages awaiting delivery): waiting\n" % len(p))
                p.poll(1)
        p.poll(0)
    remaining = p.flush(30)
    if remaining:
        raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT))
    print("delivered", delivered, "failed", failed, "remaining", remaining)


if __name__ == "__main__":
    main()
