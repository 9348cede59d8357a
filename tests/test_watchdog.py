"""The watchdog ends a killed driver's processes, grandchildren included, even when a root
dies with the driver and its children move to init (as Ray's raylet and agents do)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from learnmech import watchdog

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

DRIVER = """
import subprocess, sys, time
from learnmech import watchdog
root = subprocess.Popen(["bash", "-c", "sleep 300 & echo $! ; wait"], stdout=subprocess.PIPE,
                        text=True)
grandchild = int(root.stdout.readline())
watchdog.start([root.pid])
print(root.pid, grandchild, flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_a_killed_driver_takes_its_process_tree_down():
    src = str(Path(watchdog.__file__).parents[1])
    env = os.environ | {"PYTHONPATH": src}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True,
                              env=env)
    root, grandchild = map(int, driver.stdout.readline().split())
    time.sleep(2 * watchdog.POLL)  # the watchdog has read the tree
    assert grandchild in watchdog.descendants([root])
    driver.send_signal(signal.SIGKILL)
    os.kill(root, signal.SIGKILL)  # a root that dies with the driver: its child moves to init
    driver.wait()
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


def test_a_stopped_watchdog_kills_nothing():
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        dog = watchdog.start([sleeper.pid])
        time.sleep(2 * watchdog.POLL)
        watchdog.stop(dog)
        time.sleep(2 * watchdog.POLL)
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
