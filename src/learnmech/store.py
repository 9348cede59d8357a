"""The run store: one SQLite file holding runs, their observables and law verdicts.

The file is ``learnmech.sqlite`` in the working directory unless ``LEARNMECH_STORE`` or
an explicit path says otherwise.

**Records.** A run is stored as a *record*: one system (its run id, the spec's content
hash) trained with one set of probes on one schedule. Records of the same system with
other probes or another schedule sit side by side; only a record with the very same
system, probes and schedule is replaced, and only once its successor has finished.

**Never losing data.** A run first writes a new record marked ``running`` with its owner
(host and process id) and a heartbeat, trains, then in one transaction stores the
observables, marks the record finished and drops the record it supersedes. A run that
raises leaves its record ``failed`` (with the error) and a killed one leaves it
``running`` until the next process that opens the store sees its owner dead (on this
host: its process is gone; on another: no heartbeat for :data:`LEASE_SECONDS`) and marks
it ``interrupted``. Earlier finished records are never touched by either.

**Concurrency.** Claims are ``BEGIN IMMEDIATE`` transactions in WAL mode: of two
processes asking for the same record at once, one trains it and the other waits for its
result (or takes over if the owner dies), so a record is trained once.

A record is reused when it finished (``completed`` or ``diverged``) with the same
schedule and at least the requested probes. ``fresh=True`` always trains a new record.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sqlite3
import sys
import threading
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
from learnmech.train import Schedule, Series, Trajectory, check_system, train

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 2
DEFAULT_FILE = "learnmech.sqlite"
#: Seconds without a heartbeat after which a ``running`` record counts as abandoned.
LEASE_SECONDS = 60.0
#: Seconds between heartbeats of a live owner.
HEARTBEAT_SECONDS = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    record INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
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
    versions TEXT NOT NULL,
    owner TEXT,
    heartbeat REAL
);
CREATE INDEX IF NOT EXISTS runs_by_system ON runs (run_id, status);
CREATE TABLE IF NOT EXISTS observables (
    record INTEGER NOT NULL REFERENCES runs(record) ON DELETE CASCADE,
    name TEXT NOT NULL,
    steps TEXT NOT NULL,
    vals TEXT NOT NULL,
    PRIMARY KEY (record, name)
);
CREATE TABLE IF NOT EXISTS verdicts (
    law_id TEXT NOT NULL,
    budget TEXT NOT NULL,
    created REAL NOT NULL,
    verdict TEXT NOT NULL,
    PRIMARY KEY (law_id, budget)
);
"""

# schema 1 kept one row per run id; its rows become records (``running`` ones were left
# by a process that is gone: they become ``interrupted``)
_MIGRATE_FROM_1 = """
ALTER TABLE runs RENAME TO runs_v1;
ALTER TABLE observables RENAME TO observables_v1;
""" + _SCHEMA + """
INSERT INTO runs (run_id, spec, status, probes, schedule, steps_done, diverged_at, reason,
                  started, finished, seconds, versions)
    SELECT run_id, spec, CASE status WHEN 'running' THEN 'interrupted' ELSE status END,
           probes, schedule, steps_done, diverged_at, reason, started, finished, seconds,
           versions FROM runs_v1 ORDER BY started;
INSERT INTO observables (record, name, steps, vals)
    SELECT r.record, o.name, o.steps, o.vals FROM observables_v1 o JOIN runs r USING (run_id);
DROP TABLE observables_v1;
DROP TABLE runs_v1;
DROP TABLE IF EXISTS sweep_failures;
UPDATE meta SET value='2' WHERE key='schema';
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


def owner_id() -> str:
    """This process as a record owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(owner: str | None) -> bool | None:
    """Whether the process ``host:pid`` runs; ``None`` when it is on another host."""
    if not owner:
        return False
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return None
    stat = Path(f"/proc/{pid}/stat")
    if sys.platform.startswith("linux") and stat.exists():
        try:  # a killed child not yet reaped by its parent is a zombie: dead
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    return True


class Lease:
    """Heartbeats for the records a process owns, from a daemon thread with its own
    connection: ``with Lease(path) as lease: lease.add(record)``."""

    def __init__(self, path: Path, every: float = HEARTBEAT_SECONDS) -> None:
        self.path = path
        self.every = every
        self.records: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="store-lease")

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def add(self, record: int) -> None:
        self.records.add(record)

    def discard(self, record: int) -> None:
        self.records.discard(record)

    def _beat(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            while not self._stop.wait(self.every):
                held = list(self.records)
                if held:
                    with conn:
                        conn.executemany(
                            "UPDATE runs SET heartbeat=? WHERE record=? AND status='running'",
                            [(time.time(), r) for r in held],
                        )
        except sqlite3.Error:  # the store went away; the claims then lapse
            pass
        finally:
            conn.close()


def _write_ahead_log(conn: sqlite3.Connection, timeout: float = 30.0) -> None:
    """Put the database in WAL mode. Switching needs the file to itself, and SQLite answers
    "database is locked" at once, without the connection's busy timeout, while another
    process holds it (two drivers opening a new store together): retry for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


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
        """The connection (autocommit; writes go through :meth:`transaction`)."""
        if self._conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                _write_ahead_log(conn)
                self._open(conn)
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.DatabaseError as err:
                raise StoreError(f"{self.path} is not a learnmech store ({err})") from None
            self._conn = conn
            self.reclaim()
        return self._conn

    def _open(self, conn: sqlite3.Connection) -> None:
        """Create, check or migrate the schema."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, "
                         "value TEXT NOT NULL)")
            row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            tables = {t for (t,) in conn.execute("SELECT name FROM sqlite_master "
                                                 "WHERE type='table'")}
            version = int(row[0]) if row is not None else None
            if version is None and "runs" in tables:
                raise StoreError(f"{self.path} holds a 'runs' table but no learnmech schema "
                                 "version; use another store file")
            if version is not None and version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written with store schema {version}; this learnmech "
                    f"reads schema {SCHEMA_VERSION} or older. Upgrade learnmech or use "
                    "another store."
                )
            if version == 1:
                for statement in _MIGRATE_FROM_1.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            elif version is None:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (``BEGIN IMMEDIATE``): concurrent writers
        wait for each other, so a read-then-write inside it is atomic.

        ``BEGIN`` sits inside the ``try``: a Ctrl-C raised the moment it returns (Python
        raises a pending signal right after a call) would otherwise leave the transaction
        open and the store locked, and every later write fail."""
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
            yield c
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def reclaim(self) -> int:
        """Mark ``interrupted`` every ``running`` record whose owner is dead (see
        :func:`_dead`); returns how many."""
        now = time.time()
        with self.transaction() as c:
            dead = [
                (f"owner {owner or 'unknown'} stopped before finishing", record)
                for record, owner, beat in c.execute(
                    "SELECT record, owner, heartbeat FROM runs WHERE status='running'")
                if _dead(owner, beat, now)
            ]
            c.executemany("UPDATE runs SET status='interrupted', reason=? WHERE record=?", dead)
        return len(dead)

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

        A new record is claimed before training and finished in one transaction after
        it; while another live process trains the same record, this call waits for it.
        """
        schedule = schedule or Schedule()
        wanted = sorted(set(probes))
        instruments = make_probes(wanted)  # bad probe names fail before anything is written
        check_system(system)  # so do a missing device and a spec beyond the memory budget
        while True:
            claim = self.claim(system, wanted, schedule, fresh=fresh)
            if isinstance(claim, Trajectory):
                return claim
            if claim is not None:
                break
            time.sleep(0.2)  # another process trains this record
            self.reclaim()
        with Lease(self.path) as lease:
            lease.add(claim)
            try:
                traj = train(system, instruments, schedule, progress=progress)
            except BaseException as exc:
                self.fail(claim, f"{type(exc).__name__}: {exc}",
                          "interrupted" if not isinstance(exc, Exception) else "failed")
                raise
            self.finish(claim, traj)
        return traj

    def claim(
        self, system: System, probes: Sequence[str], schedule: Schedule, *, fresh: bool = False
    ) -> Trajectory | int | None:
        """Atomically: the stored trajectory if a reusable record exists (unless
        ``fresh``); ``None`` if a live process is training the same record; else a new
        ``running`` record owned by this process, whose number is returned."""
        wanted = sorted(set(probes))
        found = None
        with self.transaction() as c:
            if not fresh:
                found = self._finished_record(system.run_id, wanted, schedule)
                busy = found is None and c.execute(
                    "SELECT 1 FROM runs WHERE run_id=? AND status='running' AND probes=? "
                    "AND schedule=?",
                    (system.run_id, json.dumps(wanted), json.dumps(asdict(schedule))),
                ).fetchone() is not None
                if busy:
                    return None
            if found is None:
                return self._insert(c, system, wanted, schedule, "running", time.time())
        return self.load_record(found)

    def _insert(self, c: sqlite3.Connection, system: System, probes: list[str],
                schedule: Schedule, status: str, started: float) -> int:
        cur = c.execute(
            "INSERT INTO runs (run_id, spec, status, probes, schedule, started, versions, "
            "owner, heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (system.run_id, system.canonical_json(), status, json.dumps(probes),
             json.dumps(asdict(schedule)), started, json.dumps(library_versions()),
             owner_id(), time.time()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish(self, record: int, traj: Trajectory) -> None:
        """Store ``traj``'s observables in the claimed ``record``, mark it finished and
        drop the records of the same system, probes and schedule it supersedes."""
        with self.transaction() as c:
            self._complete(c, record, traj)

    def _complete(self, c: sqlite3.Connection, record: int, traj: Trajectory) -> None:
        c.execute(
            "UPDATE runs SET status=?, steps_done=?, diverged_at=?, reason=?, finished=?, "
            "seconds=?, heartbeat=NULL WHERE record=?",
            (traj.status, traj.steps_done, traj.diverged_at, traj.reason, time.time(),
             traj.seconds, record),
        )
        c.executemany(
            "INSERT OR REPLACE INTO observables VALUES (?, ?, ?, ?)",
            [(record, name, json.dumps(s.steps), json.dumps(s.values))
             for name, s in traj.observables.items()],
        )
        c.execute(
            "DELETE FROM runs WHERE record<>? AND status<>'running' AND (run_id, probes, "
            "schedule) = (SELECT run_id, probes, schedule FROM runs WHERE record=?)",
            (record, record),
        )

    def fail(self, record: int, error: str, status: str = "failed") -> None:
        """Mark the claimed ``record`` as ``failed`` (or ``interrupted``) with ``error``."""
        with self.transaction() as c:
            c.execute("UPDATE runs SET status=?, reason=?, heartbeat=NULL WHERE record=?",
                      (status, error, record))

    def _finished_record(self, run_id: str, probes: Sequence[str],
                         schedule: Schedule) -> int | None:
        """The newest finished record of ``run_id`` with ``schedule`` and ⊇ ``probes``."""
        rows = self.conn.execute(
            "SELECT record, probes FROM runs WHERE run_id=? AND status IN ('completed', "
            "'diverged') AND schedule=? ORDER BY finished DESC, record DESC",
            (run_id, json.dumps(asdict(schedule))),
        ).fetchall()
        return next((r for r, p in rows if set(probes) <= set(json.loads(p))), None)

    def finished(self, system: System, probes: Sequence[str], schedule: Schedule) -> bool:
        """Whether a finished record (``completed`` or ``diverged``) of ``system`` with the
        same schedule and at least ``probes`` is stored, so :meth:`run` would reuse it."""
        return self._finished_record(system.run_id, probes, schedule) is not None

    def status(self, system: System, probes: Sequence[str], schedule: Schedule) -> str:
        """``completed``/``diverged`` if :meth:`finished`, else the status of the newest
        record of the same system, probes and schedule (``running``, ``failed``,
        ``interrupted``), else ``pending``."""
        found = self._finished_record(system.run_id, probes, schedule)
        if found is not None:
            row = self.conn.execute("SELECT status FROM runs WHERE record=?", (found,))
            return str(row.fetchone()[0])
        row = self.conn.execute(
            "SELECT status FROM runs WHERE run_id=? AND probes=? AND schedule=? "
            "ORDER BY record DESC",
            (system.run_id, json.dumps(sorted(set(probes))), json.dumps(asdict(schedule))),
        ).fetchone()
        return str(row[0]) if row is not None else "pending"

    def save(self, traj: Trajectory, probes: Sequence[str], schedule: Schedule) -> None:
        """Store a trajectory trained elsewhere (an ensemble) with the probe names and
        schedule it was measured with, as a new record superseding only a record of the
        same system, probes and schedule."""
        with self.transaction() as c:
            record = self._insert(c, traj.system, sorted(set(probes)), schedule, "running",
                                  time.time() - traj.seconds)
            self._complete(c, record, traj)

    def load(self, run_id: str, probes: Sequence[str] | None = None,
             schedule: Schedule | None = None) -> Trajectory:
        """The stored trajectory of ``run_id`` (without model or data): its newest
        finished record (with ``schedule`` and at least ``probes`` when given), else its
        newest record of any status."""
        rows = self.conn.execute(
            "SELECT record, probes, schedule FROM runs WHERE run_id=? "
            "ORDER BY status IN ('completed', 'diverged') DESC, record DESC", (run_id,),
        ).fetchall()
        for record, recorded, sched in rows:
            if probes is not None and not set(probes) <= set(json.loads(recorded)):
                continue
            if schedule is not None and json.loads(sched) != asdict(schedule):
                continue
            return self.load_record(record)
        raise InputError("run_id", run_id, "the id of a stored run (see `learnmech runs`)")

    def resolve(self, prefix: str) -> str:
        """The stored run id that is ``prefix`` or the only one starting with it."""
        ids = sorted({r for (r,) in self.conn.execute(
            "SELECT DISTINCT run_id FROM runs WHERE substr(run_id, 1, ?) = ?",
            (len(prefix), prefix))})
        if prefix in ids:
            return prefix
        if len(ids) == 1:
            return ids[0]
        raise InputError("run_id", prefix, "the id of a stored run or a prefix of exactly one"
                         + (f" (it starts {len(ids)}: {', '.join(ids[:5])}…)" if ids else
                            " (see `learnmech runs`)"))

    def load_record(self, record: int) -> Trajectory:
        """The trajectory of one record (see the ``record`` column of :meth:`runs`)."""
        row = self.conn.execute(
            "SELECT spec, status, steps_done, diverged_at, reason, seconds FROM runs "
            "WHERE record=?",
            (record,),
        ).fetchone()
        if row is None:
            raise InputError("record", record, "the number of a stored record")
        spec, status, steps_done, diverged_at, reason, seconds = row
        obs = {
            name: Series(json.loads(steps), json.loads(vals))
            for name, steps, vals in self.conn.execute(
                "SELECT name, steps, vals FROM observables WHERE record=?", (record,)
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
        """One row per record: record number, run id, status, what was recorded
        (``probes``, ``schedule``), timings, and the spec's fields flattened."""
        import pandas as pd

        rows = self.conn.execute(
            "SELECT record, run_id, status, probes, schedule, steps_done, diverged_at, reason, "
            "started, finished, seconds, owner, spec, versions FROM runs ORDER BY record"
        ).fetchall()
        cols = ["record", "run_id", "status", "probes", "schedule", "steps_done",
                "diverged_at", "reason", "started", "finished", "seconds", "owner"]
        records = []
        for r in rows:
            record: dict[str, Any] = dict(zip(cols, r[:12]))
            spec = pd.json_normalize(json.loads(r[12])).iloc[0]
            record.update({str(k): v for k, v in spec.items()})
            record["versions"] = r[13]
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
        with self.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?)",
                (verdict["id"], verdict["budget"], time.time(), json.dumps(verdict)),
            )

    def verdicts(self) -> list[dict[str, Any]]:
        return [
            json.loads(v)
            for (v,) in self.conn.execute("SELECT verdict FROM verdicts ORDER BY law_id, budget")
        ]


def _dead(owner: str | None, heartbeat: float | None, now: float) -> bool:
    """Whether a ``running`` record's owner is gone: on this host, whether its process
    is; on another host, no heartbeat for :data:`LEASE_SECONDS`."""
    alive = _alive(owner)
    if alive is not None:
        return not alive
    return heartbeat is None or now - heartbeat > LEASE_SECONDS
