"""``explain_generation`` against inseq (a test-only peer): gradient x input and integrated
gradients of a tiny GPT-2 built in code, on a forced continuation.

inseq explains step ``s`` with its own per-step loop: a forward over the prefix and the
gradient of the attributed function, here ``probability`` with ``logprob=True``, i.e.
``log p(x_p | x_<p)``, our score. Its raw attributions are per embedding dimension
(``target_attributions``, ``(tokens, steps, d)``); summing over ``d`` is our
``token_reduction="sum"`` (inseq's default aggregation would also normalise each step, which
we do not). Integrated gradients: captum's Gauss-Legendre nodes (``n_steps=8``) from inseq's
baseline, the ``unk`` token's embedding at every position, which we pass as ``baseline=``.
"""

from __future__ import annotations

import pytest
import torch

from attrib.text import explain_generation

inseq = pytest.importorskip("inseq")
transformers = pytest.importorskip("transformers")

from tests.text.test_generation import CONTINUATION, PROMPT, lm, tokenizer  # noqa: E402

# float64 model: the two sides differ by rounding only (different cut lengths and summation
# orders, ~1e-13); 1e-4 is the agreement the task asks for and far above that
TOL = 1e-4


def inseq_matrix(name: str, **kwargs) -> tuple[torch.Tensor, list[str]]:
    model, tok = lm(), tokenizer()
    peer = inseq.load_model(model, name, tokenizer=tok)
    out = peer.attribute(
        PROMPT,
        PROMPT + CONTINUATION,
        attributed_fn="probability",
        logprob=True,
        show_progress=False,
        **kwargs,
    )
    seq = out.sequence_attributions[0]
    raw = seq.target_attributions  # (tokens, steps, d)
    return raw.sum(-1).T.to(torch.float64), [t.token for t in seq.target]


@pytest.mark.parametrize(
    ("method", "ours", "settings"),
    [
        ("input_x_gradient", "gradient_x_input", {}),
        ("integrated_gradients", "integrated_gradients", {"n_steps": 8}),  # captum: Gauss-Legendre
    ],
)
def test_agrees_with_inseq(method, ours, settings):
    theirs, tokens = inseq_matrix(method, **settings)
    extra = {"steps": 8, "baseline": "[UNK]"} if ours == "integrated_gradients" else {}
    result = explain_generation(
        lm(), tokenizer(), PROMPT, continuation=CONTINUATION, method=ours, **extra
    )
    assert tokens == result.tokens
    defined = ~result.matrix.isnan()
    assert theirs.shape == result.matrix.shape
    assert not theirs[defined].isnan().any()  # inseq leaves the undefined entries NaN too
    scale = float(result.matrix[defined].abs().max())
    torch.testing.assert_close(theirs[defined], result.matrix[defined], rtol=0, atol=TOL * scale)
