"""Writes that never destroy or lose work: the atomic writer's refusals, one run per folder, SIGTERM checkpoints.
Every fault is injected at a chosen point (a signal the process sends itself at a chosen iteration, a lock owned by a
process we start and stop), never raced against a timer."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from zendeploy.cli.app import app
from zendeploy.io import OutputPathError, atomic_write_text
from zendeploy.search import Budgets, CheckpointError, run_search
from zendeploy.search.checkpoint import LOCK_NAME

KW = dict(resolution=32, population=6, iterations=12, proxy="params", batch_size=1, plot=False)


def test_atomic_writer_refuses_what_a_rename_would_destroy(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = tmp_path / "real.txt"
    target.write_text("keep")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    for path, message in ((fifo, "not a regular file"), (tmp_path, "is a folder"), (link, "symbolic link")):
        with pytest.raises(OutputPathError, match=message):
            atomic_write_text(path, "new")
    assert fifo.exists() and not fifo.is_file() and target.read_text() == "keep" and link.is_symlink()
    (tmp_path / "plain").write_text("file")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        atomic_write_text(tmp_path / "plain" / "x.json", "new")
    atomic_write_text(target, "replaced")  # a regular file is replaced, leaving no temporary file behind
    assert target.read_text() == "replaced" and sorted(p.name for p in tmp_path.iterdir()) == [
        "fifo", "link.txt", "plain", "real.txt"]


def test_profile_refuses_a_device_node_before_timing_anything(tmp_path):
    fifo = tmp_path / "table.json"
    os.mkfifo(fifo)
    res = CliRunner().invoke(app, ["profile", "--device", "cpu", "--space", "resnet", "--res", "32",
                                   "--grid-networks", "2", "--calibration-networks", "0", "-o", str(fifo)])
    assert res.exit_code == 1 and "not a regular file" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "table.json.work").exists()  # nothing was converted


def test_a_second_run_into_the_same_folder_is_refused_and_a_stale_lock_taken_over(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    owner = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:  # a live process owns the folder
        import socket

        (out / LOCK_NAME).write_text(json.dumps({"pid": owner.pid, "host": socket.gethostname()}))
        with pytest.raises(CheckpointError, match=rf"in use by another run \(pid {owner.pid} on"):
            run_search("resnet", Budgets.parse(params="300K"), out_dir=out, **KW)
        assert not (out / "checkpoint.json").exists()
    finally:
        owner.communicate(b"")  # it exits; its lock is now stale
    r = run_search("resnet", Budgets.parse(params="300K"), out_dir=out, **KW)
    assert r.iterations == 12 and not (out / LOCK_NAME).exists()  # released when the run ends


def test_output_folder_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    res = CliRunner().invoke(app, ["search", "-o", str(tmp_path / "f"), "--params", "300K", "--res", "32",
                                   "--iterations", "2", "--proxy", "params", "--batch-size", "1"])
    assert res.exit_code == 1 and "is a file" in res.output and "Traceback" not in res.output


@pytest.mark.fault
def test_sigterm_checkpoints_like_ctrl_c_and_the_run_resumes(tmp_path):
    """The process sends itself SIGTERM at iteration 5 (through the CLI's handler): the checkpoint holds the state,
    the run folder is unlocked, and --resume ends with the result of an undisturbed run."""
    out = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, signal, sys
        from zendeploy.cli.app import _sigterm_as_interrupt
        from zendeploy.search import Budgets, run_search
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        def progress(p):
            if p.iteration == 5:
                os.kill(os.getpid(), signal.SIGTERM)
        try:
            run_search("resnet", Budgets.parse(params="300K"), out_dir={str(out)!r}, checkpoint_every=1e9,
                       progress=progress, step=1, **{KW!r})
        except KeyboardInterrupt:
            sys.exit(130)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 130, proc.stderr[-2000:]
    saved = json.loads((out / "checkpoint.json").read_text())
    assert saved["counters"]["iterations"] == 5 and not saved["done"] and not (out / LOCK_NAME).exists()
    resumed = run_search("resnet", Budgets.parse(params="300K"), out_dir=out, resume=True, **KW)
    full = run_search("resnet", Budgets.parse(params="300K"), **KW)
    assert [(c.structure, c.score) for c in resumed.population] == [(c.structure, c.score) for c in full.population]


def test_run_carries_its_resolution_and_classes(tmp_path):
    """``--run DIR`` gives the figures the search used: ``info`` prints the parameters the report states (a
    10-class head, not the 1000-class default), ``latency predict`` and ``export`` need no --res."""
    out = tmp_path / "run"
    r = run_search("resnet", Budgets.parse(params="300K"), num_classes=10, out_dir=out, **KW)
    res = CliRunner().invoke(app, ["info", "--run", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["params"] == r.best.params == json.loads((out / "report.json").read_text())[
        "best"]["params"]
    res = CliRunner().invoke(app, ["export", "--run", str(out), "--format", "onnx", "-o", str(tmp_path / "e"),
                                   "--no-measure"])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "e" / "report.json").read_text())
    assert rep["resolution"] == 32 and rep["num_classes"] == 10
    res = CliRunner().invoke(app, ["info", "--run", str(tmp_path / "nothing")])
    assert res.exit_code == 1 and "has no" in res.output


@pytest.mark.parametrize("args, message", [
    (["score", "--zoo", "zennet_cifar10_model_size1M_res32", "--res", "20000"], "needs at least .* GiB"),
    (["score", "SuperConvK3BNRELU(3,65536,1,1)SuperConvK1BNRELU(65536,65536,1,1)", "--res", "224"], "GiB"),
    (["export", "SuperConvK3BNRELU(3,8,1,1)SuperConvK1BNRELU(8,16,1,1)", "--res", "32", "--num-classes",
      "1000000000000"], "needs at least .* GiB"),
])
def test_sizes_that_cannot_be_allocated_are_refused_up_front(args, message):
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and "Traceback" not in res.output
    import re

    assert re.search(message, res.output) and len(res.output.strip().splitlines()) == 1, res.output


def test_a_structure_cut_short_is_a_malformed_structure_not_a_zoo_name():
    res = CliRunner().invoke(app, ["info", "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1", "--res", "32"])
    assert res.exit_code == 1 and "zoo model" not in res.output and "block 2" in res.output, res.output


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_machine_os_errors_anywhere_in_a_command_are_one_line(code, capsys):
    """A full disk or a forbidden place met anywhere in a command body (e.g. while a search writes its top-k ONNX
    files) ends as one line naming the file, exit 1; an OS error that is a bug keeps its traceback."""
    import typer

    from zendeploy.cli.common import run_command

    def body():
        raise OSError(code, os.strerror(code), "runs/x/measure/top1.onnx")

    with pytest.raises(typer.Exit) as info:
        run_command(body)
    assert info.value.exit_code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runs/x/measure/top1.onnx" in err[0] and os.strerror(code) in err[0]

    def bug():
        raise OSError(errno.EBADF, "Bad file descriptor")

    with pytest.raises(OSError):
        run_command(bug)
