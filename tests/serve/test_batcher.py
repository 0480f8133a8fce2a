"""The dynamic batcher on its own, with a plain function for `run`: what gets coalesced, the token cap,
batching off, errors, worker threads, and `close` finishing the queued work."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from ner_fast.serve.batcher import Batcher, BatcherClosed, BatchStats


class Recorder:
    """`run` for the batcher: doubles each item and remembers every batch and the thread it ran in."""

    def __init__(self, fail_on: int | None = None, barrier: threading.Barrier | None = None) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.fail_on = fail_on
        self.barrier = barrier

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.get_ident())
        if self.barrier is not None:
            self.barrier.wait(timeout=5)  # only passes when `parties` batches run at the same time
        if self.fail_on in items:
            raise ValueError(f"item {self.fail_on} is bad")
        return [2 * i for i in items]


def run_async(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, timeout=20))


def test_concurrent_items_share_one_call_and_get_their_own_results() -> None:
    record = Recorder()
    stats: list[BatchStats] = []

    async def main() -> tuple[list[int], int]:
        batcher = Batcher(record, max_batch_tokens=1000, max_wait_ms=200, on_batch=stats.append)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(i, tokens=5) for i in range(10)))
        await batcher.close()
        return list(results), threading.get_ident()

    results, loop_thread = run_async(main())
    assert results == [2 * i for i in range(10)]
    assert record.batches == [list(range(10))]
    assert loop_thread not in record.threads  # the work ran in a worker thread, not in the event loop
    assert [(s.items, s.tokens) for s in stats] == [(10, 50)]


def test_batches_stop_at_the_token_cap_and_nothing_is_lost() -> None:
    record = Recorder()

    async def main() -> list[int]:
        batcher = Batcher(record, max_batch_tokens=10, max_wait_ms=50)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(i, tokens=3) for i in range(10)))
        await batcher.close()
        return list(results)

    assert run_async(main()) == [2 * i for i in range(10)]
    assert record.batches, "run was never called"
    assert all(len(b) <= 3 for b in record.batches)  # 4 items of 3 tokens would be 12 > 10
    assert sorted(i for b in record.batches for i in b) == list(range(10))


def test_an_item_over_the_cap_runs_alone() -> None:
    record = Recorder()

    async def main() -> list[int]:
        batcher = Batcher(record, max_batch_tokens=10, max_wait_ms=50)
        await batcher.start()
        results = await asyncio.gather(batcher.submit(1, tokens=2), batcher.submit(2, tokens=50), batcher.submit(3, tokens=2))
        await batcher.close()
        return list(results)

    assert run_async(main()) == [2, 4, 6]
    assert [2] in record.batches


def test_zero_max_batch_tokens_runs_each_item_alone() -> None:
    record = Recorder()

    async def main() -> list[int]:
        batcher = Batcher(record, max_batch_tokens=0, max_wait_ms=50)
        assert not batcher.batching
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(i, tokens=1) for i in range(6)))
        await batcher.close()
        return list(results)

    assert run_async(main()) == [2 * i for i in range(6)]
    assert sorted(record.batches) == [[i] for i in range(6)]


def test_an_exception_reaches_the_items_of_its_batch_only() -> None:
    record = Recorder(fail_on=3)

    async def main() -> tuple[list[object], int]:
        batcher = Batcher(record, max_batch_tokens=1000, max_wait_ms=100)
        await batcher.start()
        first = await asyncio.gather(*(batcher.submit(i, tokens=1) for i in range(5)), return_exceptions=True)
        after = await batcher.submit(7, tokens=1)  # the batcher still works
        await batcher.close()
        return list(first), after

    first, after = run_async(main())
    assert len(first) == 5
    assert all(isinstance(r, ValueError) and "item 3 is bad" in str(r) for r in first)
    assert after == 14


def test_threads_run_that_many_batches_at_once() -> None:
    # Both batches must be inside `run` together to pass the barrier; with one thread it would time out.
    record = Recorder(barrier=threading.Barrier(2))

    async def main() -> list[int]:
        batcher = Batcher(record, max_batch_tokens=1, max_wait_ms=0, threads=2)
        await batcher.start()
        results = await asyncio.gather(batcher.submit(1, tokens=1), batcher.submit(2, tokens=1))
        await batcher.close()
        return list(results)

    assert run_async(main()) == [2, 4]
    assert len(record.threads) == 2


def test_close_finishes_queued_work_then_refuses_more() -> None:
    record = Recorder()

    async def main() -> list[int]:
        batcher = Batcher(record, max_batch_tokens=4, max_wait_ms=1000)
        await batcher.start()
        pending = [asyncio.ensure_future(batcher.submit(i, tokens=1)) for i in range(9)]
        await asyncio.sleep(0)  # queued, and the collector is waiting for more
        await batcher.close()
        assert all(p.done() for p in pending)
        with pytest.raises(BatcherClosed):
            await batcher.submit(99, tokens=1)
        return [p.result() for p in pending]

    assert run_async(main()) == [2 * i for i in range(9)]


def test_a_batch_being_gathered_stops_waiting_when_the_stop_begins() -> None:
    """With --max-wait-ms 10000, a request waiting for company sat out the whole wait after SIGTERM, and the
    process's exit with it: `hurry` starts the batch at once, and the batcher goes on working."""
    record = Recorder()

    async def main() -> tuple[int, float, int]:
        loop = asyncio.get_running_loop()
        batcher = Batcher(record, max_batch_tokens=100, max_wait_ms=10_000)
        await batcher.start()
        start = loop.time()
        waiting = asyncio.ensure_future(batcher.submit(3, tokens=1))
        await asyncio.sleep(0.1)  # the collector holds it, waiting for more
        assert not waiting.done()
        batcher.hurry()
        result = await waiting
        took = loop.time() - start
        later = await batcher.submit(4, tokens=1)  # requests already accepted still run
        await batcher.close()
        return result, took, later

    result, took, later = run_async(main())
    assert result == 6 and took < 5 and later == 8
    assert record.batches == [[3], [4]]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch_tokens"):
        Batcher(Recorder(), max_batch_tokens=-1, max_wait_ms=1)
    with pytest.raises(ValueError, match="max_wait_ms"):
        Batcher(Recorder(), max_batch_tokens=1, max_wait_ms=-1)
    for never in (float("nan"), float("inf"), 1e308):  # the server took requests and never answered them
        with pytest.raises(ValueError, match="max_wait_ms"):
            Batcher(Recorder(), max_batch_tokens=1, max_wait_ms=never)
    with pytest.raises(ValueError, match="threads"):
        Batcher(Recorder(), max_batch_tokens=1, max_wait_ms=1, threads=0)
