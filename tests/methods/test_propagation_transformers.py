# ruff: noqa: N803, N806, E741 - the papers' names (W, Q, K, V, A, O, R; l for a query) keep formulas readable
"""LRP (AttnLRP, CP-LRP) and DeepLIFT through one transformer block, against literal references.

The block is written as Hugging Face's eager attention writes it (``matmul``, ``* scale``,
``+ mask``, ``softmax``, ``matmul``), with a position embedding added to the input, residual
sums, layer norms, a GELU and a gated product in the MLP, a mean over tokens and a linear
head. The references below follow the papers' formulas one sample at a time, with explicit
matrices and loops over tokens and keys; they share nothing with the implementation (no
propagation mode, no autograd rules). LXT (the authors' implementation of AttnLRP) computes
the same block with its own rule functions, to 1e-4.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attrib.core.errors import LayerError
from attrib.methods.propagation import (
    CPLRP,
    LRP,
    AttnLRP,
    DeepLIFT,
    EpsilonPlus,
)
from tests.conftest import assert_state_restored, model_state

L, D, HEADS, HIDDEN, CLASSES = 4, 6, 2, 8, 3


class Block(nn.Module):
    """One pre-softmax-masked attention block and a gated MLP, then mean pooling and a head."""

    def __init__(self, seed: int = 0, causal: bool = True) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.position = nn.Parameter(torch.randn(L, D) * 0.5)
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.up, self.gate = nn.Linear(D, HIDDEN), nn.Linear(D, HIDDEN, bias=False)
        self.down = nn.Linear(HIDDEN, D)
        self.head = nn.Linear(D, CLASSES)
        for ln in (self.ln1, self.ln2):
            nn.init.uniform_(ln.weight, 0.5, 1.5)
            nn.init.uniform_(ln.bias, -0.3, 0.3)
        mask = torch.zeros(L, L)
        if causal:  # as Hugging Face's eager masks: the most negative float, not -inf
            mask = mask.masked_fill(torch.ones(L, L, dtype=torch.bool).triu(1), -3.0e38)
        self.register_buffer("mask", mask)

    def heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(t.shape[0], L, HEADS, D // HEADS).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + self.position
        q, k, v = self.heads(self.q(h)), self.heads(self.k(h)), self.heads(self.v(h))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (D // HEADS) ** -0.5 + self.mask
        attention = torch.softmax(scores, dim=-1)
        o = torch.matmul(attention, v).transpose(1, 2).reshape(x.shape[0], L, D)
        n1 = self.ln1(h + self.o(o))
        n2 = self.ln2(n1 + self.down(F.gelu(self.up(n1)) * self.gate(n1)))
        return self.head(n2.mean(1))


def block(seed: int = 0, causal: bool = True) -> Block:
    return Block(seed, causal).double().eval()


# ---- the LRP reference -----------------------------------------------------------------


def stab(z: torch.Tensor, eps: float) -> torch.Tensor:
    """``z + eps * sign(z)``, ``sign(0) = +1``."""
    return z + eps * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


def eps_linear(x: torch.Tensor, W: torch.Tensor, b, R: torch.Tensor, eps: float) -> torch.Tensor:
    """Epsilon rule per token: ``R_in[t, i] = sum_j x[t, i] W[j, i] R[t, j] / stab(z[t, j])``."""
    z = x @ W.T + (0 if b is None else b)
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for i in range(x.shape[1]):
            out[t, i] = sum(x[t, i] * W[j, i] * R[t, j] / stab(z[t, j], eps) for j in range(len(W)))
    return out


def ln_reference(r: torch.Tensor, ln: nn.LayerNorm, R: torch.Tensor, eps: float) -> torch.Tensor:
    """Layer norm with 1/sigma constant: per token the matrix ``J = diag(w / sigma)(I - 11^T/d)``
    plus the bias, and its epsilon rule ``R_in = r * J^T (R / stab(y))``."""
    out = torch.zeros_like(r)
    d = r.shape[1]
    for t in range(r.shape[0]):
        sigma = torch.sqrt(r[t].var(unbiased=False) + ln.eps)
        J = torch.diag(ln.weight / sigma) @ (torch.eye(d, dtype=r.dtype) - 1.0 / d)
        y = J @ r[t] + ln.bias
        out[t] = r[t] * (J.T @ (R[t] / stab(y, eps)))
    return out


def lrp_reference(
    m: Block, x: torch.Tensor, c: int, softmax: str, eps: float, stabilizer: float
) -> torch.Tensor:
    """AttnLRP (``softmax="taylor"``) or CP-LRP (``"detach"``) of one sample ``x`` (L, D)."""
    s = stabilizer
    dh = D // HEADS
    with torch.no_grad():
        h = x + m.position
        Qf, Kf, Vf = m.q(h), m.k(h), m.v(h)
        per_head = []
        for head in range(HEADS):
            cols = slice(head * dh, (head + 1) * dh)
            Q, K, V = Qf[:, cols], Kf[:, cols], Vf[:, cols]
            S = Q @ K.T
            Z = S * dh**-0.5 + m.mask
            A = torch.softmax(Z, dim=-1)
            per_head.append((Q, K, V, S, Z, A, A @ V))
        o = torch.cat([p[6] for p in per_head], dim=1)
        oo = m.o(o)
        r1 = h + oo
        n1 = m.ln1(r1)
        a, u = m.up(n1), m.gate(n1)
        g = F.gelu(a)
        mm = g * u
        f = m.down(mm)
        r2 = n1 + f
        n2 = m.ln2(r2)
        pooled = n2.mean(0)
        out = m.head(pooled)

        R_out = torch.zeros(CLASSES, dtype=x.dtype)
        R_out[c] = out[c]
        R_pooled = eps_linear(pooled[None], m.head.weight, m.head.bias, R_out[None], eps)[0]
        R_n2 = n2 / L * (R_pooled / stab(pooled, s))  # the mean: Norm
        R_r2 = ln_reference(r2, m.ln2, R_n2, s)
        R_n1 = n1 * R_r2 / stab(r2, s)  # the residual sum: Norm
        R_f = f * R_r2 / stab(r2, s)
        R_mm = eps_linear(mm, m.down.weight, m.down.bias, R_f, eps)
        R_g, R_u = R_mm / 2, R_mm / 2  # the gated product: uniform
        R_a = R_g  # GELU: identity
        R_n1 = R_n1 + eps_linear(n1, m.up.weight, m.up.bias, R_a, eps)
        R_n1 = R_n1 + eps_linear(n1, m.gate.weight, None, R_u, eps)
        R_r1 = ln_reference(r1, m.ln1, R_n1, s)
        R_h = h * R_r1 / stab(r1, s)
        R_oo = oo * R_r1 / stab(r1, s)
        R_o = eps_linear(o, m.o.weight, m.o.bias, R_oo, eps)
        R_Q, R_K, R_V = (torch.zeros(L, D, dtype=x.dtype) for _ in range(3))
        for head, (Q, K, V, S, Z, A, O) in enumerate(per_head):
            cols = slice(head * dh, (head + 1) * dh)
            R_O = R_o[:, cols]
            # A @ V: uniform (both depend on x) or, with A detached, the epsilon rule in V
            share = R_O / stab(2 * O, s) if softmax == "taylor" else R_O / stab(O, s)
            R_A = torch.zeros(L, L, dtype=x.dtype)
            for l in range(L):
                for t in range(L):
                    for e in range(dh):
                        R_A[l, t] += A[l, t] * V[t, e] * share[l, e]
                        R_V[t, head * dh + e] += A[l, t] * V[t, e] * share[l, e]
            if softmax != "taylor":
                continue
            # softmax (Prop. 3.1): R_z = z (R_A - A sum R_A), row by row
            R_Z = torch.zeros(L, L, dtype=x.dtype)
            for l in range(L):
                for t in range(L):
                    R_Z[l, t] = Z[l, t] * (R_A[l, t] - A[l, t] * R_A[l].sum())
            scaled = S * dh**-0.5
            R_S = scaled * R_Z / stab(Z, s)  # + mask: a bias takes its share; * scale passes
            share = R_S / stab(2 * S, s)  # Q K^T: uniform
            for l in range(L):
                for t in range(L):
                    for e in range(dh):
                        R_Q[l, head * dh + e] += Q[l, e] * K[t, e] * share[l, t]
                        R_K[t, head * dh + e] += Q[l, e] * K[t, e] * share[l, t]
        for W, R in ((m.q, R_Q), (m.k, R_K), (m.v, R_V)):
            R_h = R_h + eps_linear(h, W.weight, W.bias, R, eps)
        return x * R_h / stab(h, s)  # the position embedding: a bias


@pytest.mark.parametrize("composite, softmax", [(AttnLRP, "taylor"), (CPLRP, "detach")])
def test_every_transformer_rule_matches_the_literal_reference(composite, softmax):
    m = block()
    x = torch.randn(3, L, D, dtype=torch.float64)
    targets = [0, 2, 1]
    result = LRP(m, composite=composite(epsilon=0.01, stabilizer=1e-3))(x, target=targets)
    expected = torch.stack(
        [lrp_reference(m, x[i], c, softmax, 0.01, 1e-3) for i, c in enumerate(targets)]
    )
    torch.testing.assert_close(result.values, expected, rtol=1e-9, atol=1e-12)


def test_cp_lrp_conserves_on_a_block_without_biases():
    # Ali et al. 2022: with the softmax and the layer norm's scale detached, every rule left is
    # LRP-0 on a linear map, a sum or a uniform split: with no bias (nor position embedding)
    # and no stabiliser, sum R = f_c(x) exactly (up to float64 rounding)
    m = block(causal=False)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("bias") or name == "position":
                p.zero_()
    x = torch.randn(4, L, D, dtype=torch.float64)
    result = LRP(m, composite=CPLRP(epsilon=0.0, stabilizer=0.0))(x, target=1)
    scale = float(result.output[:, 1].abs().max())
    assert float(result.delta.abs().max()) <= 1e-12 * scale
    # AttnLRP: the softmax rule alone is not conservative (Prop. 3.1 drops the bias term)
    attn = LRP(m, composite=AttnLRP(epsilon=0.0, stabilizer=0.0))(x, target=1)
    assert float(attn.delta.abs().max()) > 1e-6 * scale


# ---- LXT: the authors' rule functions on the same block ---------------------------------


def lxt_block(m: Block, x: torch.Tensor, detach_softmax: bool, eps: float) -> torch.Tensor:
    """The block written with LXT's explicit rule functions (``lxt.explicit``)."""
    import lxt.explicit.functional as lf
    from lxt.explicit.rules import epsilon_lrp, identity

    def linear(t, layer):
        return lf.linear_epsilon(t, layer.weight, layer.bias, eps)

    def heads(t):
        return t.view(t.shape[0], L, HEADS, D // HEADS).transpose(1, 2)

    n = x.shape[0]
    h = lf.add2(x, m.position.expand(n, L, D), epsilon=eps)
    q, k, v = heads(linear(h, m.q)), heads(linear(h, m.k)), heads(linear(h, m.v))
    scores = lf.matmul(q, k.transpose(-1, -2), epsilon=eps)
    # a plain "* scale" would scale LXT's relevance (it flows as a gradient): identity rule
    scores = identity(lambda t: t * (D // HEADS) ** -0.5, scores)
    scores = lf.add2(scores, m.mask.expand_as(scores), epsilon=eps)
    attention = lf.softmax(scores, -1)
    if detach_softmax:
        fixed = attention.detach()
        o = epsilon_lrp(lambda t: torch.matmul(fixed, t), eps, v)  # A v with A constant
    else:
        o = lf.matmul(attention, v, epsilon=eps)
    o = o.transpose(1, 2).reshape(n, L, D)
    r1 = lf.add2(h, linear(o, m.o), epsilon=eps)
    n1 = lf.layer_norm(r1, m.ln1.weight, m.ln1.bias, m.ln1.eps)
    gated = lf.mul2(identity(F.gelu, linear(n1, m.up)), linear(n1, m.gate))
    r2 = lf.add2(n1, linear(gated, m.down), epsilon=eps)
    n2 = lf.layer_norm(r2, m.ln2.weight, m.ln2.bias, m.ln2.eps)
    return linear(lf.mean(n2, 1, False, eps), m.head)


@pytest.mark.parametrize("composite, detach", [(AttnLRP, False), (CPLRP, True)])
def test_agrees_with_lxt(composite, detach):
    pytest.importorskip("lxt")
    m = block()
    for p in m.parameters():
        p.requires_grad_(False)
    x = torch.randn(3, L, D, dtype=torch.float64)
    targets = torch.tensor([0, 2, 1])
    # LXT's stabilisers add +eps whatever the sign (ours: eps * sign); at 1e-9 both are far
    # below the 1e-4 agreement asked, and LXT's layer norm keeps its own fixed 1e-6
    tracked = x.clone().requires_grad_(True)
    out = lxt_block(m, tracked, detach, 1e-9)
    seed = torch.zeros_like(out)
    seed[torch.arange(3), targets] = out[torch.arange(3), targets].detach()
    out.backward(seed)
    for p in m.parameters():
        p.requires_grad_(True)
    theirs = tracked.grad
    ours = LRP(m, composite=composite(epsilon=1e-9, stabilizer=1e-9))(x, target=targets).values
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4 * float(theirs.abs().max()))


# ---- DeepLIFT: multipliers of every step, as explicit matrices ---------------------------


class SmallBlock(nn.Module):
    """Layer norm, one attention head, a residual sum, mean pooling and a head."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.ln = nn.LayerNorm(D)
        nn.init.uniform_(self.ln.weight, 0.5, 1.5)
        nn.init.uniform_(self.ln.bias, -0.3, 0.3)
        self.q, self.k, self.v = (nn.Linear(D, D) for _ in range(3))
        self.head = nn.Linear(D, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.ln(x)
        scores = torch.matmul(self.q(n), self.k(n).transpose(-1, -2)) / math.sqrt(D)
        o = torch.matmul(torch.softmax(scores, dim=-1), self.v(n))
        return self.head((x + o).mean(1))


def ln_multipliers(x: torch.Tensor, r: torch.Tensor, ln: nn.LayerNorm) -> torch.Tensor:
    """DeepLIFT's multiplier matrix of a layer norm on one token, ``x`` against ``r``.

    ``c = C x`` (``C = I - 11^T/d``, linear), ``q = c^2`` (Rescale: ``c + c'``), ``mu =
    mean(q)``, ``rho = rsqrt(mu + eps)`` (Rescale: ``Delta rho / Delta mu``), ``y = c * rho``
    (product rule: ``mean(rho)`` for ``c``, ``mean(c)`` for ``rho``), then ``* w``:

        M = diag(w) (diag(rho_bar) + c_bar (drho/dmu) (1/d) (c + c')^T) C.
    """
    d = len(x)
    C = torch.eye(d, dtype=x.dtype) - 1.0 / d
    cx, cr = C @ x, C @ r
    mx, mr = (cx**2).mean(), (cr**2).mean()
    rx, rr = torch.rsqrt(mx + ln.eps), torch.rsqrt(mr + ln.eps)
    ratio = (rx - rr) / (mx - mr)
    inner = torch.diag((rx + rr).expand(d) / 2) + torch.outer((cx + cr) / 2, ratio * (cx + cr) / d)
    return torch.diag(ln.weight) @ inner @ C


def softmax_multipliers(z: torch.Tensor, zr: torch.Tensor, m_out: torch.Tensor) -> torch.Tensor:
    """DeepLIFT's multipliers at a softmax row's input ``z`` (reference row ``zr``) from those
    at its output. ``u = z - max(z)``; ``e = exp(u)`` (Rescale ``D_e``), ``S = sum(e)``, ``r =
    1/S`` (Rescale ``rho``), ``y = e * r`` (product rule), so at ``u``

        M[i, j] = delta_ij r_bar D_e[j] + e_bar[i] rho D_e[j];

    the maximum is a max pooling: its difference goes to the winner at ``z`` (the part ``top
    - max(zr)``) and at ``zr`` (``max(z) - top``), each divided by that entry's ``z - zr``.
    """
    c, cr = z.max(), zr.max()
    u, ur = z - c, zr - cr
    ex, er = torch.exp(u), torch.exp(ur)
    # where u = u' (both rows' maxima sit there: 0 - 0) the Rescale rule takes exp' = e
    same = (u - ur).abs() < 1e-10
    De = torch.where(same, ex, (ex - er) / torch.where(same, 1.0, u - ur))
    sx, sr = ex.sum(), er.sum()
    rho = (1 / sx - 1 / sr) / (sx - sr)
    r_bar = (1 / sx + 1 / sr) / 2
    e_bar = (ex + er) / 2
    n = len(z)
    M = torch.zeros(n, n, dtype=z.dtype)
    for i in range(n):
        for j in range(n):
            M[i, j] = (r_bar if i == j else 0.0) * De[j] + e_bar[i] * rho * De[j]
    m_u = M.T @ m_out
    top = torch.maximum(c, cr)
    m_max = torch.zeros(n, dtype=z.dtype)  # the max pooling's multipliers at z
    m_max[int(z.argmax())] += (top - cr) / (z - zr)[int(z.argmax())]
    m_max[int(zr.argmax())] += (c - top) / (z - zr)[int(zr.argmax())]
    return m_u - m_u.sum() * m_max


def deeplift_reference(m: SmallBlock, x: torch.Tensor, r: torch.Tensor, c: int) -> torch.Tensor:
    """``phi = (x - x') * m_x`` for one sample, every multiplier written out."""
    with torch.no_grad():
        nx, nr = m.ln(x), m.ln(r)
        Qx, Kx, Vx = m.q(nx), m.k(nx), m.v(nx)
        Qr, Kr, Vr = m.q(nr), m.k(nr), m.v(nr)
        Zx, Zr = Qx @ Kx.T / math.sqrt(D), Qr @ Kr.T / math.sqrt(D)
        Ax, Ar = torch.softmax(Zx, -1), torch.softmax(Zr, -1)
        m_pooled = m.head.weight[c]  # linear: W^T e_c
        m_sum = m_pooled.expand(L, D) / L  # the mean over tokens
        m_x = m_sum.clone()  # the residual branch
        m_O = m_sum
        # O = A V, bilinear: m_A = m_O V_bar^T, m_V = A_bar^T m_O
        V_bar, A_bar = (Vx + Vr) / 2, (Ax + Ar) / 2
        m_A = m_O @ V_bar.T
        m_V = A_bar.T @ m_O
        m_Z = torch.stack([softmax_multipliers(Zx[l], Zr[l], m_A[l]) for l in range(L)])
        # Z = Q K^T / sqrt(D), bilinear
        Q_bar, K_bar = (Qx + Qr) / 2, (Kx + Kr) / 2
        m_Q = m_Z @ K_bar / math.sqrt(D)
        m_K = m_Z.T @ Q_bar / math.sqrt(D)
        m_n = m_Q @ m.q.weight + m_K @ m.k.weight + m_V @ m.v.weight
        for t in range(L):
            m_x[t] = m_x[t] + ln_multipliers(x[t], r[t], m.ln).T @ m_n[t]
        return (x - r) * m_x


def test_deeplift_through_a_block_matches_the_literal_reference():
    m = SmallBlock().double().eval()
    x = torch.randn(3, L, D, dtype=torch.float64)
    baseline = torch.randn(L, D, dtype=torch.float64) * 0.3
    targets = [0, 2, 1]
    result = DeepLIFT(m, baseline=baseline)(x, target=targets)
    expected = torch.stack(
        [deeplift_reference(m, x[i], baseline, c) for i, c in enumerate(targets)]
    )
    torch.testing.assert_close(result.values, expected, rtol=1e-9, atol=1e-12)
    assert float(result.delta.abs().max()) < 1e-12


def test_deeplift_through_the_masked_gated_block_sums_to_delta():
    m = block()
    x = torch.randn(3, L, D, dtype=torch.float64)
    result = DeepLIFT(m, baseline=[0.0, torch.randn(L, D, dtype=torch.float64)])(x, target=2)
    assert float(result.delta.abs().max()) < 1e-12


# ---- what has no rule --------------------------------------------------------------------


class _GroupNormed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(D, D)
        self.norm = nn.GroupNorm(2, D)
        self.head = nn.Linear(D, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.fc(x)))


@pytest.mark.parametrize(
    "method",
    [
        lambda m: LRP(m, composite="attnlrp"),
        lambda m: LRP(m, composite="cp-lrp"),
        lambda m: DeepLIFT(m),
    ],
    ids=["attnlrp", "cp-lrp", "deeplift"],
)
def test_a_function_without_a_rule_raises_naming_it(method):
    model = _GroupNormed().eval()
    before = model_state(model)
    with pytest.raises(LayerError, match=r"group_norm called in 'norm'"):
        method(model)(torch.randn(2, D), target=0)
    assert_state_restored(model, before)


def test_the_convolutional_composites_refuse_the_block_and_name_the_function():
    with pytest.raises(LayerError, match=r"matmul called in .*composite='attnlrp'"):
        LRP(block(), composite=EpsilonPlus())(torch.randn(2, L, D, dtype=torch.float64), target=0)


def test_composites_by_name():
    assert isinstance(LRP(block(), composite="attnlrp").composite, AttnLRP)
    for name in ("cp-lrp", "cp_lrp", "CPLRP"):
        assert isinstance(LRP(block(), composite=name).composite, CPLRP)


# ---- attention calls re-expressed as their math -------------------------------------------


class _Attention(nn.Module):
    """``nn.MultiheadAttention`` with masks, or ``F.scaled_dot_product_attention`` itself."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.kind = kind
        self.attention = nn.MultiheadAttention(D, 2, batch_first=True)
        self.q, self.k, self.v = (nn.Linear(D, D) for _ in range(3))
        self.head = nn.Linear(D, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "mha":
            padding = torch.zeros(x.shape[0], L, dtype=x.dtype)
            padding[:, -1] = float("-inf")  # the last key is padding
            causal = torch.zeros(L, L, dtype=x.dtype).masked_fill(
                torch.ones(L, L, dtype=torch.bool).triu(1), float("-inf")
            )
            out, weights = self.attention(
                x, x, x, key_padding_mask=padding, attn_mask=causal, need_weights=True
            )
            return self.head(out.mean(1) + weights.sum(-1).mean(1, keepdim=True))
        q, k, v = (layer(x).view(x.shape[0], L, 2, D // 2).transpose(1, 2)
                   for layer in (self.q, self.k, self.v))  # fmt: skip
        keep = torch.rand(L, L, generator=torch.Generator().manual_seed(1)) > 0.3
        keep |= torch.eye(L, dtype=torch.bool)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, scale=0.7)
        causal = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.head((out + causal).transpose(1, 2).reshape(x.shape[0], L, D).mean(1))


@pytest.mark.parametrize("kind", ["mha", "sdpa"])
@pytest.mark.parametrize("method", ["attnlrp", "cp-lrp", "deeplift"])
def test_attention_calls_are_re_expressed_as_their_math(kind, method):
    # the forward computed in the mode (the decomposition, masks included) is the model's own
    model = _Attention(kind).double().eval()
    x = torch.randn(3, L, D, dtype=torch.float64)
    with torch.no_grad():
        expected = model(x)
    explain = DeepLIFT(model) if method == "deeplift" else LRP(model, composite=method)
    result = explain(x, target=1)
    torch.testing.assert_close(result.output, expected, rtol=1e-10, atol=1e-12)
    assert bool(torch.isfinite(result.values).all())
    if method == "deeplift":
        assert float(result.delta.abs().max()) < 1e-10
