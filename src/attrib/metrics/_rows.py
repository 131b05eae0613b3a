"""How metrics evaluate rows: model scores of perturbed copies, and explanations in batches.

Metrics describe their work as rows of the core engine (``attrib.core.batching.run_chunks``):
row ``(i, j)`` is item ``j`` of sample ``i``. By convention **item 0 of every sample is the
sample itself, unperturbed**. The engine visits each sample's rows in order, so item 0 is
always scored before (or in the same chunk as) the sample's other items; that is where
``target="predicted"`` is resolved, once per sample, without an extra forward. A metric that
evaluates ``n`` samples with ``k`` items each therefore makes exactly
``ceil(n * k / batch_size)`` forwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from attrib.core.batching import Chunk, default_batch_size, run_chunks
from attrib.core.errors import SettingError, TargetError
from attrib.core.grad import decide_target, forward_scores
from attrib.core.inputs import Inputs, Model
from attrib.core.result import Attribution
from attrib.core.target import (
    OutputSelector,
    ResolvedTarget,
    Target,
    resolve_target,
    select_output,
    target_for_rows,
)

__all__ = ["Explainer", "RowScores", "Score", "explain", "fixed_target", "model_of"]

Score = Literal["logit", "probability", "accuracy"]
SCORES = ("logit", "probability", "accuracy")
Explainer = Callable[..., Attribution]
"""Anything called as ``method(x, target=...)`` that returns an ``Attribution``."""


class RowScores:
    """One score per row: the target's logit, its softmax probability, or 1/0 for whether the
    row's arg-max is the target class ("accuracy", as in ROAD).

    The target is fixed per sample, never re-decided at a perturbed row: ``"predicted"`` is
    the arg-max at item 0 (the clean sample). After the rows have run, ``classes`` holds the
    class of each sample (``None`` for single-score models and callable targets).
    """

    def __init__(
        self,
        model: nn.Module | Callable[..., Any],
        target: Target | ResolvedTarget,
        n_samples: int,
        score: str = "logit",
        output: OutputSelector = None,
    ) -> None:
        if score not in SCORES:
            raise SettingError("score", f"one of {SCORES}", score, "")
        if isinstance(target, ResolvedTarget):
            target = target.public
        self.model = model
        self.target = target
        self.score = score
        self.output = output
        self.classes: torch.Tensor | None = None
        self._by_class = target is not None and (
            isinstance(target, (str, int, list, tuple, torch.Tensor)) or not callable(target)
        )
        if not self._by_class and score != "logit":
            raise SettingError(
                "score",
                "'logit' when the target is None or a callable (there is no class to take "
                "a probability or an accuracy of)",
                score,
                "Pass target=<class>, a class per sample or 'predicted' for class scores.",
            )
        if isinstance(target, str) and target != "predicted":
            raise TargetError(
                "target", "an int, one int per sample, 'predicted' or a callable", target, ""
            )
        if self._by_class:
            self.classes = torch.full((n_samples,), -1, dtype=torch.long)

    def __call__(self, rows: Inputs, chunk: Chunk) -> torch.Tensor:
        if not self._by_class:
            scores, _, _ = forward_scores(
                self.model, rows, target_for_rows(self.target, chunk.sample), self.output
            )
            return scores

        def pick(out: Any) -> torch.Tensor:
            logits = select_output(out, self.output)
            classes = self._classes(logits, chunk).to(logits.device)
            if self.score == "accuracy":
                return (logits.argmax(dim=1) == classes).to(logits.dtype)
            values = logits.softmax(dim=1) if self.score == "probability" else logits
            return values.gather(1, classes.view(-1, 1)).squeeze(1)

        scores, _, _ = forward_scores(self.model, rows, pick)
        return scores

    def _classes(self, logits: torch.Tensor, chunk: Chunk) -> torch.Tensor:
        if logits.dim() != 2:
            raise TargetError(
                "target",
                "a callable (with score='logit') when the model output is not (N, classes)",
                self.target,
                f"The output has shape {tuple(logits.shape)}.",
            )
        sample = chunk.sample.cpu()
        known = self.classes
        assert known is not None  # by class: made in __init__
        if self.target != "predicted":
            rows = target_for_rows(self.target, chunk.sample)
            classes = resolve_target(rows, logits, len(chunk)).indices
            assert classes is not None  # a class target resolves to class indices
            known[sample] = classes.cpu()
            return classes
        clean = (chunk.item == 0).cpu()
        if bool(clean.any()):  # "predicted" decided by the core, at each sample's clean row
            at_clean = logits[clean.to(logits.device)]
            decided = resolve_target("predicted", at_clean, at_clean.shape[0]).indices
            assert decided is not None  # "predicted" resolves to indices or raises
            known[sample[clean]] = decided.cpu()
        classes = known[sample]
        if bool((classes < 0).any()):  # pragma: no cover - guarded by the row convention
            raise RuntimeError("a sample's rows were scored before its clean row")
        return classes


def fixed_target(
    model: nn.Module | Callable[..., Any],
    x: torch.Tensor,
    target: Target,
    output: OutputSelector = None,
    batch_size: int | None = None,
) -> Target:
    """``target`` with ``"predicted"`` replaced by the classes predicted at ``x`` (the core's
    ``decide_target``: one forward per chunk of ``batch_size`` samples); every other target
    as it is, at no forward.

    Metrics that call a method at perturbed inputs (or at a randomized model) need the target
    decided once, at the clean input of the original model.
    """
    if isinstance(target, ResolvedTarget):
        return target.public
    if not (isinstance(target, str) and target == "predicted"):
        return target
    decided, _ = decide_target(model, x, target, output=output, batch_size=batch_size)
    return decided


def explain(
    method: Explainer,
    x: torch.Tensor,
    target: Target,
    batch_size: int | None = None,
) -> tuple[torch.Tensor, int | None]:
    """``method(x, target=target).values`` computed ``batch_size`` samples at a time, and the
    attribution's ``channel_dim``; the method's own batching applies inside each call."""
    if not callable(method):
        raise SettingError("method", "a method: called as method(x, target=...)", method, "")
    if batch_size is None or batch_size >= x.shape[0]:
        result = _call(method, x, target)
        return result.values.detach(), result.channel_dim
    channel_dim: list[int | None] = []

    def evaluate(chunk: Chunk) -> torch.Tensor:
        result = _call(method, x[chunk.start : chunk.stop], target_for_rows(target, chunk.sample))
        channel_dim.append(result.channel_dim)
        return result.values.detach()

    kept = run_chunks(evaluate, x.shape[0], 1, batch_size, "keep", device=x.device)
    return kept.squeeze(1), channel_dim[0]


def _call(method: Explainer, x: torch.Tensor, target: Target) -> Attribution:
    result = method(x, target=target)
    if not isinstance(result, Attribution) or not isinstance(result.values, torch.Tensor):
        raise SettingError(
            "method",
            "a method that returns an Attribution with one tensor of values",
            result,
            "",
        )
    return result


def model_of(method: Explainer, model: Model | None) -> Model:
    """The model a method explains: ``model`` if given (it must be the method's), else
    ``method.model``."""
    own = getattr(method, "model", None)
    if model is None:
        if own is None:
            raise SettingError(
                "model",
                "the model (the method has no .model attribute)",
                None,
                "Pass model= the module the method explains.",
            )
        return own
    if own is not None and own is not model:
        raise SettingError(
            "model",
            "the module the method explains (method.model)",
            type(model).__name__,
            "Build the method with this model, e.g. Saliency(model).",
        )
    return model


def rows_per_call(x: torch.Tensor, total_rows: int, batch_size: int | None) -> int:
    """``batch_size``, or the core's default for rows like ``x``'s."""
    return batch_size or default_batch_size(x, total_rows)
