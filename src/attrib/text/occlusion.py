"""Leave-one-out occlusion of tokens, through the core engine.

Li, Monroe and Jurafsky 2016 ("Understanding Neural Networks through Representation
Erasure") score a token by what the output loses without it:

    R_t = f(E) - f(E with row t replaced by E'_t),

one forward per token. Here ``E'_t`` is the baseline embedding (``[PAD]``, ``[MASK]``,
``[UNK]`` or zero; ``attrib.text.baselines``), so the sequence keeps its length and
positions. The rows (one occluded copy per token) go through ``run_chunks`` in chunks of at
most ``batch_size``.

``R_t`` is a score per token; ``Attribution.values`` has the input's shape ``(N, L, d)``
and holds ``R_t / d`` in each of token ``t``'s dimensions, so that the ``"sum"`` reduction
returns ``R_t`` exactly (other reductions rescale it). Positions where the baseline equals
the input (special tokens kept fixed) would change nothing: they get 0 and cost no forward.
"""

from __future__ import annotations

import torch

from attrib.core.batching import Chunk, default_batch_size, run_chunks
from attrib.core.errors import SettingError
from attrib.core.grad import batched_forward_scores, forward_scores
from attrib.core.inputs import Inputs
from attrib.core.result import Attribution
from attrib.core.settings import Anything, Setting
from attrib.core.target import Target
from attrib.methods.base import Method
from attrib.methods.baselines import make_baselines
from attrib.methods.catalogue import register

__all__ = ["LeaveOneOut"]


@register(
    family="text",
    paper="Li, Monroe and Jurafsky 2016",
    short="score drop when one token is erased",
    summary="The drop of the score when one token's embedding is replaced by the baseline "
    "token's (one forward per token).",
    formula="R_t = S_c(E) − S_c(E with row t replaced by E'_t)",
    signed=True,
    inputs="tokens",
)
class LeaveOneOut(Method):
    """Leave-one-out occlusion (Li, Monroe and Jurafsky 2016) over the tokens of ``(N, L, d)``
    embeddings: ``R_t = f(E) - f(E with row t replaced by E'_t)``.

    Args:
        baseline: the embedding that replaces an occluded token: a number, a tensor of the
            input's shape, or of one sample's shape ``(L, d)`` (what ``explain_tokens``
            passes: the baseline token at ordinary positions, the real special tokens).
    """

    baseline = Setting(0.0, Anything("a number or a tensor of the input's or one sample's shape"))

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3:
            raise SettingError(
                "x",
                "token embeddings (N, L, d)",
                inputs,
                "LeaveOneOut occludes one token (one row of L) at a time.",
            )
        x = inputs
        base = make_baselines(self.baseline, x)[0]
        assert isinstance(base, torch.Tensor)  # x is one tensor
        n, length, d = x.shape
        pairs = torch.nonzero((x != base).any(-1))  # (P, 2): text, position
        scores, output, resolved = batched_forward_scores(
            self.model, x, target, self.output, self.batch_size
        )
        diff = torch.zeros(n, length, dtype=torch.float64, device=x.device)
        if len(pairs):
            size = self.batch_size or default_batch_size(x, len(pairs))

            def evaluate(chunk: Chunk) -> torch.Tensor:
                text, position = pairs[chunk.sample, 0], pairs[chunk.sample, 1]
                rows = x[text].clone()
                rows[torch.arange(len(chunk), device=x.device), position] = base[text, position]
                occluded, _, _ = forward_scores(self.model, rows, resolved.rows(text), self.output)
                return occluded.to(torch.float64)

            occluded = run_chunks(
                evaluate,
                len(pairs),
                1,
                size,
                "keep",
                device=x.device,
                origin=pairs[:, 0],
                automatic=self.batch_size is None,
            )
            text, position = pairs[:, 0], pairs[:, 1]
            diff[text, position] = scores.to(torch.float64)[text] - occluded[:, 0]
        values = (diff / d).to(x.dtype).unsqueeze(-1).expand(n, length, d).contiguous()
        return self.result(
            values,
            resolved.public,
            output,
            baseline=base,
            channel_dim=2,
            evaluations=len(pairs),
        )
