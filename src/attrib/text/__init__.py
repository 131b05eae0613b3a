"""attrib.text: token attribution for Hugging Face text classifiers.

    from attrib.text import TextClassifier, explain_tokens
    clf = TextClassifier(model, tokenizer)            # or load_minilm_sentiment()
    result = explain_tokens(clf, ["a gripping, funny film"], "integrated_gradients", steps=64)
    result.scores().words()                           # [[("a", ...), ("gripping", ...), ...]]
    result.html()                                     # highlighted words with a legend

Every gradient and path method of the library works at the input embeddings through
``clf.embedding_model`` (``E -> logits``). ``explain_generation(lm, tokenizer, prompt)``
explains a causal language model's output: for each generated token, the attribution of its
log-probability to every earlier token (``GenerationAttribution``: a steps x tokens matrix,
``html()``, ``to_json()``). ``load_text_model`` loads the demo classifier or a
local Hugging Face folder by name; ``erasure_tests`` runs Serrano and Smith's (2019)
attention erasure tests. ``transformers`` is an optional extra: nothing here imports it
until a pretrained model is loaded.
"""

from attrib.text.aggregate import merge_words, token_scores
from attrib.text.anchors import AnchorsText
from attrib.text.attention import (
    attention_rollout,
    attention_weights,
    attention_x_gradient,
    last_layer_attention,
    rollout,
)
from attrib.text.baselines import baseline_embeddings, replacement_embedding
from attrib.text.encoding import Encoding
from attrib.text.erasure import ErasureReport, erased, erasure_tests, js_divergence
from attrib.text.errors import (
    AttentionUnavailableError,
    ContinuationSplitError,
    EmbeddingsUnavailableError,
    EmptyTextError,
    NotALanguageModelError,
    TextTooLongError,
)
from attrib.text.explain import explain_tokens, method_names
from attrib.text.generation import GENERATION_METHODS, explain_generation, explain_generations
from attrib.text.generation_result import GenerationAttribution
from attrib.text.html import highlight
from attrib.text.loading import load_text_model
from attrib.text.minilm import load_minilm_sentiment
from attrib.text.models import EmbeddingModel, SentenceClassifier, TextClassifier
from attrib.text.occlusion import LeaveOneOut
from attrib.text.result import TokenAttribution, TokenScores
from attrib.text.shap import TokenKernelSHAP

__all__ = [
    "GENERATION_METHODS",
    "AnchorsText",
    "AttentionUnavailableError",
    "ContinuationSplitError",
    "EmbeddingModel",
    "EmbeddingsUnavailableError",
    "EmptyTextError",
    "Encoding",
    "ErasureReport",
    "GenerationAttribution",
    "LeaveOneOut",
    "NotALanguageModelError",
    "SentenceClassifier",
    "TextClassifier",
    "TextTooLongError",
    "TokenAttribution",
    "TokenKernelSHAP",
    "TokenScores",
    "attention_rollout",
    "attention_weights",
    "attention_x_gradient",
    "baseline_embeddings",
    "erased",
    "erasure_tests",
    "explain_generation",
    "explain_generations",
    "explain_tokens",
    "highlight",
    "js_divergence",
    "last_layer_attention",
    "load_minilm_sentiment",
    "load_text_model",
    "merge_words",
    "method_names",
    "replacement_embedding",
    "rollout",
    "token_scores",
]
