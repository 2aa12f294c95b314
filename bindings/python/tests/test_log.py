"""kp's log lines reach a logging.Logger (the `logger` config entry, as in
confluent_kafka), on the Python thread inside poll()/flush()/close(), against the
real cluster."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Callable, List, Tuple

import kp


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[Tuple[logging.LogRecord, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record, threading.current_thread().name))


def capture_logger() -> Tuple[logging.Logger, Capture]:
    logger = logging.getLogger(f"kp-test-{uuid.uuid4().hex[:8]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    h = Capture()
    logger.addHandler(h)
    return logger, h


def connected(h: Capture) -> bool:
    return any(
        r.levelno == logging.INFO
        and r.kp_facility == "broker"  # type: ignore[attr-defined]
        and r.syslog_level == 6  # type: ignore[attr-defined]
        and r.getMessage().startswith("broker: connected to broker ")
        for r, _ in h.records
    )


def produce_and_close(bootstrap: str, topic: str, extra: dict) -> Capture:
    logger, h = capture_logger()
    p = kp.Producer({"bootstrap.servers": bootstrap, "logger": logger, **extra})
    errors: list = []
    p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
    assert p.flush(30) == 0
    assert errors == [None]
    p.close()
    return h


def test_connect_logs_info_broker_line(bootstrap: str, new_topic: Callable[..., str]) -> None:
    h = produce_and_close(bootstrap, new_topic(1), {})
    assert connected(h), [(r.levelname, r.getMessage()) for r, _ in h.records]
    me = threading.current_thread().name
    assert all(t == me for _, t in h.records), {t for _, t in h.records}


def test_log_level_4_suppresses_info_line(bootstrap: str, new_topic: Callable[..., str]) -> None:
    h = produce_and_close(bootstrap, new_topic(1), {"log_level": 4})
    assert not connected(h), [(r.levelname, r.getMessage()) for r, _ in h.records]


def test_unreachable_bootstrap_logs_warning_broker_line() -> None:
    logger, h = capture_logger()
    p = kp.Producer({"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 60000}, logger=logger)
    reports: list = []
    p.produce(f"py-log-{uuid.uuid4().hex[:8]}", b"x", on_delivery=lambda err, msg: reports.append(err))
    deadline = time.monotonic() + 30
    while not any(
        r.levelno == logging.WARNING and r.kp_facility == "broker"  # type: ignore[attr-defined]
        for r, _ in h.records
    ):
        assert time.monotonic() < deadline, [(r.levelname, r.getMessage()) for r, _ in h.records]
        p.poll(0.1)
    p.purge()
    p.flush(5)
    p.close()
    assert len(reports) == 1 and reports[0] is not None


def test_logger_must_be_a_logger() -> None:
    try:
        kp.Producer({"bootstrap.servers": "127.0.0.1:1", "logger": print})
    except TypeError:
        return
    raise AssertionError("a non-Logger logger was accepted")
