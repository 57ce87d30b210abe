"""What a proxy scores: a network as a torch module, with the facts every proxy needs about it.

``ProxyInput`` holds a *private* copy of the model (train mode, dropout and stochastic depth off so a score depends on
the seed alone), its input shape, its class count and how to read its pre-GAP feature map (the output of the body,
before global average pooling, which the Zen-Score and NASWOT read):

1. the model's own ``forward_pre_GAP`` / ``forward_pre_gap`` (the official ZenNAS convention; our ``ZenNet`` has it);
2. else a ``feature_fn(model, x)`` the caller gives;
3. else the input of the model's *last* global average pooling, found by watching one forward: an
   ``AdaptiveAvgPool2d`` to 1x1 (module or ``F.adaptive_avg_pool2d``), an ``avg_pool2d`` whose output is 1x1, or a
   ``mean`` over both spatial dimensions of a 4-D tensor. The last one in forward order is the classifier's pooling
   (squeeze-excitation blocks pool too, earlier). Reading it later stops the forward right there.

Every proxy's initialisation is done by the proxy on this copy, so the caller's weights (pretrained or not) never
reach a score and the caller's model is never touched. Structures take the same path: ``plain_input(blocks, ...)``
wraps the network ZenNAS scores (no residual links, no SE).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import InvalidScore, ProxyError, first_line

FeatureFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


class _Stop(Exception):
    """Raised inside a forward once the pre-GAP map is captured: the rest of the network is not run."""


def _is_global_pool(func, args, kwargs) -> bool:
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        return False
    if func in (F.adaptive_avg_pool2d, torch._C._nn.adaptive_avg_pool2d):
        size = args[1] if len(args) > 1 else kwargs.get("output_size")
        size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        return all(s == 1 or (s is None and d == 1) for s, d in zip(size, x.shape[2:]))
    if func in (F.avg_pool2d, torch._C._nn.avg_pool2d):
        k = args[1] if len(args) > 1 else kwargs.get("kernel_size")
        k = tuple(k) if isinstance(k, (tuple, list)) else (k, k)
        return tuple(k) == tuple(x.shape[2:])
    if func in (torch.mean, torch.Tensor.mean):
        dims = args[1] if len(args) > 1 else kwargs.get("dim")
        if dims is None:
            return False
        dims = {d % 4 for d in (dims if isinstance(dims, (tuple, list)) else (dims,))}
        return dims == {2, 3}
    return False


class _PoolWatch(TorchFunctionMode):
    """Counts global poolings in one forward; with ``stop_at``, captures that one's input and stops."""

    def __init__(self, stop_at: Optional[int] = None):
        super().__init__()
        self.count = 0
        self.stop_at = stop_at
        self.captured: Optional[torch.Tensor] = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _is_global_pool(func, args, kwargs):
            self.count += 1
            if self.stop_at is not None and self.count == self.stop_at:
                self.captured = args[0]
                raise _Stop
        return func(*args, **kwargs)


def _pool_features(stop_at: int) -> FeatureFn:
    def features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        watch = _PoolWatch(stop_at)
        try:
            with watch:
                model(x)
        except _Stop:
            assert watch.captured is not None  # set just before _Stop is raised
            return watch.captured
        raise ProxyError("the model's global average pooling was not reached in this forward")

    return features


@dataclass
class ProxyInput:
    model: nn.Module  # private copy; proxies initialise it
    in_channels: int
    resolution: int
    num_classes: int
    feature_fn: Optional[FeatureFn] = None
    no_features: str = ""  # why there is no pre-GAP map (when feature_fn is None)
    blocks: Optional[tuple] = None  # the structure, when the network came from one

    def draw(self, batch_size: int, generator: torch.Generator, dtype=torch.float32) -> torch.Tensor:
        return torch.randn((batch_size, self.in_channels, self.resolution, self.resolution), generator=generator,
                           dtype=dtype)

    def pre_gap(self, x: torch.Tensor) -> torch.Tensor:
        if self.feature_fn is None:
            raise InvalidScore(self.no_features)
        out = self.feature_fn(self.model, x)
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            raise ProxyError(f"the pre-GAP features must be a 4-D feature map [B, C, H, W], got "
                             f"{getattr(out, 'shape', type(out).__name__)}")
        return out


def quiet_train_mode(model: nn.Module) -> nn.Module:
    """Train mode (batch-statistics BN, as every proxy's paper scores), with dropout and stochastic depth off: their
    masks come from torch's global generator, which would make a score depend on more than its seed."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd) or type(m).__name__ == "StochasticDepth":
            m.eval()
    return model


def plain_input(blocks: Sequence, resolution: int, num_classes: int) -> ProxyInput:
    """The network ZenNAS scores for a structure: our ZenNet without residual links and SE."""
    return structure_input(blocks, resolution, num_classes, residual=False)


def structure_input(blocks: Sequence, resolution: int, num_classes: int, *, residual: bool) -> ProxyInput:
    """A structure's ZenNet without SE, with or without its residual links, built on the meta device and
    materialised empty (the proxy initialises every parameter)."""
    from ..builder import ZenNet

    with torch.device("meta"):
        model = ZenNet(blocks, num_classes=num_classes, se=False, residual=residual)
    model = model.to_empty(device="cpu")
    model.train()
    return ProxyInput(model, blocks[0].in_channels, resolution, num_classes,
                      feature_fn=lambda m, x: m.forward_pre_gap(x), blocks=tuple(blocks))  # type: ignore[operator]


def module_input(model: nn.Module, *, resolution: int, in_channels: int = 3, num_classes: Optional[int] = None,
                 feature_fn: Optional[FeatureFn] = None) -> ProxyInput:
    """A private copy of ``model`` ready for the proxies: it runs once on a [2, C, R, R] input (eval mode) to check
    that it accepts the shape, to read its class count and to find its pre-GAP map."""
    if not isinstance(model, nn.Module):
        raise ProxyError(f"score_module needs a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(resolution, int) or resolution < 1 or not isinstance(in_channels, int) or in_channels < 1:
        raise ProxyError(f"resolution and in_channels must be positive integers, got {resolution!r}, "
                         f"{in_channels!r}")
    try:
        own = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001 - any failure to copy is the model's, named in one line
        raise ProxyError(f"cannot copy the model to score it ({type(exc).__name__}: {first_line(exc)})") from None
    for p in own.parameters():
        p.requires_grad_(True)
    probe = torch.zeros((2, in_channels, resolution, resolution))
    own.eval()
    watch = _PoolWatch()
    try:
        with torch.no_grad(), watch:
            out = own(probe)
    except Exception as exc:  # noqa: BLE001 - the model's own error on this input, in one line
        raise ProxyError(f"the model fails on a {in_channels}-channel {resolution}x{resolution} input "
                         f"({type(exc).__name__}: {first_line(exc)})") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ProxyError(f"the model must return class scores [B, classes], got "
                         f"{getattr(out, 'shape', type(out).__name__)}")
    classes = int(out.shape[1])
    if num_classes is not None and num_classes != classes:
        raise ProxyError(f"the model has {classes} outputs, not the {num_classes} classes given")
    fn, why = feature_fn, ""
    if fn is None:
        for name in ("forward_pre_GAP", "forward_pre_gap"):
            if callable(getattr(own, name, None)):
                fn = (lambda attr: lambda m, x: getattr(m, attr)(x))(name)
                break
    if fn is None and watch.count:
        fn = _pool_features(watch.count)
    if fn is None:
        why = ("no pre-GAP feature map: the model has no forward_pre_GAP / forward_pre_gap method and no global "
               "average pooling was seen in its forward; pass feature_fn=lambda model, x: ... returning the 4-D map "
               "before pooling")
    quiet_train_mode(own)
    return ProxyInput(own, in_channels, resolution, classes, feature_fn=fn, no_features=why)


def count_macs(inp: ProxyInput) -> int:
    """Multiply-accumulates of one image through every conv and linear layer (forward hooks; what zendeploy.cost
    counts for structures: convs, the classifier; BN, activations and pooling are not MACs)."""
    total = [0]

    def hook(m, _inputs, output):
        if isinstance(m, nn.modules.conv._ConvNd):
            per_out = m.weight.shape[1] * int(torch.tensor(m.weight.shape[2:]).prod())
            total[0] += int(output[0].numel()) * per_out
        elif isinstance(m, nn.Linear):
            total[0] += int(output[0].numel()) * m.in_features

    handles = [m.register_forward_hook(hook) for m in inp.model.modules()
               if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    was = inp.model.training
    inp.model.eval()
    try:
        with torch.no_grad():
            inp.model(torch.zeros((1, inp.in_channels, inp.resolution, inp.resolution)))
    finally:
        for h in handles:
            h.remove()
        if was:
            quiet_train_mode(inp.model)
    return total[0]
