"""One meaning of ``target`` everywhere: what turns a model output into one score per sample.

A target is

- ``None``: the output already is one score per sample, shape ``(N,)`` or ``(N, 1)``;
- an ``int``: that class for every sample;
- one class per sample: a list, tuple or integer tensor of length ``N``;
- ``"predicted"``: the arg-max class of each sample, resolved once at the input being
  explained (never re-decided at interpolated or perturbed copies);
- a callable ``f(output) -> Tensor[rows]``: any differentiable score (regression,
  segmentation, detection). It receives the model's raw output (after ``output=`` selection
  when one is given) and must return one score per row, computed row by row.

Model outputs may be a tensor, a tuple or list, a dict, or a Hugging Face ``ModelOutput``
(its ``.logits``); ``output=`` (an index, a key or a callable) says which part to use where
that is ambiguous.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union, overload

import torch

from attrib.core.errors import ModelOutputError, TargetError

__all__ = [
    "OutputSelector",
    "ResolvedTarget",
    "Target",
    "check_target_length",
    "given_indices",
    "resolve_target",
    "select_output",
    "target_for_rows",
]

Target = Union[
    int, Sequence[int], torch.Tensor, Literal["predicted"], Callable[[Any], torch.Tensor], None
]
OutputSelector = Union[int, str, Callable[[Any], torch.Tensor], None]


def select_output(output: Any, selector: OutputSelector = None) -> torch.Tensor:
    """The tensor of ``output`` that holds the scores (logits) to explain."""
    if selector is not None:
        try:
            if callable(selector):
                chosen = selector(output)
            elif isinstance(output, Mapping) or hasattr(output, "keys"):
                chosen = output[selector]
            else:
                chosen = output[selector]
        except (KeyError, IndexError, TypeError) as err:
            raise ModelOutputError(
                "output",
                "an index, key or callable that selects a tensor of the model's output",
                selector,
                f"The model returned {_kind(output)}; lookup failed with {err!r}.",
            ) from None
        if not isinstance(chosen, torch.Tensor):
            raise ModelOutputError("output", "a selector that yields a tensor", chosen, "")
        return chosen
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) or hasattr(output, "logits"):
        logits = getattr(output, "logits", None)
        if logits is None and isinstance(output, Mapping):
            logits = output.get("logits")
        if isinstance(logits, torch.Tensor):
            return logits
        tensors = [k for k, v in output.items() if isinstance(v, torch.Tensor)]
        if len(tensors) == 1:
            return output[tensors[0]]
        raise ModelOutputError(
            "output",
            "a model output with one tensor or a 'logits' entry",
            output,
            f"Pass output= one of {tensors} to say which entry holds the scores.",
        )
    if isinstance(output, (tuple, list)):
        tensors = [i for i, v in enumerate(output) if isinstance(v, torch.Tensor)]
        if len(output) == 1 and tensors:
            return output[0]
        raise ModelOutputError(
            "output",
            "a single tensor",
            f"a {type(output).__name__} of {len(output)} items",
            f"Pass output= an index (tensor items at {tensors}) to say which holds the scores.",
        )
    raise ModelOutputError(
        "output",
        "a tensor, tuple, list, dict or ModelOutput",
        output,
        "Pass output= a callable that returns the scores tensor.",
    )


def _kind(output: Any) -> str:
    if isinstance(output, torch.Tensor):
        return f"a tensor of shape {tuple(output.shape)}"
    if isinstance(output, Mapping) or hasattr(output, "keys"):
        return f"a mapping with keys {list(output.keys())}"
    return f"a {type(output).__name__}"


@dataclass(frozen=True)
class ResolvedTarget:
    """A target after checking: class indices per row, a callable, or the output itself."""

    indices: torch.Tensor | None = None
    function: Callable[[Any], torch.Tensor] | None = None
    output: OutputSelector = None

    @property
    def public(self) -> torch.Tensor | Callable | None:
        """What ``Attribution.target`` shows: the per-sample classes or the callable."""
        return self.indices if self.indices is not None else self.function

    def rows(self, sample_index: torch.Tensor) -> ResolvedTarget:
        """The same target for expanded rows, where row r belongs to sample ``sample_index[r]``."""
        if self.indices is None:
            return self
        return ResolvedTarget(
            self.indices[sample_index.to(self.indices.device)], self.function, self.output
        )

    def scores(self, output: Any) -> torch.Tensor:
        """One score per row of ``output``: shape ``(rows,)``."""
        if self.function is not None:
            chosen = select_output(output, self.output) if self.output is not None else output
            scores = self.function(chosen)
            if not isinstance(scores, torch.Tensor):
                raise TargetError("target", "a callable that returns a tensor", scores, "")
            rows = _rows_of(output)
            if scores.dim() == 0 and rows in (None, 1):
                scores = scores.reshape(1)
            if scores.dim() != 1 or (rows is not None and scores.shape[0] != rows):
                raise TargetError(
                    "target",
                    f"a callable that returns one score per row, shape ({rows},)",
                    scores,
                    "Reduce each row's output to a scalar, e.g. lambda out: out[:, 3] or "
                    "(out * mask).sum(dim=(1, 2, 3)).",
                )
            return scores
        logits = select_output(output, self.output)
        if self.indices is None:
            return _single_score(logits)
        return logits.gather(1, self.indices.to(logits.device).view(-1, 1)).squeeze(1)


def _rows_of(output: Any) -> int | None:
    try:
        return select_output(output).shape[0]
    except Exception:
        return None


def _single_score(logits: torch.Tensor) -> torch.Tensor:
    if logits.dim() == 1:
        return logits
    if logits.dim() == 2 and logits.shape[1] == 1:
        return logits[:, 0]
    raise TargetError(
        "target",
        "a class index, one per sample, 'predicted' or a callable (the model returns "
        f"{logits.shape[1] if logits.dim() > 1 else '?'} scores per sample)",
        None,
        "Pass target=<class> or target='predicted'.",
    )


def resolve_target(
    target: Target,
    output: Any,
    n_samples: int,
    output_selector: OutputSelector = None,
) -> ResolvedTarget:
    """Check ``target`` against the model ``output`` at the inputs and fix it per sample.

    ``"predicted"`` becomes the arg-max class of each sample here, once.
    """
    if callable(target) and not isinstance(target, (str, torch.Tensor)):
        resolved = ResolvedTarget(function=target, output=output_selector)
        resolved.scores(output)  # fail now, with a clear message, if it gives the wrong shape
        return resolved
    logits = select_output(output, output_selector)
    if logits.dim() == 0 or logits.shape[0] != n_samples:
        raise ModelOutputError(
            "model output",
            f"a first dimension of {n_samples} (one row per input sample)",
            logits,
            "The model must keep the batch dimension; wrap it so that it does.",
        )
    if target is None:
        _single_score(logits)
        return ResolvedTarget(output=output_selector)
    if logits.dim() != 2:
        raise TargetError(
            "target",
            "a callable when the model output is not (N, classes)",
            target,
            f"The output has shape {tuple(logits.shape)}; pass target=lambda out: ... that "
            "returns one score per sample (for segmentation, e.g. (out[:, c] * mask).sum((1, 2))).",
        )
    n_classes = logits.shape[1]
    if isinstance(target, str):
        if target != "predicted":
            raise TargetError(
                "target", "an int, one int per sample, 'predicted' or a callable", target, ""
            )
        indices = logits.detach().argmax(dim=1)
    else:
        indices = _as_indices(target, n_samples, logits.device)
    bad = (indices < 0) | (indices >= n_classes)
    if bool(bad.any()):
        raise TargetError(
            "target",
            f"class indices in [0, {n_classes}) (the model has {n_classes} classes)",
            target if not isinstance(target, torch.Tensor) else indices[bad][:5].tolist(),
            "Check the class numbering; negative indices are not accepted.",
        )
    return ResolvedTarget(indices=indices, output=output_selector)


def given_indices(target: Target, n_samples: int, device: torch.device) -> torch.Tensor | None:
    """The class per sample of a target that names classes (an int, a sequence, an integer
    tensor), checked for shape but not against a model's classes; ``None`` for ``None``, a
    callable or ``"predicted"``, which need no indices or need the output to find them."""
    if (
        target is None
        or isinstance(target, str)
        or (callable(target) and not isinstance(target, torch.Tensor))
    ):
        return None
    return _as_indices(target, n_samples, device)


def _as_indices(target: Any, n_samples: int, device: torch.device) -> torch.Tensor:
    if isinstance(target, torch.Tensor):
        if target.dtype.is_floating_point or target.dtype == torch.bool or target.is_complex():
            raise TargetError("target", "an integer tensor of class indices", target, "")
        if target.dim() == 0:
            return target.to(device=device, dtype=torch.long).expand(n_samples).clone()
        if target.dim() != 1 or target.shape[0] != n_samples:
            raise TargetError("target", f"one class per sample: shape ({n_samples},)", target, "")
        return target.to(device=device, dtype=torch.long)
    if isinstance(target, bool):
        raise TargetError("target", "an int class index", target, "")
    if isinstance(target, (list, tuple)):
        if len(target) != n_samples:
            raise TargetError(
                "target",
                f"one class per sample ({n_samples} items)",
                target,
                "Give one class index for each sample of the batch.",
            )
        try:
            values = [_index(t) for t in target]
        except TypeError:
            raise TargetError("target", "a list of int class indices", target, "") from None
        return torch.tensor(values, dtype=torch.long, device=device)
    try:
        value = _index(target)
    except TypeError:
        raise TargetError(
            "target", "an int, one int per sample, 'predicted' or a callable", target, ""
        ) from None
    return torch.full((n_samples,), value, dtype=torch.long, device=device)


def _index(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("bool is not a class index")
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.dtype.is_floating_point:
        return int(value)
    return operator.index(value)


def check_target_length(target: Target, n_samples: int) -> None:
    """Fail early when a per-sample target does not have one entry per sample."""
    if (isinstance(target, torch.Tensor) and target.dim() == 1) or isinstance(
        target, (list, tuple)
    ):
        if len(target) != n_samples:
            raise TargetError(
                "target",
                f"one class per sample ({n_samples} items)",
                target,
                "Give one class index for each sample of the batch.",
            )


@overload
def target_for_rows(target: ResolvedTarget, sample_index: torch.Tensor) -> ResolvedTarget: ...


@overload
def target_for_rows(target: Target, sample_index: torch.Tensor) -> Target: ...


def target_for_rows(
    target: Target | ResolvedTarget, sample_index: torch.Tensor
) -> Target | ResolvedTarget:
    """The target of rows that belong to samples ``sample_index`` (before or after resolving)."""
    if isinstance(target, ResolvedTarget):
        return target.rows(sample_index)
    if isinstance(target, torch.Tensor) and target.dim() == 1:
        return target[sample_index.to(target.device)]
    if isinstance(target, (list, tuple)):
        return [target[i] for i in sample_index.tolist()]
    return target
