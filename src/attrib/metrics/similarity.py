"""How alike two explanations are, sample by sample: rank correlation, SSIM, HOG similarity.

The measures of the sanity checks (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"):

- ``spearman(a, b)``: Spearman's rank correlation, the Pearson correlation of the ranks of the
  values (ties get their average rank, as ``scipy.stats.spearmanr``),
  ``rho = cov(rank a, rank b) / (sd(rank a) sd(rank b))``; reversed rankings give -1.
- ``ssim(a, b)``: the structural similarity index of Wang et al. 2004 ("Image Quality
  Assessment: From Error Visibility to Structural Similarity"), the mean over all
  ``win x win`` windows of
  ``(2 mu_a mu_b + C1)(2 s_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))`` with
  ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, ``L`` the data range; identical maps give 1.
  Windows are uniform, 7 wide, sample covariances, border windows left out: the defaults of
  ``skimage.metrics.structural_similarity``, which it matches.
- ``hog_similarity(a, b)``: the Pearson correlation of the histograms of oriented gradients
  (Dalal and Triggs 2005) of the two maps; ``hog`` matches ``skimage.feature.hog``
  (L2-Hys block normalisation, no ``transform_sqrt``).

**Constant maps.** A map whose values are all equal (Grad-CAM's ReLU of a map that turned
negative everywhere, a zero gradient) has no rank order and no gradients, so both
correlations are 0/0. ``pearson`` returns that as NaN, as ``scipy.stats.spearmanr`` does; the
similarity measures define it, so that a sanity check never drops the sample:
``spearman`` and ``hog_similarity`` are 0 between a constant map and one that has an order
(the constant map keeps none of it) and 1 between two constant maps (their all-tied rankings
are identical; ``ssim`` also gives identical constant maps 1). ``constant_maps`` says which
samples were constant, so that results can report them as such.

Every function takes two batches of the same shape and returns one number per sample, in
float64. Nothing here needs scipy or scikit-image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attrib.core.errors import InputError, SettingError

__all__ = [
    "HOG_MIN_SIDE",
    "constant_maps",
    "hog",
    "hog_similarity",
    "pearson",
    "ranks",
    "spearman",
    "ssim",
]

HOG_MIN_SIDE = 8 * 3
"""The smallest side ``hog`` takes with its defaults: one block of 3 x 3 cells of 8 pixels."""


def _pair(a: torch.Tensor, b: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise InputError(name, "two tensors", (type(a).__name__, type(b).__name__), "")
    if a.shape != b.shape:
        raise InputError(
            name,
            f"two batches of the same shape (the first is {tuple(a.shape)})",
            b,
            "Compare explanations of the same inputs.",
        )
    if a.dim() == 0 or a.shape[0] == 0:
        raise InputError(name, "a batch with at least one sample", a, "")
    return a.detach().double(), b.detach().double()


def ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks ``1..F`` of each row of ``(N, F)`` values, ties sharing their average rank."""
    n, f = values.shape
    order = values.argsort(dim=1, stable=True)
    ordered = values.gather(1, order)
    # a new group starts wherever the sorted value changes; each group's average rank is the
    # mean of the positions it spans: (first + last) / 2 + 1
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = starts.long().cumsum(dim=1) - 1  # (n, f) group id per sorted position
    position = torch.arange(f, dtype=torch.float64, device=values.device).expand(n, f)
    n_groups = f  # an upper bound: at most one group per position
    first = torch.full((n, n_groups), float(f), dtype=torch.float64, device=values.device)
    last = torch.zeros((n, n_groups), dtype=torch.float64, device=values.device)
    first.scatter_reduce_(1, group, position, reduce="amin")
    last.scatter_reduce_(1, group, position, reduce="amax")
    average = (first.gather(1, group) + last.gather(1, group)) / 2 + 1
    out = torch.empty_like(average)
    out.scatter_(1, order, average)
    return out


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each sample's values (flattened); NaN where one is constant."""
    a, b = _pair(a, b, "pearson")
    return _pearson(a.flatten(1), b.flatten(1))


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    denominator = (a.pow(2).sum(dim=1) * b.pow(2).sum(dim=1)).sqrt()
    numerator = (a * b).sum(dim=1)
    return torch.where(denominator > 0, numerator / denominator, torch.nan)


def constant_maps(maps: torch.Tensor) -> torch.Tensor:
    """``(N,)`` booleans: ``True`` where every value of a sample is the same (no rank order)."""
    if not isinstance(maps, torch.Tensor) or maps.dim() == 0 or maps.shape[0] == 0:
        raise InputError("maps", "a batch of maps (N, ...)", maps, "")
    flat = maps.detach().flatten(1)
    return (flat == flat[:, :1]).all(dim=1)


def _similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of rows, defined where a row is constant: 0 against a row that
    varies, 1 between two constant rows (see the module's docstring)."""
    flat_a, flat_b = constant_maps(a), constant_maps(b)
    defined = torch.where(flat_a & flat_b, 1.0, 0.0).to(torch.float64)
    return torch.where(flat_a | flat_b, defined, _pearson(a, b))


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman's rank correlation of each sample's values (flattened), ties averaged;
    0 where exactly one of the two maps is constant, 1 where both are."""
    a, b = _pair(a, b, "spearman")
    return _similarity(ranks(a.flatten(1)), ranks(b.flatten(1)))


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    data_range: float | torch.Tensor | None = None,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean structural similarity of each pair of maps ``(N, H, W)`` (or signals ``(N, L)``).

    ``data_range`` ``L`` defaults to each pair's joint range, ``max(a, b) - min(a, b)``
    (as Quantus; scikit-image requires it for float images); a pair of identical constant
    maps has similarity 1.
    """
    a, b = _pair(a, b, "ssim")
    if a.dim() not in (2, 3):
        raise InputError(
            "ssim", "maps (N, H, W) or signals (N, L)", a, "Reduce channels first (.saliency())."
        )
    spatial = a.shape[1:]
    if isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 3:
        raise SettingError("win_size", "an odd int >= 3", win_size, "")
    if win_size % 2 == 0 or any(s < win_size for s in spatial):
        raise SettingError(
            "win_size",
            f"an odd int no larger than the maps' sides {tuple(spatial)}",
            win_size,
            "",
        )
    n = a.shape[0]
    if data_range is None:
        both = torch.cat([a.flatten(1), b.flatten(1)], dim=1)
        data_range = both.amax(dim=1) - both.amin(dim=1)
    data_range = torch.as_tensor(data_range, dtype=torch.float64, device=a.device).expand(n)
    # identical constant maps have a zero range: any positive range gives them 1
    data_range = torch.where(data_range > 0, data_range, torch.ones_like(data_range))
    shape = (n,) + (1,) * len(spatial)
    c1 = (k1 * data_range).pow(2).view(shape)
    c2 = (k2 * data_range).pow(2).view(shape)
    pool = F.avg_pool2d if len(spatial) == 2 else F.avg_pool1d

    def mean(t: torch.Tensor) -> torch.Tensor:  # over each full window ("valid" windows only)
        return pool(t.unsqueeze(1), win_size, stride=1).squeeze(1)

    count = win_size ** len(spatial)
    cov_norm = count / (count - 1)  # sample covariance
    mu_a, mu_b = mean(a), mean(b)
    var_a = cov_norm * (mean(a * a) - mu_a * mu_a)
    var_b = cov_norm * (mean(b * b) - mu_b * mu_b)
    cov = cov_norm * (mean(a * b) - mu_a * mu_b)
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    )
    return s.flatten(1).mean(dim=1)


def hog(
    maps: torch.Tensor,
    *,
    orientations: int = 9,
    pixels_per_cell: int = 8,
    cells_per_block: int = 3,
) -> torch.Tensor:
    """Histogram of oriented gradients of each map ``(N, H, W)``: ``(N, features)``.

    Central-difference gradients (zero on the border rows and columns); per cell of
    ``pixels_per_cell``^2 pixels, the magnitudes of the gradients whose orientation (mod 180
    degrees) falls in each of ``orientations`` bins, divided by the cell's area; per block of
    ``cells_per_block``^2 cells, L2-Hys normalisation (L2, clip at 0.2, L2 again, eps 1e-5).
    Matches ``skimage.feature.hog(map, orientations, (p, p), (c, c))``.
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3:
        raise InputError("maps", "maps (N, H, W)", maps, "Reduce channels first (.saliency()).")
    for name, value in (
        ("orientations", orientations),
        ("pixels_per_cell", pixels_per_cell),
        ("cells_per_block", cells_per_block),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingError(name, "a positive int", value, "")
    image = maps.detach().double()
    n, h, w = image.shape
    cells_r, cells_c = h // pixels_per_cell, w // pixels_per_cell
    if cells_r < cells_per_block or cells_c < cells_per_block:
        side = pixels_per_cell * cells_per_block
        raise SettingError(
            "pixels_per_cell",
            f"cells small enough for one block of {cells_per_block}x{cells_per_block} cells "
            f"in a {h}x{w} map",
            pixels_per_cell,
            f"HOG needs maps of at least {side} x {side} with these settings.",
        )
    g_row = torch.zeros_like(image)
    g_col = torch.zeros_like(image)
    g_row[:, 1:-1, :] = image[:, 2:, :] - image[:, :-2, :]
    g_col[:, :, 1:-1] = image[:, :, 2:] - image[:, :, :-2]
    magnitude = torch.hypot(g_col, g_row)
    orientation = torch.remainder(torch.rad2deg(torch.atan2(g_row, g_col)), 180)
    step = 180.0 / orientations
    edges = torch.tensor([step * i for i in range(orientations + 1)], dtype=torch.float64)
    # bin i holds orientations in [step i, step (i + 1)); an orientation that rounds to 180.0
    # falls in no bin, as in scikit-image
    in_bin = (orientation.unsqueeze(-1) >= edges[:-1]) & (orientation.unsqueeze(-1) < edges[1:])
    weighted = magnitude.unsqueeze(-1) * in_bin
    p = pixels_per_cell
    cells = weighted[:, : cells_r * p, : cells_c * p].reshape(n, cells_r, p, cells_c, p, -1)
    histogram = cells.sum(dim=(2, 4)) / (p * p)  # (n, cells_r, cells_c, orientations)
    b = cells_per_block
    blocks = histogram.unfold(1, b, 1).unfold(2, b, 1)  # (n, br, bc, o, b, b)
    blocks = blocks.permute(0, 1, 2, 4, 5, 3)  # (n, br, bc, b, b, o), scikit-image's order
    eps = 1e-5
    flat = blocks.reshape(*blocks.shape[:3], -1)
    out = flat / (flat.pow(2).sum(dim=-1, keepdim=True) + eps**2).sqrt()
    out = out.clamp(max=0.2)
    out = out / (out.pow(2).sum(dim=-1, keepdim=True) + eps**2).sqrt()
    return out.reshape(n, -1)


def hog_similarity(a: torch.Tensor, b: torch.Tensor, **hog_settings: int) -> torch.Tensor:
    """Pearson correlation of the HOG features of each pair of maps (Adebayo et al. 2018);
    features that are all equal (a constant map has no gradients) count as constant maps do
    in ``spearman``: 0 against features that vary, 1 against equal ones."""
    a, b = _pair(a, b, "hog_similarity")
    return _similarity(hog(a, **hog_settings), hog(b, **hog_settings))
