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
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.001)

        t = asyncio.ensure_future(ticker())
        async with kp.AIOProducer({"bootstrap.servers": bootstrap, "linger.ms": 50}) as p:
            msgs = await asyncio.gather(*(p.send(topic, b"a-%d" % i, key=b"%d" % i)
                                          for i in range(300)))
            futs = [await p.produce(topic, b"f-%d" % i) for i in range(300)]
            assert await p.flush(30) == 0
            assert all(f.done() for f in futs)
            msgs += [f.result() for f in futs]
            with pytest.raises(kp.KafkaException):
                await p.send(topic, b"x", partition=99)
        stop = True
        await t
        assert ticks > 20  # the loop ran while records were sent (linger.ms=50 each round)
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
