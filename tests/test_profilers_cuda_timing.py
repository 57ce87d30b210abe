"""The T4 runner's GPU-side pieces up to the hardware boundary: CUDA-graph timing of a stream, the GPU state read
through NVML, and plan names. The cuda-python runtime is the boundary (every call needs a GPU): the logic is
exercised against a recording stand-in with cuda-python's conventions (``(cudaError_t, *values)`` tuples), and the
real bindings are checked for every function the timer calls and for the one-line error they give without a GPU.
NVML is the real ``pynvml``."""

from __future__ import annotations

import enum
import importlib.util
import re
import time
from pathlib import Path

import pytest

from profilers.common import ProfilerError
from profilers.tensorrt.cuda_timing import time_on_stream
from profilers.tensorrt.gpu_state import read_gpu_state
from profilers.tensorrt.run import plan_name

ROOT = Path(__file__).resolve().parents[1]


class Err(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorStreamCaptureInvalidated = 901


class Mode(enum.IntEnum):
    cudaStreamCaptureModeGlobal = 0
    cudaStreamCaptureModeThreadLocal = 1


class RecordingCudart:
    """cuda-python's runtime calling conventions; every call is recorded, GPU time per launch is ``gpu_ms``."""

    cudaError_t = Err
    cudaStreamCaptureMode = Mode

    def __init__(self, gpu_ms=0.5, fail=()):
        self.calls: list[str] = []
        self.gpu_ms, self.fail = gpu_ms, set(fail)

    def __getattr__(self, name):
        if not name.startswith("cuda"):
            raise AttributeError(name)

        def call(*args):
            self.calls.append(name)
            if name in self.fail:
                return (Err.cudaErrorStreamCaptureInvalidated,)
            values = {"cudaEventCreate": (f"event{len(self.calls)}",), "cudaStreamEndCapture": ("graph",),
                      "cudaGraphInstantiate": ("graph_exec",), "cudaEventElapsedTime": (self.gpu_ms,)}
            return (Err.cudaSuccess, *values.get(name, ()))

        return call


def _enqueue(cudart, *, host_ms=0.0, fail_in_capture=False):
    state = {"n": 0}

    def enqueue():
        state["n"] += 1
        cudart.calls.append("enqueue")
        if fail_in_capture and "cudaStreamBeginCapture" in cudart.calls and "cudaStreamEndCapture" not in cudart.calls:
            raise ProfilerError("TensorRT execute_async_v3 failed")
        if host_ms:
            time.sleep(host_ms / 1000)

    return enqueue, state


def test_warm_up_then_one_capture_then_timed_graph_replays():
    cudart = RecordingCudart(gpu_ms=0.5)
    enqueue, state = _enqueue(cudart)
    timed = time_on_stream(cudart, "stream", enqueue, warmup=3, repeats=4, min_time_s=0.0)
    assert timed.cuda_graph and timed.graph_note is None and timed.stats.n == 4 and timed.stats.median_ms == 0.5
    assert state["n"] == 3 + 1  # the warm-up, then the one captured enqueue; replays never enqueue again
    calls = cudart.calls
    assert calls[:6] == ["enqueue", "cudaStreamSynchronize"] * 3
    assert calls[6:10] == ["cudaStreamBeginCapture", "enqueue", "cudaStreamEndCapture", "cudaGraphInstantiate"]
    assert calls.count("cudaGraphLaunch") == 4 and calls.count("cudaEventElapsedTime") == 4
    sample = calls.index("cudaGraphLaunch")
    assert calls[sample - 1:sample + 4] == ["cudaEventRecord", "cudaGraphLaunch", "cudaEventRecord",
                                          "cudaEventSynchronize", "cudaEventElapsedTime"]
    assert calls[-4:] == ["cudaEventDestroy", "cudaEventDestroy", "cudaGraphExecDestroy", "cudaGraphDestroy"]
    assert timed.enqueue_ms is not None and timed.enqueue_bound is False


def test_a_failed_capture_falls_back_to_plain_enqueues_and_says_so():
    cudart = RecordingCudart(fail={"cudaGraphInstantiate"})
    enqueue, state = _enqueue(cudart)
    timed = time_on_stream(cudart, "stream", enqueue, warmup=2, repeats=3, min_time_s=0.0)
    assert not timed.cuda_graph and "cudaGraphInstantiate" in timed.graph_note
    assert "cudaGraphLaunch" not in cudart.calls and state["n"] == 2 + 1 + 3  # the samples are enqueues
    assert "cudaGraphDestroy" in cudart.calls and "cudaGraphExecDestroy" not in cudart.calls


def test_capture_always_ends_even_when_the_enqueue_fails_inside_it():
    cudart = RecordingCudart()
    enqueue, _ = _enqueue(cudart, fail_in_capture=True)
    timed = time_on_stream(cudart, "stream", enqueue, warmup=1, repeats=2, min_time_s=0.0)
    assert "cudaStreamEndCapture" in cudart.calls and not timed.cuda_graph and "execute_async_v3" in timed.graph_note


def test_a_unit_whose_enqueue_outlasts_its_kernels_is_flagged():
    cudart = RecordingCudart(gpu_ms=0.05)
    enqueue, _ = _enqueue(cudart, host_ms=2.0)  # the host needs >= 2 ms to submit 0.05 ms of GPU work
    timed = time_on_stream(cudart, "stream", enqueue, warmup=2, repeats=2, min_time_s=0.0)
    assert timed.enqueue_ms >= 2.0 and timed.enqueue_bound


def test_graphs_can_be_turned_off():
    cudart = RecordingCudart()
    enqueue, state = _enqueue(cudart)
    timed = time_on_stream(cudart, "stream", enqueue, warmup=1, repeats=2, min_time_s=0.0, cuda_graph=False)
    assert not timed.cuda_graph and timed.graph_note == "CUDA graphs turned off"
    assert "cudaStreamBeginCapture" not in cudart.calls and state["n"] == 3


def _real_cudart():
    try:
        from cuda.bindings import runtime
    except ImportError:
        pytest.skip("cuda-python is not installed (pip install \"zendeploy[tensorrt]\")")
    return runtime


def test_the_real_cuda_bindings_have_every_call_the_timer_makes():
    cudart = _real_cudart()
    source = (ROOT / "profilers" / "tensorrt" / "cuda_timing.py").read_text()
    used = set(re.findall(r"cudart\.(cuda\w+)", source))
    assert {"cudaStreamBeginCapture", "cudaGraphInstantiate", "cudaGraphLaunch"} <= used
    assert sorted(n for n in used if not hasattr(cudart, n)) == []
    assert hasattr(cudart.cudaStreamCaptureMode, "cudaStreamCaptureModeThreadLocal")


def test_without_a_gpu_the_real_bindings_fail_in_one_line():
    cudart = _real_cudart()
    err, count = cudart.cudaGetDeviceCount()
    if err == cudart.cudaError_t.cudaSuccess and count > 0:
        pytest.skip("this machine has a CUDA GPU")
    enqueue, _ = _enqueue(RecordingCudart())
    with pytest.raises(ProfilerError, match=r"^CUDA error in cudaStreamSynchronize: cuda\w+$"):
        time_on_stream(cudart, 0, enqueue, warmup=1, repeats=1, min_time_s=0.0)


def test_gpu_state_through_real_nvml():
    if importlib.util.find_spec("pynvml") is None:
        assert read_gpu_state() == {"available": False,
                                    "reason": "nvidia-ml-py is not installed (pip install nvidia-ml-py)"}
        return
    state = read_gpu_state(0)
    if state["available"]:  # a machine with an NVIDIA driver
        assert state["sm_clock_mhz"] > 0 and "temperature_c" in state and isinstance(state["throttle"], list)
    else:
        assert state["reason"].startswith("NVML: ") and "\n" not in state["reason"]


def test_plan_names_follow_the_model_bytes_and_the_tensorrt_version(tmp_path):
    a = tmp_path / "unit.onnx"
    a.write_bytes(b"model one")
    name = plan_name(a, "basic k3/s1", "fp16", "10.7.0.23")
    assert re.fullmatch(r"basic_k3_s1\.fp16\.[0-9a-f]{12}\.trt10\.7\.0\.23\.plan", name)
    assert plan_name(a, "basic k3/s1", "fp16", "10.8.0") != name  # an upgraded TensorRT builds anew
    a.write_bytes(b"model two")
    assert plan_name(a, "basic k3/s1", "fp16", "10.7.0.23") != name  # so does a changed unit


def test_gpu_check_script_reports_each_part_and_exits_cleanly(tmp_path, capsys):
    """tools/gpu_check.py is what runs on a lent GPU machine; without one every part says why in one line."""
    import importlib.util as iu
    import json

    spec = iu.spec_from_file_location("gpu_check", ROOT / "tools" / "gpu_check.py")
    gpu_check = iu.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    out = tmp_path / "report.json"
    assert gpu_check.main(["--sizes", "64", "--repeats", "5", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"identity", "nvml", "timing"}
    printed = capsys.readouterr().out
    assert printed.startswith("GPU: ") and "NVML: " in printed
    if not report["nvml"]["available"]:
        assert report["nvml"]["reason"] in printed
