"""Live explanations of typed texts, for a loaded text classifier (``attrib serve RUN
--model minilm-sentiment``): the same jobs as ``attrib.serve.live`` (one worker thread,
progress, cancellation at the model's next forward), each method giving one score per token
(``attrib.text.explain_tokens``) and per word (``TokenAttribution.words_of``: the pieces
merged by ``attrib.text.aggregate``)."""

from __future__ import annotations

from typing import Any

import torch

from attrib.core.errors import AttribError
from attrib.serve.live import Job, Live, UploadError, run_job, signed_method

__all__ = ["MAX_TEXT_CHARS", "TextLive"]

MAX_TEXT_CHARS = 5000
"""The longest text a request may ask to explain (longer ones are refused with a 400)."""


class TextLive(Live):
    """A loaded ``TextClassifier``, its jobs (see the module)."""

    kind = "text"

    def __init__(self, classifier: Any, label: str, settings: dict[str, Any] | None = None) -> None:
        from attrib.runs.models import LoadedModel

        super().__init__(LoadedModel(classifier.model, label, "none", classifier.labels), settings)
        self.classifier = classifier

    def class_name(self, cls: int | None) -> str | None:
        if cls is None:
            return None
        names = self.classifier.labels
        return str(names[cls]) if names and 0 <= cls < len(names) else str(cls)

    def describe(self) -> dict[str, Any]:
        from attrib.text.explain import text_methods

        return {
            "kind": "text",
            "label": self.loaded.label,
            "classes": list(self.classifier.labels or []),
            "methods": [
                {"name": info.name, "signed": info.signed, "family": info.family}
                for info in text_methods()
                if not info.wrapper
            ],
            "max_upload_bytes": 0,
            "max_text_chars": MAX_TEXT_CHARS,
        }

    def upload(self, data: bytes) -> Any:
        raise UploadError("the loaded model explains texts: send a text, not an image", 409)

    def method_names(self, names: list[str]) -> list[str]:
        from attrib.text.explain import find_text_method

        return [find_text_method(n).name for n in names]

    def class_count(self) -> int:
        return len(self.classifier.labels or [])

    def submit_text(self, text: Any, methods: list[str], target: Any) -> Job:
        if not isinstance(text, str) or not text.strip():
            raise AttribError("text", "a text to explain", text, "")
        if len(text) > MAX_TEXT_CHARS:
            raise AttribError("text", f"at most {MAX_TEXT_CHARS} characters", len(text), "")
        return self.submit(text, None, methods, target)

    def _run(self, job: Job) -> None:
        from attrib.methods.recipes import settings_for
        from attrib.text.explain import explain_tokens

        text = str(job.input)

        def predict() -> int:
            with torch.no_grad():
                return int(self.classifier.logits([text], truncate=True).argmax(1)[0])

        def explain(name: str, target: int) -> None:
            result = explain_tokens(
                self.classifier,
                [text],
                name,
                target=[target],
                truncate=True,
                **settings_for(name, self.settings),
            )
            pieces = result.scores().tokens_and_scores(0)
            words = result.scores().words_of(0)
            job.tokens[name] = {
                "tokens": [t for t, _ in pieces],
                "scores": [float(v) for _, v in pieces],
                "words": [w for w, _ in words],
                "word_scores": [float(v) for _, v in words],
                "signed": signed_method(name),
            }

        run_job(job, self.model, predict, explain)
