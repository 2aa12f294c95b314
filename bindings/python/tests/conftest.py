"""Fixtures: the real Kafka cluster named by KP_BOOTSTRAP, fresh topics, and a
confluent_kafka consumer (an independent client) to read back what kp wrote."""

from __future__ import annotations

import faulthandler
import os
import uuid
from typing import Any, Callable, List

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# A test still running after this many seconds (KP_PYTEST_TIMEOUT) dumps
# every Python thread's stack to the terminal and ends the run with status 1,
# so a hang fails with the place it hangs instead of eating CI's time limit.
TEST_TIMEOUT_S = float(os.environ.get("KP_PYTEST_TIMEOUT", "240"))
_stderr_fd = -1


def pytest_configure(config: pytest.Config) -> None:
    global _stderr_fd
    # Output capture is suspended while plugins configure: fd 2 is the
    # terminal's stderr here, not a capture file that _exit would discard.
    _stderr_fd = os.dup(2)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Any:
    faulthandler.dump_traceback_later(TEST_TIMEOUT_S, exit=True, file=_stderr_fd)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def bootstrap() -> str:
    servers = os.environ.get("KP_BOOTSTRAP")
    if not servers:
        pytest.fail("KP_BOOTSTRAP must name the test cluster (testbed/kafka.sh start)")
    return servers


@pytest.fixture(scope="session")
def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


@pytest.fixture
def new_topic(admin: AdminClient) -> Callable[..., str]:
    def make(partitions: int = 3) -> str:
        name = f"py-{uuid.uuid4().hex[:12]}"
        fs = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)
        for f in fs.values():
            f.result(timeout=60)
        # wait until the metadata shows every partition with a leader
        for _ in range(100):
            md = admin.list_topics(name, timeout=10).topics[name]
            if md.error is None and len(md.partitions) == partitions and all(
                p.leader >= 0 for p in md.partitions.values()
            ):
                return name
        raise AssertionError(f"topic {name} not ready")

    return make


def consume_all(bootstrap: str, topic: str, expected: int, *, committed: bool = False,
                idle_s: float = 3.0) -> List[Any]:
    """Reads every partition of `topic` from the start with confluent_kafka's consumer
    until `expected` records came and then `idle_s` seconds passed without more."""
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"py-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed" if committed else "read_uncommitted",
    })
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        c.assign([TopicPartition(topic, p, 0) for p in md.partitions])
        out: List[Any] = []
        import time

        deadline = time.monotonic() + 60
        last = time.monotonic()
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                if len(out) >= expected and time.monotonic() - last > idle_s:
                    break
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(m.error())
            out.append(m)
            last = time.monotonic()
        return out
    finally:
        c.close()
