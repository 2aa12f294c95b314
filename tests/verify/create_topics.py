#!/usr/bin/env python3
"""Creates topics in one admin request with confluent-kafka's AdminClient
(one Python start instead of one JVM per topic with testbed/kafka.sh).

usage: create_topics.py BOOTSTRAP RF NAME:PARTITIONS [NAME:PARTITIONS ...]
Waits until each topic exists; an already existing topic is fine.
"""
import sys

from confluent_kafka.admin import AdminClient, NewTopic


def main():
    bootstrap, rf, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(s.rsplit(":", 1)[0], num_partitions=int(s.rsplit(":", 1)[1]), replication_factor=rf) for s in specs]
    failed = 0
    for name, fut in admin.create_topics(topics, operation_timeout=30, request_timeout=60).items():
        try:
            fut.result()
        except Exception as e:  # noqa: BLE001 - report every failure, then exit non-zero
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                print("create_topics: %s: %s" % (name, e), file=sys.stderr)
                failed += 1
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
