"""Export: the FORMATS table, option validation, ONNX export with real ONNX Runtime parity, report, CLI, extras.

TFLite conversions (seconds each) live in test_export_tflite.py; everything here is ONNX (tens of milliseconds per
small model) or no conversion at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from zendeploy import build_model
from zendeploy.builder import ZenNet
from zendeploy.cli.app import app
from zendeploy.errors import ExportError, MissingExtraError, RegistryError, StructureError, ZenDeployError
from zendeploy.export import (
    FORMATS, OPTIONS, check_extras, export_model, formats_markdown, get_format, list_formats, resolve_formats,
    validate_options,
)
from zendeploy.convert.onnx import export_onnx, onnx_metadata
from zendeploy.export.parity import TOLERANCES, check_parity, error_measures
from zendeploy.export.report import REPORT_NAME, load_report
from zendeploy.export.runtime import onnx_runner
from zendeploy.space.registry import get_block_type, list_blocks
from zendeploy.space.structure import parse_structure
from zendeploy.weights import save_weights

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

runner = CliRunner()
FAST = dict(warmup=1, repeats=3, min_time_s=0.0)  # timing loop settings that keep tests quick


# --------------------------------------------------------------------------------------------- the FORMATS table

def test_formats_table_rows_are_complete():
    assert list_formats() == ["onnx", "tflite", "engine"]
    for key in list_formats():
        spec = FORMATS.get(key)
        assert spec.suffix.startswith(".") and spec.precisions and spec.extra and spec.modules
        assert spec.options <= set(OPTIONS), key
        assert get_format(key) is spec
        for alias in spec.aliases:
            assert get_format(alias.upper()) is spec
        assert f"`{key}`" in formats_markdown()
    from zendeploy.export import EXPORTERS

    assert list(EXPORTERS) == list_formats()  # the dispatch has exactly one exporter per row


@pytest.mark.parametrize("text, keys", [
    ("onnx", ["onnx"]), ("litert", ["tflite"]), ("TRT", ["engine"]), ("tensorrt", ["engine"]),
    ("onnx, tflite,onnx", ["onnx", "tflite"]), (["litert", "onnx"], ["tflite", "onnx"]),
])
def test_aliases_are_normalised(text, keys):
    assert [s.key for s in resolve_formats(text)] == keys


def test_unknown_format_suggests_never_guesses():
    with pytest.raises(RegistryError) as err:
        resolve_formats("onnx,tflight")
    assert "unknown export format 'tflight'; did you mean 'tflite'?" in str(err.value)
    with pytest.raises(RegistryError, match="unknown export format 'coreml'") as err:
        resolve_formats("coreml")
    assert "did you mean" not in str(err.value)
    with pytest.raises(ExportError, match="no export format"):
        resolve_formats(" , ")


@pytest.mark.parametrize("formats, kwargs, message", [
    ("onnx", dict(precision="int8"), "format 'onnx' does not support precision int8"),
    ("onnx,tflite", dict(precision="fp16"), "format 'onnx' does not support precision fp16"),
    ("tflite", dict(precision="fp32", dynamic_batch=True), "--dynamic-batch is not supported by format tflite"),
    ("onnx", dict(precision="fp32", timing_cache="c.bin"), "--timing-cache is not supported by format onnx"),
    ("tflite", dict(precision="fp32", representative="imgs"), "--representative is only used for int8"),
    ("onnx", dict(precision="bf16"), "unknown precision 'bf16'"),
    ("onnx", dict(precision="fp32", opset=9), "opset must be an integer >= 11"),
])
def test_options_are_validated_against_every_row(formats, kwargs, message):
    with pytest.raises(ExportError) as err:
        validate_options(resolve_formats(formats), **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_accepted_options_pass():
    validate_options(resolve_formats("tflite"), precision="int8", nhwc=True, representative="imgs")
    validate_options(resolve_formats("tflite,engine"), precision="int8", nhwc=True)
    validate_options(resolve_formats("onnx,engine"), precision="fp32", dynamic_batch=True, opset=18)


# --------------------------------------------------------------------------------------------- parity measures

def test_error_measures_are_relative_to_the_output_scale():
    a = np.array([0.0, 1.0, -2.0])
    abs_err, rel_err, scale = error_measures(a, a + np.array([1e-3, 0.0, 0.0]))
    assert abs_err == pytest.approx(1e-3) and scale == 2.0 and rel_err == pytest.approx(5e-4)
    assert error_measures(np.zeros(3), np.zeros(3))[1] == 0.0  # all-zero output: no division by zero
    with pytest.raises(ExportError, match="NaN"):
        error_measures(a, np.array([np.nan, 1.0, -2.0]))
    with pytest.raises(ExportError, match="shape"):
        error_measures(a, a[:2])


def test_check_parity_pass_fail_and_drift():
    model = build_model("test_tiny_resnet").eval()

    def exact(x):
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy()

    ok = check_parity(model, exact, input_shape=(2, 3, 32, 32), runtime="torch")
    assert ok.passed and ok.max_abs_err == 0.0 and ok.top1_agreement == 1.0 and ok.output_shape == [2, 10]
    bad = check_parity(model, lambda x: exact(x) + 1e-2, input_shape=(2, 3, 32, 32), runtime="noisy")
    assert bad.passed is False and bad.kind == "parity"
    with pytest.raises(ExportError, match="failed its parity check: noisy vs PyTorch"):
        bad.raise_for_failure()
    drift = check_parity(model, lambda x: exact(x) + 1e-2, input_shape=(2, 3, 32, 32), tolerance=None)
    assert drift.kind == "drift" and drift.passed is None
    drift.raise_for_failure()  # a drift report never fails
    assert TOLERANCES["fp32"] == 1e-4


# --------------------------------------------------------------------------------------------- ONNX converter

def _one_block_net(block_name: str, *, se: bool, residual: bool = True) -> ZenNet:
    family = get_block_type(block_name).family
    args = "8,16,2,2" if family == "conv" else "8,16,2,8,2"  # 2 sub-layers: projection and identity shortcuts
    return ZenNet(parse_structure(f"SuperConvK3BNRELU(3,8,1,1){block_name}({args})"), num_classes=5, se=se,
                  residual=residual).eval()


def _check_onnx_file(path: Path, *, input_shape, input_name="input", output_name="output"):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert "BatchNormalization" not in ops
    assert [i.name for i in model.graph.input] == [input_name]
    assert [o.name for o in model.graph.output] == [output_name]
    assert not list(path.parent.glob("*.data")) and not list(path.parent.glob(".*.tmp"))  # one self-contained file
    return model, ops


@pytest.mark.parametrize("block_name", list_blocks())
def test_onnx_every_block_type(block_name, tmp_path):
    se = get_block_type(block_name).family != "conv"
    net = _one_block_net(block_name, se=se)
    path = export_onnx(net, tmp_path / "m.onnx", input_shape=(1, 3, 16, 16), metadata={"structure": net.structure})
    _, ops = _check_onnx_file(path, input_shape=(1, 3, 16, 16))
    assert ("Sigmoid" in ops) == se  # SE gates survive, BN is gone
    record = check_parity(net, onnx_runner(path), input_shape=(1, 3, 16, 16), runtime="onnxruntime")
    assert record.passed, record.message
    assert onnx_metadata(path)["structure"] == net.structure


def test_onnx_without_residual_links(tmp_path):
    net = _one_block_net("SuperResK1K5K1", se=False, residual=False)
    path = export_onnx(net, tmp_path / "m.onnx", input_shape=(1, 3, 16, 16))
    _, ops = _check_onnx_file(path, input_shape=(1, 3, 16, 16))
    assert "Add" not in ops
    assert check_parity(net, onnx_runner(path), input_shape=(1, 3, 16, 16)).passed


ONNX_ZOO = ["test_tiny_resnet", "test_tiny_mobilenet", "zennet_cifar10_model_size05M_res32",
            "zennet_cifar10_model_size1M_res32", "zennet_cifar100_model_size2M_res32",
            "zennet_imagenet1k_flops400M_SE_res224"]


@pytest.mark.parametrize("name", ONNX_ZOO)
def test_onnx_zoo_nets_at_small_resolution(name, tmp_path):
    net = build_model(name).eval()
    shape = (1, 3, 32, 32)
    path = export_onnx(net, tmp_path / "m.onnx", input_shape=shape, opset=17)
    model, _ = _check_onnx_file(path, input_shape=shape)
    assert model.opset_import[0].version == 17
    record = check_parity(net, onnx_runner(path), input_shape=shape, runtime="onnxruntime")
    assert record.passed, record.message


def test_onnx_dynamic_batch_and_names(tmp_path):
    net = build_model("test_tiny_resnet").eval()
    path = export_onnx(net, tmp_path / "m.onnx", input_shape=(2, 3, 32, 32), dynamic_batch=True,
                       input_name="images", output_name="logits")
    model, _ = _check_onnx_file(path, input_shape=(2, 3, 32, 32), input_name="images", output_name="logits")
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    run = onnx_runner(path)
    for batch in (1, 5):
        assert check_parity(net, run, input_shape=(batch, 3, 32, 32)).passed


def test_onnx_keeps_training_mode_and_weights(tmp_path):
    net = build_model("test_tiny_resnet").train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    export_onnx(net, tmp_path / "m.onnx", input_shape=(1, 3, 32, 32))
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_onnx_refuses_unfoldable_batchnorm(tmp_path):
    lonely_bn = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.ReLU())
    with pytest.raises(ExportError, match="BatchNormalization node"):
        export_onnx(lonely_bn, tmp_path / "m.onnx", input_shape=(1, 3, 8, 8))
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_generic_module_and_bad_shape(tmp_path):
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    path = export_onnx(mlp, tmp_path / "mlp.onnx", input_shape=(2, 4))
    assert check_parity(mlp, onnx_runner(path), input_shape=(2, 4)).passed
    with pytest.raises(ExportError, match="input_shape"):
        export_onnx(mlp, tmp_path / "x.onnx", input_shape=(2, 0))


# --------------------------------------------------------------------------------------------- export_model

def test_export_model_onnx_report(tmp_path):
    import logging

    out = tmp_path / "exp"
    lines: list[str] = []
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # the CLI's handler may already sit on "zendeploy" (propagate off): listen here
    logging.getLogger("zendeploy.export").addHandler(handler)
    try:
        report = export_model("test_tiny_resnet", "onnx", output_dir=out, log=lines.append, **FAST)
    finally:
        logging.getLogger("zendeploy.export").removeHandler(handler)
    assert report.ok and report.untrained and any(line.startswith("onnx: ") for line in lines)
    warned = [r for r in records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "untrained" in warned[0].getMessage()  # warnings go through logging
    assert report.warnings == [warned[0].getMessage()]
    row = report.row("onnx")
    assert row.status == "ok" and row.file == str(out / "model.onnx") and row.size_mb > 0
    assert row.parity.passed and row.parity.max_rel_err <= 1e-4 and row.parity.kind == "parity"
    assert row.median_ms > 0 and row.p90_ms >= row.median_ms and row.runtime == "onnxruntime-cpu"
    assert len(row.pass_mins_ms) == 5 and row.latency_ms == pytest.approx(min(row.pass_mins_ms), abs=1e-5)
    assert row.latency_ms <= row.median_ms
    assert row.export_s is not None and row.parity_s is not None and row.measure_s is not None
    saved = load_report(out / REPORT_NAME)
    assert saved == report and saved.schema_version == 1
    meta = onnx_metadata(out / "model.onnx")
    assert meta["structure"] == report.structure and meta["resolution"] == "32" and meta["zendeploy_version"]
    assert meta["opset"] == "17" and meta["date"].endswith("Z")
    manifest = json.loads((out / "manifest.onnx.json").read_text())
    assert manifest == [{"key": "test_tiny_resnet_onnx_fp32_nchw_b1", "path": "model.onnx"}]
    assert not list(out.glob(".*.tmp"))


def test_export_model_nhwc_dynamic_batch(tmp_path):
    report = export_model("test_tiny_mobilenet", "onnx", output_dir=tmp_path, nhwc=True, dynamic_batch=True,
                          batch=2, measure=False)
    row = report.row("onnx")
    assert row.status == "ok" and row.layout == "NHWC" and row.median_ms is None
    model = onnx.load(row.file)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 32, 32, 3]
    assert row.parity.passed and row.parity.n_inputs == 2  # the second parity input had batch 3 (free axis)
    x = np.random.default_rng(0).standard_normal((3, 32, 32, 3)).astype(np.float32)
    assert onnx_runner(row.file)(x).shape == (3, 10)


def test_export_model_loads_weights(tmp_path):
    torch.manual_seed(3)
    trained = build_model("test_tiny_resnet").eval()
    wpath = save_weights(trained, tmp_path / "w.safetensors")
    report = export_model("test_tiny_resnet", "onnx", output_dir=tmp_path / "e", weights=wpath, measure=False)
    assert not report.untrained and report.weights == str(wpath) and len(report.weights_sha256) == 64
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        expected = trained(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(onnx_runner(report.row("onnx").file)(x), expected, rtol=1e-4, atol=1e-5)


def test_export_model_bad_weights_fail_before_export(tmp_path):
    save_weights(build_model("test_tiny_mobilenet"), tmp_path / "other.safetensors")
    with pytest.raises(ZenDeployError, match="does not match the model"):
        export_model("test_tiny_resnet", "onnx", output_dir=tmp_path / "e", weights=tmp_path / "other.safetensors")
    assert not (tmp_path / "e" / "model.onnx").exists()


def test_export_model_structure_string_needs_res(tmp_path):
    structure = "SuperConvK3BNRELU(3,8,2,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)"
    with pytest.raises(StructureError, match="--res is required"):
        export_model(structure, "onnx", output_dir=tmp_path)
    report = export_model(structure, "onnx", output_dir=tmp_path, resolution=64, num_classes=3, measure=False)
    assert report.ok and report.name.startswith("net_") and report.input_shape == [1, 3, 64, 64]


def test_parity_failure_is_a_failed_row(tmp_path, monkeypatch):
    from zendeploy.export import runtime

    real = runtime.RUNNERS["onnx"]
    monkeypatch.setitem(runtime.RUNNERS, "onnx", lambda path, **kw: (lambda x, run=real(path, **kw): run(x) * 1.01))
    report = export_model("test_tiny_resnet", "onnx,engine", output_dir=tmp_path, **FAST)
    row = report.row("onnx")
    assert not report.ok and row.status == "failed" and row.reason.startswith("parity:")
    assert row.parity.passed is False and row.median_ms is None
    assert load_report(tmp_path / REPORT_NAME).row("onnx").status == "failed"


def test_lut_column_matches_table_setup(tmp_path):
    from types import SimpleNamespace

    from zendeploy.export import _fill_lut
    from zendeploy.export.report import FormatRow

    lut = SimpleNamespace(latency_ms=1.2, sigma_ms=0.1)
    row = FormatRow(format="onnx", name="ONNX", status="ok", precision="fp32", layout="NCHW", latency_ms=1.0)
    _fill_lut(row, get_format("onnx"), lut, SimpleNamespace(backend="onnxruntime", precision="fp32", batch=1,
                                                            device="cpu"), batch=1, nhwc=False, num_classes=10)
    assert row.lut_ms == 1.2 and row.error_pct == pytest.approx(20.0) and row.lut_note is None
    row2 = FormatRow(format="tflite", name="TFLite", status="ok", precision="fp32", layout="NHWC", latency_ms=1.0)
    _fill_lut(row2, get_format("tflite"), lut, SimpleNamespace(backend="litert", precision="fp32", batch=1,
                                                               device="pixel"), batch=1, nhwc=True, num_classes=10)
    assert row2.lut_ms is None and "device pixel" in row2.lut_note
    row3 = FormatRow(format="onnx", name="ONNX", status="ok", precision="fp32", layout="NCHW", latency_ms=1.0)
    table = SimpleNamespace(space=SimpleNamespace(num_classes=100), provenance=SimpleNamespace(input_layout="NCHW"))
    _fill_lut(row3, get_format("onnx"), lut, SimpleNamespace(backend="onnxruntime", precision="fp32", batch=1,
                                                             device="cpu", table=table), batch=1, nhwc=False,
              num_classes=1000)
    assert row3.lut_ms is None and "100 classes (row: 1000" in row3.lut_note


def _write_lut(path: Path, structure: str, *, resolution: int, num_classes: int, **provenance) -> float:
    """A real latency table file (zendeploy.latency schema) holding every unit of ``structure``; returns its sum."""
    schema = pytest.importorskip("zendeploy.latency.schema")
    from zendeploy.latency.model import unit_fields, unit_key
    from zendeploy.space.units import network_units

    entries = []
    for i, p in enumerate(network_units(parse_structure(structure), resolution, num_classes=num_classes)):
        y = 0.01 * (i + 1)
        entries.append(schema.Entry(key=unit_key(p.unit, p.resolution), unit=unit_fields(p.unit, p.resolution),
                                    latency_ms=y, median_ms=y, p10_ms=y, p90_ms=y, std_ms=0.0, samples=5,
                                    pass_medians_ms=[y]))
    fields = dict(device="cpu", device_name="test cpu", backend="onnxruntime", backend_version="onnxruntime 1.0",
                  precision="fp32", batch=1, input_layout="NCHW", threads=1, exporter="torch.onnx", opset=17,
                  date="2026-01-01T00:00:00+00:00", zendeploy_version="0.1.0",
                  measurement=schema.MeasurementSettings(warmup_runs=1, min_runs=1, min_time_s=0.0, passes=1,
                                                         statistic="median", order="shuffled"))
    fields.update(provenance)
    table = schema.LatencyTable(provenance=schema.Provenance(**fields), entries=entries,
                                space=schema.SpaceInfo(name="test", resolution=resolution, num_classes=num_classes))
    path.write_text(table.model_dump_json(indent=1))
    return sum(e.latency_ms for e in entries)


def test_export_with_latency_table(tmp_path):
    from zendeploy.zoo import get_zoo

    structure = get_zoo("test_tiny_resnet").structure
    expected = _write_lut(tmp_path / "cpu.json", structure, resolution=32, num_classes=10)
    report = export_model("test_tiny_resnet", "onnx", output_dir=tmp_path / "e", table=tmp_path / "cpu.json", **FAST)
    row = report.row("onnx")
    assert row.lut_ms == pytest.approx(expected, rel=1e-6) and row.lut_sigma_ms >= 0
    assert row.error_pct == pytest.approx(100 * (row.lut_ms - row.latency_ms) / row.latency_ms, abs=0.01)
    assert report.table == str(tmp_path / "cpu.json")

    _write_lut(tmp_path / "phone.json", structure, resolution=32, num_classes=10, device="pixel", backend="litert",
               input_layout="NHWC")
    report = export_model("test_tiny_resnet", "onnx", output_dir=tmp_path / "e2", table=tmp_path / "phone.json",
                          **FAST)
    row = report.row("onnx")
    assert row.lut_ms is None and "backend litert" in row.lut_note


def test_cli_run_folder(tmp_path):
    run_dir = tmp_path / "runs" / "search7"
    run_dir.mkdir(parents=True)
    (run_dir / "best_structure.txt").write_text("SuperConvK3BNRELU(3,8,2,1)SuperResK1K3K1(8,16,2,8,1)\n")
    result = runner.invoke(app, ["export", "--run", str(run_dir), "--res", "32", "-o", str(tmp_path / "out"),
                                 "--no-measure"])
    assert result.exit_code == 0, result.output
    report = load_report(tmp_path / "out" / REPORT_NAME)
    assert report.name == "search7" and report.structure.startswith("SuperConvK3BNRELU(3,8,2,1)")


# --------------------------------------------------------------------------------------------- missing extras

def test_missing_onnxruntime_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError) as err:
        export_model("test_tiny_resnet", "onnx", output_dir=tmp_path)
    assert str(err.value) == ("ONNX export needs 'onnxruntime', which is not installed: "
                              'pip install "zendeploy[onnx]"')
    assert not list(tmp_path.iterdir())  # refused before any work


def test_missing_litert_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "litert_torch", None)
    with pytest.raises(MissingExtraError, match=r'TFLite export needs .*pip install "zendeploy\[tflite\]"'):
        check_extras(resolve_formats("tflite"))


def test_engine_without_tensorrt_is_a_skipped_row(tmp_path):
    from zendeploy.export.engine import build_engine, tensorrt_missing

    if tensorrt_missing() is None:
        pytest.skip("TensorRT is installed here")
    report = export_model("test_tiny_resnet", "trt", output_dir=tmp_path, measure=False)
    row = report.row("engine")
    assert report.ok and row.status == "skipped" and 'pip install "zendeploy[tensorrt]"' in row.reason
    assert not (tmp_path / "model.onnx").exists()  # nothing built for a skipped engine
    onnx_file = export_onnx(build_model("test_tiny_resnet"), tmp_path / "m.onnx", input_shape=(1, 3, 32, 32))
    with pytest.raises(MissingExtraError, match="TensorRT engine build needs"):
        build_engine(onnx_file, tmp_path / "m.engine", precision="fp16")


# --------------------------------------------------------------------------------------------- CLI

def test_cli_help_lists_formats_and_options():
    result = runner.invoke(app, ["export", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for word in ("onnx", "tflite", "litert", "engine", "trt", "--nhwc", "--dynamic-batch", "--precision", "int8",
                 "--weights", "--representative", "--table"):
        assert word in result.output, word


def test_cli_export_onnx(tmp_path):
    out = tmp_path / "cli"
    result = runner.invoke(app, ["export", "--zoo", "test_tiny_resnet", "-f", "onnx", "-o", str(out), "--no-measure"],
                           env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "test_tiny_resnet" in result.output and "ok" in result.output and "next:" in result.output
    assert "untrained" in result.output
    report = load_report(out / REPORT_NAME)
    assert report.row("onnx").status == "ok" and report.name == "test_tiny_resnet"


def test_cli_json_output(tmp_path):
    result = runner.invoke(app, ["export", "--zoo", "test_tiny_mobilenet", "-f", "onnx", "-o", str(tmp_path),
                                 "--no-measure", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rows"][0]["format"] == "onnx" and data["rows"][0]["status"] == "ok"


@pytest.mark.parametrize("args, message", [
    (["--zoo", "test_tiny_resnet", "-f", "tflight"], "unknown export format 'tflight'; did you mean 'tflite'?"),
    (["--zoo", "test_tiny_resnet", "-f", "onnx", "--precision", "int8"], "does not support precision int8"),
    (["--zoo", "test_tiny_resnet", "--weights", "missing.pth"], "does not exist"),
    (["SuperConvK3BNRELU(3,8,2,1)"], "--res is required"),
    ([], "give exactly one of"),
])
def test_cli_errors_are_one_line(args, message, tmp_path):
    result = runner.invoke(app, ["export", *args, "-o", str(tmp_path / "x")])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.output


def test_cli_missing_extra_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    result = runner.invoke(app, ["export", "--zoo", "test_tiny_resnet", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert 'error: ONNX export needs \'onnxruntime\', which is not installed: pip install "zendeploy[onnx]"' \
        in result.output


def test_cli_failed_row_exits_1(tmp_path, monkeypatch):
    from zendeploy.export import runtime

    real = runtime.RUNNERS["onnx"]
    monkeypatch.setitem(runtime.RUNNERS, "onnx", lambda path, **kw: (lambda x, run=real(path, **kw): run(x) + 1.0))
    result = runner.invoke(app, ["export", "--zoo", "test_tiny_resnet", "-o", str(tmp_path), "--no-measure"],
                           env={"COLUMNS": "120"})
    assert result.exit_code == 1
    assert "failed" in result.output and "error: 1 of 1 exports failed: onnx: parity:" in result.output
    assert (tmp_path / REPORT_NAME).is_file()  # the report is written even when a row failed


def test_module_help_in_subprocess():
    result = subprocess.run([sys.executable, "-m", "zendeploy", "export", "--help"], capture_output=True, text=True,
                            timeout=120, env={"COLUMNS": "200", "PATH": ""})
    assert result.returncode == 0 and "--format" in result.stdout


def test_readme_formats_table_is_the_formats_registry():
    from pathlib import Path

    from zendeploy.export import formats_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert formats_markdown().strip() in readme
