"""Hugging Face classifiers as functions of their input embeddings.

Token ids are integers and have no gradient, so attributions live at the input embeddings
``E = W_emb[ids]``, ``(N, L, d)``. ``EmbeddingModel`` is the function ``E -> logits`` that
every method of the library explains unchanged: it calls the model with ``inputs_embeds=E``
(and the attention mask bound, ``functools.partial`` style, where one is needed). BERT-like
models add position and token-type embeddings to ``inputs_embeds`` themselves
(``BertEmbeddings.forward``), so ``E`` is exactly the part of the input the tokens decide.

``TextClassifier`` holds a model and its tokenizer, encodes and checks texts, and gives the
"list of strings -> labels" function that black-box methods (Anchors) need.

``transformers`` is never imported here at module level: any model with
``get_input_embeddings()`` that accepts ``inputs_embeds=`` and ``attention_mask=`` and returns
logits (a tensor, or an output with ``.logits``) works. A model without them raises
``EmbeddingsUnavailableError`` where an explanation needs them (predictions, and so
``AnchorsText(classifier.predict)``, need neither).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from attrib.core.errors import SettingError
from attrib.core.hooks import prepared
from attrib.core.target import select_output
from attrib.text.encoding import Encoding, encode
from attrib.text.errors import EmbeddingsUnavailableError

__all__ = [
    "ClassifierOutput",
    "EmbeddingModel",
    "Pooling",
    "SentenceClassifier",
    "TextClassifier",
    "accepts_inputs_embeds",
    "call_with_embeddings",
    "input_embeddings",
    "require_inputs_embeds",
]

Pooling = Literal["mean", "cls"]


# what every explanation at the embeddings needs of a model, said once for every message
_NEEDS = (
    "a model whose get_input_embeddings() returns its token embedding layer (ids -> (N, L, d)) "
    "and whose forward accepts inputs_embeds= and attention_mask= (as Hugging Face models do)"
)
_TODO = (
    "Wrap the model in a module that offers both, or explain it with a method that only "
    "needs its predictions (AnchorsText(classifier.predict))."
)


def input_embeddings(model: nn.Module) -> nn.Module:
    """``model.get_input_embeddings()``, or ``EmbeddingsUnavailableError`` where the model
    has none (``None``, or the ``NotImplementedError`` of a Hugging Face model without a
    base model)."""
    getter = getattr(model, "get_input_embeddings", None)
    if not callable(getter):
        raise EmbeddingsUnavailableError("model", _NEEDS, type(model).__name__, _TODO)
    try:
        layer = getter()
    except (NotImplementedError, AttributeError) as error:
        raise EmbeddingsUnavailableError(
            "model",
            _NEEDS,
            f"{type(model).__name__} whose get_input_embeddings() raised "
            f"{type(error).__name__}: {error}",
            _TODO,
        ) from None
    if not isinstance(layer, nn.Module):
        raise EmbeddingsUnavailableError(
            "model",
            _NEEDS,
            f"{type(model).__name__} whose get_input_embeddings() returned {type(layer).__name__}",
            _TODO,
        )
    return layer


def accepts_inputs_embeds(model: nn.Module) -> bool:
    """Whether ``model``'s forward takes ``inputs_embeds=`` (by name, or through
    ``**kwargs``, which is taken on trust)."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # no signature to read: the call will tell
        return True
    return any(
        p.name == "inputs_embeds" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )


def require_inputs_embeds(model: nn.Module) -> None:
    """``EmbeddingsUnavailableError`` unless ``model``'s forward takes ``inputs_embeds=``."""
    if not accepts_inputs_embeds(model):
        raise EmbeddingsUnavailableError(
            "model",
            _NEEDS,
            f"{type(model).__name__} whose forward{inspect.signature(model.forward)} has no "
            "inputs_embeds",
            _TODO,
        )


def call_with_embeddings(model: nn.Module, **inputs: Any) -> Any:
    """``model(**inputs)`` with ``inputs_embeds`` among them, or ``EmbeddingsUnavailableError``
    where the model cannot take them (checked before the call, and for a ``forward(**kwargs)``
    that hands them to one without, after)."""
    require_inputs_embeds(model)
    try:
        return call_model(model, **inputs)
    except TypeError as error:
        if "inputs_embeds" not in str(error):
            raise
        raise EmbeddingsUnavailableError(
            "model", _NEEDS, f"{type(model).__name__} ({error})", _TODO
        ) from None


def call_model(model: nn.Module, **inputs: Any) -> Any:
    """``model(**inputs)``; a Hugging Face classifier that pools the last token and has no
    ``config.pad_token_id`` (GPT-2's) refuses batches of several rows, which every method
    but plain gradients makes: that refusal becomes a ``SettingError`` that says the fix."""
    try:
        return model(**inputs)
    except ValueError as error:
        if "no padding token" not in str(error):
            raise
        raise SettingError(
            "model",
            "a model that takes batches of several rows (a config with pad_token_id)",
            f"{type(model).__name__} ({error})",
            "Set model.config.pad_token_id, e.g. to tokenizer.eos_token_id: explanations "
            "run texts of one length together, so no padding reaches the model, and "
            "TextClassifier pads its prediction batches with that id.",
        ) from None


@dataclass
class ClassifierOutput:
    """What ``SentenceClassifier`` returns: the logits, and the attentions when asked for."""

    logits: torch.Tensor
    attentions: tuple[torch.Tensor, ...] | None = None


class SentenceClassifier(nn.Module):
    """An encoder, mean pooling over tokens, and a linear head.

    ``logits = W (sum_t m_t h_t / sum_t m_t) + b`` where ``h_t`` are the encoder's last
    hidden states and ``m_t`` the attention mask: the sentence embedding of
    sentence-transformers (Reimers and Gurevych 2019, "Sentence-BERT") with a classifier on
    top. Its forward takes the keyword arguments of a Hugging Face model.
    """

    def __init__(self, encoder: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    @property
    def config(self) -> Any:
        return self.encoder.config

    def get_input_embeddings(self) -> nn.Module:
        return input_embeddings(self.encoder)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool = False,
        **kwargs: Any,
    ) -> ClassifierOutput:
        out = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_attentions=output_attentions,
            **kwargs,
        )
        hidden = out.last_hidden_state
        if attention_mask is None:
            pooled = hidden.mean(1)
        else:
            m = attention_mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        attentions = getattr(out, "attentions", None) if output_attentions else None
        return ClassifierOutput(self.head(pooled), attentions)


class EmbeddingModel(nn.Module):
    """``E -> logits``: a classifier called with ``inputs_embeds=E``.

    Args:
        model: a Hugging Face classifier (or ``SentenceClassifier``).
        attention_mask: ``None`` (every position is a real token, as in the groups that
            ``explain_tokens`` runs), or a ``(N, L)`` mask bound to the batch: it serves
            ``N`` rows, or any number of rows when ``N == 1``. Methods that expand the batch
            (integration steps, noise draws) hand the model more rows than ``N``; a mask of
            several different rows cannot follow them, and that case raises.
    """

    def __init__(self, model: nn.Module, attention_mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.model = model
        self.attention_mask = attention_mask
        # the wrapper has no layer of its own that depends on the mode; only the wrapped
        # model's flags count (and a fresh module would otherwise read as "training")
        self.training = False

    def bind(self, attention_mask: torch.Tensor | None) -> EmbeddingModel:
        """The same model with another attention mask bound (no copy of the weights)."""
        return EmbeddingModel(self.model, attention_mask)

    def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        mask = self._mask_for(inputs_embeds)
        return select_output(
            call_with_embeddings(self.model, inputs_embeds=inputs_embeds, attention_mask=mask)
        )

    def _mask_for(self, embeds: torch.Tensor) -> torch.Tensor | None:
        mask = self.attention_mask
        if mask is None:
            return None
        rows = embeds.shape[0]
        if mask.shape[1] != embeds.shape[1]:
            raise SettingError(
                "attention_mask",
                f"a mask of the embeddings' length {embeds.shape[1]}",
                mask,
                "",
            )
        if mask.shape[0] == rows:
            return mask.to(embeds.device)
        if mask.shape[0] == 1:
            return mask.to(embeds.device).expand(rows, -1)
        raise SettingError(
            "attention_mask",
            f"a mask for the {rows} rows the method evaluates (or one row for all)",
            mask,
            "Methods expand the batch (steps, draws, occluded copies) and a bound mask of "
            "several texts cannot follow the rows; use attrib.text.explain_tokens, which "
            "runs texts of one length together and needs no mask.",
        )


class TextClassifier:
    """A classifier and its tokenizer, seen from the library: texts in, logits out.

    Args:
        model: a Hugging Face sequence classifier (``AutoModelForSequenceClassification``),
            a ``SentenceClassifier``, or any module with ``get_input_embeddings()`` whose
            forward accepts ``inputs_embeds=`` and ``attention_mask=``. Load it with
            ``attn_implementation="eager"`` where attention weights are wanted.
        tokenizer: its Hugging Face tokenizer.
        labels: class names, for reports and HTML.
        max_length: the most tokens per text; default the smaller of the tokenizer's
            ``model_max_length`` and the model's ``max_position_embeddings``.
        pooling: how the model reads its last layer, which decides the default query row of
            attention explanations: ``"mean"`` (every token) or ``"cls"`` (the first token).
            Default ``"mean"`` for a ``SentenceClassifier``, else ``"cls"``.
        batch_size: the most texts per forward in ``logits``/``predict``.

    The constructor does not touch the model (its mode and flags are set, and restored, by
    each call).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        labels: Sequence[str] | None = None,
        max_length: int | None = None,
        pooling: Pooling | None = None,
        batch_size: int = 64,
    ) -> None:
        if not isinstance(model, nn.Module) or not hasattr(model, "get_input_embeddings"):
            raise SettingError(
                "model",
                "an nn.Module with get_input_embeddings() (a Hugging Face model)",
                model,
                "",
            )
        if not callable(tokenizer):
            raise SettingError("tokenizer", "a Hugging Face tokenizer", tokenizer, "")
        self.model = model
        self.tokenizer = tokenizer
        self.labels = list(labels) if labels is not None else None
        self.max_length = (
            int(max_length) if max_length is not None else _max_length(model, tokenizer)
        )
        if pooling is None:
            pooling = "mean" if isinstance(model, SentenceClassifier) else "cls"
        if pooling not in ("mean", "cls"):
            raise SettingError("pooling", "'mean' or 'cls'", pooling, "")
        self.pooling: Pooling = pooling
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise SettingError("batch_size", "a positive int", batch_size, "")
        self.batch_size = batch_size
        self.embedding_model = EmbeddingModel(model)

    def __repr__(self) -> str:
        return (
            f"TextClassifier({type(self.model).__name__}, labels={self.labels}, "
            f"max_length={self.max_length}, pooling={self.pooling!r})"
        )

    @property
    def embedding_layer(self) -> nn.Module:
        """The model's input embedding layer (``EmbeddingsUnavailableError`` where it has
        none)."""
        return input_embeddings(self.model)

    def encode(
        self, texts: str | Sequence[str], *, truncate: bool = False, allow_empty: bool = False
    ) -> Encoding:
        """Tokenise and check ``texts`` (see ``attrib.text.encoding.encode``)."""
        return encode(
            self.tokenizer, texts, self.max_length, truncate=truncate, allow_empty=allow_empty
        )

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings ``W_emb[ids]``, detached: the point every method explains."""
        layer = self.embedding_layer
        weight = getattr(layer, "weight", None)
        with torch.no_grad():
            if weight is not None and isinstance(layer, nn.Embedding):
                return weight[input_ids.to(weight.device)].detach()
            return layer(input_ids).detach()

    @property
    def pad_id(self) -> int:
        """The id that pads prediction batches: the tokenizer's pad token, else the model's
        ``config.pad_token_id`` (a GPT-2 classifier finds each text's last token by it),
        else 0 (the attention mask hides it)."""
        for found in (
            getattr(self.tokenizer, "pad_token_id", None),
            getattr(getattr(self.model, "config", None), "pad_token_id", None),
        ):
            if isinstance(found, int) and not isinstance(found, bool):
                return found
        return 0

    def token_embedding(self, token_id: int) -> torch.Tensor:
        """The input embedding of one token id, ``(d,)``."""
        return self.embed(torch.tensor([[int(token_id)]]))[0, 0]

    def logits(
        self, texts: str | Sequence[str] | Encoding, *, truncate: bool = False
    ) -> torch.Tensor:
        """Logits ``(N, classes)`` of the texts, in batches of ``batch_size`` texts.

        Texts are sorted by length and padded within each batch with the attention mask (a
        forward only: no method expands these rows) and ``pad_id``.
        """
        enc = (
            texts
            if isinstance(texts, Encoding)
            else self.encode(texts, truncate=truncate, allow_empty=True)
        )
        order = torch.argsort(enc.lengths, stable=True)
        out: list[torch.Tensor] = [torch.empty(0)] * len(enc)
        device = _device(self.model)
        with prepared(self.model), torch.no_grad():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                width = int(enc.lengths[chunk].max())
                real = enc.mask[chunk, :width]
                ids = torch.where(real, enc.input_ids[chunk, :width], self.pad_id).to(device)
                mask = real.to(device=device, dtype=torch.long)
                logits = select_output(call_model(self.model, input_ids=ids, attention_mask=mask))
                for k, i in enumerate(chunk.tolist()):
                    out[i] = logits[k].detach()
        return torch.stack(out)

    def predict_proba(self, texts: str | Sequence[str], *, truncate: bool = False) -> torch.Tensor:
        """Class probabilities ``softmax(logits)``, ``(N, classes)``."""
        return torch.softmax(self.logits(texts, truncate=truncate).double(), dim=1)

    def predict(self, texts: str | Sequence[str], *, truncate: bool = False) -> np.ndarray:
        """Predicted labels: the "list of strings -> labels" function of black-box methods.

        ``AnchorsText`` (and anything else that only queries the model) takes this bound
        method as its classifier. Empty texts are allowed here (a perturbation may drop every
        word); the model then sees only its special tokens.
        """
        return self.logits(texts, truncate=truncate).argmax(1).cpu().numpy()

    def label(self, index: int) -> str:
        """The name of class ``index`` (its number where no names were given)."""
        if self.labels is not None and 0 <= index < len(self.labels):
            return str(self.labels[index])
        return str(index)


def _max_length(model: nn.Module, tokenizer: Any) -> int:
    limits = []
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < 10**9:  # "no limit" is a huge sentinel
        limits.append(declared)
    return min(limits) if limits else 512


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
