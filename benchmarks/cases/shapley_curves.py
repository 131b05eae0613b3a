"""Shapley estimates: error against model calls, ours against shap and Captum (issue 22).

A report, not a race: it counts model calls (rows evaluated), never time, so its figures do
not depend on the machine. Three games whose exact Shapley values are computable:

- ``digits-cnn``: a small CNN trained here (a few seconds) on scikit-learn's bundled
  ``load_digits`` (8 x 8 images), explained on 4 test images; players a 4 x 4 grid of 2 x 2
  pixel cells (16 players), removed to 0 (the background); the score is the logit of the
  predicted class.
- ``wine-mlp``: an MLP trained here on scikit-learn's bundled ``load_wine`` (13 standardised
  features), 4 test rows; a removed feature takes its training mean (0); predicted logit.
- ``minilm-words``: the shipped MiniLM sentiment model (``load_minilm_sentiment``) on 2
  sentences of 12 word tokens; players are the tokens, removed to the ``[PAD]`` embedding
  (``[CLS]`` and ``[SEP]`` stay); the score is the logit of the predicted label. Skipped
  (one line) when transformers or the encoder package is missing.

For each explained input the game ``v`` is tabulated once over all ``2^P`` coalitions
(65,536 forwards for 16 players), its exact Shapley values computed from the table
(``shapley_values``; for the first digit checked against ``ExactShapley`` on the model
itself). Every estimator then runs on that table: a function of a 0/1 vector of ``P``
features (``x = 1``, baseline 0) that returns ``v`` of the coalition it encodes, and that
counts the rows it is called on. This is the same game every estimator would see on the
model, since each evaluates ``v`` at coalitions only; it makes the curves cheap.

Estimators, at each budget of model calls ``m`` (their own calls are counted, not ``m``):

- ``ours``: ``KernelSHAP(samples=m)``, the defaults: ``sampling="leverage"`` and
  ``surrogate="auto"`` (the additive fit, or the cubic one with interactions once the draw
  holds twice its coefficients; ``attrib.methods.perturbation.interactions``);
- ``ours additive``: ``KernelSHAP(samples=m, surrogate="linear")``: Leverage SHAP as
  published (the additive fit at every budget);
- ``ours kernel``: ``KernelSHAP(samples=m, sampling="kernel")`` (the classic sampler);
- ``ours perm``: ``ShapleySampling`` with ``m / (P - 1)`` antithetic orders;
- ``shap Kernel``: ``shap.KernelExplainer`` with ``nsamples=m`` and ``l1_reg=False``
  (its default ``"num_features(10)"`` would keep 10 of the 12-16 players: no Shapley
  estimate of the others);
- ``shap Permutation``: ``shap.PermutationExplainer`` with ``max_evals=m``;
- ``captum Kernel``: ``captum.attr.KernelShap`` with ``n_samples=m``;
- ``captum SVS``: ``captum.attr.ShapleyValueSampling`` with ``m / P`` permutations.

Budgets: powers of 2 from ``4 P`` calls to ``min(2^P, 8192)``; a curve stops once its
error is below a quarter of the target. Ours samples without replacement: near ``2^P``
calls it has seen most coalitions (and at ``2^P - 2`` it enumerates them and is exact),
which is part of its advantage on games this small; the peers sample with replacement.
Error: ``||phi_hat - phi||_2 / ||phi||_2``, averaged over ``SEEDS`` seeds and the inputs of
a game. Calls for 1%: where the mean curve crosses 1%, interpolated linearly in log-log
between the two budgets around it ("> m" when it never does). The ratio is the best
peer's calls over ours (the defaults); the issue's goal is 2. A PNG of the curves is written
beside the JSON results (``shapley_curves.png``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from attrib import ExactShapley, KernelSHAP, ShapleySampling
from attrib.core.errors import SettingError
from attrib.methods.perturbation import grid, shapley_values
from attrib.methods.perturbation.coalitions import from_bits
from benchmarks.cases import Report, ReportContext, ReportResult, register_report
from benchmarks.report import text_table

SEEDS = 5
TARGET_ERROR = 0.01
MAX_CALLS = 8192
GOAL = 2.0
DIGITS = 4
WINE_ROWS = 4
SENTENCES = (
    "A gripping and beautifully acted drama that never once lets you go",
    "The plot makes no sense and the jokes fall completely flat here",
)
WORDS = 12
RESULTS = Path(__file__).resolve().parents[1] / "results"


@dataclass
class Game:
    """One explained input: ``v`` at every coalition (bit order) and its Shapley values."""

    name: str
    table: torch.Tensor  # (2^P,) float64
    exact: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.exact = shapley_values(self.table)

    @property
    def players(self) -> int:
        return int(self.table.shape[0]).bit_length() - 1


class CountingTable(nn.Module):
    """``v`` as a model of ``P`` 0/1 features (``x = 1``, baseline 0), counting its rows."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table.to(torch.float64)
        self.players = int(table.shape[0]).bit_length() - 1
        self.bits = 2 ** torch.arange(self.players)
        self.rows = 0
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        index = (x.double().round().long() * self.bits).sum(1)
        return self.table[index].view(-1, 1)

    def numpy(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()[:, 0]


# ---- the games ------------------------------------------------------------------------------


def _tabulate(score: Callable[[torch.Tensor], torch.Tensor], players: int) -> torch.Tensor:
    """``v`` at all ``2^P`` coalitions: ``score`` of bool coalitions ``(B, P)`` -> ``(B,)``."""
    out = []
    with torch.no_grad():
        for start in range(0, 2**players, 4096):
            index = torch.arange(start, min(start + 4096, 2**players))
            out.append(score(from_bits(index, players)).double())
    return torch.cat(out)


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    return model.eval()


def digits_games(progress: Callable[[str], None]) -> list[Game]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    train, test = slice(0, 1500), slice(1500, None)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 16, 10),
    )
    progress("digits: training the CNN")
    _train(model, x[train], y[train], epochs=15)
    with torch.no_grad():
        accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    progress(f"digits: test accuracy {accuracy:.1%}; tabulating 4 x 65,536 coalitions")
    mask = grid(2)(x[:1]).view(8, 8)  # 16 cells of 2 x 2 pixels
    games = []
    for i in range(DIGITS):
        image = x[1500 + i : 1501 + i]
        label = int(model(image).argmax(1))

        def score(coalitions: torch.Tensor, image: torch.Tensor = image, label: int = label):
            keep = coalitions[:, mask].unsqueeze(1).float()  # (B, 1, 8, 8)
            return model(image * keep)[:, label]

        game = Game(f"digits-cnn #{i}", _tabulate(score, 16))
        if i == 0:  # the table's game is the model's removal game
            exact = ExactShapley(model, feature_mask=grid(2))(image, target=label)
            got = exact.params["player_values"][0]
            assert torch.allclose(got, game.exact, atol=1e-4), (got, game.exact)
        games.append(game)
    return games


def wine_games(progress: Callable[[str], None]) -> list[Game]:
    from sklearn.datasets import load_wine

    data = load_wine()
    features = torch.tensor(data.data, dtype=torch.float32)
    y = torch.tensor(data.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    features, y = features[order], y[order]
    train = slice(0, 140)
    mean, std = features[train].mean(0), features[train].std(0)
    x = (features - mean) / std
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(13, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3)
    )
    progress("wine: training the MLP")
    _train(model, x[train], y[train], epochs=60)
    games = []
    for i in range(WINE_ROWS):
        row = x[140 + i : 141 + i]
        label = int(model(row).argmax(1))

        def score(coalitions: torch.Tensor, row: torch.Tensor = row, label: int = label):
            return model(row * coalitions.float())[:, label]  # removed: the training mean, 0

        games.append(Game(f"wine-mlp #{i}", _tabulate(score, 13)))
    return games


def minilm_games(progress: Callable[[str], None]) -> list[Game] | str:
    try:
        from attrib.text import load_minilm_sentiment
        from attrib.text.baselines import baseline_embeddings, replacement_embedding

        progress("minilm: loading all-MiniLM-L6-v2 and the sentiment head")
        clf = load_minilm_sentiment()
    except (ImportError, SettingError) as error:
        return f"skipped: {error}"
    games = []
    for k, text in enumerate(SENTENCES):
        enc = clf.encode([text])
        ordinary = (~enc.special[0]).nonzero().view(-1)
        if len(ordinary) != WORDS:
            raise RuntimeError(f"{text!r} has {len(ordinary)} word tokens, not {WORDS}")
        embeds = clf.embed(enc.input_ids)
        base = baseline_embeddings(embeds[0], enc.special[0], replacement_embedding(clf, "pad"))
        with torch.no_grad():
            label = int(clf.embedding_model(embeds).argmax(1))
        progress(f"minilm: sentence {k}: tabulating {2**WORDS} coalitions")

        def score(
            coalitions: torch.Tensor,
            embeds: torch.Tensor = embeds,
            base: torch.Tensor = base,
            ordinary: torch.Tensor = ordinary,
            label: int = label,
        ) -> torch.Tensor:
            keep = torch.ones(len(coalitions), embeds.shape[1], dtype=torch.bool)
            keep[:, ordinary] = coalitions
            rows = torch.where(keep.unsqueeze(-1), embeds, base)
            out = []
            for chunk in rows.split(256):
                out.append(clf.embedding_model(chunk)[:, label])
            return torch.cat(out)

        games.append(Game(f"minilm-words #{k}", _tabulate(score, WORDS)))
    return games


# ---- the estimators -------------------------------------------------------------------------

Estimator = Callable[[CountingTable, int, int], np.ndarray]


def _ours_leverage(f: CountingTable, m: int, seed: int) -> np.ndarray:
    x = torch.ones(1, f.players, dtype=torch.float64)
    got = KernelSHAP(f, samples=max(2, m - 2), seed=seed)(x, target=0)
    return got.params["player_values"][0].numpy()


def _ours_additive(f: CountingTable, m: int, seed: int) -> np.ndarray:
    x = torch.ones(1, f.players, dtype=torch.float64)
    got = KernelSHAP(f, samples=max(2, m - 2), surrogate="linear", seed=seed)(x, target=0)
    return got.params["player_values"][0].numpy()


def _ours_kernel(f: CountingTable, m: int, seed: int) -> np.ndarray:
    x = torch.ones(1, f.players, dtype=torch.float64)
    got = KernelSHAP(f, samples=max(2, m - 2), sampling="kernel", seed=seed)(x, target=0)
    return got.params["player_values"][0].numpy()


def _ours_permutation(f: CountingTable, m: int, seed: int) -> np.ndarray:
    x = torch.ones(1, f.players, dtype=torch.float64)
    orders = max(2, 2 * round((m - 2) / (f.players - 1) / 2))
    got = ShapleySampling(f, samples=orders, seed=seed)(x, target=0)
    return got.params["player_values"][0].numpy()


def _shap_kernel(f: CountingTable, m: int, seed: int) -> np.ndarray:
    import shap

    np.random.seed(seed)
    explainer = shap.KernelExplainer(f.numpy, np.zeros((1, f.players)))
    values = explainer.shap_values(np.ones((1, f.players)), nsamples=m, l1_reg=False, silent=True)
    return np.asarray(values).reshape(-1)


def _shap_permutation(f: CountingTable, m: int, seed: int) -> np.ndarray:
    import shap

    masker = shap.maskers.Independent(np.zeros((1, f.players)))
    explainer = shap.PermutationExplainer(f.numpy, masker, seed=seed)
    got = explainer(np.ones((1, f.players)), max_evals=max(m, 2 * f.players + 1), silent=True)
    return np.asarray(got.values).reshape(-1)


def _captum_kernel(f: CountingTable, m: int, seed: int) -> np.ndarray:
    from captum.attr import KernelShap

    torch.manual_seed(seed)
    x = torch.ones(1, f.players, dtype=torch.float64)
    got = KernelShap(lambda z: f(z)[:, 0]).attribute(
        x, baselines=0.0, n_samples=m, perturbations_per_eval=256
    )
    return got[0].numpy()


def _captum_sampling(f: CountingTable, m: int, seed: int) -> np.ndarray:
    from captum.attr import ShapleyValueSampling

    torch.manual_seed(seed)
    x = torch.ones(1, f.players, dtype=torch.float64)
    orders = max(1, round((m - 1) / f.players))
    got = ShapleyValueSampling(lambda z: f(z)[:, 0]).attribute(
        x, baselines=0.0, n_samples=orders, perturbations_per_eval=256
    )
    return got[0].numpy()


OURS = "ours"
ESTIMATORS: dict[str, Estimator] = {
    OURS: _ours_leverage,
    "ours additive": _ours_additive,
    "ours kernel": _ours_kernel,
    "ours perm": _ours_permutation,
    "shap Kernel": _shap_kernel,
    "shap Permutation": _shap_permutation,
    "captum Kernel": _captum_kernel,
    "captum SVS": _captum_sampling,
}
PEERS = ("shap Kernel", "shap Permutation", "captum Kernel", "captum SVS")


def budgets(players: int) -> list[int]:
    """Model calls per estimate: powers of 2 from ``4 P`` up to the number of coalitions or
    ``MAX_CALLS``, whichever is fewer."""
    top = min(MAX_CALLS, 2**players)
    out, m = [], 4 * players
    while m <= top:
        out.append(m)
        m *= 2
    return out


def curve(games: list[Game], estimator: Estimator) -> tuple[list[float], list[float]]:
    """Mean calls and mean relative error at each budget, over games and seeds."""
    calls, errors = [], []
    for m in budgets(games[0].players):
        if errors and errors[-1] < TARGET_ERROR / 4:
            break  # well past the target: the crossing is known, larger budgets cost time
        c, e = [], []
        for game in games:
            for seed in range(SEEDS):
                f = CountingTable(game.table)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    phi = estimator(f, m, seed)
                e.append(float(np.linalg.norm(phi - game.exact.numpy()) / game.exact.norm()))
                c.append(f.rows)
        calls.append(float(np.mean(c)))
        errors.append(float(np.mean(e)))
    return calls, errors


def calls_for(calls: list[float], errors: list[float], target: float) -> float | None:
    """Calls where the curve first reaches ``target``, log-log interpolated (``None``: never)."""
    for i, e in enumerate(errors):
        if e <= target:
            if i == 0:
                return calls[0]
            c0, c1, e0 = calls[i - 1], calls[i], errors[i - 1]
            t = (math.log(e0) - math.log(target)) / (math.log(e0) - math.log(max(e, 1e-300)))
            return math.exp(math.log(c0) + t * (math.log(c1) - math.log(c0)))
    return None


def _plot(results: dict[str, dict[str, Any]], path: Path) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - matplotlib is a bench dependency
        return f"no PNG: {error}"
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    for ax, (name, got) in zip(axes[0], results.items(), strict=True):
        for label, (calls, errors) in got["curves"].items():
            style = "-" if label.startswith("ours") else "--"
            ax.loglog(calls, errors, style, marker="o", markersize=3, label=label)
        ax.axhline(TARGET_ERROR, color="gray", linewidth=0.8)
        ax.set_title(f"{name} ({got['players']} players)")
        ax.set_xlabel("model calls")
        ax.set_ylabel("relative error ||phi_hat - phi|| / ||phi||")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"curves: {path}"


def run_shapley_curves(ctx: ReportContext) -> ReportResult:
    # counts calls, not time: one thread leaves the CPUs to others; the run's setting is put
    # back for the reports after this one, which may time things
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _shapley_curves(ctx)
    finally:
        torch.set_num_threads(threads)


def _shapley_curves(ctx: ReportContext) -> ReportResult:
    title = (
        f"== shapley-curves: relative error vs model calls (mean of {SEEDS} seeds x inputs), "
        f"calls for {TARGET_ERROR:.0%} =="
    )
    families: dict[str, list[Game] | str] = {
        "digits-cnn": digits_games(ctx.progress),
        "wine-mlp": wine_games(ctx.progress),
        "minilm-words": minilm_games(ctx.progress),
    }
    lines = [title]
    results: dict[str, dict[str, Any]] = {}
    rows = []
    for name, games in families.items():
        if isinstance(games, str):
            lines.append(f"  {name}: {games}")
            continue
        got: dict[str, Any] = {"players": games[0].players, "inputs": len(games), "curves": {}}
        needed: dict[str, float | None] = {}
        for label, estimator in ESTIMATORS.items():
            ctx.progress(f"{name}: {label}")
            calls, errors = curve(games, estimator)
            got["curves"][label] = (calls, errors)
            needed[label] = calls_for(calls, errors, TARGET_ERROR)
        got["calls_for_target"] = needed
        peers = {p: needed[p] for p in PEERS if needed[p] is not None}
        best = min(peers, key=lambda p: peers[p] or math.inf) if peers else None
        ours = needed[OURS]
        ratio = (peers[best] or math.nan) / ours if best is not None and ours else None
        got["best_peer"], got["ratio"] = best, ratio
        results[name] = got
        top = max(max(c) for c, _ in got["curves"].values())
        cells = [name, str(games[0].players)]
        for label in ESTIMATORS:
            value = needed[label]
            cells.append(f"{value:,.0f}" if value is not None else f"> {top:,.0f}")
        cells.append(best or "-")
        cells.append(
            "-" if ratio is None else f"{ratio:.2f}" + (" ok" if ratio >= GOAL else " short")
        )
        rows.append(cells)
    header = ["game", "P", *ESTIMATORS, "best peer", f"best/ours (goal {GOAL:g})"]
    lines += text_table(header, rows)
    for name, got in results.items():
        lines.append(f"  {name}: mean relative error (mean calls) at each budget m")
        ms = budgets(got["players"])
        curve_rows = [
            [label]
            + [f"{e:.1e} ({c:,.0f})" for c, e in zip(calls, errors, strict=True)]
            + ["-"] * (len(ms) - len(calls))  # a curve stops once well past the target
            for label, (calls, errors) in got["curves"].items()
        ]
        header_m = ["estimator", *[f"m={m:,}" for m in ms]]
        lines += ["  " + line for line in text_table(header_m, curve_rows)]
    out = ctx.results_dir if ctx.results_dir is not None else RESULTS
    if results:
        lines.append("  " + _plot(results, out / "shapley_curves.png"))
    return ReportResult("shapley-curves", lines, {"games": results, "seeds": SEEDS})


register_report(Report("shapley-curves", family="shapley", run=run_shapley_curves))
