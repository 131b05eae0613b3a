"""Is attention interpretable? The erasure tests of Serrano and Smith (2019), for any layer.

An attention layer mixes its inputs ``I`` (one per token) with weights ``alpha``. Erasing a
subset ``I' of I`` zeroes its weights and renormalises the rest,

    alpha'_i = alpha_i [i not in I'] / sum_{j not in I'} alpha_j,

in every head and for every query of the layer (done exactly by adding ``-inf``-like
values to the layer's attention logits at the keys of ``I'``, so the softmax renormalises;
``erased``). The model is run twice, as is and with ``I'`` erased, and compared by the
Jensen-Shannon divergence of the output distributions ``p`` and ``q``,

    JS(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m),  m = (p + q) / 2   (natural log, <= ln 2),

and by whether the decision ``argmax`` flips.

The weight of input ``i`` at a layer with heads ``h`` and queries ``q`` is
``alpha_i = 1/(H L) sum_{h, q} A^h_{q i}`` (the attention it receives, averaged; it sums to
1 over ``i``). The gradient ``g_i = 1/(H L) sum_{h, q} dF/dA^h_{q i}`` and the product
``(g x alpha)_i = 1/(H L) sum_{h, q} A^h_{q i} dF/dA^h_{q i}`` use the decision score
``F = log p_c`` of the predicted class ``c``.

1. Single weight (``SingleWeightErasure``): remove the input with the highest weight
   ``i*`` and, separately, a random other input ``r``; report
   ``Delta JS = JS(p, q_{i*}) - JS(p, q_r)`` against ``Delta alpha = alpha_{i*} - alpha_r``
   and the 2 x 2 table of decision flips (remove ``i*``: flip? x remove ``r``: flip?).
2. Sets (``SetErasure``): remove inputs in the order of a ranking (attention, gradient,
   gradient x attention, random), most important first, until the decision flips; report
   the fraction of the inputs removed. A ranking that finds a small decisive set is a better
   explanation; Serrano and Smith found attention's sets larger than the gradient's.

The command ``attrib erasure --sentences 250 --out DIR`` runs both on the demo model
(``attrib.cli.erasure``); ``attrib.report.erasure`` writes the numbers, ``attrib.viz`` draws
them (``single_weight_figure``, ``set_fractions_figure``).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from attrib.core.errors import LayerError, SettingError
from attrib.core.hooks import prepared
from attrib.core.target import select_output
from attrib.text.attention import attention_gradients
from attrib.text.encoding import Encoding
from attrib.text.models import TextClassifier

__all__ = [
    "RANKINGS",
    "ErasureReport",
    "SetErasure",
    "SingleWeightErasure",
    "attention_modules",
    "erased",
    "erasure_tests",
    "js_divergence",
    "key_bias",
]

RANKINGS = ("attention", "gradient", "gradient_x_attention", "random")


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence of the rows of ``p`` and ``q`` (natural log; 0 log 0 = 0)."""
    p, q = p.to(torch.float64), q.to(torch.float64)
    m = (p + q) / 2

    def kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(
            a > 0, a * (a.clamp(min=1e-300).log() - b.clamp(min=1e-300).log()), 0.0
        ).sum(-1)

    return (0.5 * kl(p, m) + 0.5 * kl(q, m)).clamp(min=0.0)


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The self-attention modules of ``model``, in layer order: the innermost modules whose
    forward takes an ``attention_mask`` (for BERT, ``encoder.layer.k.attention.self``)."""

    def takes_mask(m: nn.Module) -> bool:
        try:
            return "attention_mask" in inspect.signature(m.forward).parameters
        except (TypeError, ValueError):
            return False

    found = []
    for name, module in model.named_modules():
        if takes_mask(module) and not any(
            takes_mask(c) for c in module.modules() if c is not module
        ):
            found.append((name, module))
    return found


def _attention_module(model: nn.Module, layer: int) -> tuple[str, nn.Module]:
    modules = attention_modules(model)
    if not modules:
        raise LayerError(
            "layer",
            "a model with attention modules that take an attention_mask",
            type(model).__name__,
            "Erasure needs a Hugging Face transformer.",
        )
    if (
        isinstance(layer, bool)
        or not isinstance(layer, int)
        or not -len(modules) <= layer < len(modules)
    ):
        raise LayerError(
            "layer", f"an attention layer index in [-{len(modules)}, {len(modules)})", layer, ""
        )
    return modules[layer % len(modules)]


@contextmanager
def key_bias(module: nn.Module, bias: torch.Tensor) -> Iterator[nn.Module]:
    """Add ``bias[r, k]`` ``(rows, L)`` to the attention logits of key ``k`` in every head and
    query of ``module``, row by row, for the body of the ``with`` block (the softmax then
    renormalises). It goes through the additive attention mask the layer receives, so any
    mask the model passes is kept. The hook is removed in ``finally``."""

    def hook(mod: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        hidden = args[0] if args else kwargs["hidden_states"]
        if "attention_mask" in kwargs or len(args) < 2:
            mask = _with_bias(kwargs.get("attention_mask"), bias, hidden)
            kwargs = {**kwargs, "attention_mask": mask}
        else:
            args = (args[0], _with_bias(args[1], bias, hidden), *args[2:])
        return args, kwargs

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield module
    finally:
        handle.remove()


def erased(module: nn.Module, keys: torch.Tensor) -> Any:
    """Erase the keys ``keys`` ``(rows, L)`` (True = erase) in the attention ``module``: each
    row's erased keys get no weight from any head or query and the other weights are
    renormalised (``key_bias`` with the lowest float at the erased keys)."""
    keys = keys.to(torch.bool)
    return key_bias(module, torch.zeros(keys.shape).masked_fill(keys, float("-inf")))


def _with_bias(mask: torch.Tensor | None, bias: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
    if hidden.shape[0] != bias.shape[0] or hidden.shape[1] != bias.shape[1]:
        raise SettingError(
            "keys",
            f"one row of {hidden.shape[1]} keys per input row ({hidden.shape[0]})",
            bias,
            "",
        )
    lowest = torch.finfo(hidden.dtype).min
    # -inf would give NaN rows where a row loses every key; the lowest float gives 0 weight
    # to the erased keys as long as one key is left (the tests never erase all of them)
    added = bias.to(device=hidden.device, dtype=torch.float64).clamp(min=lowest)
    added = added.to(hidden.dtype)[:, None, None, :]
    if mask is None:
        return added
    if mask.dtype == torch.bool:  # True = may attend
        mask = torch.where(mask, 0.0, lowest).to(hidden.dtype)
    return (mask.to(hidden.dtype) + added).clamp(min=lowest)


@dataclass(frozen=True)
class SingleWeightErasure:
    """Per text: the weights and JS divergences of removing ``i*`` and a random ``r``."""

    alpha_top: np.ndarray
    alpha_random: np.ndarray
    js_top: np.ndarray
    js_random: np.ndarray
    flip_top: np.ndarray
    flip_random: np.ndarray

    @property
    def delta_js(self) -> np.ndarray:
        return self.js_top - self.js_random

    @property
    def delta_alpha(self) -> np.ndarray:
        return self.alpha_top - self.alpha_random

    def table(self) -> np.ndarray:
        """Percent of texts: rows "remove i*: flip yes / no", columns "remove r: yes / no"."""
        top, rnd = self.flip_top.astype(bool), self.flip_random.astype(bool)
        counts = np.array(
            [[np.sum(top & rnd), np.sum(top & ~rnd)], [np.sum(~top & rnd), np.sum(~top & ~rnd)]]
        )
        return 100.0 * counts / max(1, len(top))

    def summary(self) -> dict[str, Any]:
        t = self.table()
        return {
            "texts": len(self.js_top),
            "flip_table_percent": {
                "top_yes_random_yes": t[0, 0],
                "top_yes_random_no": t[0, 1],
                "top_no_random_yes": t[1, 0],
                "top_no_random_no": t[1, 1],
            },
            "share_delta_js_positive": float(np.mean(self.delta_js > 0)),
            "median_delta_js": float(np.median(self.delta_js)),
            "median_delta_alpha": float(np.median(self.delta_alpha)),
            "median_js_top": float(np.median(self.js_top)),
            "median_js_random": float(np.median(self.js_random)),
        }


@dataclass(frozen=True)
class SetErasure:
    """Per text and ranking: how many inputs were removed when the decision first flipped
    (0 where it never flipped before one input was left), out of ``components``."""

    removed: dict[str, np.ndarray]
    components: np.ndarray

    def fractions(self, ranking: str) -> np.ndarray:
        """Fraction removed at the first flip, ``nan`` where the decision never flipped."""
        k = self.removed[ranking].astype(float)
        return np.where(k > 0, k / self.components, np.nan)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"texts": len(self.components)}
        for name in self.removed:
            f = self.fractions(name)
            flipped = ~np.isnan(f)
            bounded = np.where(flipped, f, 1.0)
            out[name] = {
                "share_flipped": float(np.mean(flipped)),
                # a text that never flips counts as "everything removed": a lower bound on
                # the true fraction, comparable over all texts
                "mean_fraction_never_flipped_as_1": float(np.mean(bounded)),
                "median_fraction_removed": float(np.median(f[flipped])) if flipped.any() else None,
                "mean_fraction_removed": float(np.mean(f[flipped])) if flipped.any() else None,
            }
        # which ranking finds a decisive set with fewer removals, text by text; a ranking
        # that never flips the decision counts as needing more than any that does
        both = {}
        names = list(self.removed)
        for a in names:
            for b in names:
                if a < b:
                    ka = np.where(self.removed[a] > 0, self.removed[a], np.inf)
                    kb = np.where(self.removed[b] > 0, self.removed[b], np.inf)
                    decided = np.isfinite(ka) | np.isfinite(kb)
                    both[f"{a}_vs_{b}"] = {
                        "texts_either_flipped": int(decided.sum()),
                        f"{a}_fewer": float(np.mean(ka < kb)),
                        f"{b}_fewer": float(np.mean(kb < ka)),
                        "tied": float(np.mean((ka == kb) & decided)),
                    }
        out["pairwise"] = both
        return out


@dataclass(frozen=True)
class ErasureReport:
    """Both tests on the same texts and layer."""

    texts: list[str]
    layer: int
    layer_name: str
    single: SingleWeightErasure
    sets: SetErasure
    skipped: int = 0
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "layer_name": self.layer_name,
            "texts": len(self.texts),
            "skipped_texts": self.skipped,
            "settings": self.settings,
            "single_weight": self.single.summary(),
            "sets": self.sets.summary(),
        }


def _decisions(
    classifier: TextClassifier,
    module: nn.Module,
    ids: torch.Tensor,
    keys: torch.Tensor,
    batch_size: int,
) -> torch.Tensor:
    """Output distributions ``(rows, classes)`` of ``ids`` rows with ``keys`` erased."""
    out = []
    with prepared(classifier.model), torch.no_grad():
        for start in range(0, ids.shape[0], batch_size):
            rows = slice(start, start + batch_size)
            with erased(module, keys[rows]):
                logits = select_output(classifier.model(input_ids=ids[rows]))
            out.append(torch.softmax(logits.to(torch.float64), dim=-1))
    return torch.cat(out)


def erasure_tests(
    classifier: TextClassifier,
    texts: str | Sequence[str] | Encoding,
    *,
    layer: int = -1,
    rankings: Sequence[str] = RANKINGS,
    include_special: bool = True,
    seed: int = 0,
    batch_size: int = 128,
    truncate: bool = False,
) -> ErasureReport:
    """Both erasure tests of Serrano and Smith at attention ``layer`` (see the module doc).

    Args:
        include_special: count ``[CLS]``/``[SEP]`` among the layer's inputs (they are inputs
            of every layer; many heads attend to them heavily).
        seed: the random component ``r`` and the random ranking.
        batch_size: rows per forward of erased copies.
    """
    for name in rankings:
        if name not in RANKINGS:
            raise SettingError("rankings", f"names from {RANKINGS}", name, "")
    if not isinstance(classifier, TextClassifier):
        raise SettingError("classifier", "a TextClassifier", classifier, "")
    enc = texts if isinstance(texts, Encoding) else classifier.encode(texts, truncate=truncate)
    layer_name, module = _attention_module(classifier.model, layer)
    rng = np.random.default_rng(seed)
    device = next(classifier.model.parameters()).device
    n = len(enc)
    alpha_top, alpha_rand = np.zeros(n), np.zeros(n)
    js_top, js_rand = np.zeros(n), np.zeros(n)
    flip_top, flip_rand = np.zeros(n, bool), np.zeros(n, bool)
    removed = {name: np.zeros(n, dtype=int) for name in rankings}
    components = np.zeros(n, dtype=int)
    usable = np.ones(n, dtype=bool)
    for group in enc.groups():
        ids = enc.ids_of(group).to(device)
        length = ids.shape[1]
        candidates = (
            ~enc.special[int(group[0]), :length]
            if not include_special
            else torch.ones(length, dtype=torch.bool)
        )
        cand = torch.nonzero(candidates).flatten()
        if len(cand) < 2:
            usable[group.numpy()] = False
            continue
        maps, grads, logits, _ = attention_gradients(classifier, ids, layer, _log_prob_target)
        p = torch.softmax(logits.to(torch.float64), dim=-1)
        decision = p.argmax(-1)
        alpha = maps.to(torch.float64).mean((1, 2))  # (n, L)
        grad = grads.to(torch.float64).mean((1, 2))
        product = (maps.to(torch.float64) * grads.to(torch.float64)).mean((1, 2))
        scores = {"attention": alpha, "gradient": grad, "gradient_x_attention": product}

        # 1. single weight: i* and a random other input r, per text
        top = cand[alpha[:, cand].argmax(1)]
        rand = torch.tensor(
            [int(rng.choice([c for c in cand.tolist() if c != int(t)])) for t in top]
        )
        keys = torch.zeros(2 * len(group), length, dtype=torch.bool)
        keys[torch.arange(len(group)), top] = True
        keys[len(group) + torch.arange(len(group)), rand] = True
        q = _decisions(classifier, module, ids.repeat(2, 1), keys, batch_size)
        q_top, q_rand = q[: len(group)], q[len(group) :]
        g = group.numpy()
        rows = torch.arange(len(group))
        alpha_top[g] = alpha[rows, top].cpu().numpy()
        alpha_rand[g] = alpha[rows, rand].cpu().numpy()
        js_top[g] = js_divergence(p, q_top).cpu().numpy()
        js_rand[g] = js_divergence(p, q_rand).cpu().numpy()
        flip_top[g] = (q_top.argmax(-1) != decision).cpu().numpy()
        flip_rand[g] = (q_rand.argmax(-1) != decision).cpu().numpy()

        # 2. sets: remove in ranking order until the decision flips
        components[g] = len(cand)
        orders = []
        for name in rankings:
            if name == "random":
                order = torch.stack([cand[torch.from_numpy(rng.permutation(len(cand)))] for _ in g])
            else:
                s = scores[name][:, cand]
                order = cand[torch.argsort(-s, dim=1, stable=True)]
            orders.append(order)
        # every ranking of the group in one search: fewer, fuller forwards
        found = _first_flip(
            classifier,
            module,
            ids.repeat(len(rankings), 1),
            torch.cat(orders),
            decision.repeat(len(rankings)),
            batch_size,
        )
        for r, name in enumerate(rankings):
            removed[name][g] = found[r * len(g) : (r + 1) * len(g)]
    keep = np.flatnonzero(usable)
    single = SingleWeightErasure(
        alpha_top[keep],
        alpha_rand[keep],
        js_top[keep],
        js_rand[keep],
        flip_top[keep],
        flip_rand[keep],
    )
    sets = SetErasure({k: v[keep] for k, v in removed.items()}, components[keep])
    n_layers = len(attention_modules(classifier.model))
    return ErasureReport(
        texts=[enc.texts[i] for i in keep],
        layer=layer % n_layers,
        layer_name=layer_name,
        single=single,
        sets=sets,
        skipped=int(n - len(keep)),
        settings={"include_special": include_special, "seed": seed, "rankings": list(rankings)},
    )


def _log_prob_target(output: Any) -> torch.Tensor:
    """The decision score ``F = log p_c`` of the predicted class ``c``, per row."""
    logits = select_output(output)
    log_p = torch.log_softmax(logits, dim=-1)
    return log_p.gather(1, logits.detach().argmax(1, keepdim=True)).squeeze(1)


def _first_flip(
    classifier: TextClassifier,
    module: nn.Module,
    ids: torch.Tensor,
    order: torch.Tensor,
    decision: torch.Tensor,
    batch_size: int,
) -> np.ndarray:
    """For each row of ``ids``, the smallest ``k`` such that erasing ``order[:k]`` flips the
    decision (0 if none up to ``len(order) - 1``). Prefixes are evaluated in blocks of
    growing size, and rows stop once they flip, so few rows are spent on early flips."""
    n, c = order.shape
    found = np.zeros(n, dtype=int)
    active = list(range(n))
    k, block = 1, 4
    while active and k < c:
        ks = list(range(k, min(c, k + block)))
        rows_ids, rows_keys, owners = [], [], []
        for i in active:
            for kk in ks:
                m = torch.zeros(ids.shape[1], dtype=torch.bool)
                m[order[i, :kk]] = True
                rows_keys.append(m)
                rows_ids.append(i)
                owners.append((i, kk))
        q = _decisions(
            classifier, module, ids[torch.tensor(rows_ids)], torch.stack(rows_keys), batch_size
        )
        flipped = (q.argmax(-1).cpu() != decision.cpu()[torch.tensor(rows_ids)]).numpy()
        for (i, kk), f in zip(owners, flipped, strict=True):
            if f and found[i] == 0:
                found[i] = kk
        active = [i for i in active if found[i] == 0]
        k += block
        block *= 2
    return found
