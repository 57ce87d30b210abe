"""Load and save model weights: a state_dict in safetensors or a PyTorch checkpoint, never arbitrary pickles.

    >>> from zendeploy import build_model
    >>> from zendeploy.weights import load_weights, save_weights
    >>> net = build_model("test_tiny_resnet")
    >>> save_weights(net, "tiny.safetensors")
    >>> load_weights(build_model("test_tiny_resnet"), "tiny.safetensors")

Formats, chosen by suffix:

- ``.safetensors``: read with :mod:`safetensors` (extra ``weights``); tensors only by construction.
- ``.pth``, ``.pt``, ``.ckpt``, ``.bin``: read with ``torch.load(weights_only=True)``, so a file holding pickled Python
  objects (a whole ``nn.Module``, an optimizer with custom classes) is refused instead of executed. Accepted layouts: a
  raw state_dict, or a dict holding one under ``state_dict``, ``model`` or ``model_state_dict``. A ``module.`` prefix on
  every key (saved from ``DataParallel``/DDP) is stripped.

The check is strict: every key of the model must be in the file with the same shape, and the file may hold no other
key. (Only ``num_batches_tracked`` buffers may be absent: they do not change inference.) A mismatch raises
:class:`WeightsError` with one line listing a few missing and unexpected keys and shape mismatches.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .errors import ZenDeployError, require
from .io import atomic_target

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
_SHOWN = 3  # keys listed per category in an error message


class WeightsError(ZenDeployError, ValueError):
    """A weights file is missing, unreadable, unsafe, or does not match the model."""


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SAFETENSORS_SUFFIXES + TORCH_SUFFIXES:
        valid = ", ".join(SAFETENSORS_SUFFIXES + TORCH_SUFFIXES)
        raise WeightsError(f"weights file '{path}' has an unknown suffix '{path.suffix}' (expected one of: {valid})")
    return suffix


def read_state_dict(path: str | os.PathLike) -> dict[str, "torch.Tensor"]:
    """Read a state_dict (name -> tensor) from a safetensors file or a tensors-only PyTorch checkpoint."""
    import torch

    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise WeightsError(f"weights file '{path}' does not exist")
    if suffix in SAFETENSORS_SUFFIXES:
        st = require("safetensors.torch", "weights", "Reading .safetensors weights")
        try:
            state = st.load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises SafetensorError / OSError for truncated or foreign files
            raise WeightsError(f"cannot read safetensors file '{path}': {_first_line(exc)}") from exc
    else:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*pickle protocol.*")
                state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            found = re.search(r"GLOBAL ([\w.]+)", str(exc))
            if found:
                raise WeightsError(
                    f"'{path}' holds Python objects ({found.group(1)}), not only tensors; zendeploy reads checkpoints "
                    f"with torch.load(weights_only=True) and will not unpickle arbitrary objects: save "
                    f"model.state_dict() (or use .safetensors) instead"
                ) from exc
            raise WeightsError(
                f"cannot read PyTorch checkpoint '{path}' with torch.load(weights_only=True): it is corrupt or not a "
                f"tensors-only checkpoint (zendeploy will not unpickle arbitrary objects)"
            ) from exc
        except Exception as exc:
            raise WeightsError(
                f"cannot read PyTorch checkpoint '{path}' (corrupt or not a checkpoint): {_first_line(exc)}"
            ) from exc
        state = _unwrap(state, path)
    return _strip_module_prefix(dict(state))


def _unwrap(obj: Any, path: Path) -> Mapping[str, Any]:
    import torch

    if isinstance(obj, Mapping):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        if not obj:
            raise WeightsError(f"checkpoint '{path}' is empty")
        bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)][:_SHOWN]
        raise WeightsError(
            f"checkpoint '{path}' is not a state_dict: keys {bad} are not tensors and no "
            f"{'/'.join(repr(k) for k in WRAPPER_KEYS)} entry holds one"
        )
    raise WeightsError(f"checkpoint '{path}' holds a {type(obj).__name__}, not a state_dict (a dict of tensors)")


def _strip_module_prefix(state: dict[str, Any]) -> dict[str, Any]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _listing(label: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN]) + (f", ... (+{len(items) - _SHOWN})" if len(items) > _SHOWN else "")
    return f"{len(items)} {label} ({shown})"


def check_state_dict(model: "nn.Module", state: Mapping[str, "torch.Tensor"], *, source: str = "weights") -> None:
    """Raise WeightsError unless ``state`` has exactly the model's keys and shapes (see module docstring)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        parts = [
            _listing(label, items)
            for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                 ("shape mismatches", mismatched))
            if items
        ]
        raise WeightsError(
            f"{source} does not match the model: " + "; ".join(parts)
            + " (saved from another structure, num_classes or SE setting?)"
        )


def load_weights(model: "nn.Module", path: str | os.PathLike) -> "nn.Module":
    """Load a state_dict file into ``model`` (strict keys and shapes); returns the model."""
    import torch

    state = read_state_dict(path)
    check_state_dict(model, state, source=f"weights file '{path}'")
    expected = model.state_dict()
    with torch.no_grad():
        for key, target in expected.items():
            if key in state:
                target.copy_(state[key].to(dtype=target.dtype))
    return model


def save_weights(model: "nn.Module", path: str | os.PathLike, *, metadata: Mapping[str, str] | None = None) -> Path:
    """Save the model's state_dict as ``.safetensors`` (preferred) or ``.pth``, atomically; returns the path.

    ``metadata`` (string to string) goes into the safetensors header; a ZenNet's structure string is added as
    ``structure`` when the model has one.
    """
    import torch

    path = Path(path)
    suffix = _suffix(path)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    structure = getattr(model, "structure", None)
    if isinstance(structure, str):
        meta.setdefault("structure", structure)
    with atomic_target(path) as tmp:
        if suffix in SAFETENSORS_SUFFIXES:
            st = require("safetensors.torch", "weights", "Saving .safetensors weights")
            st.save_file(state, str(tmp), metadata=meta or None)
        else:
            torch.save(state, tmp)
    return path
