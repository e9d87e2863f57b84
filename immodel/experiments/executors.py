"""Where sweep tasks run: one ``concurrent.futures.Executor`` code path for all of them.

:func:`open_backend` is a context manager that yields a :class:`Backend` — an executor,
a label for messages, and how many tasks to keep in flight — and tears it down on exit:

* no scheduler, one worker: :class:`InProcessExecutor`, each task runs in this process
  (no pickling; handy under a debugger);
* no scheduler, *N* workers (default ``os.cpu_count()``): a ``ProcessPoolExecutor``;
* ``scheduler="local"``: a Dask ``LocalCluster`` of *N* single-threaded worker processes
  and ``Client.get_executor()``;
* ``scheduler="tcp://host:8786"``: a running Dask scheduler. Connecting gives up after
  :data:`CONNECT_TIMEOUT_S` with a :class:`~immodel.errors.UserError` instead of hanging,
  and the workers are asked up front which immodel they run, so a cluster without
  immodel (or with another version, which could give other numbers) is refused before
  any task is sent.

Dask is imported only when a scheduler is asked for (``pip install 'immodel[cluster]'``).
The sweep writes results in the calling process, so Dask workers need no shared disk.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from immodel.errors import UserError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "Backend",
    "InProcessExecutor",
    "open_backend",
    "terminate_workers",
    "validate_workers",
]

#: Seconds to wait for a remote Dask scheduler before giving up.
CONNECT_TIMEOUT_S = 5


class InProcessExecutor(Executor):
    """An executor that runs each call when it is submitted, in the calling thread.

    The returned future is already done. An ``Exception`` from the call is stored in the
    future; ``KeyboardInterrupt`` and other ``BaseException`` propagate at once.
    """

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` now and return its finished future."""
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: Future = Future()
        future.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse further submissions (nothing is ever pending)."""
        self._shutdown = True


@dataclass(frozen=True)
class Backend:
    """An executor ready for tasks.

    ``label`` says where tasks run (for messages); ``window`` is how many tasks the sweep
    keeps submitted at once (``None``: all of them, the scheduler queues them).
    """

    executor: Executor
    label: str
    window: int | None


def validate_workers(workers: int | None) -> None:
    """Raise :class:`~immodel.errors.UserError` unless ``workers`` is ``None`` or ≥ 1."""
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise UserError(f"--workers must be an integer ≥ 1, got {workers!r}")


@contextmanager
def open_backend(
    workers: int | None = None,
    scheduler: str | None = None,
    *,
    local_processes: bool = True,
    dashboard_address: str | None = ":8787",
) -> Iterator[Backend]:
    """Start an executor for ``workers`` / ``scheduler`` (see the module docstring).

    ``local_processes`` and ``dashboard_address`` configure ``scheduler="local"`` (a
    threaded LocalCluster only suits runners that release the GIL). Pending tasks are
    cancelled and workers stopped when the ``with`` block exits. Raises
    :class:`~immodel.errors.UserError` for a bad ``workers`` value, a missing Dask
    installation, an unreachable scheduler or workers that cannot run immodel.
    """
    validate_workers(workers)
    n = workers or os.cpu_count() or 1
    if scheduler is None:
        if n == 1:
            executor: Executor = InProcessExecutor()
            backend = Backend(executor, "this process", window=1)
        else:
            # Workers ignore SIGINT: a Ctrl-C in the terminal reaches the whole process
            # group, and the sweep decides what happens to the runs in flight.
            # One task per worker in flight: a run takes seconds, so refilling a worker as
            # its task ends costs nothing, and a Ctrl-C then waits only for started runs
            # (the pool hands queued tasks to workers early, past cancelling).
            executor = ProcessPoolExecutor(max_workers=n, initializer=_ignore_sigint)
            backend = Backend(executor, f"{n} local processes", window=n)
        try:
            yield backend
        except BaseException:
            # Interrupted or failed: never leave worker processes behind.
            terminate_workers(executor)
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        return

    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UserError(
            "--scheduler needs Dask's distributed package: pip install 'immodel[cluster]'"
        ) from None

    cluster = None
    settings = contextlib.ExitStack()
    if scheduler == "local":
        settings.enter_context(_local_cluster_settings())
        try:
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=local_processes,
                dashboard_address=dashboard_address,
            )
        except BaseException:
            settings.close()
            raise
        client = Client(cluster)
        label = f"a Dask LocalCluster of {n} worker(s)"
    else:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise UserError(
                f"cannot reach the Dask scheduler at '{scheduler}' within "
                f"{CONNECT_TIMEOUT_S} s ({reason}); check the address (tcp://host:8786) and "
                "that `dask scheduler` is running there, or use --scheduler local"
            ) from None
        label = f"the Dask scheduler at {scheduler}"
    executor = client.get_executor(pure=False)
    try:
        _check_workers(client)
        link = getattr(client, "dashboard_link", None)
        if link:
            label += f" (dashboard {link})"
        yield Backend(executor, label, window=None)
    finally:
        executor.shutdown(wait=False)
        client.close()
        if cluster is not None:
            cluster.close()
        settings.close()


#: Dask settings of the LocalCluster a sweep starts (``scheduler="local"``), each of which
#: made a run slower inside a Dask worker than in a process-pool worker:
#:
#: * ``distributed.worker.profile.enabled``: the worker's statistical profiler samples the
#:   stack of every task thread every 10 ms (for the dashboard's profile page); a sweep's
#:   task is one CPU-bound simulation, whose profile a user takes with a profiler of
#:   their own.
#: * ``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_``: Dask starts workers
#:   with glibc's trim threshold fixed at 64 KiB, so that long-lived workers hand freed
#:   memory back; setting it also fixes glibc's mmap threshold, so every array of more
#:   than 128 KiB a run builds (the record frames, the summary) is a fresh mapping whose
#:   pages fault in again. A sweep's worker lives as long as the sweep, like a pool
#:   worker, which keeps glibc's own adaptive thresholds (``None`` unsets the variable).
#:
#: A cluster that ``scheduler="tcp://…"`` names is configured by whoever runs it.
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}


@contextmanager
def _local_cluster_settings() -> Iterator[None]:
    """While a LocalCluster lives: :data:`LOCAL_CLUSTER_CONFIG`, and worker processes
    started from a fork server.

    Dask's default (``spawn``) starts each worker as a fresh interpreter that imports
    Dask, numpy and pandas anew, and stops it as slowly: seconds a sweep spends on no
    run. A fork server imports them once (Dask preloads them) and forks each worker from
    that warm, single-threaded process, which is as safe as ``spawn`` (unlike a plain
    ``fork`` of this process, whose event-loop threads may hold locks). Platforms
    without fork servers (Windows) keep the default start method.
    """
    import multiprocessing

    import dask

    settings = dict(LOCAL_CLUSTER_CONFIG)
    if "forkserver" in multiprocessing.get_all_start_methods():
        settings["distributed.worker.multiprocessing-method"] = "forkserver"
    with dask.config.set(settings):
        yield


def _ignore_sigint() -> None:
    """Initializer of local worker processes: Ctrl-C is the parent's to handle, and
    SIGTERM/SIGHUP end the worker (whatever handler the parent had when it forked)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def terminate_workers(executor: Executor, timeout_s: float = 5.0) -> None:
    """Stop the worker processes of a ``ProcessPoolExecutor`` now (SIGTERM, then SIGKILL
    after ``timeout_s``); their runs in flight are lost. Other executors: nothing."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    if not processes:
        return
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    deadline = time.monotonic() + timeout_s
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)


def worker_version() -> str:
    """The immodel version of the process that runs this (sent to Dask workers).

    It imports the simulator first: every worker does so at once, in parallel, before
    any task arrives (its first run then starts warm), and a worker that cannot import
    it fails here, before the sweep, rather than in every task.
    """
    import immodel.sim.model  # noqa: F401
    from immodel import __version__

    return __version__


def _check_workers(client: Any) -> None:
    from immodel import __version__

    try:
        versions = client.run(worker_version)
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(
            f"the Dask workers cannot run immodel ({type(exc).__name__}: {reason}); "
            f"install immodel {__version__} on them"
        ) from None
    other = sorted({v for v in versions.values() if v != __version__})
    if other:
        raise UserError(
            f"the Dask workers run immodel {', '.join(other)} but this client runs "
            f"{__version__}; install the same version everywhere so results are comparable"
        )
