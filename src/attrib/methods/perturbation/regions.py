"""Changed regions of image activations, for incremental occlusion (Nakandala et al. 2019).

An occluded image differs from the clean one inside one window, so every activation
``(N, C, H, W)`` of a convolutional network differs from the clean activation inside a
rectangle that grows layer by layer (the window's projective field). ``Patched`` holds a
batch of such activations, one row per occlusion window: the clean activation of the row's
sample and, per row, a ``patch`` ``(B, C, h, w)`` written at ``(top[b], left[b])``. All rows
share the patch *size* (each row's true changed rectangle is put inside a rectangle of the
largest size, moved back inside the map where it would stick out): recomputing a few
unchanged values is exact, and one size lets every layer run once on the whole batch of
crops.

Receptive-field arithmetic (one spatial dimension; kernel ``k``, stride ``s``, padding ``p``,
dilation ``d``): output ``o`` reads inputs ``[o s - p, o s - p + d (k - 1)]``, so a change in
inputs ``[a, b]`` reaches the outputs ``ceil((a + p - d (k - 1)) / s) .. floor((b + p) / s)``,
and recomputing outputs ``[o_0, o_0 + n)`` needs the inputs ``[o_0 s - p, o_0 s - p + (n - 1) s
+ d (k - 1)]`` (positions outside the map are the padding value).

Crops are copied row by row into channels-last tensors (each copy moves runs of whole
channel vectors of a channels-last source).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Patched", "Span", "crop", "materialize", "reached", "union"]


@dataclass(frozen=True)
class Span:
    """Rows ``start[b] .. start[b] + size - 1`` of each of ``B`` rows (one spatial dimension)."""

    start: torch.Tensor  # (B,) long
    size: int


@dataclass(frozen=True)
class Patched:
    """A batch of activations equal to ``clean[sample[b]]`` except in a rectangle, where they
    are ``patch[b]``: ``rows`` and ``cols`` give the rectangle of each row."""

    clean: torch.Tensor  # (N, C, H, W) channels-last, the clean activations
    patch: torch.Tensor  # (B, C, rows.size, cols.size)
    rows: Span
    cols: Span

    @property
    def area(self) -> int:
        return self.rows.size * self.cols.size

    @property
    def map_area(self) -> int:
        return int(self.clean.shape[-2]) * int(self.clean.shape[-1])


def _same_rows(which: torch.Tensor) -> int | None:
    """The one row every entry of ``which`` names, or ``None``."""
    first = int(which[0])
    return first if bool((which == first).all()) else None


def crop(
    source: torch.Tensor | Patched,
    which: torch.Tensor,
    rows: Span,
    cols: Span,
    fill: float = 0.0,
) -> torch.Tensor:
    """Crops ``(B, C, rows.size, cols.size)`` of a tensor ``(M, C, H, W)`` (row ``b`` from
    ``source[which[b]]``) or of a ``Patched`` batch (``which``: the sample of each row);
    positions outside the map are ``fill`` (a layer's padding value). Channels-last.

    One slice copy per row (rows differ in offset; a slice copies runs of whole channel
    vectors, where a gather by index was several times slower on CPU)."""
    base = source.clean if isinstance(source, Patched) else source
    _, channels, height, width = base.shape
    h, w = rows.size, cols.size
    b = len(rows.start)
    out = base.new_empty((b, h, w, channels))  # (B, h, w, C): the crops channels-last
    src = base.permute(0, 2, 3, 1)
    tops, lefts, picks = rows.start.tolist(), cols.start.tolist(), which.tolist()
    for i in range(b):
        top, left = tops[i], lefts[i]
        r0, r1 = max(top, 0), min(top + h, height)
        c0, c1 = max(left, 0), min(left + w, width)
        if r0 > top or r1 < top + h or c0 > left or c1 < left + w:
            out[i].fill_(fill)
        if r0 < r1 and c0 < c1:
            out[i, r0 - top : r1 - top, c0 - left : c1 - left] = src[picks[i], r0:r1, c0:c1]
    if isinstance(source, Patched):
        _overlay(out, source, tops, lefts)
    return out.permute(0, 3, 1, 2)


def _overlay(out: torch.Tensor, source: Patched, tops: list[int], lefts: list[int]) -> None:
    """Write into the crops ``out`` (B, h, w, C), at rows ``tops`` and columns ``lefts`` of
    the map, the part of each row's patch that lies inside the crop."""
    patch = source.patch.permute(0, 2, 3, 1)
    ph, pw = source.rows.size, source.cols.size
    h, w = out.shape[1], out.shape[2]
    for i, (pt, pl) in enumerate(
        zip(source.rows.start.tolist(), source.cols.start.tolist(), strict=True)
    ):
        top, left = tops[i], lefts[i]
        r0, r1 = max(top, pt), min(top + h, pt + ph)
        c0, c1 = max(left, pl), min(left + w, pl + pw)
        if r0 < r1 and c0 < c1:
            out[i, r0 - top : r1 - top, c0 - left : c1 - left] = patch[
                i, r0 - pt : r1 - pt, c0 - pl : c1 - pl
            ]


def materialize(
    value: Patched, sample: torch.Tensor, layout: torch.memory_format = torch.contiguous_format
) -> torch.Tensor:
    """The whole activations ``(B, C, H, W)`` in ``layout``: the clean ones with each row's
    patch written."""
    clean = value.clean
    b = len(sample)
    out = torch.empty((b, *clean.shape[1:]), dtype=clean.dtype, device=clean.device)
    out = out.contiguous(memory_format=layout)
    one = _same_rows(sample)
    if one is not None:  # a chunk inside one image: one broadcast copy
        out.copy_(clean[one : one + 1].expand_as(out))
    else:
        out.copy_(clean.index_select(0, sample))
    h, w = value.rows.size, value.cols.size
    for i, (top, left) in enumerate(
        zip(value.rows.start.tolist(), value.cols.start.tolist(), strict=True)
    ):
        out[i, :, top : top + h, left : left + w] = value.patch[i]
    return out


def _one_size(low: torch.Tensor, high: torch.Tensor, extent: int, cap: int | None) -> Span:
    """Spans ``[low[b], high[b])`` made one size (the largest) inside ``[0, extent)``; with
    ``cap`` (the approximate mode) at most ``cap`` long, centred on the span's middle."""
    size = max(1, min(extent, int((high - low).max())))
    if cap is not None and size > cap:
        low = torch.div(low + high - cap, 2, rounding_mode="floor")
        size = cap
    return Span(low.clamp(max=extent - size).clamp(min=0), size)


def reached(
    span: Span,
    out_size: int,
    kernel: int,
    stride: int,
    padding: int,
    dilation: int,
    cap: int | None = None,
) -> tuple[Span, Span]:
    """The outputs a change in ``span`` reaches through a sliding window (kernel, stride,
    padding, dilation), made one size over the rows and kept inside ``[0, out_size)``; and
    the inputs (padding included, so they may lie outside the map) those outputs read."""
    reach = dilation * (kernel - 1)
    low = torch.div(span.start + padding - reach + stride - 1, stride, rounding_mode="floor")
    high = torch.div(span.start + span.size - 1 + padding, stride, rounding_mode="floor")
    out = _one_size(low.clamp(min=0), high.clamp(max=out_size - 1) + 1, out_size, cap)
    needed = Span(out.start * stride - padding, (out.size - 1) * stride + reach + 1)
    return out, needed


def union(spans: list[Span], extent: int, cap: int | None = None) -> Span:
    """Per row, the smallest span holding every span of ``spans``, one size over the rows,
    inside ``[0, extent)``."""
    low = torch.stack([s.start for s in spans]).amin(0)
    high = torch.stack([s.start + s.size for s in spans]).amax(0)
    return _one_size(low, high, extent, cap)
