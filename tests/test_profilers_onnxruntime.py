"""Real onnxruntime timing of a tiny ONNX model built with onnx.helper (no torch)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is needed to build the test model")
pytest.importorskip("onnxruntime", reason="onnxruntime is the backend under test")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from profilers.common import ProfilerError, read_jsonl  # noqa: E402
from profilers.onnxruntime.run import (  # noqa: E402
    backend_info,
    main,
    make_random_inputs,
    make_session,
    onnxruntime_versions,
    time_onnx_model,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = dict(warmup=2, repeats=5, min_time_s=0.0)


def make_conv_onnx(path, *, batch="N", extra_free_dim=False):
    """Conv(3->8, 3x3) + ReLU + Conv(8->4, 3x3) on [batch, 3, 16, 16]."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.standard_normal((4, 8, 3, 3)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b2"),
    ]
    width = "W" if extra_free_dim else 16
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 16, width])
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["h1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("Conv", ["h2", "w2", "b2"], ["y"], pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(nodes, "tiny_conv", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory):
    return make_conv_onnx(tmp_path_factory.mktemp("ort") / "conv.onnx")


def test_times_a_real_model(conv_model):
    stats = time_onnx_model(conv_model, **FAST)
    assert stats.n == 5
    assert 0.0 < stats.min_ms <= stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert stats.median_ms < 1000.0


def test_session_settings_and_random_inputs(conv_model):
    session = make_session(conv_model, intra_op_threads=1, inter_op_threads=1)
    assert session.get_providers() == ["CPUExecutionProvider"]
    feeds = make_random_inputs(session, batch_size=3)
    assert list(feeds) == ["x"]
    assert feeds["x"].shape == (3, 3, 16, 16) and feeds["x"].dtype == np.float32
    (y,) = session.run(None, feeds)
    assert y.shape == (3, 4, 16, 16)


def test_batch_size_changes_the_work(conv_model):
    stats = time_onnx_model(conv_model, batch_size=4, **FAST)
    assert stats.n == 5


def test_free_non_batch_dim_needs_a_shape(tmp_path):
    path = make_conv_onnx(tmp_path / "free.onnx", extra_free_dim=True)
    with pytest.raises(ProfilerError, match="free dimension"):
        time_onnx_model(path, **FAST)
    stats = time_onnx_model(path, shapes={"x": [1, 3, 16, 24]}, **FAST)
    assert stats.n == 5
    with pytest.raises(ProfilerError, match="does not fit"):
        time_onnx_model(path, shapes={"x": [1, 5, 16, 24]}, **FAST)
    with pytest.raises(ProfilerError, match="unknown input"):
        time_onnx_model(path, shapes={"x": [1, 3, 16, 24], "nope": [1]}, **FAST)


def test_missing_and_corrupt_files_give_one_line_errors(tmp_path):
    with pytest.raises(ProfilerError, match="not found"):
        time_onnx_model(tmp_path / "missing.onnx", **FAST)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf\n" * 10)
    with pytest.raises(ProfilerError) as info:
        time_onnx_model(bad, **FAST)
    assert "\n" not in str(info.value) and "cannot load" in str(info.value)


def test_versions_and_backend_info():
    import onnxruntime

    assert onnxruntime_versions()["onnxruntime"] == onnxruntime.__version__
    info = backend_info(intra_op_threads=2)
    assert info["provider"] == "CPUExecutionProvider" and info["intra_op_threads"] == 2
    assert info["graph_optimization_level"] == "ORT_ENABLE_ALL" and info["execution_mode"] == "ORT_SEQUENTIAL"


def test_cli_writes_jsonl_and_resumes(tmp_path, conv_model, capsys):
    (tmp_path / "models").mkdir()
    shutil.copy(conv_model, tmp_path / "models" / "a.onnx")
    make_conv_onnx(tmp_path / "models" / "b.onnx", batch=2)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps([{"key": "a", "path": "models/a.onnx"}, {"key": "b", "path": "models/b.onnx"}]))
    out = tmp_path / "ort.jsonl"
    argv = ["--manifest", str(manifest), "--output", str(out), "--warmup", "1", "--repeats", "3", "--min-time", "0"]
    assert main(argv) == 0
    records = read_jsonl(out)
    assert [r["key"] for r in records] == ["a", "b"]
    assert records[0]["stats"]["n"] == 3 and records[0]["latency_ms"] == records[0]["stats"]["median_ms"]
    assert records[0]["inputs"] == {"x": [1, 3, 16, 16]} and records[1]["inputs"] == {"x": [2, 3, 16, 16]}
    assert records[0]["backend"]["name"] == "onnxruntime"
    assert records[0]["environment"]["runtime_versions"]["onnxruntime"]
    before = out.read_text()
    assert main(argv) == 0  # resume: nothing left to do
    assert out.read_text() == before
    assert "2 already done" in capsys.readouterr().err


def test_cli_reports_a_bad_model_and_exits_1(tmp_path, capsys):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"key": "bad", "path": "nope.onnx"}]))
    assert main(["--manifest", str(manifest), "--output", str(tmp_path / "o.jsonl"), "--repeats", "1"]) == 1
    assert "error: bad: model file not found" in capsys.readouterr().err


def test_runner_is_standalone_without_torch_or_zendeploy(tmp_path, conv_model):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"key": "a", "path": str(conv_model)}]))
    script = (
        "import sys; from profilers.onnxruntime.run import main; "
        f"rc = main(['--manifest', {str(manifest)!r}, '--output', {str(tmp_path / 'o.jsonl')!r}, "
        "'--warmup', '1', '--repeats', '2', '--min-time', '0']); "
        "assert rc == 0, rc; "
        "bad = [m for m in ('torch', 'zendeploy') if m in sys.modules]; "
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(read_jsonl(tmp_path / "o.jsonl")) == 1
