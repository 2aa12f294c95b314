"""kp.Producer against the real Kafka cluster (KP_BOOTSTRAP); what kp wrote is read
back with confluent_kafka's consumer."""

from __future__ import annotations

import collections
import os
import signal
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import confluent_kafka
import pytest

import kp
from conftest import consume_all


def test_three_send_modes(bootstrap: str, new_topic: Any) -> None:
    topic = new_topic(3)
    reports: List[Tuple[Optional[kp.KafkaError], kp.Message]] = []
    with kp.Producer({"bootstrap.servers": bootstrap}) as p:
        # fire-and-forget: no callback
        for i in range(100):
            p.produce(topic, b"ff-%d" % i)
        # asynchronous: one callback per record, served by poll()/flush()
        for i in range(100):
            p.produce(topic, value=b"async-%d" % i, key=b"k%d" % i,
                      on_delivery=lambda err, msg: reports.append((err, msg)))
            p.poll(0)
        assert p.flush(30) == 0
        assert len(p) == 0
        # synchronous: produce then flush, the report is there when flush returns
        sync: List[Tuple[Optional[kp.KafkaError], kp.Message]] = []
        for i in range(5):
            p.produce(topic, b"sync-%d" % i, callback=lambda err, msg: sync.append((err, msg)))
            assert p.flush(30) == 0
            assert len(sync) == i + 1 and sync[-1][0] is None and sync[-1][1].offset() >= 0
    assert len(reports) == 100
    assert all(err is None for err, _ in reports)
    assert sorted(m.value() for _, m in reports) == sorted(b"async-%d" % i for i in range(100))
    assert len({(m.partition(), m.offset()) for _, m in reports}) == 100
    for _, m in reports:
        assert m.topic() == topic and m.error() is None
    got = consume_all(bootstrap, topic, 205)
    assert sorted(m.value() for m in got) == sorted(
        [b"ff-%d" % i for i in range(100)] + [b"async-%d" % i for i in range(100)]
        + [b"sync-%d" % i for i in range(5)]
    )
    # the reported partition/offset is where the record is
    where = {(m.partition(), m.offset()): m.value() for m in got}
    for _, m in reports + sync:
        assert where[(m.partition(), m.offset())] == m.value()


def test_send_returns_a_future_of_the_delivery(bootstrap: str, new_topic: Any) -> None:
    """send() -> concurrent.futures.Future: result() serves reports while it waits (no
    poll loop needed), wait()/as_completed() after flush(), failures as exceptions."""
    import concurrent.futures

    topic = new_topic(3)
    with kp.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5}) as p:
        first = p.send(topic, b"future-0", key=b"k0")
        assert isinstance(first, concurrent.futures.Future)
        m = first.result(30)
        assert m.error() is None and m.topic() == topic and m.value() == b"future-0" and m.offset() >= 0
        done_in_callback: List[kp.Message] = []
        futs = [p.send(topic, b"future-%d" % i, partition=1, headers=[("h", b"v%d" % i)]) for i in range(1, 50)]
        futs[0].add_done_callback(lambda f: done_in_callback.append(f.result()))
        assert p.flush(30) == 0
        finished, pending = concurrent.futures.wait(futs, timeout=0)
        assert not pending and len(finished) == 49
        assert [f.result().partition() for f in futs] == [1] * 49
        assert len(done_in_callback) == 1 and done_in_callback[0].value() == b"future-1"
        # refused at once (no such partition): raised by send() itself, like produce()
        with pytest.raises(kp.KafkaException):
            p.send(topic, b"x", partition=7)  # the topic has 3 partitions
    # refused by the broker (larger than the topic's max.message.bytes): the future fails
    with kp.Producer({"bootstrap.servers": bootstrap, "max.request.size": 4000000}) as big:
        bad = big.send(topic, b"x" * 2_000_000)
        with pytest.raises(kp.KafkaException) as e:
            bad.result(30)
        assert e.value.args[0].code() != 0
        assert isinstance(bad.exception(0), kp.KafkaException)
    # an unanswered future times out like any Future; close(0) fails the record
    slow = kp.Producer({"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 60000})
    never = slow.send(topic, b"never")
    with pytest.raises(concurrent.futures.TimeoutError):
        never.result(0.3)
    slow.close(0)
    assert isinstance(never.exception(5), kp.KafkaException)
    got = consume_all(bootstrap, topic, 50)
    where = {(r.partition(), r.offset()): r.value() for r in got}
    assert where[(m.partition(), m.offset())] == b"future-0"
    for f in futs:
        r = f.result()
        assert where[(r.partition(), r.offset())] == r.value()


@pytest.mark.parametrize("partitioner", [None, "murmur2_random"])
def test_keys_land_where_confluent_kafka_puts_them(bootstrap: str, new_topic: Any,
                                                   partitioner: Optional[str]) -> None:
    """Default: librdkafka's consistent_random (CRC32); murmur2_random: the Java
    producer's placement, which librdkafka's murmur2_random reproduces."""
    topic = new_topic(7)
    keys = [b"key-%d" % i for i in range(300)] + [b"\x00\xff binary", "unicode-\u00e9".encode()]
    conf: Dict[str, Any] = {"bootstrap.servers": bootstrap}
    if partitioner:
        conf["partitioner"] = partitioner

    def placements(producer: Any) -> Dict[bytes, int]:
        out: Dict[bytes, int] = {}

        def cb(err: Any, msg: Any) -> None:
            assert err is None
            out[msg.key()] = msg.partition()

        for k in keys:
            producer.produce(topic, b"v", key=k, on_delivery=cb)
        assert producer.flush(30) == 0
        return out

    theirs = placements(confluent_kafka.Producer(conf))
    with kp.Producer(conf) as p:
        ours = placements(p)
    assert len(set(theirs.values())) == 7  # the keys spread over every partition
    assert ours == theirs


def test_headers_timestamps_keys_values_read_back_identical(bootstrap: str, new_topic: Any) -> None:
    topic = new_topic(1)
    ts0 = 1_600_000_000_123
    cases = [
        dict(key=b"k1", value=b"v1", headers=[("a", b"1"), ("a", b"2"), ("bin", bytes(range(256)))],
             timestamp=ts0),
        dict(key=None, value=b"", headers={"s": "text", "null": None}, timestamp=ts0 + 1),
        dict(key=b"", value=None, headers=None, timestamp=ts0 + 2),
        dict(key="str-key", value="str-value \u2603", headers=[("e", b"")], timestamp=ts0 + 3),
    ]
    with kp.Producer({"bootstrap.servers": bootstrap}) as p:
        for c in cases:
            p.produce(topic, **c)
        assert p.flush(30) == 0
    got = consume_all(bootstrap, topic, len(cases))
    assert len(got) == len(cases)

    def b(x: Any) -> Optional[bytes]:
        return x.encode() if isinstance(x, str) else x

    for c, m in zip(cases, got):
        assert m.key() == b(c["key"])
        assert m.value() == b(c["value"])
        assert m.timestamp() == (confluent_kafka.TIMESTAMP_CREATE_TIME, c["timestamp"])
        h = c["headers"]
        want = None if h is None else [(k, b(v)) for k, v in (h.items() if isinstance(h, dict) else h)]
        assert m.headers() == want


def test_transactions_commit_and_abort(bootstrap: str, new_topic: Any) -> None:
    topic = new_topic(2)
    reports: List[Any] = []
    p = kp.Producer({"bootstrap.servers": bootstrap, "transactional.id": f"py-txn-{topic}",
                     "on_delivery": lambda err, msg: reports.append(err)})
    p.init_transactions(60)
    p.begin_transaction()
    for i in range(20):
        p.produce(topic, b"committed-%d" % i, key=b"%d" % i)
    p.commit_transaction(60)
    assert reports == [None] * 20  # served on this thread inside commit
    p.begin_transaction()
    for i in range(20):
        p.produce(topic, b"aborted-%d" % i, key=b"%d" % i)
    p.flush(30)
    p.abort_transaction(60)
    p.begin_transaction()
    p.produce(topic, b"committed-last")
    p.commit_transaction(60)
    p.close()
    assert len(reports) == 41
    committed = consume_all(bootstrap, topic, 21, committed=True)
    assert sorted(m.value() for m in committed) == sorted(
        [b"committed-%d" % i for i in range(20)] + [b"committed-last"])
    everything = consume_all(bootstrap, topic, 41)
    assert len(everything) == 41  # the aborted records are in the log, hidden by read_committed


def test_transaction_errors_are_classified(bootstrap: str, new_topic: Any) -> None:
    topic = new_topic(1)
    tid = f"py-fence-{topic}"
    old = kp.Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    old.init_transactions(60)
    old.begin_transaction()
    old.produce(topic, b"zombie")
    old.flush(30)
    new = kp.Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
    new.init_transactions(60)  # fences `old`
    with pytest.raises(kp.KafkaException) as ei:
        old.commit_transaction(30)
    err = ei.value.args[0]
    assert isinstance(err, kp.KafkaError)
    assert err.code() == 90 and err.name() and err.str()  # PRODUCER_FENCED
    assert not err.retriable()
    if not err.fatal():
        # kp cannot tell a fence from a coordinator-side abort at commit: abort tells
        assert err.txn_requires_abort()
        with pytest.raises(kp.KafkaException) as ei:
            old.abort_transaction(30)
        assert ei.value.args[0].fatal()
    new.close()
    old.close(0)
    # a transactional call without transactional.id
    with kp.Producer({"bootstrap.servers": bootstrap}) as p:
        with pytest.raises(kp.KafkaException) as ei:
            p.begin_transaction()
        assert not ei.value.args[0].fatal()


def test_close_with_records_queued_reports_each_once(bootstrap: str, new_topic: Any) -> None:
    topic = new_topic(3)
    seen: collections.Counter = collections.Counter()
    errors: List[Any] = []
    p = kp.Producer({"bootstrap.servers": bootstrap, "linger.ms": 60000, "batch.size": 10_000_000})

    def cb(err: Any, msg: Any) -> None:
        seen[msg.value()] += 1
        errors.append(err)

    for i in range(500):
        p.produce(topic, b"%d" % i, on_delivery=cb)
    assert len(p) == 500
    p.close(0)  # no waiting: the records still lingering are failed
    assert len(p) == 0
    assert sorted(seen) == sorted(b"%d" % i for i in range(500))
    assert set(seen.values()) == {1}
    # close(0) sends nothing more: every record still lingering fails.
    assert all(e is not None and e.code() == kp.KafkaError._DESTROY for e in errors)
    with pytest.raises(kp.KafkaException):
        p.produce(topic, b"after close")


def test_close_unreachable_cluster_reports_every_record(bootstrap: str) -> None:
    seen: List[Any] = []
    p = kp.Producer({"bootstrap.servers": "127.0.0.1:1"})
    for i in range(50):
        p.produce("t", b"%d" % i, on_delivery=lambda err, msg: seen.append(err))
    assert p.close(0.5) == 50  # none could be delivered
    assert len(seen) == 50 and all(e is not None for e in seen)


def test_buffer_error_when_the_buffer_is_full(bootstrap: str, new_topic: Any) -> None:
    topic = new_topic(1)
    delivered: List[Any] = []
    p = kp.Producer({"bootstrap.servers": bootstrap, "buffer.memory": 65536,
                     "linger.ms": 60000, "batch.size": 10_000_000})
    accepted = 0
    with pytest.raises(BufferError):
        for _ in range(1000):
            p.produce(topic, b"x" * 1000, on_delivery=lambda err, msg: delivered.append(err))
            accepted += 1
    assert 10 < accepted < 66
    assert len(p) == accepted
    assert p.flush(30) == 0  # the buffer drains; producing works again
    p.produce(topic, b"after", on_delivery=lambda err, msg: delivered.append(err))
    assert p.flush(30) == 0
    assert delivered == [None] * (accepted + 1)
    p.close()


def test_purge_reports_purged_records(bootstrap: str, new_topic: Any) -> None:
    topic = new_topic(1)
    errs: List[Any] = []
    p = kp.Producer({"bootstrap.servers": bootstrap, "linger.ms": 60000, "batch.size": 10_000_000})
    for i in range(30):
        p.produce(topic, b"%d" % i, on_delivery=lambda err, msg: errs.append(err))
    p.purge(in_queue=True, in_flight=False)
    assert p.flush(10) == 0
    assert len(errs) == 30 and all(e.code() == kp.KafkaError._PURGE_QUEUE for e in errs)
    p.close()


def test_list_topics_gives_partitions(bootstrap: str, new_topic: Any) -> None:
    topic = new_topic(5)
    with kp.Producer({"bootstrap.servers": bootstrap}) as p:
        md = p.list_topics(topic, timeout=30)
    parts = md.topics[topic].partitions
    assert sorted(parts) == [0, 1, 2, 3, 4]
    assert all(pm.leader >= 0 and pm.id == i for i, pm in parts.items())


def test_explicit_partition_and_errors(bootstrap: str, new_topic: Any) -> None:
    topic = new_topic(2)
    out: List[Any] = []
    with kp.Producer({"bootstrap.servers": bootstrap}) as p:
        p.produce(topic, b"p1", partition=1, on_delivery=lambda e, m: out.append(m.partition()))
        p.flush(30)
        with pytest.raises(kp.KafkaException) as ei:
            p.produce(topic, b"x", partition=7)
        assert ei.value.args[0].code() == kp.KafkaError._UNKNOWN_PARTITION
        with pytest.raises(kp.KafkaException) as ei:
            p.produce("bad topic name!", b"x")
    assert out == [1]
    with pytest.raises(kp.KafkaException):
        kp.Producer({"bootstrap.servers": bootstrap, "no.such.property": 1})


def test_callback_exception_is_raised_by_poll_and_others_still_run(bootstrap: str,
                                                                    new_topic: Any) -> None:
    topic = new_topic(1)
    calls: List[int] = []

    def cb(err: Any, msg: Any) -> None:
        calls.append(int(msg.value()))
        if msg.value() == b"3":
            raise ValueError("from callback")

    with kp.Producer({"bootstrap.servers": bootstrap}) as p:
        for i in range(10):
            p.produce(topic, b"%d" % i, on_delivery=cb)
        with pytest.raises(ValueError, match="from callback"):
            p.flush(30)
        p.flush(30)
    assert sorted(calls) == list(range(10))


def test_flush_is_interrupted_by_ctrl_c(bootstrap: str) -> None:
    seen: List[Any] = []
    p = kp.Producer({"bootstrap.servers": "127.0.0.1:1", "delivery.timeout.ms": 600000})
    for i in range(10):
        p.produce("t", b"%d" % i, on_delivery=lambda err, msg: seen.append(err))
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    # A process started as a background job of a non-interactive shell
    # (`make test &`) inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: the flush below would wait out delivery.timeout.ms.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    t0 = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            p.flush()  # no timeout: only Ctrl-C ends it
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - t0 < 5
    assert len(p) == 10 and seen == []
    p.close(0)
    assert len(seen) == 10


def test_forked_child_gets_a_clear_error_and_a_new_producer_works(bootstrap: str,
                                                                  new_topic: Any) -> None:
    topic = new_topic(1)
    p = kp.Producer({"bootstrap.servers": bootstrap})
    p.produce(topic, b"parent")
    assert p.flush(30) == 0
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            try:
                p.produce(topic, b"child-old")
            except kp.KafkaException as e:
                if "fork" in e.args[0].str() and e.args[0].fatal():
                    code = 2
            if code == 2:
                fresh = kp.Producer({"bootstrap.servers": bootstrap})
                ok: List[Any] = []
                fresh.produce(topic, b"child-new", on_delivery=lambda err, m: ok.append(err))
                if fresh.flush(30) == 0 and ok == [None]:
                    code = 0
                fresh.close()
        finally:
            os.write(w, bytes([code]))
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 1) == b"\x00"
    # the parent's producer is unaffected
    p.produce(topic, b"parent-after")
    assert p.flush(30) == 0
    p.close()
    got = consume_all(bootstrap, topic, 3)
    assert sorted(m.value() for m in got) == [b"child-new", b"parent", b"parent-after"]


def test_send_offsets_to_transaction_commits_the_groups_offsets(bootstrap: str,
                                                                new_topic: Any) -> None:
    src, dst = new_topic(2), new_topic(1)
    with kp.Producer({"bootstrap.servers": bootstrap}) as p:
        for i in range(10):
            p.produce(src, b"in-%d" % i, partition=i % 2)
    group = f"py-ctp-{src}"
    c = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    tps = [confluent_kafka.TopicPartition(src, i) for i in range(2)]
    c.assign(tps)
    seen = 0
    deadline = time.monotonic() + 60
    while seen < 10 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            seen += 1
    assert seen == 10
    positions = c.position(tps)
    assert sorted(tp.offset for tp in positions) == [5, 5]
    p = kp.Producer({"bootstrap.servers": bootstrap, "transactional.id": f"py-ctp-{src}"})
    p.init_transactions(60)
    p.begin_transaction()
    p.produce(dst, b"out")
    p.send_offsets_to_transaction(positions, c.consumer_group_metadata(), 60)
    p.commit_transaction(60)
    p.close()
    committed = c.committed(tps, timeout=30)
    c.close()
    assert [tp.offset for tp in committed] == [5, 5]


def test_threads_share_a_producer(bootstrap: str, new_topic: Any) -> None:
    topic = new_topic(3)
    reports: List[Any] = []
    with kp.Producer({"bootstrap.servers": bootstrap}) as p:
        def work(t: int) -> None:
            for i in range(500):
                p.produce(topic, b"t%d-%d" % (t, i), key=b"%d" % i,
                          headers=[("t", b"%d" % t)] if i % 2 else None,
                          on_delivery=lambda err, msg: reports.append((err, msg.value())))
                if i % 50 == 0:
                    p.poll(0)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert p.flush(30) == 0
    assert len(reports) == 2000 and all(err is None for err, _ in reports)
    got = consume_all(bootstrap, topic, 2000)
    want = {b"t%d-%d" % (t, i): (None if i % 2 == 0 else [("t", b"%d" % t)])
            for t in range(4) for i in range(500)}
    assert {m.value(): m.headers() for m in got} == want and len(got) == 2000


def test_produce_argument_forms_and_reentrant_callbacks(bootstrap: str, new_topic: Any) -> None:
    """produce() as confluent_kafka takes it (positional order, str/bytearray/
    memoryview for key and value, the config's on_delivery as default), refusing
    bad arguments before anything is queued; a callback that produces and polls
    again gets its own records' reports too, each exactly once."""
    topic = new_topic(1)
    default: List[kp.Message] = []
    nested: List[kp.Message] = []
    conf = {"bootstrap.servers": bootstrap, "on_delivery": lambda err, msg: default.append(msg)}
    with kp.Producer(conf) as p:
        p.produce(topic, "v-str", "k-str")
        p.produce(topic, bytearray(b"v-bytearray"), memoryview(b"k-memoryview"))
        p.produce(topic, None, b"k-tombstone", 0, None, 1_700_000_000_000, [("h", "x")])

        def produce_more(err: Optional[kp.KafkaError], msg: kp.Message) -> None:
            nested.append(msg)
            if len(nested) == 1:
                p.produce(topic, b"from-callback", on_delivery=produce_more)
                p.poll(0)

        p.produce(topic, b"first", on_delivery=produce_more)
        with pytest.raises(TypeError):
            p.produce(topic, b"x", bogus=1)
        with pytest.raises(TypeError):
            p.produce(value=b"no topic")
        with pytest.raises(TypeError):
            p.produce(topic, b"x", partition="zero")
        assert p.flush(30) == 0
        deadline = time.monotonic() + 30
        while len(nested) < 2 and time.monotonic() < deadline:
            p.poll(0.1)
    assert [m.value() for m in default] == [b"v-str", b"v-bytearray", None]
    assert [m.key() for m in default] == [b"k-str", b"k-memoryview", b"k-tombstone"]
    assert default[2].headers() == [("h", b"x")] and default[2].timestamp() == (1, 1_700_000_000_000)
    assert [len(m) for m in default] == [5, 11, 0]
    assert [m.value() for m in nested] == [b"first", b"from-callback"]
    for m in default + nested:
        assert m.error() is None and m.offset() >= 0 and m.topic() == topic
        assert repr(m) == f"Message(topic={topic!r}, partition=0, offset={m.offset()})"
    got = consume_all(bootstrap, topic, 5)
    assert sorted((m.key() or b"", m.value() or b"") for m in got) == sorted(
        [(b"k-str", b"v-str"), (b"k-memoryview", b"v-bytearray"), (b"k-tombstone", b""),
         (b"", b"first"), (b"", b"from-callback")]
    )
