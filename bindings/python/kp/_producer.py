"""kp.Producer: confluent_kafka.Producer's API on kp's engine, through kp's C ABI.

Delivery reports are served only on the caller's thread, inside poll(), flush(),
the transactional calls and close() (the producer runs kp with
delivery.report.mode=poll), so no Python code ever runs on a kp thread. kp's log
lines come the same way (see _log_callback).
Waits happen in slices of at most _SLICE_MS so that Ctrl-C (KeyboardInterrupt)
interrupts them; cffi releases the GIL for every call into kp.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from types import TracebackType
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._errors import KP_ERR_QUEUE_FULL, KP_ERR_TIMED_OUT, KafkaError, KafkaException, from_kp_error
from ._ffi import ffi, lib

log = logging.getLogger("kp")

TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2

_SLICE_MS = 100
_INT32_MAX = 2**31 - 1
_ERRSTR = 512

Bytesish = Union[str, bytes, bytearray, memoryview]
HeaderValue = Optional[Bytesish]
Headers = Union[Mapping[str, HeaderValue], Sequence[Tuple[str, HeaderValue]]]
DeliveryCallback = Callable[[Optional[KafkaError], "Message"], Any]

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


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None or timeout < 0 else time.monotonic() + timeout


def _next_slice(deadline: Optional[float]) -> Tuple[int, bool]:
    """The next wait in ms (at most _SLICE_MS, so that signals are seen between
    waits) and whether it is the last one before the deadline."""
    if deadline is None:
        return _SLICE_MS, False
    left = int((deadline - time.monotonic()) * 1000)
    return max(0, min(left, _SLICE_MS)), left <= _SLICE_MS


class Message:
    """A delivered (or failed) record, as passed to delivery callbacks."""

    __slots__ = ("_topic", "_partition", "_offset", "_key", "_value", "_headers", "_ts", "_error")

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: Optional[bytes],
        value: Optional[bytes],
        headers: Optional[List[Tuple[str, Optional[bytes]]]],
        timestamp: int,
        error: Optional[KafkaError],
    ) -> None:
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._key = key
        self._value = value
        self._headers = headers
        self._ts = timestamp
        self._error = error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> Optional[bytes]:
        return self._key

    def value(self) -> Optional[bytes]:
        return self._value

    def headers(self) -> Optional[List[Tuple[str, Optional[bytes]]]]:
        return self._headers

    def timestamp(self) -> Tuple[int, int]:
        if self._ts < 0:
            return (TIMESTAMP_NOT_AVAILABLE, 0)
        return (TIMESTAMP_CREATE_TIME, self._ts)

    def error(self) -> Optional[KafkaError]:
        return self._error

    def __len__(self) -> int:
        return 0 if self._value is None else len(self._value)

    def __repr__(self) -> str:
        return f"Message(topic={self._topic!r}, partition={self._partition}, offset={self._offset})"


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


# Records waiting for their report: id -> (callback, topic, key, value, headers).
# The id travels through kp as the callback's ctx pointer.
_pending: Dict[int, Tuple[DeliveryCallback, str, Optional[bytes], Optional[bytes], Any]] = {}
_ids = itertools.count(1)
# An exception raised by a delivery callback, re-raised by the call that served it.
_tls = threading.local()


def _report_headers(hdrs: Any) -> Optional[List[Tuple[str, Optional[bytes]]]]:
    if not hdrs:
        return None
    return [(k, v) for k, v in hdrs]


def _serve_report(report: Any, ctx: Any) -> None:
    # Runs inside kp_poll/kp_flush/kp_producer_close on the thread that called them.
    try:
        cb, topic, key, value, hdrs = _pending.pop(int(ffi.cast("uintptr_t", ctx)))
        code = lib.kp_report_error(report)
        error = None
        if code != 0:
            text = lib.kp_report_error_message(report)
            error = KafkaError(
                code,
                ffi.string(text).decode(errors="replace") if text != ffi.NULL else None,
                retriable=bool(lib.kp_report_is_retriable(report)),
                in_report=True,
            )
        msg = Message(
            topic,
            lib.kp_report_partition(report),
            lib.kp_report_offset(report),
            key,
            value,
            _report_headers(hdrs),
            lib.kp_report_timestamp(report),
            error,
        )
        cb(error, msg)
    except BaseException as e:  # noqa: BLE001 - handed to the caller of poll/flush
        if getattr(_tls, "exc", None) is None:
            _tls.exc = e


# The one C callback for every record (ctx = the record's id in _pending).
_on_report: Any = ffi.callback("void(const kp_report_t *, void *)", _serve_report)


def _reraise() -> None:
    exc = getattr(_tls, "exc", None)
    if exc is not None:
        _tls.exc = None
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


class Producer:
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
        self._topics: Dict[str, Any] = {}
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

    def _topic(self, topic: str) -> Any:
        c = self._topics.get(topic)
        if c is None:
            c = self._topics[topic] = ffi.new("char[]", topic.encode())
        return c

    def _fatal(self) -> None:
        errstr = ffi.new("char[]", _ERRSTR)
        code = lib.kp_producer_fatal_error(self._p, errstr, _ERRSTR)
        if code != 0:
            raise KafkaException(KafkaError(code, ffi.string(errstr).decode(), fatal=True))

    # -- producing -------------------------------------------------------------------

    def produce(
        self,
        topic: str,
        value: Optional[Bytesish] = None,
        key: Optional[Bytesish] = None,
        partition: int = -1,
        on_delivery: Optional[DeliveryCallback] = None,
        timestamp: int = 0,
        headers: Optional[Headers] = None,
        callback: Optional[DeliveryCallback] = None,
    ) -> None:
        """Queues a record. Raises BufferError when the buffer is full (call poll()),
        KafkaException when the record is rejected."""
        p = self._handle()
        rec = getattr(_tls, "rec", None)
        if rec is None:  # one record struct per thread, reused (kp copies the record)
            rec = _tls.rec = ffi.new("kp_record_t *")
            rec.struct_size = ffi.sizeof("kp_record_t")
        rec.topic = self._topic(topic)
        rec.partition = partition
        rec.timestamp_ms = timestamp
        kb = vb = None
        if key is None:
            rec.key = ffi.NULL
        else:
            kb = _to_bytes(key)
            rec.key = kbuf = ffi.from_buffer(kb)  # noqa: F841 - alive until kp_send returns
            rec.key_len = len(kb)
        if value is None:
            rec.value = ffi.NULL
        else:
            vb = _to_bytes(value)
            rec.value = vbuf = ffi.from_buffer(vb)  # noqa: F841
            rec.value_len = len(vb)
        hdrs: Optional[List[Tuple[str, Optional[bytes]]]] = None
        if headers:
            items = headers.items() if isinstance(headers, Mapping) else headers
            hdrs = [(k, None if v is None else _to_bytes(v)) for k, v in items]
            arr = ffi.new("kp_header_t[]", len(hdrs))
            keep = []
            for i, (hk, hv) in enumerate(hdrs):
                kbytes = hk.encode()
                keep.append(kbytes)
                arr[i].key = ffi.from_buffer(kbytes)
                arr[i].key_len = len(kbytes)
                if hv is not None:
                    arr[i].value = ffi.from_buffer(hv)
                    arr[i].value_len = len(hv)
            rec.headers = arr
            rec.header_count = len(hdrs)
        else:
            rec.headers = ffi.NULL
            rec.header_count = 0
        cb = on_delivery or callback or self._default_cb
        if cb is None:
            err = lib.kp_send(p, rec, ffi.NULL, ffi.NULL)
        else:
            rid = next(_ids)
            _pending[rid] = (cb, topic, kb, vb, hdrs)
            err = lib.kp_send(p, rec, _on_report, ffi.cast("void *", rid))
            if err != 0:
                del _pending[rid]
        if err != 0:
            if err == KP_ERR_QUEUE_FULL:
                raise BufferError("kp: the producer's buffer is full (buffer.memory); call poll()")
            self._fatal()
            raise KafkaException(KafkaError(err))

    def poll(self, timeout: Optional[float] = None) -> int:
        """Serves delivery reports (runs their callbacks), waiting up to `timeout`
        seconds (None or -1: until one comes) for the first. Returns how many."""
        p = self._handle()
        deadline = _deadline(timeout)
        while True:
            ms, last = _next_slice(deadline)
            n = lib.kp_poll(p, ms)
            _reraise()
            if n < 0:
                raise KafkaException(KafkaError(n))
            if n > 0 or last:
                return int(n)

    def flush(self, timeout: Optional[float] = None) -> int:
        """Sends everything queued and serves reports until none is outstanding or
        `timeout` seconds (None or -1: no limit) passed. Returns len(self)."""
        p = self._handle()
        deadline = _deadline(timeout)
        while True:
            ms, last = _next_slice(deadline)
            rc = lib.kp_flush(p, ms)
            _reraise()
            if rc == 0:
                return 0
            if rc != KP_ERR_TIMED_OUT:
                raise KafkaException(KafkaError(rc))
            if last:
                return len(self)

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
            p, self._p = self._p, ffi.NULL
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
        p, self._p = self._p, ffi.NULL
        lib.kp_producer_destroy(p)  # serves the remaining reports (failed) here
        _tls.exc = None  # nobody to raise a callback's exception to
