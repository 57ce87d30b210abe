"""Latency tables: unit decomposition, model fit, calibration, schema, predictor, resumable profiling (real ORT)."""

import json
import math

import numpy as np
import pytest
import torch
from fvcore.nn import FlopCountAnalysis

from zendeploy.cost import network_cost, unit_cost
from zendeploy.errors import LatencyTableError
from zendeploy.latency.calibrate import accuracy, apply_calibration, fit_calibration, kendall_tau
from zendeploy.latency.model import fit_family, fit_unit_models, model_predict, unit_features, unit_fields, unit_key
from zendeploy.latency.predict import LatencyPredictor
from zendeploy.latency.schema import (
    Entry, LatencyTable, MeasurementSettings, Provenance, SpaceInfo, check_same_fingerprint,
)
from zendeploy.latency.tables import load_table, save_table
from zendeploy.space.blocks import build_unit
from zendeploy.space.structure import parse_structure
from zendeploy.space.units import Unit, network_units
from zendeploy.zoo import get_zoo, list_zoo


def _fvcore_macs(module, shape):
    fca = FlopCountAnalysis(module.eval(), torch.randn(*shape))
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    by_op = fca.by_operator()
    return by_op.get("conv", 0) + by_op.get("linear", 0)


@pytest.mark.parametrize("name", [n for n in list_zoo() if "latency" not in n] + ["zennet_imagenet1k_latency01ms_res224"])
def test_units_cover_every_layer_of_zoo_nets(name):
    e = get_zoo(name)
    blocks = parse_structure(e.structure)
    res = 32 if e.resolution == 32 else 64
    placed = network_units(blocks, res, se=e.se, num_classes=e.num_classes)
    total = 0
    with torch.no_grad():
        for p in placed:
            module = build_unit(p.unit)
            shape = (1, p.unit.in_channels, p.resolution, p.resolution)
            macs = _fvcore_macs(module, shape)
            assert macs == unit_cost(p.unit, p.resolution).macs, p.unit
            total += macs
    assert total == network_cost(blocks, res, num_classes=e.num_classes, se=e.se).macs


def _synthetic_entries(family, n, coef, seed=0):
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(n):
        c_in, c_mid, c_out = (int(8 * rng.integers(1, 32)) for _ in range(3))
        res = int(rng.choice([4, 8, 16, 32]))
        stride = int(rng.choice([1, 2]))
        unit = Unit(family, c_in, c_out, c_mid, int(rng.choice([3, 5, 7])), stride, 0, False, "proj")
        f = unit_features(unit, res)
        y = sum(coef.get(k, 0.0) * v for k, v in f.items())
        entries.append(Entry(key=unit_key(unit, res), unit=unit_fields(unit, res), latency_ms=y, median_ms=y,
                             p10_ms=y, p90_ms=y, std_ms=0.0, samples=10, pass_medians_ms=[y]))
    return entries


def test_family_model_recovers_a_known_linear_law():
    coef = {"const": 0.01, "act_in": 0.3, "act_out": 0.2, "macs_1x1": 0.01, "macs_k3": 0.02, "macs_k5": 0.025,
            "macs_k7": 0.03, "macs_proj": 0.01, "const_proj": 0.002, "act_mid": 0.1}
    entries = _synthetic_entries("bottleneck", 80, coef)
    model = fit_family("bottleneck", entries)
    assert model.cv_rel_error < 1e-3
    for e in entries[:10]:
        from zendeploy.latency.model import fields_unit

        assert model_predict(model, *fields_unit(e.unit)) == pytest.approx(e.latency_ms, rel=1e-3)


def test_family_model_learns_partial_channel_tiles_and_weights_outgrowing_the_cache():
    """A backend that pays part of the work a 16-channel rounding adds, and more per MAC once a unit's weights pass
    1 MB: the base features cannot express it, the extended set (chosen by cross-validation) recovers it."""
    from zendeploy.latency.model import EXTENDED_FEATURES, FEATURES, fields_unit

    coef = {"const": 0.01, "act_in": 0.3, "act_out": 0.2, "macs_k3": 0.02, "macs_k5": 0.025, "macs_k7": 0.03,
            "macs_proj": 0.01, "const_proj": 0.002, "pad_macs_k3": 0.01, "pad_macs_k5": 0.012, "pad_macs_k7": 0.015,
            "macs_wlog": 0.004}
    entries = _synthetic_entries("basic", 120, coef)
    assert any(unit_features(*fields_unit(e.unit))["macs_wlog"] > 0 for e in entries)  # some weights exceed 1 MB
    model = fit_family("basic", entries)
    assert model.features == EXTENDED_FEATURES["basic"] and len(model.features) > len(FEATURES["basic"])
    assert model.cv_rel_error < 1e-3
    base_only = fit_family("basic", _synthetic_entries("basic", 120, {k: v for k, v in coef.items()
                                                                     if k in FEATURES["basic"]}))
    assert base_only.features == FEATURES["basic"]  # a law without those effects keeps the smaller set


def test_calibration_recovers_affine_law_and_metrics():
    rng = np.random.default_rng(0)
    sums = rng.uniform(0.2, 5.0, 20)
    n = rng.integers(5, 30, 20)
    y = 0.05 + 0.9 * sums - 0.004 * n
    cal = fit_calibration(sums, n, y, ridge=1e-9)
    assert (cal.a_ms, cal.b, cal.c_ms) == pytest.approx((0.05, 0.9, -0.004), abs=1e-6)
    assert cal.mape_calibrated < 1e-4 < cal.mape_raw
    assert apply_calibration(cal, 1.0, 10) == pytest.approx(0.05 + 0.9 - 0.04)
    acc = accuracy([1.0, 2.15, 3.1, 4.5], [1.0, 2.0, 3.2, 4.0], budget_ms=3.15)
    assert acc.mape_pct == pytest.approx((0 + 7.5 + 100 * 0.1 / 3.2 + 12.5) / 4)
    assert acc.within_5_pct == 50 and acc.within_10_pct == 75
    # predicted under 3.15 ms: 1.0, 2.15, 3.1; of those, the 3.2 ms network measures over: 1 of 3
    assert acc.predicted_under_budget == 3 and acc.violation_rate_pct == pytest.approx(100 / 3)


def test_calibration_keeps_the_weights_term_only_where_it_lowers_the_error():
    """Networks whose weights outgrow the cache stream them from memory once per inference: the weights term is
    fitted (with the cached megabytes that fit best) when it lowers the leave-one-out error, and left out when the
    networks show no such cost; a prediction adds it beyond the cached megabytes only."""
    rng = np.random.default_rng(1)
    sums = rng.uniform(0.5, 20.0, 30)
    n = rng.integers(5, 30, 30)
    mb = rng.uniform(0.5, 120.0, 30)
    streamed = 1.02 * sums + 0.05 * np.maximum(mb - 8.0, 0.0)
    cal = fit_calibration(sums, n, streamed, weights_mb=mb, ridge=1e-9)
    assert cal.weights_free_mb == 8.0 and cal.e_ms_per_mb == pytest.approx(0.05, rel=1e-3)
    assert apply_calibration(cal, 10.0, 12, weights_mb=108.0) - apply_calibration(cal, 10.0, 12, weights_mb=8.0) \
        == pytest.approx(5.0, rel=1e-3)
    plain = fit_calibration(sums, n, 1.02 * sums * rng.uniform(0.99, 1.01, 30), weights_mb=mb)
    assert plain.weights_free_mb is None and plain.e_ms_per_mb == 0.0
    few = fit_calibration(sums[:12], n[:12], streamed[:12], weights_mb=mb[:12])  # 12 networks: no 5th parameter
    assert few.weights_free_mb is None
    with pytest.raises(ValueError, match="e_ms_per_mb"):
        type(few).model_validate({**few.model_dump(), "e_ms_per_mb": float("nan")})  # a hand-edited table


def test_kendall_tau_matches_scipy():
    from scipy.stats import kendalltau

    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    y = x + rng.normal(scale=0.5, size=40)
    y[3] = y[4]  # a tie
    assert kendall_tau(x, y) == pytest.approx(kendalltau(x, y).statistic, abs=1e-12)


def _table(entries, device="cpu", **prov):
    fields = dict(device=device, device_name="test cpu", backend="onnxruntime", backend_version="onnxruntime 1.0",
                  precision="fp32", batch=1, input_layout="NCHW", threads=1, exporter="torch.onnx", opset=17,
                  date="2026-11-24T00:00:00+00:00", zendeploy_version="0.1.0",
                  measurement=MeasurementSettings(warmup_runs=1, min_runs=1, min_time_s=0.0, passes=1,
                                                  statistic="min", order="shuffled"))
    fields.update(prov)
    return LatencyTable(provenance=Provenance(**fields), space=SpaceInfo(name="resnet", resolution=32, num_classes=10),
                        entries=entries, unit_models=fit_unit_models(entries))


def test_schema_round_trip_and_clear_errors(tmp_path):
    coef = {"const": 0.01, "act_in": 0.3, "act_out": 0.2, "macs_k3": 0.02, "macs_k5": 0.02, "macs_k7": 0.02,
            "act_mid": 0.1, "macs_1x1": 0.01, "macs_proj": 0.01}
    table = _table(_synthetic_entries("bottleneck", 30, coef))
    path = save_table(table, tmp_path / "t.json")
    loaded = load_table(path)
    assert loaded.model_dump(exclude={"coverage"}) == table.model_dump(exclude={"coverage"})
    assert [f.family for f in loaded.coverage.families] == ["bottleneck"]  # derived on load for older tables
    data = json.loads(path.read_text())
    data["entries"][2]["latency_ms"] = -1
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match=r"entries\.2\.latency_ms: Input should be greater than 0"):
        load_table(tmp_path / "bad.json")
    data = json.loads(path.read_text())
    data["provenance"]["devcie"] = "x"
    (tmp_path / "typo.json").write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match=r"provenance\.devcie: Extra inputs are not permitted"):
        load_table(tmp_path / "typo.json")
    (tmp_path / "cut.json").write_text(path.read_text()[:100])
    with pytest.raises(LatencyTableError, match="is not valid JSON"):
        load_table(tmp_path / "cut.json")
    with pytest.raises(LatencyTableError, match="does not exist"):
        load_table(tmp_path / "none.json")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["entries"][0].__setitem__("latency_ms", float("nan")), r"entries\.0\.latency_ms: Input should be a finite"),
    (lambda d: d["entries"][0].__setitem__("latency_ms", 1e308), r"entries\.0\.latency_ms: Input should be less than"),
    (lambda d: d["entries"][1].__setitem__("pass_medians_ms", [0.1, float("inf")]), r"entries\.1\.pass_medians_ms"),
    (lambda d: d["unit_models"][0]["coefficients"].__setitem__(0, float("nan")), r"unit_models\.0\.coefficients"),
    (lambda d: d["unit_models"][0]["coefficients"].__setitem__(0, -1.0), r"unit_models\.0: .*non-negative"),
    (lambda d: d["unit_models"][0]["coefficients"].pop(), r"unit_models\.0: .*features but"),
    (lambda d: d.__setitem__("entries", []), r"entries: no measured unit"),
    (lambda d: d["entries"].__setitem__(slice(None), [e for e in d["entries"] if e["unit"]["kind"] != "bottleneck"]
                                        or d["entries"][:1]) or d["entries"][0]["unit"].__setitem__("kind", "basic"),
     r"unit_models\.bottleneck: no 'bottleneck' entry"),
])
def test_tables_that_could_predict_nonsense_are_refused_naming_the_field(tmp_path, edit, message):
    """NaN, infinite, absurd or mismatched values, or models without entries: refused on load, the field named (a
    NaN prediction would pass every budget: ``budget < nan`` is False)."""
    coef = {"const": 0.01, "act_in": 0.3, "act_out": 0.2, "macs_k3": 0.02, "macs_1x1": 0.01}
    path = save_table(_table(_synthetic_entries("bottleneck", 12, coef)), tmp_path / "t.json")
    data = json.loads(path.read_text())
    edit(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))  # json writes NaN / Infinity literals, as a hand edit might
    with pytest.raises(LatencyTableError, match=message):
        load_table(bad)


def test_mixed_fingerprints_are_refused():
    a = _table([]).provenance
    b = _table([], threads=4).provenance
    check_same_fingerprint(a, _table([]).provenance)
    with pytest.raises(LatencyTableError, match=r"threads differs \(1 vs 4\)"):
        check_same_fingerprint(a, b)


def test_predictor_measured_interpolated_extrapolated_and_missing():
    coef = {"const": 0.01, "act_in": 0.3, "act_out": 0.2, "macs_k3": 0.02, "macs_k5": 0.02, "macs_k7": 0.02,
            "act_mid": 0.1, "macs_1x1": 0.01, "macs_proj": 0.01}
    entries = _synthetic_entries("bottleneck", 40, coef)
    predictor = LatencyPredictor(_table(entries))
    e = entries[0]
    from zendeploy.latency.model import fields_unit

    unit, res = fields_unit(e.unit)
    hit = predictor.predict_unit(unit, res)
    assert hit.origin == "measured" and hit.latency_ms == e.latency_ms
    inside = Unit("bottleneck", 64, 64, 64, 3, 1, 0, False, "proj")
    got = predictor.predict_unit(inside, 8)
    assert got.origin == "interpolated" and got.sigma_ms > 0
    assert got.latency_ms == pytest.approx(sum(coef.get(k, 0) * v for k, v in unit_features(inside, 8).items()),
                                           rel=1e-2)
    huge = Unit("bottleneck", 4096, 4096, 4096, 3, 1, 0, False, "proj")
    assert predictor.predict_unit(huge, 8).origin == "extrapolated"
    with pytest.raises(LatencyTableError, match="outside the range the table measured"):
        predictor.predict_unit(Unit("bottleneck", 4096, 4096, 2048, 3, 1, 0, False, "proj"), 8, strict=True)
    with pytest.raises(LatencyTableError, match="has no measurements for 'inverted' units"):
        predictor.predict_unit(Unit("inverted", 8, 8, 16, 3, 1, 0, False, "identity"), 8)


def test_network_prediction_sums_units_and_reports_shares():
    s = "SuperConvK3BNRELU(3,16,1,1)SuperResK1K3K1(16,32,2,16,1)SuperConvK1BNRELU(32,64,1,1)"
    blocks = parse_structure(s)
    placed = network_units(blocks, 32, num_classes=10)
    entries = []
    for i, p in enumerate(placed):
        y = 0.1 * (i + 1)
        entries.append(Entry(key=unit_key(p.unit, p.resolution), unit=unit_fields(p.unit, p.resolution),
                             latency_ms=y, median_ms=y, p10_ms=y, p90_ms=y, std_ms=0.0, samples=5,
                             pass_medians_ms=[y, y * 1.02]))
    table = _table(entries)
    pred = LatencyPredictor(table).predict(blocks, 32)
    assert pred.raw_sum_ms == pytest.approx(sum(0.1 * (i + 1) for i in range(len(placed))))
    assert pred.measured_units == len(placed) and pred.measured_share == 1.0
    assert not pred.calibrated and pred.latency_ms == pred.raw_sum_ms
    assert pred.low_ms < pred.latency_ms < pred.high_ms
    table.calibration = fit_calibration([1, 2, 3, 4], [3, 3, 3, 3], [0.9, 1.8, 2.7, 3.6])
    pred2 = LatencyPredictor(table).predict(blocks, 32)
    assert pred2.calibrated and pred2.latency_ms == pytest.approx(0.9 * pred.raw_sum_ms, rel=0.02)
    assert math.isfinite(pred2.sigma_ms)


def test_a_non_physical_fit_falls_back_to_a_scaled_sum():
    """Four noisy networks can fit a negative weight on the sum; the calibration then scales the sum instead (a
    correction never inverts it), and the table stays loadable."""
    cal = fit_calibration([1.0, 2.0, 3.0, 4.0], [8, 2, 6, 1], [4.0, 1.0, 3.0, 0.5])  # y follows the unit count
    assert cal.b > 0 and cal.a_ms == 0 and cal.c_ms == 0 and math.isfinite(cal.rel_std)
