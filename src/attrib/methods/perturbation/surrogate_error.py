"""The standard error of an efficiency-constrained surrogate (KernelSHAP) from its own draw.

KernelSHAP's estimate solves the KKT system of the weighted least squares

    [A 1; 1' 0] [phi; lambda] = [b; v(all) - v(empty)],
    A = sum_i w_i z_i z_i',  b = sum_i w_i z_i (v(z_i) - v(empty)),

with ``w_i = pi(z_i) x`` the row's expansion to the whole population (``Draw``). Linearising
around the solution (the delta method for M-estimators; Covert and Lee 2021, "Improving
KernelSHAP", use the same central limit argument for their i.i.d. draws),

    phi_hat - phi  ~=  K (b - A phi) = sum_units e_u,   e_u = sum_{i in u} w_i r_i K z_i,

where ``K`` is the top-left ``P x P`` block of the inverse KKT matrix (it maps the constant
vector to zero, so the multiplier drops out) and ``r_i = v(z_i) - v(empty) - phi . z_i`` the
residuals. ``sum_u e_u`` is a Horvitz-Thompson total over the units of each stratum, whose
variance the survey-sampling formula estimates from the draw itself:

    Var = sum_k n_k (1 - n_k / N_k) s_k^2,   s_k^2 the sample variance of e_u in stratum k,

(``1 - n_k / N_k = 1`` for i.i.d. draws; 0 for a stratum drawn whole, so an enumerated
draw has standard error 0). Strata with a single unit drawn give no variance of their own;
they are pooled into one group (the "collapsed strata" estimator, conservative), or, alone,
count ``e_u^2``. The residuals of a fit on ``M`` rows with ``k`` coefficients are smaller
than the errors they stand for by about ``(M - k) / M`` in square (the trace of the hat
matrix is ``k``), so ``Var`` is scaled by ``M / (M - k)`` (the "HC1" correction of
MacKinnon and White 1985): negligible for an additive fit (``k = P``), a factor 1.5 for a
cubic fit at three coalitions per coefficient. The standard error is ``sqrt(diag Var)``:
first order, so it is reliable once the draw has several units per stratum and more
coalitions than coefficients.

A surrogate with interaction terms (``interactions``) is the same system over its design's
columns ``x_i`` instead of ``z_i``, with ``phi = R theta``: then ``e_u = sum_{i in u} w_i r_i
R K x_i`` and ``r_i = v(z_i) - v(empty) - theta . x_i``.
"""

from __future__ import annotations

import torch

from attrib.methods.perturbation.draws import Draw

__all__ = ["surrogate_standard_error"]


def surrogate_standard_error(
    draw: Draw,
    weights: torch.Tensor,
    values: torch.Tensor,
    empty: torch.Tensor,
    phi: torch.Tensor,
    design: torch.Tensor | None = None,
    readout: torch.Tensor | None = None,
) -> torch.Tensor:
    """Standard error ``(N, P)`` of ``phi`` fitted on ``draw`` with row ``weights`` ``(M,)``
    to ``values`` ``(N, M)`` (``empty`` ``(N,)`` is ``v(empty)``); float64, CPU. For a
    surrogate with interactions, ``design`` ``(M, k)`` is its design, ``phi`` its
    coefficients ``theta`` ``(N, k)`` and ``readout`` ``R`` ``(P, k)`` (``interactions``)."""
    z = (draw.table if design is None else design).to(torch.float64).cpu()
    m, p = z.shape
    n = values.shape[0]
    players = p if readout is None else readout.shape[0]
    if m == 0:
        return torch.full((n, players), torch.nan, dtype=torch.float64)
    w = weights.to(torch.float64).cpu()
    system = torch.zeros(p + 1, p + 1, dtype=torch.float64)
    system[:p, :p] = z.T @ (w.view(-1, 1) * z)
    system[:p, p] = 1.0
    system[p, :p] = 1.0
    inverse, info = torch.linalg.inv_ex(system)
    if int(info) != 0 or not bool(torch.isfinite(inverse).all()):
        inverse = torch.linalg.pinv(system)  # too few coalitions: the least-norm solution's K
    k_z = z @ inverse[:p, :p].T  # row i: K z_i
    if readout is not None:
        k_z = k_z @ readout.to(torch.float64).T  # row i: R K x_i
    residual = values.to(torch.float64).cpu() - empty.to(torch.float64).cpu().view(-1, 1)
    residual = residual - phi.to(torch.float64).cpu() @ z.T
    counts = draw.counts()
    fractions = draw.fractions()
    strata = counts.shape[0]
    stratum = draw.stratum
    alone = (counts == 1) & (fractions < 1)  # strata that cannot give their own variance
    pooled = alone[stratum]
    variance = torch.zeros(n, players, dtype=torch.float64)
    for i in range(n):  # one sample at a time: (units, P) at most in memory
        rows = (w * residual[i]).view(-1, 1) * k_z
        units = torch.zeros(draw.units, players, dtype=torch.float64)
        units.index_add_(0, draw.unit, rows)
        sums = torch.zeros(strata, players, dtype=torch.float64).index_add_(0, stratum, units)
        squares = torch.zeros(strata, players, dtype=torch.float64)
        squares.index_add_(0, stratum, units**2)
        c = counts.view(-1, 1)
        spread = (squares - sums**2 / c.clamp(min=1)) / (c - 1).clamp(min=1)
        own = c * (1 - fractions.view(-1, 1)) * spread.clamp(min=0)
        variance[i] = own[~alone].sum(0)
        if bool(pooled.any()):
            lonely = units[pooled]
            if lonely.shape[0] >= 2:
                variance[i] += lonely.shape[0] * lonely.var(0, unbiased=True)
            else:
                variance[i] += lonely.pow(2).sum(0)
    if m > p:
        variance *= m / (m - p)  # HC1: the fit's own residuals understate its errors
    return variance.sqrt()
