"""Real LiteRT timing of a tiny two-signature .tflite.

The .tflite is made once per session with litert-torch (which needs PyTorch: allowed here in the
tests, never in profilers/). Tests that need it are skipped when litert-torch is not importable.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is the backend under test")

from profilers.common import ProfilerError, read_jsonl  # noqa: E402
from profilers.litert.run import (  # noqa: E402
    backend_info,
    list_signatures,
    litert_versions,
    main,
    time_tflite_model,
    time_tflite_signatures,
)

FAST = dict(warmup=2, repeats=5, min_time_s=0.0)

_CONVERT = textwrap.dedent(
    """
    import sys
    import torch
    import litert_torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return torch.relu(self.conv(x))

    torch.manual_seed(0)
    model = Tiny().eval()
    edge = (
        litert_torch.signature("small", model, (torch.randn(1, 3, 16, 16),))
        .signature("large", model, (torch.randn(1, 3, 32, 32),))
        .convert()
    )
    edge.export(sys.argv[1])
    """
)


@pytest.fixture(scope="module")
def two_signature_tflite(tmp_path_factory):
    """A .tflite with signatures "small" (1x3x16x16) and "large" (1x3x32x32).

    Converted in a child process so the test process itself never imports torch.
    """
    if importlib.util.find_spec("litert_torch") is None:
        pytest.skip("litert-torch (which needs torch) is not installed; it builds the test .tflite")
    path = tmp_path_factory.mktemp("litert") / "two_sig.tflite"
    proc = subprocess.run(
        [sys.executable, "-c", _CONVERT, str(path)], capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0 or not path.exists():
        pytest.fail(f"litert-torch conversion failed: {proc.stderr[-1500:]}")
    return path


def test_lists_both_signatures(two_signature_tflite):
    assert list_signatures(two_signature_tflite) == ["small", "large"]


def test_times_each_signature_separately(two_signature_tflite):
    results = time_tflite_signatures(two_signature_tflite, num_threads=1, **FAST)
    assert list(results) == ["small", "large"]
    for stats in results.values():
        assert stats.n == 5
        assert 0.0 < stats.min_ms <= stats.median_ms < 1000.0
    only = time_tflite_signatures(two_signature_tflite, signatures=["large"], **FAST)
    assert list(only) == ["large"]


def test_times_one_chosen_signature(two_signature_tflite):
    stats = time_tflite_model(two_signature_tflite, signature="small", num_threads=2, **FAST)
    assert stats.n == 5


def test_signature_must_be_chosen_and_must_exist(two_signature_tflite):
    with pytest.raises(ProfilerError, match="2 signatures"):
        time_tflite_model(two_signature_tflite, **FAST)
    with pytest.raises(ProfilerError, match="no signature 'nope'"):
        time_tflite_model(two_signature_tflite, signature="nope", **FAST)
    with pytest.raises(ProfilerError, match="no signature"):
        time_tflite_signatures(two_signature_tflite, signatures=["small", "nope"], **FAST)
    with pytest.raises(ProfilerError, match="num_threads"):
        time_tflite_model(two_signature_tflite, signature="small", num_threads=0, **FAST)


def test_model_without_signatures_is_timed_through_invoke(two_signature_tflite, tmp_path):
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated", reason="needs the TFLite flatbuffer schema")
    flatbuffers = pytest.importorskip("flatbuffers")
    buf = two_signature_tflite.read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(buf, 0))
    assert [s.signatureKey for s in model.signatureDefs] == [b"small", b"large"]
    model.signatureDefs = None
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    bare = tmp_path / "no_signatures.tflite"
    bare.write_bytes(bytes(builder.Output()))

    assert list_signatures(bare) == []
    assert time_tflite_model(bare, **FAST).n == 5
    assert list(time_tflite_signatures(bare, **FAST)) == [""]


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ProfilerError, match="not found"):
        time_tflite_model(tmp_path / "none.tflite", **FAST)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00garbage" * 64)
    with pytest.raises(ProfilerError) as info:
        time_tflite_model(bad, **FAST)
    assert "\n" not in str(info.value)


def test_versions_and_backend_info():
    info = backend_info(num_threads=1)
    assert info["num_threads"] == 1 and "XNNPACK" in info["op_resolver"]
    assert litert_versions()["ai-edge-litert"]


def test_cli_per_signature_and_whole_model(two_signature_tflite, tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps(
            [
                {"key": "small-only", "path": str(two_signature_tflite), "signature": "small"},
                {"key": "all", "path": str(two_signature_tflite)},
            ]
        )
    )
    out = tmp_path / "litert.jsonl"
    argv = ["--manifest", str(manifest), "--output", str(out), "--warmup", "1", "--repeats", "3", "--min-time", "0"]
    assert main(argv) == 0
    small, whole = read_jsonl(out)
    assert small["key"] == "small-only" and small["signature"] == "small"
    assert small["stats"]["n"] == 3 and small["latency_ms"] == small["stats"]["median_ms"]
    assert set(whole["signatures"]) == {"small", "large"}
    assert whole["signatures"]["large"]["stats"]["n"] == 3
    assert small["backend"]["num_threads"] == 1
    assert main(argv) == 0
    assert len(read_jsonl(out)) == 2  # resumed: nothing re-measured
