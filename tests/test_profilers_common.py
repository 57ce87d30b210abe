"""Tests of profilers.common: statistics, the timing loop, files, manifests, fingerprint."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profilers.common import (
    MAX_ERROR_CHARS,
    ManifestEntry,
    ProfilerError,
    TimingStats,
    append_jsonl,
    atomic_write_bytes,
    atomic_write_json,
    environment_fingerprint,
    load_manifest,
    measure_samples,
    read_jsonl,
    run_manifest,
    stats_result,
    time_callable,
)

# ---------------------------------------------------------------------------------------------
# TimingStats


def test_stats_of_four_samples_by_hand():
    s = TimingStats.from_samples([4.0, 1.0, 3.0, 2.0])
    assert s.n == 4
    assert s.median_ms == pytest.approx(2.5)
    assert s.mean_ms == pytest.approx(2.5)
    assert s.min_ms == 1.0
    # linear interpolation: position (n-1)*q = 0.3 and 2.7
    assert s.p10_ms == pytest.approx(1.3)
    assert s.p90_ms == pytest.approx(3.7)
    assert s.std_ms == pytest.approx(math.sqrt(5.0 / 3.0))  # sample std (n-1)


def test_stats_of_one_sample():
    s = TimingStats.from_samples([7.25])
    assert (s.n, s.median_ms, s.mean_ms, s.min_ms, s.p10_ms, s.p90_ms, s.std_ms) == (1, 7.25, 7.25, 7.25, 7.25, 7.25, 0.0)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [1.0, float("inf")], [-0.5, 1.0]])
def test_stats_refuse_bad_samples(bad):
    with pytest.raises(ProfilerError):
        TimingStats.from_samples(bad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1e4, allow_nan=False), min_size=1, max_size=200))
def test_stats_match_numpy(samples):
    s = TimingStats.from_samples(samples)
    a = np.asarray(samples, dtype=np.float64)
    assert s.n == len(samples)
    assert s.median_ms == pytest.approx(float(np.percentile(a, 50)), rel=1e-9, abs=1e-9)
    assert s.p10_ms == pytest.approx(float(np.percentile(a, 10)), rel=1e-9, abs=1e-9)
    assert s.p90_ms == pytest.approx(float(np.percentile(a, 90)), rel=1e-9, abs=1e-9)
    assert s.mean_ms == pytest.approx(float(a.mean()), rel=1e-9, abs=1e-9)
    assert s.min_ms == float(a.min())
    expected_std = float(a.std(ddof=1)) if len(samples) > 1 else 0.0
    assert s.std_ms == pytest.approx(expected_std, rel=1e-6, abs=1e-6)
    assert s.min_ms <= s.p10_ms <= s.median_ms <= s.p90_ms <= float(a.max())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=0.001, max_value=100.0), min_size=2, max_size=50), st.randoms())
def test_stats_do_not_depend_on_order(samples, rnd):
    shuffled = list(samples)
    rnd.shuffle(shuffled)
    assert TimingStats.from_samples(samples) == TimingStats.from_samples(shuffled)


def test_stats_dict_round_trip_and_result_record():
    s = TimingStats.from_samples([1.0, 2.0, 3.0])
    assert TimingStats.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert set(s.to_dict()) == {"n", "median_ms", "mean_ms", "min_ms", "p10_ms", "p90_ms", "std_ms"}
    rec = stats_result(s)
    assert rec["latency_ms"] == s.median_ms and rec["statistic"] == "median"
    with pytest.raises(ProfilerError):
        TimingStats.from_dict({"n": 3})


def test_profiler_error_is_one_short_line():
    err = ProfilerError("first line\nsecond\tline   " + "x" * 2000)
    text = str(err)
    assert "\n" not in text and "\t" not in text
    assert text.startswith("first line second line ")
    assert len(text) <= MAX_ERROR_CHARS


# ---------------------------------------------------------------------------------------------
# timing loop


class Clockless:
    """measure_once double: returns a fixed ms value and counts calls (no real time passes)."""

    def __init__(self, ms: float):
        self.ms = ms
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.ms


def test_loop_needs_both_count_and_time():
    m = Clockless(10.0)
    samples = measure_samples(m, warmup=3, repeats=5, min_time_s=0.2)
    assert len(samples) == 20  # 20 x 10 ms reaches 0.2 s; the count floor (5) was passed earlier
    assert m.calls == 23  # 3 warm-up calls are discarded


def test_loop_count_dominates_when_time_is_reached_first():
    m = Clockless(500.0)
    assert len(measure_samples(m, warmup=0, repeats=7, min_time_s=0.1)) == 7


def test_loop_is_capped_by_max_repeats():
    m = Clockless(0.001)
    assert len(measure_samples(m, warmup=1, repeats=2, min_time_s=100.0, max_repeats=50)) == 50


def test_loop_with_only_time_or_only_count():
    assert len(measure_samples(Clockless(1.0), warmup=0, min_time_s=0.005)) == 5
    assert len(measure_samples(Clockless(1.0), warmup=0, repeats=3)) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(warmup=-1, repeats=1),
        dict(warmup=0),
        dict(warmup=0, repeats=0),
        dict(warmup=0, repeats=5, max_repeats=4),
        dict(warmup=0, min_time_s=-1.0),
    ],
)
def test_loop_rejects_bad_settings(kwargs):
    with pytest.raises(ProfilerError):
        measure_samples(Clockless(1.0), **kwargs)


def test_time_callable_times_the_real_function():
    calls = []

    def work():
        calls.append(1)
        sum(range(2000))

    stats = time_callable(work, warmup=2, repeats=5, min_time_s=0.0)
    assert stats.n == 5
    assert len(calls) == 7
    assert 0.0 < stats.min_ms <= stats.median_ms < 1000.0


# ---------------------------------------------------------------------------------------------
# environment


def test_fingerprint_fields_and_runtime_versions():
    fp = environment_fingerprint({"onnxruntime": "1.2.3"})
    for key in ("hostname", "platform", "python", "cpu_model", "logical_cores", "numpy", "runtime_versions"):
        assert key in fp
    assert fp["runtime_versions"] == {"onnxruntime": "1.2.3"}
    assert fp["numpy"] == np.__version__
    assert fp["logical_cores"] == os.cpu_count()
    json.dumps(fp)  # JSON-serialisable


@pytest.mark.parametrize(
    "cpuinfo, expected",
    [
        ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n", "Intel(R) Xeon(R) CPU @ 2.20GHz"),
        ("processor\t: 0\nBogoMIPS\t: 38.40\nCPU part\t: 0xd05\n\nHardware\t: Qualcomm Technologies, Inc SM8350\n", "Qualcomm Technologies, Inc SM8350"),
        ("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n", "ARM implementer 0x41 part 0xd0b"),
        # a cloud VM's generic name covers several generations: family, model and stepping tell them apart
        ("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 167\n"
         "model name\t: Intel(R) Xeon(R) Processor\nstepping\t: 1\n",
         "Intel(R) Xeon(R) Processor (family 6, model 167, stepping 1)"),
    ],
)
def test_fingerprint_reads_cpu_model(tmp_path, cpuinfo, expected):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert environment_fingerprint(cpuinfo_path=str(path))["cpu_model"] == expected


# ---------------------------------------------------------------------------------------------
# files


def test_atomic_write_json_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2, "b": [1, 2]})
    assert json.loads(target.read_text()) == {"a": 2, "b": [1, 2]}
    assert os.listdir(target.parent) == ["out.json"]


def test_atomic_write_json_keeps_old_file_when_it_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(ProfilerError):
        atomic_write_json(target, {"bad": float("nan")})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_json(target, {"new": 1})
    assert json.loads(target.read_text()) == {"ok": True}
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_write_bytes(tmp_path):
    target = tmp_path / "cache.bin"
    atomic_write_bytes(target, b"\x00\x01abc")
    assert target.read_bytes() == b"\x00\x01abc"
    assert os.listdir(tmp_path) == ["cache.bin"]


def test_append_jsonl_survives_a_cut_last_line(tmp_path):
    out = tmp_path / "r.jsonl"
    append_jsonl(out, {"key": "a", "v": 1})
    with open(out, "a") as f:
        f.write('{"key": "b", "v"')  # a run killed mid-write
    append_jsonl(out, {"key": "c", "v": 3})
    lines = out.read_text().splitlines()
    assert lines[0] == '{"key":"a","v":1}'
    assert lines[-1] == '{"key":"c","v":3}'
    assert [r["key"] for r in read_jsonl(out)] == ["a", "c"]
    assert read_jsonl(tmp_path / "missing.jsonl") == []
    with pytest.raises(ProfilerError):
        append_jsonl(out, {"v": float("inf")})


# ---------------------------------------------------------------------------------------------
# manifests


def _write_manifest(tmp_path, entries):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(entries))
    return path


def test_load_manifest_resolves_paths_and_keeps_extras(tmp_path):
    path = _write_manifest(
        tmp_path,
        [{"key": "k1", "path": "models/a.onnx"}, {"key": "k2", "path": "/abs/b.tflite", "signature": "s", "shapes": {"x": [1, 2]}}],
    )
    entries = load_manifest(path)
    assert entries[0] == ManifestEntry(key="k1", path=str(tmp_path / "models" / "a.onnx"), model="models/a.onnx")
    assert entries[1].path == "/abs/b.tflite" and entries[1].signature == "s"
    assert entries[1].extra == {"shapes": {"x": [1, 2]}}


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"key": "a", "path": "b"}),
        json.dumps([{"path": "a.onnx"}]),
        json.dumps([{"key": "a"}]),
        json.dumps([{"key": "a", "path": "x"}, {"key": "a", "path": "y"}]),
        json.dumps([{"key": "a", "path": "x", "signature": 3}]),
    ],
)
def test_load_manifest_rejects_bad_input(tmp_path, content):
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(ProfilerError) as info:
        load_manifest(path)
    assert "\n" not in str(info.value)


def test_run_manifest_resumes_and_retries_failures(tmp_path):
    manifest = _write_manifest(
        tmp_path, [{"key": "a", "path": "a.onnx"}, {"key": "b", "path": "b.onnx"}, {"key": "c", "path": "c.onnx"}]
    )
    out = tmp_path / "results.jsonl"
    calls: list[str] = []
    broken = {"b"}

    def measure(entry):
        calls.append(entry.key)
        if entry.key in broken:
            raise ProfilerError(f"cannot time {entry.key}")
        return stats_result(TimingStats.from_samples([1.0, 2.0, 3.0]))

    messages: list[str] = []
    first = run_manifest(manifest, out, measure, backend={"name": "fake"}, log=messages.append)
    assert first.measured == ["a", "c"] and first.failed == {"b": "cannot time b"} and first.exit_code == 1
    assert calls == ["a", "b", "c"]
    records = read_jsonl(out)
    assert [r["key"] for r in records] == ["a", "c"]
    rec = records[0]
    assert rec["model"] == "a.onnx" and rec["backend"] == {"name": "fake"}
    assert rec["latency_ms"] == 2.0 and rec["stats"]["n"] == 3
    assert "environment" in rec and rec["measured_at"].endswith("Z")

    broken.clear()
    calls.clear()
    second = run_manifest(manifest, out, measure, backend={"name": "fake"}, log=messages.append)
    assert calls == ["b"]  # a and c are skipped, b is retried
    assert second.skipped == ["a", "c"] and second.measured == ["b"] and second.exit_code == 0
    assert sorted(r["key"] for r in read_jsonl(out)) == ["a", "b", "c"]

    calls.clear()
    third = run_manifest(manifest, out, measure, backend={"name": "fake"}, log=messages.append)
    assert calls == [] and third.measured == []


def test_run_manifest_fail_fast(tmp_path):
    manifest = _write_manifest(tmp_path, [{"key": "a", "path": "a.onnx"}])

    def measure(entry):
        raise ProfilerError("boom")

    with pytest.raises(ProfilerError, match="boom"):
        run_manifest(manifest, tmp_path / "o.jsonl", measure, backend={}, fail_fast=True, log=lambda m: None)
