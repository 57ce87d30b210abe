"""The end-to-end demo on this CPU, shrunk: real profiling (ONNX Runtime), search, export (ONNX + LiteRT), verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zendeploy.cli.app import app
from zendeploy.demo import DemoSettings, run_demo
from zendeploy.errors import LatencyTableError
from zendeploy.space.structure import parse_structure

pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

TINY = dict(grid_networks=6, calibration_networks=5, passes=1, iterations=40, max_evaluations=20, population=8,
            batch_size=4, top_k=3, score_repeats=1)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = run_demo(out, DemoSettings(**TINY))
    return out, result


def test_demo_runs_every_stage(demo_run):
    out, r = demo_run
    summary = json.loads((out / "demo.json").read_text())
    assert summary["ok"] == r.ok and summary["structure"] == r.structure
    parse_structure(r.structure)  # the one currency between stages
    assert r.predicted_ms <= r.budget_ms  # the search respected the latency budget (as predicted)
    # the budget is the official ZenNet-0.5M measured here, shown beside the chosen net
    assert r.budget_source == "measured latency of zennet_cifar10_model_size05M_res32 on this machine"
    assert r.reference["name"] == "zennet_cifar10_model_size05M_res32"
    assert r.budget_ms == pytest.approx(r.reference["measured_ms"], rel=1e-3) and r.reference["zen_score"] > 0
    assert r.measured_ms is not None and r.measured_ms > 0 and r.meets_budget_measured in (True, False)
    assert r.ok == (r.meets_budget_measured is True)  # exports all passed (below): ok is the measured budget
    if not r.ok:
        assert any("not within" in p for p in summary["problems"])
    assert r.decision and r.rescored is not None
    formats = {e["format"]: e for e in r.exports}
    assert set(formats) == {"onnx", "tflite"}
    for e in formats.values():
        assert e["status"] == "ok" and e["parity_passed"] and e["max_rel_err"] <= 1e-4
        assert 0 < e["latency_ms"] <= e["median_ms"]
    assert formats["onnx"]["lut_ms"] is not None  # same backend as the table: prediction vs measurement
    assert formats["tflite"]["lut_ms"] is None and "backend" in formats["tflite"]["lut_note"]
    for path in r.artifacts.values():
        assert Path(path).exists(), path
    report = json.loads((out / "search" / "report.json").read_text())
    assert report["budgets"]["latency"]["value"] == r.budget_ms
    assert (out / "reference.json").exists()


def test_demo_rerun_reuses_the_table_and_resumes_the_search(demo_run):
    out, r = demo_run
    table = out / "latency_table.json"
    before = table.stat().st_mtime_ns
    again = run_demo(out, DemoSettings(**TINY, formats="onnx"))
    assert table.stat().st_mtime_ns == before and again.structure == r.structure
    assert again.budget_ms == r.budget_ms


def test_demo_refuses_a_corrupt_table(tmp_path):
    (tmp_path / "latency_table.json").write_text("{not json")
    with pytest.raises(LatencyTableError, match="latency_table.json"):
        run_demo(tmp_path, DemoSettings(**TINY))


def test_demo_cli_missing_table_is_one_line(tmp_path):
    res = CliRunner().invoke(app, ["demo", "-o", str(tmp_path / "d"), "--table", str(tmp_path / "nope.json")])
    assert res.exit_code == 1
    assert "nope.json' does not exist" in res.output and "Traceback" not in res.output


def test_demo_help_lists_the_stages():
    res = CliRunner().invoke(app, ["demo", "--help"])
    assert res.exit_code == 0 and "--latency-ms" in res.output and "--table" in res.output


def test_demo_with_a_shipped_table_searches_that_tables_space(tmp_path):
    table = Path(__file__).resolve().parents[1] / "latency_tables" / "cpu-onnxruntime-fp32-b1-mobilenet-r32.json"
    r = run_demo(tmp_path, DemoSettings(**TINY, formats="onnx", table=str(table)))
    assert "SuperResIDW" in r.structure and r.table == str(table)  # the mobilenet space, not the default resnet
    assert r.predicted_ms <= r.budget_ms and r.exports[0]["status"] == "ok"
    assert not (tmp_path / "latency_table.json").exists()  # nothing profiled
