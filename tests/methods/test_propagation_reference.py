# ruff: noqa: N803, N806 - the papers' matrix names (W, Z, R) keep the formulas readable
"""Slow, literal reference implementations of the propagation methods, and their own checks.

Every layer of a small sequential network is written as a matrix, sample by sample, as seed
003 writes convolutions (``vec(F * X) = C(F) vec(X)``) and pooling (``vec(A(X)) = M
vec(X)``): the matrix of a convolution or a max pooling at ``x`` is its Jacobian there, its
bias its value at zero. The backward passes then follow the papers' formulas with explicit
matrices and loops. ``test_propagation_{guided,deeplift,lrp}.py`` compare the fast
implementations with these; the tests here check the references against autograd, so that a
wrong reference cannot make a wrong method pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

# ---- the network as a list of matrices -------------------------------------------------

AFFINE = (nn.Linear, nn.Conv2d)
ROUTING = (nn.MaxPool2d, nn.Flatten)
POOLING = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)
ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid)


@dataclass
class Step:
    """One layer at one sample: its kind, matrix ``W`` (out x in), bias, input and output."""

    module: nn.Module
    kind: str  # "affine", "routing", "pooling", "activation"
    matrix: torch.Tensor | None
    bias: torch.Tensor | None
    x: torch.Tensor  # flattened input
    y: torch.Tensor  # flattened output


def steps(model: nn.Sequential, x: torch.Tensor) -> list[Step]:
    """Run one sample (no batch dimension) through ``model`` layer by layer, as matrices."""
    out: list[Step] = []
    h = x.unsqueeze(0)
    for module in model:
        y = module(h)

        def flat_fn(v: torch.Tensor, module=module, shape=h.shape) -> torch.Tensor:
            return module(v.view(shape)).flatten()

        if isinstance(module, AFFINE):
            bias = flat_fn(torch.zeros_like(h).flatten()).detach()
            matrix = torch.autograd.functional.jacobian(flat_fn, h.flatten())
            out.append(Step(module, "affine", matrix, bias, h.flatten(), y.flatten()))
        elif isinstance(module, ROUTING + POOLING):
            matrix = torch.autograd.functional.jacobian(flat_fn, h.flatten())
            kind = "routing" if isinstance(module, ROUTING) else "pooling"
            out.append(Step(module, kind, matrix, None, h.flatten(), y.flatten()))
        elif isinstance(module, ACTIVATIONS):
            out.append(Step(module, "activation", None, None, h.flatten(), y.flatten()))
        else:  # pragma: no cover - the reference networks use only the layers above
            raise TypeError(type(module))
        h = y.detach()
    return out


def one_hot(n: int, c: int, dtype: torch.dtype) -> torch.Tensor:
    e = torch.zeros(n, dtype=dtype)
    e[c] = 1
    return e


# ---- backprop, deconvolution, guided backprop (seed 003) -------------------------------


def modified_backprop(model: nn.Sequential, x: torch.Tensor, c: int, mode: str) -> torch.Tensor:
    """``S^(h) = diag(1[f^(h) > 0]) W^T S^(h+1)`` (backprop), ``relu(W^T S)`` (deconvolution),
    ``diag(1[f^(h) > 0]) relu(W^T S)`` (guided), from ``S = e_c`` down to the input."""
    signal = None
    for step in reversed(steps(model, x)):
        if signal is None:
            signal = one_hot(step.y.numel(), c, x.dtype)
        if step.kind == "activation":
            mask = (step.x > 0).to(x.dtype)
            if mode == "backprop":
                signal = mask * signal
            elif mode == "deconvolution":
                signal = signal.clamp(min=0)
            else:
                signal = mask * signal.clamp(min=0)
        else:
            signal = step.matrix.T @ signal
    return signal.view(x.shape)


# ---- DeepLIFT, Rescale rule (Shrikumar et al. 2017) ------------------------------------


def deeplift(model: nn.Sequential, x: torch.Tensor, baseline: torch.Tensor, c: int) -> torch.Tensor:
    """``m = Delta y / Delta z`` at every activation, the max-pool rule at every max pool
    (each input's winner carries its part of ``y - y'``), ``W^T`` at every linear layer;
    ``phi = (x - x') * m``. Loops over pooling windows, one by one."""
    at_x, at_ref = steps(model, x), steps(model, baseline)
    m = None
    for step, ref in zip(reversed(at_x), reversed(at_ref), strict=True):
        if m is None:
            m = one_hot(step.y.numel(), c, x.dtype)
        dz = step.x - ref.x
        if step.kind == "activation":
            dy = step.y - ref.y
            grad = torch.autograd.functional.jacobian(step.module, step.x).diagonal()
            ratio = torch.where(dz.abs() < 1e-10, grad, dy / torch.where(dz == 0, 1, dz))
            m = ratio * m
        elif isinstance(step.module, nn.MaxPool2d):
            carried = torch.zeros_like(step.x)
            for j in range(step.y.numel()):
                winner_x = int(step.matrix[j].argmax())
                winner_ref = int(ref.matrix[j].argmax())
                top = max(step.y[j], ref.y[j])
                carried[winner_x] += m[j] * (top - ref.y[j])
                carried[winner_ref] += m[j] * (step.y[j] - top)
            m = torch.where(dz.abs() < 1e-10, step.matrix.T @ m, carried / dz)
        else:
            m = step.matrix.T @ m
    return ((x - baseline).flatten() * m).view(x.shape)


# ---- LRP (Bach et al. 2015; Montavon et al. 2019) --------------------------------------


def _stab(z: torch.Tensor, eps: float) -> torch.Tensor:
    return z + eps * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(b == 0, 0.0, a / torch.where(b == 0, 1.0, b)).to(a.dtype)


def lrp_layer(rule: tuple, W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, R: torch.Tensor):
    """One linear layer, ``z_ij = W_ji x_i``, relevance ``R`` (out) to relevance (in).

    ``rule`` is ``(name, settings)``; every rule is written out with explicit matrices of
    contributions ``Z[j, i]`` and their column sums, as in Montavon et al. 2019, section 10.2.
    """
    name, s = rule
    pos, neg = W.clamp(min=0), W.clamp(max=0)
    xp, xn = x.clamp(min=0), x.clamp(max=0)

    def split(Z: torch.Tensor, denominator: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
        return (Z * _div(R, denominator).unsqueeze(1)).sum(0)  # R_i = sum_j Z_ji R_j / D_j

    if name == "epsilon":
        Z = W * x
        return split(Z, _stab(Z.sum(1) + b, s["epsilon"]), R)
    if name in ("zplus", "alphabeta"):
        Zp = pos * xp + neg * xn
        Rp = split(Zp, _stab(Zp.sum(1) + b.clamp(min=0), 1e-6), R)
        if name == "zplus":
            return Rp
        Zn = neg * xp + pos * xn
        Rn = split(Zn, _stab(Zn.sum(1) + b.clamp(max=0), 1e-6), R)
        return s["alpha"] * Rp - s["beta"] * Rn
    if name == "gamma":
        g = s["gamma"]
        z = W @ x + b
        Zp = (W + g * pos) * xp + (W + g * neg) * xn
        Zn = (W + g * neg) * xp + (W + g * pos) * xn
        Rp = split(Zp, _stab(Zp.sum(1) + b + g * b.clamp(min=0), 1e-6), R * (z > 0))
        Rn = split(Zn, _stab(Zn.sum(1) + b + g * b.clamp(max=0), 1e-6), R * (z < 0))
        return Rp + Rn
    if name == "zbox":
        low, high = torch.full_like(x, s["low"]), torch.full_like(x, s["high"])
        Z = W * x - pos * low - neg * high
        return split(Z, _stab(Z.sum(1) + b - b.clamp(min=0) - b.clamp(max=0), 1e-6), R)
    if name == "flat":
        Z = (W != 0).to(W.dtype)
        return split(Z, _stab(Z.sum(1), 1e-6), R)
    if name == "wsquare":
        Z = W * W
        return split(Z, _stab(Z.sum(1) + b * b, 1e-6), R)
    raise ValueError(name)


def lrp(model: nn.Sequential, x: torch.Tensor, c: int, rules: list[tuple]) -> torch.Tensor:
    """LRP from ``R = f_c(x) e_c``; ``rules[k]`` is the rule of the k-th affine layer. ReLUs
    pass relevance, max pooling and flattening route it, average pooling uses LRP-0 with a
    1e-6 stabiliser (Zennit's ``Norm``)."""
    taken = steps(model, x)
    affine = [s for s in taken if s.kind == "affine"]
    R = None
    for step in reversed(taken):
        if R is None:
            R = one_hot(step.y.numel(), c, x.dtype) * step.y
        if step.kind == "affine":
            R = lrp_layer(rules[affine.index(step)], step.matrix, step.bias, step.x, R)
        elif step.kind == "routing":
            R = step.matrix.T @ R
        elif step.kind == "pooling":
            R = lrp_layer(("epsilon", {"epsilon": 1e-6}), step.matrix, 0 * step.y, step.x, R)
    return R.view(x.shape)


# ---- small networks the references run on ----------------------------------------------


def mlp(bias: bool = True, seed: int = 0, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    torch.manual_seed(seed)
    return (
        nn.Sequential(
            nn.Linear(6, 8, bias=bias),
            activation(),
            nn.Linear(8, 7, bias=bias),
            activation(),
            nn.Linear(7, 3, bias=bias),
        )
        .double()
        .eval()
    )


def cnn(bias: bool = True, seed: int = 0, pool: str = "max") -> nn.Sequential:
    """Convolutions, a ReLU, an overlapping max pooling (or average pooling), a classifier."""
    torch.manual_seed(seed)
    pooling = nn.MaxPool2d(3, stride=1) if pool == "max" else nn.AvgPool2d(2)
    return (
        nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1, bias=bias),
            nn.ReLU(),
            pooling,
            nn.Conv2d(3, 4, 2, bias=bias),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 3 * 3 if pool == "max" else 4 * 2 * 2, 3, bias=bias),
        )
        .double()
        .eval()
    )


def cnn_input(n: int = 2, seed: int = 1) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(n, 2, 6, 6, dtype=torch.float64)


# ---- the references' own checks --------------------------------------------------------


@pytest.mark.parametrize("make, shape", [(mlp, (6,)), (cnn, (2, 6, 6))])
def test_reference_backprop_is_the_gradient(make, shape):
    model = make()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x.unsqueeze(0))[0, 1], x)
    torch.testing.assert_close(modified_backprop(model, x.detach(), 1, "backprop"), grad)


def test_reference_deeplift_sums_to_delta_and_is_exact_on_a_linear_model():
    model = cnn()
    x, baseline = cnn_input(2)
    phi = deeplift(model, x, baseline, 2)
    with torch.no_grad():
        delta = model(x[None])[0, 2] - model(baseline[None])[0, 2]
    torch.testing.assert_close(phi.sum(), delta)
    linear = nn.Sequential(nn.Linear(5, 2)).double()
    x, baseline = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    expected = (x - baseline) * linear[0].weight[1].detach()
    torch.testing.assert_close(deeplift(linear, x, baseline, 1), expected)


def test_reference_lrp0_is_gradient_times_input():
    model = mlp()
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x.unsqueeze(0))[0, 0], x)
    rules = [("epsilon", {"epsilon": 0.0})] * 3
    torch.testing.assert_close(lrp(model, x.detach(), 0, rules), grad * x.detach())
