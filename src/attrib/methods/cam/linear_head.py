"""CAM (Zhou et al. 2016, "Learning Deep Features for Discriminative Localization"): for a
network whose layer ``A`` is followed by global average pooling and one linear layer,

    S_c = sum_k w_ck (1/(h w) sum_ij A^k_ij) + b_c,        M_c = sum_k w_ck A^k,

the class activation map ``M_c`` is the class score spread over the locations (Zhou et al. 2016,
section 2). The form is checked on the model's own output, so a head with a
non-linearity, max pooling or anything else between the layer and the linear map is refused.
"""

from __future__ import annotations

import torch
from torch import nn

from attrib.core.errors import LayerError, SettingError, TargetError
from attrib.core.inputs import Inputs
from attrib.core.layers import layer_name, resolve_layer
from attrib.core.settings import FLAG, Check, Setting
from attrib.core.target import Target, select_output
from attrib.methods.cam import rules
from attrib.methods.cam.base import CAMMethod, Computed
from attrib.methods.catalogue import HOOKS_A_LAYER, register

__all__ = ["CAM"]

# float32 recomputation of the head differs from the model's own output by ~1e-6 relative;
# any real deviation from "pooling + linear" is orders of magnitude larger
HEAD_TOLERANCE = 1e-3

Head = str | nn.Module | torch.Tensor | None


class _HeadCheck(Check):
    @property
    def what(self) -> str:
        return "None, a linear layer (name or module) or a weight matrix (classes, channels)"

    def accepts(self, value: object) -> bool:
        if isinstance(value, torch.Tensor):
            return value.dim() == 2
        return value is None or isinstance(value, (str, nn.Module))


def _shown_head(head: Head) -> object:
    if isinstance(head, torch.Tensor):
        return f"tensor{tuple(head.shape)}"
    return type(head).__name__ if isinstance(head, nn.Module) else head


@register(
    family="cam",
    python_module=HOOKS_A_LAYER,
    paper="Zhou et al. 2016",
    short="class weights on the last feature maps",
    summary="For networks that end in global average pooling and one linear layer: the class's "
    "weights applied to the last feature maps.",
    formula="L = Σ_k w_ck A^k",
    inputs="image",
)
class CAM(CAMMethod):
    """Class activation maps of a global-average-pooling + linear network (Zhou et al. 2016):
    ``M_c = sum_k w_ck A^k``, the class score spread over the locations.

    Args:
        head: the linear layer after the pooling, as a dotted name or module (an
            ``nn.Linear``), or its weight matrix ``(classes, K)`` (the bias is then read
            from the outputs). Default: the last ``nn.Linear`` whose ``in_features`` is the
            layer's channel count ``K``.
        relu: ``False`` by default: the paper's map keeps its sign.

    Raises ``LayerError`` when the model's output is not ``linear(mean over locations of the
    layer's maps)``, and ``TargetError`` when the target is not a class index.
    """

    head = Setting(None, _HeadCheck(), shown=_shown_head)
    relu = Setting(False, FLAG)

    def compute(self, inputs: Inputs, target: Target, layer: nn.Module, name: str) -> Computed:
        got = self.capture(inputs, target, layer)
        maps = self.maps(got.activations, name, inputs)
        weight, bias, head_name = self._linear(maps.shape[1])
        logits = select_output(got.output, self.output)
        check_linear_head(maps, logits, weight, bias, name)
        if got.target.indices is None:
            if got.target.function is not None or weight.shape[0] != 1:
                raise TargetError(
                    "target",
                    "a class index (CAM weighs the maps with one class's linear weights)",
                    got.target.public,
                    "Pass target=<class>, one class per sample, or 'predicted'.",
                )
            classes = torch.zeros(maps.shape[0], dtype=torch.long)
        else:
            classes = got.target.indices
        class_weights = weight.to(maps.device)[classes.to(maps.device)]  # (N, K)
        return Computed(
            rules.weighted_sum(class_weights, maps, self.reduction),
            got.target,
            got.output,
            {"head": head_name},
        )

    def _linear(self, channels: int) -> tuple[torch.Tensor, torch.Tensor | None, str]:
        """The head's weight ``(classes, K)``, bias (``None``: read from the outputs), name."""
        if isinstance(self.head, torch.Tensor):
            weight = self.head.detach()
            if weight.shape[1] != channels:
                raise SettingError(
                    "head",
                    f"a weight matrix with {channels} columns (the layer's channels)",
                    self.head,
                    "",
                )
            return weight, None, "tensor"
        if self.head is not None:
            module = resolve_layer(self.module, self.head)
        else:
            module = _last_linear(self.module, channels)
        if not isinstance(module, nn.Linear) or module.in_features != channels:
            raise LayerError(
                "head",
                f"an nn.Linear with in_features={channels} (the layer's channels)",
                f"{type(module).__name__} {layer_name(self.module, module)!r}",
                "Pass head= the linear layer that follows the global average pooling.",
            )
        bias = module.bias.detach() if module.bias is not None else None
        return module.weight.detach(), bias, layer_name(self.module, module)


def _last_linear(model: nn.Module, channels: int) -> nn.Module:
    found = [m for m in model.modules() if isinstance(m, nn.Linear) and m.in_features == channels]
    if not found:
        raise LayerError(
            "layer",
            "a layer followed by global average pooling and one linear layer (CAM's form)",
            f"a model with no nn.Linear taking {channels} features",
            "CAM needs that architecture; use GradCAM, which needs none (on such networks "
            "it equals ReLU(CAM) / (h w)), or pass head= the linear layer.",
        )
    return found[-1]


def check_linear_head(
    maps: torch.Tensor,
    logits: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    name: str,
) -> None:
    """Raise ``LayerError`` unless ``logits = mean_ij(maps) @ weight.T + bias``.

    Without a bias, the bias is whatever is left, and must be the same for every sample.
    """
    pooled = maps.mean(dim=(2, 3)).to(torch.float64)
    predicted = pooled @ weight.to(device=maps.device, dtype=torch.float64).T
    if logits.dim() != 2 or logits.shape != predicted.shape:
        raise LayerError(
            "layer",
            f"a model whose output is (N, {weight.shape[0]}) scores from the linear head",
            logits,
            "CAM needs layer -> global average pooling -> one linear layer -> output.",
        )
    rest = logits.detach().to(torch.float64) - predicted
    expected = (
        bias.to(device=rest.device, dtype=torch.float64).expand_as(rest)
        if bias is not None
        else rest.mean(dim=0, keepdim=True).expand_as(rest)
    )
    scale = float(logits.detach().abs().max()) + float(predicted.abs().max()) + 1e-12
    error = float((rest - expected).abs().max())
    if error > HEAD_TOLERANCE * scale:
        raise LayerError(
            "layer",
            "a layer followed by global average pooling and one linear layer (CAM's form: "
            "S_c = sum_k w_ck mean_ij A^k_ij + b_c)",
            f"{name!r}, where the model's scores differ from that by {error:.3g} "
            f"(scale {scale:.3g})",
            "Choose the layer right before the pooling, or use GradCAM, which needs no "
            "particular architecture (on GAP + linear networks it equals ReLU(CAM) / (h w)).",
        )
