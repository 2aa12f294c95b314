"""kp: a Kafka producer (Rust engine, C ABI) with confluent_kafka.Producer's API.

    import kp
    p = kp.Producer({"bootstrap.servers": "localhost:9092"})
    p.produce("topic", b"value", key=b"key", on_delivery=lambda err, msg: ...)
    p.flush()
"""

from __future__ import annotations

from typing import Tuple

from ._errors import KafkaError, KafkaException
from ._ffi import ffi, lib
from .aio import AIOProducer
from ._producer import (
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    ClusterMetadata,
    DeliveryFuture,
    Message,
    PartitionMetadata,
    Producer,
    TopicMetadata,
)

__all__ = [
    "AIOProducer",
    "DeliveryFuture",
    "KafkaError",
    "KafkaException",
    "Message",
    "Producer",
    "ClusterMetadata",
    "TopicMetadata",
    "PartitionMetadata",
    "TIMESTAMP_CREATE_TIME",
    "TIMESTAMP_LOG_APPEND_TIME",
    "TIMESTAMP_NOT_AVAILABLE",
    "libversion",
    "version",
]

__version__ = "0.1.0"


def version() -> Tuple[str, int]:
    """This binding's version, like confluent_kafka.version()."""
    return (__version__, 0x000100)


def libversion() -> Tuple[str, int]:
    """The loaded libkp's version (string, number)."""
    return (ffi.string(lib.kp_version_str()).decode(), int(lib.kp_version()))
