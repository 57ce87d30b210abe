"""Remote devices up to the hardware boundary: the phone path with a test double for adb + phone (the only double),
real TFLite conversion of the units; the T4 path refuses clearly where TensorRT is absent."""

import pytest

from zendeploy.errors import MissingExtraError, ProfilerError
from zendeploy.latency.backends import TimingSettings, make_backend
from zendeploy.latency.profile import ProfileSettings, plan_profile, profile_table
from zendeploy.latency.schema import SpaceInfo
from zendeploy.latency.tables import load_table
from zendeploy.space.structure import parse_structure

from test_profilers_adb import FakeTransport, fixture_text  # the adb boundary double of the profiler tests


def test_pixel_profile_through_adb_double(tmp_path):
    pytest.importorskip("litert_torch", reason="needs the [tflite] extra")
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF fake arm64 binary")
    fake = FakeTransport("R5CT1234", fixture_text("benchmark_model_tflite2.18_am62x_cpu.txt"))
    backend = make_backend("pixel", serial="R5CT1234", transport=fake, benchmark_binary=str(binary), threads=4)
    net = parse_structure("SuperConvK3BNRELU(3,8,1,1)SuperConvK1BNRELU(8,16,1,1)")
    plan = plan_profile([net], [], 8, num_classes=10, corners=False)
    settings = ProfileSettings(passes=1, timing=TimingSettings(warmup_runs=2, min_runs=7, min_time_s=0.5))
    table = profile_table(backend, plan, tmp_path / "pixel.json",
                          space=SpaceInfo(name="resnet", resolution=8, num_classes=10), settings=settings)
    runs = [args for kind, args in fake.calls if kind == "run" and any(a.endswith("/benchmark_model") for a in args[1:4])
            and any(a.startswith("--graph=") for a in args)]
    assert len(runs) == len(plan.units)  # one pass: every unit timed once
    for args in runs:
        assert args[0] == "shell" and any(a.startswith("--graph=/data/local/tmp/") for a in args)
        assert args[1:3] == ["taskset", "f0"]  # 4 threads on a Tensor G2: the X1 and A78 cores, cpu4-7
        assert "--num_threads=4" in args and "--warmup_runs=2" in args and "--num_runs=7" in args
    pushed = [args[0] for kind, args in fake.calls if kind == "push"]
    assert str(binary) in pushed and sum(p.endswith(".tflite") for p in pushed) == len(runs)
    loaded = load_table(tmp_path / "pixel.json")
    assert all(e.latency_ms == pytest.approx(1239.807) for e in loaded.entries)  # the fixture's median, in ms
    p = loaded.provenance
    assert p.device == "pixel" and "Pixel 7" in p.device_name and "GS201" in p.device_name
    assert p.input_layout == "NHWC" and p.threads == 4
    assert p.affinity.startswith("taskset f0 (cpu4,5,6,7") and "sha256 " in p.backend_version
    assert "build google/panther" in p.backend_version
    (state,) = p.host["device_state"]  # read after the one pass
    assert state["pass"] == 0 and state["thermal_status"] == 0 and state["cpu_freq_khz"]["7"] > 0


def test_pixel_table_says_when_the_tool_printed_no_median(tmp_path):
    """TFLite 2.4's benchmark_model prints count/avg/std/min/max only: the entries hold its mean under median_ms,
    and the table's provenance says so."""
    pytest.importorskip("litert_torch", reason="needs the [tflite] extra")
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF fake arm64 binary")
    fake = FakeTransport("R5CT1234", fixture_text("benchmark_model_tflite2.4_android_mi11.txt"))
    backend = make_backend("pixel", serial="R5CT1234", transport=fake, benchmark_binary=str(binary))
    plan = plan_profile([parse_structure("SuperConvK3BNRELU(3,8,1,1)SuperConvK1BNRELU(8,16,1,1)")], [], 8,
                        num_classes=10, corners=False)
    settings = ProfileSettings(passes=1, timing=TimingSettings(warmup_runs=1, min_runs=3, min_time_s=0.0))
    table = profile_table(backend, plan, tmp_path / "old.json", space=SpaceInfo(name="resnet", resolution=8,
                                                                                num_classes=10), settings=settings)
    n = len(plan.units)
    assert any(f"printed no median for {n} of {n} timings" in note for note in table.provenance.notes)
    assert all(e.latency_ms == pytest.approx(249.684) for e in table.entries)  # the mean, said to be one


def test_pixel_needs_binary_and_serial(monkeypatch):
    pytest.importorskip("litert_torch", reason="needs the [tflite] extra")
    monkeypatch.delenv("ZENDEPLOY_BENCHMARK_MODEL", raising=False)
    with pytest.raises(ProfilerError, match="needs a benchmark_model for the phone"):
        make_backend("pixel", serial="X")
    with pytest.raises(ProfilerError, match="needs --serial"):
        make_backend("pixel", benchmark_binary="/bin/true")
    with pytest.raises(ProfilerError, match="unknown delegate 'npu'"):
        make_backend("pixel", serial="X", benchmark_binary="/bin/true", delegate="npu")


def test_t4_without_tensorrt_gives_install_hint():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(MissingExtraError, match=r'pip install "zendeploy\[tensorrt\]"'):
            make_backend("t4")
    else:  # pragma: no cover - only on a TensorRT machine
        pytest.skip("TensorRT is installed: the real path is exercised by running `zendeploy profile --device t4`")


def test_phone_percentiles_are_named_for_what_benchmark_model_printed():
    from zendeploy.latency.remote import phone_p10_p90

    p10, p90, source = phone_p10_p90(1.0, 2.0, 0.9, 3.0, 1.45)
    assert (round(p10, 4), round(p90, 4)) == (1.05, 1.9389) and source == "interpolated from p5 / median / p95"
    p10, p90, source = phone_p10_p90(None, None, 1.0, 2.0, 1.5)
    assert (round(p10, 4), round(p90, 4)) == (1.1, 1.9) and "min / median / max" in source
    assert phone_p10_p90(None, None, None, None, 1.5) == (1.5, 1.5, "not printed (the median stands in)")


def test_t4_backend_keeps_how_each_unit_was_launched():
    """The T4 table says "CUDA graph replays": each timing keeps whether its capture worked and its enqueue time,
    and the table's notes count the timings that were not graph replays or were enqueue-bound. TensorRT and the
    GPU are not here: the runner module is replaced at that boundary by one returning what the CUDA timer returns."""
    from profilers.common import TimingStats
    from profilers.tensorrt.cuda_timing import StreamTiming
    from zendeploy.latency.remote import TensorRTBackend

    results = iter([StreamTiming(TimingStats.from_samples([0.05, 0.06, 0.05]), True, None, 0.02, False),
                    StreamTiming(TimingStats.from_samples([0.01, 0.01, 0.01]), False,
                                 "capture failed, plain enqueues timed (CUDA error in cudaStreamBeginCapture: x)",
                                 0.03, True)])

    class Runner:
        @staticmethod
        def time_engine_detailed(run, **options):
            assert options["repeats"] == 5 and options["warmup"] == 2
            return next(results)

    backend = object.__new__(TensorRTBackend)
    backend._run = Runner
    backend.timings = backend.plain_launches = backend.enqueue_bound = 0
    backend.graph_notes = set()
    settings = TimingSettings(warmup_runs=2, min_runs=5, min_time_s=0.0)
    first, second = backend.time("a.plan", settings), backend.time("b.plan", settings)
    assert first.to_dict()["cuda_graph"] is True and first.median_ms == pytest.approx(0.05)
    assert second.to_dict()["cuda_graph"] is False and second.to_dict()["enqueue_bound"] is True
    notes = backend.notes()
    assert any(n.startswith("1 of 2 timings are plain execute_async_v3 launches") and "cudaStreamBeginCapture" in n
               for n in notes)
    assert any(n.startswith("1 of 2 timings were enqueue-bound") for n in notes)


def test_pixel_timings_keep_heat_and_re_runs(tmp_path, monkeypatch):
    """A unit timed while the phone was hot is run again after a rest; each timing keeps its attempts and thermal
    status, and the table says how many were re-run."""
    pytest.importorskip("litert_torch", reason="needs the [tflite] extra")
    import zendeploy.latency.remote as remote

    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF fake arm64 binary")
    # thermal status read before/after each run: the first run ends 'moderate' (2), its re-run 'none'
    fake = FakeTransport("R5CT1234", fixture_text("benchmark_model_tflite2.18_am62x_cpu.txt"), thermal=[0, 2, 0, 0])
    backend = make_backend("pixel", serial="R5CT1234", transport=fake, benchmark_binary=str(binary))
    monkeypatch.setattr(remote, "PHONE_COOLDOWN_S", 0.0)
    unit = tmp_path / "unit.tflite"
    unit.write_bytes(b"TFL3 unit")  # pushed as bytes; the double's benchmark_model answers with the fixture
    stats = backend.time(unit, TimingSettings(warmup_runs=1, min_runs=3, min_time_s=0.0))
    d = stats.to_dict()
    assert d["attempts"] == 2 and d["thermal_status_after"] == 0
    assert any(n.startswith("1 of 1 timings were made again") for n in backend.notes())


def test_benchmark_tool_can_be_named_instead_of_detected(tmp_path, monkeypatch):
    pytest.importorskip("litert_torch", reason="needs the [tflite] extra")
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF fake arm64 binary")
    monkeypatch.setenv("ZENDEPLOY_BENCHMARK_TOOL", "litert")
    fake = FakeTransport("R5CT1234", fixture_text("litert_compiled_model_constructed.txt"), tool="litert")
    backend = make_backend("pixel", serial="R5CT1234", transport=fake, benchmark_binary=str(binary))
    assert backend.runner.tool == "litert"
    assert not any(kind == "run" and "--help" in args for kind, args in fake.calls)  # not asked
    monkeypatch.setenv("ZENDEPLOY_BENCHMARK_TOOL", "tfl")
    with pytest.raises(ProfilerError, match=r"^unknown benchmark_model tool 'tfl' \(valid: "):
        make_backend("pixel", serial="R5CT1234", transport=fake, benchmark_binary=str(binary))
