"""Real measurements on tiny configurations: ONNX Runtime (and LiteRT when its extra is installed), kill + resume."""

import json

import pytest

from zendeploy.errors import LatencyTableError
from zendeploy.latency.backends import TimingSettings, make_backend
from zendeploy.latency.predict import LatencyPredictor
from zendeploy.latency.profile import ProfileSettings, measure_networks, plan_profile, profile_table
from zendeploy.latency.schema import SpaceInfo
from zendeploy.latency.tables import load_table
from zendeploy.space.structure import parse_structure

pytest.importorskip("onnxruntime", reason="needs the [onnx] extra")

NETS = [
    "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)",
    "SuperConvK3BNRELU(3,8,1,1)SuperResK1K3K1(8,24,2,8,1)SuperConvK1BNRELU(24,32,1,1)",
    "SuperConvK3BNRELU(3,16,1,1)SuperResK3K3(16,16,2,8,2)SuperConvK1BNRELU(16,32,1,1)",
    "SuperConvK3BNRELU(3,8,1,1)SuperResK5K5(8,16,2,16,1)SuperConvK1BNRELU(16,48,1,1)",
]
FAST = ProfileSettings(passes=2, timing=TimingSettings(warmup_runs=1, min_runs=3, min_time_s=0.0), reference_every=5,
                       max_extra_passes=0)
SPACE = SpaceInfo(name="resnet", resolution=16, num_classes=10, dataset="cifar")


class Interrupt(Exception):
    pass


@pytest.mark.fault
def test_profile_real_onnxruntime_and_resume_after_kill(tmp_path):
    backend = make_backend("cpu")
    nets = [parse_structure(s) for s in NETS]
    plan = plan_profile(nets, nets, 16, num_classes=10)
    out = tmp_path / "cpu.json"
    calls = {"n": 0}

    def killer(event):
        if event.phase == "time":
            calls["n"] += 1
            if calls["n"] == 7:
                raise Interrupt()

    with pytest.raises(Interrupt):
        profile_table(backend, plan, out, space=SPACE, settings=FAST, progress=killer)
    journal = tmp_path / "cpu.json.partial.jsonl"
    assert not out.exists() and len(journal.read_text().splitlines()) == 7
    seen = []
    table = profile_table(backend, plan, out, space=SPACE, settings=FAST,
                          progress=lambda e: seen.append((e.phase, e.done, e.total)), keep_work=True)
    # resumed: exactly the remaining (unit, pass) timings were made
    n_items = len(plan.units) + len(plan.networks)
    time_events = [e for e in seen if e[0] == "time"]
    assert len(time_events) == 2 * n_items - 7
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    assert len(lines) == 2 * n_items and len({(r["key"], r["pass"]) for r in lines}) == 2 * n_items
    loaded = load_table(out)
    assert len(loaded.entries) == len(plan.units)
    fastest = {}
    for r in lines:
        fastest[r["key"]] = min(fastest.get(r["key"], float("inf")), r["stats"]["min_ms"])
    assert all(e.latency_ms == fastest[e.key] and len(e.pass_medians_ms) == 2 for e in loaded.entries)
    assert all(e.latency_ms <= min(e.pass_medians_ms) for e in loaded.entries)
    p = loaded.provenance
    assert p.backend == "onnxruntime" and p.backend_version.startswith("onnxruntime ") and p.threads == 1
    assert p.measurement.passes == 2 and p.drift["reference_medians_ms"]
    assert loaded.calibration is not None and loaded.calibration.fitted_on == len(NETS)
    pred = LatencyPredictor(loaded).predict(nets[0], 16)
    assert pred.measured_units == pred.n_units and pred.latency_ms > 0


def test_noisy_entries_get_extra_passes(tmp_path):
    nets = [parse_structure(s) for s in NETS[:2]]
    plan = plan_profile(nets, [], 16, num_classes=10, corners=False)
    settings = ProfileSettings(passes=2, timing=FAST.timing, remeasure_spread=-1.0, max_extra_passes=1)
    seen = []
    table = profile_table(make_backend("cpu"), plan, tmp_path / "t.json", space=SPACE, settings=settings,
                          progress=lambda e: seen.append(e.phase))
    # a negative threshold marks every entry noisy: each gets exactly one extra pass
    assert all(len(e.pass_medians_ms) == 3 and e.latency_ms <= min(e.pass_medians_ms) for e in table.entries)
    assert seen.count("re-time 1") == len(plan.units)


def test_a_device_that_reports_its_state_has_it_kept_per_pass(tmp_path):
    """The T4 backend reads clocks and temperature through NVML after every pass (``device_state``); the table
    keeps the readings. Here the real ONNX Runtime backend with a reading added in place of the GPU's."""
    readings = iter(range(100))

    class Reporting(type(make_backend("cpu"))):
        def device_state(self):
            return {"available": True, "sm_clock_mhz": 1590 - next(readings), "temperature_c": 60}

    nets = [parse_structure(s) for s in NETS[:1]]
    plan = plan_profile(nets, [], 16, num_classes=10, corners=False)
    table = profile_table(Reporting(), plan, tmp_path / "t.json", space=SPACE, settings=FAST)
    states = table.provenance.host["device_state"]
    assert [s["pass"] for s in states] == [0, 1] and [s["sm_clock_mhz"] for s in states] == [1590, 1589]
    assert "device_state" not in profile_table(make_backend("cpu"), plan, tmp_path / "u.json", space=SPACE,
                                               settings=FAST).provenance.host  # a CPU reports nothing


def test_plan_refuses_calibration_networks_the_grid_cannot_model():
    nets = [parse_structure(s) for s in NETS]
    with pytest.raises(LatencyTableError, match="too few to model the calibration networks"):
        plan_profile(nets[:1], nets, 16, num_classes=10)


def test_changed_plan_does_not_silently_resume(tmp_path):
    backend = make_backend("cpu")
    nets = [parse_structure(s) for s in NETS]
    out = tmp_path / "t.json"

    def stop(event):
        if event.phase == "time":
            raise Interrupt()

    with pytest.raises(Interrupt):
        profile_table(backend, plan_profile(nets[:1], [], 16, num_classes=10), out, space=SPACE, settings=FAST,
                      progress=stop)
    with pytest.raises(LatencyTableError, match="holds an unfinished run with other settings"):
        profile_table(backend, plan_profile(nets[:2], [], 16, num_classes=10), out, space=SPACE, settings=FAST)


def test_measure_networks_end_to_end(tmp_path):
    nets = [parse_structure(s) for s in NETS[:2]]
    ms = measure_networks(make_backend("cpu"), nets, 16, num_classes=10, passes=2,
                          timing=TimingSettings(warmup_runs=1, min_runs=3, min_time_s=0.0), workdir=tmp_path)
    assert len(ms) == 2 and all(0 < m < 1000 for m in ms)


def test_unknown_device_and_bad_options():
    from zendeploy.errors import ProfilerError, RegistryError

    with pytest.raises(RegistryError, match="unknown device 'gpu'"):
        make_backend("gpu")
    with pytest.raises(ProfilerError, match="profiled in fp32 only"):
        make_backend("cpu", precision="fp16")
    with pytest.raises(ProfilerError, match="--serial is for --device pixel"):
        make_backend("cpu", serial="abc")


def test_profile_real_litert_tiny(tmp_path):
    pytest.importorskip("litert_torch", reason="needs the [tflite] extra")
    backend = make_backend("tflite-cpu")
    net = parse_structure("SuperConvK3BNRELU(3,8,1,1)SuperConvK1BNRELU(8,16,1,1)")
    plan = plan_profile([net], [], 8, num_classes=10, corners=False)
    table = profile_table(backend, plan, tmp_path / "tfl.json", space=SpaceInfo(name="resnet", resolution=8,
                                                                                  num_classes=10), settings=FAST)
    assert table.provenance.input_layout == "NHWC" and table.provenance.backend == "litert"
    assert "litert-torch" in table.provenance.exporter
    assert len(table.entries) == len(plan.units) and all(e.latency_ms > 0 for e in table.entries)


def test_refit_reuses_the_stored_measurements_and_revalidates(tmp_path):
    from typer.testing import CliRunner

    from zendeploy.cli.app import app
    from zendeploy.latency.profile import refit_table
    from zendeploy.latency.validate import load_report, save_report, validate_table

    nets = [parse_structure(s) for s in NETS]
    out = tmp_path / "cpu.json"
    table = profile_table(make_backend("cpu"), plan_profile(nets, nets, 16, num_classes=10), out, space=SPACE,
                          settings=FAST)
    refitted = refit_table(table)
    # same entries, same calibration networks and measurements; the fit itself is deterministic
    assert refitted.entries == table.entries and refitted.unit_models == table.unit_models
    assert refitted.calibration.structures == table.calibration.structures
    assert refitted.calibration.measured_ms == table.calibration.measured_ms
    assert refitted.calibration.a_ms == pytest.approx(table.calibration.a_ms, abs=1e-9)
    assert "refitted from the stored measurements" in refitted.provenance.notes[-1]
    assert not any("refitted" in n for n in table.provenance.notes)  # the input is not modified

    report = validate_table(out, samples=3, passes=1, workdir=tmp_path / "v")
    save_report(report, tmp_path / "cpu.validation.json")
    res = CliRunner().invoke(app, ["latency", "refit", "--table", str(out)])
    assert res.exit_code == 0, res.output
    again = load_report(tmp_path / "cpu.validation.json")
    assert again.measured_ms == report.measured_ms and again.structures == report.structures
    assert again.predicted_ms == pytest.approx(report.predicted_ms)  # same models: same predictions
    assert (tmp_path / "cpu.validation.png").exists()
    assert "refitted" in load_table(out).provenance.notes[-1]

    (tmp_path / "bad.validation.json").write_text("[]")
    with pytest.raises(LatencyTableError, match="not a validation report"):
        load_report(tmp_path / "bad.validation.json")
    with pytest.raises(LatencyTableError, match="does not exist"):
        load_report(tmp_path / "missing.validation.json")
