"""Quadrature rules on [0, 1], as pure functions ``rule(n) -> (alphas, weights)``.

Path methods approximate ``integral_0^1 g(alpha) d alpha`` by ``sum_k weights[k] g(alphas[k])``.
Every rule integrates constants exactly (weights sum to 1). Names follow Captum's where they
exist (``"gausslegendre"`` is accepted for ``"gauss_legendre"``).

- Riemann left / right / middle: ``alpha_k = k/n``, ``(k+1)/n``, ``(k+1/2)/n``; weights ``1/n``.
  The Riemann sum of Sundararajan et al. (2017), ``(1/m) sum_{k=1..m} grad(x' + (k/m)(x - x'))``,
  is the right rule.
- Trapezoid: ``n`` equally spaced nodes including both ends, end weights halved.
- Gauss-Legendre: the ``n`` roots of the Legendre polynomial mapped to [0, 1]; exact for
  polynomials of degree ``2n - 1``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from attrib.core.errors import SettingError

__all__ = [
    "RULES",
    "gauss_legendre",
    "quadrature",
    "riemann_left",
    "riemann_middle",
    "riemann_right",
    "riemann_trapezoid",
]

Rule = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


def _uniform(n: int) -> torch.Tensor:
    return torch.full((n,), 1.0 / n, dtype=torch.float64)


def riemann_left(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``alpha_k = k/n``, k = 0..n-1."""
    return torch.arange(n, dtype=torch.float64) / n, _uniform(n)


def riemann_right(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``alpha_k = k/n``, k = 1..n (Sundararajan et al. 2017, eq. 3)."""
    return torch.arange(1, n + 1, dtype=torch.float64) / n, _uniform(n)


def riemann_middle(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``alpha_k = (k + 1/2)/n``, k = 0..n-1."""
    return (torch.arange(n, dtype=torch.float64) + 0.5) / n, _uniform(n)


def riemann_trapezoid(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n >= 2`` equally spaced nodes with both ends; the end weights are halved."""
    if n < 2:
        raise SettingError("steps", "at least 2 steps for the trapezoid rule", n, "")
    alphas = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    weights = torch.full((n,), 1.0 / (n - 1), dtype=torch.float64)
    weights[0] = weights[-1] = 0.5 / (n - 1)
    return alphas, weights


def gauss_legendre(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n``-point Gauss-Legendre rule on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return (
        torch.from_numpy((nodes + 1.0) / 2.0).to(torch.float64),
        torch.from_numpy(weights / 2.0).to(torch.float64),
    )


RULES: dict[str, Rule] = {
    "riemann_left": riemann_left,
    "riemann_right": riemann_right,
    "riemann_middle": riemann_middle,
    "riemann_trapezoid": riemann_trapezoid,
    "trapezoid": riemann_trapezoid,
    "gauss_legendre": gauss_legendre,
    "gausslegendre": gauss_legendre,
}


def quadrature(rule: str | Rule, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alphas, weights)`` of ``steps`` nodes of ``rule`` (a name or a callable)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise SettingError("steps", "an int >= 1", steps, "")
    if callable(rule):
        alphas, weights = rule(steps)
        return torch.as_tensor(alphas, dtype=torch.float64), torch.as_tensor(
            weights, dtype=torch.float64
        )
    if rule not in RULES:
        raise SettingError(
            "rule",
            f"one of {sorted(RULES)} or a callable n -> (alphas, weights)",
            rule,
            "",
        )
    return RULES[rule](steps)
