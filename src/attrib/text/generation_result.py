"""What ``explain_generation`` returns: one row of token scores per generated token.

``matrix[s, j]`` is the attribution of generated step ``s``'s score (the log-probability of
the token the model wrote at position ``prompt_length + s``, or a contrast of two
log-probabilities) to token ``j`` of the whole sequence. Only earlier tokens can matter to a
causal model: ``matrix[s, j]`` is NaN for ``j >= prompt_length + s`` (the token itself and
every later one), so "not defined" is never confused with "no effect" (0).
"""

from __future__ import annotations

import html as _html
import json
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from attrib.core.errors import SettingError

__all__ = ["GenerationAttribution"]

_POSITIVE = (214, 39, 40)
_NEGATIVE = (31, 119, 180)


@dataclass(frozen=True)
class GenerationAttribution:
    """Attributions of each generated token's score to every earlier token.

    Attributes:
        tokens: every token of the sequence (prompt, then generated), as the tokenizer
            spells them.
        token_ids: ``(T,)`` the ids of ``tokens``.
        prompt_length: ``P``, the number of prompt tokens; step ``s`` explains token
            ``P + s``.
        matrix: ``(T - P, T)`` float64; row ``s`` holds the scores of tokens ``0 ..
            P + s - 1``, NaN from ``P + s`` on (the explained token and later ones).
        method: the method's name (``"gradient_x_input"``, ...).
        params: its settings (``steps``, ``baseline``, ``token_reduction``, ...).
        target_ids: ``(T - P,)`` the token explained at each step (the generated one).
        contrast_ids: ``(T - P,)`` the contrast token per step (``-1``: none), or ``None``.
        scores: ``(T - P,)`` the explained score at each step: ``log p(target)``, minus
            ``log p(contrast)`` where there is one.
    """

    tokens: list[str]
    token_ids: torch.Tensor
    prompt_length: int
    matrix: torch.Tensor
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    target_ids: torch.Tensor | None = None
    contrast_ids: torch.Tensor | None = None
    scores: torch.Tensor | None = None

    @property
    def steps(self) -> int:
        """The number of generated (explained) tokens."""
        return int(self.matrix.shape[0])

    @property
    def generated_tokens(self) -> list[str]:
        return self.tokens[self.prompt_length :]

    @property
    def prompt_tokens(self) -> list[str]:
        return self.tokens[: self.prompt_length]

    def row(self, step: int) -> torch.Tensor:
        """The defined scores of one step: tokens ``0 .. P + step - 1``, ``(P + step,)``."""
        step = self._check_step(step)
        return self.matrix[step, : self.prompt_length + step]

    def _check_step(self, step: int) -> int:
        if (
            isinstance(step, bool)
            or not isinstance(step, int)
            or not -self.steps <= step < self.steps
        ):
            raise SettingError("step", f"an int in [0, {self.steps})", step, "")
        return step % self.steps

    def to_dict(self) -> dict[str, Any]:
        """Plain Python data (NaN as ``None``), as ``to_json`` writes it."""

        def plain(values: torch.Tensor | None) -> Any:
            if values is None:
                return None
            return [
                plain(v) if isinstance(v, torch.Tensor) and v.dim() else _number(v) for v in values
            ]

        return {
            "method": self.method,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
            "tokens": list(self.tokens),
            "token_ids": [int(i) for i in self.token_ids],
            "prompt_length": self.prompt_length,
            "matrix": plain(self.matrix),
            "undefined": "null: the explained token itself and later tokens",
            "target_ids": None if self.target_ids is None else [int(i) for i in self.target_ids],
            "contrast_ids": (
                None if self.contrast_ids is None else [int(i) for i in self.contrast_ids]
            ),
            "scores": plain(self.scores),
        }

    def to_json(self, **kwargs: Any) -> str:
        """The result as JSON (``json.dumps`` keyword arguments pass through)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def html(self, step: int | None = None) -> str:
        """Highlighted text: for each step (or the one ``step``), the earlier tokens coloured
        by their score (red for, blue against; opacity ``|s| / max |s|`` of that step), the
        explained token boxed. Every token is HTML-escaped."""
        steps = range(self.steps) if step is None else [self._check_step(step)]
        lines = [
            '<div style="font-family:system-ui,sans-serif;line-height:1.9;max-width:60em">'
            f'<div style="font-weight:600">{_html.escape(self.method)}</div>'
        ]
        for s in steps:
            values = self.row(s).tolist()
            scale = max((abs(v) for v in values), default=0.0)
            parts = [_span(t, v, scale) for t, v in zip(self.tokens, values, strict=False)]
            explained = _html.escape(self.tokens[self.prompt_length + s])
            parts.append(
                f'<span style="border:1px solid #333;border-radius:3px;padding:0 2px">'
                f"{explained}</span>"
            )
            lines.append(f'<div style="margin:2px 0 6px">{" ".join(parts)}</div>')
        lines.append("</div>")
        return "".join(lines)


def _span(token: str, value: float, scale: float) -> str:
    alpha = 0.0 if scale <= 0 else min(1.0, abs(value) / scale)
    r, g, b = _POSITIVE if value >= 0 else _NEGATIVE
    tip = _html.escape(f"{token}: {value:+.4g}", quote=True)
    return (
        f'<span title="{tip}" style="background:rgba({r},{g},{b},{alpha:.3f});'
        f'border-radius:3px;padding:0 1px">{_html.escape(token)}</span>'
    )


def _number(value: Any) -> float | None:
    v = float(value)
    return None if math.isnan(v) or math.isinf(v) else v


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)
