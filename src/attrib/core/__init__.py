"""The core every method stands on: targets, gradients, batching, hooks, results, errors."""

from attrib.core.batching import Chunk, chunks, default_batch_size, run_chunks
from attrib.core.errors import (
    AttribError,
    AttribWarning,
    InputError,
    LayerError,
    ModelOutputError,
    SettingError,
    TargetError,
)
from attrib.core.grad import (
    InputCapture,
    LayerCapture,
    batched_input_gradients,
    forward_scores,
    input_gradients,
    layer_gradients,
)
from attrib.core.hooks import (
    evaluation_mode,
    frozen_parameters,
    hooked,
    params_overridden,
    prepared,
    swapped,
)
from attrib.core.layers import last_conv_layer, layer_name, resolve_layer
from attrib.core.result import Attribution
from attrib.core.target import ResolvedTarget, Target, resolve_target, select_output

__all__ = [
    "AttribError",
    "AttribWarning",
    "Attribution",
    "Chunk",
    "InputCapture",
    "InputError",
    "LayerCapture",
    "LayerError",
    "ModelOutputError",
    "ResolvedTarget",
    "SettingError",
    "Target",
    "TargetError",
    "batched_input_gradients",
    "chunks",
    "default_batch_size",
    "evaluation_mode",
    "forward_scores",
    "frozen_parameters",
    "hooked",
    "input_gradients",
    "last_conv_layer",
    "layer_gradients",
    "layer_name",
    "params_overridden",
    "prepared",
    "resolve_layer",
    "resolve_target",
    "run_chunks",
    "select_output",
    "swapped",
]
