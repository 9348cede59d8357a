"""Data sets behind one contract: :func:`load` turns a data spec into a :class:`Dataset`.

Synthetic tasks (``linear_teacher``, ``hierarchy``, ``teacher_student``) are generated
from their seed; real ones (``digits``) are read from packages installed offline. Nothing
is downloaded at run time.
"""

from learnmech.data.base import Dataset, load, register

__all__ = ["Dataset", "load", "register"]
