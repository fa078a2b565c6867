"""Solving many ARC tasks with the DSL search in parallel processes, each under a CPU-time budget.

Tasks go to a `concurrent.futures.ProcessPoolExecutor` (a "fork" context by default on Linux: the
workers inherit the imported modules instead of importing torch again; "spawn" elsewhere or on
request). In a worker, the search watches its own `time.process_time` and a CPU-time timer
(`ITIMER_PROF`, where the platform has one) interrupts a primitive that runs past the budget, so a
task is stopped at its budget and returns what it found by then. A worker that hangs anyway (in a
C call the timer cannot interrupt) is killed after a wall-clock grace period, and its task is
reported as timed out with no attempts; the other tasks go on in a fresh pool.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Optional

from ..data.arc import ArcTask
from .search import DSLSearchConfig, DSLSearchResult, SearchBudgetExceeded, search_programs


__all__ = ["solve_tasks_with_dsl"]

# A worker's CPU timer fires this much after the budget: the search's own clock check stops it first
# in all but a long primitive call.
_TIMER_GRACE_SECONDS = 0.5


_searching = False  # the timer interrupts only a search in progress, never the worker's own bookkeeping


def _raise_budget_exceeded(signum, frame):
    if _searching:
        raise SearchBudgetExceeded


def _solve_in_worker(task: ArcTask, config: DSLSearchConfig) -> DSLSearchResult:
    global _searching
    use_timer = hasattr(signal, "ITIMER_PROF")
    if use_timer:
        previous = signal.signal(signal.SIGPROF, _raise_budget_exceeded)
        signal.setitimer(signal.ITIMER_PROF, config.cpu_seconds + _TIMER_GRACE_SECONDS)
    start = time.process_time()
    _searching = True
    try:
        return search_programs(task.train, task.test_inputs, config, task_id=task.task_id)
    except SearchBudgetExceeded:  # the timer fired outside the search's loop
        return DSLSearchResult(task.task_id, cpu_seconds=time.process_time() - start, timed_out=True)
    finally:
        _searching = False
        if use_timer:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, previous)


def _default_start_method() -> str:
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _kill_workers(executor: ProcessPoolExecutor) -> None:
    # The executor has no public way to stop a running call: kill its worker processes (they are the
    # ones it started; `_processes` has held them since Python 3.2), then the pool is rebuilt.
    for process in list((executor._processes or {}).values()):
        process.kill()


def solve_tasks_with_dsl(
    tasks: Sequence[ArcTask],
    config: Optional[DSLSearchConfig] = None,
    workers: int = 1,
    start_method: Optional[str] = None,
    wall_grace_seconds: float = 120.0,
    on_result: Optional[Callable[[DSLSearchResult], None]] = None,
) -> list[DSLSearchResult]:
    """Runs the DSL search on every task, `workers` tasks at a time, each in its own process.

    Args:
        tasks: the tasks.
        config: the search's settings; `config.cpu_seconds` is each task's CPU budget.
        workers: processes working at once (1 runs every task in one worker process, still budgeted).
        start_method: "fork" or "spawn" (default: "fork" on Linux, "spawn" elsewhere).
        wall_grace_seconds: wall-clock time past three times the budget after which a task's worker is
            deemed hung and killed (a loaded machine stretches wall time, hence the factor).
        on_result: called with each result as it arrives (progress, incremental saving).

    Returns:
        The results in the order of `tasks`.
    """
    config = config or DSLSearchConfig()
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    context = multiprocessing.get_context(start_method or _default_start_method())
    wall_limit = 3 * config.cpu_seconds + wall_grace_seconds
    results: dict[int, DSLSearchResult] = {}
    pending = list(range(len(tasks)))
    while pending:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as executor:
            running: dict = {}
            broken = False
            while (pending or running) and not broken:
                while pending and len(running) < workers:
                    index = pending.pop(0)
                    running[executor.submit(_solve_in_worker, tasks[index], config)] = (index, time.monotonic())
                done, _ = wait(running, timeout=5.0, return_when=FIRST_COMPLETED)
                for future in done:
                    index, _ = running.pop(future)
                    try:
                        results[index] = future.result()
                    except BrokenProcessPool:
                        pending.insert(0, index)  # lost with a killed neighbour: run it again
                        broken = True
                        continue
                    if on_result is not None:
                        on_result(results[index])
                hung = [f for f, (_, started) in running.items() if time.monotonic() - started > wall_limit]
                if hung:
                    for future in hung:
                        index, _ = running.pop(future)
                        results[index] = DSLSearchResult(
                            tasks[index].task_id, cpu_seconds=config.cpu_seconds, timed_out=True
                        )
                        if on_result is not None:
                            on_result(results[index])
                    pending[:0] = [index for index, _ in running.values()]  # restarted in a fresh pool
                    running.clear()
                    _kill_workers(executor)
                    broken = True
            executor.shutdown(wait=not broken, cancel_futures=True)
    return [results[i] for i in range(len(tasks))]
