"""Attributions for generated text: which earlier tokens made a causal LM write each token.

For a sequence ``x_0 .. x_{T-1}`` of ``P`` prompt tokens and ``T - P`` generated ones (greedy,
or a forced ``continuation``), step ``s`` explains the token at position ``p = P + s`` by the
score

    S_s(E) = log softmax(f(E)_{p-1})[x_p]           (- log softmax(f(E)_{p-1})[c_s])

of the input embeddings ``E = W_emb[x]``, ``(T, d)``, where ``f(E)_{p-1}`` are the logits the
model gives at position ``p - 1`` (teacher forcing) and ``c_s`` an optional contrast token
("why ``x_p`` rather than ``c_s``", Yin and Neubig 2022, "Interpreting Language Models with
Contrastive Explanations"). Row ``s`` of the result holds one score per token ``j < p``; the
entries ``j >= p`` are NaN: a causal model's position ``p - 1`` does not see them.

Methods (``method=``), each at the input embeddings as ``attrib.text`` does for classifiers
(``attrib.text.aggregate`` says why each reduction):

- ``"gradient_x_input"``: ``R_sj = sum_k E_jk dS_s/dE_jk`` (the signed sum over the
  embedding dimensions; Shrikumar et al. 2016);
- ``"saliency"``: ``R_sj = ||dS_s/dE_j||_2`` (the L2 norm; Simonyan et al. 2014, Li et al.
  2016);
- ``"integrated_gradients"``: ``R_sj = sum_k (E_jk - E'_jk) int_0^1 dS_s/dE_jk(E' + a(E -
  E')) da`` with ``steps`` nodes of ``rule`` (Gauss-Legendre by default; Sundararajan et al.
  2017); ``E'`` is the ``baseline`` embedding at every position (the zero vector by
  default), so the row sums to ``S_s(E) - S_s(E')`` up to the quadrature error;
- ``"leave_one_out"``: ``R_sj = S_s(E) - S_s(E with row j replaced by E'_j)`` (Li, Monroe
  and Jurafsky 2016): the token is *replaced* by the baseline embedding, not dropped, so
  positions stay where they were;
- ``"attention"``: the last layer's attention weights, mean over heads, of query ``p - 1``
  (needs a model that returns them: ``attn_implementation="eager"``);
- ``"attnlrp"``, ``"cp_lrp"``: LRP with the transformer composites (``LRP(...,
  composite="attnlrp")``, Achtibat et al. 2024; ``"cp-lrp"``, Ali et al. 2022) of the step's
  LOGIT ``z_p-1[x_p]`` (minus the contrast's logit: the log-probability difference), one
  forward and one modified backward per step over its prefix, summed over the embedding
  dimensions; ``params["delta"]`` holds each step's conservation gap;
- ``"attention_rollout"``: row ``p - 1`` of the rollout ``A_hat_L ... A_hat_1`` with
  ``A_hat_l = (mean_h A^h_l + I) / 2`` rows renormalised (Abnar and Zuidema 2020;
  ``attrib.text.attention.rollout``).

Batching (the steps share work): ``attrib.core.batching.run_chunks`` evaluates rows in
chunks of at most ``batch_size``. Gradient x input and saliency: ONE forward over the
sequence (teacher forcing) gives every step's score, and each chunk of ``k`` steps is one
batched backward through that graph (``torch.autograd.grad(..., is_grads_batched=True)``:
``k`` vector-Jacobian products vectorised by ``vmap``). Integrated gradients evaluates the
model at each node ``E' + a_k (E - E')`` the same way: one forward per node, every step's
gradient from batched backwards through it, rows summed with the node weights. (Where an
operation has no ``vmap`` rule, a row is one step (one (step, node) pair for IG): a copy of
the embeddings cut after the last position its chunk needs, one forward and one backward
per chunk.) For leave-one-out a row is one occluded position, and one forward of the whole
sequence gives the occluded scores of every step at once (teacher forcing). The plain
scores of every step come from the same one forward over the full sequence. Memory is
bounded by ``batch_size`` rows (gradients, copies) of the sequence, never by the number of
steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Union

import torch
from torch import nn

from attrib.core.batching import Chunk, check_batch_size, default_batch_size, run_chunks
from attrib.core.errors import SettingError
from attrib.core.hooks import prepared
from attrib.methods.quadrature import quadrature
from attrib.text.attention import rollout
from attrib.text.errors import (
    AttentionUnavailableError,
    ContinuationSplitError,
    EmptyTextError,
    NotALanguageModelError,
    TextTooLongError,
)
from attrib.text.generation_result import GenerationAttribution
from attrib.text.models import input_embeddings

__all__ = [
    "GENERATION_METHODS",
    "explain_generation",
    "explain_generations",
]

GENERATION_METHODS = (
    "gradient_x_input",
    "saliency",
    "integrated_gradients",
    "leave_one_out",
    "attention",
    "attention_rollout",
    "attnlrp",
    "cp_lrp",
)
_PROPAGATION_METHODS = {"attnlrp": "attnlrp", "cp_lrp": "cp-lrp"}
_GRADIENT_METHODS = ("gradient_x_input", "saliency", "integrated_gradients")

TokenChoice = Union[int, str, None]
Contrast = Union[TokenChoice, Sequence[TokenChoice]]


def explain_generation(
    model: nn.Module,
    tokenizer: Any,
    prompt: str,
    *,
    continuation: str | None = None,
    max_new_tokens: int = 16,
    method: str = "gradient_x_input",
    contrast: Contrast = None,
    steps: int = 32,
    rule: str = "gauss_legendre",
    baseline: TokenChoice = None,
    batch_size: int | None = None,
    stop_at_eos: bool = True,
) -> GenerationAttribution:
    """Attribute each generated token's log-probability to every earlier token.

    Args:
        model: a Hugging Face causal language model (``AutoModelForCausalLM``, e.g.
            ``GPT2LMHeadModel``): it takes ``inputs_embeds=`` and returns ``.logits``
            ``(N, L, vocab)``.
        tokenizer: its tokenizer.
        prompt: the text the model continues (at least one token).
        continuation: the text to explain as the model's output (teacher forcing); its
            tokens must be those the tokenizer gives for ``prompt + continuation`` after the
            prompt's (``ContinuationSplitError`` otherwise). ``None``: greedy generation of
            up to ``max_new_tokens`` tokens (stopping after an end-of-text token where
            ``stop_at_eos``).
        method: one of ``GENERATION_METHODS`` (see the module docstring).
        contrast: explain ``log p(x_p) - log p(c)``: one token (an id, or a string the
            tokenizer encodes as one token) for every step, or one per step (``None``: no
            contrast at that step).
        steps, rule: integration nodes of ``"integrated_gradients"``.
        baseline: the embedding ``E'`` of ``"integrated_gradients"`` and ``"leave_one_out"``:
            ``None`` (the zero vector) or a token (id or one-token string) whose embedding
            is used at every position.
        batch_size: the most rows (sequence copies) per forward; ``None`` chooses from the
            sequence's size.

    Returns:
        a ``GenerationAttribution`` (``matrix`` ``(steps, T)``, NaN at ``j >= P + s``).
    """
    _check_call(model, method, batch_size, max_new_tokens)
    layer = input_embeddings(model)
    weight = getattr(layer, "weight", None)
    device = weight.device if isinstance(weight, torch.Tensor) else torch.device("cpu")
    ids, start = _sequence(
        model, tokenizer, prompt, continuation, max_new_tokens, stop_at_eos, device
    )
    length = len(ids)
    n_steps = length - start
    ids_t = torch.tensor(ids, dtype=torch.long, device=device)
    targets = ids_t[start:]
    contrasts = _contrasts(tokenizer, model, contrast, n_steps, device)
    positions = torch.arange(start - 1, length - 1, device=device)
    with prepared(model), torch.no_grad():
        embeds = layer(ids_t[None])[0].detach()  # (T, d)
        base_row = _baseline(tokenizer, layer, baseline, embeds)
    scores: torch.Tensor | None = None
    params: dict[str, Any] = {"batch_size": batch_size}
    if method in _GRADIENT_METHODS:
        values, scores = _gradient_rows(
            model, method, embeds, base_row, positions, targets, contrasts, steps, rule, batch_size
        )
        params["token_reduction"] = "l2" if method == "saliency" else "sum"
        if method == "integrated_gradients":
            params.update(steps=steps, rule=rule, baseline=_name(baseline))
    if scores is None:  # the plain scores of every step: one forward (teacher forcing)
        with prepared(model), torch.no_grad():
            logits = _logits(model, embeds[None, : length - 1])[0]  # (T - 1, V)
            scores = _score(logits[positions], targets, contrasts)
    if method == "leave_one_out":
        values = scores[:, None] - _occluded_scores(
            model, embeds, base_row, positions, targets, contrasts, batch_size
        )
        params.update(baseline=_name(baseline), occlusion="replace")
    elif method == "attention":
        values = _attention_rows(model, embeds, positions, rolled=False)
        params.update(layer="last", heads="mean")
    elif method == "attention_rollout":
        values = _attention_rows(model, embeds, positions, rolled=True)
        params.update(residual=0.5, heads="mean")
    elif method in _PROPAGATION_METHODS:
        values, gaps = _propagation_rows(model, method, embeds, positions, targets, contrasts)
        params.update(
            composite=_PROPAGATION_METHODS[method], score="logit", token_reduction="sum", delta=gaps
        )
    return _result(
        tokenizer,
        ids,
        start,
        values,
        method,
        params,
        None if contrast is None else contrasts,
        scores,
    )


def explain_generations(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    continuations: Sequence[str] | None = None,
    max_new_tokens: int = 16,
    method: str = "gradient_x_input",
    contrast: TokenChoice = None,
    batch_size: int | None = None,
    stop_at_eos: bool = True,
    **settings: Any,
) -> list[GenerationAttribution]:
    """``explain_generation`` for several prompts (and forced continuations, one per
    prompt), one result per prompt.

    Gradient x input and saliency run every sequence in ONE forward: the sequences are
    right-padded to the longest (no attention mask is needed: a causal model's position
    ``p - 1`` sees only positions ``<= p - 1``, all real tokens, so the padding changes no
    explained score), and the steps of all sequences share the batched backwards (chunks of
    ``batch_size`` steps). Other methods run one sequence after the other. ``contrast`` is
    one token (or ``None``) for every step of every sequence; ``settings`` are those of
    ``explain_generation`` (``steps``, ``rule``, ``baseline``)."""
    if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not prompts:
        raise SettingError("prompts", "a non-empty list of prompts", prompts, "")
    if continuations is not None and len(continuations) != len(prompts):
        raise SettingError(
            "continuations", f"one continuation per prompt ({len(prompts)})", continuations, ""
        )
    if contrast is not None and not isinstance(contrast, (int, str)):
        raise SettingError("contrast", "one token for every step, or None", contrast, "")
    forced: list[str | None] = list(continuations) if continuations else [None] * len(prompts)
    if method not in ("gradient_x_input", "saliency"):
        return [
            explain_generation(
                model,
                tokenizer,
                p,
                continuation=c,
                batch_size=batch_size,
                stop_at_eos=stop_at_eos,
                max_new_tokens=max_new_tokens,
                method=method,
                contrast=contrast,
                **settings,
            )
            for p, c in zip(prompts, forced, strict=True)
        ]
    unknown = set(settings) - {"steps", "rule", "baseline"}
    if unknown:
        raise SettingError("settings", "steps, rule or baseline", sorted(unknown), "")
    _check_call(model, method, batch_size, max_new_tokens)
    layer = input_embeddings(model)
    weight = getattr(layer, "weight", None)
    device = weight.device if isinstance(weight, torch.Tensor) else torch.device("cpu")
    sequences = [
        _sequence(model, tokenizer, p, c, max_new_tokens, stop_at_eos, device)
        for p, c in zip(prompts, forced, strict=True)
    ]
    width = max(len(ids) for ids, _ in sequences)
    with prepared(model), torch.no_grad():
        padded = torch.zeros(len(sequences), width, dtype=torch.long, device=device)
        for i, (ids, _) in enumerate(sequences):
            padded[i, : len(ids)] = torch.tensor(ids, device=device)
            padded[i, len(ids) :] = ids[-1]  # any real id: never seen by an explained score
        embeds = layer(padded).detach()  # (N, L, d)
    rows, positions, targets = [], [], []
    for i, (ids, start) in enumerate(sequences):
        rows += [i] * (len(ids) - start)
        positions += list(range(start - 1, len(ids) - 1))
        targets += ids[start:]
    row_t = torch.tensor(rows, device=device)
    pos_t = torch.tensor(positions, device=device)
    target_t = torch.tensor(targets, device=device)
    contrasts = _contrasts(tokenizer, model, contrast, len(rows), device)
    try:
        values, scores = _shared_forward_rows(
            model, method, embeds, embeds, pos_t, target_t, contrasts, batch_size, row_t
        )
    except RuntimeError as error:  # no vmap rule for an operation: one prompt at a time
        if "vmap" not in str(error) and "batch" not in str(error).lower():
            raise
        return [
            explain_generation(
                model,
                tokenizer,
                p,
                continuation=c,
                max_new_tokens=max_new_tokens,
                method=method,
                contrast=contrast,
                batch_size=batch_size,
                stop_at_eos=stop_at_eos,
                **settings,
            )
            for p, c in zip(prompts, forced, strict=True)
        ]
    out = []
    for i, (ids, start) in enumerate(sequences):
        mine = row_t == i
        out.append(
            _result(
                tokenizer,
                ids,
                start,
                values[mine][:, : len(ids)],
                method,
                {
                    "batch_size": batch_size,
                    "token_reduction": "l2" if method == "saliency" else "sum",
                },
                None if contrast is None else contrasts[mine],
                scores[mine],
            )
        )
    return out


def _sequence(
    model: nn.Module,
    tokenizer: Any,
    prompt: str,
    continuation: str | None,
    max_new_tokens: int,
    stop_at_eos: bool,
    device: torch.device,
) -> tuple[list[int], int]:
    """The token ids of prompt and generated (greedy) or forced tokens, and the prompt's
    length, checked against the model's context."""
    prompt_ids = _prompt_ids(tokenizer, prompt)
    context = _context_length(model)
    if continuation is None:
        _check_length(len(prompt_ids) + max_new_tokens, context, "prompt + max_new_tokens")
        ids = _greedy(model, prompt_ids, max_new_tokens, _eos(tokenizer, stop_at_eos), device)
    else:
        ids = _forced(tokenizer, prompt, prompt_ids, continuation)
        _check_length(len(ids), context, "prompt + continuation")
    return ids, len(prompt_ids)


def _result(
    tokenizer: Any,
    ids: list[int],
    start: int,
    values: torch.Tensor,
    method: str,
    params: dict[str, Any],
    contrasts: torch.Tensor | None,
    scores: torch.Tensor,
) -> GenerationAttribution:
    """The result, with NaN at every position a step does not see."""
    n_steps, length = len(ids) - start, len(ids)
    matrix = torch.full((n_steps, length), float("nan"), dtype=torch.float64)
    for s in range(n_steps):
        matrix[s, : start + s] = values[s, : start + s].detach().to("cpu", torch.float64)
    token_ids = torch.tensor(ids, dtype=torch.long)
    return GenerationAttribution(
        tokens=[tokenizer.decode([i]) for i in ids],
        token_ids=token_ids,
        prompt_length=start,
        matrix=matrix,
        method=method,
        params=params,
        target_ids=token_ids[start:],
        contrast_ids=None if contrasts is None else contrasts.cpu(),
        scores=scores.detach().to("cpu", torch.float64),
    )


# ----------------------------------------------------------------------------- checks


def _check_call(model: Any, method: str, batch_size: int | None, max_new_tokens: int) -> None:
    if method not in GENERATION_METHODS:
        raise SettingError("method", f"one of {GENERATION_METHODS}", method, "")
    check_batch_size(batch_size)
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or max_new_tokens < 1
    ):
        raise SettingError("max_new_tokens", "an int >= 1", max_new_tokens, "")
    _check_language_model(model)


def _check_language_model(model: Any) -> None:
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    config = getattr(model, "config", None)
    # an encoder-decoder (T5, BART) has a head, but its logits follow the decoder's inputs,
    # not the prompt's: only decoder-only models are explained here
    if getattr(config, "is_encoder_decoder", False) is True:
        head = None
    if not isinstance(model, nn.Module) or head is None:
        raise NotALanguageModelError(
            "model",
            "a causal language model with a language-model head (AutoModelForCausalLM, e.g. "
            "GPT2LMHeadModel) that gives next-token logits",
            type(model).__name__,
            "Load the model with AutoModelForCausalLM (a bare GPT2Model or a classifier "
            "has no next-token logits); classifiers are explained by explain_tokens.",
        )


def _context_length(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _check_length(length: int, context: int | None, what: str) -> None:
    if context is not None and length > context:
        raise TextTooLongError(
            what,
            f"at most {context} tokens (the model's context, config.n_positions)",
            f"{length} tokens",
            "Shorten the prompt, or ask for fewer tokens (max_new_tokens, continuation).",
        )


def _prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    if not isinstance(prompt, str):
        raise SettingError("prompt", "a string", prompt, "")
    ids = list(tokenizer(prompt)["input_ids"])
    if not prompt.strip() or not ids:
        raise EmptyTextError(
            "prompt",
            "a prompt with at least one token",
            prompt,
            "The first generated token needs something to condition on; give a prompt.",
        )
    return ids


def _forced(tokenizer: Any, prompt: str, prompt_ids: list[int], continuation: str) -> list[int]:
    if not isinstance(continuation, str):
        raise SettingError("continuation", "a string", continuation, "")
    alone = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
    if not continuation.strip() or not alone:
        raise EmptyTextError(
            "continuation", "a continuation with at least one token", continuation, ""
        )
    full = list(tokenizer(prompt + continuation)["input_ids"])
    if full != prompt_ids + alone:
        raise ContinuationSplitError(
            "continuation",
            "a continuation whose tokens after the prompt are those the tokenizer gives "
            f"for it alone ({tokenizer.convert_ids_to_tokens(alone)})",
            f"{continuation!r}, tokenised after the prompt as "
            f"{tokenizer.convert_ids_to_tokens(full)} (the prompt alone: "
            f"{tokenizer.convert_ids_to_tokens(prompt_ids)})",
            "The tokens across the boundary merge or split differently: start the "
            "continuation with a space (or end the prompt at a token boundary).",
        )
    return full


def _eos(tokenizer: Any, stop: bool) -> int | None:
    value = getattr(tokenizer, "eos_token_id", None)
    return value if stop and isinstance(value, int) else None


def _token_id(tokenizer: Any, model: nn.Module, token: int | str, argument: str) -> int:
    vocab = int(model.get_output_embeddings().weight.shape[0])  # type: ignore[operator]
    if isinstance(token, str):
        found = list(tokenizer(token, add_special_tokens=False)["input_ids"])
        if len(found) != 1:
            raise SettingError(
                argument,
                "a token id or a string that is one token",
                f"{token!r} ({len(found)} tokens: {tokenizer.convert_ids_to_tokens(found)})",
                "Give the token id, or a string the tokenizer keeps whole.",
            )
        return int(found[0])
    if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token < vocab:
        raise SettingError(argument, f"a token id in [0, {vocab})", token, "")
    return token


def _contrasts(
    tokenizer: Any, model: nn.Module, contrast: Contrast, n: int, device: torch.device
) -> torch.Tensor:
    """One contrast id per step, ``-1`` where there is none."""
    if contrast is None:
        chosen: list[TokenChoice] = [None] * n
    elif isinstance(contrast, (int, str)):
        chosen = [contrast] * n
    else:
        chosen = list(contrast)
        if len(chosen) != n:
            raise SettingError(
                "contrast", f"one token (or None) per generated step ({n})", contrast, ""
            )
    ids = [-1 if c is None else _token_id(tokenizer, model, c, "contrast") for c in chosen]
    return torch.tensor(ids, dtype=torch.long, device=device)


def _baseline(
    tokenizer: Any, layer: nn.Module, baseline: TokenChoice, embeds: torch.Tensor
) -> torch.Tensor:
    """``E'`` ``(d,)``: zero, or a token's embedding."""
    if baseline is None:
        return torch.zeros_like(embeds[0])
    if isinstance(baseline, str):
        found = list(tokenizer(baseline, add_special_tokens=False)["input_ids"])
        if len(found) != 1:
            raise SettingError("baseline", "None, a token id or a one-token string", baseline, "")
        baseline = int(found[0])
    ids = torch.tensor([[int(baseline)]], device=embeds.device)
    return layer(ids)[0, 0].detach()


def _name(baseline: TokenChoice) -> str | int:
    return "zero" if baseline is None else baseline


# ----------------------------------------------------------------------------- model calls


def _logits(model: nn.Module, embeds: torch.Tensor) -> torch.Tensor:
    out = model(inputs_embeds=embeds, use_cache=False)
    logits = getattr(out, "logits", out)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        raise NotALanguageModelError(
            "model", "next-token logits (N, L, vocab)", logits, "Use AutoModelForCausalLM."
        )
    return logits


def _score(logits: torch.Tensor, targets: torch.Tensor, contrasts: torch.Tensor) -> torch.Tensor:
    """``log p(target) - log p(contrast)`` per row of ``logits`` ``(k, V)``."""
    logp = torch.log_softmax(logits, dim=-1)
    chosen = logp.gather(1, targets[:, None])[:, 0]
    other = logp.gather(1, contrasts.clamp(min=0)[:, None])[:, 0]
    return chosen - torch.where(contrasts >= 0, other, torch.zeros_like(other))


def _greedy(
    model: nn.Module, prompt: list[int], new: int, eos: int | None, device: torch.device
) -> list[int]:
    """Greedy decoding (arg-max at each step) with the model's key/value cache."""
    ids = list(prompt)
    with prepared(model), torch.no_grad():
        step = torch.tensor([ids], device=device)
        past = None
        for _ in range(new):
            out = model(input_ids=step, past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = int(out.logits[0, -1].argmax())
            ids.append(token)
            if eos is not None and token == eos:
                break
            step = torch.tensor([[token]], device=device)
    return ids


def _gradient_rows(
    model: nn.Module,
    method: str,
    embeds: torch.Tensor,
    base: torch.Tensor,
    positions: torch.Tensor,
    targets: torch.Tensor,
    contrasts: torch.Tensor,
    steps: int,
    rule: str,
    batch_size: int | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(steps, T)`` token scores of the gradient methods, and the steps' scores ``S_s``
    where the forward gave them (the shared forward does; else ``None``).

    Every step shares the forward at each point (``_shared_forward_rows``): gradient x input
    and saliency at ``E``, integrated gradients at each node ``E' + a_k (E - E')``, whose
    rows are summed with the weights ``w_k``. Where the batched backward of a shared forward
    is not available (an operation without a ``vmap`` rule), one copied row per step (per
    step and node) serves instead (``_copied_rows``)."""
    try:
        if method != "integrated_gradients":
            return _shared_forward_rows(
                model, method, embeds, embeds, positions, targets, contrasts, batch_size
            )
        alphas, weights = quadrature(rule, steps)
        delta = embeds - base
        total = torch.zeros(len(positions), embeds.shape[0], dtype=torch.float64)
        for a, w in zip(alphas.tolist(), weights.tolist(), strict=True):
            point = base + a * delta
            rows, _ = _shared_forward_rows(
                model, method, point, delta, positions, targets, contrasts, batch_size
            )
            total = total.to(rows.device) + w * rows
        return total, None
    except RuntimeError as error:
        if "vmap" not in str(error) and "batch" not in str(error).lower():
            raise
    values = _copied_rows(
        model, method, embeds, base, positions, targets, contrasts, steps, rule, batch_size
    )
    return values, None


def _reduce(method: str, grad: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """One score per token from ``(k, L, d)`` gradients: the L2 norm for saliency, else the
    signed sum of ``grad * factor`` (``E`` for gradient x input, ``E - E'`` for IG)."""
    if method == "saliency":
        return grad.norm(dim=-1)
    return (grad * factor).sum(-1)


def _shared_forward_rows(
    model: nn.Module,
    method: str,
    embeds: torch.Tensor,
    factor: torch.Tensor,
    positions: torch.Tensor,
    targets: torch.Tensor,
    contrasts: torch.Tensor,
    batch_size: int | None,
    sequence: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every step's token scores and score ``S_s``, the steps sharing forwards and batched
    backwards; ``embeds`` is the sequence ``(T, d)`` or the sequences ``(N, T, d)``, step
    ``s`` belonging to sequence ``sequence[s]`` (steps in order of sequence, then position).

    The engine hands out chunks of ``k`` consecutive steps. A forward runs over the prefix
    that its steps need (positions ``<= q``, ``q`` the last step's ``p - 1``: a causal
    model's outputs at ``<= q`` depend on inputs ``<= q`` only), so a step's backward does
    not run over later positions; consecutive chunks share one forward where that costs
    less than a new one (``_extends``). The model is split at its last hidden state ``h =
    body(E)`` (``_body_and_head``): the head runs only at the chunk's ``k`` positions, the
    gradients ``g_s = dS_s/dh_{p_s - 1}`` come from one backward through the head, and the
    ``k`` vector-Jacobian products ``g_s^T dh/dE`` (one-hot rows of ``h``) are one batched
    backward through the body (``is_grads_batched``, vectorised by ``vmap``): full-vocabulary
    logits are never formed for all positions, in the forward or the backward. Memory holds
    one prefix's graph and ``k`` gradients, never ``steps``. The gradients are reduced to
    tokens with ``factor`` (``_reduce``)."""
    if sequence is None:
        embeds, factor = embeds[None], factor[None]
        sequence = torch.zeros_like(positions)
    length, n = embeds.shape[1], len(positions)
    split = _body_and_head(model, embeds[:1, :1])
    # a row is one step's gradient over one sequence (a chunk's steps mostly share one)
    size = batch_size or default_batch_size(embeds[:1], n)
    shared: dict[str, Any] = {"stop": 0}  # the forward that the current chunks share

    def forward(first: int, k: int) -> None:
        stop = _extends(sequence.tolist(), positions.tolist(), first, k)
        used = torch.unique(sequence[first:stop])
        cut = int(positions[first:stop].max()) + 1
        shared.clear()  # the previous graph goes before the next is built
        with torch.enable_grad():
            tracked = embeds[used, :cut].detach().clone().requires_grad_(True)
            hidden = _logits(model, tracked) if split is None else split[0](tracked)
        shared.update(stop=stop, used=used, tracked=tracked, hidden=hidden)

    def evaluate(chunk: Chunk) -> torch.Tensor:
        steps = chunk.sample.to(positions.device)
        if int(steps[-1]) >= shared["stop"] or int(steps[0]) < shared.get("first", 0):
            forward(int(steps[0]), len(steps))
            shared["first"] = int(steps[0])
        tracked, hidden, used = shared["tracked"], shared["hidden"], shared["used"]
        seq, pos, k = sequence[steps], positions[steps], len(steps)
        row = torch.searchsorted(used, seq)  # the row of each step's sequence in the forward
        picked_rows = torch.arange(k, device=pos.device)
        with torch.enable_grad():
            picked = hidden[row, pos]  # (k, h): step s's score depends on row s only
            logits = picked if split is None else split[1](picked)
            scores = _score(logits, targets[steps], contrasts[steps])
            (outer,) = torch.autograd.grad(scores.sum(), picked, retain_graph=True)
            cotangent = hidden.new_zeros((k, *hidden.shape))
            cotangent[picked_rows, row, pos] = outer
            (grad,) = torch.autograd.grad(
                hidden, tracked, cotangent, retain_graph=True, is_grads_batched=True
            )  # (k, used, cut, d)
        cut = tracked.shape[1]
        own = grad[picked_rows, row]  # each step's gradient lives in its own sequence only
        out = grad.new_zeros(k, length + 1, dtype=torch.float64)
        out[:, :cut] = _reduce(method, own, factor[seq, :cut]).detach()
        out[:, length] = scores.detach()
        return out

    try:
        with prepared(model):
            kept = run_chunks(
                evaluate, n, 1, size, "keep", device=embeds.device, automatic=batch_size is None
            )[:, 0]
    finally:
        shared.clear()
    return kept[:, :length], kept[:, length]


def _extends(sequence: list[int], positions: list[int], first: int, k: int) -> int:
    """Where the forward made for the chunk of steps ``first .. first + k - 1`` should stop
    serving chunks (a step index): it takes the next chunk of ``k`` steps in while that costs
    less than a forward of its own.

    Per position, a forward and one step's backward to the embeddings cost about the same
    (the same matrix products, weight gradients not computed), so a forward serving ``n``
    steps over ``u`` sequences up to position ``q`` costs ``u q (1 + n)``; the next chunk
    (``u'``, ``q'``, ``n'``) joins when ``u_m q_m (1 + n + n') <= u q (1 + n) + u' q' (1 +
    n')``, ``u_m, q_m`` those of the union. E.g. 64 steps after 32 tokens in chunks of 16:
    four forwards (up to 48, 64, 80, 96 positions) cost 4,896 position-passes, one shared
    forward 6,240; the last 16 of 2,048 tokens one step at a time: one forward (34,816),
    sixteen 65,000."""

    def cost(start: int, stop: int) -> int:
        u = len(set(sequence[start:stop]))
        return u * (max(positions[start:stop]) + 1) * (1 + stop - start)

    stop = min(first + k, len(positions))
    while stop < len(positions):
        following = min(stop + k, len(positions))
        merged = cost(first, following)
        if merged > cost(first, stop) + cost(stop, following):
            break
        stop = following
    return stop


def _body_and_head(
    model: nn.Module, probe: torch.Tensor
) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module] | None:
    """The model split at its last hidden state: ``body`` (embeddings ``(N, L, d)`` to the
    last hidden states ``(N, L, h)``, the Hugging Face ``base_model``) and ``head`` (hidden
    states to logits, ``get_output_embeddings()``), where ``head(body(E))`` gives the model's
    own logits (checked on ``probe``, one token, to the dtype's tolerance: a model that scales
    or caps its logits after the head fails the check). ``None`` where it does not split so:
    the full logits serve instead (same numbers, more work)."""
    base = getattr(model, "base_model", None)
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    if not isinstance(base, nn.Module) or base is model or not isinstance(head, nn.Module):
        return None

    def body(embeds: torch.Tensor) -> torch.Tensor:
        out = base(inputs_embeds=embeds, use_cache=False)
        hidden = getattr(out, "last_hidden_state", None)
        return hidden if isinstance(hidden, torch.Tensor) else out[0]

    with prepared(model), torch.no_grad():
        try:
            split = head(body(probe))
        except (RuntimeError, TypeError, IndexError, KeyError):
            return None
        whole = _logits(model, probe)
    if not isinstance(split, torch.Tensor) or split.shape != whole.shape:
        return None
    scale = float(whole.abs().max())
    tolerance = 64 * torch.finfo(whole.dtype).eps * max(scale, 1.0)
    return (body, head) if float((split - whole).abs().max()) <= tolerance else None


def _copied_rows(
    model: nn.Module,
    method: str,
    embeds: torch.Tensor,
    base: torch.Tensor,
    positions: torch.Tensor,
    targets: torch.Tensor,
    contrasts: torch.Tensor,
    steps: int,
    rule: str,
    batch_size: int | None,
) -> torch.Tensor:
    """One row per step (per step and node for IG): a copy of the embeddings (IG: the
    point ``E' + a (E - E')``) cut after the last position its chunk needs (causality makes
    the rest irrelevant); one forward and backward per chunk give every row's gradient,
    since a row's score depends on that row only."""
    length, n = embeds.shape[0], len(positions)
    integrated = method == "integrated_gradients"
    alphas, weights = quadrature(rule, steps) if integrated else (torch.ones(1), torch.ones(1))
    alphas = alphas.to(embeds.device, embeds.dtype)
    delta = embeds - base  # (T, d): IG's (E - E')
    factor = delta if integrated else embeds

    def evaluate(chunk: Chunk) -> torch.Tensor:
        pos, item = positions[chunk.sample], chunk.item.to(embeds.device)
        cut = int(pos.max()) + 1
        if integrated:
            rows = base + alphas[item].view(-1, 1, 1) * delta[None, :cut]
        else:
            rows = embeds[None, :cut].expand(len(chunk), -1, -1)
        with torch.enable_grad():
            tracked = rows.detach().clone().requires_grad_(True)
            logits = _logits(model, tracked)
            picked = logits[torch.arange(len(chunk), device=logits.device), pos]
            scores = _score(picked, targets[chunk.sample], contrasts[chunk.sample])
            (grad,) = torch.autograd.grad(scores.sum(), tracked)
        out = grad.new_zeros(len(chunk), length, dtype=torch.float64)
        out[:, :cut] = _reduce(method, grad, factor[None, :cut]).detach()
        return out

    rows_per_step = steps if integrated else 1
    size = batch_size or default_batch_size(embeds[None], n * rows_per_step)
    with prepared(model):
        if integrated:
            return run_chunks(
                evaluate,
                n,
                rows_per_step,
                size,
                "sum",
                weights=weights,
                device=embeds.device,
                automatic=batch_size is None,
            )
        kept = run_chunks(
            evaluate, n, 1, size, "keep", device=embeds.device, automatic=batch_size is None
        )
        return kept[:, 0]


def _occluded_scores(
    model: nn.Module,
    embeds: torch.Tensor,
    base: torch.Tensor,
    positions: torch.Tensor,
    targets: torch.Tensor,
    contrasts: torch.Tensor,
    batch_size: int | None,
) -> torch.Tensor:
    """``(steps, T)``: every step's score with token ``j`` replaced by ``E'`` (column ``j``);
    one row (one forward of the sequence) per occluded position ``j <= P + s - 1``."""
    length = embeds.shape[0]
    needed = int(positions.max()) + 1  # the input length the last step's logits need
    n_steps = len(positions)

    def evaluate(chunk: Chunk) -> torch.Tensor:
        j = chunk.sample.to(embeds.device)
        rows = embeds[None, :needed].repeat(len(chunk), 1, 1)
        rows[torch.arange(len(chunk), device=embeds.device), j] = base
        with torch.no_grad():
            logits = _logits(model, rows)[:, positions]  # (k, steps, V)
            k = len(chunk)
            scores = _score(logits.reshape(k * n_steps, -1), targets.repeat(k), contrasts.repeat(k))
        return scores.view(k, n_steps).to(torch.float64)

    size = batch_size or default_batch_size(embeds[None], needed)
    with prepared(model):
        occluded = run_chunks(
            evaluate, needed, 1, size, "keep", device=embeds.device, automatic=batch_size is None
        )[:, 0]  # (needed, steps)
    out = torch.zeros(n_steps, length, dtype=torch.float64, device=embeds.device)
    out[:, :needed] = occluded.T
    return out


class _StepLogit(nn.Module):
    """One step's explained score as a function of its prefix's embeddings ``(1, p + 1, d)``:
    the logit of its token at the last position, minus that of the contrast token."""

    def __init__(self, model: nn.Module, target: int, contrast: int) -> None:
        super().__init__()
        self.model, self.target, self.contrast = model, target, contrast
        self.training = False  # this wrapper only: the model's own flag is the method's to mind

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        logits = _logits(self.model, embeds)[:, -1]
        score = logits[:, self.target]
        if self.contrast >= 0:
            score = score - logits[:, self.contrast]
        return score[:, None]


def _propagation_rows(
    model: nn.Module,
    method: str,
    embeds: torch.Tensor,
    positions: torch.Tensor,
    targets: torch.Tensor,
    contrasts: torch.Tensor,
) -> tuple[torch.Tensor, list[float]]:
    """AttnLRP / CP-LRP per step (``attrib.methods.propagation``): the relevance of each
    earlier token for the step's logit (LRP explains a logit, not a log-probability: the
    log-softmax's normaliser has no relevance rule; with a contrast the explained score is
    ``z_target - z_contrast``, which IS the log-probability difference, the normaliser
    cancelling), summed over the embedding dimensions. A step is one forward and one
    modified backward over its prefix; the conservation gap of each step (relevance total
    minus the score) is returned beside the rows."""
    from attrib.methods.propagation import LRP

    composite = _PROPAGATION_METHODS[method]
    rows = torch.zeros(len(positions), embeds.shape[0], dtype=torch.float64)
    gaps = []
    for s, p in enumerate(positions.tolist()):
        step = _StepLogit(model, int(targets[s]), int(contrasts[s]))
        got = LRP(step, composite=composite)(embeds[None, : p + 1], target=0)
        relevance = got.values[0].sum(-1).detach().to("cpu", torch.float64)
        rows[s, : p + 1] = relevance
        gaps.append(float(got.delta[0]) if got.delta is not None else float("nan"))
    return rows, gaps


def _attention_rows(
    model: nn.Module, embeds: torch.Tensor, positions: torch.Tensor, rolled: bool
) -> torch.Tensor:
    """Row ``p - 1`` of the last layer's mean attention (or of the rollout) per step."""
    needed = int(positions.max()) + 1
    with prepared(model), torch.no_grad():
        out = model(inputs_embeds=embeds[None, :needed], output_attentions=True, use_cache=False)
    found = getattr(out, "attentions", None)
    if not found or any(a is None for a in found):
        raise AttentionUnavailableError(
            "model",
            "a model that returns attention weights",
            type(model).__name__,
            'Load it with attn_implementation="eager" (SDPA and flash attention return none).',
        )
    if rolled:
        flow = rollout(torch.stack([a[0] for a in found]))  # (L, L)
    else:
        flow = found[-1][0].mean(0)  # (L, L): mean over heads
    rows = torch.zeros(len(positions), embeds.shape[0], dtype=torch.float64)
    rows[:, :needed] = flow[positions].to("cpu", torch.float64)
    return rows
