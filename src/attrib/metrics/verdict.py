"""Which methods to trust on a model: the sanity check and the faithfulness metrics, reduced
to one plain verdict per method.

A pure function over results already computed (``verdict``), so that a report of a few
images and a run over a whole dataset say the same thing in the same words:

- **Sanity** (Adebayo et al. 2018, cascading model randomization): the map must stop
  resembling the trained model's map as the layers are randomized. With ``s_0`` the
  similarity of two explanations of the unchanged model (1 for a deterministic method; the
  noise floor of a random one) and ``s_1..s_K`` the similarities after each randomization
  step (mean over the samples, Spearman of |map| by default), the method keeps
  ``kept = mean_k s_k`` of its map, the area under Adebayo et al.'s curve divided by its
  width. It **passes** when ``kept < threshold * s_0`` (default: less than half of what it
  keeps of itself), fails otherwise, and is **inconclusive** when ``s_0 < min_floor`` (a
  method that does not reproduce its own map cannot show that randomization changed it).
- **Faithfulness against a random map**: on each metric (deletion, insertion, ...) the
  method's per-sample values ``v_i`` are paired with those of a random map of the same
  sample ``r_i`` (``random_maps``). With ``d_i = v_i - r_i`` where higher is better (``r_i -
  v_i`` where lower is), the method is **better** when ``mean d > margin * se(d)`` and
  ``mean d > 0``, **worse** when ``mean d < -margin * se(d)`` and ``mean d < 0``, and no
  clearer than the random map otherwise (``se = sd / sqrt(n)``, sample standard deviation;
  ``margin = 2`` is a rough 95% rule, loose for a handful of samples).
- **Trust** a method that passed the sanity check, beat the random map on at least one
  metric and did worse on none; **do not trust** one that failed the sanity check or did
  worse than the random map on a metric; the others are **undecided** (not checked, or no
  clear difference from the random map on these samples).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from attrib.core.errors import SettingError
from attrib.core.result import Attribution
from attrib.core.seeding import mix_seed

__all__ = [
    "Comparison",
    "MethodVerdict",
    "SanityOutcome",
    "Verdict",
    "random_maps",
    "verdict",
]

Outcome = Literal["better", "worse", "tie"]
Trust = Literal["trust", "distrust", "undecided"]
RANDOM_MAP = "random map"
"""The name of the random baseline in tables and in ``Attribution.method``."""


def random_maps(x: torch.Tensor, seed: int = 0) -> Attribution:
    """Uniform random maps ``(N, H, W)`` in [0, 1) for the images ``x`` ``(N, C, H, W)``, as
    an ``Attribution`` (method ``"random map"``): the baseline a faithful method must beat.

    Sample ``i``'s map comes from a generator seeded with ``mix_seed(seed, i)``: a batch's
    first maps stay the same when more images follow.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise SettingError("x", "images (N, C, H, W)", x, "")
    n, _, h, w = x.shape
    maps = torch.empty(n, h, w, dtype=torch.float32)
    for i in range(n):
        g = torch.Generator().manual_seed(mix_seed(seed, i) >> 1)
        maps[i] = torch.rand(h, w, generator=g)
    return Attribution(
        values=maps.to(x.device),
        method=RANDOM_MAP,
        params={"seed": seed},
        channel_dim=None,
    )


@dataclass(frozen=True)
class Comparison:
    """One method against the random map on one metric (means over the paired samples)."""

    metric: str
    direction: str
    value: float
    random: float
    advantage: float  # mean of d_i: positive when the method does better
    sem: float
    n: int
    margin: float = 2.0

    @property
    def outcome(self) -> Outcome:
        if self.advantage > 0 and self.advantage > self.margin * self.sem:
            return "better"
        if self.advantage < 0 and self.advantage < -self.margin * self.sem:
            return "worse"
        return "tie"


@dataclass(frozen=True)
class SanityOutcome:
    """What a method kept of its map under model randomization."""

    kept: float  # mean similarity over the randomization steps
    floor: float  # similarity of two explanations of the unchanged model
    steps: int
    measure: str
    threshold: float = 0.5
    min_floor: float = 0.5

    @property
    def passed(self) -> bool | None:
        """``True``/``False``, or ``None`` where the test cannot tell (see the module)."""
        if self.steps == 0 or not math.isfinite(self.floor) or self.floor < self.min_floor:
            return None
        return self.kept < self.threshold * self.floor


@dataclass(frozen=True)
class MethodVerdict:
    """The verdict on one method and the evidence for it."""

    method: str
    sanity: SanityOutcome | None
    comparisons: tuple[Comparison, ...]

    @property
    def trust(self) -> Trust:
        if self.failures:
            return "distrust"
        passed = self.sanity is not None and self.sanity.passed is True
        if passed and any(c.outcome == "better" for c in self.comparisons):
            return "trust"  # no comparison is worse: that is a failure
        return "undecided"

    @property
    def failures(self) -> list[str]:
        out = []
        if self.sanity is not None and self.sanity.passed is False:
            out.append("failed the randomization check")
        worse = [c.metric for c in self.comparisons if c.outcome == "worse"]
        if worse:
            out.append(f"worse than a random map on {', '.join(worse)}")
        return out

    @property
    def reason(self) -> str:
        """Why, in a few words."""
        if self.failures:
            return "; ".join(self.failures)
        if self.trust == "trust":
            beaten = [c.metric for c in self.comparisons if c.outcome == "better"]
            return f"passed the randomization check, beat a random map on {', '.join(beaten)}"
        parts = []
        if self.sanity is None:
            parts.append("not sanity-checked")
        elif self.sanity.passed is None:
            parts.append("sanity check inconclusive")
        tied = [c.metric for c in self.comparisons if c.outcome == "tie"]
        if not self.comparisons:
            parts.append("no faithfulness metric against a random map")
        elif len(tied) == len(self.comparisons):
            parts.append(f"no clear difference from a random map on {', '.join(tied)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Verdict:
    """Every method's verdict, and the sentence that sums them up."""

    methods: tuple[MethodVerdict, ...]
    samples: int

    def named(self, trust: Trust) -> list[str]:
        return [m.method for m in self.methods if m.trust == trust]

    def sentence(self) -> str:
        """The methods to trust on this model and those not to, with the reasons."""
        trusted = self.named("trust")
        distrusted = [m for m in self.methods if m.trust == "distrust"]
        undecided = [m for m in self.methods if m.trust == "undecided"]
        on = f" (on {self.samples} image{'s' if self.samples != 1 else ''})" if self.samples else ""
        parts = [
            f"Trust on this model{on}: {', '.join(trusted)}."
            if trusted
            else f"No method earned trust on this model{on}."
        ]
        if distrusted:
            parts.append(
                "Do not trust: " + "; ".join(f"{m.method} ({m.reason})" for m in distrusted) + "."
            )
        if undecided:
            by_reason: dict[str, list[str]] = {}
            for m in undecided:
                by_reason.setdefault(m.reason, []).append(m.method)
            parts.append(
                "Undecided: "
                + "; ".join(f"{', '.join(ms)} ({reason})" for reason, ms in by_reason.items())
                + "."
            )
        return " ".join(parts)


def _compare(
    metric: str, direction: str, values: torch.Tensor, random: torch.Tensor, margin: float
) -> Comparison | None:
    v = torch.as_tensor(values).double().flatten().cpu()
    r = torch.as_tensor(random).double().flatten().cpu()
    if v.shape != r.shape:
        raise SettingError(
            f"random[{metric!r}]", f"one value per sample ({v.numel()})", r, "Pair the samples."
        )
    keep = ~(torch.isnan(v) | torch.isnan(r))
    v, r = v[keep], r[keep]
    n = v.numel()
    if n == 0:
        return None
    sign = 1.0 if direction == "higher" else -1.0
    d = sign * (v - r)
    sem = float(d.std() / math.sqrt(n)) if n > 1 else 0.0
    return Comparison(
        metric, direction, float(v.mean()), float(r.mean()), float(d.mean()), sem, n, margin
    )


def _sanity(result: Any, measure: str, threshold: float, min_floor: float) -> SanityOutcome | None:
    similarity = getattr(result, "similarity", None)
    table = similarity.get(measure) if isinstance(similarity, Mapping) else result
    if not isinstance(table, torch.Tensor):
        return None
    per_step = table.double().cpu().nanmean(dim=-1) if table.dim() > 1 else table.double().cpu()
    floor = float(per_step[0])
    steps = per_step.numel() - 1
    kept = float(per_step[1:].mean()) if steps else float("nan")
    return SanityOutcome(kept, floor, steps, measure, threshold, min_floor)


def verdict(
    faithfulness: Mapping[str, Mapping[str, torch.Tensor]],
    directions: Mapping[str, str],
    random: Mapping[str, torch.Tensor],
    sanity: Mapping[str, Any] | None = None,
    *,
    methods: Sequence[str] | None = None,
    measure: str = "spearman_abs",
    threshold: float = 0.5,
    min_floor: float = 0.5,
    margin: float = 2.0,
) -> Verdict:
    """The verdict on each method (see the module docstring for the rules).

    Args:
        faithfulness: metric -> method -> per-sample values.
        directions: metric -> ``"higher"`` or ``"lower"`` (which is better).
        random: metric -> the random map's per-sample values, paired with the methods' (a
            metric without one is not compared).
        sanity: method -> a ``RandomizationResult`` (or its ``(steps, N)`` similarities of
            ``measure``, step 0 the unchanged model).
        methods: the methods to judge, in order (default: every method named above).
    """
    sanity = dict(sanity or {})
    names = list(methods or [])
    for per_method in faithfulness.values():
        names.extend(m for m in per_method if m not in names)
    names.extend(m for m in sanity if m not in names)
    counts = [torch.as_tensor(v).numel() for pm in faithfulness.values() for v in pm.values()]
    for result in sanity.values():
        table = getattr(result, "similarity", {}).get(measure, result)
        if isinstance(table, torch.Tensor) and table.dim() > 1:
            counts.append(table.shape[-1])
    samples = max(counts, default=0)
    out = []
    for name in names:
        comparisons = []
        for metric, per_method in faithfulness.items():
            if name in per_method and metric in random:
                direction = directions.get(metric, "higher")
                found = _compare(metric, direction, per_method[name], random[metric], margin)
                if found is not None:
                    comparisons.append(found)
        outcome = _sanity(sanity[name], measure, threshold, min_floor) if name in sanity else None
        out.append(MethodVerdict(name, outcome, tuple(comparisons)))
    return Verdict(tuple(out), samples)
