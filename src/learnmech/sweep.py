"""Sweeps: a grid (or zip) over any spec fields and seeds, run on a pool and stored.

A sweep file names a base system and the fields to vary, by their dotted paths (as in
:meth:`learnmech.system.System.updated`)::

    base: mlp.yaml                 # a spec file (relative to this file) or an inline spec
    grid:                          # every combination
      learning_rule.lr: [0.01, 0.03, 0.1, 0.3]
      architecture.width: [32, 128]
    zip:                           # varied together, one value of each per trial
      learning_rule.steps: [400, 200]
      learning_rule.batch_size: [32, 64]
    seeds: [0, 1]                  # the system seed; an integer n means 0 … n−1
    probes: [loss]
    schedule: {kind: log, points: 30}

The trials are the product grid × zip rows × seeds. :func:`run_sweep` trains the trials
that the store does not hold yet, on a local process pool (default) or on Ray, and stores
every trial as soon as it finishes, from the driver process: an interrupted sweep (Ctrl-C,
``kill -9``, a lost worker) resumes without recomputing finished trials. The driver claims
each trial's record in the store before training it (:meth:`learnmech.store.Store.claim`),
so two drivers of the same sweep train every trial once: each trains what it claimed and
waits for the other's trials (taking over those whose driver died). Workers die with
their driver. A diverged trial is stored as diverged; a trial whose training raised is
recorded as failed (and retried by the next invocation). Trials that differ only in seed,
learning rate or init scale train together as one vectorized ensemble
(:mod:`learnmech.ensemble`).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from learnmech import watchdog
from learnmech.errors import InputError
from learnmech.store import Lease, Store
from learnmech.system import System, parse_yaml, read_text
from learnmech.train import MAX_POINTS, Schedule, Trajectory, check_system

Backend = Literal["local", "ray"]


class ScheduleSpec(BaseModel):
    """The probe schedule of every trial (see :class:`learnmech.train.Schedule`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["log", "linear"] = "log"
    points: int = Field(100, gt=0, le=MAX_POINTS)

    def schedule(self) -> Schedule:
        return Schedule(self.kind, self.points)


#: Most trials one sweep may hold (grid × zip rows × seeds).
MAX_TRIALS = 10_000


class Sweep(BaseModel):
    """A sweep: a base system, the fields to vary, seeds, probes and schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    base: System
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zipped: dict[str, list[Any]] = Field(default_factory=dict, alias="zip")
    seeds: list[int] | None = None
    probes: list[str] = Field(default_factory=lambda: ["loss"])
    schedule: ScheduleSpec = ScheduleSpec(kind="log", points=100)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_count(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            if v < 1:
                raise ValueError("an integer number of seeds must be at least 1")
            return list(range(v))
        return v

    def _check(self) -> Sweep:
        """Checks across fields; bad input raises :class:`InputError`."""
        lengths = {len(v) for v in self.zipped.values()}
        if len(lengths) > 1:
            raise InputError(
                "zip", {k: len(v) for k, v in self.zipped.items()}, "lists of one common length"
            )
        both = set(self.grid) & set(self.zipped)
        if both:
            raise InputError("zip", sorted(both), "fields not also in grid")
        for name, values in [*self.grid.items(), *self.zipped.items()]:
            if not values:
                raise InputError(f"grid.{name}", values, "a non-empty list of values")
        if self.seeds is not None and "seed" in {*self.grid, *self.zipped}:
            raise InputError("seeds", self.seeds, "either seeds or a 'seed' field in grid/zip")
        count = math.prod(len(v) for v in self.grid.values()) * (
            len(next(iter(self.zipped.values()))) if self.zipped else 1) * len(
            self.seeds or [None])
        if count > MAX_TRIALS:
            raise InputError("grid", f"{count} trials", f"at most {MAX_TRIALS} trials in one "
                             "sweep (split it into several sweep files)")
        from learnmech.probes import make_probes

        make_probes(self.probes)  # unknown probe names fail here
        self.trials()  # so do unknown field paths and invalid values
        return self

    # ---- reading --------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Any, root: Path | None = None) -> Sweep:
        """Validate a mapping; a string ``base`` is a spec file relative to ``root``."""
        if not isinstance(raw, dict):  # named by type only: never echo a file's contents
            raise InputError(
                "sweep", f"a {type(raw).__name__}",
                "a mapping with base, grid, zip, seeds, probes, schedule"
            )
        raw = dict(raw)
        if isinstance(raw.get("base"), str):
            raw["base"] = System.load((root or Path.cwd()) / raw["base"])
        elif isinstance(raw.get("base"), dict):
            raw["base"] = System.from_dict(raw["base"])
        try:
            sweep = cls.model_validate(raw)
        except RecursionError:
            raise InputError("sweep", "a deeply nested value", "fields nested at most a few "
                             "levels deep") from None
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "sweep"
            raise InputError(loc, first.get("input"), first["msg"]) from None
        return sweep._check()

    @classmethod
    def load(cls, path: str | Path) -> Sweep:
        """Read a sweep YAML file."""
        raw = parse_yaml(read_text(path, "an existing sweep .yaml file"), str(path))
        return cls.from_dict(raw, root=Path(path).parent)

    # ---- trials ---------------------------------------------------------------------
    @property
    def varied(self) -> list[str]:
        """The varied fields in trial order: grid fields, zip fields, then ``seed``."""
        out = [*self.grid, *self.zipped]
        return [*out, "seed"] if self.seeds is not None else out

    def trials(self) -> list[Trial]:
        """Every trial, grid-major, seeds innermost; duplicates (equal run ids) dropped."""
        rows = list(zip(*self.zipped.values(), strict=True)) or [()]
        seeds: list[int | None] = list(self.seeds) if self.seeds is not None else [None]
        out, seen = [], set()
        for combo in itertools.product(*self.grid.values()):
            for row in rows:
                for seed in seeds:
                    params = dict(zip(self.grid, combo, strict=True)) | dict(
                        zip(self.zipped, row, strict=True)
                    )
                    if seed is not None:
                        params["seed"] = seed
                    system = self.base.updated(params)
                    if system.run_id not in seen:
                        seen.add(system.run_id)
                        out.append(Trial(params, system))
        return out


@dataclass(frozen=True)
class Trial:
    """One point of a sweep: the varied values and the resulting system."""

    params: dict[str, Any]
    system: System

    @property
    def run_id(self) -> str:
        return self.system.run_id


# ---- the work a worker does -----------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    """A trial whose training raised: its system and the error text."""

    system: System
    error: str


Outcome = Trajectory | Failure


def train_task(
    systems: list[System], probes: list[str], schedule: Schedule, threads: int | None = None
) -> list[Outcome]:
    """Train one task (a single trial or an ensemble) and return picklable outcomes.

    An ensemble that raises is retried member by member, so one bad trial does not fail
    its neighbours. Trajectories come back without model and data.
    """
    import torch

    from learnmech.ensemble import train_ensemble
    from learnmech.probes import make_probes
    from learnmech.train import train

    if threads:
        torch.set_num_threads(threads)
    if len(systems) > 1:
        try:
            trajs = train_ensemble(systems, probes, schedule)
            return [replace(t, model=None, data=None) for t in trajs]
        except Exception:  # isolated below, one trial at a time
            pass
    out: list[Outcome] = []
    for system in systems:
        try:
            traj = train(system, make_probes(probes), schedule)
            out.append(replace(traj, model=None, data=None))
        except Exception as err:  # a failed trial is data, not a crash
            detail = traceback.format_exception_only(type(err), err)[-1].strip()
            out.append(Failure(system, detail))
    return out


# ---- executors --------------------------------------------------------------------------
class WorkerLost(RuntimeError):
    """The process (or Ray worker) running a task died before returning."""


class Executor(Protocol):
    """Where tasks run: ``slots`` tasks at a time."""

    slots: int

    def submit(self, systems: list[System], probes: list[str], schedule: Schedule) -> Any: ...

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        """The handles among ``handles`` that finished (possibly none after ``timeout``)."""
        ...

    def result(self, handle: Any) -> list[Outcome]:
        """The outcomes of a finished task; raises :class:`WorkerLost` if its worker died."""
        ...

    def close(self, cancel: bool) -> None: ...


def _init_worker(threads: int, parent: int) -> None:
    import torch

    torch.set_num_threads(threads)
    die_with_parent(parent)


def die_with_parent(parent: int) -> None:
    """End this process when the process ``parent`` ends, however it ends (``kill -9``
    included): on Linux the kernel sends SIGKILL (``prctl(PR_SET_PDEATHSIG)``); a daemon
    thread also polls the parent id once a second (every platform)."""
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


class LocalPool:
    """A pool of ``workers`` spawned processes on this machine, ``threads`` torch threads
    each. A pool whose worker died is rebuilt for the next tasks.

    The thread count is fixed per trial (default 1), never derived from ``workers``: a
    float reduction's order depends on it, so the same spec and seed give bitwise the same
    numbers whatever ``workers`` is, and the same as :func:`learnmech.train.train` run
    with that many threads."""

    def __init__(self, workers: int | None = None, threads: int = 1) -> None:
        self.slots = (os.cpu_count() or 1) if workers is None else workers
        if self.slots < 1:
            raise InputError("workers", workers, "a positive number of processes")
        if threads < 1:
            raise InputError("threads", threads, "a positive number of torch threads")
        self.threads = threads
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.slots,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads, os.getpid()),
        )

    def submit(self, systems: list[System], probes: list[str], schedule: Schedule) -> Future:
        try:
            return self._pool.submit(train_task, systems, probes, schedule)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(train_task, systems, probes, schedule)

    def wait(self, handles: Sequence[Future], timeout: float) -> list[Future]:
        done, _ = wait_futures(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Future) -> list[Outcome]:
        try:
            return handle.result()
        except BrokenProcessPool as err:
            raise WorkerLost(f"worker process died ({err})") from None

    def close(self, cancel: bool) -> None:
        if cancel:
            # the workers would otherwise finish their current trials unobserved
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                proc.terminate()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)


class RayPool:
    """Tasks on a Ray cluster: ``address`` of a running one, or a local instance started
    here (``workers`` CPUs) and shut down at the end. Each task asks Ray for
    ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs. A task whose worker died is
    reported as :class:`WorkerLost` (the driver decides about re-running it)."""

    def __init__(
        self,
        address: str | None = None,
        workers: int | None = None,
        cpus_per_trial: float = 1,
        gpus_per_trial: float = 0,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise InputError(
                "backend", "ray", "'local', or install Ray: pip install 'learnmech[ray]'"
            ) from None
        self._ray = ray
        self._started = not ray.is_initialized()
        self._watchdog: subprocess.Popen[bytes] | None = None
        if self._started and address is None:
            # a private instance on this machine: no usage reporting, no token file in ~
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            src = str(Path(__file__).resolve().parents[1])  # workers import this learnmech
            path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
            before = watchdog.descendants([os.getpid()])
            ray.init(
                num_cpus=workers or os.cpu_count(),
                include_dashboard=False,
                log_to_driver=False,
                runtime_env={"env_vars": {"PYTHONPATH": path}},
            )
            # Ray's own processes outlive a killed driver by a minute or more: watched
            self._watchdog = watchdog.start(sorted(watchdog.descendants([os.getpid()]) - before))
        elif self._started:
            ray.init(address=address, log_to_driver=False)
        resources = ray.cluster_resources()
        for kind, need in (("CPU", cpus_per_trial), ("GPU", gpus_per_trial)):
            if need > resources.get(kind, 0):
                self.close(cancel=True)
                raise InputError(
                    f"{kind.lower()}s_per_trial",
                    need,
                    f"at most {resources.get(kind, 0):g} ({kind}s in the cluster)",
                )
        if gpus_per_trial > 0:
            self.slots = int(resources["GPU"] // gpus_per_trial)
        else:
            self.slots = int(resources["CPU"] // cpus_per_trial)
        threads = max(1, int(cpus_per_trial))
        self._task: Any = ray.remote(train_task).options(
            num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0
        )
        self._threads = threads

    def submit(self, systems: list[System], probes: list[str], schedule: Schedule) -> Any:
        return self._task.remote(systems, probes, schedule, self._threads)

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        done, _ = self._ray.wait(list(handles), num_returns=1, timeout=timeout)
        return list(done)

    def result(self, handle: Any) -> list[Outcome]:
        from ray.exceptions import RayError

        try:
            return self._ray.get(handle)
        except RayError as err:
            raise WorkerLost(f"Ray task failed ({type(err).__name__}: {err})") from None

    def close(self, cancel: bool) -> None:
        if self._started:
            self._ray.shutdown()
        if self._watchdog is not None:
            watchdog.stop(self._watchdog)
            self._watchdog = None


# ---- the driver ---------------------------------------------------------------------------
@dataclass
class Counts:
    """Progress of a sweep, in trials."""

    total: int
    done: int = 0
    running: int = 0
    diverged: int = 0
    failed: int = 0
    reused: int = 0

    def line(self) -> str:
        return (
            f"done {self.done}/{self.total} · running {self.running} · "
            f"diverged {self.diverged} · failed {self.failed}"
        )


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: final counts, the trials, and the failures' errors."""

    counts: Counts
    trials: list[Trial]
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def make_tasks(
    systems: Sequence[System], slots: int, ensemble: bool = True, max_ensemble: int = 64
) -> list[list[System]]:
    """Split pending trials into tasks: ensembles of compatible trials, sized so that
    every slot gets work (at most ``max_ensemble`` members), or one trial per task."""
    if not ensemble:
        return [[s] for s in systems]
    from learnmech.ensemble import group_ensembles

    size = max(1, min(max_ensemble, math.ceil(len(systems) / max(slots, 1))))
    return group_ensembles(systems, size)


def run_sweep(
    sweep: Sweep,
    store: Store,
    *,
    backend: Backend = "local",
    workers: int | None = None,
    address: str | None = None,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    ensemble: bool = True,
    max_ensemble: int = 64,
    retries: int = 1,
    progress: Callable[[Counts], None] | None = None,
    executor: Executor | None = None,
) -> SweepResult:
    """Run the trials of ``sweep`` that ``store`` does not hold yet; store each as it ends.

    Args:
        sweep: the sweep.
        store: where trials are stored (and looked up for resuming).
        backend: ``"local"`` (a process pool) or ``"ray"``.
        workers: local processes (default: CPU count) or CPUs of a local Ray instance.
        address: a running Ray cluster's address (``backend="ray"`` only).
        cpus_per_trial, gpus_per_trial: resources each Ray task requests.
        ensemble: train trials that differ only in seed, lr or init scale as one
            vectorized ensemble.
        max_ensemble: most members in one ensemble.
        retries: how many times a task whose worker died is run again.
        progress: called with the :class:`Counts` whenever they change (and twice a second).
        executor: an executor to use instead of building one from ``backend``.

    Returns:
        A :class:`SweepResult`. On Ctrl-C the pool is stopped and ``KeyboardInterrupt``
        propagates; every trial finished so far is in the store.
    """
    if backend not in ("local", "ray"):
        raise InputError("backend", backend, "'local' or 'ray'")
    if address is not None and backend != "ray":
        raise InputError("address", address, "only with backend 'ray'")
    start = time.perf_counter()
    probes, schedule = sorted(set(sweep.probes)), sweep.schedule.schedule()
    trials = sweep.trials()
    for t in trials:  # a missing device or a trial beyond the memory budget: nothing runs
        check_system(t.system)
    counts = Counts(total=len(trials))
    claimed: dict[str, int] = {}  # run id -> the record this driver trains
    elsewhere: list[System] = []  # trials another live driver is training
    errors: dict[str, str] = {}
    notify = progress or (lambda c: None)

    def take(system: System) -> bool:
        """Claim ``system``'s record; ``False`` if another process trains it."""
        claim = store.claim(system, probes, schedule)
        if isinstance(claim, Trajectory):
            counts.done += 1
            counts.reused += 1
            counts.diverged += claim.status == "diverged"
        elif claim is not None:
            claimed[system.run_id] = claim
            lease.add(claim)
        return claim is not None

    if executor is None and not all(store.finished(t.system, probes, schedule)
                                    for t in trials):  # bad workers etc. fail before claims
        executor = (
            RayPool(address, workers, cpus_per_trial, gpus_per_trial)
            if backend == "ray"
            else LocalPool(workers)
        )
    with Lease(store.path) as lease:
        elsewhere = [t.system for t in trials if not take(t.system)]
        notify(counts)
        if executor is None or (not claimed and not elsewhere):
            if executor is not None:
                executor.close(cancel=False)
            for record in claimed.values():  # none: every trial was stored meanwhile
                store.fail(record, "the sweep stopped before training it", "interrupted")
            return SweepResult(counts, trials, errors, time.perf_counter() - start)
        mine = [t.system for t in trials if t.run_id in claimed]
        queue = deque((task, 0) for task in make_tasks(mine, executor.slots, ensemble,
                                                       max_ensemble))
        in_flight: dict[int, tuple[Any, list[System], int]] = {}  # id(handle) -> ...
        interrupted = True
        try:
            while queue or in_flight or elsewhere:
                while queue and len(in_flight) < executor.slots:
                    task, tries = queue.popleft()
                    handle = executor.submit(task, probes, schedule)
                    in_flight[id(handle)] = (handle, task, tries)
                counts.running = sum(len(task) for _, task, _ in in_flight.values())
                notify(counts)
                handles = [h for h, _, _ in in_flight.values()]
                done = executor.wait(handles, timeout=0.5) if handles else []
                if not handles:
                    time.sleep(0.5)
                for handle in done:
                    _, task, tries = in_flight.pop(id(handle))
                    try:
                        outcomes = executor.result(handle)
                    except WorkerLost as err:
                        if tries < retries:
                            queue.append((task, tries + 1))
                            continue
                        outcomes = [Failure(s, str(err)) for s in task]
                    for outcome in outcomes:
                        record = claimed.pop(outcome.system.run_id)
                        _store_outcome(store, record, outcome, counts, errors)
                        lease.discard(record)
                if elsewhere:  # finished by the other driver, or free again
                    store.reclaim()
                    waiting = []
                    for system in elsewhere:
                        if not take(system):
                            waiting.append(system)
                        elif system.run_id in claimed:
                            queue.append(([system], 0))
                    elsewhere = waiting
                counts.running = sum(len(task) for _, task, _ in in_flight.values())
            notify(counts)
            interrupted = False
        finally:
            executor.close(cancel=interrupted)
            for record in claimed.values():  # left unfinished by an interruption
                store.fail(record, "the sweep was interrupted", "interrupted")
    return SweepResult(counts, trials, errors, time.perf_counter() - start)


def _store_outcome(
    store: Store, record: int, outcome: Outcome, counts: Counts, errors: dict[str, str]
) -> None:
    if isinstance(outcome, Failure):
        store.fail(record, outcome.error)
        errors[outcome.system.run_id] = outcome.error
        counts.failed += 1
        return
    store.finish(record, outcome)
    counts.done += 1
    counts.diverged += outcome.status == "diverged"


# ---- reading a sweep back -------------------------------------------------------------------
def summary(sweep: Sweep, store: Store) -> pd.DataFrame:
    """One row per trial: the varied values, ``run_id``, ``status`` (``completed``,
    ``diverged``, ``failed``, ``running`` or ``pending``), ``steps_done`` and the last
    value of every scalar observable (``final_train_loss``, ...)."""
    probes, schedule = sorted(set(sweep.probes)), sweep.schedule.schedule()
    rows = []
    for t in sweep.trials():
        status = store.status(t.system, probes, schedule)
        row: dict[str, Any] = dict(t.params) | {
            "run_id": t.run_id,
            "status": "failed" if status == "interrupted" else status,
        }
        if row["status"] in ("completed", "diverged"):
            traj = store.load(t.run_id, probes, schedule)
            row["steps_done"] = traj.steps_done
            for name, series in traj.observables.items():
                if series.values and not isinstance(series.values[-1], list):
                    row[f"final_{name}"] = series.values[-1]
        rows.append(row)
    return pd.DataFrame(rows)


def aggregate(sweep: Sweep, table: pd.DataFrame, metric: str = "final_train_loss") -> pd.DataFrame:
    """``table`` (from :func:`summary`) averaged over seeds: per combination of the other
    varied fields, the mean and std of ``metric`` over completed trials and the number of
    trials in each status. A combination with no completed trial has a NaN mean."""
    keys = [k for k in sweep.varied if k != "seed"]
    frame = table.copy()
    for k in keys:  # lists and mappings (e.g. hidden widths) group by their JSON text
        frame[k] = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in frame[k]]
    if metric not in frame:
        frame[metric] = np.nan
    frame["_ok"] = frame["status"] == "completed"
    frame["_value"] = frame[metric].where(frame["_ok"])
    groups = frame.groupby(keys, sort=False, dropna=False) if keys else [((), frame)]
    rows = []
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key, strict=True))
        row["mean"] = float(part["_value"].mean()) if part["_ok"].any() else math.nan
        row["std"] = float(part["_value"].std(ddof=0)) if part["_ok"].any() else math.nan
        for s in ("completed", "diverged", "failed", "pending", "running"):
            row[s] = int((part["status"] == s).sum())
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class Heatmap:
    """A 2-D sweep's metric on the grid: ``values[i][j]`` at ``y[i]``, ``x[j]`` (NaN where
    no trial completed)."""

    title: str
    xlabel: str
    ylabel: str
    x: list[Any]
    y: list[Any]
    values: list[list[float]]


def sweep_figures(
    sweep: Sweep, store: Store, metric: str = "final_train_loss"
) -> tuple[list[Any], list[Heatmap]]:
    """Figures of a stored sweep: loss-vs-learning-rate curves (one per value of the other
    varied fields, e.g. per width) when the sweep varies ``learning_rule.lr``, and a
    heatmap of ``metric`` (mean over seeds) when it varies exactly two fields."""
    from learnmech.figures import Curve, Figure

    table = aggregate(sweep, summary(sweep, store), metric)
    keys = [k for k in sweep.varied if k != "seed"]
    figures: list[Figure] = []
    lr = "learning_rule.lr"
    if lr in keys:
        others = [k for k in keys if k != lr]
        fig = Figure(
            f"{metric} vs learning rate",
            "learning rate η",
            f"{metric} (mean over seeds)",
            xscale="log",
            yscale="log",
        )
        groups = table.groupby(others, sort=False) if others else [((), table)]
        for key, part in groups:
            key = key if isinstance(key, tuple) else (key,)
            label = (
                ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(others, key, strict=True))
                or metric
            )
            part = part.sort_values(lr)
            ok = part["mean"].notna()
            figures_x = [float(v) for v in part[lr][ok]]
            fig.curves.append(
                Curve(label, figures_x, [float(v) for v in part["mean"][ok]], "measured", label)
            )
        figures.append(fig)
    heatmaps = []
    if len(keys) == 2:
        xk, yk = keys[0], keys[1]
        xs = list(dict.fromkeys(table[xk]))
        ys = list(dict.fromkeys(table[yk]))
        lookup = {(r[xk], r[yk]): r["mean"] for _, r in table.iterrows()}
        values = [[float(lookup.get((xv, yv), math.nan)) for xv in xs] for yv in ys]
        heatmaps.append(Heatmap(f"{metric} (mean over seeds)", xk, yk, xs, ys, values))
    return figures, heatmaps


# ---- the command line's view ------------------------------------------------------------------
class ProgressBar:
    """A rich progress bar for :func:`run_sweep` (on ``console``, default stderr):
    ``with ProgressBar() as bar: run_sweep(..., progress=bar)``."""

    def __init__(self, title: str = "sweep", console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
        )
        self._task = self._progress.add_task(title, total=None, line="")

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, counts: Counts) -> None:
        self._progress.update(
            self._task, total=counts.total, completed=counts.done + counts.failed,
            line=counts.line(),
        )


def iter_rows(frame: pd.DataFrame) -> Iterator[list[str]]:
    """Rows of ``frame`` as strings, floats to 4 significant digits (for tables)."""
    for _, row in frame.iterrows():
        yield [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.tolist()]
