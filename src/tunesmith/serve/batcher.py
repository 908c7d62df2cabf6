"""Micro-batching: the texts of concurrent requests go to the model together.

One model call on 32 texts costs far less than 32 calls on one, so requests wait up to
`max_wait` for others to join them, up to `max_batch` texts a call. A request is never split:
one that would overflow the batch starts the next. The queue is bounded in texts; past it a
request is refused at once (the server answers 503 with Retry-After) rather than left to wait
without end. The model runs in one worker thread, so the event loop keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

Predict = Callable[[list[str], list[str] | None], list[dict[str, Any]]]


class QueueFull(Exception):
    """More texts are waiting than the queue holds."""


@dataclass
class _Job:
    texts: list[str]
    pairs: list[str] | None
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    def __init__(
        self,
        predict: Predict,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.on_batch = on_batch
        # Texts accepted and not yet answered (queued or in the model).
        self.waiting = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._held: _Job | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tunesmith-model")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def submit(self, texts: list[str], pairs: list[str] | None) -> list[dict[str, Any]]:
        if self._queue is None:
            raise RuntimeError("the batcher has not started")
        if self.waiting + len(texts) > self.max_queue:
            raise QueueFull
        self.waiting += len(texts)
        job = _Job(texts, pairs, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    async def stop(self) -> None:
        """Answer everything accepted, then stop the worker: nothing in flight is dropped."""
        while self.waiting:
            await asyncio.sleep(0.01)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather()
            texts = [text for job in jobs for text in job.texts]
            pairs = None if jobs[0].pairs is None else [pair for job in jobs for pair in job.pairs or []]
            self.on_batch(len(texts))
            try:
                results = await loop.run_in_executor(self._executor, self.predict, texts, pairs)
            except Exception as exc:  # the requests' handlers turn it into their answers
                for job in jobs:
                    _settle(job.future, exception=exc)
            else:
                start = 0
                for job in jobs:
                    _settle(job.future, result=results[start : start + len(job.texts)])
                    start += len(job.texts)
            finally:
                self.waiting -= len(texts)

    async def _gather(self) -> list[_Job]:
        """The next batch: the first job waiting, and those that come within max_wait and fit."""
        assert self._queue is not None
        first = self._held or await self._queue.get()
        self._held = None
        jobs, count = [first], len(first.texts)
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while count < self.max_batch:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                # With no time left, still take what is already waiting: it costs nothing to add.
                job = (
                    self._queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(self._queue.get(), remaining)
                )
            except (asyncio.QueueEmpty, TimeoutError):
                break
            # Sentence-pair and single-text requests cannot share a call; nor may a batch overflow.
            if count + len(job.texts) > self.max_batch or (job.pairs is None) != (first.pairs is None):
                self._held = job
                break
            jobs.append(job)
            count += len(job.texts)
        return jobs


def _settle(future: asyncio.Future, result: Any = None, exception: BaseException | None = None) -> None:
    # A client that went away has had its future cancelled: nobody waits for the answer.
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
