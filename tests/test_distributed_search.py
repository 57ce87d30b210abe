"""``zendeploy search --ray``: real Ray (a local instance with 2 CPUs, started once for this module), no mocks.

What is checked: K=1 on Ray equals the serial official loop; K>1 is reproducible for a seed and K and equals a local
``--step K`` run; a worker killed (SIGKILL) in the middle of a task loses nothing and counts nothing twice;
checkpoint/resume works across Ray and local runs; the CLI's ``--ray`` (bare and with an address); the install hint
without Ray.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import pytest

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

from typer.testing import CliRunner  # noqa: E402

from zendeploy.cli.app import app  # noqa: E402
from zendeploy.cli.common import expand_bare_options  # noqa: E402
from zendeploy.errors import MissingExtraError  # noqa: E402
from zendeploy.search import Budgets, run_search  # noqa: E402

BUDGETS = Budgets.parse(params="400K")
KW = dict(resolution=32, population=12, iterations=24, proxy="zen", batch_size=2, plot=False)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module (start-up costs ~5 s); zendeploy joins it instead of starting one."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield
    ray.shutdown()


def _population(r):
    return [(c.structure, c.score) for c in r.population]


def _counts(r):
    return r.iterations, r.evaluations, r.cache_hits, r.accepted, r.rejected


def test_k1_on_ray_equals_the_serial_loop(local_ray):
    serial = run_search("resnet", BUDGETS, seed=5, step=1, **KW)
    on_ray = run_search("resnet", BUDGETS, seed=5, step=1, ray=True, **KW)
    assert _population(on_ray) == _population(serial)
    assert _counts(on_ray) == _counts(serial)
    assert on_ray.best.structure == serial.best.structure
    assert on_ray.report["settings"]["executor"] == "ray"
    assert "2 CPU" in on_ray.report["settings"]["cluster"]


def test_k4_reproducible_and_equal_to_local_step(local_ray):
    first = run_search("resnet", BUDGETS, seed=6, step=4, ray=True, **KW)
    again = run_search("resnet", BUDGETS, seed=6, step=4, ray=True, **KW)
    local = run_search("resnet", BUDGETS, seed=6, step=4, workers=2, **KW)
    assert _population(first) == _population(again) == _population(local)
    assert _counts(first) == _counts(again) == _counts(local)
    # per-worker throughput: every evaluation is attributed to exactly one worker
    rows = first.report["workers"]
    assert sum(r["evaluations"] for r in rows) == first.evaluations
    assert all(r["evaluations_per_busy_second"] > 0 and 0 < r["utilisation"] <= 1 for r in rows)
    assert first.report["requeued"] == 0


def _cpu_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def _busy(pids: list[int], window: float = 0.05) -> int | None:
    """The worker that is computing now (its CPU time grows by >= 2 ticks in ``window``), if any."""
    before = {p: _cpu_ticks(p) for p in pids}
    time.sleep(window)
    grown = {p: (_cpu_ticks(p) or 0) - (t or 0) for p, t in before.items() if t is not None}
    pid = max(grown, key=grown.get, default=None)
    return pid if pid is not None and grown[pid] >= 2 else None


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="finds the busy worker through /proc")
def test_killed_worker_loses_no_candidate(local_ray):
    """SIGKILL a Ray worker while it computes a score: its candidate is re-queued, and the run equals an
    undisturbed one (same population, same counts; every evaluation attributed to one worker)."""
    kw = {**KW, "iterations": 12, "batch_size": 64, "population": 8}
    reference = run_search("resnet", BUDGETS, seed=7, step=2, **kw)
    workers: set[int] = set()
    killed: list[int] = []
    done = threading.Event()

    def progress(p):
        workers.update(int(name.rsplit(":", 1)[1]) for name in p.workers)

    def killer():
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline and not killed:
            pid = _busy(sorted(workers - {os.getpid()}))
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        result = run_search("resnet", BUDGETS, seed=7, step=2, ray=True, progress=progress, **kw)
    finally:
        done.set()
        thread.join(timeout=10)
    assert killed, "no busy worker was seen to kill"
    assert result.requeued >= 1
    assert _population(result) == _population(reference)
    assert _counts(result) == _counts(reference)
    assert sum(w["evaluations"] for w in result.workers.values()) == result.evaluations  # none counted twice


def test_resume_crosses_ray_and_local(local_ray, tmp_path):
    kw = {**KW, "iterations": 40, "checkpoint_every": 0.0}
    full = run_search("resnet", BUDGETS, seed=8, step=4, **kw)
    calls = []

    def interrupt(p):
        calls.append(p.iteration)
        if len(calls) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search("resnet", BUDGETS, seed=8, step=4, ray=True, out_dir=tmp_path / "run", progress=interrupt, **kw)
    saved = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert 0 < saved["counters"]["iterations"] < 40 and not saved["done"]
    resumed = run_search("resnet", BUDGETS, seed=8, step=4, out_dir=tmp_path / "run", resume=True, **kw)
    assert _population(resumed) == _population(full) and _counts(resumed) == _counts(full)


def test_cli_search_on_ray(local_ray, tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["search", "-o", str(out), "--space", "resnet", "--res", "32", "--params", "400K",
                                   "--population", "12", "--iterations", "16", "--batch-size", "2", "--step", "4",
                                   "--ray", "auto"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["executor"] == "ray" and report["evaluations"] > 0
    assert "worker(s)" in res.output
    res = CliRunner().invoke(app, ["search", "-o", str(tmp_path / "r2"), "--params", "400K", "--res", "32",
                                   "--ray", "local", "--workers", "2"])
    assert res.exit_code == 1 and "--workers sizes the local process pool" in res.output


def test_bare_ray_option_gets_auto():
    assert expand_bare_options(["search", "--ray"]) == ["search", "--ray", "auto"]
    assert expand_bare_options(["search", "--ray", "--step", "4"]) == ["search", "--ray", "auto", "--step", "4"]
    assert expand_bare_options(["search", "--ray", "10.0.0.2:6379"]) == ["search", "--ray", "10.0.0.2:6379"]


def test_without_ray_the_error_is_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # what Python does when ray is not installed: import fails
    from zendeploy.distributed.runtime import require_ray

    with pytest.raises(MissingExtraError, match=r'pip install "zendeploy\[ray\]"'):
        require_ray()
    res = CliRunner().invoke(app, ["search", "-o", str(tmp_path / "run"), "--params", "400K", "--res", "32", "--ray", "local",
                                   "--iterations", "1"])
    assert res.exit_code == 1
    assert 'pip install "zendeploy[ray]"' in res.output and "Traceback" not in res.output


def test_unreachable_or_malformed_address_fails_in_one_line():
    from zendeploy.distributed.runtime import ClusterError, check_reachable

    with pytest.raises(ClusterError, match=r"cannot reach a Ray cluster at 127\.0\.0\.1:1 .*ray start --head"):
        check_reachable("127.0.0.1:1", timeout=2)
    with pytest.raises(ClusterError, match="not HOST:PORT"):
        check_reachable("nonsense")
