"""Where the points of a sweep run: in this process, in a local process pool, or on a Dask
distributed cluster. One contract for all three.

``executor.map_unordered(function, context, items)`` calls ``function(context, item)`` for every
item and yields ``(item, result)`` pairs as they finish, in whatever order they finish; the caller
stores each result as it arrives (so an interrupted run keeps what finished) and orders them
itself. An exception raised by ``function`` ends the iteration with that exception (work not
started is cancelled). ``function`` must be importable by name on the workers (a module-level
function of an installed package) and ``context`` and ``items`` picklable: a Dask cluster's
workers need prunesim installed.

The pool's workers are forked from a *fork server* (``forkserver``, where the platform has it,
else ``spawn``): a child forked from the caller itself could hang if the caller's torch or OpenMP
threads already ran, while the fork server is a fresh process that has only imported the
function's module (torch included, seconds), so every worker after it starts at once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

__all__ = ["DaskExecutor", "Executor", "InProcess", "LocalPool", "dask_executor"]


class Executor(Protocol):
    def map_unordered(self, function: Callable[[Any, Any], Any], context: Any,
                      items: Iterable[Any]) -> Iterator[tuple[Any, Any]]: ...


class InProcess:
    """Every item in this process, one after another (``--workers 1``)."""

    def map_unordered(self, function, context, items):
        for item in items:
            yield item, function(context, item)


def _context(function) -> multiprocessing.context.BaseContext:
    """The fork server, preloading ``function``'s module (module docstring); spawn without one."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    if function.__module__ != "__main__":  # a script's __main__ cannot be imported by name
        context.set_forkserver_preload([function.__module__])
    return context


class LocalPool:
    """A pool of ``workers`` processes on this machine."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1

    def map_unordered(self, function, context, items):
        with concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=_context(function)) as pool:
            futures = {pool.submit(function, context, item): item for item in items}
            try:
                for future in concurrent.futures.as_completed(futures):
                    yield futures[future], future.result()
            finally:  # an error or an abandoned iteration: start nothing more
                pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """The workers of a ``dask.distributed.Client`` (any cluster it is connected to)."""

    def __init__(self, client):
        self.client = client

    def map_unordered(self, function, context, items):
        from distributed import as_completed

        items = list(items)
        if not items:
            return
        futures = self.client.map(function, [context] * len(items), items, pure=False)
        pending = dict(zip(futures, items))
        try:
            for future in as_completed(futures):
                yield pending.pop(future), future.result()
        finally:
            self.client.cancel(list(pending))


@contextlib.contextmanager
def dask_executor(scheduler: str | None = None, local_workers: int | None = None) -> Iterator[DaskExecutor]:
    """A :class:`DaskExecutor` on the scheduler at ``scheduler`` (``tcp://HOST:PORT``), or on a
    ``LocalCluster`` of ``local_workers`` single-threaded worker processes started for the
    duration. Raises ``ConnectionError`` naming the address when no scheduler answers there."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as error:
            raise ConnectionError(f"--scheduler '{scheduler}': no Dask scheduler answers "
                                  f"({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
        with client:
            yield DaskExecutor(client)
        return
    with LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield DaskExecutor(client)
