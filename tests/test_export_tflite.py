"""TFLite export through litert-torch, checked with the real LiteRT interpreter.

Conversions cost seconds each (litert-torch exports and lowers every node), so this file converts four times:

- one multi-signature file holding one signature per block family, which chains block types so that every family,
  every kernel size (in both positions of a basic block) and every expansion ratio is converted, plus SE units and
  the classifier head (all 28 block types go through ONNX in test_export.py);
- the tiny zoo nets through ``export_model``: fp32 NCHW, fp16 NHWC, int8 NHWC calibrated on an image folder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from zendeploy.builder import ZenNet
from zendeploy.errors import ExportError
from zendeploy.export import export_model
from zendeploy.export.parity import check_parity
from zendeploy.export.runtime import litert_runner, tflite_op_counts
from zendeploy.convert.tflite import (
    export_tflite, export_tflite_signatures, metadata_path, representative_from_folder,
)
from zendeploy.space.blocks import build_unit
from zendeploy.space.registry import get_block_type, list_blocks
from zendeploy.space.structure import parse_structure
from zendeploy.space.units import HEAD, Unit

pytest.importorskip("litert_torch")
Interpreter = pytest.importorskip("ai_edge_litert.interpreter").Interpreter

FAST = dict(warmup=1, repeats=3, min_time_s=0.0)

# Block types converted to TFLite: every family, every kernel (both positions for basic blocks), every expansion.
TFLITE_BLOCKS = {
    "conv": ["SuperConvK1BNRELU", "SuperConvK3BNRELU", "SuperConvK5BNRELU", "SuperConvK7BNRELU"],
    "basic": ["SuperResK3K3", "SuperResK5K7", "SuperResK7K5"],
    "bottleneck": ["SuperResK1K3K1", "SuperResK1K5K1", "SuperResK1K7K1"],
    "inverted": ["SuperResIDWE1K3", "SuperResIDWE2K5", "SuperResIDWE4K7", "SuperResIDWE6K3"],
}


def _chain(names: list[str]) -> str:
    parts = []
    for i, name in enumerate(names):
        stride = 2 if i == 0 else 1
        conv = get_block_type(name).family == "conv"
        parts.append(f"{name}(8,8,{stride},1)" if conv else f"{name}(8,8,{stride},8,1)")
    return "".join(parts)


def test_tflite_block_selection_covers_the_space():
    chosen = [n for names in TFLITE_BLOCKS.values() for n in names]
    types = [get_block_type(n) for n in list_blocks()]
    assert {t.family for t in types} == set(TFLITE_BLOCKS)
    assert {t.kernel for t in types} == {get_block_type(n).kernel for n in chosen}
    assert {t.expansion for t in types} == {get_block_type(n).expansion for n in chosen}
    basic = [get_block_type(n) for n in TFLITE_BLOCKS["basic"]]
    assert {b.kernel for b in basic} == {b.second_kernel for b in basic} == {3, 5, 7}


@pytest.fixture(scope="module")
def signatures_file(tmp_path_factory):
    torch.manual_seed(0)
    models = {
        family: (ZenNet(parse_structure(_chain(names)), num_classes=10).body.eval(), (1, 8, 8, 8))
        for family, names in TFLITE_BLOCKS.items()
    }
    se_net = ZenNet(parse_structure("SuperResK1K3K1(8,8,1,8,1)SuperResIDWE2K3(8,8,1,8,1)"), num_classes=10, se=True)
    models["se_units"] = (se_net.body.eval(), (1, 8, 8, 8))
    models["head"] = (build_unit(Unit(HEAD, 8, 10, 8, 1)).eval(), (1, 8, 4, 4))
    path = export_tflite_signatures(models, tmp_path_factory.mktemp("sig") / "units.tflite", nhwc=True,
                                    metadata={"purpose": "test"})
    return path, models


def test_signatures_file_layout(signatures_file):
    path, models = signatures_file
    interpreter = Interpreter(model_path=str(path))
    sigs = interpreter.get_signature_list()
    assert list(sigs) == list(models)
    for name, (_, shape) in models.items():
        assert sigs[name] == {"inputs": ["args_0"], "outputs": ["output_0"]}
        detail = interpreter.get_signature_runner(name).get_input_details()["args_0"]
        n, c, h, w = shape
        assert list(detail["shape"]) == [n, h, w, c]  # NHWC
    meta = json.loads(metadata_path(path).read_text())
    assert meta["layout"] == "NHWC" and meta["purpose"] == "test" and list(meta["signatures"]) == list(models)
    assert meta["signatures"]["head"]["model_input_shape"] == [1, 8, 4, 4]


@pytest.mark.parametrize("name", [*TFLITE_BLOCKS, "se_units", "head"])
def test_signature_parity(signatures_file, name):
    path, models = signatures_file
    module, shape = models[name]
    record = check_parity(module, litert_runner(path, signature=name), input_shape=shape, nhwc=True,
                          runtime="litert")
    assert record.passed, record.message


@pytest.mark.parametrize("name", list(TFLITE_BLOCKS))
def test_nhwc_units_have_no_transposes(signatures_file, name):
    ops = tflite_op_counts(signatures_file[0], signature=name)
    assert "TRANSPOSE" not in ops and ops.get("CONV_2D", 0) > 0
    if name == "inverted":
        assert ops.get("DEPTHWISE_CONV_2D", 0) > 0


def test_export_model_tflite_fp32_nchw(tmp_path):
    report = export_model("test_tiny_mobilenet", "onnx,litert", output_dir=tmp_path, **FAST)
    assert report.ok, [r.reason for r in report.rows]
    row = report.row("tflite")
    assert row.file == str(tmp_path / "model_fp32.tflite") and row.layout == "NCHW"
    assert row.parity.passed and row.parity.max_rel_err <= 1e-4 and row.parity.runtime == "litert-cpu"
    assert row.median_ms > 0 and row.runtime == "litert-cpu"
    detail = Interpreter(model_path=row.file).get_signature_runner().get_input_details()["args_0"]
    assert list(detail["shape"]) == [1, 3, 32, 32] and detail["dtype"] == np.float32
    meta = json.loads(metadata_path(row.file).read_text())
    assert meta["structure"] == report.structure and meta["precision"] == "fp32" and meta["zendeploy_version"]
    assert json.loads((tmp_path / "manifest.tflite.json").read_text())[0]["path"] == "model_fp32.tflite"


def test_export_model_tflite_fp16_nhwc(tmp_path):
    report = export_model("test_tiny_resnet", "tflite", output_dir=tmp_path, nhwc=True, precision="fp16", **FAST)
    row = report.row("tflite")
    assert row.status == "ok", row.reason
    assert row.file.endswith("model_fp16_nhwc.tflite") and row.layout == "NHWC"
    assert row.parity.kind == "parity" and row.parity.tolerance == 1e-2 and row.parity.max_rel_err < 1e-3
    interpreter = Interpreter(model_path=row.file)
    detail = interpreter.get_signature_runner().get_input_details()["args_0"]
    assert list(detail["shape"]) == [1, 32, 32, 3] and detail["dtype"] == np.float32
    assert any(t["dtype"] == np.float16 for t in interpreter.get_tensor_details())  # fp16 weights
    assert "TRANSPOSE" not in tflite_op_counts(row.file)


def test_export_model_tflite_int8_with_image_folder(tmp_path):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i, size in enumerate([(40, 30), (32, 32), (64, 48), (50, 80)]):
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(images / f"img{i}.png")
    batches = representative_from_folder(images, (1, 3, 32, 32))
    assert len(batches) == 4 and all(b.shape == (1, 3, 32, 32) for b in batches)

    report = export_model("test_tiny_resnet", "tflite", output_dir=tmp_path / "out", nhwc=True, precision="int8",
                          representative=images, **FAST)
    row = report.row("tflite")
    assert row.status == "ok", row.reason
    p = row.parity
    assert p.kind == "drift" and p.passed is None and p.tolerance is None and p.top1_agreement is not None
    assert p.max_rel_err < 0.5 and p.inputs == "representative"  # quantised, but not broken
    detail = Interpreter(model_path=row.file).get_signature_runner().get_input_details()["args_0"]
    assert detail["dtype"] == np.int8 and list(detail["shape"]) == [1, 32, 32, 3]
    assert json.loads(metadata_path(row.file).read_text())["quantized_io"] is True
    assert row.median_ms > 0


def test_tflite_argument_errors(tmp_path):
    net = ZenNet(parse_structure("SuperConvK3BNRELU(3,8,2,1)"), num_classes=2)
    with pytest.raises(ExportError, match="representative data is used only for int8"):
        export_tflite(net, tmp_path / "a.tflite", input_shape=(1, 3, 8, 8), representative=tmp_path)
    with pytest.raises(ExportError, match="unknown TFLite precision 'int4'"):
        export_tflite(net, tmp_path / "a.tflite", input_shape=(1, 3, 8, 8), precision="int4")
    with pytest.raises(ExportError, match="fp32 and fp16"):
        export_tflite_signatures({"a": (net, (1, 3, 8, 8))}, tmp_path / "b.tflite", precision="int8")
    with pytest.raises(ExportError, match="identifiers"):
        export_tflite_signatures({"unit 1": (net, (1, 3, 8, 8))}, tmp_path / "b.tflite")
    with pytest.raises(ExportError, match="no images"):
        representative_from_folder(tmp_path, (1, 3, 8, 8))
    assert not list(tmp_path.glob("*.tflite"))


def test_cli_tflite_export_prints_only_zendeploys_lines(tmp_path):
    """The libraries' start-up noise (absl, oneDNN, torchao, torch pytree, flatbuffer op counts, XNNPACK) stays hidden
    in the CLI; --verbose shows it again."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "zendeploy", "export", "SuperConvK3BNRELU(3,8,2,1)SuperConvK1BNRELU(8,32,1,1)",
            "--res", "16", "--num-classes", "10", "--format", "tflite", "-o", str(tmp_path / "quiet")]
    env = {k: v for k, v in __import__("os").environ.items() if k != "ZENDEPLOY_VERBOSE"}
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == ["warning: no --weights given: the model has random initial weights (untrained); its outputs "
                     "are meaningless; only the files' format, parity and speed mean something",
                     "tflite: exporting ...", "tflite: ok"], out.stderr
    assert "tflite" in out.stdout and "Failed to load" not in out.stdout
