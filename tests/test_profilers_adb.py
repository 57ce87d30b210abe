"""benchmark_model output parser (real captured outputs) and the adb orchestration.

The phone is replaced at the hardware boundary only: either by a Python double of the transport
(``FakeTransport``) or, to exercise the real :class:`AdbTransport` and its argument lists, by a
fake ``adb`` executable that logs its argv and answers like adb would.
"""

from __future__ import annotations

import json
import pathlib
import re
import shlex
import stat
import sys
import textwrap

import pytest

from profilers.common import ProfilerError, read_jsonl
from profilers.litert.adb import (
    DEFAULT_REMOTE_DIR,
    AdbBenchmarkRunner,
    AdbTransport,
    build_benchmark_command,
    main,
    read_battery_temperature,
    read_device_info,
    time_tflite_on_device,
)
from profilers.litert.parse import BenchmarkModelResult, parse_benchmark_model_output

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "profilers"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


# ---------------------------------------------------------------------------------------------
# parser on real outputs

EXPECTED = {
    "benchmark_model_tflite1.12_ti_am57x.txt": dict(
        count=50, avg_ms=137.722, std_ms=0.896, min_ms=137.079, max_ms=143.416, first_ms=137.789, curr_ms=137.254,
        median_ms=None, init_ms=4.452, warmup_avg_ms=146.161, first_inference_ms=None,
        memory_init_mb=None, memory_overall_mb=None, summary_format="1.x",
    ),
    "benchmark_model_tflite1.15_zedboard_opprof.txt": dict(
        count=50, avg_ms=394.183, std_ms=4.373, min_ms=389.982, max_ms=417.669, first_ms=390.368, curr_ms=390.936,
        median_ms=None, init_ms=18.764, warmup_avg_ms=395.037, first_inference_ms=None, summary_format="1.x",
    ),
    "benchmark_model_tflite2.3_x86_avx2_opprof.txt": dict(
        count=50, avg_ms=22.6688, std_ms=0.309, min_ms=22.353, max_ms=23.656, first_ms=23.216, curr_ms=22.592,
        median_ms=None, init_ms=0.311, first_inference_ms=26.216, warmup_avg_ms=23.0011,
        memory_init_mb=4.84375, memory_overall_mb=27.4258, summary_format="2.x",
    ),
    "benchmark_model_tflite2.4_android_mi11.txt": dict(
        count=50, avg_ms=249.684, std_ms=1.442, min_ms=247.067, max_ms=254.474, first_ms=249.042, curr_ms=250.889,
        init_ms=16.242, first_inference_ms=360.262, warmup_avg_ms=304.586,
        memory_init_mb=4.92969, memory_overall_mb=138.809, summary_format="2.x",
    ),
    "benchmark_model_tflite2x_riscv_opprof.txt": dict(
        count=50, avg_ms=2950.34, std_ms=109.798, min_ms=2727.568, max_ms=3189.954, first_ms=2990.275,
        curr_ms=2913.402, init_ms=17.187, first_inference_ms=3512.391, warmup_avg_ms=3512.39,
        memory_init_mb=4.21094, memory_overall_mb=46.0859, summary_format="2.x",
    ),
    "benchmark_model_tflite2.18_am62x_xnnpack.txt": dict(
        count=50, avg_ms=899.641, std_ms=1.549, min_ms=898.007, max_ms=906.121, first_ms=900.416, curr_ms=898.333,
        p5_ms=898.333, median_ms=899.281, p95_ms=904.305, init_ms=614.333, first_inference_ms=905.463,
        warmup_avg_ms=905.463, memory_init_mb=146.363, memory_overall_mb=150.141, summary_format="2.x",
    ),
    "benchmark_model_tflite2.18_am62x_cpu.txt": dict(
        count=50, avg_ms=1240.27, std_ms=2.565, min_ms=1238.588, max_ms=1252.566, first_ms=1249.964,
        curr_ms=1240.143, p5_ms=1238.753, median_ms=1239.807, p95_ms=1247.415, init_ms=5.579,
        first_inference_ms=1357.602, warmup_avg_ms=1357.6, memory_init_mb=6.36328, memory_overall_mb=109.832,
    ),
}


def test_every_benchmark_model_fixture_is_covered():
    runs = [p.name for p in FIXTURES.glob("benchmark_model_*.txt") if not p.name.startswith("benchmark_model_help_")]
    assert sorted(runs) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parser_reads_the_exact_numbers(name):
    result = parse_benchmark_model_output(fixture_text(name))
    assert isinstance(result, BenchmarkModelResult)
    for field, value in EXPECTED[name].items():
        got = getattr(result, field)
        if value is None or isinstance(value, str):
            assert got == value, field
        else:
            assert got == pytest.approx(value, rel=1e-9), field
    if result.median_ms is not None:
        assert (result.latency_ms, result.statistic) == (result.median_ms, "median")
    else:
        assert (result.latency_ms, result.statistic) == (result.avg_ms, "mean")
    json.dumps(result.to_dict())


def test_op_profiler_lines_are_not_the_run_statistics():
    # The op profiler's "Timings (microseconds): count=50 ... avg=394059" comes last in the text.
    result = parse_benchmark_model_output(fixture_text("benchmark_model_tflite1.15_zedboard_opprof.txt"))
    assert result.avg_ms == pytest.approx(394.183)


def test_parser_without_summary_takes_the_last_stats_line():
    text = "count=3 first=10 curr=12 min=10 max=12 avg=11 std=1\n\ncount=50 first=9 curr=8 min=7 max=9 avg=8.5 std=0.5\n"
    r = parse_benchmark_model_output(text)
    assert (r.count, r.avg_ms, r.summary_format) == (50, 0.0085, None)


def test_parser_summary_only_and_logcat_prefix():
    text = "11-24 10:00:00.000  123  123 I tflite  : Average inference timings in us: Warmup: 91471, Init: 4108, Inference: 80660.1\n"
    r = parse_benchmark_model_output(text)
    assert r.avg_ms == pytest.approx(80.6601) and r.count is None and r.warmup_avg_ms == pytest.approx(91.471)


def test_parser_all_same_runs():
    r = parse_benchmark_model_output("count=5 curr=2000(all same)\n")
    assert (r.count, r.avg_ms, r.min_ms, r.max_ms, r.std_ms) == (5, 2.0, 2.0, 2.0, 0.0)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("Segmentation fault\n", "not benchmark_model output"),
        ("hello world\nthe quick brown fox count of nothing\n", "not benchmark_model output"),
        ("STARTING!\nERROR: Node number 248 (TfLiteNnapiDelegate) failed to prepare.\n", "reported a failure"),
        (
            "count=50 first=1 curr=1 min=1 max=2 avg=1.5 std=0\nInference timings in us: Init: 1, First inference: 2, "
            "Warmup (avg): 2, Inference (avg): 1.5\nBenchmarking failed.\n",
            "Benchmarking failed",
        ),
        (
            "count=50 first=1 curr=1 min=1 max=2 avg=1.5 std=0\nInference timings in us: Init: 1, First inference: 2, "
            "Warmup (avg): 2, Inference (avg): 99\n",
            "inconsistent",
        ),
        ("count=0\n", "not benchmark_model output"),
        ("count=50 curr=0(all same)\n", "0 us"),
    ],
)
def test_parser_raises_clear_errors(text, match):
    with pytest.raises(ProfilerError, match=match) as info:
        parse_benchmark_model_output(text)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# command building


def test_benchmark_command_flags():
    argv = build_benchmark_command(
        "/data/local/tmp/zendeploy/benchmark_model", "/data/local/tmp/zendeploy/m.tflite",
        num_threads=4, use_gpu=True, warmup_runs=5, num_runs=30, min_secs=2.5, max_secs=60,
        signature="serving_default", use_xnnpack=False, enable_op_profiling=True, taskset_mask=0xF0,
        extra_args=["--verbose=true"],
    )
    assert argv == [
        "taskset", "f0",
        "/data/local/tmp/zendeploy/benchmark_model",
        "--graph=/data/local/tmp/zendeploy/m.tflite",
        "--num_threads=4",
        "--use_gpu=true",
        "--warmup_runs=5",
        "--num_runs=30",
        "--min_secs=2.5",
        "--require_full_delegation=true",
        "--gpu_precision_loss_allowed=false",
        "--max_secs=60",
        "--signature_to_run_for=serving_default",
        "--use_xnnpack=false",
        "--enable_op_profiling=true",
        "--verbose=true",
    ]
    plain = build_benchmark_command("bm", "g.tflite")
    assert plain == ["bm", "--graph=g.tflite", "--num_threads=1", "--use_gpu=false", "--warmup_runs=10",
                     "--num_runs=50", "--min_secs=1"]
    assert build_benchmark_command("bm", "g", taskset_mask="0x0F")[:2] == ["taskset", "0f"]


@pytest.mark.parametrize(
    "kwargs", [dict(num_threads=0), dict(num_runs=0), dict(warmup_runs=-1), dict(min_secs=-1),
               dict(taskset_mask="zz"), dict(taskset_mask=0), dict(taskset_mask="0")],
)
def test_benchmark_command_rejects_bad_values(kwargs):
    with pytest.raises(ProfilerError):
        build_benchmark_command("bm", "g", **kwargs)


# ---------------------------------------------------------------------------------------------
# orchestration with a transport double

PROPS = {
    "ro.product.model": "Pixel 7",
    "ro.product.manufacturer": "Google",
    "ro.soc.model": "GS201",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.build.fingerprint": "google/panther/panther:14/UQ1A.240205.002/11224170:user/release-keys",
}
# A Tensor G2 (Pixel 7): 4 x Cortex-A55, 2 x A78, 2 x X1, as cpufreq reports them (kHz)
MAX_FREQ_KHZ = {0: 1803000, 1: 1803000, 2: 1803000, 3: 1803000, 4: 2348000, 5: 2348000, 6: 2850000, 7: 2850000}
CPUFREQ_GREP = "".join(f"/sys/devices/system/cpu/cpu{c}/cpufreq/cpuinfo_max_freq:{f}\n" for c, f in MAX_FREQ_KHZ.items())
CURFREQ_GREP = "".join(f"/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_cur_freq:{f // 2}\n"
                       for c, f in MAX_FREQ_KHZ.items())


def thermal_text(status: int) -> str:  # the head of `dumpsys thermalservice` (Android 10+)
    return (f"IsStatusOverride: false\nThermalEventListeners:\n\tcallbacks: 1\nThermal Status: {status}\n"
            "Cached temperatures:\n\tTemperature{mValue=36.4, mType=3, mName=battery, mStatus=0}\n")


BATTERY = textwrap.dedent(
    """\
    Current Battery Service state:
      AC powered: false
      USB powered: true
      status: 2
      level: 87
      scale: 100
      voltage: 4213
      temperature: 312
      technology: Li-ion
    """
)


class FakeTransport:
    """Stands in for adb + phone. Records every call; answers like a device would."""

    def __init__(self, serial: str, bench_text: str, *, bench_rc: int = 0, bench_stderr: str = "", fail_push: bool = False,
                 thermal: list[int] | None = None, tool: str = "tflite"):
        self.serial = serial
        self.bench_text = bench_text
        self.bench_rc = bench_rc
        self.bench_stderr = bench_stderr
        self.fail_push = fail_push
        self.thermal = list(thermal or [])  # successive answers of dumpsys thermalservice (then 0)
        self.help_text = fixture_text(f"benchmark_model_help_{tool}.txt")
        self.flags = set(re.findall(r"^\t--(\w+)=", self.help_text, re.M))  # what this tool's --help lists
        self.calls: list[tuple[str, list]] = []

    def run(self, args):
        self.calls.append(("run", args))
        assert isinstance(args, list) and all(isinstance(a, str) for a in args)
        assert args[0] == "shell"
        cmd = shlex.split(" ".join(args[1:]))  # adb joins the arguments with spaces; the phone's sh splits them
        if cmd[0] == "getprop":
            return 0, PROPS.get(cmd[1], "") + "\n", ""
        if cmd[:2] == ["dumpsys", "battery"]:
            return 0, BATTERY, ""
        if cmd[:2] == ["dumpsys", "thermalservice"]:
            return 0, thermal_text(self.thermal.pop(0) if self.thermal else 0), ""
        if cmd[:2] == ["sh", "-c"] and cmd[2].startswith("grep -H . /sys/devices/system/cpu/cpu[0-9]*/cpufreq/"):
            return 0, CPUFREQ_GREP if cmd[2].endswith("cpuinfo_max_freq") else CURFREQ_GREP, ""
        if cmd[0] in ("mkdir", "chmod", "rm"):
            return 0, "", ""
        if "benchmark_model" in " ".join(cmd[:4]) and "--help" in cmd:
            return 1, "", self.help_text  # both tools print their flags and exit 1 on --help
        if "benchmark_model" in " ".join(cmd[:4]):
            # like the real tools, a flag it does not know is only warned about (benchmark_model.cc ParseFlags)
            unknown = [a for a in cmd if a.startswith("--") and a[2:].split("=")[0] not in self.flags]
            warning = f"WARN: Unconsumed cmdline flags: {' '.join(unknown)}\n" if unknown else ""
            # TFLITE_LOG goes to stderr; return the canned text there
            return self.bench_rc, "", warning + self.bench_text + self.bench_stderr
        return 127, "", f"/system/bin/sh: {cmd[0]}: inaccessible or not found"

    def push(self, local, remote):
        self.calls.append(("push", [local, remote]))
        if self.fail_push:
            raise ProfilerError(f"adb -s {self.serial} push {local} {remote} failed (exit 1): adb: error: no space left")


@pytest.fixture
def local_files(tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF fake arm64 binary")
    model = tmp_path / "net_a.tflite"
    model.write_bytes(b"TFL3 fake model")
    return binary, model


def test_runner_pushes_runs_and_parses(local_files):
    binary, model = local_files
    fake = FakeTransport("R5CT1234", fixture_text("benchmark_model_tflite2.18_am62x_cpu.txt"))
    runner = AdbBenchmarkRunner(fake, str(binary))
    result = runner.run(str(model), num_threads=1, use_gpu=False, warmup_runs=3, num_runs=20, min_secs=0.5,
                        taskset_mask="f0")

    pushes = [args for kind, args in fake.calls if kind == "push"]
    assert pushes == [[str(binary), f"{DEFAULT_REMOTE_DIR}/benchmark_model"], [str(model), f"{DEFAULT_REMOTE_DIR}/net_a.tflite"]]
    shell = [args[1:] for kind, args in fake.calls if kind == "run"]
    assert ["mkdir", "-p", DEFAULT_REMOTE_DIR] in shell
    assert ["chmod", "755", f"{DEFAULT_REMOTE_DIR}/benchmark_model"] in shell
    bench = [c for c in shell if f"{DEFAULT_REMOTE_DIR}/benchmark_model" in c and c[0] == "taskset"]
    assert bench == [[
        "taskset", "f0", f"{DEFAULT_REMOTE_DIR}/benchmark_model", f"--graph={DEFAULT_REMOTE_DIR}/net_a.tflite",
        "--num_threads=1", "--use_gpu=false", "--warmup_runs=3", "--num_runs=20", "--min_secs=0.5",
    ]]
    assert ["rm", "-f", f"{DEFAULT_REMOTE_DIR}/net_a.tflite"] in shell
    assert result.command == bench[0]

    assert result.benchmark.median_ms == pytest.approx(1239.807)
    assert result.latency_ms == pytest.approx(1239.807)
    assert result.benchmark.count == 50 and result.benchmark.avg_ms == pytest.approx(1240.27)
    assert result.battery_temp_before_c == 31.2 and result.battery_temp_after_c == 31.2
    json.dumps(result.to_dict())

    # the binary is pushed once per runner
    runner.run(str(model))
    assert sum(1 for kind, args in fake.calls if kind == "push" and args[0] == str(binary)) == 1


def test_device_info_from_getprop_and_dumpsys():
    fake = FakeTransport("R5CT1234", "")
    info = read_device_info(fake)
    assert info.to_dict() == {
        "serial": "R5CT1234", "model": "Pixel 7", "manufacturer": "Google", "soc_model": "GS201",
        "android_release": "14", "sdk": "34", "abi": "arm64-v8a", "battery_temperature_c": 31.2,
        "build_fingerprint": PROPS["ro.build.fingerprint"],
    }
    assert ["shell", "getprop", "ro.soc.model"] in [args for _, args in fake.calls]
    assert read_battery_temperature(fake) == 31.2


def test_soc_falls_back_to_board_platform(monkeypatch):
    monkeypatch.delitem(PROPS, "ro.soc.model")
    monkeypatch.setitem(PROPS, "ro.board.platform", "lahaina")
    assert read_device_info(FakeTransport("X", "")).soc_model == "lahaina"


def test_failing_benchmark_gives_one_line_error(local_files):
    binary, model = local_files
    fake = FakeTransport("R5CT1234", "STARTING!\nLoaded model x\n", bench_rc=1,
                         bench_stderr="ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'\nFailed to initialize the interpreter\nBenchmarking failed.\n")
    with pytest.raises(ProfilerError) as info:
        AdbBenchmarkRunner(fake, str(binary)).run(str(model))
    text = str(info.value)
    assert "\n" not in text
    assert "R5CT1234" in text and "exit 1" in text and "Didn't find op" in text


def test_failing_push_and_missing_files(local_files, tmp_path):
    binary, model = local_files
    with pytest.raises(ProfilerError, match="no space left"):
        AdbBenchmarkRunner(FakeTransport("S", "", fail_push=True), str(binary)).run(str(model))
    with pytest.raises(ProfilerError, match="binary not found"):
        AdbBenchmarkRunner(FakeTransport("S", ""), str(tmp_path / "nope")).run(str(model))
    with pytest.raises(ProfilerError, match="model file not found"):
        AdbBenchmarkRunner(FakeTransport("S", ""), str(binary)).run(str(tmp_path / "nope.tflite"))


def test_garbage_benchmark_output_is_an_error(local_files):
    binary, model = local_files
    fake = FakeTransport("S", "random noise without numbers\n")
    with pytest.raises(ProfilerError, match="not benchmark_model output"):
        time_tflite_on_device(str(model), serial="S", benchmark_binary=str(binary), transport=fake)


# ---------------------------------------------------------------------------------------------
# the real AdbTransport against a fake adb executable

FAKE_ADB = textwrap.dedent(
    """\
    import json, os, sys
    argv = sys.argv[1:]
    with open(os.environ["FAKE_ADB_LOG"], "a") as f:
        f.write(json.dumps(argv) + "\\n")
    if len(argv) < 3 or argv[0] != "-s":
        print("adb: usage", file=sys.stderr); sys.exit(1)
    if argv[1] != os.environ["FAKE_ADB_SERIAL"]:
        print(f"adb: device '{argv[1]}' not found", file=sys.stderr); sys.exit(1)
    args = argv[2:]
    if args[0] == "push":
        if not os.path.isfile(args[1]):
            print(f"adb: error: cannot stat '{args[1]}': No such file or directory", file=sys.stderr); sys.exit(1)
        print(f"{args[1]}: 1 file pushed, 0 skipped."); sys.exit(0)
    if args[0] == "shell":
        import shlex
        cmd = shlex.split(" ".join(args[1:]))  # what adb and the phone's sh make of the arguments
        props = json.loads(os.environ["FAKE_ADB_PROPS"])
        if cmd[:2] == ["dumpsys", "thermalservice"]:
            print("Thermal Status: 0"); sys.exit(0)
        if cmd[:2] == ["sh", "-c"] and "cpuinfo_max_freq" in cmd[2]:
            for c, f in enumerate([1803000] * 4 + [2348000] * 2 + [2850000] * 2):
                print(f"/sys/devices/system/cpu/cpu{c}/cpufreq/cpuinfo_max_freq:{f}")
            sys.exit(0)
        if cmd[:2] == ["sh", "-c"]:
            sys.exit(0)
        if cmd[0] == "getprop":
            print(props.get(cmd[1], "")); sys.exit(0)
        if cmd[:2] == ["dumpsys", "battery"]:
            print("Current Battery Service state:\\n  level: 50\\n  temperature: 298"); sys.exit(0)
        if cmd[0] in ("mkdir", "chmod", "rm"):
            sys.exit(0)
        if any(a.endswith("/benchmark_model") for a in cmd[:4]) and "--help" in cmd:
            with open(os.environ["FAKE_ADB_HELP"]) as f:
                sys.stderr.write(f.read())
            sys.exit(1)
        if any(a.endswith("/benchmark_model") for a in cmd[:4]):
            with open(os.environ["FAKE_ADB_BENCH"]) as f:
                sys.stderr.write(f.read())
            sys.exit(int(os.environ.get("FAKE_ADB_BENCH_RC", "0")))
    print("unknown command", file=sys.stderr); sys.exit(1)
    """
)


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    script = tmp_path / "adb"
    script.write_text(f"#!{sys.executable}\n" + FAKE_ADB)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "adb_calls.jsonl"
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))
    monkeypatch.setenv("FAKE_ADB_SERIAL", "emulator-5554")
    monkeypatch.setenv("FAKE_ADB_PROPS", json.dumps(PROPS))
    monkeypatch.setenv("FAKE_ADB_BENCH", str(FIXTURES / "benchmark_model_tflite2.4_android_mi11.txt"))
    monkeypatch.setenv("FAKE_ADB_HELP", str(FIXTURES / "benchmark_model_help_tflite.txt"))

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return str(script), calls


def test_real_transport_passes_the_serial_and_argument_lists(fake_adb, local_files):
    adb, calls = fake_adb
    binary, model = local_files
    transport = AdbTransport("emulator-5554", adb_path=adb)
    assert transport.command(["shell", "getprop", "ro.product.model"]) == [
        adb, "-s", "emulator-5554", "shell", "getprop", "ro.product.model"]
    result = AdbBenchmarkRunner(transport, str(binary)).run(str(model), num_threads=2)
    assert result.benchmark.avg_ms == pytest.approx(249.684)
    assert result.battery_temp_before_c == 29.8
    logged = calls()
    assert logged and all(c[:2] == ["-s", "emulator-5554"] for c in logged)
    assert ["-s", "emulator-5554", "push", str(model), f"{DEFAULT_REMOTE_DIR}/net_a.tflite"] in logged
    assert any("--num_threads=2" in c for c in logged)


def test_real_transport_failures_are_one_line(fake_adb, local_files, tmp_path):
    adb, _ = fake_adb
    binary, model = local_files
    wrong = AdbTransport("not-connected", adb_path=adb)
    with pytest.raises(ProfilerError) as info:
        AdbBenchmarkRunner(wrong, str(binary)).run(str(model))
    text = str(info.value)
    assert "\n" not in text and "not-connected" in text and "not found" in text
    with pytest.raises(ProfilerError, match="cannot stat"):
        AdbTransport("emulator-5554", adb_path=adb).push(str(tmp_path / "missing.tflite"), "/data/local/tmp/x")
    with pytest.raises(ProfilerError, match="adb client not found"):
        AdbTransport("emulator-5554", adb_path=str(tmp_path / "no-adb")).run(["devices"])
    with pytest.raises(ProfilerError, match="serial is required"):
        AdbTransport("")
    with pytest.raises(ProfilerError, match="list of strings"):
        AdbTransport("emulator-5554", adb_path=adb).run("shell ls")


def test_real_transport_benchmark_exit_code(fake_adb, local_files, monkeypatch):
    adb, _ = fake_adb
    binary, model = local_files
    monkeypatch.setenv("FAKE_ADB_BENCH_RC", "134")
    with pytest.raises(ProfilerError, match="exit 134"):
        AdbBenchmarkRunner(AdbTransport("emulator-5554", adb_path=adb), str(binary)).run(str(model))


def test_cli_on_fake_phone_writes_and_resumes(fake_adb, local_files, tmp_path):
    adb, calls = fake_adb
    binary, model = local_files
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"key": "net_a", "path": model.name}]))
    out = tmp_path / "phone.jsonl"
    argv = ["--serial", "emulator-5554", "--adb", adb, "--benchmark-binary", str(binary), "--manifest", str(manifest),
            "--output", str(out), "--threads", "1", "--taskset", "f0", "--warmup", "2", "--repeats", "10"]
    assert main(argv) == 0
    (record,) = read_jsonl(out)
    assert record["key"] == "net_a"
    assert record["latency_ms"] == pytest.approx(249.684) and record["statistic"] == "mean"
    assert record["stats"]["count"] == 50
    assert record["backend"]["device"]["model"] == "Pixel 7"
    assert record["command"][:2] == ["taskset", "f0"] and "--num_runs=10" in record["command"]
    n_calls = len(calls())
    assert main(argv) == 0
    assert len(read_jsonl(out)) == 1
    assert not any("push" in c for c in calls()[n_calls:])  # resume: no model pushed again


# ---------------------------------------------------------------------------------------------
# what the phone runs: cores, GPU delegation, flags the binary ignored, heat


def test_fastest_cores_are_read_from_cpufreq_through_the_phone_shell():
    from profilers.litert.adb import core_mask, fastest_cores, read_cpu_max_freqs

    fake = FakeTransport("S", "")
    freqs = read_cpu_max_freqs(fake)
    assert freqs == MAX_FREQ_KHZ
    # the glob travels as one quoted script and is expanded by the phone's sh, not by the host
    (args,) = [a for _, a in fake.calls]
    assert args == ["shell", "sh", "-c", "'grep -H . /sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq'"]
    assert fastest_cores(freqs, 1) == [6, 7] and core_mask([6, 7]) == "c0"  # Tensor G2: the X1 cores, not f0
    assert fastest_cores(freqs, 2) == [6, 7] and fastest_cores(freqs, 4) == [4, 5, 6, 7]
    assert fastest_cores({c: (2400 if c >= 4 else 1800) for c in range(8)}, 4) == [4, 5, 6, 7]
    assert fastest_cores({}, 1) == []


def test_gpu_runs_must_be_fully_delegated(local_files):
    binary, model = local_files
    cpu_run = fixture_text("benchmark_model_tflite2.18_am62x_cpu.txt")
    full = "Explicitly applied GPU delegate, and the model graph will be completely executed by the delegate.\n"
    partial = ("Explicitly applied GPU delegate, and the model graph will be partially executed by the delegate w/ "
               "3 delegate kernels.\n")
    result = AdbBenchmarkRunner(FakeTransport("S", full + cpu_run), str(binary)).run(str(model), use_gpu=True)
    assert result.delegation.endswith("completely executed by the delegate")
    assert "--require_full_delegation=true" in result.command and "--gpu_precision_loss_allowed=false" in result.command
    with pytest.raises(ProfilerError, match=r"GPU delegate did not take the whole graph \(.*w/ 3 delegate kernels"):
        AdbBenchmarkRunner(FakeTransport("S", partial + cpu_run), str(binary)).run(str(model), use_gpu=True)
    with pytest.raises(ProfilerError, match="printed no delegation line"):  # e.g. a silent fallback to the CPU
        AdbBenchmarkRunner(FakeTransport("S", cpu_run), str(binary)).run(str(model), use_gpu=True)
    fp16 = AdbBenchmarkRunner(FakeTransport("S", full + cpu_run), str(binary)).run(
        str(model), use_gpu=True, gpu_precision_loss_allowed=True)
    assert "--gpu_precision_loss_allowed=true" in fp16.command


def test_a_flag_the_binary_did_not_consume_is_an_error(local_files):
    binary, model = local_files
    text = "Unconsumed cmdline flags: --require_full_delegation=true\n" + fixture_text(
        "benchmark_model_tflite2.18_am62x_cpu.txt")
    with pytest.raises(ProfilerError, match=r"did not understand flag\(s\) --require_full_delegation=true"):
        AdbBenchmarkRunner(FakeTransport("S", text), str(binary)).run(str(model))


def test_a_run_that_leaves_the_phone_hot_is_made_again_after_a_cool_down(local_files):
    binary, model = local_files
    text = fixture_text("benchmark_model_tflite2.18_am62x_cpu.txt")
    # thermal status before / after each attempt: the first run ends at 2 (moderate: throttling), the second at 0
    fake = FakeTransport("S", text, thermal=[0, 2, 0, 0])
    result = AdbBenchmarkRunner(fake, str(binary)).run(str(model), max_thermal_status=1, cooldown_s=0.0)
    assert result.attempts == 2 and result.thermal_status_after == 0
    assert sum("--graph=" in " ".join(a) for _, a in fake.calls) == 2
    assert result.cpu_freq_after_khz[7] == MAX_FREQ_KHZ[7] // 2
    always_hot = FakeTransport("S", text, thermal=[2] * 10)
    capped = AdbBenchmarkRunner(always_hot, str(binary)).run(str(model), max_thermal_status=1, hot_reruns=2,
                                                             cooldown_s=0.0)
    assert capped.attempts == 3 and capped.thermal_status_after == 2  # kept, with the reading that says so
    once = AdbBenchmarkRunner(FakeTransport("S", text, thermal=[2] * 10), str(binary)).run(str(model))
    assert once.attempts == 1  # without max_thermal_status nothing is re-run


def test_cli_pins_to_the_fastest_cores_and_records_the_binary(fake_adb, local_files, tmp_path):
    import hashlib

    adb, calls = fake_adb
    binary, model = local_files
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"key": "net_a", "path": model.name}]))
    out = tmp_path / "phone.jsonl"
    assert main(["--serial", "emulator-5554", "--adb", adb, "--benchmark-binary", str(binary), "--manifest",
                 str(manifest), "--output", str(out), "--warmup", "1", "--repeats", "5"]) == 0
    (record,) = read_jsonl(out)
    backend = record["backend"]
    assert backend["taskset"] == "c0" and backend["affinity"]["requested"] == "auto"
    assert backend["affinity"]["max_freq_khz"]["7"] == 2850000
    assert backend["versions"]["benchmark_binary_sha256"] == hashlib.sha256(binary.read_bytes()).hexdigest()
    assert backend["versions"]["build_fingerprint"] == PROPS["ro.build.fingerprint"]
    bench = [c for c in calls() if any("--graph=" in a for a in c)]
    assert bench and bench[0][3:5] == ["taskset", "c0"]
    assert record["thermal_status_after"] == 0 and record["attempts"] == 1


# ---------------------------------------------------------------------------------------------
# TFLite's benchmark_model or LiteRT's CompiledModel one


def test_which_benchmark_model_is_told_from_its_help():
    from profilers.litert.adb import detect_benchmark_tool

    assert detect_benchmark_tool(fixture_text("benchmark_model_help_tflite.txt")) == "tflite"
    assert detect_benchmark_tool(fixture_text("benchmark_model_help_litert.txt")) == "litert"
    with pytest.raises(ProfilerError, match="cannot tell which benchmark_model"):
        detect_benchmark_tool("INFO: STARTING!\nSegmentation fault\n")  # both tools start with STARTING!


def test_litert_tool_gets_its_own_flags_and_library(local_files, tmp_path):
    binary, model = local_files
    library = tmp_path / "libLiteRtClGlAccelerator.so"
    library.write_bytes(b"\x7fELF fake accelerator")
    run = fixture_text("litert_compiled_model_constructed.txt")
    fake = FakeTransport("S", run, tool="litert")
    runner = AdbBenchmarkRunner(fake, str(binary), accelerator_library=str(library))
    result = runner.run(str(model), use_gpu=True, taskset_mask="c0")
    assert runner.tool == "litert"  # detected on the phone from --help
    assert result.command[:3] == [f"LD_LIBRARY_PATH={DEFAULT_REMOTE_DIR}", "taskset", "c0"]
    flags = result.command[3:]
    assert "--use_cpu=false" in flags and "--use_gpu=true" in flags and "--require_full_delegation=true" in flags
    assert "--allow_fp16=false" in flags and not any(f.startswith("--gpu_precision_loss") for f in flags)
    assert [str(library), f"{DEFAULT_REMOTE_DIR}/libLiteRtClGlAccelerator.so"] in [a for k, a in fake.calls
                                                                                 if k == "push"]
    # the assignment word reaches the phone's shell unquoted, so sh sets the variable for taskset and the tool
    shell_line = next(a for k, a in fake.calls if k == "run" and any("--graph=" in x for x in a))
    assert shell_line[1] == f"LD_LIBRARY_PATH={DEFAULT_REMOTE_DIR}"
    assert result.benchmark.median_ms == pytest.approx(1.580) and result.benchmark.count == 630
    assert result.delegation.startswith("LiteRT GPU accelerator")

    cpu = AdbBenchmarkRunner(FakeTransport("S", run, tool="litert"), str(binary)).run(str(model))
    assert "--use_cpu=true" in cpu.command and "--use_gpu=false" in cpu.command
    assert not cpu.command[0].startswith("LD_LIBRARY_PATH")
    with pytest.raises(ProfilerError, match="needs its GPU accelerator library"):
        AdbBenchmarkRunner(FakeTransport("S", run, tool="litert"), str(binary)).run(str(model), use_gpu=True)
    unloaded = run.replace("Dynamically loaded GPU accelerator(libLiteRtClGlAccelerator.so) registered.",
                           "GPU accelerator could not be loaded and registered.")
    with pytest.raises(ProfilerError, match="GPU accelerator could not be loaded"):
        AdbBenchmarkRunner(FakeTransport("S", unloaded, tool="litert"), str(binary),
                           accelerator_library=str(library)).run(str(model), use_gpu=True)
    with pytest.raises(ProfilerError, match="has no --use_xnnpack"):
        build_benchmark_command("bm", "g", tool="litert", use_xnnpack=True)
