"""kp.AIOProducer against the real cluster: deliveries resolve on the event loop,
which keeps running while kp works."""

from __future__ import annotations

import asyncio
from typing import Any, List

import pytest

import kp
from conftest import consume_all


def test_aio_send_and_flush_do_not_block_the_loop(bootstrap: str, new_topic: Any) -> None:
    topic = new_topic(3)

    async def main() -> List[kp.Message]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        t = asyncio.ensure_future(ticker())
        # linger.ms=5000: nothing is sent before flush(); meanwhile the loop runs on
        async with kp.AIOProducer({"bootstrap.servers": bootstrap, "linger.ms": 5000}) as p:
            sends = asyncio.ensure_future(asyncio.gather(
                *(p.send(topic, b"a-%d" % i, key=b"%d" % i) for i in range(300))))
            futs = [await p.produce(topic, b"f-%d" % i) for i in range(300)]
            before = ticks
            await asyncio.sleep(0.2)
            assert ticks > before and not sends.done() and not any(f.done() for f in futs)
            assert len(p) == 600
            assert await p.flush(30) == 0
            msgs = await sends
            assert all(f.done() for f in futs)
            msgs += [f.result() for f in futs]
            with pytest.raises(kp.KafkaException):
                await p.send(topic, b"x", partition=99)
        t.cancel()
        return msgs

    msgs = asyncio.run(main())
    assert len(msgs) == 600 and all(m.error() is None and m.offset() >= 0 for m in msgs)
    assert len({(m.partition(), m.offset()) for m in msgs}) == 600
    got = consume_all(bootstrap, topic, 600)
    assert sorted(m.value() for m in got) == sorted(
        [b"a-%d" % i for i in range(300)] + [b"f-%d" % i for i in range(300)])


def test_aio_send_reports_a_failed_delivery(bootstrap: str) -> None:
    async def main() -> None:
        p = kp.AIOProducer({"bootstrap.servers": "127.0.0.1:1", "delivery.timeout.ms": 500,
                            "request.timeout.ms": 400})
        with pytest.raises(kp.KafkaException) as ei:
            await asyncio.wait_for(p.send("t", b"v"), 30)
        assert ei.value.args[0].code() == kp.KafkaError._ALL_BROKERS_DOWN
        await p.close(0)

    asyncio.run(main())
