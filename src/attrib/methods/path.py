"""Path methods: integrated gradients and the methods built on it.

Integrated gradients (Sundararajan, Taly and Yan 2017, "Axiomatic Attribution for Deep
Networks") attributes ``f(x) - f(x')`` along a path ``gamma`` from a baseline
``gamma(0) = x'`` to the input ``gamma(1) = x``:

    IG_i(x) = integral_0^1 df/dx_i(gamma(alpha)) * dgamma_i/dalpha d alpha,

which for the straight line ``gamma(alpha) = x' + alpha (x - x')`` is
``(x_i - x'_i) * integral_0^1 df/dx_i(x' + alpha (x - x')) d alpha``. Completeness,
``sum_i IG_i = f(x) - f(x')``, holds for the integral; the quadrature's gap
``delta = sum_i IG_i - (f(gamma(1)) - f(gamma(0)))`` is always returned in
``Attribution.delta``.

For a linear model ``f(x) = w . x`` the gradient is constant, so ``IG = (x - x') * w``
exactly (a factor 1/2 sometimes written there is wrong: the gradient is constant).

- ``ExpectedGradients`` (Erion et al. 2021, "Improving performance of deep learning models
  with axiomatic attribution priors and expected gradients"; GradientSHAP in shap and
  Captum): the expectation of ``(x - x') * grad f(x' + alpha (x - x'))`` over baselines
  ``x'`` drawn from a reference set and ``alpha ~ U(0, 1)``.
- ``BlurIG`` (Xu et al. 2020, "Attribution in Scale and Space"): the path goes from a
  strongly blurred image to the input, ``gamma(alpha) = blur(x, sigma_max (1 - alpha))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from attrib.core.batching import default_batch_size, run_chunks
from attrib.core.errors import SettingError
from attrib.core.grad import batched_forward_scores, input_gradients
from attrib.core.inputs import Inputs, Model, batch_size_of, leaves, map_inputs
from attrib.core.result import Attribution
from attrib.core.rows import needs_row_origin, rows_from
from attrib.core.settings import (
    FLAG,
    REQUIRED,
    SEED,
    Anything,
    Count,
    Fixed,
    Function,
    Instance,
    Number,
    Optional,
    Setting,
)
from attrib.core.target import OutputSelector, ResolvedTarget, Target, select_output
from attrib.methods.at_layer import LayerSettings
from attrib.methods.base import Method
from attrib.methods.baselines import BaselineSettings
from attrib.methods.blur import gaussian_blur, gaussian_blur_and_slope
from attrib.methods.catalogue import register
from attrib.methods.quadrature import gauss_legendre, quadrature

__all__ = ["BlurIG", "ExpectedGradients", "IntegratedGradients", "PathFunction"]

# path(x, baseline, alpha) -> point; x and baseline are (rows, ...), alpha is (rows,)
PathFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

DEFAULT_STEPS = 32
"""Nodes per path of a fixed rule: <= 1% completeness gap on a trained CNN (tests)."""
ADAPTIVE_START_STEPS = 8
"""Nodes to start adaptive refinement from (two 4-node intervals)."""

# the adaptive rule: Gauss-Legendre nodes inside each interval of a bisected partition
_ADAPTIVE_NODES = 4


@register(
    family="gradient",
    paper="Sundararajan et al. 2017",
    short="gradients integrated from a baseline",
    summary="Gradients integrated along the straight path from a baseline x' to x; the "
    "attributions add up to S_c(x) − S_c(x') (completeness).",
    formula="A = (x − x') ⊙ ∫₀¹ ∂S_c(x' + α(x − x'))/∂x dα",
    signed=True,
    completeness=True,
    aliases=("ig",),
)
class IntegratedGradients(LayerSettings, BaselineSettings, Method):
    """Integrated gradients (Sundararajan et al. 2017) along a straight (or any) path, with its
    completeness gap:

        IG_i(x) = (x_i - x'_i) * integral_0^1 df/dx_i(x' + alpha (x - x')) d alpha,
        delta = sum_i IG_i - (f(x) - f(x')).

    Args:
        steps: quadrature nodes per path (per baseline); default 32, or 8 to start from
            with ``tolerance`` (refinement adds nodes where the gap is; starting from 32
            spent more gradient evaluations than starting from 8 for the same 0.1% gap,
            ``make bench`` report ``adaptive``).
        rule: ``"gauss_legendre"`` (default), ``"riemann_left"``, ``"riemann_right"``,
            ``"riemann_middle"``, ``"riemann_trapezoid"``, or a callable
            ``n -> (alphas, weights)`` on [0, 1].
        baseline: see ``attrib.methods.baselines`` (a number, ``"black"``, ``"gray"``,
            ``"blur"``, ``"uniform"``, a tensor, or a list of several to average).
        path: ``None`` for the straight line, or ``path(x, baseline, alpha) -> point`` with
            ``path(., ., 0)`` the start and ``path(., ., 1)`` the end; its derivative in
            ``alpha`` is taken by forward-mode autodiff, so it must be written in torch ops.
            A path that always ends at the input, ``path(x, ., 1) == x``, may say so with
            the attribute ``path.ends_at_input = True``: ``f(gamma(1))`` is then read from
            the input's forward instead of one more forward of every end point. A path
            that knows its derivative may give ``path.with_velocity(x, baseline, alpha) ->
            (point, d point / d alpha)``, used instead of forward-mode autodiff.
        tolerance: if given, refine adaptively until ``|delta| <= tolerance * |f(end) -
            f(start)|`` for every sample (or ``max_steps`` gradient evaluations per path):
            the path is cut into intervals, each integrated with 4 Gauss-Legendre nodes;
            the exact integral of each interval is known from forwards at its ends
            (``f(gamma(b)) - f(gamma(a))``), so the interval with the largest gap is bisected
            and only its gradients are recomputed. ``Attribution.params["evaluations"]``
            reports the gradient evaluations spent per sample. Memory holds one partial sum
            per interval (at most ``max_steps / 4``).
        value_range, blur_sigma, seed: settings of the named baselines.
    """

    steps = Setting(None, Optional(Count(1, "quadrature nodes per path")))
    rule = Setting("gauss_legendre", Anything("a rule name or a callable n -> (alphas, weights)"))
    path = Setting(None, Optional(Function("a callable path(x, baseline, alpha)")))
    tolerance = Setting(None, Optional(Number(0, low_open=True, purpose="e.g. 1e-3")))
    max_steps = Setting(512, Count(1, "gradient evaluations per path, adaptive"))

    def configure(self) -> None:
        if self.steps is None:
            adaptive = self.tolerance is not None
            self.assign("steps", ADAPTIVE_START_STEPS if adaptive else DEFAULT_STEPS)
        self.alphas, self.weights = quadrature(self.rule, self.steps)  # validates the rule
        if self.max_steps < self.steps:
            raise SettingError("max_steps", f"an int >= steps ({self.steps})", self.max_steps)

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        baselines = self.make_baselines(inputs)
        shown = baselines[0] if len(baselines) == 1 else baselines
        return self._integrate(inputs, target, baselines, shown)

    def _integrate(
        self, inputs: Inputs, target: Target, baselines: list[Inputs], shown_baseline: Any
    ) -> Attribution:
        paths = _Paths(self, inputs, baselines, target)
        if self.tolerance is None:
            ones = torch.ones(paths.count, dtype=torch.float64)
            contributions = paths.integrate(
                torch.arange(paths.count), 0 * ones, ones, self.alphas, self.weights
            )
            evaluations = torch.full((paths.n,), self.steps * paths.per_sample)
        else:
            contributions, evaluations = _adaptive(
                paths, self.tolerance, self.steps, self.max_steps
            )
        values = map_inputs(
            lambda c: c.view(paths.n, paths.per_sample, *c.shape[1:]).mean(1), contributions
        )
        expected = paths.end_scores - paths.start_scores.view(paths.n, paths.per_sample).mean(1)
        delta = _total(values) - expected
        return self.result(
            values,
            paths.target.public,
            paths.output,
            baseline=shown_baseline,
            delta=delta,
            evaluations=evaluations,
        )


class _Paths:
    """The ``n * per_sample`` paths of one call (one per sample and baseline), and how to
    evaluate gradients and scores along them through the core engine.

    Path ``p`` belongs to sample ``p // per_sample`` and baseline ``p % per_sample``.
    """

    def __init__(
        self, method: IntegratedGradients, inputs: Inputs, baselines: list[Inputs], target: Target
    ) -> None:
        self.method = method
        self.model = method.model
        self.selector = method.output
        self.inputs = inputs
        self.n = batch_size_of(inputs)
        self.per_sample = len(baselines)
        self.count = self.n * self.per_sample
        # (n * per_sample, ...) baselines in path order
        self.starts = map_inputs(lambda *b: torch.stack(b, dim=1).flatten(0, 1), *baselines)
        self.custom = method.path
        # the target is resolved at the input, even when the path ends elsewhere
        scores, output, resolved = batched_forward_scores(
            self.model, inputs, target, self.selector, method.batch_size
        )
        if self.custom is not None and not getattr(self.custom, "ends_at_input", False):
            end = self.points(torch.arange(self.count), 1.0)
            scores = self.scores_at(end, torch.arange(self.count), resolved)
            scores = scores.view(self.n, self.per_sample)[:, 0]
        self.target: ResolvedTarget = resolved
        self.output = output
        self.end_scores = scores
        self.start_scores = self._start_scores(resolved)

    def _start_scores(self, target: ResolvedTarget) -> torch.Tensor:
        """``f(gamma_p(0))`` of every path. A baseline that is one and the same row for every
        path (a number, one sample's tensor, ``"black"`` or ``"gray"`` with a fixed
        ``value_range``) is run once and each path's class read off that one output: 1
        forward row instead of one per path. (Not for a callable target, which may score
        each row its own way.)"""
        all_paths = torch.arange(self.count)
        if (
            self.custom is None
            and self.count > 1
            and target.function is None
            and _same_rows(self.starts)
        ):
            one = map_inputs(lambda s: s[:1], self.starts)
            return _shared_row_scores(
                self.model,
                one,
                torch.zeros(self.count, dtype=torch.long),
                self.sample_of(all_paths),
                target,
                self.selector,
            )
        return self.scores_at(self.points(all_paths, 0.0), all_paths, target)

    def sample_of(self, path: torch.Tensor) -> torch.Tensor:
        return torch.div(path, self.per_sample, rounding_mode="floor")

    def points(self, path: torch.Tensor, alpha: float | torch.Tensor) -> Inputs:
        """Points ``gamma_p(alpha)`` of the given paths (no derivative)."""
        alpha = torch.as_tensor(alpha, dtype=torch.float64).expand(len(path))
        return self._points_and_velocity(path, alpha, with_velocity=False)[0]

    def _points_and_velocity(
        self, path: torch.Tensor, alpha: torch.Tensor, with_velocity: bool = True
    ) -> tuple[Inputs, Inputs | None]:
        sample = self.sample_of(path)

        def one(x: torch.Tensor, start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
            x_rows = x[sample.to(x.device)]
            base = start[path.to(x.device)]
            a = alpha.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.dim() - 1)))
            if self.custom is None:
                velocity = x_rows - base
                return base + a * velocity, velocity
            a_rows = alpha.to(device=x.device, dtype=x.dtype)
            if not with_velocity:
                return self.custom(x_rows, base, a_rows), None
            explicit = getattr(self.custom, "with_velocity", None)
            if explicit is not None:
                return explicit(x_rows, base, a_rows)
            found = torch.func.jvp(
                lambda t: self.custom(x_rows, base, t), (a_rows,), (torch.ones_like(a_rows),)
            )
            return found[0], found[1]

        starts: Any = self.starts  # the structure of the inputs
        if isinstance(self.inputs, dict):
            pairs = {k: one(self.inputs[k], starts[k]) for k in self.inputs}
            velocities: Any = {k: v[1] for k, v in pairs.items()} if with_velocity else None
            return {k: v[0] for k, v in pairs.items()}, velocities
        return one(self.inputs, starts)

    def scores_at(self, points: Inputs, path: torch.Tensor, target: ResolvedTarget) -> torch.Tensor:
        with rows_from(self.sample_of(path)):
            scores, _, _ = batched_forward_scores(
                self.model,
                points,
                target.rows(self.sample_of(path)),
                self.selector,
                self.method.batch_size,
            )
        return scores.to(torch.float64)

    def integrate(
        self,
        path: torch.Tensor,
        a: torch.Tensor,
        b: torch.Tensor,
        nodes: torch.Tensor,
        weights: torch.Tensor,
    ) -> Inputs:
        """``integral_a^b grad f(gamma_p) . gamma_p' d alpha`` for each (path, a, b) interval,
        with the rule ``(nodes, weights)`` on [0, 1] mapped onto [a, b]."""
        m = len(nodes)
        width = (b - a).to(torch.float64)
        row_weights = width.view(-1, 1) * weights.view(1, -1)  # (intervals, m)
        size = self.method.batch_size or default_batch_size(self.inputs, len(path) * m)

        def evaluate(chunk: Any) -> Inputs:
            p = path[chunk.sample]
            alpha = a[chunk.sample] + width[chunk.sample] * nodes[chunk.item]
            point, velocity = self._points_and_velocity(p, alpha)
            assert velocity is not None  # asked for
            got = input_gradients(
                self.model, point, self.target.rows(self.sample_of(p)), self.selector
            )
            return map_inputs(lambda g, v: g * v, got.gradients, velocity)

        dtype = leaves(self.inputs)[0].dtype
        return run_chunks(
            evaluate,
            len(path),
            m,
            size,
            "sum",
            weights=row_weights.to(dtype),
            device=leaves(self.inputs)[0].device,
            origin=self.sample_of(path),
            automatic=self.method.batch_size is None,
        )


def _same_rows(tensors: Inputs) -> bool:
    """Whether every row equals the first (in every input of a dict)."""
    return all(bool((t == t[:1]).all()) for t in leaves(tensors))


def _shared_row_scores(
    model: Model,
    distinct: Inputs,
    inverse: torch.Tensor,
    samples: torch.Tensor,
    target: ResolvedTarget,
    selector: OutputSelector,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Scores of rows that repeat a few distinct points: entry ``e`` is the row
    ``distinct[inverse[e]]`` scored for sample ``samples[e]`` (``inverse`` and ``samples`` of
    one shape). One forward over the distinct points; per-sample classes are read off the
    same logits, so a point shared by many samples costs one row. A target without classes
    (a single output, or a callable) scores each point once, as the sample that owns it.
    A model whose output depends on the sample a row comes from (``bind``) gets one row per
    entry instead."""
    if needs_row_origin(model):
        rows = map_inputs(lambda t: t[inverse.flatten().to(t.device)], distinct)
        with rows_from(samples.flatten()):
            scores, _, _ = batched_forward_scores(
                model, rows, target.rows(samples.flatten()), selector, batch_size
            )
        return scores.to(torch.float64).view(inverse.shape)
    owners = torch.zeros(batch_size_of(distinct), dtype=torch.long)
    owners[inverse.flatten()] = samples.flatten()
    scores, output, _ = batched_forward_scores(
        model, distinct, target.rows(owners), selector, batch_size
    )
    if target.indices is None:
        return scores.to(torch.float64)[inverse.to(scores.device)]
    logits = select_output(output, target.output)
    classes = target.indices.to(logits.device)[samples.to(logits.device)]
    return logits[inverse.to(logits.device), classes].to(torch.float64)


def _total(values: Inputs) -> torch.Tensor:
    """Sum of attributions per sample, over every feature (and every input of a dict)."""
    return torch.stack([v.flatten(1).sum(1).to(torch.float64) for v in leaves(values)]).sum(0)


def _adaptive(
    paths: _Paths, tolerance: float, steps: int, max_steps: int
) -> tuple[Inputs, torch.Tensor]:
    """Bisect the intervals with the largest completeness gap until every path meets
    ``|gap| <= tolerance * |f(end) - f(start)|``; see ``IntegratedGradients``."""
    m = min(_ADAPTIVE_NODES, steps)
    nodes, weights = gauss_legendre(m)
    k0 = max(1, steps // m)
    count = paths.count
    all_paths = torch.arange(count)
    edges = torch.linspace(0, 1, k0 + 1, dtype=torch.float64)
    # interval table: path, a, b, F(a), F(b), contribution (as a list of per-interval tensors)
    path_ids = all_paths.repeat_interleave(k0)
    a = edges[:-1].repeat(count)
    b = edges[1:].repeat(count)
    f_edges = torch.empty(count, k0 + 1, dtype=torch.float64)
    f_edges[:, 0] = paths.start_scores
    f_edges[:, -1] = paths.end_scores.repeat_interleave(paths.per_sample)
    if k0 > 1:
        inner_paths = all_paths.repeat_interleave(k0 - 1)
        inner_alpha = edges[1:-1].repeat(count)
        points = _points_at(paths, inner_paths, inner_alpha)
        f_edges[:, 1:-1] = paths.scores_at(points, inner_paths, paths.target).view(count, k0 - 1)
    fa = f_edges[:, :-1].reshape(-1)
    fb = f_edges[:, 1:].reshape(-1)
    contributions = paths.integrate(path_ids, a, b, nodes, weights)
    used = torch.full((count,), k0 * m)
    goal = (paths.end_scores.repeat_interleave(paths.per_sample) - paths.start_scores).abs()
    while True:
        gaps = _total(contributions) - (fb - fa)
        per_path = torch.zeros(count, dtype=torch.float64).index_add_(0, path_ids, gaps)
        active = (per_path.abs() > tolerance * goal.clamp(min=1e-12)) & (used + 2 * m <= max_steps)
        if not bool(active.any()):
            break
        # the worst interval of each active path
        worst = torch.full((count,), -1.0, dtype=torch.float64)
        worst = worst.scatter_reduce(0, path_ids, gaps.abs(), reduce="amax")
        is_worst = (gaps.abs() == worst[path_ids]) & active[path_ids]
        chosen = torch.nonzero(is_worst).flatten()
        chosen = chosen[_first_per_path(path_ids[chosen])]
        p, lo, hi = path_ids[chosen], a[chosen], b[chosen]
        mid = (lo + hi) / 2
        f_mid = paths.scores_at(_points_at(paths, p, mid), p, paths.target)
        halves = paths.integrate(
            torch.cat([p, p]), torch.cat([lo, mid]), torch.cat([mid, hi]), nodes, weights
        )
        keep = torch.ones(len(path_ids), dtype=torch.bool)
        keep[chosen] = False
        path_ids = torch.cat([path_ids[keep], p, p])
        a = torch.cat([a[keep], lo, mid])
        b = torch.cat([b[keep], mid, hi])
        fa = torch.cat([fa[keep], f_at(fa, chosen), f_mid])
        fb = torch.cat([fb[keep], f_mid, f_at(fb, chosen)])
        contributions = map_inputs(
            lambda c, h, kept=keep: torch.cat([c[kept.to(c.device)], h]), contributions, halves
        )
        used[p] += 2 * m  # both halves are evaluated afresh
    summed = map_inputs(
        lambda c: torch.zeros(count, *c.shape[1:], dtype=c.dtype, device=c.device).index_add_(
            0, path_ids.to(c.device), c
        ),
        contributions,
    )
    evaluations = used.view(paths.n, paths.per_sample).sum(1)
    return summed, evaluations


def f_at(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return values[index]


def _first_per_path(path_ids: torch.Tensor) -> torch.Tensor:
    """Positions of the first occurrence of each path id (ties in the worst gap)."""
    seen: set[int] = set()
    keep = []
    for position, p in enumerate(path_ids.tolist()):
        if p not in seen:
            seen.add(p)
            keep.append(position)
    return torch.tensor(keep, dtype=torch.long)


def _points_at(paths: _Paths, path: torch.Tensor, alpha: torch.Tensor) -> Inputs:
    return paths._points_and_velocity(path, alpha, with_velocity=False)[0]


@register(
    family="gradient",
    paper="Erion et al. 2021",
    short="integrated gradients over reference baselines",
    summary="Integrated gradients averaged over baselines drawn from reference data, at random "
    "points of the path.",
    formula="A = E_{x'~D, α~U(0,1)} [(x − x') ⊙ ∂S_c(x' + α(x − x'))/∂x]",
    signed=True,
    completeness=True,
    aliases=("gradient_shap",),  # Captum's and shap's name, without their input noise
    image_recipe=lambda context: {"samples": 16, "seed": 0, "references": context.references},
)
class ExpectedGradients(LayerSettings, Method):
    """Expected gradients (Erion et al. 2021): IG's integrand averaged over baselines drawn
    from a reference set and a uniformly random position on the path,

        EG_i(x) = E_{x' ~ D, alpha ~ U(0,1)} [(x_i - x'_i) df/dx_i(x' + alpha (x - x'))],

    estimated with ``samples`` draws per input (GradientSHAP in shap and Captum, without
    their extra input noise: wrap in ``SmoothGrad`` for that). ``delta`` compares the sum of
    attributions with ``f(x) - mean f(x')`` over the references drawn for that sample; it
    costs one forward row per distinct reference drawn (batched in one forward).

    Args:
        references: the reference set, a tensor ``(R, ...)`` of samples shaped like one input
            (or a dict of them).
        samples: draws per input.
        seed: makes the draws reproducible.
        delta: ``False`` skips the forwards at the references and leaves ``delta`` as
            ``None`` (Captum's ``GradientShap`` computes no gap unless asked).
    """

    references = Setting(
        REQUIRED,
        Instance((torch.Tensor, dict), "a tensor (R, ...) of reference inputs"),
        positional=True,
    )
    samples = Setting(32, Count(1, "draws per input"))
    seed = Setting(None, SEED)
    delta = Setting(True, FLAG)

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        refs = map_inputs(
            lambda r, x: r.to(device=x.device, dtype=x.dtype), self.references, inputs
        )
        for r, x in zip(leaves(refs), leaves(inputs), strict=True):
            if tuple(r.shape[1:]) != tuple(x.shape[1:]):
                raise SettingError(
                    "references", f"samples of the input's shape {tuple(x.shape[1:])}", r, ""
                )
        n = batch_size_of(inputs)
        generator = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        n_refs = batch_size_of(refs)
        drawn = torch.randint(n_refs, (n, self.samples), generator=generator)
        alphas = torch.rand(n, self.samples, generator=generator, dtype=torch.float64)
        scores_x, output, resolved = batched_forward_scores(
            self.model, inputs, target, self.output, self.batch_size
        )

        def evaluate(chunk: Any) -> Inputs:
            ref_rows = drawn[chunk.sample, chunk.item]
            alpha = alphas[chunk.sample, chunk.item]

            def point(x: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                base = r[ref_rows.to(r.device)]
                velocity = x[chunk.sample.to(x.device)] - base
                a = alpha.to(device=x.device, dtype=x.dtype).view(-1, *([1] * (x.dim() - 1)))
                return base + a * velocity, velocity

            pairs = map_inputs(lambda x, r: torch.stack(point(x, r)), inputs, refs)
            points = map_inputs(lambda t: t[0], pairs)
            velocity = map_inputs(lambda t: t[1], pairs)
            got = input_gradients(self.model, points, resolved.rows(chunk.sample), self.output)
            return map_inputs(lambda g, v: g * v, got.gradients, velocity)

        size = self.batch_size or default_batch_size(inputs, n * self.samples)
        values = run_chunks(
            evaluate,
            n,
            self.samples,
            size,
            "mean",
            device=leaves(inputs)[0].device,
            automatic=self.batch_size is None,
        )
        delta = self._delta(values, scores_x, resolved, refs, drawn) if self.delta else None
        return self.result(values, resolved.public, output, baseline=self.references, delta=delta)

    def _delta(
        self,
        values: Inputs,
        scores_x: torch.Tensor,
        resolved: ResolvedTarget,
        refs: Inputs,
        drawn: torch.Tensor,
    ) -> torch.Tensor:
        """``sum(attr) - (f(x) - mean f(x'))`` over each sample's drawn references."""
        n = len(drawn)
        # f at each drawn reference, once per distinct reference
        unique, inverse = torch.unique(drawn, return_inverse=True)
        ref_points = map_inputs(lambda r: r[unique.to(r.device)], refs)
        samples = torch.arange(n).view(n, 1).expand_as(inverse)
        ref_scores = _shared_row_scores(
            self.model, ref_points, inverse, samples, resolved, self.output, self.batch_size
        )
        ref_mean = ref_scores.mean(1)
        return _total(values) - (scores_x.to(torch.float64) - ref_mean)


@register(
    family="gradient",
    paper="Xu et al. 2020",
    short="integrated gradients along a blur path",
    summary="Integrated gradients along a path of ever less blurred images, from a fully "
    "blurred copy to the input: no baseline colour to choose.",
    formula="A = ∫ ∂S_c(B(x, σ))/∂x ⊙ ∂B(x, σ)/∂σ dσ,  σ: σ_max → 0",
    signed=True,
    completeness=True,
    inputs="image",
)
class BlurIG(IntegratedGradients):
    """Blur integrated gradients (Xu et al. 2020): integrated gradients along the path
    ``gamma(alpha) = blur(x, max_sigma * (1 - alpha))`` from a Gaussian blur of ``max_sigma``
    pixels (almost no information) to the input itself:

        BlurIG_i(x) = integral_0^1 df/dx_i(gamma(alpha)) * dgamma_i/dalpha d alpha.

    No baseline is chosen: the path removes information by scale, not by replacing pixels.
    ``dgamma/dalpha`` is exact (the kernel's analytic sigma derivative); the completeness gap
    ``sum(attr) - (f(x) - f(blur(x, max_sigma)))`` is in ``delta``. It is
    ``IntegratedGradients`` with that path (its ``steps``, ``rule``, ``tolerance``).

    Args:
        max_sigma: the blur of the path's start, in pixels (default 50).
    """

    max_sigma = Setting(50.0, Number(0, low_open=True, purpose="pixels"))
    # the path is the blur path: no baseline, no other path
    path = Fixed()
    baseline = Fixed()
    value_range = Fixed()
    blur_sigma = Fixed()
    seed = Fixed()
    layer = Fixed()  # a blur of the input: no layer
    layer_input = Fixed(False)

    def configure(self) -> None:
        self.assign("path", _BlurPath(self.max_sigma))
        super().configure()

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        if any(t.dim() != 4 for t in leaves(inputs)):
            raise SettingError(
                "x",
                "images (N, C, H, W) for BlurIG",
                leaves(inputs)[0],
                "Use IntegratedGradients for other inputs.",
            )
        return self._integrate(inputs, target, [map_inputs(torch.zeros_like, inputs)], None)


class _BlurPath:
    """``gamma(alpha) = blur(x, max_sigma (1 - alpha))``, with its exact velocity
    ``d gamma / d alpha = -max_sigma * d blur / d sigma``.

    It ends at the input: sigma 0 is the identity (the kernel is clamped to
    ``blur.SIGMA_FLOOR``, a unit impulse in any float, so ``gamma(1)`` is ``x`` to the bit by
    the direct and matrix ways, to float rounding by the FFT of large images).
    """

    ends_at_input = True

    def __init__(self, max_sigma: float) -> None:
        self.max_sigma = max_sigma

    def __call__(self, x: torch.Tensor, _: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(x, self.max_sigma * (1 - alpha), max_sigma=self.max_sigma)

    def with_velocity(
        self, x: torch.Tensor, _: torch.Tensor, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        point, slope = gaussian_blur_and_slope(
            x, self.max_sigma * (1 - alpha), max_sigma=self.max_sigma
        )
        return point, slope.mul_(-self.max_sigma)

    def __repr__(self) -> str:
        return f"blur path (max_sigma={self.max_sigma})"
