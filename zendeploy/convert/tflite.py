"""PyTorch -> TFLite (LiteRT) through litert-torch, the maintained PyTorch-to-LiteRT converter (no TensorFlow).

    >>> from zendeploy.convert.tflite import export_tflite, export_tflite_signatures
    >>> export_tflite(model, "model.tflite", input_shape=(1, 3, 224, 224), nhwc=True, precision="fp32")
    >>> export_tflite_signatures({"u0": (unit0, (1, 16, 56, 56)), "u1": (unit1, (1, 32, 28, 28))}, "units.tflite")

Layout: ``input_shape`` is the module's own (NCHW) shape. With ``nhwc=True`` the file takes NHWC input and returns
NHWC outputs for outputs of rank >= 3 (logits stay (N, classes)); see :mod:`zendeploy.convert.common`. LiteRT is
channels-last inside, so such a file has no TRANSPOSE op (an NCHW file has one or two at its edges). One exception:
a module whose NHWC input goes straight into a spatial mean (the classifier head unit alone) keeps one TRANSPOSE of
its small input; inside a whole network that transpose is gone.

Signatures: litert-torch names a signature's inputs ``args_0, args_1, ...`` and its outputs ``output_0, ...``;
a single-model export has the one signature ``serving_default``. Address them by these keys through
``interpreter.get_signature_runner(name)`` (the underlying tensor names, e.g. ``serving_default_args_0``, are the
converter's business). Each signature of a multi-signature file is its own subgraph; the file stores each module's
weights separately.

Speed: every Conv2d -> BatchNorm2d pair is folded in a copy of the module before conversion
(:func:`zendeploy.convert.common.fold_batchnorm`), which makes litert-torch 2-3x faster; conversion still costs
about 1-1.5 s per latency unit on a 2-core box (torch.export, FX passes and MLIR lowering, all per node), and a
multi-signature file saves only ~10 % per unit over one file per unit, but gives one file and one interpreter.

Precisions (what the file stores; the runtime chooses how it computes):

- ``fp32``: float32 weights and activations.
- ``fp16``: float16 weights (litert-torch recipe ``full_fp16_recipe``, which runs the AI Edge Quantizer's float
  casting); float32 input and output.
- ``int8``: post-training static quantisation through PyTorch 2 export quantisation (PT2E) with litert-torch's
  ``PT2EQuantizer`` (symmetric, per-channel weights, int8 activations calibrated with histogram observers on the
  representative data), converted with ``QuantConfig(pt2e_quantizer=...)``. The file's input and output tensors are
  **int8** with the scale and zero point in their quantization parameters (the runners in
  :mod:`zendeploy.export.runtime` quantise and dequantise). Representative data: random standard-normal tensors
  (default), a folder of images (:func:`representative_from_folder`), or an iterable of NCHW tensors.

A ``<name>.metadata.json`` next to the ``.tflite`` holds the provenance (the flatbuffer itself is left exactly as the
converter wrote it, so what is measured is what was converted).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from ..errors import ExportError, MissingExtraError, require
from ..io import atomic_target
from .common import (
    atomic_write_json,
    channels_last_module,
    check_shape,
    env_var,
    fold_batchnorm,
    nhwc_shape,
    provenance,
    quiet,
    quiet_loggers,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

PRECISIONS = ("fp32", "fp16", "int8")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CALIBRATION_SAMPLES = 16
_SIGNATURE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONVERTER_WARNINGS = (r".*LeafSpec.*", r".*register_constant.*", r".*is deprecated.*", r".*TypedStorage.*")


def _litert_torch():
    """Import litert-torch (and the LiteRT runtime it converts for) or raise the one-line install hint."""
    require("ai_edge_litert", "tflite", "TFLite export")
    try:
        with quiet(*_CONVERTER_WARNINGS), env_var("LITERT_TORCH_SHOW_PROGRESS", "n"), \
                quiet_loggers("torchao", "torch.utils._pytree"):
            import litert_torch  # torchao logs CUDA kernels it cannot load on a CPU host; pytree logs a deprecation
    except MissingExtraError:
        raise
    except ImportError as exc:
        raise MissingExtraError("litert-torch", "tflite", "TFLite export") from exc
    return litert_torch


def metadata_path(tflite_path: str | os.PathLike) -> Path:
    """Where the provenance of a ``.tflite`` file lives: ``model.tflite`` -> ``model.metadata.json``."""
    p = Path(tflite_path)
    return p.with_name(p.stem + ".metadata.json")


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ExportError(f"unknown TFLite precision '{precision}' (valid: {', '.join(PRECISIONS)})")
    return precision


def random_representative(input_shape: Sequence[int], n: int = DEFAULT_CALIBRATION_SAMPLES, seed: int = 0):
    """``n`` standard-normal float32 NCHW tensors of ``input_shape`` (seeded)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return [torch.randn(tuple(input_shape), generator=g) for _ in range(n)]


def representative_from_folder(folder: str | os.PathLike, input_shape: Sequence[int], *,
                               limit: int = 64) -> list["torch.Tensor"]:
    """Images of ``folder`` (sorted, at most ``limit``) as NCHW float32 batches of ``input_shape``.

    Each image is converted to RGB, resized so its shorter side fits, centre-cropped to (H, W) and normalised with
    the ImageNet mean and standard deviation (the ZenNet training preprocessing); images are grouped into batches of
    ``input_shape[0]`` (a last incomplete batch is dropped unless it is the only one).
    """
    import numpy as np
    import torch

    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"representative data folder '{folder}' does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise ExportError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in representative data folder '{folder}'")
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 4 or shape[1] != 3:
        raise ExportError(f"an image folder needs an input of shape (N, 3, H, W), got {shape}")
    n, _, h, w = shape
    from PIL import Image  # pillow comes with matplotlib, a core dependency

    mean = np.array(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.array(IMAGENET_STD, dtype=np.float32)[:, None, None]
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert("RGB")  # type: ignore[assignment]
                scale = max(h / im.height, w / im.width)
                im = im.resize((max(w, round(im.width * scale)), max(h, round(im.height * scale))))  # type: ignore[assignment]
                left, top = (im.width - w) // 2, (im.height - h) // 2
                arr = np.asarray(im.crop((left, top, left + w, top + h)), dtype=np.float32) / 255.0
        except Exception as exc:
            raise ExportError(f"cannot read image '{f}': {exc}") from exc
        images.append((arr.transpose(2, 0, 1) - mean) / std)
    return _rebatch(torch.from_numpy(np.stack(images).astype(np.float32)), n)


def _representative_batches(representative, input_shape: Sequence[int]) -> list["torch.Tensor"]:
    import torch

    if representative is None:
        return random_representative(input_shape)
    if isinstance(representative, (str, os.PathLike)):
        return representative_from_folder(representative, input_shape)
    samples = [torch.as_tensor(x, dtype=torch.float32) for x in representative]
    if not samples:
        raise ExportError("the representative dataset is empty")
    for b in samples:
        if b.dim() != len(input_shape) or tuple(b.shape[1:]) != tuple(input_shape[1:]):
            raise ExportError(f"representative tensor of shape {tuple(b.shape)} does not fit input "
                              f"{tuple(input_shape)}")
    return _rebatch(torch.cat(samples), int(input_shape[0]))


def _rebatch(stacked: "torch.Tensor", n: int) -> list["torch.Tensor"]:
    """Split samples stacked on axis 0 into batches of ``n`` (the export's static batch), repeating if too few."""
    import torch

    if stacked.shape[0] < n:
        stacked = torch.cat([stacked] * (-(-n // stacked.shape[0])))[:n]
    return [stacked[i:i + n] for i in range(0, stacked.shape[0] - n + 1, n)]


def _prepare(model: "nn.Module", input_shape: Sequence[int], *, nhwc: bool, precision: str, representative):
    """The module to hand to litert-torch, its sample input (in the file's layout) and the quant config."""
    import torch

    shape = check_shape(input_shape)
    module = fold_batchnorm(model)
    module = channels_last_module(module) if nhwc else module
    file_shape = nhwc_shape(shape) if nhwc else shape
    sample = torch.zeros(file_shape, dtype=torch.float32)
    if precision == "fp32":
        return module, sample, None
    if precision == "fp16":
        from litert_torch.generative.quantize import quant_recipes

        return module, sample, quant_recipes.full_fp16_recipe()
    # int8: PT2E static post-training quantisation, calibrated on the representative batches.
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    )
    batches = _representative_batches(representative, shape)
    with torch.no_grad():
        captured = torch.export.export(module, (sample,)).module()
        prepared = quantize_pt2e.prepare_pt2e(captured, quantizer)
        for batch in batches:
            prepared(batch.permute(0, *range(2, batch.dim()), 1).contiguous() if nhwc and batch.dim() >= 3 else batch)
        converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
        move_exported_model_to_eval(converted)
    return converted, sample, quant_config.QuantConfig(pt2e_quantizer=quantizer)


def _convert_and_write(converter_or_module, path: Path, *, sample=None, quant_config=None) -> None:
    """Run the litert-torch conversion quietly and write the flatbuffer atomically."""
    litert_torch = _litert_torch()
    try:
        with atomic_target(path, suffix=".tflite") as tmp, env_var("LITERT_TORCH_SHOW_PROGRESS", "n"), \
                quiet(*_CONVERTER_WARNINGS, stdout=True):  # the converter wants a .tflite name
            if sample is None:
                edge = converter_or_module.convert(quant_config=quant_config)
            else:
                edge = litert_torch.convert(converter_or_module, (sample,), quant_config=quant_config)
            edge.export(str(tmp))
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"litert-torch conversion failed: {_first_line(exc)}") from exc


def export_tflite(
    model: "nn.Module",
    path: str | os.PathLike,
    *,
    input_shape: Sequence[int],
    nhwc: bool = True,
    precision: str = "fp32",
    representative: Iterable[Any] | str | os.PathLike | None = None,
    metadata: Mapping[str, object] | None = None,
) -> Path:
    """Convert ``model`` (eval mode) to one ``.tflite`` file with the signature ``serving_default``.

    ``input_shape`` is the module's NCHW shape; ``nhwc`` gives the file channels-last I/O; ``precision`` is fp32,
    fp16 (float16 weights) or int8 (PT2E static PTQ with ``representative`` data: None for random, a folder of
    images, or NCHW tensors). Writes ``path`` atomically plus ``<stem>.metadata.json`` and returns ``path``.
    """
    _check_precision(precision)
    _litert_torch()
    if representative is not None and precision != "int8":
        raise ExportError("representative data is used only for int8 quantisation (precision='int8')")
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), quiet(*_CONVERTER_WARNINGS):
            module, sample, qcfg = _prepare(model, input_shape, nhwc=nhwc, precision=precision,
                                            representative=representative)
        _convert_and_write(module, path, sample=sample, quant_config=qcfg)
    finally:
        model.train(was_training)
    shape = check_shape(input_shape)
    _write_metadata(path, {
        "signatures": {"serving_default": {"inputs": ["args_0"], "outputs": ["output_0"],
                                           "input_shape": list(nhwc_shape(shape) if nhwc else shape)}},
        "layout": "NHWC" if nhwc else "NCHW", "precision": precision, "model_input_shape": list(shape),
        "quantized_io": precision == "int8",
        **dict(metadata or {}),
    })
    return path


def export_tflite_signatures(
    models: Mapping[str, tuple["nn.Module", Sequence[int]]],
    path: str | os.PathLike,
    *,
    nhwc: bool = True,
    precision: str = "fp32",
    metadata: Mapping[str, object] | None = None,
) -> Path:
    """Convert several modules into ONE ``.tflite`` with one signature per module (name -> (module, NCHW shape)).

    Signature names must be identifiers (``[A-Za-z_][A-Za-z0-9_]*``); each signature has input ``args_0`` and
    output ``output_0``. ``precision`` is fp32 or fp16 (int8 needs per-module calibration: use
    :func:`export_tflite` per module). Returns ``path``; a ``<stem>.metadata.json`` lists the signatures.
    """
    _check_precision(precision)
    if precision == "int8":
        raise ExportError("multi-signature export supports fp32 and fp16; convert int8 modules one by one")
    if not models:
        raise ExportError("no modules given for a multi-signature export")
    bad = [name for name in models if not _SIGNATURE_NAME.match(name)]
    if bad:
        raise ExportError(f"signature names must be identifiers ([A-Za-z_][A-Za-z0-9_]*): {bad[:3]}")
    litert_torch = _litert_torch()
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    converter = None
    modes: list[tuple[Any, bool]] = []
    signatures: dict[str, Any] = {}
    try:
        with torch.no_grad(), quiet(*_CONVERTER_WARNINGS):
            for name, (module, shape) in models.items():
                modes.append((module, module.training))
                module.eval()
                prepared, sample, _ = _prepare(module, shape, nhwc=nhwc, precision="fp32", representative=None)
                converter = (litert_torch.signature(name, prepared, (sample,)) if converter is None
                             else converter.signature(name, prepared, (sample,)))
                signatures[name] = {"inputs": ["args_0"], "outputs": ["output_0"], "input_shape": list(sample.shape),
                                    "model_input_shape": list(check_shape(shape))}
        qcfg = None
        if precision == "fp16":
            from litert_torch.generative.quantize import quant_recipes

            qcfg = quant_recipes.full_fp16_recipe()
        _convert_and_write(converter, path, quant_config=qcfg)
    finally:
        for module, training in modes:
            module.train(training)
    _write_metadata(path, {"signatures": signatures, "layout": "NHWC" if nhwc else "NCHW", "precision": precision,
                           "quantized_io": False, **dict(metadata or {})})
    return path


def _write_metadata(path: Path, meta: Mapping[str, object]) -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        converter = f"litert-torch {version('litert-torch')}"
    except PackageNotFoundError:  # pragma: no cover
        converter = "litert-torch"
    record: dict[str, Any] = {"file": path.name, "exporter": converter}
    record.update(provenance())
    record.update(meta)
    atomic_write_json(metadata_path(path), record)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0][:500] if lines else type(exc).__name__
