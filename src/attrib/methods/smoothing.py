"""SmoothGrad, SmoothGrad² and VarGrad: any method, averaged over noisy copies of the input.

For a wrapped method ``A`` (saliency, gradient x input, integrated gradients, a CAM, LRP, ...),
an input ``x`` and ``n`` draws ``eps_j ~ N(0, sigma^2 I)``:

- SmoothGrad (Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise"):
  ``SG(x) = 1/n sum_j A(x + eps_j)``, a Monte Carlo estimate of ``A`` convolved with a Gaussian.
- SmoothGrad² (Hooker et al. 2019, "A Benchmark for Interpretability Methods in Deep Neural
  Networks"): ``SG2(x) = 1/n sum_j A(x + eps_j)^2``.
- VarGrad (Adebayo et al. 2018, "Local explanation methods for deep neural networks lack
  sensitivity to parameter values"): ``VG(x) = 1/n sum_j (A(x + eps_j) - SG(x))^2``, the
  population variance, ``SG2 - SG^2``.

Wrappers never look at the wrapped method's arguments: they call it on noisy rows with one
target per row and reduce whatever ``.values`` it returns (input-shaped tensors, dicts of
them, or ``(N, H, W)`` CAM maps) through the core engine, so memory is bounded by
``batch_size`` and never by ``samples``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from attrib.core.batching import Chunk, Reduction, default_batch_size, run_chunks
from attrib.core.errors import SettingError
from attrib.core.grad import batched_forward_scores
from attrib.core.inputs import Inputs, batch_size_of, leaves, map_inputs, rebuild
from attrib.core.result import Attribution
from attrib.core.seeding import draw_seed, mix_seed
from attrib.core.settings import (
    FLAG,
    SEED,
    Count,
    Fixed,
    Function,
    Number,
    Optional,
    Setting,
    shown_value,
)
from attrib.core.target import Target, given_indices, target_for_rows
from attrib.methods.base import Method
from attrib.methods.catalogue import register

__all__ = ["NoiseFunction", "SmoothGrad", "SmoothGradSquared", "VarGrad"]

NoiseFunction = Callable[[Inputs, torch.Tensor, torch.Tensor], Inputs]
"""``noise(rows, sample, draw) -> Inputs``: the noise to add to ``rows``.

``rows`` are clean copies ``x[sample]`` (a tensor or a dict of tensors), ``sample`` and
``draw`` say, per row, which sample of the batch and which of its ``samples`` draws the row
is. It returns a tensor (or dict) of the rows' shapes. It must depend only on
``(sample, draw)`` and the rows, never on how rows are grouped into chunks.
"""


class _NoiseSmoothing(Method):
    """Shared machinery: validate settings, resolve ``"predicted"`` at ``x``, reduce noisy rows."""

    reduction: ClassVar[Reduction] = "mean"
    wraps_method: ClassVar[bool] = True
    first_argument: ClassVar[str] = "method"

    samples = Setting(50, Count(1, "noisy copies per input"))
    sigma = Setting(
        0.15,
        Number(
            0,
            purpose="a fraction of each sample's value range, or the standard deviation "
            "itself with absolute_sigma=True",
        ),
    )
    absolute_sigma = Setting(False, FLAG)
    seed = Setting(None, SEED)
    noise = Setting(
        None,
        Optional(
            Function(
                "a function noise(rows, sample, draw) that returns the noise to add to rows "
                "(None: Gaussian noise set by sigma and seed)"
            )
        ),
    )
    output = Fixed()  # the wrapped method's

    def __init__(self, method: Method, *args: Any, **settings: Any) -> None:
        method = _check_method(method, type(self).__name__)
        self.method = method
        super().__init__(method.model, *args, **settings)
        self.assign("output", method.output)

    def first(self) -> Any:
        return self.method

    def with_model(self, model: Any) -> Method:
        copy = type(self)(self.method.with_model(model), **self.given_settings())
        copy.inner_call = self.inner_call
        return copy

    def for_call(self, settings: dict[str, Any]) -> Method:
        """The wrapper's own settings change here; the others go to the wrapped method at
        each of its calls, so ``SmoothGrad(IntegratedGradients(m))(x, t, baseline=b)``
        integrates every noisy copy from ``b`` — from its sample's row of ``b`` where ``b``
        has one row per sample (``_rows_of``)."""
        own = {k: v for k, v in settings.items() if k in self.setting_names()}
        rest = {k: v for k, v in settings.items() if k not in own}
        copy = type(self)(self.method, **{**self.given_settings(), **own})
        if rest:
            self.method.for_call(rest)  # unknown names and bad values are refused now
            copy.inner_call = rest
        return copy

    inner_call: dict[str, Any] = {}  # noqa: RUF012 - replaced, never mutated
    """Settings for the wrapped method's calls (given at this wrapper's call)."""

    @property
    def name(self) -> str:
        return f"{type(self).__name__}({self.method.name})"

    def settings(self) -> dict[str, Any]:
        inner = self.method.settings()
        inner.update({k: shown_value(v) for k, v in self.inner_call.items()})
        return {**super().settings(), "inner": inner}

    def __repr__(self) -> str:
        shown = self.shown_settings()
        return f"{type(self).__name__}({self.method!r}{', ' if shown else ''}{shown})"

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        n = batch_size_of(inputs)
        device = leaves(inputs)[0].device
        size = self.batch_size or default_batch_size(inputs, n * self.samples)
        output = None
        if isinstance(target, str):
            # "predicted" is resolved once, at the clean x (one forward per image), never
            # re-decided at a noisy copy (where noise may move the arg-max)
            _, output, resolved = batched_forward_scores(
                self.model, inputs, target, self.output, size
            )
            target = resolved.public
        else:
            # class indices, a callable or None mean the same at every copy: the wrapped
            # method checks them against the model at its own forwards, so no forward is
            # spent on the clean x
            indices = given_indices(target, n, device)
            target = indices if indices is not None else target
        seed = None
        noise = self.noise
        if noise is None:
            # with seed=None the noise still comes from a dedicated generator; only its seed is
            # drawn from torch's global RNG, so torch.manual_seed makes such calls repeatable
            seed = draw_seed(self.seed)
            noise = _GaussianNoise(self.sigma, self.absolute_sigma, seed)
        keep_delta = self.reduction == "mean"  # a mean of gaps is a gap; a variance is not
        first: list[Attribution] = []

        def evaluate(chunk: Chunk) -> dict[str, torch.Tensor]:
            rows = map_inputs(lambda t: t[chunk.sample], inputs)
            noisy = _add_noise(rows, noise(rows, chunk.sample, chunk.item))
            rows_target: Any = target_for_rows(target, chunk.sample)  # resolved or as given
            extra = {k: _rows_of(v, chunk.sample, n, inputs) for k, v in self.inner_call.items()}
            inner = self.method(noisy, target=rows_target, **extra)
            if not first:
                first.append(inner)
            return _pack(inner.values, inner.delta if keep_delta else None)

        packed = run_chunks(
            evaluate,
            n,
            self.samples,
            size,
            self.reduction,
            device=device,
            automatic=self.batch_size is None,
        )
        values, delta = _unpack(packed)
        return self.result(
            values, target, output, delta=delta, channel_dim=first[0].channel_dim, seed=seed
        )


def _whole_image(context: Any) -> dict[str, Any]:
    return {"samples": 16, "seed": 0}


@register(
    family="gradient",
    paper="Smilkov et al. 2017",
    short="mean attribution over noisy copies",
    summary="The mean of an attribution over noisy copies of the input; removes gradient noise.",
    formula="A = 1/n Σ_j A(x + ε_j),  ε_j ~ N(0, σ²)",
    image_recipe=_whole_image,
    token_reduction=None,  # the wrapped method's
)
class SmoothGrad(_NoiseSmoothing):
    """The mean of a method over noisy copies, ``SG(x) = 1/n sum_j A(x + eps_j)`` (Smilkov et al.
    2017).

    Args:
        method: any attrib method instance, e.g. ``Saliency(model)``,
            ``IntegratedGradients(model)``, ``GradCAM(model, layer=...)``. Its model, output
            selection and settings are used as they are.
        samples: the number of noisy copies ``n`` per input (the paper uses 50).
        sigma: the noise level. By default a fraction of each sample's value range,
            ``sigma_i = sigma * (max(x_i) - min(x_i))`` over all features of sample ``i``
            (of each input separately for dict inputs); the paper advises 0.1 to 0.2.
        absolute_sigma: take ``sigma`` as the standard deviation itself (as Captum's
            ``stdevs``), the same for every sample.
        seed: an int makes the noise reproducible: row ``(i, j)`` (draw ``j`` of sample ``i``)
            gets noise from a dedicated generator seeded with a hash of ``(seed, i, j)``, so it
            does not depend on ``batch_size`` and the first draws stay the same when
            ``samples`` grows. ``None`` draws that seed from torch's global RNG (which is only
            read, never reseeded). ``Attribution.params["seed"]`` records the seed used.
        noise: a ``NoiseFunction`` ``noise(rows, sample, draw)`` that replaces the Gaussian
            draws (other distributions, or noise given in advance); ``sigma``,
            ``absolute_sigma`` and ``seed`` are then unused.
        batch_size: the most noisy rows handed to the wrapped method at once (which may split
            them further by its own ``batch_size``); ``None`` chooses from the input size.

    ``Attribution.delta``: where the wrapped method reports a completeness gap, the mean of its
    gaps over the draws (each measured at its own noisy copy); otherwise ``None``.
    ``Attribution.output``: the model's output at the clean ``x`` when ``target="predicted"``
    (decided there, by one forward per image); ``None`` for any other target, which means
    the same at every noisy copy, so no forward is spent on the clean ``x``.
    """


@register(
    family="gradient",
    paper="Hooker et al. 2019",
    short="mean squared attribution over noisy copies",
    summary="The mean of the squared attribution over noisy copies.",
    formula="A = 1/n Σ_j A(x + ε_j)²",
    aliases=("smoothgrad_sq",),  # Captum's NoiseTunnel name
    image_recipe=_whole_image,
    token_reduction=None,  # the wrapped method's
)
class SmoothGradSquared(_NoiseSmoothing):
    """The mean square of a method over noisy copies, ``SG2(x) = 1/n sum_j A(x + eps_j)^2``.

    SmoothGrad² (Hooker et al. 2019, "A Benchmark for Interpretability Methods in Deep
    Neural Networks"). Arguments as for ``SmoothGrad``; ``delta`` is always ``None``.
    """

    reduction: ClassVar[Reduction] = "mean_square"


@register(
    family="gradient",
    paper="Adebayo et al. 2018",
    short="variance of the attribution over noisy copies",
    summary="The variance of the attribution over noisy copies.",
    formula="A = 1/n Σ_j (A(x + ε_j) − SmoothGrad(x))²",
    image_recipe=_whole_image,
    token_reduction=None,  # the wrapped method's
)
class VarGrad(_NoiseSmoothing):
    """The variance of a method over noisy copies, ``VG(x) = 1/n sum_j (A(x + eps_j) - SG(x))^2``.

    VarGrad (Adebayo et al. 2018, "Local explanation methods for deep neural networks lack
    sensitivity to parameter values"): the population variance (divided by ``n``, as Captum's
    ``vargrad``), merged chunk by chunk exactly. Arguments as for ``SmoothGrad``; ``delta`` is
    always ``None``.
    """

    reduction: ClassVar[Reduction] = "var"


class _GaussianNoise:
    """``N(0, sigma_i^2)`` noise, drawn per row from a generator seeded by ``(seed, i, j, k)``.

    One seed per row (sample ``i``, draw ``j``) and input ``k`` makes every row's noise
    independent of the chunks it is computed in, and of the order chunks are computed in.
    """

    def __init__(self, sigma: float, absolute: bool, seed: int) -> None:
        self.sigma = sigma
        self.absolute = absolute
        self.seed = seed

    def __call__(self, rows: Inputs, sample: torch.Tensor, draw: torch.Tensor) -> Inputs:
        keys = list(zip(sample.tolist(), draw.tolist(), strict=True))
        noise = []
        for k, t in enumerate(leaves(rows)):
            generator = torch.Generator(device=t.device)
            eps = torch.empty_like(t, memory_format=torch.contiguous_format)
            for r, (i, j) in enumerate(keys):
                generator.manual_seed(mix_seed(self.seed, i, j, k))
                eps[r].normal_(generator=generator)
            noise.append(eps * self._scale(t))
        return rebuild(rows, noise)

    def _scale(self, rows: torch.Tensor) -> torch.Tensor | float:
        if self.absolute:
            return self.sigma
        flat = rows.flatten(1)
        spread = flat.amax(dim=1) - flat.amin(dim=1)
        return (self.sigma * spread).view(-1, *([1] * (rows.dim() - 1)))


def _rows_of(value: Any, sample: torch.Tensor, n: int, inputs: Inputs) -> Any:
    """``value`` for rows of samples ``sample``: a tensor with one row per sample (the
    input's number of dimensions, ``n`` rows), or a dict of such per input, is indexed;
    anything else is the same for every row."""
    if isinstance(value, dict) and isinstance(inputs, dict):
        return {k: _rows_of(v, sample, n, inputs.get(k, inputs)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # several baselines
        return type(value)(_rows_of(v, sample, n, inputs) for v in value)
    dims = leaves(inputs)[0].dim()
    if isinstance(value, torch.Tensor) and value.dim() == dims and value.shape[0] == n:
        return value[sample.to(value.device)]
    return value


def _add_noise(rows: Inputs, noise: Inputs) -> Inputs:
    """``rows + noise``, refusing noise whose structure or shape differs from the rows'."""
    if isinstance(rows, dict) != isinstance(noise, dict) or (
        isinstance(rows, dict) and set(rows) != set(noise)
    ):
        raise SettingError(
            "noise", "a noise function that returns the structure of its rows", noise, ""
        )
    by_key: Any = noise  # a dict exactly when rows is one (checked above)
    ordered = rebuild(rows, [by_key[k] for k in rows]) if isinstance(rows, dict) else noise
    for t, e in zip(leaves(rows), leaves(ordered), strict=True):
        if not isinstance(e, torch.Tensor) or e.shape != t.shape:
            raise SettingError(
                "noise",
                f"a noise function that returns a tensor of the rows' shape {tuple(t.shape)}",
                e,
                "It receives the clean rows x[sample] and must return one noise row per row.",
            )
    return map_inputs(torch.add, rows, ordered)


def _pack(values: Any, delta: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Values (a tensor or dict of them) and delta as one flat dict the engine reduces at once."""
    if isinstance(values, dict):
        packed = {f"values/{k}": v for k, v in values.items()}
    else:
        packed = {"values": values}
    if delta is not None:
        packed["delta"] = delta
    return packed


def _unpack(packed: dict[str, torch.Tensor]) -> tuple[Any, torch.Tensor | None]:
    delta = packed.pop("delta", None)
    if "values" in packed:
        return packed["values"], delta
    return {k.removeprefix("values/"): v for k, v in packed.items()}, delta


def _check_method(method: Any, wrapper: str) -> Method:
    if isinstance(method, Method):
        return method
    if isinstance(method, type) and issubclass(method, Method):
        todo = f"Construct it with the model first: {wrapper}({method.__name__}(model))."
    else:
        todo = f"Wrap the model in a method first, e.g. {wrapper}(Saliency(model))."
    raise SettingError(
        "method",
        "an attrib method instance (e.g. Saliency(model), IntegratedGradients(model))",
        method,
        todo,
    )
