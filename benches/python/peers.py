"""Python asyncio peers of the PCLimit and work-queue katas, for `just bench`.

Written for this repository (not copied from the source notes): the straightforward asyncio
versions a Python programmer would write, run on the same inputs as the Rust benchmarks.

    python3 benches/python/peers.py pclimit JOBS CONCURRENCY
    python3 benches/python/peers.py work-queue COUNT CONCURRENCY

Each prints the median wall time of a few runs, in seconds, on stdout.
"""

import asyncio
import statistics
import sys
import time

RUNS = 3


class PCLimit:
    """At most `concurrency` coroutines at once; `run` returns a task for the result."""

    def __init__(self, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._semaphore = asyncio.Semaphore(concurrency)

    def run(self, coroutine) -> asyncio.Task:
        async def limited():
            async with self._semaphore:
                return await coroutine

        return asyncio.ensure_future(limited())


async def noop() -> None:
    return None


async def pclimit(jobs: int, concurrency: int) -> None:
    limit = PCLimit(concurrency)
    await asyncio.gather(*(limit.run(noop()) for _ in range(jobs)))


class WorkQueue:
    """A fixed set of consumer tasks pulling jobs from one asyncio.Queue."""

    def __init__(self, concurrency: int) -> None:
        self._queue: asyncio.Queue = asyncio.Queue()
        self._workers = [asyncio.ensure_future(self._work()) for _ in range(concurrency)]

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await job
            finally:
                self._queue.task_done()

    def push(self, job) -> None:
        self._queue.put_nowait(job)

    async def join(self) -> None:
        await self._queue.join()
        for worker in self._workers:
            worker.cancel()


async def work_queue(count: int, concurrency: int) -> None:
    evens, odds = [], []

    async def classify(n: int) -> None:
        (evens if n % 2 == 0 else odds).append(n)

    queue = WorkQueue(concurrency)
    for n in range(count):
        queue.push(classify(n))
    await queue.join()
    assert len(evens) + len(odds) == count


def main() -> None:
    kind, size, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    body = {"pclimit": pclimit, "work-queue": work_queue}[kind]
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        asyncio.run(body(size, concurrency))
        times.append(time.perf_counter() - start)
    print(f"{statistics.median(times):.6f}")


if __name__ == "__main__":
    main()
