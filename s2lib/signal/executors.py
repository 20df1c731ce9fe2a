"""Where the per-file pass runs: this machine's process pool or a Dask cluster (``compute.*`` keys).

Two executors run the same task, :func:`s2lib.signal.integration._process_chunk` (a few files of one set → their
per-frame numbers), and differ only in where it runs:

- :class:`LocalExecutor` (``compute.executor: local``, the default): the persistent process pool of
  :func:`worker_pool` (or this process with one worker).
- :class:`DaskExecutor` (``compute.executor: dask``): tasks submitted with ``distributed.Client.submit`` and
  collected with ``distributed.as_completed``. Without an address it starts a ``distributed.LocalCluster``
  (worker *processes*, one thread each, the BLAS/OpenMP thread variables at 1); with ``compute.address`` (or
  ``s2book run --dask-address``) it joins a running scheduler, e.g. one that ``dask_jobqueue.SLURMCluster`` or
  ``HTCondorCluster`` started (README, methods chapter). Tasks hold consecutive files of a set, cut by bytes
  (:func:`chunks_for`: ~16 tasks per worker, at most 1 GiB each: one big file per task, many small ones
  together): progress counts files, and a worker that dies costs one task's work, which Dask reschedules.

The workers open the raw files by the path the client sees (the run's ``data.raw_data_path``), so on a
cluster that folder must be mounted at the same path on every node (a shared file system); no waveform crosses
the network, only the per-frame numbers of each file (~30 bytes per frame). The task is a pure function of the
file's bytes and the set's plan, so results are bit-identical whichever executor ran it (tested on a
2-worker LocalCluster). Bad files are caught inside the task (``process_file`` returns them as reported
failures), so they are reported exactly as with the local pool; any other exception of a task is re-raised
in the client, as the local pool does.

Dask starts its LocalCluster workers by *spawning* Python processes, so a plain script that runs a pass with
``executor: dask`` (without an address) needs the usual ``if __name__ == "__main__":`` guard around its code,
as any spawning multiprocessing program; notebooks and ``s2book run`` need nothing. (The local pool forks and
needs no guard.)

The choice comes from, in this order: the arguments of :func:`resolve_executor`; the environment variables
``S2BOOK_EXECUTOR`` / ``S2BOOK_DASK_ADDRESS`` (set by ``s2book run --executor/--dask-address``, inherited by
the notebook kernels); the run configuration's ``compute`` section. None of it enters a cache key.
"""
from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from s2lib.errors import ConfigError

__all__ = ["EXECUTORS", "ENV_EXECUTOR", "ENV_ADDRESS", "THREAD_ENV", "LocalExecutor", "DaskExecutor",
           "resolve_executor", "worker_pool", "shutdown_pools", "shutdown_dask"]

EXECUTORS = ("local", "dask")
"""The executor names (``compute.executor``, ``s2book run --executor``)."""
ENV_EXECUTOR = "S2BOOK_EXECUTOR"
"""Environment variable naming the executor (set by ``s2book run --executor``; overrides the configuration)."""
ENV_ADDRESS = "S2BOOK_DASK_ADDRESS"
"""Environment variable holding a Dask scheduler address (set by ``s2book run --dask-address``)."""

Task = tuple[Any, ...]
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS")
"""Environment variables set to 1 in the worker processes (one core each)."""


@contextlib.contextmanager
def _single_thread_env() -> Iterator[None]:
    """Set the BLAS/OpenMP thread variables to 1 while worker processes are started (they inherit them)."""
    old = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: "1" for k in THREAD_ENV})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker_init() -> None:
    os.environ.update({k: "1" for k in THREAD_ENV})


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _start_method() -> str:
    wanted = os.environ.get("S2BOOK_MP_START")
    if wanted:
        return wanted
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """The process pool with ``jobs`` workers, created on first use and kept for later stages (starting
    workers costs ~0.3 s each, as much as a whole stage on a small run), with the BLAS/OpenMP thread variables
    at 1; :func:`shutdown_pools` (also called at exit) stops them.

    Workers are forked where the platform can (Linux): a physicist's plain script calling a stage with
    ``jobs=2`` then works without an ``if __name__ == "__main__":`` guard, which "spawn" and "forkserver" would
    need (they re-import the main script). The workers only run numpy kernels on memory maps, so the usual
    fork-with-threads hazard does not apply. ``S2BOOK_MP_START=spawn`` selects spawning.
    """
    pool = _POOLS.get(jobs)
    if pool is None or getattr(pool, "_broken", False):
        with _single_thread_env():              # the workers start now and inherit the variables
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(_start_method()),
                                       initializer=_worker_init)
            for fut in [pool.submit(time.sleep, 0.05) for _ in range(jobs)]:     # one task per worker
                fut.result()
        _POOLS[jobs] = pool
    return pool


def shutdown_pools() -> None:
    """Stop the worker processes of :func:`worker_pool` (their memory then counts in RUSAGE_CHILDREN)."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pools)




@dataclass(frozen=True)
class LocalExecutor:
    """This machine: ``workers`` processes of :func:`worker_pool` (1: this process)."""

    workers: int = 1
    name: str = "local"

    def describe(self) -> str:
        """One line for logs."""
        return f"local process pool, {self.workers} worker(s)"

    def slots(self) -> int:
        """Tasks that run at once."""
        return max(1, int(self.workers))


@dataclass(frozen=True)
class DaskExecutor:
    """A Dask cluster: the scheduler at ``address``, or a LocalCluster of ``workers`` processes when None."""

    address: str | None = None
    workers: int = 1
    name: str = "dask"

    def describe(self) -> str:
        """One line for logs."""
        return f"dask scheduler {self.address}" if self.address else f"dask LocalCluster, {self.workers} worker(s)"

    def client(self) -> Any:
        """The ``distributed.Client`` (created on first use, kept for the later stages of this process)."""
        key = (self.address, None if self.address else self.workers)
        client = _CLIENTS.get(key)
        if client is None or client.status not in ("running", "connecting"):
            client = _connect(self.address, self.workers)
            _CLIENTS[key] = client
        return client

    def slots(self) -> int:
        """Tasks that run at once: the worker threads of the cluster now (a scheduler given by address has its
        own workers, whatever ``workers`` says), at least ``workers``."""
        if not self.address:
            return max(1, int(self.workers))
        try:
            info = self.client().scheduler_info()
            threads = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())
        except Exception:  # noqa: BLE001 - a scheduler that cannot say: assume the configured count
            threads = 0
        return max(1, int(self.workers), threads)

    def share(self, objects: Sequence[Any]) -> list[Any]:
        """Send ``objects`` (the set plans, which hold every file name of a set) to every worker once; the
        returned futures stand for them in task arguments (a plan per task would send every file name with
        every file's task: quadratic in the set size)."""
        return list(self.client().scatter(list(objects), broadcast=True, hash=False))

    def map_unordered(self, fn: Callable[..., Any], tasks: Sequence[Task]) -> Iterator[Any]:
        """Run ``fn(*task)`` for every task on the cluster; yield the results as they complete.

        A task's exception is re-raised here (the remaining tasks are cancelled)."""
        from distributed import as_completed

        client = self.client()
        futures = [client.submit(fn, *task, pure=False) for task in tasks]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            client.cancel([f for f in futures if not f.done()])


_CLIENTS: dict[tuple[str | None, int | None], Any] = {}
_CLUSTERS: list[Any] = []


def _connect(address: str | None, workers: int) -> Any:
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:      # pragma: no cover - dask is a dependency
        raise ConfigError("compute.executor", f"dask needs the 'distributed' package ({err}); pip install "
                          "'s2book[dask]' or use executor local") from None
    if address:
        try:
            return Client(address, timeout="30s")
        except (OSError, TimeoutError) as err:
            raise ConfigError("compute.address", f"cannot reach the Dask scheduler at {address!r}: {err}") from None
    with _single_thread_env():          # the worker processes start now and inherit the variables
        cluster = LocalCluster(n_workers=max(1, int(workers)), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
    _CLUSTERS.append(cluster)
    return Client(cluster)


def shutdown_dask() -> None:
    """Close the clients and the LocalClusters this process started (also called at exit)."""
    while _CLIENTS:
        _, client = _CLIENTS.popitem()
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing a dead client must not hide the run's outcome
            pass
    while _CLUSTERS:
        cluster = _CLUSTERS.pop()
        try:
            cluster.close()
        except Exception:  # noqa: BLE001
            pass


atexit.register(shutdown_dask)


def resolve_executor(config: Any = None, *, executor: str | None = None, address: str | None = None,
                     workers: int | None = None, jobs: int = 1) -> LocalExecutor | DaskExecutor:
    """The executor of a pass.

    Args:
        config: a ``RunConfig`` (its ``compute`` section) or None.
        executor: "local" or "dask" (None: ``S2BOOK_EXECUTOR``, then ``compute.executor``).
        address: Dask scheduler address (None: ``S2BOOK_DASK_ADDRESS``, then ``compute.address``); implies
            "dask" when no executor is named anywhere.
        workers: worker processes (None: ``compute.workers``, then ``jobs``).
        jobs: the stage's ``jobs`` argument (the run's share of ``s2book run --jobs``).

    Raises:
        ConfigError: an unknown executor name, or an address with the local executor (names the key).
    """
    comp = getattr(config, "compute", None)
    env_exec = os.environ.get(ENV_EXECUTOR) or None
    env_addr = os.environ.get(ENV_ADDRESS) or None
    addr = address or env_addr or getattr(comp, "address", None)
    name = executor or env_exec or (getattr(comp, "executor", None) if comp is not None else None)
    if name is None:
        name = "dask" if addr else "local"
    key = "--executor" if executor or env_exec else "compute.executor"
    if name not in EXECUTORS:
        raise ConfigError(key, f"expected one of {', '.join(EXECUTORS)}, got {name!r}")
    n = workers if workers is not None else getattr(comp, "workers", None)
    n = max(1, int(n if n is not None else jobs))
    if name == "local":
        if address or env_addr:
            raise ConfigError("--dask-address", f"a scheduler address ({address or env_addr!r}) needs the dask "
                              "executor, got executor 'local'")
        return LocalExecutor(n)
    return DaskExecutor(addr, n)


def chunks_for(executor: LocalExecutor | DaskExecutor, work: Iterable[tuple[int, list[int], Any]],
               sizes: Mapping[int, Mapping[int, int]] | None = None) -> list[tuple[int, list[int], Any]]:
    """Cut ``[(set index, file indices, limits), ...]`` into tasks of consecutive files of one set, heaviest first.

    Tasks are cut by *bytes* (``sizes[set][file]``: file sizes, bytes; without them every file counts the same):
    about :data:`TASKS_PER_WORKER` tasks per worker slot (4 on the local pool, 16 on Dask, whose tasks are
    rescheduled when a worker dies), none over :data:`TASK_MAX_BYTES` unless one file alone is larger, so that
    progress moves and a lost worker costs little. A run of a few big files gets one file per task; a run of
    thousands of small files gets tasks of many files, so it does not pay Dask's per-task cost (scheduler round
    trip, serialisation; ~20-40 ms on a loaded 2-core machine) thousands of times. The progress bar counts files
    either way."""
    work = list(work)

    def weight(si: int, i: int) -> int:
        return 1 if sizes is None else max(int(sizes[si][i]), 1)
    total = sum(weight(si, i) for si, files, _ in work for i in files)
    target = max(1, total // (TASKS_PER_WORKER[executor.name] * executor.slots()))
    if sizes is not None:
        target = min(target, TASK_MAX_BYTES)
    tasks: list[tuple[int, list[int], Any, int]] = []
    for si, files, limits in work:
        chunk: list[int] = []
        acc = 0
        for i in files:
            w = weight(si, i)
            if chunk and acc + w > target:            # this file would take the task past the target
                tasks.append((si, chunk, limits, acc))
                chunk, acc = [], 0
            chunk.append(i)
            acc += w
        if chunk:
            tasks.append((si, chunk, limits, acc))
    tasks.sort(key=lambda t: -t[3])
    return [(si, chunk, limits) for si, chunk, limits, _ in tasks]


TASKS_PER_WORKER = {"local": 4, "dask": 16}
"""Tasks per worker that :func:`chunks_for` aims at (more tasks: better balance, more per-task cost)."""
TASK_MAX_BYTES = 1 << 30
"""Largest share of raw bytes per task (1 GiB: ~4 lab files of 250 MB, seconds of work)."""
