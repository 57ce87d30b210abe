"""CLI of the foundation: zoo, blocks, info, score, proxies (exit codes, one-line errors, JSON)."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from zendeploy.cli.app import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_help_lists_commands():
    r = invoke("--help")
    assert r.exit_code == 0
    for cmd in ("zoo", "info", "score", "proxies", "blocks"):
        assert cmd in r.output


def test_python_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "zendeploy", "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("zendeploy ")


def test_zoo_json_lists_all_entries():
    r = invoke("zoo", "--json", "--include", "*cifar100*")
    assert r.exit_code == 0
    rows = json.loads(r.stdout)
    assert len(rows) == 3 and all(row["resolution"] == 32 and row["num_classes"] == 100 for row in rows)


def test_info_json_fields():
    r = invoke("info", "--zoo", "zennet_imagenet1k_flops400M_SE_res224", "--json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert {"params", "macs", "layers", "blocks"} <= set(d)
    assert d["layers"] == 14 and d["params"] == 7466024 and len(d["blocks"]) == 6
    assert d["blocks"][0]["structure"].startswith("SuperConvK3BNRELU(")


def test_info_structure_needs_resolution_and_tables_render():
    s = "SuperConvK3BNRELU(3,8,2,1)SuperResK3K3(8,16,2,8,1)"
    r = invoke("info", s)
    assert r.exit_code == 1 and "--res is required" in r.output
    r = invoke("info", s, "--res", "32", "--num-classes", "10")
    assert r.exit_code == 0 and "MACs" in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "SuperConvK3BNRELU(3,8,2,1)SuperResK3K3(9,16,2,8,1)", "--res", "32"], "has in_channels 9"),
        (["info", "--zoo", "zennet_cifar10_size1M"], "did you mean 'zennet_cifar10_model_size1M_res32'"),
        (["info"], "give exactly one of"),
        (["info", "SuperConvK3BNRELU(3,8,2,1)", "--zoo", "test_tiny_resnet"], "give exactly one of"),
        (["score", "--zoo", "test_tiny_resnet", "--proxy", "zenn"], "unknown proxy 'zenn'; did you mean 'zen'"),
        (["score", "--zoo", "test_tiny_resnet", "--batch-size", "1"], "at least 2"),
        (["score", "SuperConvK3BNRELU(3,8,2,1)SuperConvK3BNRELU(8,8,2,1)", "--res", "2"], "too small"),
        (["info", "--run", "no/such/run"], "has no best_structure.txt"),
    ],
)
def test_user_errors_are_one_line(args, message):
    r = invoke(*args)
    assert r.exit_code == 1
    assert message in r.output
    assert "Traceback" not in r.output
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1


def test_score_json_is_deterministic():
    args = ["score", "--zoo", "test_tiny_resnet", "--repeats", "2", "--seed", "3", "--json"]
    a, b = json.loads(invoke(*args).stdout), json.loads(invoke(*args).stdout)
    assert {"score", "std", "repeats", "seconds"} <= set(a)
    assert a["score"] == b["score"] and a["repeats"] == 2 and a["valid"]


def test_score_reads_a_run_folder(tmp_path):
    (tmp_path / "best_structure.txt").write_text("SuperConvK3BNRELU(3,8,2,1)SuperResK3K3(8,16,2,8,1)\n")
    r = invoke("score", "--run", str(tmp_path), "--res", "32", "--proxy", "flops", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["valid"]


def test_proxies_and_blocks_lists():
    assert "zen" in invoke("proxies").output
    rows = json.loads(invoke("blocks", "--json").stdout)
    assert any(row["name"] == "SuperResIDWE6K7" and row["expansion"] == 6 for row in rows)
