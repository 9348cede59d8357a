"""End the processes a driver started when the driver dies, however it dies.

A process that the driver cannot arm itself (a local Ray instance's GCS server, raylet and
agents, which outlive a ``kill -9`` of the driver by a minute or more) is watched from a
small separate process::

    python -m learnmech.watchdog DRIVER_PID ROOT_PID [ROOT_PID ...]

started by the driver, in its own session so that a signal to the driver's process group
does not end it first. Once every ``POLL`` seconds it reads the tree below the roots from
``/proc``, keeping every process it has seen there for as long as that process lives (some
roots end with the driver, and their children then move to ``init``), and checks its
parent. When its parent is no longer the driver (re-parented, also when the driver died
before the watchdog started) it sends SIGKILL to every process of that tree that is still
the same process (same start time: a reused pid is left alone), then exits. A driver that
ends normally stops its watchdog (:func:`stop`). Linux only (``/proc``); elsewhere the
watchdog finds no tree and kills nothing.
Imports only the standard library: it costs a few MB, not a torch import.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence

POLL = 0.5


def descendants(roots: Iterable[int]) -> set[int]:
    """Every process below ``roots`` in the process tree (the roots excluded)."""
    return set(_tree(roots, _processes())) - set(roots)


def _tree(roots: Iterable[int], table: dict[int, tuple[int, int]]) -> dict[int, int]:
    """The roots and their descendants in ``table``, each with its start time."""
    out = {pid: table[pid][1] for pid in roots if pid in table}
    frontier = set(out)
    while frontier:
        found = {pid for pid, (parent, _) in table.items() if parent in frontier} - set(out)
        out |= {pid: table[pid][1] for pid in found}
        frontier = found
    return out


def _processes() -> dict[int, tuple[int, int]]:
    """Every process's parent and start time (clock ticks since boot), from ``/proc``."""
    out: dict[int, tuple[int, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        out[int(entry)] = (int(fields[1]), int(fields[19]))
    return out


def start(roots: Sequence[int]) -> subprocess.Popen[bytes]:
    """A watchdog over ``roots`` for this process (stop it with :func:`stop`). Pass every
    process to watch that exists now, not only the direct children: a child that dies with
    this process before the watchdog's first reading would take its subtree out of sight."""
    return subprocess.Popen(
        [sys.executable, "-m", "learnmech.watchdog", str(os.getpid()), *map(str, roots)],
        start_new_session=True, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def stop(watchdog: subprocess.Popen[bytes]) -> None:
    """End a watchdog whose driver shut its processes down itself."""
    watchdog.kill()
    watchdog.wait()


def _kill(tree: dict[int, int]) -> None:
    """SIGKILL to each process of ``tree`` (pid → start time) that is still that process."""
    now = _processes()
    for pid, started in tree.items():
        if pid in now and now[pid][1] == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def main(argv: Sequence[str]) -> None:
    driver, roots = int(argv[0]), [int(a) for a in argv[1:]]
    tree = _tree(roots, _processes())
    while os.getppid() == driver:
        time.sleep(POLL)
        now = _processes()  # every process seen in the tree, while it lives, and new ones
        tree = {pid: t for pid, t in tree.items() if now.get(pid, (0, -1))[1] == t}
        tree |= _tree(roots, now)
    _kill(tree)


if __name__ == "__main__":
    main(sys.argv[1:])
