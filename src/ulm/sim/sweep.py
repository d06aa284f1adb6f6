"""Many simulations at once: traces x policies on a pool of processes (`ulm simulate --jobs`).

Each simulation is independent and deterministic (same trace, policy and config, same result),
so running them in parallel changes only the wall time. Workers are started with `spawn`, not
`fork`: the parent may hold threads (progress bars, numba's) that a forked child must not
inherit. Each worker loads the compiled kernels once and is reused for the tasks it is given.
The trace is read inside the worker (only its path crosses the process boundary).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ulm.policy import Policy
from ulm.sim.engine import SimConfig, SimResult, simulate
from ulm.sim.traces import chain, load_trace


@dataclass(frozen=True)
class Task:
    traces: tuple[Path, ...]  # one day, or consecutive days chained into one run
    policy: Policy
    config: SimConfig  # without a progress callback (it cannot cross processes)


def run_task(task: Task) -> SimResult:
    trace = chain([load_trace(p) for p in task.traces])
    return simulate(trace, task.policy, task.config)


def run_all(tasks: Sequence[Task], jobs: int,
            done: Callable[[int, SimResult], None] | None = None) -> list[SimResult]:
    """Results in the order of `tasks`, whatever order they finish in; `done(i, result)` is
    called as each one ends (for a progress bar)."""
    tasks = [dataclasses.replace(t, config=dataclasses.replace(t.config, progress=None))
             for t in tasks]
    if jobs <= 1 or len(tasks) <= 1:
        out: list[SimResult] = []
        for i, t in enumerate(tasks):
            out.append(run_task(t))
            if done is not None:
                done(i, out[-1])
        return out
    results: dict[int, SimResult] = {}
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx,
                                initializer=_warm) as pool:
        futures = {pool.submit(run_task, t): i for i, t in enumerate(tasks)}
        for fut in cf.as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            if done is not None:
                done(i, results[i])
    return [results[i] for i in range(len(tasks))]


def _warm() -> None:
    """Loads the compiled kernels before the first task, so no task's wall time counts it."""
    from ulm.sim.engine import load_compiled_sim

    load_compiled_sim()
