"""``zendeploy search --ray``: real Ray (the suite's one local instance with 2 CPUs, ``local_ray`` in conftest), no mocks.

What is checked: K=1 on Ray equals the serial official loop; K>1 is reproducible for a seed and K and equals a local
``--step K`` run; a worker that kills itself (SIGKILL) in the middle of a task loses nothing and counts nothing twice, and one that
dies on every try stops the run after 3;
checkpoint/resume works across Ray and local runs; the CLI's ``--ray`` (bare and with an address); the install hint
without Ray.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import pytest

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

from typer.testing import CliRunner  # noqa: E402

from zendeploy.cli.app import app  # noqa: E402
from zendeploy.cli.common import expand_bare_options  # noqa: E402
from zendeploy.distributed.runtime import ClusterError  # noqa: E402
from zendeploy.distributed.scoring import RayScorer  # noqa: E402
from zendeploy.errors import MissingExtraError  # noqa: E402
from zendeploy.search import Budgets, run_search, score_request  # noqa: E402

BUDGETS = Budgets.parse(params="400K")
KW = dict(resolution=32, population=12, iterations=24, proxy="zen", batch_size=2, plot=False)


def _population(r):
    return [(c.structure, c.score) for c in r.population]


def _counts(r):
    return r.iterations, r.evaluations, r.cache_hits, r.accepted, r.rejected


def test_k1_on_ray_equals_the_serial_loop(local_ray):
    serial = run_search("resnet", BUDGETS, seed=5, step=1, **KW)
    on_ray = run_search("resnet", BUDGETS, seed=5, step=1, scorer=RayScorer(), **KW)
    assert _population(on_ray) == _population(serial)
    assert _counts(on_ray) == _counts(serial)
    assert on_ray.best.structure == serial.best.structure
    assert on_ray.report["settings"]["executor"] == "ray"
    assert "2 CPU" in on_ray.report["settings"]["cluster"]


def test_k4_reproducible_and_equal_to_local_step(local_ray):
    first = run_search("resnet", BUDGETS, seed=6, step=4, scorer=RayScorer(), **KW)
    again = run_search("resnet", BUDGETS, seed=6, step=4, scorer=RayScorer(), **KW)
    local = run_search("resnet", BUDGETS, seed=6, step=4, workers=2, **KW)
    assert _population(first) == _population(again) == _population(local)
    assert _counts(first) == _counts(again) == _counts(local)
    # per-worker throughput: every evaluation is attributed to exactly one worker
    rows = first.report["workers"]
    assert sum(r["evaluations"] for r in rows) == first.evaluations
    assert all(r["evaluations_per_busy_second"] > 0 and 0 < r["utilisation"] <= 1 for r in rows)
    assert first.report["requeued"] == 0


def _kill_own_worker(marker=None):
    """A scoring task that SIGKILLs the Ray worker running it: on its first call only when ``marker`` is given (the
    first task to create the marker file dies, every other call scores normally), on every call otherwise. The fault
    is decided by the task itself, so no timer races the worker. (Defined in a closure, so Ray ships it by value.)"""

    def task(request):
        if marker is not None:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return score_request(request)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)

    return task


@pytest.mark.fault
def test_killed_worker_loses_no_candidate(local_ray, tmp_path):
    """A Ray worker killed (SIGKILL) in the middle of its first task: that candidate is re-queued once, and the run
    equals an undisturbed one (same population, same counts; every evaluation attributed to one worker)."""
    kw = {**KW, "iterations": 12, "population": 8}
    reference = run_search("resnet", BUDGETS, seed=7, step=2, **kw)
    marker = tmp_path / "killed.pid"
    result = run_search("resnet", BUDGETS, seed=7, step=2, scorer=RayScorer(task=_kill_own_worker(marker)), **kw)
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker died, not this process
    assert result.requeued == 1 and result.report["requeued"] == 1
    assert _population(result) == _population(reference)
    assert _counts(result) == _counts(reference)
    assert sum(w["evaluations"] for w in result.workers.values()) == result.evaluations  # none counted twice
    assert int(marker.read_text()) not in {int(w.rsplit(":", 1)[1]) for w in result.workers}  # the dead one scored none


@pytest.mark.fault
def test_a_candidate_that_always_kills_its_worker_stops_the_run(local_ray, tmp_path):
    """Re-queueing is bounded: a candidate whose worker dies on every try ends the run with one line after 3 tries,
    and the checkpoint holds the state before that step."""
    out = tmp_path / "run"
    with pytest.raises(ClusterError, match=r"was lost with its worker 3 times .*the cluster is unstable"):
        run_search("resnet", BUDGETS, seed=7, step=1, out_dir=out, checkpoint_every=0.0,
                   scorer=RayScorer(task=_kill_own_worker()), **{**KW, "iterations": 4})
    saved = json.loads((out / "checkpoint.json").read_text())
    assert saved["counters"]["evaluations"] == 0 and not saved["done"]


@pytest.mark.fault
def test_resume_crosses_ray_and_local(local_ray, tmp_path):
    kw = {**KW, "iterations": 40, "checkpoint_every": 0.0}
    full = run_search("resnet", BUDGETS, seed=8, step=4, **kw)
    calls = []

    def interrupt(p):
        calls.append(p.iteration)
        if len(calls) == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search("resnet", BUDGETS, seed=8, step=4, scorer=RayScorer(), out_dir=tmp_path / "run", progress=interrupt, **kw)
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


def test_ray_start_up_logging_keeps_the_level_the_cli_set():
    import logging

    from zendeploy.cli.quiet import third_party_quiet
    from zendeploy.distributed.runtime import ray_logging_level

    logger = logging.getLogger("ray")
    saved = logger.level
    try:
        logger.setLevel(logging.NOTSET)
        assert ray_logging_level() >= logging.WARNING  # a library user's default: Ray's warnings show
        with third_party_quiet():  # what every CLI command runs in without --verbose
            assert ray_logging_level() == logging.ERROR
    finally:
        logger.setLevel(saved)


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
