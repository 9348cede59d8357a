"""learnmech: a laboratory for learning mechanics (theory, instruments, laws).

The public surface lives in submodules; ``learnmech.verify_mup`` (the μP verifier of
:mod:`learnmech.coordcheck`) and ``learnmech.Monitor`` (theory twins beside a user's own
training loop, :mod:`learnmech.monitor`) are also available here, imported on first use.
"""

from typing import Any

__all__ = ["Monitor", "verify_mup"]


def __getattr__(name: str) -> Any:
    if name == "verify_mup":
        from learnmech.coordcheck import verify_mup

        return verify_mup
    if name == "Monitor":
        from learnmech.monitor import Monitor

        return Monitor
    raise AttributeError(f"module 'learnmech' has no attribute {name!r}")
