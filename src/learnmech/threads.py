"""Thread limits for small tensor work.

On tensors of a few thousand entries a second intra-op thread only adds contention (ten
times slower on a busy machine); :func:`one_torch_thread` runs a block with one torch
thread and restores the previous count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread (the previous count restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
