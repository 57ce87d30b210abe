"""Coverage, physical predictions, batch semantics, budgets the table cannot back, units timed on demand, the closed
loop's decision and measurements that join the calibration: real ONNX Runtime with tiny settings."""

from __future__ import annotations

import json
import logging

import pytest

from zendeploy.errors import BudgetError, LatencyTableError
from zendeploy.latency.backends import TimingSettings, make_backend
from zendeploy.latency.calibrate import fit_calibration
from zendeploy.latency.predict import LatencyPredictor, load_predictor
from zendeploy.latency.profile import ProfileSettings, plan_profile, profile_table, refit_table
from zendeploy.latency.schema import SpaceInfo
from zendeploy.latency.tables import load_table
from zendeploy.search import Budgets, run_search
from zendeploy.search.report import measure_candidates
from zendeploy.space.structure import parse_structure

pytest.importorskip("onnxruntime", reason="needs the [onnx] extra")

FAST = ProfileSettings(passes=2, timing=TimingSettings(warmup_runs=1, min_runs=3, min_time_s=0.0), reference_every=50,
                       max_extra_passes=0)
SPACE_FILE = {
    "name": "tiny", "block_types": [["SuperResK3K3", "SuperResK1K3K1"]], "min_channels": 8, "max_channels": 64,
    "initial": {"cifar": "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperResK3K3(16,16,2,8,1)"
                         "SuperConvK1BNRELU(16,32,1,1)"},
    "max_layers": {"cifar": 6},
}
GRID = [
    "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperResK3K3(16,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)",
    "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,24,2,16,1)SuperResK3K3(24,24,2,16,1)SuperConvK1BNRELU(24,32,1,1)",
    "SuperConvK3BNRELU(3,16,1,1)SuperResK3K3(16,16,2,8,1)SuperResK3K3(16,32,2,16,1)SuperConvK1BNRELU(32,32,1,1)",
    "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,32,2,8,1)SuperResK3K3(32,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)",
    "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,16,1)SuperResK3K3(16,24,2,8,1)SuperConvK1BNRELU(24,32,1,1)",
]
WIDE = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,64,2,48,1)SuperResK3K3(64,16,2,8,1)SuperConvK1BNRELU(16,32,1,1)"
BOTTLENECK = ("SuperConvK3BNRELU(3,8,1,1)SuperResK1K3K1(8,16,2,8,1)SuperResK3K3(16,16,2,8,1)"
              "SuperConvK1BNRELU(16,32,1,1)")


def _space(tmp_path):
    from zendeploy.search import space_from_dict

    return space_from_dict(SPACE_FILE, source="test")


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    """A real table (ONNX Runtime, 2 passes) of basic units only, over 5 grid networks, calibrated on the same 5."""
    d = tmp_path_factory.mktemp("cov")
    nets = [parse_structure(s) for s in GRID]
    info = SpaceInfo(name="tiny", resolution=16, num_classes=10, dataset="cifar",
                     definition={**SPACE_FILE})
    out = d / "tiny.json"
    profile_table(make_backend("cpu"), plan_profile(nets, nets, 16, num_classes=10), out, space=info, settings=FAST)
    return out


def test_coverage_is_recorded_and_checked(tiny_table):
    table = load_table(tiny_table)
    cov = table.coverage
    basic = next(f for f in cov.families if f.family == "basic")
    assert basic.kernels == [3] and basic.se == [False] and basic.in_channels[0] >= 8
    assert cov.networks == 5 and cov.network_macs[0] < cov.network_macs[1]
    p = LatencyPredictor(table)
    inside = p.predict(parse_structure(GRID[0]), 16, num_classes=10)
    assert inside.inside and not inside.outside
    wide = p.predict(parse_structure(WIDE), 16, num_classes=10)
    assert any("64 output channels outside the measured" in r for r in wide.outside)
    with pytest.raises(LatencyTableError, match=r"outside the table's coverage \(strict\): .*channels"):
        p.predict(parse_structure(WIDE), 16, num_classes=10, strict=True)
    se = p.predict(parse_structure(GRID[0]), 16, num_classes=10, se=True)
    assert any("with SE were never measured" in r for r in se.outside)


def test_predictions_are_physical_and_per_image(tiny_table):
    table = load_table(tiny_table)
    # a calibration with a large negative intercept: the prediction stops at the fastest measured unit, never 0
    bad = table.model_copy(update={"calibration": fit_calibration([1, 2, 3, 4], [1, 1, 1, 1], [0.1, 1.1, 2.1, 3.1])})
    p = LatencyPredictor(bad).predict(parse_structure(GRID[0]), 16, num_classes=10)
    floor = min(e.latency_ms for e in table.entries)
    assert p.batch_latency_ms >= floor and p.low_ms >= floor and p.sigma_ms > 0
    four = table.model_copy(update={"provenance": table.provenance.model_copy(update={"batch": 4})})
    q = LatencyPredictor(four).predict(parse_structure(GRID[0]), 16, num_classes=10)
    assert q.latency_ms == pytest.approx(q.batch_latency_ms / 4) and q.unit == "ms per image at batch 4 on cpu"


def test_batch_4_table_budgets_are_per_image(tmp_path):
    """A table measured at batch 4: its networks' latencies are per batch, the search's budget per image."""
    nets = [parse_structure(s) for s in GRID[:4]]
    info = SpaceInfo(name="tiny", resolution=16, num_classes=10, dataset="cifar", definition={**SPACE_FILE})
    out = tmp_path / "b4.json"
    table = profile_table(make_backend("cpu", batch=4), plan_profile(nets, nets, 16, num_classes=10), out,
                          space=info, settings=FAST)
    assert table.provenance.batch == 4
    pred = load_predictor(out)
    lo, hi = (v / 4 for v in table.coverage.network_latency_ms)
    budget = (lo + hi) / 2  # per image: inside the covered range only once divided by the batch
    r = run_search(_space(tmp_path), Budgets(latency_ms=budget), resolution=16, num_classes=10, population=4,
                   iterations=6, proxy="params", batch_size=1, predictor=pred)
    assert r.best.latency["latency_ms"] <= budget
    assert r.report["best"]["latency"]["unit"] == "ms per image at batch 4 on cpu"
    with pytest.raises(BudgetError, match="beyond the slowest network"):  # the per-batch figure is refused
        run_search(_space(tmp_path), Budgets(latency_ms=hi * 4 * 1.5), resolution=16, num_classes=10, population=4,
                   iterations=2, proxy="params", batch_size=1, predictor=pred)


def test_search_refuses_what_the_table_cannot_back(tiny_table, tmp_path):
    pred = load_predictor(tiny_table)
    cov = pred.table.coverage
    kw = dict(resolution=16, num_classes=10, population=4, iterations=2, proxy="params", batch_size=1, predictor=pred)
    with pytest.raises(BudgetError, match=r"below the fastest network .* was calibrated on .*--min-macs"):
        run_search(_space(tmp_path), Budgets(latency_ms=cov.network_latency_ms[0] / 2), **kw)
    with pytest.raises(BudgetError, match=r"beyond the slowest network .*zendeploy profile --device cpu .*--max-macs"):
        run_search(_space(tmp_path), Budgets(latency_ms=cov.network_latency_ms[1] * 3), **kw)
    with pytest.raises(BudgetError, match="profiled for resolution 16, this search uses 32"):
        run_search(_space(tmp_path), Budgets(latency_ms=cov.network_latency_ms[1]), **{**kw, "resolution": 32})
    with pytest.raises(BudgetError, match="profiled for class count 10, this search uses 100"):
        run_search(_space(tmp_path), Budgets(latency_ms=cov.network_latency_ms[1]), **{**kw, "num_classes": 100})
    with pytest.raises(BudgetError, match="profiled for space tiny, this search uses resnet"):
        run_search("resnet", Budgets(latency_ms=cov.network_latency_ms[1]), **kw)


def test_units_outside_coverage_are_timed_on_demand_and_reused(tiny_table, tmp_path):
    """The tiny table never measured a bottleneck unit: without a timer such candidates are rejected ('coverage'),
    with one they are timed here, journalled beside the table, used, and reused by the next search."""
    from zendeploy.latency.ondemand import OnDemandUnits, load_ondemand, ondemand_path

    table_path = tmp_path / "t.json"
    table_path.write_bytes(tiny_table.read_bytes())
    pred = LatencyPredictor(load_table(table_path))
    blocks = parse_structure(BOTTLENECK)
    with pytest.raises(LatencyTableError, match="no measurements for 'bottleneck' units"):  # never a silent 0
        pred.predict(blocks, 16, num_classes=10)
    events: list = []
    timer = OnDemandUnits(pred, make_backend("cpu"), table_path, tmp_path / "work", settings=FAST,
                          progress=events.append)
    assert timer(blocks, ["test"]) is True and timer.units == 2 and timer.seconds > 0
    assert [(e.phase, e.done, e.total) for e in events] == [("on-demand", 2, None)]  # one ProgressEvent per call
    assert pred.predict(blocks, 16, num_classes=10).inside  # both bottleneck units are now entries
    lines = ondemand_path(table_path).read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x)["entry"]["origin"] == "on-demand" for x in lines)
    fresh = LatencyPredictor(load_table(table_path))
    assert load_ondemand(fresh, table_path) == 2 and fresh.predict(blocks, 16, num_classes=10).inside
    assert timer(blocks, ["again"]) is False  # nothing left to time
    # refit folds them into the table
    refitted = refit_table(load_table(table_path), extra_entries=[e for e in fresh.table.entries
                                                                  if e.origin == "on-demand"])
    assert sum(e.origin == "on-demand" for e in refitted.entries) == 2
    assert next(m for m in refitted.unit_models if m.family == "bottleneck").fitted_on == 2


def test_search_rejects_out_of_coverage_candidates_without_a_timer(tiny_table, tmp_path):
    space = dict(SPACE_FILE, block_types=[["SuperResK3K3", "SuperResK1K3K1"]], max_channels=128)
    from zendeploy.search import space_from_dict

    pred = LatencyPredictor(load_table(tiny_table))
    hi = pred.table.coverage.network_latency_ms[1]
    r = run_search(space_from_dict(space, source="t"), Budgets(latency_ms=hi), resolution=16, num_classes=10,
                   population=4, iterations=40, proxy="params", batch_size=1, predictor=pred, seed=1)
    assert r.rejected.get("coverage", 0) > 0
    for c in r.population:
        assert not c.latency.get("outside")


def test_closed_loop_chooses_the_best_scoring_net_that_meets_the_budget_as_measured():
    class C:
        def __init__(self, s, ms):
            self.structure, self.latency_ms = s, ms

    top = [C(GRID[0], 1.0), C(GRID[1], 1.1), C(GRID[2], 0.9)]  # score order
    measured = {GRID[0]: 1.3, GRID[1]: 1.15, GRID[2]: 0.95}

    def device(networks, resolution, *, se=False):  # the device's answer: the measurement boundary
        from zendeploy.space.structure import format_structure

        return [measured[format_structure(b)] for b in networks]

    m = measure_candidates(device, top, resolution=16, se=False, budgets=Budgets(latency_ms=1.2), best=top[0])
    assert m["chosen_structure"] == GRID[1] and m["chosen_meets_budget_measured"] is True
    assert "over the budget; chose the best-scoring" in m["decision"]
    none = measure_candidates(device, top, resolution=16, se=False, budgets=Budgets(latency_ms=0.5), best=top[0])
    assert none["chosen_meets_budget_measured"] is False and "none of the top-3" in none["decision"]


def test_closed_loop_on_real_onnxruntime_measures_and_records(tiny_table, tmp_path):
    """A real search: the top-k are measured by ONNX Runtime, the chosen net meets the budget as measured (or the
    report says none does), and every measured net is recorded beside the table for the next refit."""
    from zendeploy.latency.sidecar import read_networks, sidecar_path
    from zendeploy.search.measure import local_measure_fn

    table_path = tmp_path / "t.json"
    table_path.write_bytes(tiny_table.read_bytes())
    pred = load_predictor(table_path)
    hi = pred.table.coverage.network_latency_ms[1]
    fn, reason = local_measure_fn(None, pred, tmp_path / "m")
    assert reason is None
    r = run_search(_space(tmp_path), Budgets(latency_ms=hi), resolution=16, num_classes=10, population=4,
                   iterations=8, proxy="params", batch_size=1, predictor=pred, measure_fn=fn, top_k=3)
    m = r.report["measured"]
    assert m["ran"] and len(m["results"]) >= 1 and m["decision"]
    if m["chosen_meets_budget_measured"]:
        assert next(x for x in m["results"] if x["structure"] == r.best.structure)["measured_ms"] <= hi
    structures, ms, skipped = read_networks(table_path, load_table(table_path))
    assert len(structures) == len(m["results"]) and skipped == 0 and sidecar_path(table_path).exists()
    refitted = refit_table(load_table(table_path), (structures, ms))
    assert refitted.calibration.fitted_on >= 5


def test_too_few_calibration_networks_are_refused():
    nets = [parse_structure(s) for s in GRID]
    with pytest.raises(LatencyTableError, match="3 calibration network.*at least 4"):
        plan_profile(nets, nets[:3], 16, num_classes=10)


def test_remote_device_top_k_go_out_as_a_manifest_and_come_back_decided(tiny_table, tmp_path):
    """A table of a device this host cannot time (here the tiny table relabelled 'pixel': test data, never shipped):
    the search writes its top-k as a manifest for the device runners; the real LiteRT runner times them (standing in
    for the phone's benchmark_model); ``zendeploy search-measured`` reads the timings back and decides."""
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("litert_torch")
    import subprocess
    import sys

    from typer.testing import CliRunner

    from zendeploy.cli.app import app

    data = json.loads(tiny_table.read_text())
    data["provenance"]["device"] = "pixel"
    table = tmp_path / "pixel.json"
    table.write_text(json.dumps(data))
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE_FILE))
    hi = data["coverage"]["network_latency_ms"][1]
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["search", "-o", str(out), "--space", str(space), "--res", "16", "--num-classes",
                                   "10", "--latency-ms", f"{hi:.6f}", "--table", str(table), "--population", "4",
                                   "--iterations", "6", "--proxy", "params", "--batch-size", "1", "--top-k", "2"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    manifest = report["measured"]["manifest"]
    assert "python -m profilers.litert.adb" in report["measured"]["next"]
    entries = json.loads(open(manifest).read())
    assert len(entries) == len(report["top_k"]) and all(e["path"].endswith(".tflite") for e in entries)
    timings = tmp_path / "timings.jsonl"
    proc = subprocess.run([sys.executable, "-m", "profilers.litert", "--manifest", manifest, "--output", str(timings),
                           "--warmup", "1", "--repeats", "3", "--min-time", "0"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-1500:]
    res = CliRunner().invoke(app, ["search-measured", "--run", str(out), "--timings", str(timings)])
    assert res.exit_code == 0, res.output
    decided = json.loads((out / "report.json").read_text())["measured"]
    assert decided["ran"] and decided["decision"] and len(decided["results"]) == len(entries)
    assert (out / "best_structure.txt").read_text().strip() == decided["chosen_structure"]
    res = CliRunner().invoke(app, ["search-measured", "--run", str(out), "--timings", str(tmp_path / "none.jsonl")])
    assert res.exit_code == 1 and "have no latency for" in res.output


def test_a_tightened_search_still_decides_on_the_users_budget(tiny_table, tmp_path):
    """``decide_budget_ms``: the search runs under a tightened predicted budget, the closed loop checks the measured
    top-k against the user's own budget (the device's answers stand in at the measurement boundary)."""
    pred = load_predictor(tiny_table)
    lo, hi = pred.table.coverage.network_latency_ms
    user = 0.5 * lo  # stricter than anything measures: the decision must follow it, not the searched budget

    def device(networks, resolution, *, se=False):  # every net measures 10 % over its prediction
        return [1.1 * pred.predict(b, resolution, num_classes=10).latency_ms for b in networks]

    tightened = hi
    r = run_search(_space(tmp_path), Budgets(latency_ms=tightened), resolution=16, num_classes=10, population=4,
                   iterations=12, proxy="params", batch_size=1, predictor=pred, measure_fn=device, top_k=3,
                   decide_budget_ms=user)
    m = r.report["measured"]
    assert m["ran"] and not any(x["meets_budget_measured"] for x in m["results"])
    assert m["chosen_meets_budget_measured"] is False and "none of the top" in m["decision"]
    assert r.report["budgets"]["latency"]["value"] == tightened  # the budget the search ran under


def test_resume_with_another_table_is_refused(tiny_table, tmp_path):
    from zendeploy.search import CheckpointError

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_bytes(tiny_table.read_bytes())
    data = json.loads(tiny_table.read_text())
    data["provenance"]["notes"].append("edited")
    b.write_text(json.dumps(data))
    hi = data["coverage"]["network_latency_ms"][1]
    kw = dict(resolution=16, num_classes=10, population=4, iterations=4, proxy="params", batch_size=1,
              out_dir=tmp_path / "run", checkpoint_every=0.0)
    run_search(_space(tmp_path), Budgets(latency_ms=hi), predictor=load_predictor(a), **kw)
    with pytest.raises(CheckpointError, match="predictor"):
        run_search(_space(tmp_path), Budgets(latency_ms=hi), predictor=load_predictor(b), resume=True, **kw)
    run_search(_space(tmp_path), Budgets(latency_ms=hi), predictor=load_predictor(str(a)), resume=True, **kw)


def test_on_demand_timing_never_mixes_devices(tiny_table, tmp_path):
    """A table measured with other settings than this host's backend (here: 2 threads) gets no units timed here."""
    from zendeploy.latency.ondemand import OnDemandUnits

    pred = LatencyPredictor(load_table(tiny_table))
    timer = OnDemandUnits(pred, make_backend("cpu", threads=2), tmp_path / "t.json", tmp_path / "w", settings=FAST)
    assert timer(parse_structure(BOTTLENECK), ["test"]) is False and timer.refused and timer.units == 0


def test_samplers_never_draw_a_network_export_cannot_write():
    """A network whose fp32 weights pass protobuf's 2 GiB ONNX limit (``zendeploy export`` refuses it) is never
    sampled for a table: the default validation of a resnet table at 224 once drew one and died in the exporter."""
    from zendeploy.cost import network_cost
    from zendeploy.latency.sampling import MAX_EXPORTABLE_PARAMS, _new_network_macs

    giant = parse_structure("SuperConvK3BNRELU(3,64,2,1)SuperResK3K3(64,2048,2,2048,1)SuperResK3K3(2048,8192,2,8192,2)"
                            "SuperConvK1BNRELU(8192,4096,1,1)")
    assert network_cost(giant, 224, num_classes=1000).params > MAX_EXPORTABLE_PARAMS
    assert _new_network_macs(giant, set(), None, 224, 1000) is None
    small = parse_structure("SuperConvK3BNRELU(3,32,2,1)SuperResK3K3(32,64,2,32,1)SuperConvK1BNRELU(64,256,1,1)")
    assert _new_network_macs(small, set(), None, 224, 1000) == network_cost(small, 224, num_classes=1000).macs


def test_an_anchor_refits_the_calibration_on_networks_measured_now(tiny_table, tmp_path):
    """A table re-anchored on some of its calibration networks measured again (here: the host twice as fast, the
    measurements given, nothing timed) predicts from the anchor's fit; clearing it restores the as-built table, a
    refit keeps it, and saving and loading keeps it."""
    from zendeploy.cost import network_cost
    from zendeploy.latency.anchor import ANCHOR_MIN_GAIN, anchor_structures, clear_anchor, fit_anchor
    from zendeploy.latency.tables import save_table

    table = load_table(tiny_table)
    picks = anchor_structures(table, 4)
    macs = {s: network_cost(parse_structure(s), 16, num_classes=10).macs for s in table.calibration.structures}
    assert len(picks) == 4 and set(picks) <= set(macs)
    assert min(macs[s] for s in picks) == min(macs.values()) and max(macs[s] for s in picks) == max(macs.values())
    with pytest.raises(LatencyTableError, match="at least 4 networks"):
        anchor_structures(table, 3)
    built = dict(zip(table.calibration.structures, table.calibration.measured_ms))
    anchored = fit_anchor(table, picks, [built[s] / 2 for s in picks])  # the host twice as fast
    a = anchored.anchor
    assert a is not None and a.structures == picks and a.speed_ratio == pytest.approx(0.5, rel=0.2)
    assert a.method in ("scale", "refit") and a.loo_mape_pct["as built"] > 50  # as built it is twice too slow
    assert a.loo_mape_pct[a.method] <= min(a.loo_mape_pct.values()) / (1 - ANCHOR_MIN_GAIN)
    assert anchored.effective_calibration() is a.calibration and anchored.calibration == table.calibration
    assert anchored.coverage == table.coverage  # budgets are checked against the range as built, anchored or not
    before = LatencyPredictor(table).predict(parse_structure(GRID[0]), 16, num_classes=10).batch_latency_ms
    after = LatencyPredictor(anchored).predict(parse_structure(GRID[0]), 16, num_classes=10).batch_latency_ms
    assert after == pytest.approx(before / 2, rel=0.2)
    same = fit_anchor(table, picks, [built[s] for s in picks]).anchor  # the host as it was
    assert same.speed_ratio == pytest.approx(1.0, rel=0.1) and same.loo_mape_pct["as built"] < 20
    path = save_table(anchored, tmp_path / "anchored.json")
    assert load_table(path).anchor == a
    assert LatencyPredictor(clear_anchor(load_table(path))).predict(
        parse_structure(GRID[0]), 16, num_classes=10).batch_latency_ms == pytest.approx(before)
    from zendeploy.latency.refit import refit_file

    refitted = refit_file(path).table  # refit keeps the anchor, fitted again on its own measurements
    assert refitted.anchor is not None and refitted.anchor.structures == picks
    assert refitted.anchor.measured_ms == a.measured_ms and refit_table(load_table(path)).anchor is None
    with pytest.raises(LatencyTableError, match="4 anchor networks but 3 measurements"):
        fit_anchor(table, picks, [1.0, 1.0, 1.0])


def test_an_anchor_method_with_more_parameters_must_win_by_a_tenth():
    """Measured on one host an hour apart a network varies by up to 12 %: a scale or refit that wins by less than
    ANCHOR_MIN_GAIN of the simpler method's leave-one-out error on 12 anchors is noise, and as built stays."""
    from zendeploy.latency.anchor import ANCHOR_MIN_GAIN, choose_method

    assert ANCHOR_MIN_GAIN == pytest.approx(0.1)
    assert choose_method({"as built": 5.19, "scale": 4.94, "refit": 6.80}) == "as built"  # 5 % better: noise
    assert choose_method({"as built": 2.45, "scale": 1.76, "refit": 3.39}) == "scale"
    assert choose_method({"as built": 50.0, "scale": 12.0, "refit": 11.5}) == "scale"  # refit: 4 % over scale
    assert choose_method({"as built": 50.0, "scale": 12.0, "refit": 9.0}) == "refit"
    assert choose_method({"as built": 5.0, "scale": 5.0, "refit": 4.4}) == "refit"  # 12 % over the best simpler one


def test_anchor_measures_on_this_host_only(tiny_table, tmp_path, caplog):
    """Real ONNX Runtime: ``zendeploy latency anchor`` measures the networks and writes the anchored table; --clear
    removes the anchor; a table of another CPU is anchored as a transfer (and says so); one of another setup (2
    threads, another runtime version) is refused in one line."""
    from typer.testing import CliRunner

    from zendeploy.cli.app import app
    from zendeploy.latency.anchor import check_anchorable, check_anchorable_here

    table = tmp_path / "t.json"
    table.write_bytes(tiny_table.read_bytes())
    with pytest.raises(LatencyTableError, match="cannot anchor the table on this host: threads differs"):
        check_anchorable(load_table(table), make_backend("cpu", threads=2))
    res = CliRunner().invoke(app, ["latency", "anchor", "--table", str(table), "--networks", "4", "--passes", "1"])
    assert res.exit_code == 0, res.output
    assert "re-anchored on 4 calibration networks measured now" in " ".join(res.output.split())
    a = load_table(table).anchor
    assert a is not None and len(a.measured_ms) == 4 and all(v > 0 for v in a.measured_ms)
    assert a.host.get("cpu_model") is not None
    res = CliRunner().invoke(app, ["latency", "anchor", "--table", str(table), "--clear"])
    assert res.exit_code == 0 and load_table(table).anchor is None
    data = json.loads(table.read_text())
    data["provenance"]["device_name"] = "another CPU"  # units measured on another processor: a transfer
    table.write_text(json.dumps(data))
    zlog = logging.getLogger("zendeploy")  # the CLI's handler stops propagation: listen on zendeploy's logger
    zlog.addHandler(caplog.handler)
    try:  # validate --anchor and latency anchor both say so before measuring
        assert check_anchorable_here(load_table(table), make_backend("cpu")) == "another CPU"
    finally:
        zlog.removeHandler(caplog.handler)
    assert "measured on another CPU, not this host's CPU" in caplog.text and "(a transfer)" in caplog.text
    res = CliRunner().invoke(app, ["latency", "anchor", "--table", str(table), "--networks", "4", "--passes", "1"])
    assert res.exit_code == 0, res.output
    assert load_table(table).anchor.transferred_from == "another CPU"
    res = CliRunner().invoke(app, ["latency", "predict", "--table", str(table), GRID[0]])
    assert "its units were measured on another CPU" in " ".join(res.output.split())
    data["provenance"]["backend_version"] = "onnxruntime 0.1"  # another runtime: refused
    table.write_text(json.dumps(data))
    res = CliRunner().invoke(app, ["latency", "anchor", "--table", str(table), "--networks", "4"])
    assert res.exit_code == 1 and "cannot anchor the table on this host: backend_version differs" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_a_search_anchors_its_table_once_and_resumes_with_the_same_anchor(tiny_table, tmp_path):
    """``search --anchor``: the table's networks are measured at the start (real ONNX Runtime), kept in the run
    folder, reused by --resume (same fingerprint, nothing measured again); a corrupt anchor file is one line; a
    remote table cannot be anchored."""
    from zendeploy.latency.anchor import ANCHOR_FILE
    from zendeploy.search.job import SearchRequest, prepare_search

    table = tmp_path / "t.json"
    table.write_bytes(tiny_table.read_bytes())
    out = tmp_path / "run"
    # a params budget: the tiny table's latency range is too narrow for a budget to stay inside it at any host speed
    from zendeploy.search import space_from_dict

    basic_only = space_from_dict(dict(SPACE_FILE, block_types=[["SuperResK3K3"]]), source="test")
    kw = dict(space=basic_only, res=16, num_classes=10, population=4, iterations=4, proxy="params",
              batch_size=1, table=str(table), params="20K", top_k=2, checkpoint_every=0.0)
    job = prepare_search(SearchRequest(out, anchor=4, **kw))
    assert job.hooks.predictor.table.anchor is not None and job.hooks.predictor.anchor_sha256
    result, _ = job.run()
    record = json.loads((out / ANCHOR_FILE).read_text())
    assert len(record["structures"]) == 4 and result.report["settings"]["predictor"]["anchor"]["networks"] == 4
    stamp = (out / ANCHOR_FILE).stat().st_mtime_ns
    again = prepare_search(SearchRequest(out, anchor=4, resume=True, **kw))
    assert (out / ANCHOR_FILE).stat().st_mtime_ns == stamp  # reused, not measured again
    assert again.hooks.predictor.anchor_sha256 == job.hooks.predictor.anchor_sha256
    again.run()
    from zendeploy.search.job import _auto_anchor

    pred = load_predictor(table)  # the CLI's default: 12 with a latency budget on a table of this host, else 0
    here = make_backend("cpu")
    assert _auto_anchor(pred, here, 1.0) == 12 and _auto_anchor(pred, here, None) == 0
    assert _auto_anchor(pred, None, 1.0) == 0
    assert prepare_search(SearchRequest(tmp_path / "auto", anchor=None, **kw)).hooks.predictor.table.anchor is None
    (out / ANCHOR_FILE).write_text("{not json")
    with pytest.raises(LatencyTableError, match="anchor file .* is corrupt; delete it"):
        prepare_search(SearchRequest(out, anchor=4, resume=True, **kw))
    data = json.loads(table.read_text())
    data["provenance"]["device"] = "pixel"
    remote = tmp_path / "pixel.json"
    remote.write_text(json.dumps(data))
    with pytest.raises(BudgetError, match="--anchor measures networks on the table's device, which this host cannot"):
        prepare_search(SearchRequest(tmp_path / "r", anchor=4, **{**kw, "table": str(remote)}))
    assert prepare_search(SearchRequest(tmp_path / "r2", anchor=None, **{**kw, "table": str(remote)})
                          ).hooks.predictor.table.anchor is None  # the default leaves a remote table as written


def test_validate_with_an_anchor_reports_both(tiny_table, tmp_path):
    """``validate --anchor``: the anchor networks are measured in the same passes as the held-out ones; the report
    holds the anchored accuracy and the as-built one, and a revalidation re-anchors on the same measurements."""
    from zendeploy.latency.validate import revalidate, validate_table

    table = tmp_path / "t.json"
    data = json.loads(tiny_table.read_text())
    data["space"]["definition"]["block_types"] = [["SuperResK3K3"]]  # the units the tiny table measured
    table.write_text(json.dumps(data))
    report = validate_table(table, samples=3, passes=1, anchor=4, official=False, workdir=tmp_path / "v")
    assert report.as_built is not None and report.calibrated is not None
    assert report.anchor["networks"] == 4 and len(report.anchor["measured_ms"]) == 4
    assert not set(report.anchor["structures"]) & set(report.structures)  # anchors are never held-out networks
    again = revalidate(report, table)
    assert again.calibrated.mape_pct == pytest.approx(report.calibrated.mape_pct)
    assert again.as_built.mape_pct == pytest.approx(report.as_built.mape_pct)


def test_validation_times_only_the_official_zennets_a_table_covers():
    """A table profiled over 198M-4G MACs at 224 covers the two smallest ResNet-space latency ZenNets (1.76G, 3.42G);
    the 4.9G-22G ones are outside it and not timed (a search refuses them as outside coverage)."""
    from zendeploy.latency.sampling import official_networks
    from zendeploy.latency.validate import split_by_range
    from zendeploy.space.spaces import load_space

    zennets = official_networks(load_space("resnet"), 224)
    inside, outside = split_by_range(zennets, 198e6, 4e9, 224, 1000)
    assert sorted(z[0] for z in inside) == ["zennet_imagenet1k_latency01ms_res224",
                                            "zennet_imagenet1k_latency02ms_res224"]
    assert len(outside) == 4 and "zennet_imagenet1k_latency12ms_res224" in outside
    assert split_by_range(zennets, 1e6, 1e12, 224, 1000)[1] == []


def test_predictions_add_the_weights_a_network_streams(tiny_table):
    """A calibration with the weights term adds e ms per megabyte of the network's weights beyond the cached ones
    (parameters x 4 bytes at fp32), once per batch."""
    from zendeploy.cost import network_cost

    table = load_table(tiny_table)
    blocks = parse_structure(GRID[0])
    base = LatencyPredictor(table).predict(blocks, 16, num_classes=10)
    assert base.weights_mb == pytest.approx(network_cost(blocks, 16, num_classes=10).params * 4 / 1e6)
    cal = table.calibration.model_copy(update={"e_ms_per_mb": 0.5, "weights_free_mb": 0.0})
    streamed = LatencyPredictor(table.model_copy(update={"calibration": cal})).predict(blocks, 16, num_classes=10)
    assert streamed.batch_latency_ms == pytest.approx(base.batch_latency_ms + 0.5 * base.weights_mb, rel=1e-6)
