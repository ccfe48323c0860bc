"""Worker processes for large batches: each holds a copy of the engine, and is sent chunks of distinct texts.

The initializer and the task are module-level functions, so every start method finds them in a worker.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import weakref
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING

from airflow_aisec.exceptions import PIIError
from airflow_aisec.pii.engine.config import CHUNK_TEXTS, PARALLEL_MIN_TEXTS
from airflow_aisec.pii.types import Span

if TYPE_CHECKING:
    from airflow_aisec.pii.engine.pii_engine import PIIEngine

log = logging.getLogger(__name__)

# How a worker gets its engine: a weak reference to the parent's (forked workers inherit it, model loaded),
# or a picklable call that builds an equal one (other start methods).
EngineSource = Callable[[], "PIIEngine | None"]
_WORKER_ENGINE: PIIEngine | None = None


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def worker_count(texts: int, processes: int | None) -> int:
    """How many workers analyse ``texts`` distinct texts: 1 means this process, without a pool.

    ``processes`` None: one per available CPU above ``PARALLEL_MIN_TEXTS`` texts. Never more than chunks.
    """
    chunks = math.ceil(texts / CHUNK_TEXTS)
    if processes is None:
        processes = available_cpus() if texts > PARALLEL_MIN_TEXTS else 1
    # Daemonic processes (some task runners) may not have children.
    if multiprocessing.current_process().daemon:
        return 1
    return max(1, min(processes, chunks))


def _start_method() -> str:
    # fork where available (Linux), as spaCy's own nlp.pipe(n_process=...) does: workers start at once with
    # the parent's loaded model (copy-on-write) and the parent's __main__ is not re-run. forkserver and spawn
    # re-import the parent's main script in every worker (a script without an `if __name__ == "__main__"`
    # guard would run again there) and load the model again, a few seconds per worker. spaCy, Presidio and
    # numpy's OpenBLAS are fork-safe; the pool is created between calls, never while a spaCy batch runs.
    methods = multiprocessing.get_all_start_methods()
    return "fork" if "fork" in methods else "spawn"


def _init_worker(source: EngineSource) -> None:
    global _WORKER_ENGINE
    _WORKER_ENGINE = source()


def _worker_analyze(texts: list[str], entities: tuple[str, ...], threshold: float) -> list[tuple[Span, ...]]:
    if _WORKER_ENGINE is None:  # pragma: no cover - the initializer always runs first
        raise PIIError("PII worker process has no engine")
    return _WORKER_ENGINE.analyze_unique_local(texts, entities, threshold)


class WorkerPool:
    """``workers`` processes analysing for ``engine``; ``rebuild`` makes an equal engine where not forked.

    A forked worker finds the engine through a weak reference, so the pool does not keep the engine alive;
    the workers are stopped when the engine goes away, even without ``close``.
    """

    def __init__(self, engine: PIIEngine, rebuild: EngineSource, workers: int) -> None:
        method = _start_method()
        source: EngineSource = weakref.ref(engine) if method == "fork" else rebuild
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_init_worker,
            initargs=(source,),
        )
        # Workers hold a model each: stop them when the engine goes away.
        self._finalizer = weakref.finalize(engine, self._executor.shutdown, wait=False, cancel_futures=True)
        log.info("starting %d PII worker processes (%s)", workers, method)

    def analyze(
        self, texts: list[str], entities: tuple[str, ...], threshold: float
    ) -> list[tuple[Span, ...]]:
        """``analyze_unique_local`` of the engine, chunk by chunk in the workers; results in order."""
        chunks = [texts[i : i + CHUNK_TEXTS] for i in range(0, len(texts), CHUNK_TEXTS)]
        results: list[tuple[Span, ...]] = []
        count = len(chunks)
        for part in self._executor.map(_worker_analyze, chunks, [entities] * count, [threshold] * count):
            results.extend(part)
        return results

    def close(self) -> None:
        """Stop the workers and wait for them."""
        self._finalizer.detach()
        self._executor.shutdown(wait=True, cancel_futures=True)
