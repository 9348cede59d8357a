"""Errors that name the field, the value and what is allowed.

Every error a user can cause by bad input is a :class:`InputError`; the CLI turns it into
one message and exit code 2.
"""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """Bad input: a spec field, a law id, a file, a budget.

    Attributes:
        field: dotted path of the offending field (``"learning_rule.lr"``), or a short
            name such as ``"law"`` or ``"file"``.
        value: the value that was given.
        allowed: what would have been accepted, in words.
    """

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: got {value!r}; allowed: {allowed}")


class StoreError(RuntimeError):
    """The run store cannot be used (newer schema, unreadable file)."""


class DataUnavailableError(RuntimeError):
    """An offline data set is not installed; the message carries the install hint."""
