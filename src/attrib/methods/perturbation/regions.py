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

Crops are gathered as rows of channels (``index_select`` on the ``(N H W, C)`` view of a
channels-last tensor: each gathered entry is one contiguous vector of channels).
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


def _channel_rows(t: torch.Tensor) -> torch.Tensor:
    """``(M, C, H, W)`` as ``(M H W, C)``: a view of a channels-last tensor, else a copy."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


def _grid_index(which: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, h: int, w: int):
    """Flat indices ``(which h + r) w + c`` of ``(B, len(rows), len(cols))`` positions."""
    return (which.view(-1, 1, 1) * h + rows[:, :, None]) * w + cols[:, None, :]


def crop(
    source: torch.Tensor | Patched,
    which: torch.Tensor,
    rows: Span,
    cols: Span,
    fill: float = 0.0,
) -> torch.Tensor:
    """Crops ``(B, C, rows.size, cols.size)`` of a tensor ``(M, C, H, W)`` (row ``b`` from
    ``source[which[b]]``) or of a ``Patched`` batch (``which``: the sample of each row);
    positions outside the map are ``fill`` (a layer's padding value)."""
    base = source.clean if isinstance(source, Patched) else source
    _, channels, height, width = base.shape
    device = base.device
    r = rows.start.view(-1, 1) + torch.arange(rows.size, device=device)
    c = cols.start.view(-1, 1) + torch.arange(cols.size, device=device)
    index = _grid_index(which, r.clamp(0, height - 1), c.clamp(0, width - 1), height, width)
    b = len(rows.start)
    values = _channel_rows(base).index_select(0, index.reshape(-1))
    values = values.view(b, rows.size, cols.size, channels)
    outside = ((r < 0) | (r >= height))[:, :, None] | ((c < 0) | (c >= width))[:, None, :]
    if bool(outside.any()):
        values = values.masked_fill(outside[..., None], fill)
    if isinstance(source, Patched):
        values = _overlay(values, source, r, c)
    return values.permute(0, 3, 1, 2)


def _overlay(values: torch.Tensor, source: Patched, r: torch.Tensor, c: torch.Tensor):
    """``values`` (B, h, w, C) at positions ``r`` x ``c`` with the patch where it lies."""
    pr = r - source.rows.start.view(-1, 1)
    pc = c - source.cols.start.view(-1, 1)
    ph, pw = source.rows.size, source.cols.size
    inside = ((pr >= 0) & (pr < ph))[:, :, None] & ((pc >= 0) & (pc < pw))[:, None, :]
    if not bool(inside.any()):
        return values
    b = len(r)
    own = torch.arange(b, device=r.device)
    index = _grid_index(own, pr.clamp(0, ph - 1), pc.clamp(0, pw - 1), ph, pw)
    patch = _channel_rows(source.patch).index_select(0, index.reshape(-1))
    patch = patch.view_as(values)
    if bool(inside.all()):
        return patch
    return torch.where(inside[..., None], patch, values)


def materialize(
    value: Patched, sample: torch.Tensor, layout: torch.memory_format = torch.contiguous_format
) -> torch.Tensor:
    """The whole activations ``(B, C, H, W)`` in ``layout``: the clean ones with each row's
    patch written."""
    out = value.clean.index_select(0, sample).contiguous(memory_format=layout)
    device = out.device
    r = value.rows.start.view(-1, 1) + torch.arange(value.rows.size, device=device)
    c = value.cols.start.view(-1, 1) + torch.arange(value.cols.size, device=device)
    own = torch.arange(out.shape[0], device=device).view(-1, 1, 1)
    # written through a (B, H, W, C) view, whatever the layout
    out.permute(0, 2, 3, 1)[own, r[:, :, None], c[:, None, :]] = value.patch.permute(0, 2, 3, 1)
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
