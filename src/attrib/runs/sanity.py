"""The run's model-randomization check (Adebayo et al. 2018), once, on a subsample.

Cascading randomization of every layer from the output down, explained at ``checkpoints``
depths (``attrib.metrics.sanity.cascading_steps``, as the report does), for each method on
``count`` samples spread evenly over the run's explained samples. Step 0 compares two
explanations of the unchanged model: 1 for a deterministic method, its noise floor for a
random one, whose every explanation here draws anew (seeds ``mix_seed(run seed, call)``,
so a resumed run draws the same). The rows go to ``RUN/sanity.parquet``
(``attrib.runs.schema.sanity_schema``), which the verdict reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from attrib.core.seeding import mix_seed
from attrib.metrics.sanity import cascading_steps, randomization_similarity
from attrib.runs.samples import Sample
from attrib.runs.work import Job, one_line

__all__ = ["MEASURES", "pick", "sanity_rows"]

MEASURES = ("spearman_abs", "ssim")


def pick(indices: Sequence[int], count: int) -> list[int]:
    """``count`` of ``indices`` spread evenly (all of them when there are fewer)."""
    ordered = sorted(indices)
    if len(ordered) <= count:
        return ordered
    step = len(ordered) / count
    return [ordered[int(k * step)] for k in range(count)]


class _Reseeded:
    """A random method that draws anew at each call, from seeds fixed by the run."""

    def __init__(self, method: Any, seed: int) -> None:
        self.method = method
        self.model = getattr(method, "model", None)
        self.name = getattr(method, "name", type(method).__name__)
        self.seed = seed
        self.calls = 0

    def __call__(self, x: torch.Tensor, target: Any = None, **settings: Any) -> Any:
        self.calls += 1
        return self.method(x, target, seed=mix_seed(self.seed, self.calls), **settings)


def sanity_rows(
    job: Job,
    samples: list[Sample],
    targets: torch.Tensor,
    *,
    checkpoints: int = 6,
    measures: Sequence[str] = MEASURES,
    notes: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The sanity table's rows for every method of ``job`` on ``samples`` (their targets
    fixed beforehand); a method the test cannot run on is left out, with a note."""
    model = job.model
    x = torch.stack([s.input for s in samples]).to(torch.device(job.device))
    targets = targets.to(x.device)
    height, width = x.shape[-2:]
    chosen = [m for m in measures if m != "ssim" or min(height, width) >= 7]
    steps = cascading_steps(model, checkpoints, seed=job.seed)
    rows: list[dict[str, Any]] = []
    for name, method in job.methods.items():
        explainer: Any = method
        settings = _settings(method)
        changes: dict[str, Any] = {}
        if job.batch_size is not None and "batch_size" in settings:
            changes["batch_size"] = job.batch_size
        if settings.get("upsample") is False:
            # maps compared at the input's resolution, as the report compares them, however
            # the run stores them (a CAM's map at its layer's resolution)
            changes["upsample"] = True
        if changes:
            explainer = method.replace(**changes)
        if getattr(method, "draws_at_random", False):
            explainer = _Reseeded(explainer, mix_seed(job.seed, 1))
        try:
            result = randomization_similarity(
                explainer,
                x,
                targets,
                steps,
                model=model,
                mode="cascading",
                measures=chosen,
                keep_maps=0,
            )
        except Exception as error:
            if notes is not None:
                notes.append(f"sanity check of {name}: {one_line(error)}")
            continue
        for step, label in enumerate(result.steps):
            for measure in chosen:
                values = result.similarity[measure][step]
                for sample, value in zip(samples, values.tolist(), strict=True):
                    rows.append(
                        {
                            "method": name,
                            "step": step,
                            "layer": "" if step == 0 else label,
                            "id": sample.id,
                            "measure": measure,
                            "similarity": float(value),
                        }
                    )
    return rows


def _settings(method: Any) -> dict[str, Any]:
    try:
        return dict(method.settings())
    except (AttributeError, TypeError):
        return {}
