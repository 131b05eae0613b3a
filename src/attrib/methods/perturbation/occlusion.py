"""Occlusion: slide a window over the input and record how much the target score drops.

Zeiler and Fergus (2014), "Visualizing and Understanding Convolutional Networks": a window
of ``w_1 x .. x w_k`` features (covering every channel) starts at multiples of the strides
``s_i`` along the last ``k`` dimensions, ``ceil((D_i - w_i) / s_i) + 1`` positions per
dimension (the last window is cut at the border, so every feature is covered), and the
features under it are replaced by the baseline. A feature's attribution is the mean score
drop over the windows that cover it:

    a_i = 1/|W_i| sum_{w in W_i} (f(x) - f(x with window w occluded)),

Captum's ``Occlusion`` with the same window, strides and baseline. The windows' drops are
turned into the map by one separable sum (a product of 0/1 matrices per dimension), not
per window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from attrib.core.batching import Chunk, default_batch_size, run_chunks
from attrib.core.errors import AttribError, SettingError, warn
from attrib.core.hooks import prepared
from attrib.core.inputs import Inputs, attribution_dtype
from attrib.core.result import Attribution
from attrib.core.settings import REQUIRED, Anything, Choice, Number, Optional, Setting
from attrib.core.target import Target
from attrib.methods.catalogue import register
from attrib.methods.perturbation.base import PerturbationMethod
from attrib.methods.perturbation.incremental import IncrementalForward, NotIncrementalError
from attrib.methods.perturbation.masks import window_sizes
from attrib.methods.perturbation.references import References, resolve_references
from attrib.methods.perturbation.regions import Patched, Span, crop
from attrib.methods.perturbation.removal import masked_scores

__all__ = ["Occlusion"]


@dataclass(frozen=True)
class _DescribedChoice(Choice):
    """A choice listed with what each option does."""

    description: str = ""

    @property
    def what(self) -> str:
        return self.description

    def accepts(self, value: Any) -> bool:
        # by identity for True and False: 1 == True, but 1 is not an option
        return any(value is o or (isinstance(o, str) and value == o) for o in self.options)


def _windows_for_images(context: Any) -> dict[str, Any]:
    # a window of 1/7 of the image's shorter side, half a window apart
    window = max(1, math.ceil(min(context.size) / 7))
    return {"window": window, "strides": max(1, window // 2)}


@register(
    family="perturbation",
    paper="Zeiler and Fergus 2014",
    short="score drop under a sliding window",
    summary="The drop of the score when a sliding window of the input is replaced by a baseline.",
    formula="A_i = mean over windows W ∋ i of S_c(x) − S_c(x with W occluded)",
    signed=True,
    image_recipe=_windows_for_images,
)
class Occlusion(PerturbationMethod):
    """Occlusion (Zeiler and Fergus 2014): the mean drop of the target score over the sliding
    windows covering each feature, ``a_i = 1/|W_i| sum_{w in W_i} (f(x) - f(x without w))``.

    Args:
        window: the window's size along the input's last dimensions: an int (``(w, w)`` over
            H and W of images ``(N, C, H, W)``; the last dimension of 2-D and 3-D inputs) or
            a tuple for the last ``len(window)`` dimensions. Leading dimensions (channels)
            are covered entirely. At most the input's size.
        strides: steps between windows, an int or a tuple like ``window``, at most the
            window (so every feature is covered); default half the window (rounded up).
        baseline: the fill value: a number, a name, a tensor shaped like the input or one
            sample, or a list of these (averaged); ``background``: a set of samples, averaged.
        incremental: ``True``: run the occluded copies incrementally (Nakandala et al.,
            SIGMOD 2019, "Krypton"; ``attrib.methods.perturbation.incremental``): the model
            runs once on the clean images, keeping every layer's output, and for each batch
            of windows only the region a window changes is recomputed, layer by layer, until
            it covers three quarters of a map; then the rest of the network runs as usual.
            The scores equal the plain path's up to float rounding; ops it does not know
            (anything but convolutions, pooling, padding, batch norm in eval mode,
            activations and sums) run whole from there, never wrongly. For images
            ``(N, C, H, W)``, a window over H and W, and models that ``torch.fx`` traces
            (else a ``SettingError``).
            ``False``: whole forwards of the occluded copies. ``"auto"`` (default):
            incremental where it applies and pays (windows at most a quarter of the image's
            side, images of at least 32 x 32 pixels), else whole forwards.
            ``params["incremental"]`` says which ran.
        approximate: ``None`` (exact) or Krypton's projective-field threshold ``tau`` in
            ``(0, 1]``: a changed region never grows beyond ``tau`` of its map's side (the
            changes beyond it are dropped), so more of the network runs on crops. Faster,
            not exact: the error is bounded only by the change the dropped regions would
            have made, ``|s_tau - s| <= sum over capped layers l of Lip(f after l) *
            ||dropped change at l||``, a bound too loose to compute usefully for deep
            networks; the benchmark ``occlusion-incremental`` measures it. ``1`` caps
            nothing (exact).
        output, batch_size: see ``Method``. Incremental chunks hold ``4 x`` the default
            rows where auto's rule holds (a row's crops and late maps take a fraction of a
            whole forward's memory).

    It runs ``ceil(N * windows * K / batch_size)`` forwards (``K`` references) plus the one
    forward at the clean input (incremental: the same number of partial forwards, plus one
    traced run of the clean images). Occlusion has no completeness, so ``delta`` is None.
    """

    window = Setting(REQUIRED, Anything("an int or a tuple of sizes of the last dimensions"))
    strides = Setting(None, Anything("None (half the window), an int or a tuple like window"))
    incremental = Setting(
        "auto",
        _DescribedChoice(
            (True, False, "auto"),
            description="True (recompute only what each window changes, layer by layer: "
            "image CNNs that torch.fx traces; same scores to float rounding), False (whole "
            "forwards) or 'auto' (incremental where it applies and pays)",
        ),
    )
    approximate = Setting(
        None,
        Optional(
            Number(
                0.0,
                1.0,
                low_open=True,
                purpose="Krypton's projective-field threshold: changed regions capped at this "
                "share of each map's side; faster, not exact",
            )
        ),
    )

    def attribute(self, inputs: Inputs, target: Target) -> Attribution:
        references = resolve_references(self.baseline, self.background, inputs)
        full, output, resolved = self.clean_forward(inputs, target)
        if not isinstance(inputs, dict):
            values, one = self._occlude(inputs, None, references, resolved, full)
            return self.result(values, resolved.public, output, baseline=references.shown, **one)
        # one input's windows at a time, the other inputs left as they are (Captum's way)
        found = {key: self._occlude(inputs, key, references, resolved, full) for key in inputs}
        record: dict[str, Any] = {
            name: {key: r[name] for key, (_, r) in found.items()}
            for name in ("window", "strides", "positions")
        }
        record["perturbations"] = sum(r["perturbations"] for _, r in found.values())
        values_by_key = {key: v for key, (v, _) in found.items()}
        return self.result(
            values_by_key, resolved.public, output, baseline=references.shown, **record
        )

    def _occlude(
        self,
        inputs: Inputs,
        key: str | None,
        references: Any,
        resolved: Any,
        full: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """The map of input ``key`` (``None``: the one tensor) and its windows' record."""
        x = inputs[key] if isinstance(inputs, dict) and key is not None else inputs
        assert isinstance(x, torch.Tensor)
        windows = _Windows(*self._geometry(x, key), x)

        def keep(sample: torch.Tensor, item: torch.Tensor) -> Inputs:
            mask = windows.keep(item)
            if not isinstance(inputs, dict) or key is None:
                return mask
            others = {
                k: torch.ones((len(item),) + (1,) * (t.dim() - 1), dtype=t.dtype, device=t.device)
                for k, t in inputs.items()
            }
            return {**others, key: mask}

        # a list, which the incremental path empties: it frees each group's activations
        engines = [e for e in [self._engine(inputs, x, windows)] if e is not None]
        incremental = bool(engines)
        if incremental:
            try:
                scores = self._incremental_scores(engines, x, references, windows, resolved)
            except AttribError:
                raise
            except Exception as error:
                # "auto" must never make a call fail that whole forwards would answer
                if self.incremental != "auto" or self.approximate is not None:
                    raise
                warn(
                    f"incremental occlusion failed ({type(error).__name__}: {error}); "
                    "running whole forwards instead. Please report it; incremental=False "
                    "skips the attempt."
                )
                incremental = False
        if not incremental:
            scores = masked_scores(
                self.model,
                inputs,
                references,
                keep,
                windows.count,
                resolved,
                self.output,
                self.batch_size,
            )
        values = windows.spread(full.view(-1, 1) - scores).to(attribution_dtype(x))
        return values, {**windows.record(), "incremental": incremental}

    def _engine(self, inputs: Inputs, x: torch.Tensor, windows: _Windows) -> Any:
        """The incremental forward where it applies (and is wanted), else ``None``."""
        if self.incremental is False:
            if self.approximate is not None:
                raise SettingError(
                    "approximate",
                    "None with incremental=False (the approximation is incremental's)",
                    self.approximate,
                )
            return None
        why = None
        if isinstance(inputs, dict) or x.dim() != 4 or len(windows.window) != 2:
            why = "images (N, C, H, W) with a window over H and W"
        elif not x.is_floating_point():
            why = "a floating-point input"
        elif self.incremental == "auto" and self.approximate is None and not _pays(windows):
            return None
        engine = None
        if why is None:
            try:
                engine = self._make_engine(x[: self._images_per_run(x)])
            except NotIncrementalError as error:
                why = f"a model torch.fx traces as a sequence of image ops: {error}"
        if engine is None and (self.incremental is True or self.approximate is not None):
            raise SettingError(
                "incremental" if self.approximate is None else "approximate",
                f"a case incremental occlusion handles ({why})",
                self.incremental if self.approximate is None else self.approximate,
                "Use incremental=False (or 'auto', which falls back by itself) and "
                "approximate=None.",
            )
        return engine

    def _make_engine(self, images: torch.Tensor) -> IncrementalForward:
        """The traced model, run on the clean ``images``."""
        with prepared(self.model), torch.no_grad():
            return IncrementalForward(
                self.model,  # type: ignore[arg-type]  # refused inside if not a module
                images,
                limit=self.approximate,
            )

    def _images_per_run(self, x: torch.Tensor) -> int:
        """Clean images recorded at once: one forward's worth (every layer's activations of
        them are kept while their windows run), as the clean forward of the plain path."""
        n = x.shape[0]
        return max(1, min(n, self.batch_size or default_batch_size(x, n)))

    def _incremental_scores(
        self,
        engines: list[IncrementalForward],
        x: torch.Tensor,
        references: References,
        windows: _Windows,
        resolved: Any,
    ) -> torch.Tensor:
        """Target scores ``(N, windows)`` float64 of every window (averaged over the
        references), each occluded copy run as a patch of the clean image. The images are
        recorded a group at a time (``engines`` holds the first group's engine)."""
        n, k = x.shape[0], references.count
        (height, width), (wh, ww) = windows.dims, windows.window
        (sh, sw), per_row = windows.strides, windows.positions[1]
        per_sample = windows.count * k
        # with windows of at most a quarter of the side (auto's rule), a row's crops are a
        # small share of the large early maps, and whole maps begin where the maps are
        # small: 4x the rows fit the plain path's budget, and larger chunks spread each
        # layer's per-call cost (larger windows: the plain default)
        rows = default_batch_size(x, n * per_sample) * (4 if _pays(windows) else 1)
        size = self.batch_size or min(n * per_sample, rows)
        clean = x.detach().contiguous(memory_format=torch.channels_last)
        group = self._images_per_run(x)
        # the engine of the images [first, first + group) (chunks run in order, so each
        # group's engine is made once; the first one was made to see that the path applies)
        current: dict[str, Any] = {"first": 0, "engine": engines.pop()}

        def engine_for(first: int) -> IncrementalForward:
            if current["first"] != first:
                current["engine"] = None  # free the previous group's activations first
                current.update(first=first, engine=self._make_engine(x[first : first + group]))
            found: IncrementalForward = current["engine"]
            return found

        def evaluate(chunk: Any) -> torch.Tensor:
            starts = torch.div(chunk.sample, group, rounding_mode="floor") * group
            parts = []
            for first in torch.unique_consecutive(starts).tolist():
                inside = starts == first
                part = Chunk(0, int(inside.sum()), chunk.sample[inside], chunk.item[inside])
                parts.append(evaluate_group(part, engine_for(first), first))
            return torch.cat(parts)

        def evaluate_group(chunk: Any, engine: IncrementalForward, first: int) -> torch.Tensor:
            item = torch.div(chunk.item, k, rounding_mode="floor")
            ref = chunk.item - item * k
            top = torch.div(item, per_row, rounding_mode="floor") * sh
            left = (item % per_row) * sw
            # one size for all rows: a window cut by the border is a full-size rectangle
            # moved inside, whose extra pixels keep the image's values
            rows, cols = Span(top.clamp(max=height - wh), wh), Span(left.clamp(max=width - ww), ww)
            one = int(chunk.sample[0])
            single = bool((chunk.sample == one).all())
            base = references.rows(ref, chunk.sample, one if single else None)
            assert isinstance(base, torch.Tensor)
            own = torch.arange(len(chunk), device=x.device)
            filled = crop(base, own if base.shape[0] > 1 else torch.zeros_like(own), rows, cols)
            kept = crop(clean, chunk.sample, rows, cols)
            r = rows.start.view(-1, 1) + torch.arange(wh, device=x.device)
            c = cols.start.view(-1, 1) + torch.arange(ww, device=x.device)
            inside = (r >= top.view(-1, 1))[:, None, :, None] & (c >= left.view(-1, 1))[
                :, None, None, :
            ]
            patch = torch.where(inside, filled.to(kept.dtype), kept)
            local = chunk.sample - first
            images = Patched(clean[first : first + group], patch, rows, cols)
            return resolved.rows(chunk.sample).scores(engine.run(images, local))

        with prepared(self.model), torch.no_grad():
            scores = run_chunks(evaluate, n, per_sample, size, "keep", device=x.device)
        return scores.to(torch.float64).view(n, windows.count, k).mean(2)

    def _geometry(
        self, x: torch.Tensor, key: str | None = None
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The window and strides of ``x`` (the input ``key`` of dict inputs: a setting may be
        a dict with one value per input, or one value for all)."""
        given_window = self.window[key] if isinstance(self.window, dict) else self.window
        given = self.strides[key] if isinstance(self.strides, dict) else self.strides
        window = window_sizes(given_window, x, "window")
        k = len(window)
        dims = tuple(x.shape[x.dim() - k :])
        if any(w > d for w, d in zip(window, dims, strict=True)):
            raise SettingError(
                "window",
                f"sizes at most the input's last dimensions {dims}",
                given_window,
                "Use a smaller window.",
            )
        if given is None:
            strides = tuple(max(1, math.ceil(w / 2)) for w in window)
        elif isinstance(given, int) and not isinstance(given, bool) and given >= 1:
            strides = (given,) * k
        else:
            strides = window_sizes(given, x, "strides")
        if len(strides) != k:
            raise SettingError(
                "strides", f"an int or a tuple of {k} ints, like window {window}", given
            )
        if any(s > w and w < d for s, w, d in zip(strides, window, dims, strict=True)):
            raise SettingError(
                "strides",
                f"steps at most the window {window} (larger steps leave features that no "
                "window covers)",
                given,
            )
        return window, strides


def _pays(windows: _Windows) -> bool:
    """Whether ``incremental="auto"`` runs incrementally: where a window is small against the
    image (at most a quarter of its side: changed regions then stay a small share of the
    early maps, where most of the work is) and the image is not tiny (tracing and the clean
    run cost a few forwards' worth of Python, repaid only over many windows)."""
    (height, width), (wh, ww) = windows.dims, windows.window
    return 4 * wh <= height and 4 * ww <= width and height * width >= 32 * 32


def _spread_windows(
    per_window: torch.Tensor,
    dims: tuple[int, ...],
    window: tuple[int, ...],
    strides: tuple[int, ...],
) -> torch.Tensor:
    """``out[n, d] = sum over windows w covering d of per_window[n, w]``, dimension by
    dimension: each step contracts one window axis with its 0/1 cover matrix ``(n_i, D_i)``."""
    out = per_window.to(torch.float64)
    for i, (d, w, s) in enumerate(zip(dims, window, strides, strict=True)):
        starts = torch.arange(out.shape[1 + i], device=out.device).view(-1, 1) * s
        axis = torch.arange(d, device=out.device).view(1, -1)
        cover = ((axis >= starts) & (axis < starts + w)).to(torch.float64)
        out = torch.movedim(torch.tensordot(out, cover, dims=([1 + i], [0])), -1, 1 + i)
    return out


class _Windows:
    """The sliding windows of one input ``x``: which features each one covers, and how the
    windows' drops become a map (each feature: the mean drop of the windows covering it)."""

    def __init__(self, window: tuple[int, ...], strides: tuple[int, ...], x: torch.Tensor):
        self.window, self.strides, self.x = window, strides, x
        k = len(window)
        self.dims = tuple(x.shape[x.dim() - k :])
        self.positions = tuple(
            math.ceil((d - w) / s) + 1 for d, w, s in zip(self.dims, window, strides, strict=True)
        )
        self.count = math.prod(self.positions)
        self.lead = (1,) * (x.dim() - 1 - k)

    def keep(self, item: torch.Tensor) -> torch.Tensor:
        """1 outside window ``item``, 0 inside: the product of a 0/1 indicator per dimension."""
        x, k = self.x, len(self.window)
        inside = torch.ones((len(item),) + (1,) * k, dtype=x.dtype, device=x.device)
        rest = item
        for i in reversed(range(k)):
            j = rest % self.positions[i]
            rest = torch.div(rest, self.positions[i], rounding_mode="floor")
            start = (j * self.strides[i]).view(-1, 1)
            axis = torch.arange(self.dims[i], device=x.device)
            covered = (axis >= start) & (axis < start + self.window[i])  # (rows, D_i)
            shape = [len(item)] + [1] * k
            shape[1 + i] = self.dims[i]
            inside = inside * covered.to(x.dtype).view(shape)
        return (1 - inside).view(len(item), *self.lead, *self.dims)

    def spread(self, drops: torch.Tensor) -> torch.Tensor:
        """Each feature's mean drop over the windows covering it, shaped like ``x``."""
        per_window = drops.view(-1, *self.positions)
        total = _spread_windows(per_window, self.dims, self.window, self.strides)
        covers = _spread_windows(
            torch.ones_like(per_window[:1]), self.dims, self.window, self.strides
        )
        n = self.x.shape[0]
        return (total / covers).view(n, *self.lead, *self.dims).expand_as(self.x).contiguous()

    def record(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "strides": self.strides,
            "positions": self.positions,
            "perturbations": self.count,
        }
