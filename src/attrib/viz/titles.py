"""Titles of drawn maps: the method, the explained class's name and its score."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from attrib.core.result import Attribution

__all__ = ["explained_class", "map_title"]


def explained_class(
    attribution: Attribution, index: int, class_names: Sequence[str] | None = None
) -> tuple[str, float | None]:
    """``(class label, softmax probability)`` of the class explained for sample ``index``.

    The label is the class name where ``class_names`` has it, else ``"class k"``; the
    probability is ``None`` where the target is not a class or the output is not logits.
    """
    target = attribution.target
    if not isinstance(target, torch.Tensor) or target.dim() != 1 or index >= len(target):
        return "", None
    k = int(target[index])
    label = (
        class_names[k] if class_names is not None and 0 <= k < len(class_names) else f"class {k}"
    )
    output = attribution.output
    probability = None
    if isinstance(output, torch.Tensor) and output.dim() == 2 and index < output.shape[0]:
        if 0 <= k < output.shape[1]:
            probability = float(output[index].detach().float().softmax(-1)[k])
    return label, probability


def map_title(
    attribution: Attribution,
    index: int = 0,
    class_names: Sequence[str] | None = None,
    method: str | None = None,
) -> str:
    """``"GradCAM\\nespresso (p=0.94)"``: the method on the first line, the class below."""
    name = method or attribution.method or "attribution"
    label, probability = explained_class(attribution, index, class_names)
    if not label:
        return name
    score = f" (p={probability:.2f})" if probability is not None else ""
    return f"{name}\n{label}{score}"
