"""Dynamic batching: requests that arrive together share one tagger call, run in a worker thread.

An inference server answers many small requests. One sentence through the network costs almost as
much as a batch of 32 (the per-run overhead of onnxruntime and the LSTM steps dominate), so a server that
tags each request on its own wastes most of its time. The `Batcher` queues the work of concurrent
requests and hands it to `run` in one call. When a worker thread is free it takes the first waiting
item and everything queued behind it (a lone item first lets the event loop read the requests whose
bytes have already arrived), and waits at most `max_wait_ms` more for further items, until the batch
holds `max_batch_tokens` tokens. A finished batch frees its worker before its answers are sent, so the
next batch starts while the event loop sends them. While the workers are busy the queue fills by itself, so under load batches
grow with no waiting at all; the wait only delays a request that finds a worker free (a lone request
waits `max_wait_ms`, which is why the default is 0: under a closed loop of clients, measured in
`benchmarks/serve.py`, waiting only idled the worker).

`run` is called in a thread of the batcher's own pool (`threads` of them, so that many batches run at
once): the event loop only parses requests and sends answers, never runs the network. onnxruntime
releases the GIL while it computes.

`max_batch_tokens=0` turns batching off: each item goes to the pool alone, as it comes.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ner_fast.serve.settings import check_setting

Item = TypeVar("Item")
Result = TypeVar("Result")
#: Queued by `Batcher.hurry`: ends the collector's wait for one more item.
_WAKE = object()

#: What a request is answered (503) once a stop began: the batcher's and the endpoint's words.
SHUTTING_DOWN = "the server is shutting down"


@dataclass
class BatchStats:
    """What one call of `run` held: how many items (requests) and tokens, and its seconds in the worker."""

    items: int
    tokens: int
    seconds: float


@dataclass
class _Waiting(Generic[Item, Result]):
    item: Item
    tokens: int
    future: asyncio.Future[Result] = field(repr=False)


class BatcherClosed(RuntimeError):
    """Work submitted after `Batcher.close` began."""


class Batcher(Generic[Item, Result]):
    """Coalesces concurrently submitted items into calls of `run(items) -> results` (one result per item,
    in order) in worker threads; see the module docstring.

    Use from one event loop: `await start()` (inside the loop), `await submit(item, tokens)` from request
    handlers, `await close()` to finish the queued work and stop. `on_batch`, if given, is called in the
    event loop after each batch with its `BatchStats`.
    """

    def __init__(
        self,
        run: Callable[[Sequence[Item]], Sequence[Result]],
        max_batch_tokens: int,
        max_wait_ms: float,
        threads: int = 1,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        check_setting("max_batch_tokens", max_batch_tokens)
        check_setting("max_wait_ms", max_wait_ms)
        check_setting("threads", threads)
        self.run = run
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000.0
        self.threads = threads
        self.on_batch = on_batch
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="ner-fast-tagger")
        # None in the queue: `close` was called, nothing follows it; `_WAKE`: `hurry` was.
        self._queue: asyncio.Queue[_Waiting[Item, Result] | object | None] = asyncio.Queue()
        self._free: asyncio.Semaphore | None = None  # one permit per idle worker thread
        self._collector: asyncio.Task[None] | None = None
        self._running: set[asyncio.Future[object]] = set()  # batches in the pool, and tasks delivering them
        self._carry: _Waiting[Item, Result] | None = None  # taken from the queue but over a full batch's tokens
        self._closing = False  # close() was called: submit refuses
        self._closed = False  # the collector reached close()'s end mark

    @property
    def batching(self) -> bool:
        """Whether concurrent items are coalesced (`max_batch_tokens` > 0)."""
        return self.max_batch_tokens > 0

    async def start(self) -> None:
        """Start the collector task (call inside the running event loop)."""
        self._free = asyncio.Semaphore(self.threads)
        if self.batching:
            self._collector = asyncio.get_running_loop().create_task(self._collect(), name="ner-fast-batcher")

    async def submit(self, item: Item, tokens: int) -> Result:
        """Queue `item` (worth `tokens` tokens towards a batch) and wait for its result.

        Exceptions raised by `run` reach every item of the batch that raised them.
        """
        if self._closing:
            raise BatcherClosed(SHUTTING_DOWN)
        loop = asyncio.get_running_loop()
        if not self.batching:
            return (await self._execute(loop, [item], tokens))[0]
        waiting: _Waiting[Item, Result] = _Waiting(item, tokens, loop.create_future())
        self._queue.put_nowait(waiting)
        return await waiting.future

    async def close(self) -> None:
        """Refuse new work, finish everything queued or running, stop the threads."""
        self._closing = True
        if self._collector is not None:
            self._queue.put_nowait(None)  # after every queued item: the collector starts them all, then ends
            await self._collector
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self._pool.shutdown(wait=True)

    def hurry(self) -> None:
        """The graceful stop has begun: no request will come, so a batch being gathered starts at once (it sat out
        the rest of `max_wait_ms`, and the process's exit with it: 10 s with --max-wait-ms 10000)."""
        self.max_wait = 0.0
        if self._collector is not None:
            self._queue.put_nowait(_WAKE)  # ends the collector's wait for one more item

    def abandon(self) -> None:
        """Refuse new work and drop what is queued, waiting for nothing (a forced stop; a batch already
        running in a thread ends on its own)."""
        self._closing = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ----------------------------------------------------------------- the work

    async def _execute(self, loop: asyncio.AbstractEventLoop, items: list[Item], tokens: int) -> Sequence[Result]:
        """Run one batch in the pool and report its stats."""
        start = loop.time()
        future = loop.run_in_executor(self._pool, self.run, items)
        self._running.add(future)
        try:
            results = await future
        finally:
            self._running.discard(future)
            if self.on_batch is not None:
                self.on_batch(BatchStats(len(items), tokens, loop.time() - start))
        if len(results) != len(items):
            raise RuntimeError(f"run returned {len(results)} results for {len(items)} items")
        return results

    async def _next(self, timeout: float | None) -> _Waiting[Item, Result] | None:
        """The carried-over item, else the next queued one, waiting at most `timeout` seconds (None: forever).

        None when the time ran out or the queue reached `close`'s end mark (then `_closed` is set)."""
        if self._carry is not None:
            waiting, self._carry = self._carry, None
            return waiting
        if self._queue.empty():
            if timeout is not None and timeout <= 0:
                return None
            try:
                waiting = await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                return None
        else:
            waiting = self._queue.get_nowait()
        if waiting is _WAKE:
            return None
        if waiting is None:
            self._closed = True
        return waiting

    async def _collect(self) -> None:
        """Until `close`: wait for a free worker, gather a batch, start it without waiting for it to end."""
        loop = asyncio.get_running_loop()
        assert self._free is not None
        while not self._closed:
            await self._free.acquire()
            first = await self._next(None)  # the carried item comes first, so none is left behind at the end
            if first is None:
                self._free.release()
                if self._closed:
                    break
                continue  # `hurry`'s mark, with no batch being gathered
            batch, tokens = [first], first.tokens
            if self._queue.empty():
                # A lone item: one turn of the loop lets requests already received (their callbacks are
                # ready) join it. Items already queued go at once: a worker is idle until they do.
                await asyncio.sleep(0)
            deadline = loop.time() + self.max_wait
            while tokens < self.max_batch_tokens:
                waiting = await self._next(deadline - loop.time())
                if waiting is None:
                    break
                if tokens + waiting.tokens > self.max_batch_tokens:
                    self._carry = waiting  # starts the next batch instead of overfilling this one
                    break
                batch.append(waiting)
                tokens += waiting.tokens
            task = loop.create_task(self._finish(loop, batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _finish(self, loop: asyncio.AbstractEventLoop, batch: list[_Waiting[Item, Result]]) -> None:
        """Run a gathered batch and hand each waiting request its result (or the batch's exception)."""
        assert self._free is not None
        batch = [w for w in batch if not w.future.done()]  # a client that went away cancelled its future
        if not batch:
            self._free.release()
            return
        try:
            results = await self._execute(loop, [w.item for w in batch], sum(w.tokens for w in batch))
        except BaseException as exc:  # the requests answer with it; the collector goes on
            self._free.release()
            for w in batch:
                if not w.future.done():
                    w.future.set_exception(exc) if isinstance(exc, Exception) else w.future.cancel()
            if not isinstance(exc, Exception):
                raise
            return
        # The worker is free before these answers go out: the collector, woken first, starts the next
        # batch while the event loop sends them.
        self._free.release()
        for w, result in zip(batch, results):
            if not w.future.done():
                w.future.set_result(result)
