"""trtexec parsers on real outputs, trtexec argument lists, trtexec orchestration through a fake
trtexec executable, and (only where TensorRT + a GPU exist) the real Python-API path."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import stat
import sys
import textwrap

import pytest

from profilers.common import ProfilerError, TimingStats, read_jsonl
from profilers.tensorrt.parse import (
    TrtexecSummary,
    parse_trtexec_output,
    parse_trtexec_times_json,
    trace_stats,
)
from profilers.tensorrt.run import (
    build_engine,
    build_trtexec_command,
    format_shapes,
    main,
    parse_shape_arg,
    run_trtexec,
    time_engine,
    time_onnx_tensorrt,
)

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "profilers"
HAVE_TRT = importlib.util.find_spec("tensorrt") is not None


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


# ---------------------------------------------------------------------------------------------
# parser on real trtexec outputs

EXPECTED = {
    "trtexec_trt7_jetson_resnet50_fp16.txt": dict(
        summary_format="trt7", tensorrt_version=None, queries=113, throughput_qps=37.0368,
        total_host_walltime_s=3.05102, total_gpu_compute_s=3.04253,
        gpu=(26.7439, 28.9368, 26.925, 26.9075, {99.0: 27.0562}),
        latency=(26.8054, 29.0007, 26.9861, 26.9689, {99.0: 27.1187}),
        end_to_end=(26.8135, 29.0186, 26.9996, 26.9833, {99.0: 27.1382}),
        enqueue=(1.73877, 2.31958, None, 1.80298, {}),
        h2d=None,
    ),
    "trtexec_trt8.6_t4_segformer.txt": dict(
        summary_format="trt8+", tensorrt_version="8.6.1", queries=32, throughput_qps=9.40936,
        total_host_walltime_s=3.40087, total_gpu_compute_s=3.24432,
        gpu=(98.2795, 111.161, 101.385, 100.525, {90.0: 104.257, 95.0: 109.781, 99.0: 111.161}),
        latency=(100.121, 112.963, 103.238, 102.379, {90.0: 106.233, 95.0: 111.637, 99.0: 112.963}),
        end_to_end=None,
        enqueue=(1.86108, 8.1228, 2.60512, 2.33521, {90.0: 3.35931, 95.0: 3.95728, 99.0: 8.1228}),
        h2d=(1.3769, 1.55713, 1.4403, 1.42999, {90.0: 1.46838, 95.0: 1.5542, 99.0: 1.55713}),
    ),
    "trtexec_trt10.7_rtx4090_cudagraph.txt": dict(
        summary_format="trt8+", tensorrt_version="10.7.0", queries=101, throughput_qps=32.7494,
        total_host_walltime_s=3.08403, total_gpu_compute_s=3.05129,
        gpu=(30.1056, 31.0457, 30.2108, 30.1722, {90.0: 30.2061, 95.0: 30.6002, 99.0: 30.9484}),
        latency=(30.7003, 31.6415, 30.8066, 30.7695, {90.0: 30.8008, 95.0: 31.1944, 99.0: 31.5444}),
        end_to_end=None,
        enqueue=(0.00305176, 0.0141602, 0.00393677, 0.00360107, {90.0: 0.00494385, 95.0: 0.00585938, 99.0: 0.00842285}),
        h2d=(0.5896, 0.614014, 0.590921, 0.590332, {90.0: 0.591431, 95.0: 0.592529, 99.0: 0.602051}),
    ),
    "trtexec_trt10.16_rtx6000ada_cookbook.txt": dict(
        summary_format="trt8+", tensorrt_version="10.16.0", queries=55177, throughput_qps=18392.0,
        total_host_walltime_s=3.00005, total_gpu_compute_s=1.84486,
        gpu=(0.0266113, 0.7229, 0.0334352, 0.0297852, {90.0: 0.0378418, 95.0: 0.0429688, 99.0: 0.0952148}),
        latency=(0.0334473, 0.882324, 0.0431899, 0.0386963, {90.0: 0.0480957, 95.0: 0.0548096, 99.0: 0.144043}),
        end_to_end=None,
        enqueue=(0.0222168, 0.714111, 0.0286857, 0.0253906, {90.0: 0.034668, 95.0: 0.0402832, 99.0: 0.0578613}),
        h2d=(0.00268555, 0.265503, 0.00441713, 0.00390625, {90.0: 0.00524902, 95.0: 0.00610352, 99.0: 0.00952148}),
    ),
}


def _metric_tuple(metric):
    if metric is None:
        return None
    return (metric.min_ms, metric.max_ms, metric.mean_ms, metric.median_ms, dict(metric.percentiles))


def test_every_trtexec_fixture_is_covered():
    assert sorted(p.name for p in FIXTURES.glob("trtexec_*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_trtexec_parser_reads_the_exact_numbers(name):
    s = parse_trtexec_output(fixture_text(name))
    want = EXPECTED[name]
    assert isinstance(s, TrtexecSummary)
    for field in ("summary_format", "tensorrt_version", "queries", "throughput_qps", "total_host_walltime_s",
                  "total_gpu_compute_s"):
        assert getattr(s, field) == want[field], field
    assert _metric_tuple(s.gpu_compute) == want["gpu"]
    assert _metric_tuple(s.latency) == want["latency"]
    assert _metric_tuple(s.end_to_end) == want["end_to_end"]
    assert _metric_tuple(s.enqueue) == want["enqueue"]
    assert _metric_tuple(s.h2d) == want["h2d"]
    assert s.latency_ms == want["gpu"][3] and s.statistic == "median"
    json.dumps(s.to_dict())


def test_trtexec_parser_uses_the_last_of_several_summaries():
    first = fixture_text("trtexec_trt8.6_t4_segformer.txt")
    second = fixture_text("trtexec_trt10.7_rtx4090_cudagraph.txt")
    assert parse_trtexec_output(first + second).gpu_compute.median_ms == 30.1722
    assert parse_trtexec_output(second + first).gpu_compute.median_ms == 100.525


def test_trtexec_percentile_99_only_format():
    text = textwrap.dedent(
        """\
        [05/09/2022-06:27:25] [I] === Performance summary ===
        [05/09/2022-06:27:25] [I] Throughput: 476.66 qps
        [05/09/2022-06:27:25] [I] Latency: min = 2.05615 ms, max = 2.59482 ms, mean = 2.09467 ms, median = 2.08276 ms, percentile(99%) = 2.58971 ms
        [05/09/2022-06:27:25] [I] End-to-End Host Latency: min = 2.05615 ms, max = 2.59482 ms, mean = 2.09467 ms, median = 2.08276 ms, percentile(99%) = 2.58971 ms
        [05/09/2022-06:27:25] [I] H2D Latency: min = 0 ms, max = 0 ms, mean = 0 ms, median = 0 ms, percentile(99%) = 0 ms
        [05/09/2022-06:27:25] [I] GPU Compute Time: min = 2.05615 ms, max = 2.59482 ms, mean = 2.09467 ms, median = 2.08276 ms, percentile(99%) = 2.58971 ms
        """
    )
    s = parse_trtexec_output(text)
    assert s.gpu_compute.percentiles == {99.0: 2.58971}
    assert s.end_to_end.median_ms == 2.08276 and s.h2d.max_ms == 0.0


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("random garbage\nnothing to see\n", "no 'GPU Compute Time' summary"),
        (
            "&&&& RUNNING TensorRT.trtexec [TensorRT v101300] # trtexec --onnx=m.onnx\n"
            "[08/17/2025-20:09:54] [E] Error[3]: In node -1 (parseFromFile): INVALID_VALUE: Input file cannot be found\n"
            "[08/17/2025-20:09:54] [E] Engine set up failed\n"
            "&&&& FAILED TensorRT.trtexec [TensorRT v101300] # trtexec --onnx=m.onnx\n",
            "trtexec failed: Error\\[3\\]",
        ),
        ("[I] === Performance summary ===\n[I] GPU Compute Time: min = 1 ms, max = 2 ms\n", "no complete"),
        ("[I] === Performance summary ===\n[I] GPU Compute Time: min = 3 ms, max = 2 ms, mean = 2 ms, median = 9 ms\n",
         "inconsistent"),
        ("[I] === Performance summary ===\n[I] GPU Compute Time: min = 0 ms, max = 0 ms, mean = 0 ms, median = 0 ms\n",
         "median of 0 ms"),
    ],
)
def test_trtexec_parser_errors(text, match):
    with pytest.raises(ProfilerError, match=match) as info:
        parse_trtexec_output(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "name, has_e2e",
    [("trtexec_export_times_trt10_layout.json", False), ("trtexec_export_times_trt7_layout.json", True)],
)
def test_export_times_json_both_layouts(name, has_e2e):
    traces = parse_trtexec_times_json(fixture_text(name))
    assert [t.compute_ms for t in traces] == [1.25, 1.5, 1.0, 1.75, 1.125]
    assert all(t.h2d_ms == 0.25 and t.d2h_ms == 0.125 for t in traces)
    assert traces[0].latency_ms == 1.625
    assert (traces[0].end_to_end_ms is not None) == has_e2e
    stats = trace_stats(traces)
    assert stats == TimingStats.from_samples([1.25, 1.5, 1.0, 1.75, 1.125])
    assert stats.median_ms == 1.25
    assert trace_stats(traces, "latency_ms").median_ms == 1.625


@pytest.mark.parametrize(
    "data, match",
    [("nope", "not valid JSON"), ("[]", "no iterations"), ('[{"computeMs": 1}]', "none of"),
     ('[{"h2dMs": 0, "computeMs": "x", "d2hMs": 0}]', "not a number"), ("[1]", "not an object")],
)
def test_export_times_json_errors(data, match):
    with pytest.raises(ProfilerError, match=match):
        parse_trtexec_times_json(data)


# ---------------------------------------------------------------------------------------------
# argument lists


def test_trtexec_command_has_every_flag():
    args = build_trtexec_command(
        "/models/net.onnx", trtexec="/usr/src/tensorrt/bin/trtexec", fp16=True, int8=True,
        shapes={"input": (4, 3, 224, 224)}, warmup_ms=500, iterations=200, duration_s=2.5, avg_runs=10,
        use_cuda_graph=True, no_data_transfers=True, use_spin_wait=True, timing_cache_file="/cache/trt.cache",
        save_engine="/engines/net.plan", export_times="/tmp/times.json", device=1, extra_args=["--verbose"],
    )
    assert args == [
        "/usr/src/tensorrt/bin/trtexec",
        "--onnx=/models/net.onnx",
        "--fp16",
        "--int8",
        "--shapes=input:4x3x224x224",
        "--warmUp=500",
        "--iterations=200",
        "--duration=2.5",
        "--avgRuns=10",
        "--useCudaGraph",
        "--noDataTransfers",
        "--useSpinWait",
        "--timingCacheFile=/cache/trt.cache",
        "--saveEngine=/engines/net.plan",
        "--exportTimes=/tmp/times.json",
        "--device=1",
        "--verbose",
    ]
    assert build_trtexec_command(load_engine="e.plan", warmup_ms=None) == ["trtexec", "--loadEngine=e.plan"]
    assert build_trtexec_command("m.onnx", duration_s=3.0)[-1] == "--duration=3"
    # int8 is built with fp16 fallback (layers without an int8 kernel run in fp16, as deployments build them)
    assert build_trtexec_command("m.onnx", int8=True, warmup_ms=None) == ["trtexec", "--onnx=m.onnx", "--fp16",
                                                                           "--int8"]


@pytest.mark.parametrize(
    "args, kwargs",
    [((), {}), (("m.onnx",), {"load_engine": "e.plan"}), (("m.onnx",), {"iterations": 0}),
     (("m.onnx",), {"warmup_ms": -1}), (("m.onnx",), {"shapes": {"x": (1, 0)}})],
)
def test_trtexec_command_rejects_bad_options(args, kwargs):
    with pytest.raises(ProfilerError):
        build_trtexec_command(*args, **kwargs)


def test_shape_specs():
    assert parse_shape_arg("input:1x3x224x224,mask:1x224x224") == {"input": (1, 3, 224, 224), "mask": (1, 224, 224)}
    assert parse_shape_arg("'input:0':1x3") == {"input:0": (1, 3)}
    assert format_shapes({"input:0": (1, 3), "y": [2]}) == "'input:0':1x3,y:2"
    with pytest.raises(ProfilerError):
        parse_shape_arg("input=1x3")


# ---------------------------------------------------------------------------------------------
# run_trtexec against a fake trtexec executable

FAKE_TRTEXEC = textwrap.dedent(
    """\
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_TRTEXEC_LOG"], "a") as f:
        f.write(json.dumps(args) + "\\n")
    if os.environ.get("FAKE_TRTEXEC_FAIL"):
        print("&&&& RUNNING TensorRT.trtexec [TensorRT v100700] # trtexec " + " ".join(args))
        print("[11/20/2025-10:00:00] [E] Error[4]: [network.cpp::validate::3100] Error Code 4: Internal Error (input: dynamic input is missing dimensions in profile 0.)")
        print("&&&& FAILED TensorRT.trtexec [TensorRT v100700] # trtexec " + " ".join(args))
        sys.exit(1)
    for a in args:
        if a.startswith("--exportTimes="):
            with open(os.environ["FAKE_TRTEXEC_TIMES"]) as src, open(a.split("=", 1)[1], "w") as dst:
                dst.write(src.read())
        if a.startswith("--saveEngine="):
            with open(a.split("=", 1)[1], "wb") as dst:
                dst.write(b"fake plan")
    with open(os.environ["FAKE_TRTEXEC_OUTPUT"]) as f:
        sys.stdout.write(f.read())
    """
)


@pytest.fixture
def fake_trtexec(tmp_path, monkeypatch):
    script = tmp_path / "trtexec"
    script.write_text(f"#!{sys.executable}\n" + FAKE_TRTEXEC)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "trtexec_calls.jsonl"
    monkeypatch.setenv("FAKE_TRTEXEC_LOG", str(log))
    monkeypatch.setenv("FAKE_TRTEXEC_OUTPUT", str(FIXTURES / "trtexec_trt10.7_rtx4090_cudagraph.txt"))
    monkeypatch.setenv("FAKE_TRTEXEC_TIMES", str(FIXTURES / "trtexec_export_times_trt10_layout.json"))

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return str(script), calls


def test_run_trtexec_parses_summary_and_times(fake_trtexec, tmp_path):
    trtexec, calls = fake_trtexec
    result = run_trtexec("/models/net.onnx", trtexec=trtexec, fp16=True, shapes={"input": (1, 3, 768, 1152)},
                         iterations=100, use_cuda_graph=True, timing_cache_file=str(tmp_path / "c.cache"))
    (argv,) = calls()
    assert argv[0] == "--onnx=/models/net.onnx" and "--fp16" in argv and "--useCudaGraph" in argv
    assert "--shapes=input:1x3x768x1152" in argv and "--iterations=100" in argv
    assert any(a.startswith("--exportTimes=") for a in argv)
    assert result.command[0] == trtexec and result.command[1:] == argv
    assert result.summary.gpu_compute.median_ms == 30.1722
    assert result.compute_stats.median_ms == 1.25  # from the exported per-iteration times
    assert result.latency_ms == 1.25
    export = next(a for a in argv if a.startswith("--exportTimes=")).split("=", 1)[1]
    assert not pathlib.Path(export).exists()  # temporary trace removed
    json.dumps(result.to_dict())
    no_trace = run_trtexec("/models/net.onnx", trtexec=trtexec, collect_times=False)
    assert no_trace.compute_stats is None and no_trace.latency_ms == 30.1722


def test_run_trtexec_failures_are_one_line(fake_trtexec, monkeypatch, tmp_path):
    trtexec, _ = fake_trtexec
    monkeypatch.setenv("FAKE_TRTEXEC_FAIL", "1")
    with pytest.raises(ProfilerError) as info:
        run_trtexec("/models/net.onnx", trtexec=trtexec)
    assert "\n" not in str(info.value)
    assert "exited with 1" in str(info.value) and "dynamic input is missing dimensions" in str(info.value)
    with pytest.raises(ProfilerError, match="trtexec not found"):
        run_trtexec("/models/net.onnx", trtexec=str(tmp_path / "no-trtexec"))


def test_cli_trtexec_mode_writes_and_resumes(fake_trtexec, tmp_path):
    trtexec, calls = fake_trtexec
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"key": "a/b c", "path": "net.onnx", "shapes": {"input": [2, 3, 8, 8]}}]))
    out = tmp_path / "trt.jsonl"
    argv = ["--mode", "trtexec", "--trtexec", trtexec, "--manifest", str(manifest), "--output", str(out),
            "--fp16", "--timing-cache", str(tmp_path / "trt.cache"), "--engine-dir", str(tmp_path / "engines"),
            "--repeats", "50", "--min-time", "2", "--no-data-transfers"]
    assert main(argv) == 0
    (record,) = read_jsonl(out)
    assert record["key"] == "a/b c" and record["latency_ms"] == 1.25
    assert record["stats"]["median_ms"] == 1.25
    assert record["summary"]["gpu_compute"]["median_ms"] == 30.1722
    assert record["backend"]["name"] == "tensorrt-trtexec" and record["backend"]["fp16"] is True
    (args,) = calls()
    assert f"--onnx={tmp_path / 'net.onnx'}" in args and "--shapes=input:2x3x8x8" in args
    assert "--iterations=50" in args and "--duration=2" in args and "--noDataTransfers" in args
    assert f"--timingCacheFile={tmp_path / 'trt.cache'}" in args
    assert f"--saveEngine={tmp_path / 'engines' / 'a_b_c.plan'}" in args
    assert main(argv) == 0 and len(calls()) == 1  # resumed


# ---------------------------------------------------------------------------------------------
# TensorRT Python API


@pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here; the 'not installed' path cannot be observed")
def test_api_says_tensorrt_is_not_installed(tmp_path):
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"x")
    for call in (lambda: build_engine(onnx_file), lambda: time_engine(b"plan"),
                 lambda: time_onnx_tensorrt(onnx_file)):
        with pytest.raises(ProfilerError, match="TensorRT is not installed"):
            call()


def test_cli_api_mode_without_tensorrt_exits_1(tmp_path, capsys):
    if HAVE_TRT:
        pytest.skip("TensorRT is installed here")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"key": "a", "path": "m.onnx"}]))
    assert main(["--mode", "api", "--manifest", str(manifest), "--output", str(tmp_path / "o.jsonl")]) == 1
    assert "error: TensorRT is not installed" in capsys.readouterr().err


def _tiny_onnx(path):
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["h"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["h"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 32, 32])], [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_real_tensorrt_build_and_cuda_event_timing(tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (no NVIDIA GPU stack here)")
    try:
        from cuda.bindings import runtime as cudart  # noqa: F401
    except ImportError:
        pytest.importorskip("cuda.cudart", reason="cuda-python is not installed")
    onnx_file = _tiny_onnx(tmp_path / "tiny.onnx")
    cache = tmp_path / "timing.cache"
    stats = time_onnx_tensorrt(onnx_file, fp16=True, timing_cache_path=cache, engine_path=tmp_path / "e.plan",
                               input_shapes={"x": (2, 3, 32, 32)}, warmup=5, repeats=20, min_time_s=0.0)
    assert stats.n == 20 and 0.0 < stats.min_ms <= stats.median_ms
    assert cache.stat().st_size > 0 and (tmp_path / "e.plan").stat().st_size > 0
    again = time_engine(tmp_path / "e.plan", input_shapes={"x": (2, 3, 32, 32)}, warmup=2, repeats=5, min_time_s=0.0)
    assert again.n == 5


# ----------------------------------------------------------------- version gates and GPU identification

@pytest.mark.parametrize("version,ok", [("8.6.1", True), ("10.7.0", True), ("10.16.0.72", True), ("11.4.0", False),
                                        ("7.2.3", False), ("8.4.3", False), (None, True)])
def test_tensorrt_version_gate(version, ok):
    from profilers.tensorrt.run import check_tensorrt_version

    if ok:
        check_tensorrt_version(version)
    else:
        with pytest.raises(ProfilerError, match=r"not supported.*tensorrt-cu12>=10,<11") as info:
            check_tensorrt_version(version)
        assert "\n" not in str(info.value)


def test_trtexec_of_tensorrt_11_is_refused_in_one_line(fake_trtexec, monkeypatch, tmp_path):
    # the banner format is trtexec's own ("&&&& RUNNING TensorRT.trtexec [TensorRT v100700]", as in the fixtures);
    # 110400 is what TensorRT 11.4 would print. trtexec 11 rejects --fp16, so the run fails: the line names the cause.
    out = tmp_path / "trt11.txt"
    out.write_text("&&&& RUNNING TensorRT.trtexec [TensorRT v110400] # trtexec --onnx=net.onnx --fp16\n"
                   "[E] Unknown option: --fp16\n&&&& FAILED TensorRT.trtexec [TensorRT v110400]\n")
    trtexec, _ = fake_trtexec
    monkeypatch.setenv("FAKE_TRTEXEC_OUTPUT", str(out))
    with pytest.raises(ProfilerError, match=r"trtexec of TensorRT 11\.4\.0 is not supported"):
        run_trtexec("/models/net.onnx", trtexec=trtexec, fp16=True)


def test_static_onnx_inputs_get_no_shapes(tmp_path):
    pytest.importorskip("onnx")
    from profilers.tensorrt.run import dynamic_inputs

    import onnx

    dynamic = _tiny_onnx(tmp_path / "dynamic.onnx")  # batch "N"
    assert dynamic_inputs(dynamic) == {"x"}
    model = onnx.load(dynamic)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # what zendeploy exports: every dim fixed
    onnx.save(model, tmp_path / "static.onnx")
    assert dynamic_inputs(tmp_path / "static.onnx") == set()


@pytest.mark.parametrize("name,cc,ok", [("Tesla T4", (7, 5), True), ("NVIDIA T4", None, True),
                                        ("NVIDIA T400", (7, 5), False), ("Quadro T4000", (7, 5), False),
                                        ("GRID T4-8Q", (7, 5), False), ("Tesla T4", (8, 0), False),
                                        ("NVIDIA A10G", (8, 6), False)])
def test_t4_identification(name, cc, ok):
    from zendeploy.latency.remote import is_t4

    assert is_t4(name, cc) is ok


def test_first_cuda_failure_names_an_old_driver():
    from profilers.tensorrt.driver import cuda_failure_reason

    old = cuda_failure_reason("cudaGetDeviceProperties", "cudaErrorInsufficientDriver", 12020, 13000)
    assert "driver supports CUDA 12.2, older than the CUDA 13.0 runtime" in old
    assert 'pip install "cuda-python>=12,<13" "tensorrt-cu12>=10,<11"' in old
    assert "no NVIDIA driver" in cuda_failure_reason("cudaGetDeviceProperties", "cudaErrorNoDevice", 0, 12060)


def test_tensorrt_that_cannot_start_names_the_driver_and_the_build():
    """trt.Builder / trt.Runtime raise a bare TypeError when CUDA does not start (a CUDA 13 TensorRT on a driver
    older than 580): the line names both and the pip command that matches the driver."""
    from profilers.tensorrt.driver import tensorrt_init_failure

    exc = TypeError("pybind11::init(): factory function returned nullptr")
    line = tensorrt_init_failure(exc, 12040, 13)
    assert "CUDA 13 build (tensorrt-cu13)" in line and "supports only CUDA 12.4" in line
    assert 'pip install "cuda-python>=12,<13" "tensorrt-cu12>=10,<11"' in line and "\n" not in line
    assert "no NVIDIA driver" in tensorrt_init_failure(exc, 0, 12, "Runtime")
    other = tensorrt_init_failure(exc, 12080, 12)  # a matching driver: the cause is elsewhere, say what is known
    assert "factory function returned nullptr" in other and "driver CUDA 12.8" in other


def test_set_device_on_this_host_fails_in_one_line_naming_the_cause():
    from profilers.tensorrt.driver import set_device

    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        pytest.skip("cuda-python is not installed (pip install \"zendeploy[tensorrt]\")")
    err, count = cudart.cudaGetDeviceCount()
    if int(err) == 0 and count > 0:
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(ProfilerError) as info:
        set_device(cudart, 0)
    assert "\n" not in str(info.value) and "cudaSetDevice" in str(info.value)


def test_nvml_finds_the_timed_gpu_by_its_pci_bus_id():
    """NVML orders GPUs by PCI bus, CUDA fastest first (and after CUDA_VISIBLE_DEVICES): the reading must be of the
    GPU that ran the unit, found by bus id. cudart is a stand-in here (no GPU); NVML is the real library."""
    from profilers.tensorrt.gpu_state import cuda_pci_bus_id, read_gpu_state

    class Cudart:
        def cudaDeviceGetPCIBusId(self, length, device):
            assert length >= 13
            return 0, b"0000:3B:00.0\x00\x00\x00"

    assert cuda_pci_bus_id(Cudart(), 1) == "0000:3B:00.0"
    state = read_gpu_state(0, pci_bus_id="0000:3B:00.0")
    if state["available"]:
        assert state["gpu"] == {"pci_bus_id": "0000:3B:00.0"}
    else:  # no driver here: one line saying so
        assert "\n" not in state["reason"]
    try:
        from cuda.bindings import runtime as real
    except ImportError:
        return
    err, count = real.cudaGetDeviceCount()
    if not (int(err) == 0 and count > 0):
        assert cuda_pci_bus_id(real, 0) is None  # no driver: CUDA cannot tell, NVML falls back to the index


def test_trtexec_11_banners_as_printed_are_read_and_refused():
    """Banners of trtexec 11 as published ("&&&& RUNNING TensorRT.trtexec [TensorRT v110100] [b106]" in user install
    notes for 11.1, "[I] TensorRT version: 11.2.1" in its version line): read as 11.x, so the gate refuses them."""
    from profilers.tensorrt.parse import _version_from
    from profilers.tensorrt.run import check_tensorrt_version

    for text, version in (("&&&& RUNNING TensorRT.trtexec [TensorRT v110100] [b106] # trtexec --help", "11.1.0"),
                          ("[09/25/2026-10:00:00] [I] TensorRT version: 11.2.1", "11.2.1")):
        assert _version_from(text) == version
        with pytest.raises(ProfilerError, match=rf"^trtexec of TensorRT {version} is not supported"):
            check_tensorrt_version(version, "trtexec of TensorRT")
