"""Helpers every converter shares: the NHWC input wrapper, eval-mode and quiet contexts, atomic writes, provenance.

Layout convention: ``input_shape`` is always given in the PyTorch module's own layout (NCHW for images). With
``nhwc=True`` the exported file takes (and, for outputs of rank >= 3, returns) channels-last tensors: the module is
wrapped in :class:`ChannelsLastIO`, which permutes NHWC -> NCHW at the input and NCHW -> NHWC at the output, and the
converter cancels those permutes against its own layout transposes (LiteRT is NHWC natively, so an NHWC-in/NHWC-out
unit has no TRANSPOSE op at all). Tensors of rank < 3 (a classifier's logits) are left as they are.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from ..io import atomic_write_json as _atomic_write_json

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


def nhwc_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """NCHW-style shape (N, C, *spatial) -> channels-last (N, *spatial, C); rank < 3 unchanged."""
    shape = tuple(int(d) for d in shape)
    if len(shape) < 3:
        return shape
    return (shape[0], *shape[2:], shape[1])


def channels_last_module(model: "nn.Module") -> "nn.Module":
    """Wrap ``model`` so it takes channels-last input and returns channels-last outputs (rank >= 3)."""
    from torch import nn

    class ChannelsLastIO(nn.Module):
        """NHWC in -> wrapped NCHW module -> NHWC out (outputs of rank < 3 pass through)."""

        def __init__(self, wrapped: nn.Module):
            super().__init__()
            self.wrapped = wrapped

        def forward(self, x):
            if x.dim() >= 3:
                x = x.permute(0, x.dim() - 1, *range(1, x.dim() - 1))
            y = self.wrapped(x)
            if y.dim() >= 3:
                y = y.permute(0, *range(2, y.dim()), 1)
            return y

    return ChannelsLastIO(model).eval()


def fold_batchnorm(model: "nn.Module") -> "nn.Module":
    """A copy of ``model`` (eval mode) with every Conv2d -> BatchNorm2d pair folded into the convolution.

    Uses ``torch.fx.experimental.optimization.fuse`` (symbolic tracing, then conv-BN folding; the input module is
    not modified). Folding first makes the litert-torch conversion 2-3x faster (fewer nodes to export and lower)
    and gives the same numbers to float32 rounding. A module FX cannot trace is returned unchanged (the converter
    folds BatchNorm itself then, only more slowly).
    """
    from torch import nn

    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model
    try:
        from torch.fx.experimental.optimization import fuse

        with eval_mode(model):
            fused = fuse(model, inplace=False)
    except Exception:  # not symbolically traceable (data-dependent control flow): leave it to the converter
        return model
    return fused.eval()


def to_layout(x, nhwc: bool):
    """A numpy/torch NCHW tensor in the file's layout (channels-last when ``nhwc`` and rank >= 3)."""
    if not nhwc or x.ndim < 3:
        return x
    axes = (0, *range(2, x.ndim), 1)
    if hasattr(x, "permute"):
        return x.permute(*axes).contiguous()
    import numpy as np

    return np.ascontiguousarray(x.transpose(axes))


def from_layout(y, nhwc: bool):
    """Inverse of :func:`to_layout` for outputs."""
    if not nhwc or y.ndim < 3:
        return y
    import numpy as np

    return np.ascontiguousarray(y.transpose(0, y.ndim - 1, *range(1, y.ndim - 1)))


@contextlib.contextmanager
def eval_mode(model: "nn.Module") -> Iterator["nn.Module"]:
    """Put the model in eval mode for the block and restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def env_var(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextlib.contextmanager
def quiet(*patterns: str, stdout: bool = False) -> Iterator[io.StringIO]:
    """Silence warnings whose message matches one of ``patterns`` (regexes) and, with ``stdout``, Python-level
    prints (some converters print progress). Yields the captured stdout text."""
    buffer = io.StringIO()
    with warnings.catch_warnings():
        for pattern in patterns:
            warnings.filterwarnings("ignore", message=pattern)
        if stdout:
            with contextlib.redirect_stdout(buffer):
                yield buffer
        else:
            yield buffer


@contextlib.contextmanager
def quiet_loggers(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise the level of the named ``logging`` loggers for the duration (libraries that log noise at import)."""
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, before):
            lg.setLevel(lvl)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return _atomic_write_json(path, obj, indent=2, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if isinstance(o, (tuple, set, frozenset)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def provenance(extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Provenance every artefact carries: zendeploy and torch versions and the UTC date, plus ``extra``.

    Values are strings (ONNX ``metadata_props`` are string to string); non-strings are JSON-encoded.
    """
    import torch

    from .. import __version__

    meta: dict[str, Any] = {"producer": "zendeploy", "zendeploy_version": __version__,
                            "torch_version": torch.__version__, "date": utc_now()}
    meta.update(extra or {})
    return {str(k): v if isinstance(v, str) else json.dumps(v, default=_json_default) for k, v in meta.items()}


def check_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    from ..errors import ExportError

    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ExportError(f"input_shape must be a tuple of positive ints, got {input_shape!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise ExportError(f"input_shape must be a tuple of positive ints, got {input_shape!r}")
    return shape
