"""Incremental occlusion: recompute only what a window changes (Nakandala et al., SIGMOD 2019,
"Incremental and Approximate Inference for Faster Occlusion-based Deep CNN Explanations").

The model is traced once (``torch.fx``) and run once on the clean images, keeping every
node's output. A batch of occluded copies is then run node by node, each node's value being

- *clean*: equal to the clean run's for every row (nothing the windows changed reaches it);
- *patched* (``regions.Patched``): the clean activation with one rectangle per row changed;
  a convolution, pooling or padding recomputes only the outputs the change reaches (crop
  the input with the halo the kernel needs, run the layer on the crops of every row at
  once); an elementwise op (activations, batch norm in eval mode, sums of branches) runs on
  the union of its inputs' rectangles;
- *rows*: whole per-row values, computed by the node's own op on whole inputs. A node
  becomes rows where its changed rectangle would cover ``cover`` of the map or more (the
  recomputation and its copies would cost about as much as the layer), and wherever an op
  is not one of those above (flatten, linear, global pooling, anything unknown): from there
  the network runs as usual, so an op the path does not know costs speed, never accuracy.

Exact: every value is the one the plain forward computes, up to float rounding (a
convolution over a crop sums the same products, possibly in another order).

Approximate (``limit``, Krypton's projective-field threshold ``tau``): a changed rectangle
is never let grow beyond ``limit`` of the map's side; changes that fall outside it are
dropped (the clean values are kept there). The scores are then those of a network in which
a window's effect is truncated layer by layer; ``attrib.methods.perturbation.occlusion``
documents the error.

The engine refuses (``NotIncrementalError``, and the plain path runs) a model that is not an
``nn.Module``, does not trace, takes more than one input, mutates a value another op still
reads (in-place ops on shared tensors, whose effect the patched values would miss), or
whose activations are not batch-major.
"""

from __future__ import annotations

import inspect
import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from attrib.methods.perturbation.regions import Patched, Span, crop, materialize, reached, union

__all__ = ["IncrementalForward", "NotIncrementalError", "Profile"]

# A changed rectangle of at least this share of its map is recomputed as whole maps. A
# layer on crops costs in proportion to the outputs it computes, plus one copy of its input
# crop; whole maps cost all outputs plus one copy of the map when they begin. On resnet18 at
# 224 x 224 (window 16) 0.75 rather than 0.5 keeps layer3's first block on crops: 2.23x
# fewer multiply-adds than whole forwards instead of 2.04x.
COVER = 0.75


class NotIncrementalError(Exception):
    """The model cannot run incrementally (the reason is the message); the plain path runs."""


class _Clean:
    """The value of a node the windows do not reach: the clean run's, for every row."""

    def __repr__(self) -> str:
        return "CLEAN"


CLEAN = _Clean()


@dataclass(frozen=True)
class _Rows:
    """Whole per-row values (a tensor ``(B, ...)`` or any structure the op returns)."""

    value: Any


Value = Any  # CLEAN, Patched or _Rows


@dataclass
class Profile:
    """Where the time goes, per node (for the benchmark): seconds, multiply-adds done and
    multiply-adds a plain forward of the same rows does (convolutions and linear layers)."""

    seconds: dict[str, float] = field(default_factory=dict)
    macs: dict[str, int] = field(default_factory=dict)
    full_macs: dict[str, int] = field(default_factory=dict)
    mode: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, seconds: float, macs: int, full_macs: int, mode: str) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.macs[name] = self.macs.get(name, 0) + macs
        self.full_macs[name] = self.full_macs.get(name, 0) + full_macs
        self.mode.setdefault(name, mode)
        if self.mode[name] != mode:
            self.mode[name] = "mixed"


_ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Identity,
)
_ELEMENTWISE_FUNCTIONS: set[Any] = {
    operator.add,
    operator.sub,
    operator.mul,
    operator.truediv,
    operator.neg,
    operator.iadd,
    operator.isub,
    operator.imul,
    operator.itruediv,
    torch.add,
    torch.sub,
    torch.mul,
    torch.div,
    torch.relu,
    torch.relu_,
    torch.sigmoid,
    torch.tanh,
    torch.clamp,
    F.relu,
    F.relu6,
    F.hardswish,
    F.hardsigmoid,
    F.hardtanh,
    F.silu,
    F.gelu,
    F.leaky_relu,
    F.elu,
    F.sigmoid,
    F.tanh,
}
_ELEMENTWISE_METHODS = {
    "add",
    "sub",
    "mul",
    "div",
    "relu",
    "sigmoid",
    "tanh",
    "clamp",
    "contiguous",
    "add_",
    "sub_",
    "mul_",
    "div_",
    "relu_",
    "clamp_",
}
_SHAPE_METHODS = {"size", "dim"}
# ops whose result depends on a tensor's memory layout (a view needs compatible strides)
_LAYOUT_SENSITIVE = {
    "view",
    "view_as",
    "stride",
    "is_contiguous",
    "data_ptr",
    "numpy",
    "storage",
    "untyped_storage",
    "as_strided",
    "set_",
}
# ops whose result may share memory with their first argument (an in-place op on the result
# changes the argument too)
_VIEW_METHODS = {
    "view",
    "view_as",
    "reshape",
    "reshape_as",
    "flatten",
    "unflatten",
    "permute",
    "transpose",
    "t",
    "expand",
    "expand_as",
    "narrow",
    "squeeze",
    "unsqueeze",
    "contiguous",
    "detach",
    "__getitem__",
}
_VIEW_FUNCTIONS: set[Any] = {
    operator.getitem,
    torch.flatten,
    torch.reshape,
    torch.squeeze,
    torch.unsqueeze,
    torch.transpose,
    torch.permute,
    torch.narrow,
}
_INPLACE_FUNCTIONS: set[Any] = {
    operator.iadd,
    operator.isub,
    operator.imul,
    operator.itruediv,
    operator.setitem,
}


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _mutates(node: fx.Node, root: nn.Module) -> bool:
    if node.op == "call_module":
        return bool(getattr(root.get_submodule(str(node.target)), "inplace", False))
    if node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        in_place = name.endswith("_") and not name.startswith("_")
        return in_place or node.target in _INPLACE_FUNCTIONS or _inplace_argument(node)
    if node.op == "call_method":
        name = str(node.target)
        return name.endswith("_") and not name.endswith("__")
    return False


def _inplace_argument(node: fx.Node) -> bool:
    """``inplace=True`` given by keyword or by position (``F.relu(x, True)``)."""
    if node.kwargs.get("inplace") is True:
        return True
    try:
        bound = inspect.signature(node.target).bind_partial(*node.args, **node.kwargs)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # a builtin without a signature, or other arguments
        return False
    return bound.arguments.get("inplace") is True


def _aliases(node: fx.Node) -> list[fx.Node]:
    """``node`` and the nodes it may be a view of."""
    found = [node]
    while (node.op == "call_method" and node.target in _VIEW_METHODS) or (
        node.op == "call_function" and node.target in _VIEW_FUNCTIONS
    ):
        first = node.args[0] if node.args else None
        if not isinstance(first, fx.Node):
            break
        node = first
        found.append(node)
    return found


def _check_mutations(graph: fx.Graph, root: nn.Module) -> None:
    """Refuse in-place ops on a value that another op reads too: the clean run keeps copies
    and patched values are fresh crops, so such a mutation would not reach the other op."""
    for node in graph.nodes:
        if not _mutates(node, root) or not node.args or not isinstance(node.args[0], fx.Node):
            continue
        for alias in _aliases(node.args[0]):
            if alias.op == "placeholder" or len(alias.users) > 1:
                raise NotIncrementalError(
                    f"{node.name} changes a value that other ops read, in place"
                )


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        traced = fx.symbolic_trace(model)
    except Exception as error:  # any failure to trace means: run the plain path
        raise NotIncrementalError(f"the model does not trace with torch.fx ({error})") from None
    called = {str(n.target) for n in traced.graph.nodes if n.op == "call_module"}
    for name, module in model.named_modules():
        # a hook on a module the trace went through would not run (one on a called module
        # does: such a module is always run whole)
        hooked = module._forward_hooks or module._forward_pre_hooks
        if hooked and name not in called:
            raise NotIncrementalError(f"module {name or 'model'!r} has a forward hook")
    if nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks:
        raise NotIncrementalError("a global forward hook is registered")
    inputs = [n for n in traced.graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise NotIncrementalError("the model takes more than one input")
    _check_mutations(traced.graph, traced)
    return traced


def _map(value: Any, fn: Callable[[Any], Any]) -> Any:
    return fx.node.map_aggregate(value, fn)


class IncrementalForward:
    """The model traced and run once on clean images ``x`` (N, C, H, W), ready to run batches
    of occluded copies, each different from its clean image in one rectangle.

    ``cover``: a changed rectangle of this share of its map or more is recomputed whole.
    ``limit``: the approximate mode's largest side of a changed rectangle, as a share of the
    map's side (``None``: exact).
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        cover: float = COVER,
        limit: float | None = None,
        profile: Profile | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise NotIncrementalError("the model is not an nn.Module")
        self.root = _trace(model)
        self.nodes = list(self.root.graph.nodes)
        self.cover, self.limit, self.profile = cover, limit, profile
        # whole maps are built channels-last (convolutions on CPU run faster so) unless an
        # op of the model depends on the layout (a view of a flattened map needs the
        # contiguous strides the plain forward has)
        sensitive = any(
            n.op in ("call_method", "call_function")
            and (n.target if n.op == "call_method" else getattr(n.target, "__name__", ""))
            in _LAYOUT_SENSITIVE
            for n in self.nodes
        )
        self.layout = torch.contiguous_format if sensitive else torch.channels_last
        self.n = x.shape[0]
        self.clean: dict[fx.Node, Any] = {}
        self.depends: set[fx.Node] = set()
        self.last_use: dict[fx.Node, int] = {}
        for i, node in enumerate(self.nodes):
            for used in node.all_input_nodes:
                self.last_use[used] = i
        self._record(x)

    # ---- the clean run ----------------------------------------------------------------

    def _record(self, x: torch.Tensor) -> None:
        """Run the graph on the clean images and keep a copy of every node's output (copies:
        a later in-place op must not change what was recorded); the run itself is the plain
        forward's, on the values as the model makes them."""
        live: dict[fx.Node, Any] = {}
        for i, node in enumerate(self.nodes):
            if node.op == "placeholder":
                value = x
            elif node.op == "output":
                continue
            else:
                args, kwargs = _map(
                    (node.args, node.kwargs), lambda a: live[a] if isinstance(a, fx.Node) else a
                )
                value = self._call(node, args, kwargs)
            live[node] = value
            depends = node.op == "placeholder" or any(
                a in self.depends for a in node.all_input_nodes
            )
            if depends:
                self.depends.add(node)
                self._check_batch_major(node, value)
                value = _map(value, _kept)
            self.clean[node] = value
            for used in node.all_input_nodes:
                if self.last_use.get(used) == i:
                    del live[used]

    def _check_batch_major(self, node: fx.Node, value: Any) -> None:
        def check(v: Any) -> Any:
            if isinstance(v, torch.Tensor) and (v.dim() == 0 or v.shape[0] != self.n):
                raise NotIncrementalError(f"{node.name} is not batch-major ({tuple(v.shape)})")
            return v

        _map(value, check)

    def _call(self, node: fx.Node, args: Any, kwargs: Any) -> Any:
        if node.op == "call_module":
            return self.root.get_submodule(str(node.target))(*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)  # type: ignore[operator]
        if node.op == "call_method":
            first, *rest = args
            return getattr(first, str(node.target))(*rest, **kwargs)
        if node.op == "get_attr":
            value: Any = self.root
            for part in str(node.target).split("."):
                value = getattr(value, part)
            return value
        raise NotIncrementalError(f"unknown node {node.op}")  # pragma: no cover - fx has no other

    # ---- occluded batches ---------------------------------------------------------------

    def run(self, images: Patched, sample: torch.Tensor) -> Any:
        """The model's output for a batch of occluded images (``images``: the clean input
        with one patch per row; ``sample``: the clean image of each row)."""
        env: dict[fx.Node, Value] = {}
        result: Any = None
        for i, node in enumerate(self.nodes):
            if node.op == "placeholder":
                env[node] = images
            elif node.op == "output":
                result = _map(node.args[0], lambda a: self._rows_of(a, env, sample))
            else:
                env[node] = self._step(node, env, sample)
            for used in node.all_input_nodes:
                if self.last_use.get(used) == i:
                    del env[used]
        return result

    def _step(self, node: fx.Node, env: dict[fx.Node, Value], sample: torch.Tensor) -> Value:
        kinds = [env[a] for a in node.all_input_nodes]
        if all(k is CLEAN for k in kinds):
            return CLEAN
        if self._shape_query(node):
            # a shape has the chunk's rows, not the clean batch's: asked of a stand-in (a
            # broadcast view of one clean row), it costs nothing
            def shape_of(a: Any) -> Any:
                if not isinstance(a, fx.Node):
                    return a
                value = env[a]
                if isinstance(value, Patched):
                    return value.clean[:1].expand(len(sample), *value.clean.shape[1:])
                return self._rows_of(a, env, sample)

            args, kwargs = _map((node.args, node.kwargs), shape_of)
            return _Rows(self._call(node, args, kwargs))
        start = time.perf_counter() if self.profile is not None else 0.0
        value: Value = None
        if not any(isinstance(k, _Rows) for k in kinds):
            value = self._patched(node, env, sample)
        mode = "patch"
        if value is None:
            mode = "rows"
            args, kwargs = _map(
                (node.args, node.kwargs),
                lambda a: self._rows_of(a, env, sample) if isinstance(a, fx.Node) else a,
            )
            value = _Rows(self._call(node, args, kwargs))
        if self.profile is not None:
            self._account(node, value, mode, len(sample), time.perf_counter() - start)
        return value

    def _shape_query(self, node: fx.Node) -> bool:
        """Shapes, dtypes and devices: the same for every row (and answered without the
        rows' values)."""
        if node.op == "call_method" and node.target in _SHAPE_METHODS:
            return True
        return (
            node.op == "call_function"
            and node.target is getattr
            and node.args[1:] in (("shape",), ("dtype",), ("device",))
        )

    def _rows_of(self, a: Any, env: dict[fx.Node, Value], sample: torch.Tensor) -> Any:
        """The whole per-row value of node ``a``."""
        if not isinstance(a, fx.Node):
            return a
        value = env[a]
        if isinstance(value, _Rows):
            return value.value
        if isinstance(value, Patched):
            return materialize(value, sample, self.layout)
        clean = self.clean[a]
        if a not in self.depends:
            return clean

        def rows(t: Any) -> Any:
            if not isinstance(t, torch.Tensor):
                return t
            picked = t.index_select(0, sample)
            return picked.contiguous(memory_format=self.layout) if t.dim() == 4 else picked

        return _map(clean, rows)

    # ---- the patched rules ----------------------------------------------------------------

    def _patched(
        self, node: fx.Node, env: dict[fx.Node, Value], sample: torch.Tensor
    ) -> Patched | None:
        """The node's value as patches, or ``None`` where it must be whole rows."""
        out = self.clean[node]
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            return None
        if node.op == "call_module":
            module = self.root.get_submodule(str(node.target))
            if module._forward_hooks or module._forward_pre_hooks:
                return None  # a hook would see crops
            return self._module_rule(node, module, env, sample, out)
        if node.op == "call_function" and node.target is F.conv2d:
            return self._functional_conv(node, env, sample, out)
        elementwise = (node.op == "call_function" and node.target in _ELEMENTWISE_FUNCTIONS) or (
            node.op == "call_method" and node.target in _ELEMENTWISE_METHODS
        )
        if elementwise:
            return self._elementwise(node, env, sample, out, None)
        return None

    def _module_rule(
        self,
        node: fx.Node,
        module: nn.Module,
        env: dict[fx.Node, Value],
        sample: torch.Tensor,
        out: torch.Tensor,
    ) -> Patched | None:
        kind = type(module)
        if kind in _ACTIVATIONS or (kind in (nn.Dropout, nn.Dropout2d) and not module.training):
            return self._elementwise(node, env, sample, out, module)
        if kind is nn.BatchNorm2d and not module.training and module.running_mean is not None:
            return self._elementwise(node, env, sample, out, module)
        if kind in (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d):
            source = self._single_input(node, env)
            if source is not None and source.clean.shape[-2:] == out.shape[-2:]:
                return self._elementwise(node, env, sample, out, module)  # the identity
            return None
        source = self._single_input(node, env)
        if source is None:
            return None
        if kind is nn.ZeroPad2d:
            left, right, top, bottom = module.padding  # type: ignore[misc]
            if min(left, right, top, bottom) < 0:
                return None
            rows = Span(source.rows.start + top, source.rows.size)
            cols = Span(source.cols.start + left, source.cols.size)
            return Patched(out, source.patch, rows, cols)
        if kind is nn.Conv2d:
            conv: Any = module
            if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
                return None
            return self._window(
                source,
                sample,
                out,
                (_pair(conv.kernel_size), _pair(conv.stride), _pair(conv.padding)),
                _pair(conv.dilation),
                lambda c: F.conv2d(
                    c, conv.weight, conv.bias, conv.stride, 0, conv.dilation, conv.groups
                ),
                0.0,
            )
        if kind is nn.MaxPool2d:
            pool: Any = module
            if pool.ceil_mode or pool.return_indices:
                return None
            kernel, stride = _pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size)
            return self._window(
                source,
                sample,
                out,
                (kernel, stride, _pair(pool.padding)),
                _pair(pool.dilation),
                lambda c: F.max_pool2d(c, kernel, stride, 0, pool.dilation),
                -math.inf,
            )
        if kind is nn.AvgPool2d:
            avg: Any = module
            if avg.ceil_mode or not avg.count_include_pad or avg.divisor_override is not None:
                return None
            kernel, stride = _pair(avg.kernel_size), _pair(avg.stride or avg.kernel_size)
            return self._window(
                source,
                sample,
                out,
                (kernel, stride, _pair(avg.padding)),
                (1, 1),
                lambda c: F.avg_pool2d(c, kernel, stride, 0),
                0.0,
            )
        return None

    def _single_input(self, node: fx.Node, env: dict[fx.Node, Value]) -> Patched | None:
        if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], fx.Node):
            return None
        value = env[node.args[0]]
        return value if isinstance(value, Patched) else None

    def _functional_conv(
        self, node: fx.Node, env: dict[fx.Node, Value], sample: torch.Tensor, out: torch.Tensor
    ) -> Patched | None:
        names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
        bound: dict[str, Any] = {
            "bias": None,
            "stride": 1,
            "padding": 0,
            "dilation": 1,
            "groups": 1,
        }
        bound.update(zip(names, node.args, strict=False))
        bound.update(node.kwargs)
        source = env.get(bound["input"]) if isinstance(bound["input"], fx.Node) else None
        if not isinstance(source, Patched):
            return None
        params: dict[str, Any] = {}
        for name in ("weight", "bias"):
            given = bound[name]
            if isinstance(given, fx.Node):
                if given in self.depends:
                    return None
                given = self.clean[given]
            params[name] = given
        padding = bound["padding"]
        if padding == "valid":
            padding = 0
        if isinstance(padding, str):
            return None
        weight = params["weight"]
        stride, dilation, groups = bound["stride"], bound["dilation"], bound["groups"]
        return self._window(
            source,
            sample,
            out,
            (tuple(weight.shape[-2:]), _pair(stride), _pair(padding)),
            _pair(dilation),
            lambda c: F.conv2d(c, weight, params["bias"], stride, 0, dilation, groups),
            0.0,
        )

    def _window(
        self,
        source: Patched,
        sample: torch.Tensor,
        out: torch.Tensor,
        geometry: tuple[Any, Any, Any],
        dilation: tuple[int, int],
        run: Callable[[torch.Tensor], torch.Tensor],
        fill: float,
    ) -> Patched | None:
        """A sliding-window op (convolution, pooling) on the crops its changed outputs read."""
        kernel, stride, padding = geometry
        height, width = out.shape[-2:]
        spans = []
        for i, (extent, span) in enumerate(((height, source.rows), (width, source.cols))):
            spans.append(
                reached(
                    span,
                    int(extent),
                    kernel[i],
                    stride[i],
                    padding[i],
                    dilation[i],
                    self._cap(extent),
                )
            )
        (rows, need_rows), (cols, need_cols) = spans
        if rows.size * cols.size >= self.cover * height * width:
            return None
        return Patched(out, run(crop(source, sample, need_rows, need_cols, fill)), rows, cols)

    def _cap(self, extent: int) -> int | None:
        return None if self.limit is None else max(1, math.ceil(self.limit * extent))

    def _elementwise(
        self,
        node: fx.Node,
        env: dict[fx.Node, Value],
        sample: torch.Tensor,
        out: torch.Tensor,
        module: nn.Module | None,
    ) -> Patched | None:
        """An op applied value by value (its output at a position reads its inputs at that
        position): run it on the union of the inputs' changed rectangles."""
        height, width = out.shape[-2:]
        patched = [env[a] for a in node.all_input_nodes if isinstance(env[a], Patched)]
        if any(p.clean.shape[-2:] != out.shape[-2:] for p in patched):
            return None
        rows = union([p.rows for p in patched], int(height), self._cap(height))
        cols = union([p.cols for p in patched], int(width), self._cap(width))
        if rows.size * cols.size >= self.cover * height * width:
            return None
        failed = False
        # a patch of the union's own rectangle is read as it is (an op that writes into its
        # input gets a copy: patches may be shared, by padding, by ops returning their input)
        shared = not (module is not None and getattr(module, "inplace", False))
        shared = shared and not _mutates(node, self.root)

        def local(a: Any) -> Any:
            nonlocal failed
            if not isinstance(a, fx.Node):
                return a
            value = env[a]
            if isinstance(value, Patched):
                if _same_span(value.rows, rows) and _same_span(value.cols, cols):
                    return value.patch if shared else value.patch.clone()
                return crop(value, sample, rows, cols)
            clean = self.clean[a]
            if not isinstance(clean, torch.Tensor):
                return clean
            if clean.dim() >= 2 and clean.shape[-2:] == (1, 1):
                return clean.index_select(0, sample) if a in self.depends else clean
            if a in self.depends and clean.dim() == 4 and clean.shape[-2:] == out.shape[-2:]:
                return crop(clean, sample, rows, cols)
            if a not in self.depends and clean.numel() == 1:
                return clean
            failed = True  # a tensor that broadcasts over the map in a way crops cannot follow
            return clean

        args, kwargs = _map((node.args, node.kwargs), local)
        if failed:
            return None
        if module is not None:
            patch = module(*args, **kwargs)
        elif node.op == "call_function":
            patch = node.target(*args, **kwargs)  # type: ignore[operator]
        else:
            first, *rest = args
            patch = getattr(first, str(node.target))(*rest, **kwargs)
        expected = (len(sample), out.shape[1], rows.size, cols.size)
        if not isinstance(patch, torch.Tensor) or tuple(patch.shape) != expected:
            return None
        return Patched(out, patch, rows, cols)

    # ---- accounting (benchmark only) --------------------------------------------------------

    def _account(self, node: fx.Node, value: Value, mode: str, rows: int, seconds: float) -> None:
        assert self.profile is not None
        out = self.clean[node]
        per_position = 0
        weight = None
        if node.op == "call_module":
            module = self.root.get_submodule(str(node.target))
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                weight = module.weight
        elif node.op == "call_function" and node.target in (F.conv2d, F.linear):
            given = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
            weight = self.clean.get(given) if isinstance(given, fx.Node) else None
        if isinstance(weight, torch.Tensor):
            per_position = weight.numel()  # out x in / groups x kernel: MACs per output position
        positions = 1
        if isinstance(out, torch.Tensor) and out.dim() == 4:
            positions = int(out.shape[-2] * out.shape[-1])
        full = rows * positions * per_position
        done = rows * value.area * per_position if isinstance(value, Patched) else full
        self.profile.add(node.name, seconds, done, full, mode)


def _same_span(a: Span, b: Span) -> bool:
    return a.size == b.size and (a.start is b.start or bool(torch.equal(a.start, b.start)))


def _kept(value: Any) -> Any:
    """A copy of a recorded tensor, channels-last for image activations (crops gather rows
    of channels)."""
    if not isinstance(value, torch.Tensor):
        return value
    if value.dim() == 4:
        return value.detach().clone(memory_format=torch.channels_last)
    return value.detach().clone()
