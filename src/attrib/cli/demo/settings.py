"""The demo's choices: settings that keep every method under a few seconds per photo on a
CPU, the layers for CAM and the sanity check, and the sentences for the text model.

Each setting trades accuracy for time and is named in the report (the ``Attribution.params``
of every method are the record); ``attrib explain`` uses fuller defaults. The names are the
catalogue's class names and the settings ones their methods take
(``tests/cli/test_demo.py``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CURVE_METHODS",
    "CURVE_STEPS",
    "GENERATION_PROMPT",
    "GENERATION_TOKENS",
    "SANITY_CHECKPOINTS",
    "SANITY_IMAGES",
    "SANITY_METHODS",
    "TEXTS",
    "TEXT_METHODS",
    "settings",
]


def _grid(cell: int | tuple[int, int]) -> Any:
    from attrib.methods.perturbation import grid

    return grid(cell)


def settings() -> dict[str, dict[str, Any]]:
    """Per method class name: the settings the demo passes to the recipe."""
    return {
        "SmoothGrad": {"samples": 4},
        "SmoothGradSquared": {"samples": 4},
        "VarGrad": {"samples": 4},
        "IntegratedGradients": {"steps": 8},
        "ExpectedGradients": {"samples": 8},
        "BlurIG": {"steps": 8},
        # Score-CAM runs one forward per channel: blocks.10 has 112 (14 x 14), the head 1280
        "ScoreCAM": {"layer": "blocks.10"},
        "Occlusion": {"window": 75, "strides": 37},
        "FeatureAblation": {"feature_mask": _grid(45)},
        # exact Shapley values cost 2^P forwards: 2 x 3 cells are 64 coalitions per photo
        "ExactShapley": {"feature_mask": _grid((112, 75))},
        "ShapleySampling": {"feature_mask": _grid(75), "samples": 4},
        "KernelSHAP": {"feature_mask": _grid(45), "samples": 64},
        "LIME": {"feature_mask": _grid(45), "samples": 64},
    }


CURVE_METHODS: tuple[str, ...] | None = None
"""Methods on the deletion/insertion curves (``None``: all). Each curve costs ``steps + 1``
forwards per photo, about 1.2 s for the five photos on one CPU thread: 28 methods and the
random map add about a minute to the demo, and the verdict judges every method."""
CURVE_STEPS = 8
SANITY_METHODS = (
    "Saliency",
    "GradientXInput",
    "IntegratedGradients",
    "GradCAM",
    "GuidedBackprop",
    "LRP",
    "Occlusion",
)
"""Methods of the sanity check: one or two per family, and guided backprop, the method
Adebayo et al. found to fail it; each costs ``SANITY_CHECKPOINTS + 2`` explanations of
``SANITY_IMAGES`` photos."""
SANITY_IMAGES = 2
SANITY_CHECKPOINTS = 5
TEXTS = (
    "A gripping, funny and beautifully acted film.",
    "The plot is dull and the acting is even worse.",
    "Not bad at all, though the ending drags.",
)
TEXT_METHODS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("integrated_gradients", {"steps": 16}),
    ("gradient_x_input", {}),
)
# The generation step: the shipped tiny LM (attrib.data.tiny_lm) continues this prompt
# greedily; 12 tokens keep the step around a second and the heat map readable.
GENERATION_PROMPT = "The for statement is used to"
GENERATION_TOKENS = 12
