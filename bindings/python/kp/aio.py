"""AIOProducer: kp.Producer for asyncio, without blocking the event loop.

Delivery reports are served on the event loop's thread: the loop watches kp's
report file descriptor (kp_poll_fd) and serves what is waiting with a
non-blocking kp_poll. flush() and close() wait in the default executor (the GIL
is released while kp waits); reports served there resolve their futures through
call_soon_threadsafe. No Python code runs on a kp thread.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping, Optional

from ._errors import KafkaError, KafkaException
from ._ffi import lib
from ._producer import Bytesish, Headers, Message, Producer

_BACKOFF_S = 0.005


def _settle(fut: "asyncio.Future[Message]", err: Optional[KafkaError], msg: Message) -> None:
    if fut.done():
        return
    if err is None:
        fut.set_result(msg)
    else:
        fut.set_exception(KafkaException(err))


class AIOProducer:
    """`await producer.send(topic, value, key=...)` returns the delivered Message
    (or raises KafkaException); `await producer.produce(...)` returns a future of it
    without waiting for the delivery. Use `async with` or `await close()`."""

    def __init__(self, conf: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        self._loop = asyncio.get_running_loop()
        self._producer = Producer(conf, **kwargs)
        self._fd = int(lib.kp_poll_fd(self._producer._handle()))
        if self._fd < 0:
            raise KafkaException(KafkaError(-114, "kp_poll_fd() is not available"))
        self._loop.add_reader(self._fd, self._serve)

    def _serve(self) -> None:
        if not self._producer._forked:
            self._producer.poll(0)

    async def produce(
        self,
        topic: str,
        value: Optional[Bytesish] = None,
        key: Optional[Bytesish] = None,
        partition: int = -1,
        timestamp: int = 0,
        headers: Optional[Headers] = None,
    ) -> "asyncio.Future[Message]":
        """Queues a record; returns a future resolved with its delivery. Waits (without
        blocking the loop) while kp's buffer is full."""
        loop = self._loop
        fut: "asyncio.Future[Message]" = loop.create_future()

        def on_delivery(err: Optional[KafkaError], msg: Message) -> None:
            if not loop.is_closed():  # else nobody awaits the future any more
                loop.call_soon_threadsafe(_settle, fut, err, msg)

        while True:
            try:
                self._producer.produce(topic, value, key, partition, on_delivery, timestamp, headers)
                return fut
            except BufferError:
                await asyncio.sleep(_BACKOFF_S)

    async def send(
        self,
        topic: str,
        value: Optional[Bytesish] = None,
        key: Optional[Bytesish] = None,
        partition: int = -1,
        timestamp: int = 0,
        headers: Optional[Headers] = None,
    ) -> Message:
        """Sends a record and waits for its delivery report."""
        return await (await self.produce(topic, value, key, partition, timestamp, headers))

    async def flush(self, timeout: Optional[float] = None) -> int:
        """Waits (in an executor thread) until every record has its report."""
        return await self._loop.run_in_executor(None, self._producer.flush, timeout)

    def __len__(self) -> int:
        return len(self._producer)

    async def close(self, timeout: Optional[float] = None) -> int:
        left = await self.flush(timeout)
        self._loop.remove_reader(self._fd)
        failed = self._producer.close(0)
        return left or failed

    async def __aenter__(self) -> "AIOProducer":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
