"""Rows per forward that fit in memory: halve on out-of-memory, remember what worked.

A run sets no batch size by default (each method and metric picks one from the input size).
When a forward runs out of memory (``torch.OutOfMemoryError`` on a GPU, the CPU allocator's
"can't allocate memory"), the shard is tried again with half the rows per forward, down to
one; the size that worked is kept for the rest of the run and said once.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import TypeVar

import torch

from attrib.core.memory import is_out_of_memory

__all__ = ["RowBudget", "is_out_of_memory"]

T = TypeVar("T")


class RowBudget:
    """The most rows per forward (``None``: the methods' own choice) and its halving.

    ``say`` receives one sentence the first time the budget shrinks.
    """

    def __init__(self, rows: int | None, say: Callable[[str], None] | None = None) -> None:
        self.rows = rows
        self.say = say
        self._said = False

    def run(self, work: Callable[[int | None], T], natural: int) -> T:
        """``work(rows)``, halving ``rows`` on out-of-memory until it fits (``natural``: the
        rows one forward would take with no limit, where halving starts)."""
        while True:
            try:
                return work(self.rows)
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                current = self.rows if self.rows is not None else max(1, natural)
                if current <= 1:
                    raise
                del error  # the traceback holds the failed forward's tensors
                gc.collect()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                self.rows = current // 2
                if self.say is not None and not self._said:
                    self._said = True
                    self.say(
                        f"Out of memory: now at most {self.rows} rows per forward "
                        "(--batch-size sets it from the start)."
                    )
