"""Feature masks: which input features move together, as one *player* of a removal game.

A feature mask gives every feature of an input an integer label; features with the same
label are one player, present or removed together. ``feature_mask=`` accepts

- ``None``: every feature (every scalar of the input) is its own player;
- an integer tensor of the input's shape ``(N, ...)`` (one mask per sample), of one sample's
  shape, or of any shape that broadcasts to one sample (``(1, H, W)`` or ``(H, W)`` for images
  ``(N, C, H, W)``: the channels of a pixel move together);
- ``grid(cell)``: square (or rectangular) cells over the last two dimensions of images;
- ``superpixels(n_segments)``: SLIC superpixels (Achanta et al. 2012, "SLIC Superpixels
  Compared to State-of-the-Art Superpixel Methods"), from scikit-image, the optional extra
  ``attrib[superpixels]``, imported only when used;
- any callable ``x -> mask`` (computed for each batch);
- for dict inputs, a dict with one of these per input. Equal labels in different inputs are
  one player (as in Captum); with ``None`` each input's features are players of their own.

Labels are renumbered ``0 .. P-1`` in increasing order over the whole batch, so a label that
one sample lacks is a player with no features there (a null player: its value is 0).
Masks are kept in their compact broadcast shape, so building a masked row gathers one value
per mask entry and broadcasts over the rest (a ``(1, H, W)`` mask never expands to channels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union

import torch

from attrib.core.errors import SettingError
from attrib.core.inputs import Inputs, attribution_dtype, batch_size_of, leaves, rebuild

__all__ = [
    "FeatureMask",
    "Grid",
    "Players",
    "Spread",
    "Superpixels",
    "grid",
    "resolve_players",
    "superpixels",
]

FeatureMask = Union[
    None, torch.Tensor, Callable[[torch.Tensor], torch.Tensor], dict[str, Any], "Grid"
]
Spread = Literal["divide", "copy"]
SPREADS = ("divide", "copy")


@dataclass(frozen=True)
class Grid:
    """Cells of ``cell`` features over the last dimensions: ``(h, w)`` over H and W of images.

    An int cell is square over the last two dimensions of 4-D inputs ``(N, C, H, W)`` and
    covers the last dimension of 2-D or 3-D inputs; a tuple of length ``k`` tiles the last
    ``k`` dimensions. Cells at the far edges are cut by the border. Every channel (every
    leading dimension) of a cell belongs to the same player.
    """

    cell: int | tuple[int, ...]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        sizes = window_sizes(self.cell, x, "grid(cell)")
        dims = x.shape[x.dim() - len(sizes) :]
        ids = torch.zeros((), dtype=torch.long, device=x.device)
        for size, extent in zip(sizes, dims, strict=True):
            per_dim = torch.arange(extent, device=x.device) // size
            ids = ids.unsqueeze(-1) * math.ceil(extent / size) + per_dim
        return ids


def grid(cell: int | tuple[int, ...]) -> Grid:
    """A grid mask: one player per cell of ``cell`` features (see ``Grid``)."""
    return Grid(cell)


@dataclass(frozen=True)
class Superpixels:
    """SLIC superpixels of images ``(N, C, H, W)``, one segmentation per image.

    Each image is rescaled to [0, 1] (its own min and max) before segmenting, so normalised
    inputs segment like the pictures they show. Needs scikit-image (``attrib[superpixels]``).
    """

    n_segments: int = 50
    compactness: float = 10.0
    sigma: float = 1.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        try:
            from skimage.segmentation import slic
        except ImportError:  # pragma: no cover - scikit-image is installed for the tests
            raise SettingError(
                "feature_mask",
                "scikit-image installed for superpixels",
                "superpixels(...) without scikit-image",
                "Install the extra: pip install 'attrib[superpixels]', or use grid(cell).",
            ) from None
        if x.dim() != 4:
            raise SettingError(
                "feature_mask",
                "images (N, C, H, W) for superpixels",
                x,
                "Use grid(cell) or a mask tensor for other inputs.",
            )
        images = x.detach().to("cpu", torch.float64)
        lo = images.amin(dim=(1, 2, 3), keepdim=True)
        hi = images.amax(dim=(1, 2, 3), keepdim=True)
        pixels = ((images - lo) / (hi - lo).clamp(min=1e-12)).permute(0, 2, 3, 1).numpy()
        masks = [
            slic(
                image,
                n_segments=self.n_segments,
                compactness=self.compactness,
                sigma=self.sigma,
                start_label=0,
                channel_axis=-1,
                convert2lab=image.shape[-1] == 3,
            )
            for image in pixels
        ]
        stacked = torch.stack([torch.as_tensor(m, dtype=torch.long) for m in masks])
        return stacked.unsqueeze(1).to(x.device)  # (N, 1, H, W): channels move together


def superpixels(n_segments: int = 50, compactness: float = 10.0, sigma: float = 1.0) -> Superpixels:
    """A superpixel mask (SLIC, scikit-image); see ``Superpixels``."""
    if isinstance(n_segments, bool) or not isinstance(n_segments, int) or n_segments < 1:
        raise SettingError("n_segments", "a positive int (about how many superpixels)", n_segments)
    return Superpixels(n_segments, float(compactness), float(sigma))


def window_sizes(size: Any, x: torch.Tensor, name: str) -> tuple[int, ...]:
    """An int or tuple of sizes for the last dimensions of ``x`` (int: H and W of images,
    the last dimension of 2-D and 3-D inputs)."""
    if isinstance(size, int) and not isinstance(size, bool):
        if x.dim() == 4:
            size = (size, size)
        elif x.dim() in (2, 3):
            size = (size,)
        else:
            raise SettingError(
                name,
                f"a tuple of sizes for the last dimensions of a {x.dim()}-D input",
                size,
                "An int is read as (h, w) for images (N, C, H, W) or as the last dimension "
                "for 2-D and 3-D inputs.",
            )
    ok = isinstance(size, tuple) and size and len(size) <= x.dim() - 1
    if not ok or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise SettingError(
            name,
            f"a positive int or a tuple of at most {x.dim() - 1} positive ints (sizes along "
            "the input's last dimensions)",
            size,
        )
    return tuple(size)


@dataclass(frozen=True)
class Players:
    """A resolved feature mask: player ids ``0 .. count-1`` per input leaf.

    ``masks`` holds, per leaf, a long tensor of shape ``(1 or N, *compact)`` where ``compact``
    has the input's number of dimensions and broadcasts to one sample. ``sizes[n, j]`` is the
    number of features of player ``j`` in sample ``n`` (over all leaves).
    """

    masks: Inputs
    count: int
    sizes: torch.Tensor

    def present(
        self, coalitions: torch.Tensor, sample: torch.Tensor, dtype: torch.dtype = torch.float32
    ) -> Inputs:
        """Per row, which features are present (1) or removed (0): ``coalitions`` is
        ``(rows, P)`` and ``sample`` the sample of each row; returns masks
        ``(rows, *compact)`` in ``dtype``."""
        z = coalitions.to(dtype)

        def one(mask: torch.Tensor) -> torch.Tensor:
            rows = z.shape[0]
            if mask.shape[0] == 1:
                # index_select on a float matrix: several times faster than bool indexing
                picked = torch.index_select(z, 1, mask.reshape(-1))
            else:
                picked = torch.gather(z, 1, mask[sample].reshape(rows, -1))
            return picked.view(rows, *mask.shape[1:])

        return rebuild(self.masks, [one(m) for m in leaves(self.masks)])

    def spread(self, values: torch.Tensor, like: Inputs, how: Spread) -> Inputs:
        """Players' values ``(N, P)`` on their features, shaped like ``like``.

        ``"divide"``: each feature gets its player's value divided by the player's number of
        features, so the features of a player sum to its value (and ``sum(values)`` to the
        players' total). ``"copy"``: each feature gets its player's whole value (Captum's
        and shap's pictures).
        """
        if how == "divide":
            values = values / self.sizes.clamp(min=1)

        def one(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            v = values.to(device=x.device, dtype=attribution_dtype(x))
            if mask.shape[0] == 1:
                on_mask = v[:, mask.reshape(-1)]
            else:
                on_mask = torch.gather(v, 1, mask.reshape(mask.shape[0], -1))
            return on_mask.view(x.shape[0], *mask.shape[1:]).expand_as(x).contiguous()

        pairs = zip(leaves(self.masks), leaves(like), strict=True)
        return rebuild(like, [one(m, x) for m, x in pairs])


def resolve_players(spec: FeatureMask, inputs: Inputs) -> Players:
    """Check a feature mask against the inputs and number its players ``0 .. P-1``."""
    n = batch_size_of(inputs)
    specs: dict[str, Any]
    if isinstance(inputs, dict):
        if spec is None or not isinstance(spec, dict):
            specs = {k: spec for k in inputs}
        else:
            if set(spec) != set(inputs):
                raise SettingError(
                    "feature_mask",
                    f"a dict with one mask per input {sorted(inputs)}",
                    spec,
                    "Give a mask (or None) for every key of x.",
                )
            specs = spec
        names = list(inputs)
    else:
        specs = {"": spec}
        names = [""]
    tensors = leaves(inputs)
    raw: list[torch.Tensor] = []
    offset = 0
    for name, x in zip(names, tensors, strict=True):
        one = specs[name] if isinstance(inputs, dict) else spec
        label = "feature_mask" if not name else f"feature_mask[{name!r}]"
        if one is None:
            # each scalar its own player; offsets keep the inputs of a dict apart
            ids = torch.arange(x[0].numel(), device=x.device).view(1, *x.shape[1:]) + offset
            offset += x[0].numel()
            raw.append(ids)
            continue
        if callable(one) and not isinstance(one, torch.Tensor):
            one = one(x)
        raw.append(_aligned(one, x, n, label))
    flat = torch.cat([m.reshape(-1).to(tensors[0].device) for m in raw])
    labels = torch.unique(flat)
    masks = [torch.searchsorted(labels.to(m.device), m.contiguous()).view(m.shape) for m in raw]
    count = len(labels)
    sizes = torch.zeros(n, count, dtype=torch.float64, device=tensors[0].device)
    for mask, x in zip(masks, tensors, strict=True):
        repeat = x[0].numel() // mask[0].numel()  # features each mask entry stands for
        per_sample = torch.stack([torch.bincount(m.reshape(-1), minlength=count) for m in mask]).to(
            torch.float64
        )
        sizes += repeat * per_sample.to(sizes.device).expand(n, count)
    return Players(rebuild(inputs, masks), count, sizes)


def _aligned(mask: Any, x: torch.Tensor, n: int, label: str) -> torch.Tensor:
    """The mask as ``(1 or N, *compact)`` with ``x.dim()`` dimensions, or a clear error."""
    sample_shape = tuple(x.shape[1:])
    allowed = (
        f"an integer tensor of the input's shape {tuple(x.shape)}, of one sample's shape "
        f"{sample_shape}, or of a shape that broadcasts to it (size 1 or the same size in "
        "each dimension, e.g. (1, H, W) or (H, W) for images)"
    )
    if not isinstance(mask, torch.Tensor):
        raise SettingError(label, allowed + ", a grid(...), superpixels(...) or None", mask)
    if mask.dtype.is_floating_point or mask.is_complex() or mask.dtype == torch.bool:
        raise SettingError(label, allowed, mask, "Cast labels with mask.long().")
    if mask.dim() > x.dim() or mask.dim() == 0:
        raise SettingError(label, allowed, mask)
    if mask.dim() == x.dim():
        batch, rest = mask.shape[0], tuple(mask.shape[1:])
        if batch not in (1, n):
            raise SettingError(
                label, allowed + f"; a leading batch dimension must be 1 or {n}", mask
            )
    else:
        batch, rest = 1, (1,) * (x.dim() - 1 - mask.dim()) + tuple(mask.shape)
    if any(m not in (1, s) for m, s in zip(rest, sample_shape, strict=True)):
        raise SettingError(label, allowed, mask)
    return mask.reshape(batch, *rest).to(device=x.device, dtype=torch.long)
