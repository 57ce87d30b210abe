"""The seams every stage shares: the one timing loop (``latency/timing.py``), the one runtime layer (backends that both
time and run files, used by export), the device table, and the config-object entry points (search, export,
profile). Real ONNX Runtime and LiteRT; the only stand-in is a timing function handed to the loop, which is what the
loop takes."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from zendeploy.latency.backends import TimingSettings, make_backend
from zendeploy.latency.devices import local_device_for
from zendeploy.latency.timing import FileTimer, Journal, noisy_keys, pass_order, run_pass

pytest.importorskip("onnxruntime", reason="needs the [onnx] extra")

FAST = TimingSettings(warmup_runs=1, min_runs=3, min_time_s=0.0)


def test_run_pass_times_every_key_once_in_the_pass_order_and_skips_what_is_done():
    keys = [f"k{i}" for i in range(12)]
    timed, recorded = [], []
    n = run_pass(keys, 3, lambda k: timed.append(k) or len(k), lambda k, p, st: recorded.append((k, p, st)), seed=5,
                 skip=lambda k, p: k in ("k1", "k7"))
    order = [k for k in pass_order(keys, 5, 3) if k not in ("k1", "k7")]
    assert n == 10 and timed == order and [r[0] for r in recorded] == order
    assert all(p == 3 for _, p, _ in recorded)
    assert pass_order(keys, 5, 3) != pass_order(keys, 5, 4)  # every pass a new order, the same on every host
    assert pass_order(keys, 5, 3) == pass_order(list(keys), 5, 3)


def test_journal_resumes_and_names_noisy_keys(tmp_path):
    path = tmp_path / "j.jsonl"
    j = Journal(path)
    for key, meds in (("steady", (1.0, 1.05)), ("noisy", (1.0, 1.4))):
        for p, m in enumerate(meds):
            j.add({"key": key, "pass": p, "stats": {"median_ms": m}})
    with open(path, "a") as f:
        f.write('{"key": "cut", "pa')  # a line cut by a kill
    again = Journal(path)
    assert again.has("noisy", 1) and not again.has("cut", 0) and again.passes_of("steady") == [0, 1]
    assert noisy_keys(again, ["steady", "noisy"], 0.15, 2) == ["noisy"]


def _onnx_file(tmp_path: Path) -> Path:
    from zendeploy.convert.onnx import export_onnx

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).eval()
    return export_onnx(model, tmp_path / "m.onnx", input_shape=(1, 3, 16, 16))


def test_file_timer_opens_each_file_once_and_times_with_the_backend(tmp_path):
    backend = make_backend("cpu")
    path = _onnx_file(tmp_path)
    opened = []
    real_open = backend.open
    backend.open = lambda p: opened.append(p) or real_open(p)
    timer = FileTimer(backend, {"a": path}, FAST)
    stats = [timer("a") for _ in range(3)]
    assert opened == [path] and all(s.n >= 3 and 0 < s.min_ms <= s.median_ms for s in stats)


def test_backend_function_runs_the_file_like_pytorch(tmp_path):
    from zendeploy.export.runtime import onnx_runner

    path = _onnx_file(tmp_path)
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    direct = make_backend("cpu").function(path)(x)
    assert direct.shape == (1, 8, 16, 16)
    np.testing.assert_array_equal(direct, onnx_runner(path)(x))  # export's runner is the backend's


def test_export_latency_column_goes_through_the_backend_and_the_loop(tmp_path):
    from zendeploy.export.runtime import measure_latency

    lat = measure_latency("onnx", _onnx_file(tmp_path), warmup=1, repeats=3, min_time_s=0.0, passes=3)
    assert lat.runtime == "onnxruntime-cpu" and lat.statistic == make_backend("cpu").pass_statistic
    assert len(lat.pass_mins_ms) == 3 and lat.latency_ms == min(lat.pass_mins_ms)


def test_device_table_names_the_runtime_of_each_format():
    from zendeploy.latency.conversion import converter_for

    assert local_device_for("onnx") == "cpu" and local_device_for("tflite") == "tflite-cpu"
    assert local_device_for("engine") is None  # a TensorRT engine runs on any GPU, no device of this host
    assert converter_for("t4").format == "onnx" and converter_for("pixel", "fp16").precision == "fp16"
    assert converter_for("tflite-cpu").format == "tflite"


# ------------------------------------------------------------------------------------------------- entry points

def test_search_config_equals_the_keyword_call():
    from zendeploy.search import Budgets, SearchConfig, SearchHooks, run_search, search

    kw = dict(resolution=32, population=8, iterations=12, proxy="params", seed=3, top_k=3)
    budgets = Budgets.parse(params="200K")
    a = run_search("resnet", budgets, **kw)
    b = search(SearchConfig("resnet", budgets, **kw), SearchHooks())
    assert a.best.structure == b.best.structure and a.evaluations == b.evaluations
    with pytest.raises(TypeError, match="unexpected keyword argument.*populaton"):
        run_search("resnet", budgets, populaton=8)


def test_export_config_equals_the_keyword_call(tmp_path):
    from zendeploy.export import ExportConfig, export, export_model

    a = export_model("test_tiny_resnet", "onnx", output_dir=tmp_path / "a", measure=False)
    b = export("test_tiny_resnet", ExportConfig("onnx", output_dir=tmp_path / "b", measure=False))
    assert a.ok and b.ok and a.structure == b.structure and a.input_shape == b.input_shape
    assert [(r.format, r.status, r.parity.passed) for r in a.rows] == [(r.format, r.status, r.parity.passed)
                                                                       for r in b.rows]
    assert Path(b.output_dir) == tmp_path / "b" and (tmp_path / "b" / "report.json").is_file()
    with pytest.raises(TypeError, match="unexpected keyword argument.*nwhc"):
        export_model("test_tiny_resnet", "onnx", nwhc=True)


def test_prepare_profile_is_what_the_cli_runs(tmp_path):
    from zendeploy.errors import ProfilerError
    from zendeploy.io import OutputPathError
    from zendeploy.latency.profile_job import ProfileRequest, prepare_profile

    job = prepare_profile(ProfileRequest(grid_networks=2, calibration_networks=0, output=tmp_path / "t.json"))
    assert job.out == tmp_path / "t.json" and job.backend.device == "cpu" and job.plan.units
    assert job.describe().startswith(f"profiling {len(job.plan.units)} units + 0 networks on cpu (onnxruntime)")
    with pytest.raises(ProfilerError, match="--serial is for --device pixel"):
        prepare_profile(ProfileRequest(backend_options={"serial": "abc"}, output=tmp_path / "u.json"))
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(OutputPathError, match="is a folder"):
        prepare_profile(ProfileRequest(grid_networks=2, calibration_networks=0, output=tmp_path / "folder.json"))
    farm = prepare_profile(ProfileRequest(device="t4", grid_networks=2, calibration_networks=0, on_farm=True,
                                          output=tmp_path / "t4.json"))
    assert type(farm.backend).__name__ == "BackendSpec"  # described for the farm's nodes, nothing opened here
    assert json.dumps(farm.space.model_dump())  # plain data


def test_prepare_search_is_what_the_cli_runs(tmp_path):
    from zendeploy.errors import BudgetError, LatencyTableError
    from zendeploy.search import Budgets, SearchRequest, prepare_search, run_search

    kw = dict(population=8, iterations=12, proxy="params", seed=3, top_k=3)
    job = prepare_search(SearchRequest(tmp_path / "run", space="resnet", res=32, params="200K", **kw))
    assert job.hooks.predictor is None and job.hooks.measure_skip_reason == "no latency table was given"
    result, run_dir = job.run()
    same = run_search("resnet", Budgets.parse(params="200K"), resolution=32, **kw)
    assert run_dir == tmp_path / "run" and (run_dir / "report.json").is_file()
    assert result.best.structure == same.best.structure and result.evaluations == same.evaluations

    table = Path(__file__).resolve().parents[1] / "latency_tables" / "cpu-onnxruntime-fp32-b1-resnet-r32.json"
    timed = prepare_search(SearchRequest(tmp_path / "t", space="resnet", res=32, table=table, latency_ms=5))
    assert timed.config.budgets.latency_ms == 5 and timed.hooks.predictor.device == "cpu"
    assert timed.hooks.measure_fn is not None and timed.hooks.on_outside is not None  # a table of this host
    with pytest.raises(BudgetError, match="--latency-ms needs --table"):
        prepare_search(SearchRequest(tmp_path / "u", latency_ms=5))
    with pytest.raises(LatencyTableError, match="measured on 'cpu', not 't4'"):
        prepare_search(SearchRequest(tmp_path / "u", space="resnet", res=32, table=table, device="t4"))
    with pytest.raises(BudgetError, match="--workers sizes the local process pool"):
        prepare_search(SearchRequest(tmp_path / "u", workers=2), scorer=object())


def test_every_long_job_reports_one_progress_event_type(tmp_path):
    from zendeploy.latency.profile import measure_networks
    from zendeploy.progress import ProgressEvent
    from zendeploy.search import Budgets, ProgressInfo, run_search
    from zendeploy.space.structure import parse_structure

    events = []
    nets = [parse_structure("SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)")]
    measure_networks(make_backend("cpu"), nets, 16, num_classes=10, passes=2, timing=FAST, workdir=tmp_path,
                     progress=events.append)
    run_search("resnet", Budgets.parse(params="200K"), resolution=32, population=4, iterations=3, proxy="params",
               progress=events.append)
    assert events and all(isinstance(e, ProgressEvent) for e in events)
    assert [(e.phase, e.done, e.total) for e in events[:3]] == [("convert", 1, 1), ("time", 1, 2), ("time", 2, 2)]
    search = [e for e in events if isinstance(e, ProgressInfo)]
    assert search and all(e.phase == "search" and e.done == e.iteration and e.total == 3 for e in search)

