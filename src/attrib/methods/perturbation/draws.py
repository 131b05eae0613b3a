"""A draw of coalitions for a surrogate: the rows, their expansion weights, and their design.

A sampled surrogate (``attrib.methods.perturbation.kernel``) estimates the weighted sums of
the whole game, ``sum_z pi(z) (...)``, from the coalitions it evaluated. What it needs of
the draw, besides the rows, is how to expand each row to the population (its importance or
Horvitz-Thompson factor) and, for the standard error, how the rows were drawn:

- rows come in *units* (a coalition, or a coalition and its complement), drawn together;
- units come from *strata*: the units of stratum ``k`` are a simple random sample without
  replacement of ``n_k`` of its ``N_k`` units (finite ``N_k``; a fully enumerated stratum
  has ``n_k = N_k``), or i.i.d. draws (``N_k = inf``).

The expansion of a row of stratum ``k`` is ``base * N_k / n_k`` (``base`` alone for i.i.d.
draws, where it is ``1 / q(z)`` up to a constant); for strata by coalition size it is also
given relative to the coalitions of that size (``size_expansion``), for kernels whose mass
per size is known in closed form (the Shapley kernel's: ``(P - 1) / (s (P - s))``).
Units are ordered so that every prefix of them is itself a draw of this design at a smaller
budget (``prefix``): a surrogate that stops early (``tolerance=``) reuses every row it
evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Draw"]


@dataclass(frozen=True)
class Draw:
    """Coalitions ``table`` ``(M, P)`` bool in units (``unit`` ``(M,)``: 0, 0, 1, 1, ... and
    non-decreasing), the stratum of each unit (``stratum`` ``(U,)``), the population of each
    stratum in units (``population`` ``(K,)`` float64, ``inf`` for i.i.d. draws) and a base
    weight per row (``base`` ``(M,)``). ``enumerated``: the table is every coalition the
    sampler can draw (then the estimate is exact)."""

    table: torch.Tensor
    unit: torch.Tensor
    stratum: torch.Tensor
    population: torch.Tensor
    base: torch.Tensor
    enumerated: bool = False
    size_share: torch.Tensor | None = None

    @classmethod
    def iid(
        cls, table: torch.Tensor, base: torch.Tensor, pairs: bool, enumerated: bool = False
    ) -> Draw:
        """Rows drawn independently (``pairs``: in complementary pairs, each pair a unit);
        ``enumerated``: every coalition, once (one stratum, all of it)."""
        m = table.shape[0]
        unit = torch.arange(m) // 2 if pairs else torch.arange(m)
        units = int(unit[-1]) + 1 if m else 0
        population = torch.tensor([float(units) if enumerated else math.inf], dtype=torch.float64)
        return cls(
            table,
            unit,
            torch.zeros(units, dtype=torch.long),
            population,
            base.to(torch.float64),
            enumerated,
        )

    @property
    def units(self) -> int:
        return int(self.stratum.shape[0])

    def counts(self) -> torch.Tensor:
        """Units drawn per stratum, ``n_k`` ``(K,)`` float64."""
        k = self.population.shape[0]
        return torch.bincount(self.stratum, minlength=k).to(torch.float64)

    def fractions(self) -> torch.Tensor:
        """Sampled fraction ``n_k / N_k`` per stratum (0 for i.i.d. draws)."""
        counts = self.counts()
        return torch.where(
            torch.isinf(self.population), torch.zeros_like(counts), counts / self.population
        )

    def expansion(self) -> torch.Tensor:
        """Per row: ``base * N_k / n_k`` (``base`` for i.i.d. strata)."""
        counts = self.counts().clamp(min=1)
        factor = torch.where(
            torch.isinf(self.population), torch.ones_like(counts), self.population / counts
        )
        return self.base * factor[self.stratum[self.unit]]

    def size_expansion(self) -> torch.Tensor | None:
        """Per row, for strata of coalitions of one size ``s`` (or two, ``s`` and ``P - s``):
        ``(N_k / C(P, s)) / n_k``, the expansion relative to the coalitions of the row's
        size (``size_share`` holds ``N_k / C(P, s)``). A kernel's mass on a whole size times
        it is ``pi(z) N_k / n_k`` computed without ``C(P, s)``, which overflows float64
        beyond about 1,000 players. ``None`` for other draws."""
        if self.size_share is None:
            return None
        counts = self.counts().clamp(min=1)
        return (self.size_share / counts)[self.stratum[self.unit]]

    def prefix(self, units: int) -> Draw:
        """The draw of the first ``units`` units (a draw of the same design, fewer units)."""
        if units >= self.units:
            return self
        rows = int((self.unit < units).sum())
        return Draw(
            self.table[:rows],
            self.unit[:rows],
            self.stratum[:units],
            self.population,
            self.base[:rows],
            False,
            self.size_share,
        )
