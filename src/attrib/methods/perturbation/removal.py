"""Masked copies of the inputs, run through the core engine: the one hot path of removal methods.

A removal method describes ``per_sample`` perturbations of every sample by a function
``keep(sample, item) -> masks`` (1 where the feature of ``x`` stays, 0 where the reference
replaces it), shared by all samples or depending on the sample. The rows are
``N x per_sample x K`` (K references), evaluated by ``attrib.core.batching.run_chunks`` in
chunks of at most ``batch_size`` rows: each chunk builds its rows with one
``torch.lerp(reference, x, keep)`` per input, vectorised over the chunk (a sample and a
shared reference are read as broadcast views), and runs one forward. No row is built in
Python, nothing leaves the device, and memory is bounded by ``batch_size``.

``RemovalGame`` is the cooperative game of removal explanations (Covert, Lundberg and Lee
2021, "Explaining by Removing") on top of it: players are
groups of features (``Players``), and ``v(S)`` is the target score with the players outside
``S`` replaced by the references (averaged over them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from attrib.core.batching import Chunk, default_batch_size, run_chunks
from attrib.core.grad import forward_scores
from attrib.core.inputs import Inputs, batch_size_of, leaves, map_inputs
from attrib.core.target import OutputSelector, ResolvedTarget
from attrib.methods.perturbation.masks import Players
from attrib.methods.perturbation.references import References

__all__ = ["Keep", "RemovalGame", "masked_scores"]

# keep(sample, item) -> masks (rows, ...) of 1 (the feature of x stays) and 0 (the reference
# replaces it), float in the input's dtype or bool, that broadcast against each input's rows
Keep = Callable[[torch.Tensor, torch.Tensor], Inputs]


def masked_scores(
    model: nn.Module | Callable,
    inputs: Inputs,
    references: References,
    keep: Keep,
    per_sample: int,
    target: ResolvedTarget,
    output: OutputSelector,
    batch_size: int | None,
) -> torch.Tensor:
    """Target scores of every perturbation, ``(N, per_sample)`` float64, averaged over the
    references. Runs ``ceil(N * per_sample * K / batch_size)`` forwards."""
    n = batch_size_of(inputs)
    k = references.count
    if per_sample == 0:
        return torch.zeros(n, 0, dtype=torch.float64, device=leaves(inputs)[0].device)
    size = batch_size or default_batch_size(inputs, n * per_sample * k)

    rows_per_sample = per_sample * k
    # lerp needs x - reference finite: |x| + |reference| below the float maximum guarantees it
    # (values near the maximum would give inf and 0 * inf = NaN; then torch.where builds rows)
    # (integer inputs: rows by torch.where, which copies values exactly)
    exact_lerp = all(
        x.is_floating_point()
        and float(x.abs().max()) + float(b.abs().max()) <= torch.finfo(x.dtype).max
        for x, b in zip(leaves(inputs), leaves(references.stacked), strict=True)
    )

    def evaluate(chunk: Chunk) -> torch.Tensor:
        # rows of a perturbation's K references are neighbours: item = perturbation * K + ref
        item = torch.div(chunk.item, k, rounding_mode="floor")
        ref = chunk.item - item * k
        kept = keep(chunk.sample, item)
        # a chunk inside one sample reads that sample as a broadcast view (no copy per row)
        first = chunk.start // rows_per_sample
        single = (chunk.stop - 1) // rows_per_sample == first
        base = references.rows(ref, chunk.sample, first if single else None)

        def row(x: torch.Tensor, b: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            source = x[first : first + 1] if single else x[chunk.sample.to(x.device)]
            # lerp is exact at weights 0 and 1 (torch computes end - (end - start)(1 - w)
            # for w >= 1/2) and much faster than torch.where with broadcasting
            if not exact_lerp:
                return torch.where(m.bool(), source, b)
            return torch.lerp(b, source, m.to(x.dtype))

        rows = map_inputs(row, inputs, base, kept)
        return forward_scores(model, rows, target.rows(chunk.sample), output)[0]

    device = leaves(inputs)[0].device
    scores = run_chunks(
        evaluate, n, per_sample * k, size, "keep", device=device, automatic=batch_size is None
    )
    return scores.to(torch.float64).view(n, per_sample, k).mean(2)


@dataclass
class RemovalGame:
    """The game ``v(S) = mean_k f_c(x_S, (b_k)_{-S})`` of every sample of a batch at once.

    ``full`` is ``v(all players) = f_c(x)`` (from the forward at the clean input, which also
    resolved the target). ``rows`` counts the perturbations evaluated per sample (times the
    number of references), for the record.
    """

    model: nn.Module | Callable
    inputs: Inputs
    players: Players
    references: References
    target: ResolvedTarget
    output: OutputSelector
    batch_size: int | None
    full: torch.Tensor  # (N,) float64
    rows: int = field(default=0)

    @property
    def n(self) -> int:
        return batch_size_of(self.inputs)

    @property
    def device(self) -> torch.device:
        return leaves(self.inputs)[0].device

    @property
    def dtype(self) -> torch.dtype:
        return leaves(self.inputs)[0].dtype

    def values(
        self, coalitions: Callable[[torch.Tensor], torch.Tensor], count: int
    ) -> torch.Tensor:
        """``v`` at ``count`` coalitions shared by all samples: ``coalitions(index)`` gives the
        bool rows ``(len(index), P)`` of the coalitions ``index``. Returns ``(N, count)``."""

        def keep(sample: torch.Tensor, item: torch.Tensor) -> Inputs:
            return self.players.present(coalitions(item), sample, self.dtype)

        self.rows += count * self.references.count
        return masked_scores(
            self.model,
            self.inputs,
            self.references,
            keep,
            count,
            self.target,
            self.output,
            self.batch_size,
        )

    def values_of(self, table: torch.Tensor) -> torch.Tensor:
        """``v`` at the coalitions of a bool table ``(count, P)``: ``(N, count)``."""
        table = table.to(self.device)
        return self.values(lambda index: table[index], table.shape[0])
