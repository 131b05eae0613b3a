"""Anchors for text: the shortest set of words that keeps the prediction (Ribeiro, Singh and
Guestrin 2018, "Anchors: High-Precision Model-Agnostic Explanations").

For a document ``xi`` (words ``xi_1 .. xi_T``) and a classifier ``f``, an anchor ``A`` is a
non-empty set of word positions of ``xi``. Its precision is

    Prec(A) = P(f(X) = f(xi)),

where ``X`` keeps the words of ``A`` and replaces every other word, independently with
probability 1/2, by an unknown token (default) or by a word from a pluggable generator
(a masked language model, for instance). Its coverage on a corpus ``C`` is the share of
documents that contain every word of ``A``. The search solves the paper's problem (eq. 3):

    minimise |A|  subject to  Prec(A) >= 1 - epsilon,

with a beam search over anchor sizes whose candidates are ranked by the KL-LUCB bandit
(Kaufmann and Kalyanakrishnan 2013, "Information Complexity in Bandit Subset Selection"),
estimating precisions by Monte-Carlo and deciding ``Prec(A) >= 1 - epsilon`` with KL
confidence bounds at level ``delta``. Among the anchors of the smallest size, the one with
the highest estimated precision wins (the paper's ``A*``), then the highest coverage.

Samples are shared where that is exact: a perturbation drawn for anchor ``B`` in which the
words of ``A`` (a superset of ``B``) happen to be kept is distributed exactly as a draw for
``A`` (each word is replaced independently), so it counts for ``A`` too; draws for anchors
that are not subsets of ``A`` never do. Perturbed texts go through the core engine
(``attrib.core.batching.run_chunks``) in classifier calls of at most ``batch_size`` texts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from attrib.core.batching import Chunk, run_chunks
from attrib.core.errors import InputError, ModelOutputError, SettingError
from attrib.core.seeding import draw_seed
from attrib.core.settings import (
    SEED,
    Check,
    Configurable,
    Count,
    Function,
    Number,
    Optional,
    Setting,
)
from attrib.methods.catalogue import register

__all__ = ["Anchor", "AnchorsText", "Replacement", "UnknownToken", "kl_bounds"]

Classifier = Callable[[list[str]], Sequence[Any]]
Replacement = Callable[[Sequence[str], torch.Tensor, torch.Generator], list[list[str]]]
"""``replacement(words, replace, generator) -> rows of words``: ``replace`` is a bool tensor
``(rows, T)`` saying which words to replace in each row; it returns, for each row, the ``T``
words of the perturbed text (words not marked must be left as they are)."""

WORD_PATTERN = r"\w+(?:['’]\w+)*"
# KL-LUCB's exploration rate, from Kaufmann and Kalyanakrishnan (2013) as the anchor package
# instantiates it: beta(t) = log(k1 K t^alpha / delta) (+ its log)
_K1 = 405.5
_ALPHA = 1.1


@dataclass(frozen=True)
class UnknownToken:
    """Replace each marked word by ``token`` (the paper's default perturbation of text)."""

    token: str = "UNK"

    def __call__(
        self, words: Sequence[str], replace: torch.Tensor, generator: torch.Generator
    ) -> list[list[str]]:
        return [
            [self.token if r else w for w, r in zip(words, row, strict=True)]
            for row in replace.tolist()
        ]


@dataclass(frozen=True)
class Anchor:
    """The explanation of one text.

    Attributes:
        words: the anchor's words, in the order of the text.
        positions: their indices among the text's words (``tokens``).
        precision: the estimated ``P(f(X) = f(text))`` with the anchor kept.
        precision_bounds: its KL confidence interval at level ``delta``.
        coverage: share of the corpus documents containing every anchor word (None without
            a corpus).
        found: whether the anchor met ``precision >= 1 - epsilon`` (False: the best
            candidate seen, when the budget or ``max_anchor_size`` ran out first).
        prediction: ``f(text)``.
        holds, flips: example perturbations (with the anchor kept) where the prediction
            stays and where it changes.
        tokens: the words of the text; ``samples``: perturbations classified;
        ``calls``: classifier calls (including the one on the text itself).
    """

    words: tuple[str, ...]
    positions: tuple[int, ...]
    precision: float
    precision_bounds: tuple[float, float]
    coverage: float | None
    found: bool
    prediction: Any
    holds: tuple[str, ...]
    flips: tuple[str, ...]
    text: str
    tokens: tuple[str, ...]
    samples: int
    calls: int
    params: dict[str, Any] = field(default_factory=dict)

    def word_scores(self) -> list[tuple[str, float]]:
        """Each word of the text with 1.0 where it is in the anchor and 0.0 elsewhere: what
        ``attrib.viz.token_figure(scores, tokens=words)`` and the report highlight."""
        kept = set(self.positions)
        return [(word, 1.0 if i in kept else 0.0) for i, word in enumerate(self.tokens)]

    def __repr__(self) -> str:
        cov = "" if self.coverage is None else f", coverage={self.coverage:.3g}"
        return f"Anchor(words={self.words}, precision={self.precision:.3g}{cov})"


def kl_bounds(
    means: torch.Tensor, level: torch.Tensor, iterations: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper KL confidence bounds of Bernoulli means: the smallest and largest
    ``q`` with ``kl(p, q) <= level``, by bisection (both bounds of every arm at once)."""
    p = means.to(torch.float64).clamp(0, 1)
    level = torch.as_tensor(level, dtype=torch.float64).expand_as(p)
    pp, lv = torch.cat([p, p]), torch.cat([level, level])
    # search the upper bound in [p, 1] and the lower bound in [0, p]; inside[i] says
    # whether the bound lies beyond the midpoint (away from p)
    near, far = pp.clone(), torch.cat([torch.ones_like(p), torch.zeros_like(p)])
    for _ in range(iterations):
        mid = (near + far) / 2
        inside = _bernoulli_kl(pp, mid) <= lv
        near = torch.where(inside, mid, near)
        far = torch.where(inside, far, mid)
    count = len(p)
    return near[count:], near[:count]


def _bernoulli_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    q = q.clamp(1e-15, 1 - 1e-15)
    return torch.xlogy(p, p / q) + torch.xlogy(1 - p, (1 - p) / (1 - q))


_FRACTION = Number(0, 1, low_open=True, high_open=True)


class _Corpus(Check):
    @property
    def what(self) -> str:
        return "None or a list of documents (strings)"

    def accepts(self, value: Any) -> bool:
        return value is None or (isinstance(value, Sequence) and not isinstance(value, str))


class _Pattern(Check):
    @property
    def what(self) -> str:
        return "a regular expression matching one word"

    def accepts(self, value: Any) -> bool:
        try:
            re.compile(value)
        except (re.error, TypeError):
            return False
        return True


@register(
    family="text",
    paper="Ribeiro et al. 2018",
    short="the shortest rule of words that keeps the prediction",
    summary="The smallest set of words that, kept while the others are replaced at random, "
    "keeps the prediction with high precision (a beam search ranked by the KL-LUCB bandit).",
    formula="min |A|  s.t.  Prec(A) = P(f(X) = f(ξ) | A ⊆ X) ≥ 1 − ε",
    inputs="text",
)
class AnchorsText(Configurable):
    """Anchors (Ribeiro et al. 2018) for any text classifier (a callable from a list of texts to
    labels): the smallest set of words ``A`` with ``Prec(A) = P(f(X) = f(text)) >= 1 - epsilon``
    when the other words are replaced at random.

    Args:
        classifier: ``f(texts: list[str]) -> labels`` (a list, array or tensor of one label
            per text, any type comparable with ``==``).
        epsilon: the precision to reach is ``1 - epsilon`` (default 0.05).
        delta: confidence level of the bounds (default 0.1).
        tau: KL-LUCB stops ranking when the best ``beam_size`` candidates are separated
            from the rest to within ``tau`` (default 0.15).
        tolerance: a candidate is accepted when its estimate is ``>= 1 - epsilon`` and its
            lower bound ``>= 1 - epsilon - tolerance`` (default 0.05, the anchor package's
            ``epsilon_stop``); it is rejected only when its upper bound is below
            ``1 - epsilon`` (KL-LUCB's rule, Kaufmann and Kalyanakrishnan 2013); candidates
            in between are sampled further (until ``max_samples``).
        beam_size: candidates kept per anchor size (default 4).
        pull: perturbations drawn per candidate each time the bandit samples it (default 10).
        batch_size: the most texts per classifier call (default 64).
        replace_probability: probability that a word outside the anchor is replaced (0.5).
        replacement: how a word is replaced: ``UnknownToken("UNK")`` (default) or any
            ``Replacement`` (e.g. one backed by a masked language model).
        corpus: documents on which coverage is measured (optional).
        max_anchor_size: the longest anchor tried (default: the number of words).
        max_samples: the most perturbations per explanation (default 20000).
        examples: example perturbations kept for ``holds`` and ``flips`` (default 5).
        pattern: the regular expression of a word (default ``\\w+`` with apostrophes); the
            text between words (spaces, punctuation) is kept as it is.
        seed: makes the perturbations reproducible (``None``: drawn from torch's RNG).
    """

    first_argument: ClassVar[str] = "classifier"

    epsilon = Setting(0.05, _FRACTION)
    delta = Setting(0.1, _FRACTION)
    tau = Setting(0.15, _FRACTION)
    tolerance = Setting(0.05, Number(0, 1, high_open=True))
    beam_size = Setting(4, Count(1, "candidates kept per size"))
    pull = Setting(10, Count(1, "perturbations per bandit pull"))
    batch_size = Setting(64, Count(1, "texts per classifier call"))
    replace_probability = Setting(0.5, _FRACTION)
    replacement = Setting(
        None, Optional(Function("None (UNK) or a callable (words, replace, generator)"))
    )
    corpus = Setting(None, _Corpus(), shown=lambda corpus: None if corpus is None else len(corpus))
    max_anchor_size = Setting(None, Optional(Count(1, "words in an anchor")))
    max_samples = Setting(20000, Count(1, "perturbations per explanation"))
    examples = Setting(5, Count(0, "example perturbations"))
    pattern = Setting(WORD_PATTERN, _Pattern())
    seed = Setting(None, SEED)

    def __init__(self, classifier: Classifier, **settings: Any) -> None:
        if not callable(classifier):
            raise SettingError("classifier", "a callable texts -> labels", classifier)
        self.classifier = classifier
        self.bind_settings((), settings)

    def configure(self) -> None:
        if self.replacement is None:
            self.assign("replacement", UnknownToken())
        self.word = re.compile(self.pattern)
        self._corpus_words = (
            None if self.corpus is None else [frozenset(self.word.findall(d)) for d in self.corpus]
        )

    def first(self) -> Any:
        return self.classifier

    def __repr__(self) -> str:
        return (
            f"AnchorsText(epsilon={self.epsilon}, delta={self.delta}, beam_size={self.beam_size})"
        )

    def __call__(self, text: str) -> Anchor:
        if not isinstance(text, str):
            raise InputError("text", "one text (a str)", text, "Explain texts one at a time.")
        spans = [m.span() for m in self.word.finditer(text)]
        if not spans:
            raise InputError(
                "text",
                f"a text with at least one word (matched by {self.word.pattern!r})",
                text,
                "Anchors are sets of words; an empty text has none.",
            )
        seed = draw_seed(self.seed)
        search = _Search(self, text, spans, torch.Generator().manual_seed(seed))
        return search.run(seed)

    def coverage(self, words: Sequence[str]) -> float | None:
        """Share of the corpus documents that contain every word of ``words``."""
        if self._corpus_words is None:
            return None
        if not self._corpus_words:
            return 0.0
        needed = set(words)
        return sum(needed <= doc for doc in self._corpus_words) / len(self._corpus_words)


class _Search:
    """One explanation: the pool of perturbations, the arms (candidate anchors) and the beam.

    Every arm keeps its count of valid draws and of draws where the prediction held; a new
    batch of draws updates every arm at once, and a new arm counts the pool once.
    """

    def __init__(
        self,
        owner: AnchorsText,
        text: str,
        spans: list[tuple[int, int]],
        generator: torch.Generator,
    ) -> None:
        self.owner = owner
        self.text = text
        self.words = [text[a:b] for a, b in spans]
        inner = [text[spans[i][1] : spans[i + 1][0]] for i in range(len(spans) - 1)]
        self.gaps = [text[: spans[0][0]], *inner, text[spans[-1][1] :]]
        self.t = len(spans)
        self.generator = generator
        # the pool: kept words and the anchor each draw was made for, and the outcome; kept
        # in buffers that double when full (re-concatenating the pool per draw is quadratic)
        self.size = 0
        self._kept = torch.zeros(64, self.t, dtype=torch.bool)
        self._origin = torch.zeros(64, self.t, dtype=torch.bool)
        self._holds = torch.zeros(64, dtype=torch.bool)
        self.texts: list[str] = []
        # the arms
        self.index: dict[tuple[int, ...], int] = {}
        self.arms = torch.zeros(0, self.t, dtype=torch.bool)
        self.n = torch.zeros(0, dtype=torch.float64)
        self.positive = torch.zeros(0, dtype=torch.float64)
        self.prediction = self._classify([text])[0]
        self.calls = 1

    # -- the pool -----------------------------------------------------------------------

    def _classify(self, texts: list[str]) -> list[Any]:
        labels = self.owner.classifier(texts)
        if hasattr(labels, "tolist"):
            labels = labels.tolist()
        labels = list(labels)
        if len(labels) != len(texts):
            raise ModelOutputError(
                "classifier",
                "one label per text",
                f"{len(labels)} labels for {len(texts)} texts",
                "The classifier must map a list of texts to a list of labels.",
            )
        return labels

    def join(self, words: Sequence[str]) -> str:
        pieces = [self.gaps[0]]
        for word, gap in zip(words, self.gaps[1:], strict=True):
            pieces += [word, gap]
        return "".join(pieces)

    def draw(self, requests: list[tuple[int, int]]) -> None:
        """Draw ``count`` perturbations for each ``(arm, count)`` and classify them in calls
        of at most ``batch_size`` texts (through the core engine)."""
        requests = [(a, c) for a, c in requests if c > 0]
        if not requests:
            return
        arms = torch.tensor([a for a, c in requests for _ in range(c)], dtype=torch.long)
        origin = self.arms[arms]
        coin = torch.rand(len(arms), self.t, generator=self.generator, dtype=torch.float64)
        kept = origin | (coin >= self.owner.replace_probability)
        texts: list[str] = []

        def evaluate(chunk: Chunk) -> torch.Tensor:
            rows = kept[chunk.start : chunk.stop]
            batch = [
                self.join(w) for w in self.owner.replacement(self.words, ~rows, self.generator)
            ]
            labels = self._classify(batch)
            self.calls += 1
            texts.extend(batch)
            return torch.tensor([label == self.prediction for label in labels], dtype=torch.bool)

        holds = run_chunks(evaluate, 1, len(arms), self.owner.batch_size, "keep")[0].bool()
        valid = _valid(self.arms, origin, kept)  # (arms, new draws)
        self.n += valid.sum(1)
        self.positive += (valid & holds).sum(1)
        self._append(kept, origin, holds)
        self.texts.extend(texts)

    def _append(self, kept: torch.Tensor, origin: torch.Tensor, holds: torch.Tensor) -> None:
        stop = self.size + len(holds)
        if stop > len(self._holds):
            capacity = max(stop, 2 * len(self._holds))
            self._kept = _grown(self._kept, capacity)
            self._origin = _grown(self._origin, capacity)
            self._holds = _grown(self._holds, capacity)
        self._kept[self.size : stop] = kept
        self._origin[self.size : stop] = origin
        self._holds[self.size : stop] = holds
        self.size = stop

    @property
    def kept(self) -> torch.Tensor:
        return self._kept[: self.size]

    @property
    def origin(self) -> torch.Tensor:
        return self._origin[: self.size]

    @property
    def holds(self) -> torch.Tensor:
        return self._holds[: self.size]

    def register(self, anchors: list[torch.Tensor]) -> list[int]:
        """Arm numbers of ``anchors``, counting the pool's valid draws for new ones."""
        keys = [tuple(a.nonzero().flatten().tolist()) for a in anchors]
        new = [i for i, key in enumerate(keys) if key not in self.index]
        new = [i for j, i in enumerate(new) if keys[i] not in {keys[k] for k in new[:j]}]
        if new:
            fresh = torch.stack([anchors[i] for i in new])
            valid = _valid(fresh, self.origin, self.kept)  # (new arms, pool)
            for i in new:
                self.index[keys[i]] = len(self.index)
            self.arms = torch.cat([self.arms, fresh])
            self.n = torch.cat([self.n, valid.sum(1).to(torch.float64)])
            positive = (valid & self.holds).sum(1).to(torch.float64)
            self.positive = torch.cat([self.positive, positive])
        return [self.index[key] for key in keys]

    def budget_left(self) -> int:
        return self.owner.max_samples - self.size

    # -- the bandit ---------------------------------------------------------------------

    def bounds(self, arms: list[int], beta: float) -> tuple[torch.Tensor, ...]:
        n = self.n[arms]
        means = self.positive[arms] / n
        lower, upper = kl_bounds(means, beta / n)
        return means, lower, upper

    def ensure(self, arms: list[int], minimum: int) -> None:
        self.draw([(a, max(0, minimum - int(self.n[a]))) for a in arms])

    def decide(self, arms: list[int]) -> torch.Tensor:
        """Sample each arm until it is accepted or rejected (or the budget ends); returns
        which were accepted."""
        goal = 1 - self.owner.epsilon
        slack = self.owner.tolerance
        beta = math.log(1 / self.owner.delta)
        while True:
            means, lower, upper = self.bounds(arms, beta)
            accepted = (means >= goal) & (lower >= goal - slack)
            # KL-LUCB rejects only what its upper bound rules out: an arm whose precision
            # may still reach the goal is sampled further (rejecting on the estimate alone
            # let one unlucky draw of a true anchor send the search to longer anchors)
            rejected = upper < goal
            undecided = (~(accepted | rejected)).nonzero().flatten().tolist()
            if not undecided or self.budget_left() <= 0:
                return accepted
            pull = min(self.owner.pull, max(1, self.budget_left() // len(undecided)))
            self.draw([(arms[i], pull) for i in undecided])

    def best(self, arms: list[int], top: int) -> list[int]:
        """KL-LUCB: the ``top`` arms of highest precision, to within ``tau``."""
        if len(arms) <= top:
            return list(arms)
        rounds = 1
        while True:
            beta = math.log(_K1 * len(arms) * rounds**_ALPHA / self.owner.delta)
            means, lower, upper = self.bounds(arms, beta + math.log(beta))
            order = torch.argsort(means, descending=True, stable=True)
            chosen, rest = order[:top], order[top:]
            ut = int(rest[torch.argmax(upper[rest])])
            lt = int(chosen[torch.argmin(lower[chosen])])
            if float(upper[ut] - lower[lt]) <= self.owner.tau or self.budget_left() <= 0:
                return [arms[i] for i in chosen.tolist()]
            pull = min(self.owner.pull, max(1, self.budget_left() // 2))
            self.draw([(arms[ut], pull), (arms[lt], pull)])
            rounds += 1

    # -- the beam -----------------------------------------------------------------------

    def run(self, seed: int) -> Anchor:
        owner = self.owner
        beam = [torch.zeros(self.t, dtype=torch.bool)]
        largest = min(owner.max_anchor_size or self.t, self.t)
        winner: int | None = None
        for _size in range(1, largest + 1):
            arms = self.register(_extensions(beam, self.t))
            if not arms or self.budget_left() <= 0:
                break
            self.ensure(arms, owner.pull)
            # the smallest anchors first: any candidate of this size that is an anchor ends
            # the search (a superset of the paper's check of the B best candidates)
            accepted = self.decide(arms)
            if bool(accepted.any()):
                winner = self._pick(
                    [a for a, ok in zip(arms, accepted.tolist(), strict=True) if ok]
                )
                break
            beam = [self.arms[a] for a in self.best(arms, owner.beam_size)]
        found = winner is not None
        if winner is None:  # no anchor met the precision: report the most precise arm seen
            if len(self.arms):
                winner = self._pick(list(range(len(self.arms))))
            else:
                winner = self.register([torch.ones(self.t, dtype=torch.bool)])[0]
        return self._result(winner, found, seed)

    def _pick(self, arms: list[int]) -> int:
        means = (self.positive[arms] / self.n[arms].clamp(min=1)).tolist()
        covers = [self.owner.coverage(self._words(self.arms[a])) or 0.0 for a in arms]
        sizes = [int(self.arms[a].sum()) for a in arms]
        ranked = sorted(range(len(arms)), key=lambda i: (-means[i], sizes[i], -covers[i]))
        return arms[ranked[0]]

    def _words(self, anchor: torch.Tensor) -> tuple[str, ...]:
        return tuple(self.words[i] for i in anchor.nonzero().flatten().tolist())

    def _result(self, arm: int, found: bool, seed: int) -> Anchor:
        anchor = self.arms[arm]
        n, positive = self.n[arm], self.positive[arm]
        mean = float(positive / n) if n > 0 else math.nan
        lower, upper = kl_bounds(
            (positive / n.clamp(min=1)).view(1), (math.log(1 / self.owner.delta) / n).view(1)
        )
        valid = _valid(anchor.view(1, -1), self.origin, self.kept)[0]
        rows = valid.nonzero().flatten().tolist()
        keep = self.owner.examples
        holds = [self.texts[r] for r in rows if bool(self.holds[r])][:keep]
        flips = [self.texts[r] for r in rows if not bool(self.holds[r])][:keep]
        words = self._words(anchor)
        return Anchor(
            words=words,
            positions=tuple(anchor.nonzero().flatten().tolist()),
            precision=mean,
            precision_bounds=(float(lower[0]), float(upper[0])),
            coverage=self.owner.coverage(words),
            found=found,
            prediction=self.prediction,
            holds=tuple(holds),
            flips=tuple(flips),
            text=self.text,
            tokens=tuple(self.words),
            samples=self.size,
            calls=self.calls,
            params={**self.owner.settings(), "seed": seed},
        )


def _grown(buffer: torch.Tensor, capacity: int) -> torch.Tensor:
    out = buffer.new_zeros((capacity, *buffer.shape[1:]))
    out[: len(buffer)] = buffer
    return out


def _valid(arms: torch.Tensor, origin: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """``(arms, draws)``: which draws are distributed as draws for each arm: made for a
    subset of the arm (every origin word is in the arm) with every word of the arm kept."""
    a = arms.unsqueeze(1)
    from_subset = ~(origin.unsqueeze(0) & ~a).any(2)
    all_kept = (kept.unsqueeze(0) | ~a).all(2)
    return from_subset & all_kept


def _extensions(beam: list[torch.Tensor], t: int) -> list[torch.Tensor]:
    """Every anchor of the beam with one more word, without duplicates."""
    seen: set[tuple[int, ...]] = set()
    out = []
    for anchor in beam:
        for i in (~anchor).nonzero().flatten().tolist():
            grown = anchor.clone()
            grown[i] = True
            key = tuple(grown.nonzero().flatten().tolist())
            if key not in seen:
                seen.add(key)
                out.append(grown)
    return out
