"""Helpers to compare our numbers with the peer libraries' (test-only dependencies)."""

from __future__ import annotations

import torch


def assert_matches_peer(ours: torch.Tensor, peer: torch.Tensor, rel: float = 1e-4) -> None:
    """``max|ours - peer| <= rel * max|peer|``: relative to the map's scale, since an
    element-wise relative error is meaningless where attributions cross zero."""
    ours = ours.detach().double().cpu()
    peer = peer.detach().double().cpu()
    assert ours.shape == peer.shape, (ours.shape, peer.shape)
    scale = float(peer.abs().max())
    error = float((ours - peer).abs().max())
    assert error <= rel * scale, f"max error {error:.3g} > {rel} x scale {scale:.3g}"
