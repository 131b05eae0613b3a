"""The errors of attrib.text: each says what was wrong with the text or model, and what to do.

They subclass the core errors (and so ``AttribError`` and ``ValueError``), so that code that
catches ``AttribError`` catches these too.
"""

from __future__ import annotations

from attrib.core.errors import InputError, LayerError, ModelOutputError

__all__ = [
    "AttentionUnavailableError",
    "ContinuationSplitError",
    "EmbeddingsUnavailableError",
    "EmptyTextError",
    "NotALanguageModelError",
    "TextTooLongError",
]


class EmptyTextError(InputError):
    """A text with no tokens (empty or only whitespace): there is nothing to attribute."""


class TextTooLongError(InputError):
    """A text with more tokens than the model accepts (``truncate=False``, the default)."""


class AttentionUnavailableError(ModelOutputError):
    """Attention weights were asked for, but the model does not return them."""


class EmbeddingsUnavailableError(LayerError):
    """The model offers no input embeddings to explain: ``get_input_embeddings()`` returns
    ``None`` or raises, or its forward does not accept ``inputs_embeds=``."""


class ContinuationSplitError(InputError):
    """A forced continuation that the tokenizer splits differently once it follows the
    prompt: its tokens in context are not the ones it has alone."""


class NotALanguageModelError(ModelOutputError):
    """Generation was to be explained, but the model has no language-model head (no
    next-token logits): a classifier, or a bare ``GPT2Model``."""
