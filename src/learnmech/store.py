"""The run store: one SQLite file holding runs, their observables and law verdicts.

The file is ``learnmech.sqlite`` in the working directory unless ``LEARNMECH_STORE`` or
an explicit path says otherwise. Writes are transactions in WAL mode, so a process
killed mid-run (even with ``kill -9``) leaves the store readable: the run stays marked
``running`` and the next request for the same system trains it again and completes it.

A run is keyed by its system's run id. It is reused when it finished (``completed`` or
``diverged``) with the same schedule and at least the requested probes; otherwise it is
trained again and replaced. ``fresh=True`` always retrains.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from learnmech.errors import InputError, StoreError
from learnmech.probes import make_probes
from learnmech.system import System
from learnmech.train import Schedule, Series, Trajectory, train

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 1
DEFAULT_FILE = "learnmech.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    probes TEXT NOT NULL,
    schedule TEXT NOT NULL,
    steps_done INTEGER,
    diverged_at INTEGER,
    reason TEXT,
    started REAL NOT NULL,
    finished REAL,
    seconds REAL,
    versions TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS observables (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    steps TEXT NOT NULL,
    vals TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS verdicts (
    law_id TEXT NOT NULL,
    budget TEXT NOT NULL,
    created REAL NOT NULL,
    verdict TEXT NOT NULL,
    PRIMARY KEY (law_id, budget)
);
"""


def default_path() -> Path:
    """``$LEARNMECH_STORE`` if set, else ``./learnmech.sqlite``."""
    return Path(os.environ.get("LEARNMECH_STORE", DEFAULT_FILE))


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("learnmech", "torch", "numpy", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


class Store:
    """A run store backed by the SQLite file at ``path`` (created on first write).

    Args:
        path: the file; default :func:`default_path`.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        if self.path.is_dir():
            raise InputError("store", str(self.path), "a file path, not a directory")
        self._conn: sqlite3.Connection | None = None

    # ---- connection -----------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.executescript(_SCHEMA)
                row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            except sqlite3.DatabaseError as err:
                raise StoreError(f"{self.path} is not a learnmech store ({err})") from None
            if row is None:
                with conn:
                    conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                conn.close()
                raise StoreError(
                    f"{self.path} was written with store schema {row[0]}; this learnmech reads "
                    f"schema {SCHEMA_VERSION} or older. Upgrade learnmech or use another store."
                )
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self.conn as c:
            yield c

    # ---- runs -----------------------------------------------------------------------
    def run(
        self,
        system: System,
        probes: Sequence[str] = ("loss",),
        schedule: Schedule | None = None,
        *,
        fresh: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> Trajectory:
        """Train ``system`` with the named probes, or return the stored result.

        The run is marked ``running`` before training starts and replaced by the finished
        result in one transaction, so an interrupted run is redone on the next call.
        """
        schedule = schedule or Schedule()
        wanted = sorted(set(probes))
        if not fresh:
            cached = self._reusable(system, wanted, schedule)
            if cached is not None:
                return cached
        instruments = make_probes(wanted)  # bad probe names fail before anything is written
        self._begin(system, wanted, schedule, time.time())
        traj = train(system, instruments, schedule, progress=progress)
        self._save(traj)
        return traj

    def _reusable(
        self, system: System, probes: list[str], schedule: Schedule
    ) -> Trajectory | None:
        if not self.finished(system, probes, schedule):
            return None
        return self.load(system.run_id)

    def finished(self, system: System, probes: Sequence[str], schedule: Schedule) -> bool:
        """Whether a finished run (``completed`` or ``diverged``) of ``system`` with the
        same schedule and at least ``probes`` is stored, so :meth:`run` would reuse it."""
        row = self.conn.execute(
            "SELECT status, probes, schedule FROM runs WHERE run_id=?", (system.run_id,)
        ).fetchone()
        if row is None or row[0] not in ("completed", "diverged"):
            return False
        return set(probes) <= set(json.loads(row[1])) and json.loads(row[2]) == asdict(schedule)

    def save(self, traj: Trajectory, probes: Sequence[str], schedule: Schedule) -> None:
        """Store a trajectory trained elsewhere (a sweep worker, an ensemble) with the probe
        names and schedule it was measured with, replacing any earlier run of its system."""
        self._begin(traj.system, sorted(set(probes)), schedule, time.time() - traj.seconds)
        self._save(traj)

    def _begin(self, system: System, probes: list[str], schedule: Schedule,
               started: float) -> None:
        """Mark ``system``'s run as running, dropping anything stored of an earlier run."""
        with self._tx() as c:
            c.execute("DELETE FROM observables WHERE run_id=?", (system.run_id,))
            c.execute(
                "INSERT OR REPLACE INTO runs (run_id, spec, status, probes, schedule, started, "
                "versions) VALUES (?, ?, 'running', ?, ?, ?, ?)",
                (system.run_id, system.canonical_json(), json.dumps(probes),
                 json.dumps(asdict(schedule)), started, json.dumps(library_versions())),
            )

    def _save(self, traj: Trajectory) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET status=?, steps_done=?, diverged_at=?, reason=?, finished=?, "
                "seconds=? WHERE run_id=?",
                (
                    traj.status,
                    traj.steps_done,
                    traj.diverged_at,
                    traj.reason,
                    time.time(),
                    traj.seconds,
                    traj.run_id,
                ),
            )
            c.executemany(
                "INSERT OR REPLACE INTO observables VALUES (?, ?, ?, ?)",
                [
                    (traj.run_id, name, json.dumps(s.steps), json.dumps(s.values))
                    for name, s in traj.observables.items()
                ],
            )

    def load(self, run_id: str) -> Trajectory:
        """The stored trajectory of ``run_id`` (without model or data)."""
        row = self.conn.execute(
            "SELECT spec, status, steps_done, diverged_at, reason, seconds FROM runs "
            "WHERE run_id=?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise InputError("run_id", run_id, "the id of a stored run (see `learnmech runs`)")
        spec, status, steps_done, diverged_at, reason, seconds = row
        obs = {
            name: Series(json.loads(steps), json.loads(vals))
            for name, steps, vals in self.conn.execute(
                "SELECT name, steps, vals FROM observables WHERE run_id=?", (run_id,)
            )
        }
        return Trajectory(
            system=System.from_json(spec),
            status=status,
            steps_done=steps_done or 0,
            observables=obs,
            seconds=seconds or 0.0,
            diverged_at=diverged_at,
            reason=reason,
        )

    def runs(self) -> pd.DataFrame:
        """One row per run: id, status, timings, and the spec's fields flattened."""
        import pandas as pd

        rows = self.conn.execute(
            "SELECT run_id, status, steps_done, diverged_at, reason, started, finished, "
            "seconds, spec, versions FROM runs ORDER BY started"
        ).fetchall()
        cols = ["run_id", "status", "steps_done", "diverged_at", "reason", "started",
                "finished", "seconds"]
        records = []
        for r in rows:
            record: dict[str, Any] = dict(zip(cols, r[:8]))
            spec = pd.json_normalize(json.loads(r[8])).iloc[0]
            record.update({str(k): v for k, v in spec.items()})
            record["versions"] = r[9]
            records.append(record)
        return pd.DataFrame.from_records(records, columns=None if records else cols)

    def observables(self, run_id: str) -> pd.DataFrame:
        """Long format: columns ``name, step, value`` (vector observables: one row per
        entry with an ``index`` column)."""
        import pandas as pd

        records = []
        for name, s in self.load(run_id).observables.items():
            for step, value in zip(s.steps, s.values):
                if isinstance(value, list):
                    records += [(name, step, i, v) for i, v in enumerate(value)]
                else:
                    records.append((name, step, 0, value))
        return pd.DataFrame(records, columns=["name", "step", "index", "value"])

    # ---- verdicts -------------------------------------------------------------------
    def save_verdict(self, verdict: dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?)",
                (verdict["id"], verdict["budget"], time.time(), json.dumps(verdict)),
            )

    def verdicts(self) -> list[dict[str, Any]]:
        return [
            json.loads(v)
            for (v,) in self.conn.execute("SELECT verdict FROM verdicts ORDER BY law_id, budget")
        ]
