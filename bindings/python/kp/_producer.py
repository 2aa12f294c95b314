"""kp.Producer: confluent_kafka.Producer's API on kp's engine, through kp's C ABI.

produce(), poll(), flush(), the delivery callback and Message are in C
(kp/_native.c); the rest calls libkp through cffi (kp/_ffi.py). Delivery reports
are served only on the caller's thread, inside poll(), flush(), the transactional
calls and close() (the producer runs kp with delivery.report.mode=poll), so no
Python code ever runs on a kp thread. kp's log lines come the same way (see
_log_callback).
Waits happen in slices of at most 100 ms so that Ctrl-C (KeyboardInterrupt)
interrupts them; the GIL is released while kp waits.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import time
import weakref
from types import TracebackType
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._errors import KafkaError, KafkaException, from_kp_error
from ._ffi import ffi, lib, path_loaded

log = logging.getLogger("kp")

TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2

_INT32_MAX = 2**31 - 1
_ERRSTR = 512

Bytesish = Union[str, bytes, bytearray, memoryview]
HeaderValue = Optional[Bytesish]
Headers = Union[Mapping[str, HeaderValue], Sequence[Tuple[str, HeaderValue]]]
# A delivered (or failed) record as delivery callbacks get it: topic(), partition(),
# offset(), key(), value(), headers(), timestamp(), error(), len().
Message = _native.Message
DeliveryCallback = Callable[[Optional[KafkaError], Message], Any]

# confluent_kafka configuration keys that are Python objects, not librdkafka properties.
_PY_KEYS = {"on_delivery", "error_cb", "throttle_cb", "stats_cb", "logger", "oauth_cb"}
# librdkafka properties that have no meaning in kp; accepted and logged.
_IGNORED = {
    "queue.buffering.max.messages",
    "socket.keepalive.enable",
    "api.version.request",
    "statistics.interval.ms",
    "log.connection.close",
    "sticky.partitioning.linger.ms",
    "delivery.report.only.error",
}


def _to_bytes(x: Bytesish) -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode()
    return bytes(x)


def _ms(timeout: Optional[float]) -> int:
    """Seconds (None or negative: forever) to milliseconds for kp."""
    if timeout is None or timeout < 0:
        return _INT32_MAX
    return min(int(timeout * 1000), _INT32_MAX)


class PartitionMetadata:
    def __init__(self, id: int, leader: int) -> None:
        self.id = id
        self.leader = leader
        self.replicas: List[int] = []
        self.isrs: List[int] = []
        self.error: Optional[KafkaError] = None


class TopicMetadata:
    def __init__(self, topic: str, partitions: Dict[int, PartitionMetadata]) -> None:
        self.topic = topic
        self.partitions = partitions
        self.error: Optional[KafkaError] = None


class ClusterMetadata:
    """What list_topics() returns: `topics` maps the asked topic to its partitions."""

    def __init__(self, topics: Dict[str, TopicMetadata]) -> None:
        self.topics = topics
        self.brokers: Dict[int, Any] = {}
        self.cluster_id: Optional[str] = None
        self.controller_id = -1
        self.orig_broker_id = -1
        self.orig_broker_name: Optional[str] = None


def _headers_list(headers: Headers) -> List[Tuple[str, Optional[bytes]]]:
    """produce()'s headers (a mapping or (name, value) pairs) as the list that
    kp/_native.c sends and Message.headers() returns."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(k, None if v is None else _to_bytes(v)) for k, v in items]


_native.bind(path_loaded, KafkaError, _headers_list)


def _reraise() -> None:
    """Raises the first exception a delivery callback raised on this thread."""
    exc = _native.take_exception()
    if exc is not None:
        raise exc


# syslog level (0-7) -> logging level, as confluent_kafka maps librdkafka's.
_LOG_LEVELS = (
    logging.CRITICAL,
    logging.CRITICAL,
    logging.CRITICAL,
    logging.ERROR,
    logging.WARNING,
    logging.INFO,
    logging.INFO,
    logging.DEBUG,
)


def _log_callback(logger: logging.Logger) -> Any:
    """kp's log callback for one producer: writes each line to `logger` as
    "<facility>: <message>" (facility: broker, protocol, metadata, producer, txn,
    security; also in the record's `kp_facility`). kp calls it only inside
    kp_poll/kp_flush/kp_producer_close/kp_producer_destroy (poll mode), on the
    Python thread calling them; cffi takes the GIL back for it. Nothing escapes it:
    an exception the logger raises is dropped."""

    def on_log(level: int, facility: Any, message: Any, _ctx: Any) -> None:
        try:
            lvl = _LOG_LEVELS[level] if 0 <= level < len(_LOG_LEVELS) else logging.WARNING
            if logger.isEnabledFor(lvl):
                fac = ffi.string(facility).decode(errors="replace")
                text = ffi.string(message).decode(errors="replace")
                logger.log(lvl, "%s: %s", fac, text, extra={"kp_facility": fac, "syslog_level": level})
        except BaseException:  # noqa: BLE001 - must not unwind into kp
            pass

    return ffi.callback("void(int32_t, const char *, const char *, void *)", on_log)


# Producers of this process, marked unusable in a forked child.
_live: "weakref.WeakSet[Producer]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # kp's threads do not exist in the child: its producers must not be touched.
    for p in list(_live):
        p._forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _group_id(meta: Any) -> bytes:
    if isinstance(meta, str):
        return meta.encode()
    group = getattr(meta, "group_id", None)
    if isinstance(group, str):
        return group.encode()
    # librdkafka's serialised consumer group metadata: b"CGMDv2:" + int32 generation,
    # then the NUL-terminated group id.
    if isinstance(meta, bytes) and meta.startswith(b"CGMDv2:") and b"\0" in meta[11:]:
        return meta[11:].split(b"\0", 1)[0]
    raise TypeError("group_metadata: expected a group id or Consumer.consumer_group_metadata()")


class DeliveryFuture(concurrent.futures.Future):  # type: ignore[type-arg]
    """The delivery of one record sent with `Producer.send()`: resolves to its
    `Message` (partition, offset, timestamp) or fails with `KafkaException`.

    Delivery reports are served where confluent_kafka serves them: by `poll()` and
    `flush()` on the application's threads (never on a kp thread). `result()` and
    `exception()` serve them while they wait, so `producer.send(...).result()` works
    without a poll loop; `concurrent.futures.wait()`, `as_completed()` and callbacks
    added with `add_done_callback()` need the application to call `poll()` or
    `flush()` (they run where the report is served). Do not wait on a future inside
    a delivery callback: reports are served one at a time."""

    def __init__(self, producer: "Producer") -> None:
        super().__init__()
        self._producer: Optional["Producer"] = producer

    def _serve_until_done(self, timeout: Optional[float]) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done():
            p = self._producer
            if p is None or p._p == ffi.NULL:
                return  # closed: close() served every report
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            p.poll(0.1 if left is None else min(left, 0.1))

    def result(self, timeout: Optional[float] = None) -> "Message":
        self._serve_until_done(timeout)
        return super().result(0 if timeout is not None or not self.done() else None)

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        self._serve_until_done(timeout)
        return super().exception(0 if timeout is not None or not self.done() else None)

    def _settle(self, err: Optional[KafkaError], msg: "Message") -> None:
        self._producer = None  # the future may outlive the producer
        if err is None:
            self.set_result(msg)
        else:
            self.set_exception(KafkaException(err))


class Producer(_native.ProducerBase):
    """A Kafka producer with confluent_kafka.Producer's API.

    `conf` takes kp's property names (Java's, and librdkafka's where they mean
    the same). Differences from plain kp defaults, so that switching from
    confluent_kafka keeps data where it was: `partitioner` defaults to
    `consistent_random` (librdkafka's CRC32 placement; set `murmur2_random` to
    place keys as the Java producer does) and `max.block.ms` to 0 (produce()
    raises BufferError at once when the buffer is full, like confluent_kafka).
    """

    def __init__(self, conf: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        self._p: Any = ffi.NULL
        self._forked = False
        settings = dict(conf or {})
        settings.update(kwargs)
        self._default_cb: Optional[DeliveryCallback] = settings.pop("on_delivery", None)
        logger = settings.get("logger") or log
        if not isinstance(logger, logging.Logger):
            raise TypeError("logger: expected a logging.Logger")
        # alive as long as the producer: kp calls it until kp_producer_destroy returned
        self._log_cb = _log_callback(logger)
        for key in _PY_KEYS & settings.keys():
            settings.pop(key)
            if key != "logger":
                log.warning("kp: %r is not supported and is ignored", key)
        mode = settings.pop("delivery.report.mode", "poll")
        if mode != "poll":
            raise ValueError("the Python binding serves delivery reports in poll()/flush() only")
        settings.setdefault("partitioner", "consistent_random")
        settings.setdefault("max.block.ms", 0)
        self._block = str(settings["max.block.ms"]).strip() not in ("0", "0.0")
        settings["delivery.report.mode"] = "poll"
        cfg = lib.kp_config_new()
        errstr = ffi.new("char[]", _ERRSTR)
        try:
            if lib.kp_config_set_log_callback(cfg, self._log_cb, ffi.NULL) != 0:
                raise KafkaException(KafkaError(-100, "kp_config_set_log_callback failed"))
            for name, value in settings.items():
                if name in _IGNORED:
                    log.info("kp: librdkafka property %r has no effect in kp", name)
                    continue
                if isinstance(value, bool):
                    value = "true" if value else "false"
                rc = lib.kp_config_set(cfg, str(name).encode(), str(value).encode(), errstr, _ERRSTR)
                if rc != 0:
                    raise KafkaException(KafkaError(-100, ffi.string(errstr).decode()))
            p = lib.kp_producer_new(cfg, errstr, _ERRSTR)
            if p == ffi.NULL:
                raise KafkaException(KafkaError(-100, ffi.string(errstr).decode()))
            cfg = ffi.NULL
        finally:
            if cfg != ffi.NULL:
                lib.kp_config_destroy(cfg)
        self._p = p
        self._ptr = int(ffi.cast("uintptr_t", p))
        _live.add(self)

    # -- internals -------------------------------------------------------------------

    def _handle(self) -> Any:
        if self._forked:
            raise KafkaException(
                KafkaError(
                    -111,
                    "this producer was created before os.fork(): its I/O threads do not "
                    "exist in this process; create a new Producer in the child",
                    fatal=True,
                )
            )
        if self._p == ffi.NULL:
            raise KafkaException(KafkaError(-110, "the producer is closed"))
        return self._p

    def _fatal(self) -> None:
        errstr = ffi.new("char[]", _ERRSTR)
        code = lib.kp_producer_fatal_error(self._p, errstr, _ERRSTR)
        if code != 0:
            raise KafkaException(KafkaError(code, ffi.string(errstr).decode(), fatal=True))

    # -- producing: produce(), poll() and flush() are kp._native.ProducerBase's -----

    def _raise(self, err: int) -> None:
        """Raises KafkaException for kp error `err` (kp/_native.c calls it), with
        the producer's fatal error when it has one."""
        self._fatal()
        raise KafkaException(KafkaError(err))

    def __len__(self) -> int:
        if self._forked or self._p == ffi.NULL:
            return 0
        return int(lib.kp_producer_outstanding(self._p))

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        """Fails queued and/or in-flight records; their reports (PURGE_QUEUE,
        PURGE_INFLIGHT) are served by the next poll()/flush(). kp's purge does not
        block, so `blocking` has no effect."""
        flags = (1 if in_queue else 0) | (2 if in_flight else 0)
        err = lib.kp_purge(self._handle(), flags)
        if err != 0:
            raise KafkaException(KafkaError(err))

    def send(
        self,
        topic: str,
        value: Optional[Bytesish] = None,
        key: Optional[Bytesish] = None,
        partition: int = -1,
        timestamp: int = 0,
        headers: Optional[Headers] = None,
    ) -> DeliveryFuture:
        """produce() returning a `concurrent.futures.Future` of the delivered
        `Message` (see `DeliveryFuture`): `producer.send(t, b"v").result(10)`.
        Raises BufferError (full buffer) and KafkaException like produce()."""
        fut = DeliveryFuture(self)
        self.produce(topic, value, key, partition, on_delivery=fut._settle, timestamp=timestamp, headers=headers)
        return fut

    def list_topics(self, topic: Optional[str] = None, timeout: float = -1) -> ClusterMetadata:
        """Partitions (and leaders) of `topic`. kp looks topics up one at a time: the
        topic is required."""
        if topic is None:
            raise ValueError("kp: list_topics() needs a topic name")
        out = ffi.new("kp_topic_info_t **")
        errstr = ffi.new("char[]", _ERRSTR)
        err = lib.kp_partitions_for(self._handle(), topic.encode(), _ms(timeout), out, errstr, _ERRSTR)
        if err != 0:
            raise KafkaException(KafkaError(err, ffi.string(errstr).decode()))
        try:
            n = lib.kp_topic_info_partition_count(out[0])
            parts = {i: PartitionMetadata(i, lib.kp_topic_info_leader(out[0], i)) for i in range(n)}
        finally:
            lib.kp_topic_info_destroy(out[0])
        return ClusterMetadata({topic: TopicMetadata(topic, parts)})

    # -- transactions ----------------------------------------------------------------

    @staticmethod
    def _txn(e: Any) -> None:
        _reraise()
        if e != ffi.NULL:
            raise KafkaException(from_kp_error(e))

    def init_transactions(self, timeout: Optional[float] = None) -> None:
        self._txn(lib.kp_init_transactions(self._handle(), _ms(timeout)))

    def begin_transaction(self) -> None:
        self._txn(lib.kp_begin_transaction(self._handle()))

    def commit_transaction(self, timeout: Optional[float] = None) -> None:
        self._txn(lib.kp_commit_transaction(self._handle(), _ms(timeout)))

    def abort_transaction(self, timeout: Optional[float] = None) -> None:
        self._txn(lib.kp_abort_transaction(self._handle(), _ms(timeout)))

    def send_offsets_to_transaction(
        self, positions: Sequence[Any], group_metadata: Any, timeout: Optional[float] = None
    ) -> None:
        """Adds consumer positions (objects with .topic, .partition and .offset, e.g.
        confluent_kafka.TopicPartition from Consumer.position()) to the transaction.
        `group_metadata` is the consumer group id, or what confluent_kafka's
        Consumer.consumer_group_metadata() returns (kp uses its group id only)."""
        group = _group_id(group_metadata)
        offsets = lib.kp_offsets_new()
        try:
            for tp in positions:
                err = lib.kp_offsets_add(offsets, tp.topic.encode(), tp.partition, tp.offset)
                if err != 0:
                    raise KafkaException(KafkaError(err))
            self._txn(lib.kp_send_offsets_to_transaction(self._handle(), offsets, group, _ms(timeout)))
        finally:
            lib.kp_offsets_destroy(offsets)

    # -- closing ---------------------------------------------------------------------

    def close(self, timeout: Optional[float] = None) -> int:
        """Flushes up to `timeout` seconds, then closes: records still unreported get
        a _DESTROY report (served here). Returns how many had to be failed."""
        if self._forked or self._p == ffi.NULL:
            return 0
        try:
            left = self.flush(timeout)
        finally:
            p, self._p, self._ptr = self._p, ffi.NULL, 0
            _live.discard(self)
            lib.kp_producer_close(p, 0)
            lib.kp_producer_destroy(p)
        _reraise()
        return left

    def __enter__(self) -> "Producer":
        return self

    def __exit__(
        self,
        exc_type: Optional[type],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_forked", True) or getattr(self, "_p", ffi.NULL) == ffi.NULL:
            return
        p, self._p, self._ptr = self._p, ffi.NULL, 0
        lib.kp_producer_destroy(p)  # serves the remaining reports (failed) here
        _native.take_exception()  # nobody to raise a callback's exception to
