"""The errors of attrib.text: each says what was wrong with the text or model, and what to do.

They subclass the core errors (and so ``AttribError`` and ``ValueError``), so that code that
catches ``AttribError`` catches these too.
"""

from __future__ import annotations

from attrib.core.errors import InputError, LayerError, ModelOutputError

__all__ = [
    "AttentionUnavailableError",
    "EmbeddingsUnavailableError",
    "EmptyTextError",
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
