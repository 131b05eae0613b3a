"""Attributions for generated text (``explain_generation``) on a tiny GPT-2 built in code.

The model is ``GPT2LMHeadModel`` from a small ``GPT2Config`` in float64 (random weights, no
download) and the tokenizer a word-level ``tokenizers`` model. Every number is checked
against a literal per-step loop written here: for step ``s`` (token position ``p``), re-run
the model on the prefix ``x_0 .. x_{p-1}`` alone, take ``log_softmax`` of its last logits at
``x_p`` and the gradient with respect to the prefix's embeddings.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attrib.core.errors import AttribError
from attrib.text import (
    ContinuationSplitError,
    EmptyTextError,
    NotALanguageModelError,
    TextTooLongError,
    explain_generation,
    explain_generations,
)

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

EOS = "<|endoftext|>"
WORDS = ["[UNK]", EOS, "good", "bad", "film", "a", "the", "plot", "was", "dull", "<b>&"]
WORDS += [f"w{i}" for i in range(21)]
PROMPT = "the plot was"
CONTINUATION = " dull a good film the bad plot"  # 7 steps after 3 prompt tokens
CONTEXT = 16


def tokenizer():
    vocab = {w: i for i, w in enumerate(WORDS)}
    inner = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    inner.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=inner, eos_token=EOS, bos_token=EOS, unk_token="[UNK]"
    )


def lm(seed: int = 0, attn: str = "eager"):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=len(WORDS),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=CONTEXT,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=1,
        eos_token_id=1,
        attn_implementation=attn,
    )
    return transformers.GPT2LMHeadModel(config).double().eval()


@pytest.fixture(scope="module")
def model():
    return lm()


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def prefix_score(model, embeds: torch.Tensor, p: int, target: int, contrast: int | None = None):
    """The literal step score on the prefix alone: log p(x_p | x_<p) (- log p(c | x_<p))."""
    logits = model(inputs_embeds=embeds[None, :p]).logits[0, -1]
    logp = torch.log_softmax(logits, -1)
    return logp[target] - (logp[contrast] if contrast is not None else 0.0)


def reference(model, ids: list[int], start: int, method: str, contrast=None, steps: int = 16):
    """The per-step loop: for each step a new forward on its prefix and its own backward."""
    embeds = model.get_input_embeddings().weight[torch.tensor(ids)].detach()
    rows = torch.full((len(ids) - start, len(ids)), float("nan"), dtype=torch.float64)
    for s, p in enumerate(range(start, len(ids))):
        c = None if contrast is None else contrast[s]
        if method == "leave_one_out":
            with torch.no_grad():
                full = prefix_score(model, embeds, p, ids[p], c)
                for j in range(p):
                    occluded = embeds.clone()
                    occluded[j] = 0.0
                    rows[s, j] = full - prefix_score(model, occluded, p, ids[p], c)
            continue
        if method == "integrated_gradients":
            # Gauss-Legendre nodes on [0, 1] from numpy, independently of attrib's rule table
            import numpy as np

            nodes, weights = np.polynomial.legendre.leggauss(steps)
            total = torch.zeros_like(embeds[:p])
            for a, w in zip((nodes + 1) / 2, weights / 2, strict=True):
                x = (float(a) * embeds[:p]).requires_grad_(True)
                (g,) = torch.autograd.grad(prefix_score(model, x, p, ids[p], c), x)
                total += float(w) * g
            rows[s, :p] = (total * embeds[:p]).sum(-1)
            continue
        x = embeds[:p].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(prefix_score(model, x, p, ids[p], c), x)
        rows[s, :p] = g.norm(dim=-1) if method == "saliency" else (g * x.detach()).sum(-1)
    return rows


def ids_of(tok, text: str) -> list[int]:
    return list(tok(text)["input_ids"])


def close(a: torch.Tensor, b: torch.Tensor, tol: float) -> None:
    assert torch.equal(a.isnan(), b.isnan())
    torch.testing.assert_close(a.nan_to_num(), b.nan_to_num(), rtol=0.0, atol=tol)


# float64 model, values O(1): a sum over 32 dims of products of rounded numbers through 2
# layers differs by a few hundred ulps (1e-13) between batch compositions and cut lengths;
# 1e-10 leaves room and still catches any real difference (values are ~1e-2 .. 6; a
# scaling of the values by 1 + 1e-7 fails these tests)
TOL = 1e-10


@pytest.mark.parametrize("method", ["gradient_x_input", "saliency"])
def test_matrix_equals_the_per_step_loop(model, tok, method):
    result = explain_generation(model, tok, PROMPT, continuation=CONTINUATION, method=method)
    ids = ids_of(tok, PROMPT + CONTINUATION)
    assert result.token_ids.tolist() == ids and result.prompt_length == 3
    assert result.matrix.shape == (7, 10)
    close(result.matrix, reference(model, ids, 3, method), TOL)
    assert result.params["token_reduction"] == ("l2" if method == "saliency" else "sum")
    assert_scores(model, result, ids)


def assert_scores(model, result, ids: list[int]) -> None:
    """``result.scores`` are the steps' log-probabilities, each from its prefix alone."""
    embeds = model.get_input_embeddings().weight[torch.tensor(ids)].detach()
    with torch.no_grad():
        expected = [prefix_score(model, embeds, p, ids[p]) for p in range(3, len(ids))]
    torch.testing.assert_close(result.scores, torch.stack(expected), rtol=0, atol=TOL)


def test_sdpa_attention_gives_the_loop_too(tok):
    # the batched backward runs through scaled_dot_product_attention's backward under vmap
    model = lm(attn="sdpa")
    result = explain_generation(model, tok, PROMPT, continuation=CONTINUATION, batch_size=4)
    ids = ids_of(tok, PROMPT + CONTINUATION)
    close(result.matrix, reference(model, ids, 3, "gradient_x_input"), TOL)


def test_integrated_gradients_equal_the_loop_and_complete(model, tok):
    result = explain_generation(
        model, tok, PROMPT, continuation=" dull a good", method="integrated_gradients", steps=16
    )
    ids = ids_of(tok, PROMPT + " dull a good")
    close(result.matrix, reference(model, ids, 3, "integrated_gradients", steps=16), TOL)
    # completeness: each row sums to S_s(E) - S_s(0) up to the 16-node quadrature error
    embeds = model.get_input_embeddings().weight[torch.tensor(ids)].detach()
    with torch.no_grad():
        for s, p in enumerate(range(3, len(ids))):
            gap = prefix_score(model, embeds, p, ids[p]) - prefix_score(
                model, 0 * embeds, p, ids[p]
            )
            assert float(result.row(s).sum()) == pytest.approx(float(gap), abs=1e-4)


def test_leave_one_out_equals_the_loop(model, tok):
    result = explain_generation(
        model, tok, PROMPT, continuation=" dull a good", method="leave_one_out", batch_size=2
    )
    ids = ids_of(tok, PROMPT + " dull a good")
    close(result.matrix, reference(model, ids, 3, "leave_one_out"), TOL)
    assert_scores(model, result, ids)
    assert result.params["occlusion"] == "replace"


def test_attention_is_the_last_layer_mean_over_heads(model, tok):
    result = explain_generation(model, tok, PROMPT, continuation=" dull a", method="attention")
    ids = ids_of(tok, PROMPT + " dull a")
    with torch.no_grad():
        attn = model(torch.tensor([ids]), output_attentions=True).attentions[-1][0].mean(0)
    for s, p in enumerate(range(3, len(ids))):
        torch.testing.assert_close(result.row(s), attn[p - 1, :p], rtol=0, atol=1e-12)
        # a row of attention weights sums to 1 over the keys the query sees
        assert float(result.row(s).sum()) == pytest.approx(1.0, abs=1e-12)


def test_attention_rollout_is_the_product_of_the_mixed_layers(model, tok):
    result = explain_generation(
        model, tok, PROMPT, continuation=" dull a", method="attention_rollout"
    )
    ids = ids_of(tok, PROMPT + " dull a")
    with torch.no_grad():
        layers = model(torch.tensor([ids]), output_attentions=True).attentions
    flow = torch.eye(len(ids), dtype=torch.float64)
    for a in layers:  # Abnar and Zuidema: (mean over heads + I) / 2, rows renormalised
        mixed = (a[0].mean(0) + torch.eye(len(ids), dtype=torch.float64)) / 2
        flow = (mixed / mixed.sum(-1, keepdim=True)) @ flow
    for s, p in enumerate(range(3, len(ids))):
        torch.testing.assert_close(result.row(s), flow[p - 1, :p], rtol=0, atol=1e-12)
        assert float(result.row(s).sum()) == pytest.approx(1.0, abs=1e-12)  # causal: all of it


@pytest.mark.parametrize("method", ["gradient_x_input", "integrated_gradients"])
def test_batch_size_does_not_change_the_matrix(model, tok, method):
    one = explain_generation(
        model, tok, PROMPT, continuation=CONTINUATION, method=method, steps=4, batch_size=1
    )
    many = explain_generation(
        model, tok, PROMPT, continuation=CONTINUATION, method=method, steps=4, batch_size=5
    )
    close(one.matrix, many.matrix, TOL)


@pytest.mark.parametrize("method", ["gradient_x_input", "saliency", "integrated_gradients"])
def test_the_copied_rows_give_the_same_matrix(model, tok, monkeypatch, method):
    # where the batched backward of the shared forward is unavailable (an operation without a
    # vmap rule), one copied row per step serves gradient x input and saliency
    from attrib.text import generation

    def unavailable(*args, **kwargs):
        raise RuntimeError("vmap: no batching rule")

    def run():
        return explain_generation(
            model, tok, PROMPT, continuation=CONTINUATION, method=method, steps=4, batch_size=3
        )

    shared = run()
    monkeypatch.setattr(generation, "_shared_forward_rows", unavailable)
    copied = run()
    close(copied.matrix, shared.matrix, TOL)


def test_a_float32_model_agrees_with_the_float64_loop(tok):
    # the default dtype: float32 rounding (eps 6e-8) through 2 layers and a log-softmax over
    # 32 words moves values of size <= 1 by ~1e-6; 1e-4 absolute is well above that and
    # well below the values themselves (~1e-2 .. 1)
    model = lm()
    result = explain_generation(model.float(), tok, PROMPT, continuation=CONTINUATION)
    ids = ids_of(tok, PROMPT + CONTINUATION)
    close(result.matrix, reference(model.double(), ids, 3, "gradient_x_input"), 1e-4)


@pytest.mark.parametrize("method", ["gradient_x_input", "saliency", "leave_one_out"])
def test_several_prompts_equal_each_prompt_alone(model, tok, method):
    # three lengths in one call: right padding is never seen by an explained score
    prompts = ["the plot was", "a", "good film the bad"]
    continuations = [" dull a good", " film was", " plot"]
    many = explain_generations(
        model,
        tok,
        prompts,
        continuations=continuations,
        method=method,
        batch_size=4,
        contrast="bad",
    )
    assert len(many) == 3
    for prompt, continuation, got in zip(prompts, continuations, many, strict=True):
        alone = explain_generation(
            model, tok, prompt, continuation=continuation, method=method, contrast="bad"
        )
        assert got.tokens == alone.tokens and got.prompt_length == alone.prompt_length
        close(got.matrix, alone.matrix, TOL)
        torch.testing.assert_close(got.scores, alone.scores, rtol=0, atol=TOL)
        assert got.contrast_ids.tolist() == alone.contrast_ids.tolist()
    ids = ids_of(tok, prompts[1] + continuations[1])
    bad = tok.convert_tokens_to_ids("bad")
    if method != "leave_one_out":
        close(many[1].matrix, reference(model, ids, 1, method, [bad, bad]), TOL)


def test_several_prompts_bad_inputs(model, tok):
    with pytest.raises(AttribError, match="list of prompts"):
        explain_generations(model, tok, "the plot")
    with pytest.raises(AttribError, match="one continuation per prompt"):
        explain_generations(model, tok, ["a", "b"], continuations=[" good"])
    with pytest.raises(EmptyTextError):
        explain_generations(model, tok, ["a", ""], max_new_tokens=2)


def test_causal_structure(model, tok):
    result = explain_generation(model, tok, PROMPT, continuation=CONTINUATION)
    for s in range(result.steps):
        p = result.prompt_length + s
        assert result.matrix[s, p:].isnan().all()  # the token itself and later: undefined
        assert not result.matrix[s, :p].isnan().any()
        assert (result.matrix[s, :p] != 0).all()  # a random model depends on every token


def test_contrast_is_the_difference_of_the_two_targets(model, tok):
    a = explain_generation(model, tok, PROMPT, continuation=" dull a good")
    b = explain_generation(model, tok, PROMPT, continuation=" dull a bad")
    bad = tok.convert_tokens_to_ids("bad")
    contrast = explain_generation(
        model, tok, PROMPT, continuation=" dull a good", contrast=[None, None, "bad"]
    )
    assert contrast.contrast_ids.tolist() == [-1, -1, bad]
    close(contrast.matrix[:2], a.matrix[:2], TOL)  # no contrast at the first two steps
    close(contrast.matrix[2], a.matrix[2] - b.matrix[2], TOL)  # linear in the score
    assert float(contrast.scores[2]) == pytest.approx(float(a.scores[2] - b.scores[2]), abs=1e-12)
    ids = ids_of(tok, PROMPT + " dull a good")
    close(contrast.matrix, reference(model, ids, 3, "gradient_x_input", [None, None, bad]), TOL)


def test_greedy_generation_writes_the_argmax_tokens(model, tok):
    result = explain_generation(model, tok, PROMPT, max_new_tokens=5, stop_at_eos=False)
    ids = ids_of(tok, PROMPT)
    with torch.no_grad():
        for _ in range(5):  # the literal greedy loop, without a cache
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert result.token_ids.tolist() == ids
    assert result.steps == 5
    close(result.matrix, reference(model, ids, 3, "gradient_x_input"), TOL)


def test_nothing_is_left_on_the_model(tok):
    model = lm(seed=1).train()
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.warns(UserWarning, match="training mode"):
        explain_generation(model, tok, PROMPT, continuation=" dull a", method="saliency")
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert not any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in model.modules()
    )


def test_json_and_html(model, tok):
    result = explain_generation(model, tok, "the <b>&", continuation=" a good")
    data = json.loads(result.to_json())
    assert data["tokens"] == ["the", "<b>&", "a", "good"]
    assert data["matrix"][0][:2] == pytest.approx(result.matrix[0, :2].tolist())
    assert data["matrix"][0][2:] == [None, None]
    page = result.html()
    assert "<b>&" not in page and "&lt;b&gt;&amp;" in page


def test_heat_map_draws_the_matrix(model, tok):
    pytest.importorskip("matplotlib")
    from attrib import viz

    result = explain_generation(model, tok, PROMPT, continuation=" dull a good")
    fig = viz.generation_figure(result)
    image = fig.axes[0].images[0]
    drawn = image.get_array()
    assert drawn.shape == (3, 6)
    assert drawn.mask.tolist() == result.matrix.isnan().tolist()  # undefined: blank
    np.testing.assert_array_equal(drawn.data[~drawn.mask], result.matrix[~result.matrix.isnan()])
    low, high = image.get_clim()
    assert low == -high == -float(result.matrix.nan_to_num().abs().max())  # signed: symmetric
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["dull", "a", "good"]


def test_bad_inputs(model, tok):
    with pytest.raises(EmptyTextError, match="prompt"):
        explain_generation(model, tok, "  ")
    with pytest.raises(EmptyTextError, match="prompt"):
        explain_generation(model, tok, "", continuation=" a good")
    with pytest.raises(EmptyTextError, match="continuation"):
        explain_generation(model, tok, PROMPT, continuation="")
    with pytest.raises(ContinuationSplitError, match="boundary"):
        explain_generation(model, tok, "the plot", continuation="was")  # "plotwas": [UNK]
    with pytest.raises(TextTooLongError, match="16 tokens"):
        explain_generation(model, tok, PROMPT, max_new_tokens=CONTEXT)
    with pytest.raises(TextTooLongError):
        explain_generation(model, tok, PROMPT, continuation=" a" * (CONTEXT - 2))
    torch.manual_seed(0)
    bare = transformers.GPT2Model(model.config).eval()
    with pytest.raises(NotALanguageModelError, match="AutoModelForCausalLM"):
        explain_generation(bare, tok, PROMPT)
    bert_config = transformers.BertConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
    )
    with pytest.raises(NotALanguageModelError, match="language-model head"):
        explain_generation(transformers.BertModel(bert_config).eval(), tok, PROMPT)
    bert = transformers.BertForSequenceClassification(
        transformers.BertConfig(
            vocab_size=len(WORDS),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=16,
        )
    ).eval()
    with pytest.raises(NotALanguageModelError):
        explain_generation(bert, tok, PROMPT)
    t5 = transformers.T5ForConditionalGeneration(
        transformers.T5Config(
            vocab_size=len(WORDS), d_model=16, d_kv=8, d_ff=16, num_layers=1, num_heads=2
        )
    ).eval()
    with pytest.raises(NotALanguageModelError):  # encoder-decoder: logits follow the decoder
        explain_generation(t5, tok, PROMPT)
    with pytest.raises(AttribError, match="method"):
        explain_generation(model, tok, PROMPT, method="gradcam")
    with pytest.raises(AttribError, match="one token"):
        explain_generation(model, tok, PROMPT, continuation=" a", contrast="a good")


class ScaledLogitsLM(torch.nn.Module):
    """A causal LM whose logits are its head's, doubled (as models that scale or cap their
    logits after the head do): the body/head split must notice and not be used."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config

    @property
    def base_model(self):
        return self.inner.transformer

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def get_output_embeddings(self):
        return self.inner.get_output_embeddings()

    def forward(self, **kwargs):
        out = self.inner(**kwargs)
        out.logits = 2 * out.logits
        return out


def test_the_body_head_split_and_the_full_logits_give_the_loop(model, tok, monkeypatch):
    from attrib.text import generation

    probe = model.get_input_embeddings().weight[None, :1].detach()
    assert generation._body_and_head(model, probe) is not None  # GPT-2 splits exactly
    ids = ids_of(tok, PROMPT + CONTINUATION)
    expected = reference(model, ids, 3, "gradient_x_input")
    split = explain_generation(model, tok, PROMPT, continuation=CONTINUATION, batch_size=3)
    close(split.matrix, expected, TOL)
    monkeypatch.setattr(generation, "_body_and_head", lambda model, probe: None)
    full = explain_generation(model, tok, PROMPT, continuation=CONTINUATION, batch_size=3)
    close(full.matrix, expected, TOL)
    monkeypatch.undo()
    scaled = ScaledLogitsLM(model).eval()
    assert generation._body_and_head(scaled, probe) is None  # head(body(E)) != its logits
    got = explain_generation(scaled, tok, PROMPT, continuation=CONTINUATION, batch_size=3)
    close(got.matrix, reference(scaled, ids, 3, "gradient_x_input"), TOL)


def spy_passes(model, monkeypatch):
    """Lists that fill with the shape of every forward of the model's body and the rows of
    every batched backward (the rows in flight)."""
    forwards, backwards = [], []
    hook = model.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: forwards.append(tuple(kwargs["inputs_embeds"].shape)),
        with_kwargs=True,
    )
    grad = torch.autograd.grad

    def counting_grad(outputs, inputs, grad_outputs=None, **kwargs):
        if kwargs.get("is_grads_batched"):
            backwards.append(len(grad_outputs))
        return grad(outputs, inputs, grad_outputs=grad_outputs, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    return forwards, backwards, hook


def text_of(n: int) -> str:
    words = WORDS[2:10]
    return " ".join(words[i % len(words)] for i in range(n))


@pytest.mark.parametrize(
    ("length", "prompt", "passes"),
    [
        # the last 9 of 40 tokens in chunks of at most 2 steps (balanced: 2, 2, 2, 2, 1) whose
        # last steps need positions 0 .. 31, 33, 35, 37, 38: a chunk joins the forward when
        # its extra positions for the steps already there cost less than a forward,
        # (q' - q) n <= q: 2 * 2 <= 32, 2 * 4 <= 34, ... so ONE forward of 39 positions
        (40, 31, [39]),
        # 9 steps after 2 tokens: forwards need 3, 5, 7, 9, 10 positions; 5 joins 3? 2 * 2 > 3,
        # no; 7 joins 5: 2 * 2 <= 5; 9 joins 7? 2 * 4 > 7, no; 10 joins 9: 1 * 2 <= 9
        (11, 2, [3, 7, 10]),
    ],
)
def test_forwards_run_over_the_prefix_and_backwards_hold_batch_size_rows(
    tok, monkeypatch, length, prompt, passes
):
    # memory is bounded by batch_size rows (2 gradients in flight), not by the number of
    # steps or the sequence's length; no forward runs over positions no step needs
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(WORDS), n_embd=16, n_layer=1, n_head=2, n_positions=64
    )
    long = transformers.GPT2LMHeadModel(config).double().eval()
    text = text_of(length)
    cut = len(" ".join(text.split(" ")[:prompt]))
    forwards, backwards, hook = spy_passes(long, monkeypatch)
    try:
        result = explain_generation(long, tok, text[:cut], continuation=text[cut:], batch_size=2)
    finally:
        hook.remove()
        monkeypatch.undo()
    assert result.steps == 9 and len(result.tokens) == length
    assert backwards == [2, 2, 2, 2, 1]
    assert [shape for shape in forwards if shape[1] > 1] == [(1, q, 16) for q in passes]
    close(result.matrix, reference(long, ids_of(tok, text), prompt, "gradient_x_input"), TOL)


@pytest.mark.parametrize("method", ["attnlrp", "cp_lrp"])
def test_propagation_rows_explain_the_step_logit(model, tok, method):
    """AttnLRP / CP-LRP explain the step's LOGIT on its prefix: each row's relevance minus
    the step's reported conservation gap is ``z_{p-1}[x_p]`` from the model's own forward
    on the prefix alone (so the row is at the right step, position and token)."""
    result = explain_generation(model, tok, PROMPT, continuation=CONTINUATION, method=method)
    ids = ids_of(tok, PROMPT + CONTINUATION)
    embeds = model.get_input_embeddings().weight[torch.tensor(ids)].detach()
    assert result.params["composite"] == {"attnlrp": "attnlrp", "cp_lrp": "cp-lrp"}[method]
    for s in range(result.steps):
        p = result.prompt_length + s
        with torch.no_grad():
            logit = model(inputs_embeds=embeds[None, :p]).logits[0, -1, ids[p]]
        total = result.matrix[s, :p].sum() - result.params["delta"][s]
        assert float(total) == pytest.approx(float(logit), abs=1e-10)
        assert result.matrix[s, p:].isnan().all()
        assert not result.matrix[s, :p].isnan().any()


def test_attnlrp_rows_are_linear_in_the_contrast(model, tok):
    """With a contrast the explained score is ``z_a - z_b`` (the log-probability difference:
    the normaliser cancels); AttnLRP in its gradient form is linear in the score it starts
    from, so the row is the difference of the two tokens' rows."""
    a = explain_generation(model, tok, PROMPT, continuation=" dull a good", method="attnlrp")
    b = explain_generation(model, tok, PROMPT, continuation=" dull a bad", method="attnlrp")
    contrast = explain_generation(
        model,
        tok,
        PROMPT,
        continuation=" dull a good",
        contrast=[None, None, "bad"],
        method="attnlrp",
    )
    close(contrast.matrix[:2], a.matrix[:2], TOL)
    close(contrast.matrix[2], a.matrix[2] - b.matrix[2], TOL)
